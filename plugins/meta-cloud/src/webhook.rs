//! Meta's webhook payloads (`object: whatsapp_business_account`) → inbound events.
//!
//! Every `entry[]` and every `changes[]` is read; `field: messages` carries messages and
//! statuses, routed by `value.metadata.phone_number_id`. Everything else is `ignored`, never an
//! error: an error would make Meta retry a payload that will never parse differently.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::bindings::switchyard::plugin::types::{
    Choice, DeliveryState, FlowResponse, InboundEvent, InboundMessage, InteractiveReply, Location,
    MediaRef, MessageKind, Party, Referral, StatusUpdate,
};
use crate::errors;

#[derive(Deserialize)]
struct Webhook {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    field: String,
    value: Box<RawValue>,
}

#[derive(Deserialize)]
struct Value {
    metadata: Metadata,
    #[serde(default)]
    contacts: Vec<Contact>,
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    statuses: Vec<Status>,
}

#[derive(Deserialize)]
struct Metadata {
    phone_number_id: String,
}

#[derive(Deserialize)]
struct Contact {
    wa_id: Option<String>,
    user_id: Option<String>,
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    name: Option<String>,
}

#[derive(Deserialize)]
struct Media {
    id: Option<String>,
    mime_type: Option<String>,
    sha256: Option<String>,
    caption: Option<String>,
    filename: Option<String>,
    url: Option<String>,
}

impl From<Media> for MediaRef {
    fn from(m: Media) -> MediaRef {
        MediaRef {
            provider_media_id: m.id,
            url: m.url,
            mime_type: m.mime_type,
            sha256: m.sha256,
            caption: m.caption,
            filename: m.filename,
        }
    }
}

#[derive(Deserialize)]
struct Text {
    body: String,
}

#[derive(Deserialize)]
struct LocationJson {
    latitude: f64,
    longitude: f64,
    name: Option<String>,
    address: Option<String>,
}

#[derive(Deserialize)]
struct Interactive {
    #[serde(rename = "type")]
    kind: String,
    button_reply: Option<ChoiceJson>,
    list_reply: Option<ChoiceJson>,
    nfm_reply: Option<NfmReply>,
}

#[derive(Deserialize)]
struct ChoiceJson {
    id: String,
    title: String,
    description: Option<String>,
}

impl From<ChoiceJson> for Choice {
    fn from(c: ChoiceJson) -> Choice {
        Choice {
            id: c.id,
            title: c.title,
            description: c.description,
        }
    }
}

#[derive(Deserialize)]
struct NfmReply {
    name: Option<String>,
    body: Option<String>,
    response_json: String,
}

#[derive(Deserialize)]
struct Button {
    text: Option<String>,
    payload: Option<String>,
}

#[derive(Deserialize)]
struct Reaction {
    message_id: Option<String>,
    emoji: Option<String>,
}

#[derive(Deserialize)]
struct SystemJson {
    body: Option<String>,
}

#[derive(Deserialize)]
struct Context {
    id: Option<String>,
}

#[derive(Deserialize)]
struct ReferralJson {
    source_url: Option<String>,
    source_type: Option<String>,
    source_id: Option<String>,
    headline: Option<String>,
    body: Option<String>,
    ctwa_clid: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    id: String,
    from: Option<String>,
    from_user_id: Option<String>,
    timestamp: String,
    #[serde(rename = "type")]
    kind: String,
    text: Option<Text>,
    image: Option<Media>,
    audio: Option<Media>,
    video: Option<Media>,
    document: Option<Media>,
    sticker: Option<Media>,
    location: Option<LocationJson>,
    interactive: Option<Interactive>,
    button: Option<Button>,
    reaction: Option<Reaction>,
    system: Option<SystemJson>,
    order: Option<Box<RawValue>>,
    contacts: Option<Box<RawValue>>,
    errors: Option<Box<RawValue>>,
    context: Option<Context>,
    referral: Option<ReferralJson>,
}

#[derive(Deserialize)]
struct Status {
    id: String,
    status: String,
    timestamp: String,
    recipient_id: Option<String>,
    recipient_user_id: Option<String>,
    #[serde(default)]
    errors: Vec<ErrorJson>,
}

#[derive(Deserialize)]
struct ErrorJson {
    code: i64,
    title: Option<String>,
    message: Option<String>,
    error_data: Option<ErrorData>,
}

#[derive(Deserialize)]
struct ErrorData {
    details: Option<String>,
}

/// Parse a webhook body into events; `Err` only when it is not a WhatsApp webhook at all.
pub fn parse(body: &[u8]) -> Result<Vec<InboundEvent>, String> {
    let hook: Webhook =
        serde_json::from_slice(body).map_err(|e| format!("not a Meta webhook body: {e}"))?;
    if hook.object != "whatsapp_business_account" {
        return Ok(vec![InboundEvent::Ignored(format!(
            "object {:?} is not whatsapp_business_account",
            hook.object
        ))]);
    }
    let mut events = Vec::new();
    for change in hook.entry.into_iter().flat_map(|e| e.changes) {
        if change.field != "messages" {
            events.push(InboundEvent::Ignored(format!("field {}", change.field)));
            continue;
        }
        match serde_json::from_str::<Value>(change.value.get()) {
            Ok(value) => push_value(value, &mut events),
            Err(e) => events.push(InboundEvent::Ignored(format!(
                "messages change not understood: {e}"
            ))),
        }
    }
    Ok(events)
}

