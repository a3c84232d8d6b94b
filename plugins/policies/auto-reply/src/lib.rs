//! A keyword auto-reply policy, configured per tenant with JSON (`PUT …/policy`):
//!
//! ```json
//! {
//!   "rules": [{"keywords": ["price", "cost"], "reply": "Plans start at $9/month."}],
//!   "default_reply": "Thanks for your message! We answer within a day.",
//!   "handoff_keywords": ["agent", "human"],
//!   "handoff_reply": "Connecting you with a person now.",
//!   "fallback": {"name": "follow_up", "language": "en_US", "category": "utility",
//!                "parameters": ["{name}"]}
//! }
//! ```
//!
//! A text containing a hand-off keyword (whole word, any case) gets the hand-off reply and hands
//! the conversation to a human; otherwise the first rule with a matching keyword answers, else the
//! default reply, else nothing. Non-text messages get the default reply. A configuration that
//! does not parse answers nothing and logs why.
//!
//! The channel's rules (the context's `rules`) shape every reply: on a channel with templates
//! it carries the fallback template, which the host sends instead when the channel's window is
//! closed (`{name}` in a parameter becomes the contact's profile name); on a channel without
//! templates (Telegram) it carries none. A reply longer than the channel's `text-limit` is cut
//! to fit, ending in `…`, and the cut is logged: the host would refuse it whole.
//!
//! The world may import `egress`; this policy makes no calls.

wit_bindgen::generate!({ path: "../../../wit/since_v0.2.0", world: "reply-policy" });

use exports::switchyard::plugin::policy::Guest;
use switchyard::plugin::log::{Level, write};
use switchyard::plugin::types::{
    Action, ChannelRules, Content, ConversationContext, InboundMessage, MessageKind, Reply,
    Template, TemplateCategory,
};

/// The tenant's configuration.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    rules: Vec<Rule>,
    default_reply: Option<String>,
    #[serde(default)]
    handoff_keywords: Vec<String>,
    handoff_reply: Option<String>,
    fallback: Option<Fallback>,
}

/// One keyword rule.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    keywords: Vec<String>,
    reply: String,
}

/// The template sent instead of free-form text outside the window.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Fallback {
    name: String,
    language: String,
    #[serde(default = "utility")]
    category: String,
    #[serde(default)]
    parameters: Vec<String>,
}

fn utility() -> String {
    "utility".into()
}

/// Whether `text` contains `keyword` as a whole word, ignoring case.
fn has_word(text: &str, keyword: &str) -> bool {
    let keyword = keyword.trim().to_lowercase();
    !keyword.is_empty()
        && text
            .to_lowercase()
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w == keyword)
}

impl Config {
    /// What to answer `text` with: `(reply, hand off)`.
    fn answer(&self, text: Option<&str>) -> (Option<&str>, bool) {
        if let Some(text) = text {
            if self.handoff_keywords.iter().any(|k| has_word(text, k)) {
                return (self.handoff_reply.as_deref(), true);
            }
            if let Some(rule) = self
                .rules
                .iter()
                .find(|r| r.keywords.iter().any(|k| has_word(text, k)))
            {
                return (Some(&rule.reply), false);
            }
        }
        (self.default_reply.as_deref(), false)
    }

    fn fallback(&self, name: Option<&str>) -> Result<Option<Template>, String> {
        let Some(f) = &self.fallback else {
            return Ok(None);
        };
        let category = match f.category.as_str() {
            "utility" => TemplateCategory::Utility,
            "marketing" => TemplateCategory::Marketing,
            "authentication" => TemplateCategory::Authentication,
            other => return Err(format!("unknown template category {other:?}")),
        };
        Ok(Some(Template {
            name: f.name.clone(),
            language: f.language.clone(),
            category,
            parameters: f
                .parameters
                .iter()
                .map(|p| p.replace("{name}", name.unwrap_or("there")))
                .collect(),
        }))
    }
}

/// `text` cut to at most `limit` Unicode scalar values, ending in `…` when it was cut; `None`
/// when it fits as it is.
fn cut(text: &str, limit: u32) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if text.chars().count() <= limit {
        return None;
    }
    let mut out: String = text.chars().take(limit.saturating_sub(1)).collect();
    if limit > 0 {
        out.push('…');
    }
    Some(out)
}

