//! The simplest real reply policy: answer a text message with the same text.
//!
//! Media, reactions and other kinds get no reply. Where the channel has a customer-service
//! window and it is closed, the host drops the reply (there is no fallback template), which is
//! the behaviour a tenant expects from an echo bot.

use switchyard_sdk::types::{
    Action, Content, ConversationContext, InboundMessage, MessageKind, Reply,
};
use switchyard_sdk::{Policy, export_policy};

/// The policy; exported as the component's `policy` interface.
pub struct Echo;

impl Policy for Echo {
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

export_policy!(Echo);

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::types::{ChannelRules, ConversationOwner, MediaKind, Party, Turn};

    fn ctx() -> ConversationContext {
        let party = Party {
            phone: None,
            user_id: Some("42".into()),
            name: None,
        };
        ConversationContext {
            tenant_id: "ten_1".into(),
            conversation_id: "cnv_1".into(),
            channel: "telegram".into(),
            rules: ChannelRules {
                window_seconds: None,
                templates: false,
                text_limit: 4096,
                media: vec![MediaKind::Image],
                reactions: false,
                reply_context: true,
            },
            contact: party,
            window_open: true,
            window_closes_at: None,
            history: vec![Turn {
                inbound: true,
                kind: MessageKind::Text,
                text: Some("earlier".into()),
                provider_message_id: Some("42:1".into()),
                timestamp: 1,
            }],
            config: String::new(),
            owner: ConversationOwner::Policy,
            assignee: None,
            contact_email: None,
        }
    }

    fn msg(kind: MessageKind, text: Option<&str>) -> InboundMessage {
        InboundMessage {
            provider_message_id: "42:2".into(),
            channel_address: "ShopHelperBot".into(),
            sender: ctx().contact,
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

    #[test]
    fn texts_are_echoed_and_nothing_else() {
        let actions = Echo::decide(ctx(), msg(MessageKind::Text, Some("hi there")));
        assert!(matches!(
            actions.as_slice(),
            [Action::Reply(Reply { content: Content::Text(t), fallback: None })] if t == "hi there"
        ));
        assert!(Echo::decide(ctx(), msg(MessageKind::Text, Some(""))).is_empty());
        assert!(Echo::decide(ctx(), msg(MessageKind::Image, Some("a caption"))).is_empty());
        assert!(Echo::decide(ctx(), msg(MessageKind::Reaction, Some("👍"))).is_empty());
    }
}