fn push_value(value: Value, events: &mut Vec<InboundEvent>) {
    let channel = value.metadata.phone_number_id;
    for m in value.messages {
        let contact = value.contacts.iter().find(|c| {
            (m.from.is_some() && c.wa_id == m.from)
                || (m.from_user_id.is_some() && c.user_id == m.from_user_id)
        });
        events.push(InboundEvent::Message(message(m, &channel, contact)));
    }
    for s in value.statuses {
        events.push(status(s, &channel));
    }
}

fn message(m: Message, channel: &str, contact: Option<&Contact>) -> InboundMessage {
    let sender = Party {
        phone: m.from.or_else(|| contact.and_then(|c| c.wa_id.clone())),
        user_id: m
            .from_user_id
            .or_else(|| contact.and_then(|c| c.user_id.clone())),
        name: contact.and_then(|c| c.profile.as_ref()?.name.clone()),
    };
    let mut out = InboundMessage {
        provider_message_id: m.id,
        channel_address: channel.to_string(),
        sender,
        timestamp: m.timestamp.parse().unwrap_or_default(),
        kind: MessageKind::Unsupported,
        text: None,
        media: Vec::new(),
        location: None,
        interactive: None,
        reply_to: m.context.and_then(|c| c.id),
        referral: m.referral.map(|r| Referral {
            source_url: r.source_url,
            source_type: r.source_type,
            source_id: r.source_id,
            headline: r.headline,
            body: r.body,
            click_id: r.ctwa_clid,
        }),
        details: None,
    };
    let media = |kind, media: Option<Media>, out: &mut InboundMessage| {
        out.kind = kind;
        if let Some(media) = media {
            out.text = media.caption.clone();
            out.media.push(media.into());
        }
    };
    match m.kind.as_str() {
        "text" => {
            out.kind = MessageKind::Text;
            out.text = m.text.map(|t| t.body);
        }
        "image" => media(MessageKind::Image, m.image, &mut out),
        "audio" => media(MessageKind::Audio, m.audio, &mut out),
        "video" => media(MessageKind::Video, m.video, &mut out),
        "document" => media(MessageKind::Document, m.document, &mut out),
        "sticker" => media(MessageKind::Sticker, m.sticker, &mut out),
        "location" => {
            out.kind = MessageKind::Location;
            out.location = m.location.map(|l| Location {
                latitude: l.latitude,
                longitude: l.longitude,
                name: l.name,
                address: l.address,
            });
        }
        "contacts" => {
            out.kind = MessageKind::Contacts;
            out.details = m.contacts.map(|c| c.get().to_string());
        }
        "interactive" => {
            out.kind = MessageKind::Interactive;
            if let Some(i) = m.interactive {
                out.interactive = match i.kind.as_str() {
                    "button_reply" => i
                        .button_reply
                        .map(|c| InteractiveReply::ButtonReply(c.into())),
                    "list_reply" => i.list_reply.map(|c| InteractiveReply::ListReply(c.into())),
                    "nfm_reply" => i.nfm_reply.map(|n| {
                        InteractiveReply::FlowResponse(FlowResponse {
                            name: n.name,
                            body: n.body,
                            response_json: n.response_json,
                        })
                    }),
                    _ => None,
                };
                out.text = match &out.interactive {
                    Some(InteractiveReply::ButtonReply(c) | InteractiveReply::ListReply(c)) => {
                        Some(c.title.clone())
                    }
                    Some(InteractiveReply::FlowResponse(f)) => f.body.clone(),
                    None => None,
                };
            }
        }
        "button" => {
            out.kind = MessageKind::Button;
            if let Some(b) = m.button {
                out.text = b.text;
                out.details = b.payload;
            }
        }
        "reaction" => {
            out.kind = MessageKind::Reaction;
            if let Some(r) = m.reaction {
                out.text = r.emoji;
                out.reply_to = r.message_id;
            }
        }
        "order" => {
            out.kind = MessageKind::Order;
            out.details = m.order.map(|o| o.get().to_string());
        }
        "system" => {
            out.kind = MessageKind::System;
            out.text = m.system.and_then(|s| s.body);
        }
        "request_welcome" => out.kind = MessageKind::RequestWelcome,
        _ => {
            out.kind = MessageKind::Unsupported;
            out.details = m.errors.map(|e| e.get().to_string());
        }
    }
    out
}