/// A line for the host's log.
type LogLine = (Level, &'static str, Vec<(String, String)>);

/// What to do about `msg`, and what to log about it (kept apart from the log import, so the
/// decision can be tested natively).
fn decide(ctx: &ConversationContext, msg: &InboundMessage) -> (Vec<Action>, Vec<LogLine>) {
    let unreadable = |e: String| {
        (
            Vec::new(),
            vec![(
                Level::Warn,
                "policy configuration unreadable",
                vec![("error".into(), e)],
            )],
        )
    };
    let config: Config = if ctx.config.trim().is_empty() {
        Config::default()
    } else {
        match serde_json::from_str(&ctx.config) {
            Ok(c) => c,
            Err(e) => return unreadable(e.to_string()),
        }
    };
    let fallback = match config.fallback(ctx.contact.name.as_deref()) {
        Ok(f) => f,
        Err(e) => return unreadable(e),
    };
    let text = match msg.kind {
        MessageKind::Text | MessageKind::Button | MessageKind::Interactive => msg.text.as_deref(),
        _ => None,
    };
    let (reply, hand_off) = config.answer(text);
    let mut logs = Vec::new();
    let mut actions: Vec<Action> = reply
        .map(|r| Action::Reply(fit(r, fallback, &ctx.rules, &ctx.channel, &mut logs)))
        .into_iter()
        .collect();
    if hand_off {
        actions.push(Action::HandOff(format!(
            "the contact asked for a person: {:?}",
            text.unwrap_or_default()
        )));
    }
    (actions, logs)
}

/// The reply `text` as the channel allows it: cut to its text limit, with the fallback template
/// only when it has templates.
fn fit(
    text: &str,
    fallback: Option<Template>,
    rules: &ChannelRules,
    channel: &str,
    logs: &mut Vec<LogLine>,
) -> Reply {
    let content = match cut(text, rules.text_limit) {
        Some(shorter) => {
            logs.push((
                Level::Warn,
                "reply cut to the channel's text limit",
                vec![
                    ("channel".into(), channel.to_string()),
                    ("limit".into(), rules.text_limit.to_string()),
                    ("length".into(), text.chars().count().to_string()),
                ],
            ));
            shorter
        }
        None => text.to_string(),
    };
    Reply {
        content: Content::Text(content),
        fallback: fallback.filter(|_| rules.templates),
    }
}

struct AutoReply;

impl Guest for AutoReply {
    fn decide(ctx: ConversationContext, msg: InboundMessage) -> Vec<Action> {
        let (actions, logs) = decide(&ctx, &msg);
        for (level, message, fields) in logs {
            write(level, message, &fields);
        }
        actions
    }
}

export!(AutoReply);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard::plugin::types::{ConversationOwner, MediaKind, Party, Turn};

    fn config() -> Config {
        serde_json::from_str(
            r#"{"rules": [{"keywords": ["price", "cost"], "reply": "From $9."}],
                "default_reply": "Thanks!", "handoff_keywords": ["agent"],
                "handoff_reply": "A person will answer.",
                "fallback": {"name": "follow_up", "language": "en_US", "parameters": ["{name}"]}}"#,
        )
        .expect("config")
    }

    #[test]
    fn keywords_match_whole_words_in_any_case() {
        let c = config();
        assert_eq!(
            c.answer(Some("What's the PRICE?")),
            (Some("From $9."), false)
        );
        assert_eq!(c.answer(Some("priceless")), (Some("Thanks!"), false));
        assert_eq!(
            c.answer(Some("get me an Agent")),
            (Some("A person will answer."), true)
        );
        assert_eq!(c.answer(None), (Some("Thanks!"), false));
    }

    #[test]
    fn the_fallback_names_the_contact() {
        let t = config().fallback(Some("Ana")).expect("ok").expect("some");
        assert_eq!(t.parameters, vec!["Ana".to_string()]);
        assert_eq!(t.category, TemplateCategory::Utility);
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<Config>(r#"{"rulez": []}"#).is_err());
    }

    const CONFIG: &str = r#"{"rules": [{"keywords": ["price"], "reply": "From $9."}],
        "default_reply": "Thanks!", "handoff_keywords": ["agent"],
        "handoff_reply": "A person will answer.",
        "fallback": {"name": "follow_up", "language": "en_US", "parameters": ["{name}"]}}"#;

    fn whatsapp() -> ChannelRules {
        ChannelRules {
            window_seconds: Some(86_400),
            templates: true,
            text_limit: 4096,
            media: vec![MediaKind::Image, MediaKind::Document],
            reactions: true,
            reply_context: true,
        }
    }

    fn telegram() -> ChannelRules {
        ChannelRules {
            window_seconds: None,
            templates: false,
            text_limit: 4096,
            media: vec![MediaKind::Image, MediaKind::Document],
            reactions: false,
            reply_context: true,
        }
    }

    fn ctx(channel: &str, rules: ChannelRules, config: &str) -> ConversationContext {
        ConversationContext {
            tenant_id: "ten_1".into(),
            conversation_id: "cnv_1".into(),
            channel: channel.into(),
            rules,
            contact: Party {
                phone: Some("15550001111".into()),
                user_id: None,
                name: Some("Ana".into()),
            },
            window_open: true,
            window_closes_at: Some(2_000_000_000),
            history: vec![Turn {
                inbound: false,
                kind: MessageKind::Text,
                text: Some("Hello".into()),
                provider_message_id: Some("wamid.0".into()),
                timestamp: 1,
            }],
            config: config.into(),
            owner: ConversationOwner::Policy,
            assignee: None,
            contact_email: None,
        }
    }

    fn msg(kind: MessageKind, text: Option<&str>) -> InboundMessage {
        InboundMessage {
            provider_message_id: "wamid.1".into(),
            channel_address: "1065".into(),
            sender: Party {
                phone: Some("15550001111".into()),
                user_id: None,
                name: Some("Ana".into()),
            },
            timestamp: 2,
            kind,
            text: text.map(str::to_string),
            media: Vec::new(),
            location: None,
            interactive: None,
            reply_to: None,
            referral: None,
            details: None,
            edits: None,
        }
    }

    /// The one reply among the actions, as (text, fallback template name).
    fn reply(actions: &[Action]) -> (String, Option<String>) {
        match actions {
            [
                Action::Reply(Reply {
                    content: Content::Text(t),
                    fallback,
                }),
                ..,
            ] => (t.clone(), fallback.as_ref().map(|f| f.name.clone())),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn whatsapp_replies_carry_the_fallback_template() {
        let (actions, logs) = decide(
            &ctx("meta-cloud", whatsapp(), CONFIG),
            &msg(MessageKind::Text, Some("the price?")),
        );
        assert_eq!(
            reply(&actions),
            ("From $9.".to_string(), Some("follow_up".to_string()))
        );
        assert_eq!(actions.len(), 1);
        assert!(logs.is_empty());
        let (actions, _) = decide(
            &ctx("meta-cloud", whatsapp(), CONFIG),
            &msg(MessageKind::Text, Some("an agent please")),
        );
        assert_eq!(reply(&actions).0, "A person will answer.");
        assert!(matches!(&actions[1], Action::HandOff(r) if r.contains("an agent please")));
        // Non-text messages get the default reply.
        let (actions, _) = decide(
            &ctx("meta-cloud", whatsapp(), CONFIG),
            &msg(MessageKind::Image, Some("price")),
        );
        assert_eq!(reply(&actions).0, "Thanks!");
    }

    #[test]
    fn a_channel_without_templates_gets_no_fallback() {
        let (actions, _) = decide(
            &ctx("telegram", telegram(), CONFIG),
            &msg(MessageKind::Text, Some("price")),
        );
        assert_eq!(reply(&actions), ("From $9.".to_string(), None));
    }

    #[test]
    fn replies_are_cut_to_the_channel_text_limit() {
        let long = "é".repeat(30);
        let config = format!(r#"{{"default_reply": "{long}"}}"#);
        let mut rules = telegram();
        rules.text_limit = 10;
        let (actions, logs) = decide(
            &ctx("telegram", rules.clone(), &config),
            &msg(MessageKind::Text, Some("hi")),
        );
        let (text, _) = reply(&actions);
        assert_eq!(text.chars().count(), 10);
        assert_eq!(text, format!("{}…", "é".repeat(9)));
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].1, "reply cut to the channel's text limit");
        // Exactly at the limit: sent as it is.
        rules.text_limit = 30;
        let (actions, logs) = decide(
            &ctx("telegram", rules, &config),
            &msg(MessageKind::Text, Some("hi")),
        );
        assert_eq!(reply(&actions).0, long);
        assert!(logs.is_empty());
        assert_eq!(cut("abc", 1).as_deref(), Some("…"));
        assert_eq!(cut("abc", 0).as_deref(), Some(""));
        assert_eq!(cut("abc", 3), None);
    }

    #[test]
    fn an_unreadable_configuration_answers_nothing_and_says_why() {
        for config in [
            "not json",
            r#"{"fallback": {"name": "x", "language": "en", "category": "promo"}}"#,
        ] {
            let (actions, logs) = decide(
                &ctx("meta-cloud", whatsapp(), config),
                &msg(MessageKind::Text, Some("hi")),
            );
            assert!(actions.is_empty(), "{config}");
            assert_eq!(logs.len(), 1, "{config}");
            assert_eq!(logs[0].1, "policy configuration unreadable");
        }
        // No configuration at all: nothing to say.
        let (actions, logs) = decide(
            &ctx("meta-cloud", whatsapp(), " "),
            &msg(MessageKind::Text, Some("hi")),
        );
        assert!(actions.is_empty() && logs.is_empty());
    }
}
