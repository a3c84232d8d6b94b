//! Triage: a reply policy that hands unhappy customers to people at once and reports how every
//! conversation is going (its `insights` export), with lexicons in English, Spanish,
//! Portuguese and Indonesian and no network.
//!
//! Configured per tenant with JSON (`PUT …/policy`), every field optional:
//!
//! ```json
//! {
//!   "handoff_below": -0.3,
//!   "handoff_reply": "Sorry about this. A person from our team is taking over now.",
//!   "reply": "Thanks for writing! We answer within the hour."
//! }
//! ```
//!
//! A text that reads at or below `handoff_below` (from -1.0, furious, to 1.0, delighted; by
//! default -0.3), or a customer whose last few messages do, hands the conversation to people,
//! after `handoff_reply` if set. Anything else gets `reply` if set, else nothing. A reply longer
//! than the channel's `text-limit` is cut to fit. A configuration that does not parse answers
//! nothing and logs why.
//!
//! Insights: the sentiment of the customer's messages (later ones weigh more) as a label and a
//! score, their language, and an extractive summary (the customer's most telling sentences).

wit_bindgen::generate!({ path: "../../../wit/since_v0.2.0", world: "policy-with-insights" });

use exports::switchyard::plugin::insights::Guest as Insights;
use exports::switchyard::plugin::policy::Guest as Policy;
use lexicon::{Label, Turn as Said};
use switchyard::plugin::log::{Level, write};
use switchyard::plugin::types::{
    Action, Content, ConversationContext, InboundMessage, Insight, Reply, Sentiment, Turn,
};

/// How many of the customer's latest messages make the trend `decide` also looks at.
const TREND: usize = 3;

/// The tenant's configuration.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_threshold")]
    handoff_below: f32,
    handoff_reply: Option<String>,
    reply: Option<String>,
}

fn default_threshold() -> f32 {
    -0.3
}

impl Config {
    fn parse(json: &str) -> Result<Config, String> {
        let json = if json.trim().is_empty() { "{}" } else { json };
        let config: Config = serde_json::from_str(json).map_err(|e| e.to_string())?;
        if !(-1.0..=1.0).contains(&config.handoff_below) {
            return Err("handoff_below must be between -1.0 and 1.0".into());
        }
        Ok(config)
    }
}

/// What `decide` concluded, with what to log.
fn decide(ctx: &ConversationContext, msg: &InboundMessage) -> (Vec<Action>, Option<String>) {
    let config = match Config::parse(&ctx.config) {
        Ok(c) => c,
        Err(e) => return (Vec::new(), Some(format!("configuration ignored: {e}"))),
    };
    let text = msg.text.as_deref().unwrap_or_default();
    let now = lexicon::read(text).score;
    // The customer's last few messages, this one included.
    let mut recent: Vec<Said<'_>> = ctx
        .history
        .iter()
        .filter(|t| t.inbound)
        .filter_map(|t| t.text.as_deref())
        .map(|text| Said {
            inbound: true,
            text,
        })
        .collect();
    recent.push(Said {
        inbound: true,
        text,
    });
    let trend = lexicon::analyze(&recent[recent.len().saturating_sub(TREND)..]).score;
    let limit = ctx.rules.text_limit as usize;
    let reply = |text: &str| {
        Action::Reply(Reply {
            content: Content::Text(fit(text, limit)),
            fallback: None,
        })
    };
    if now <= config.handoff_below || trend <= config.handoff_below {
        let mut actions: Vec<Action> = config
            .handoff_reply
            .as_deref()
            .map(reply)
            .into_iter()
            .collect();
        actions.push(Action::HandOff(format!(
            "the customer sounds unhappy (message {now:.2}, recent messages {trend:.2})"
        )));
        return (actions, None);
    }
    (
        config.reply.as_deref().map(reply).into_iter().collect(),
        None,
    )
}