fn status(s: Status, channel: &str) -> InboundEvent {
    let state = match s.status.as_str() {
        "sent" => DeliveryState::Sent,
        "delivered" => DeliveryState::Delivered,
        "read" => DeliveryState::Read,
        "played" => DeliveryState::Played,
        "failed" => DeliveryState::Failed,
        other => return InboundEvent::Ignored(format!("status {other:?} for {}", s.id)),
    };
    let error = s.errors.into_iter().next().map(|e| {
        let message = e.message.or(e.title).unwrap_or_default();
        errors::provider_error(
            e.code,
            &message,
            e.error_data.as_ref().and_then(|d| d.details.as_deref()),
        )
    });
    let recipient = if s.recipient_id.is_some() || s.recipient_user_id.is_some() {
        Some(Party {
            phone: s.recipient_id,
            user_id: s.recipient_user_id,
            name: None,
        })
    } else {
        None
    };
    InboundEvent::Status(StatusUpdate {
        provider_message_id: s.id,
        channel_address: channel.to_string(),
        recipient,
        state,
        timestamp: s.timestamp.parse().unwrap_or_default(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::switchyard::plugin::types::ErrorKind;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/meta/");

    fn fixture(name: &str) -> Vec<InboundEvent> {
        let body = std::fs::read(format!("{FIXTURES}{name}")).expect("fixture");
        parse(&body).expect("parses")
    }

    fn messages(events: &[InboundEvent]) -> Vec<&InboundMessage> {
        events
            .iter()
            .filter_map(|e| match e {
                InboundEvent::Message(m) => Some(m),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn text_message_with_contact_and_referral() {
        let events = fixture("bench_1500.json");
        let [InboundEvent::Message(m)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(m.channel_address, "106540352242922");
        assert_eq!(m.kind, MessageKind::Text);
        assert_eq!(m.sender.phone.as_deref(), Some("16505551234"));
        assert_eq!(m.sender.user_id.as_deref(), Some("US.13491208655302741918"));
        assert_eq!(m.sender.name.as_deref(), Some("Sheena Nelson"));
        assert_eq!(m.timestamp, 1749416383);
        assert!(m.text.as_deref().is_some_and(|t| t.contains("Lisbon")));
        assert!(
            m.reply_to
                .as_deref()
                .is_some_and(|r| r.starts_with("wamid."))
        );
        let referral = m.referral.as_ref().expect("referral");
        assert_eq!(referral.source_type.as_deref(), Some("ad"));
        assert_eq!(
            referral.click_id.as_deref(),
            Some("Afe4ihjS-6XyqBP1r5Nc0eE")
        );
    }

    #[test]
    fn every_entry_and_change_is_read() {
        let events = fixture("multi_entry.json");
        let msgs = messages(&events);
        let kinds: Vec<MessageKind> = msgs.iter().map(|m| m.kind).collect();
        assert_eq!(
            kinds,
            [
                MessageKind::Image,
                MessageKind::Interactive,
                MessageKind::Reaction,
                MessageKind::RequestWelcome,
                MessageKind::Unsupported,
                MessageKind::Location
            ]
        );
        assert_eq!(
            msgs[0].media[0].provider_media_id.as_deref(),
            Some("1003383421387256")
        );
        assert_eq!(msgs[0].text.as_deref(), Some("this one"));
        assert!(matches!(
            &msgs[1].interactive,
            Some(InteractiveReply::FlowResponse(f)) if f.response_json.contains("flow_token")
        ));
        assert_eq!(msgs[2].reply_to.as_deref(), Some("wamid.A1"));
        assert_eq!(msgs[3].sender.phone, None);
        assert_eq!(msgs[3].sender.user_id.as_deref(), Some("PT.998877"));
        assert!(
            msgs[4]
                .details
                .as_deref()
                .is_some_and(|d| d.contains("131051"))
        );
        assert_eq!(msgs[5].channel_address, "106540352242923");
        assert_eq!(msgs[5].location.as_ref().map(|l| l.latitude), Some(38.7223));
        let statuses: Vec<&StatusUpdate> = events
            .iter()
            .filter_map(|e| match e {
                InboundEvent::Status(s) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(statuses.len(), 2);
        assert_eq!(statuses[0].state, DeliveryState::Delivered);
        assert_eq!(statuses[1].state, DeliveryState::Read);
        assert!(events.iter().any(
            |e| matches!(e, InboundEvent::Ignored(d) if d == "field message_template_status_update")
        ));
    }

    #[test]
    fn failed_status_carries_the_classified_error() {
        let events = fixture("statuses_failed.json");
        let [InboundEvent::Status(s)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(s.state, DeliveryState::Failed);
        let e = s.error.as_ref().expect("error");
        assert_eq!(e.kind, ErrorKind::WindowClosed);
        assert_eq!(e.code, "131047");
        assert!(e.message.contains("24 hours"));
    }

    #[test]
    fn other_objects_are_ignored_and_garbage_is_an_error() {
        let events = parse(br#"{"object":"page","entry":[]}"#).expect("parses");
        assert!(matches!(events.as_slice(), [InboundEvent::Ignored(_)]));
        assert!(parse(b"not json").is_err());
        assert!(parse(b"{}").is_err());
        // A messages change without metadata is recorded, not an error Meta would retry.
        let odd = br#"{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{}}]}]}"#;
        assert!(matches!(
            parse(odd).expect("parses").as_slice(),
            [InboundEvent::Ignored(_)]
        ));
    }
}
