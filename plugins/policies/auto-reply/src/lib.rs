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
//! default reply, else nothing. Every reply carries the fallback template, which the host sends
//! instead when the 24-hour window is closed (`{name}` in a parameter becomes the contact's
//! profile name). Non-text messages get the default reply. A configuration that does not parse
//! answers nothing and logs why.

wit_bindgen::generate!({ path: "../../../wit/since_v0.1.0", world: "reply-policy" });

use exports::switchyard::plugin::policy::Guest;
use switchyard::plugin::log::{Level, write};
use switchyard::plugin::types::{
    Action, Content, ConversationContext, InboundMessage, MessageKind, Reply, Template,
    TemplateCategory,
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

struct AutoReply;

impl Guest for AutoReply {
    fn decide(ctx: ConversationContext, msg: InboundMessage) -> Vec<Action> {
        let config: Config = if ctx.config.trim().is_empty() {
            Config::default()
        } else {
            match serde_json::from_str(&ctx.config) {
                Ok(c) => c,
                Err(e) => {
                    write(
                        Level::Warn,
                        "policy configuration unreadable",
                        &[("error".into(), e.to_string())],
                    );
                    return Vec::new();
                }
            }
        };
        let fallback = match config.fallback(ctx.contact.name.as_deref()) {
            Ok(f) => f,
            Err(e) => {
                write(
                    Level::Warn,
                    "policy configuration unreadable",
                    &[("error".into(), e)],
                );
                return Vec::new();
            }
        };
        let text = match msg.kind {
            MessageKind::Text | MessageKind::Button | MessageKind::Interactive => {
                msg.text.as_deref()
            }
            _ => None,
        };
        let (reply, hand_off) = config.answer(text);
        let mut actions: Vec<Action> = reply
            .map(|r| {
                Action::Reply(Reply {
                    content: Content::Text(r.to_string()),
                    fallback: fallback.clone(),
                })
            })
            .into_iter()
            .collect();
        if hand_off {
            actions.push(Action::HandOff(format!(
                "the contact asked for a person: {:?}",
                text.unwrap_or_default()
            )));
        }
        actions
    }
}

export!(AutoReply);

#[cfg(test)]
mod tests {
    use super::*;

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
}