/// `text` cut to `limit` characters, ending in `…` when cut.
fn fit(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(limit.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// How much of a transcript's text `analyze` reads, newest first, in bytes: keeps a call well
/// inside the host's CPU limit however long the messages are.
const READ_AT_MOST: usize = 24_000;

/// What the lexicon makes of a transcript, as the interface's insight.
fn analyze(transcript: &[Turn]) -> Insight {
    let mut budget = READ_AT_MOST;
    let mut said: Vec<Said<'_>> = transcript
        .iter()
        .rev()
        .filter_map(|t| {
            t.text.as_deref().map(|text| Said {
                inbound: t.inbound,
                text,
            })
        })
        .take_while(|s| {
            let fits = budget > 0;
            budget = budget.saturating_sub(s.text.len());
            fits
        })
        .collect();
    said.reverse();
    let a = lexicon::analyze(&said);
    Insight {
        sentiment: match a.label {
            Label::Negative => Sentiment::Negative,
            Label::Neutral => Sentiment::Neutral,
            Label::Positive => Sentiment::Positive,
            Label::Mixed => Sentiment::Mixed,
        },
        score: a.score.clamp(-1.0, 1.0),
        summary: a.summary,
        language: a.language.map(|l| l.code().to_string()),
    }
}

/// The policy; exported as the component's `policy` and `insights` interfaces.
struct Triage;

impl Policy for Triage {
    fn decide(ctx: ConversationContext, msg: InboundMessage) -> Vec<Action> {
        let (actions, log) = decide(&ctx, &msg);
        if let Some(line) = log {
            write(Level::Warn, &line, &[]);
        }
        actions
    }
}

impl Insights for Triage {
    fn analyze(_ctx: ConversationContext, transcript: Vec<Turn>) -> Result<Insight, String> {
        Ok(analyze(&transcript))
    }
}

export!(Triage);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard::plugin::types::{ChannelRules, ConversationOwner, MessageKind, Party};

    fn ctx(config: &str, history: &[&str]) -> ConversationContext {
        ConversationContext {
            tenant_id: "ten_1".into(),
            conversation_id: "cnv_1".into(),
            channel: "meta-cloud".into(),
            rules: ChannelRules {
                window_seconds: Some(86_400),
                templates: true,
                text_limit: 20,
                media: Vec::new(),
                reactions: true,
                reply_context: true,
            },
            contact: Party {
                phone: Some("15550001".into()),
                user_id: None,
                name: None,
            },
            window_open: true,
            window_closes_at: None,
            history: history.iter().map(|t| turn(true, t)).collect(),
            config: config.into(),
            owner: ConversationOwner::Policy,
            assignee: None,
            contact_email: None,
        }
    }

    fn turn(inbound: bool, text: &str) -> Turn {
        Turn {
            inbound,
            kind: MessageKind::Text,
            text: Some(text.into()),
            provider_message_id: None,
            timestamp: 1,
        }
    }

    fn text(t: &str) -> InboundMessage {
        InboundMessage {
            provider_message_id: "m1".into(),
            channel_address: "15550002".into(),
            sender: ctx("{}", &[]).contact,
            timestamp: 1,
            kind: MessageKind::Text,
            text: Some(t.into()),
            media: Vec::new(),
            location: None,
            interactive: None,
            reply_to: None,
            referral: None,
            details: None,
            edits: None,
        }
    }

    fn texts(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Reply(Reply {
                    content: Content::Text(t),
                    ..
                }) => format!("reply:{t}"),
                Action::HandOff(_) => "hand-off".into(),
                _ => "other".into(),
            })
            .collect()
    }

    #[test]
    fn unhappy_customers_go_to_people_in_every_language() {
        let config = r#"{"handoff_reply": "A person is coming", "reply": "Thanks"}"#;
        for angry in [
            "This is terrible, the worst service ever",
            "Es pésimo, estoy muy molesto",
            "Péssimo atendimento, estou muito chateado",
            "Sangat kecewa, pelayanan buruk sekali",
        ] {
            let (actions, _) = decide(&ctx(config, &[]), &text(angry));
            assert_eq!(
                texts(&actions),
                ["reply:A person is coming", "hand-off"],
                "{angry}"
            );
        }
        let (actions, _) = decide(&ctx(config, &[]), &text("Great, thank you so much!"));
        assert_eq!(texts(&actions), ["reply:Thanks"]);
    }

    #[test]
    fn a_souring_trend_hands_off_and_config_is_checked() {
        let history = [
            "the order is late again",
            "still nothing, awful",
            "terrible",
        ];
        let (actions, _) = decide(&ctx("{}", &history), &text("ok"));
        assert_eq!(texts(&actions), ["hand-off"]);
        let (actions, log) = decide(&ctx(r#"{"handoff_below": 3}"#, &[]), &text("awful"));
        assert!(actions.is_empty());
        assert!(log.is_some_and(|l| l.contains("handoff_below")));
        let (actions, log) = decide(&ctx(r#"{"reply": 1}"#, &[]), &text("hi"));
        assert!(actions.is_empty() && log.is_some());
        // Replies are cut to the channel's limit.
        let long = r#"{"reply": "this reply is longer than twenty characters"}"#;
        let (actions, _) = decide(&ctx(long, &[]), &text("hello"));
        assert_eq!(texts(&actions), ["reply:this reply is longe…"]);
    }

    #[test]
    fn insights_read_the_customer_and_keep_the_range() {
        let transcript = [
            turn(true, "My order 4417 arrived broken and nobody answers."),
            turn(false, "We are sorry to hear that."),
            turn(true, "This is the worst experience, I want a refund."),
        ];
        let insight = analyze(&transcript);
        assert_eq!(insight.sentiment, Sentiment::Negative);
        assert!((-1.0..=0.0).contains(&insight.score));
        assert!(insight.summary.contains("4417"), "{}", insight.summary);
        assert_eq!(insight.language.as_deref(), Some("en"));
        // A long conversation is read from its newest messages, within the budget: the oldest
        // one is past it.
        let mut long = vec![turn(
            true,
            "My first complaint about order 1111 was terrible.",
        )];
        long.extend((0..200).map(|i| {
            turn(
                true,
                &format!("Message {i} about the same parcel, {}", "still ".repeat(30)),
            )
        }));
        let insight = analyze(&long);
        assert!(!insight.summary.contains("1111"), "{}", insight.summary);
        assert!(insight.summary.contains("parcel"), "{}", insight.summary);
        let empty = analyze(&[]);
        assert_eq!((empty.sentiment, empty.score), (Sentiment::Neutral, 0.0));
    }
}
