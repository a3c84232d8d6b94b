//! The simplest real reply policy: answer a text message with the same text.
//!
//! Media, reactions and other kinds get no reply. Outside the customer-service window the host
//! drops the reply (there is no fallback template), which is the behaviour a tenant expects from
//! an echo bot.

wit_bindgen::generate!({ path: "../../../wit/since_v0.1.0", world: "reply-policy" });

use exports::switchyard::plugin::policy::Guest;
use switchyard::plugin::types::{
    Action, Content, ConversationContext, InboundMessage, MessageKind, Reply,
};

struct Echo;

impl Guest for Echo {
    fn decide(_ctx: ConversationContext, msg: InboundMessage) -> Vec<Action> {
        match (msg.kind, msg.text) {
            (MessageKind::Text, Some(text)) if !text.is_empty() => vec![Action::Reply(Reply {
                content: Content::Text(text),
                fallback: None,
            })],
            _ => Vec::new(),
        }
    }
}

export!(Echo);
