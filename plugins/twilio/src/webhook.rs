//! Twilio's webhook forms → events: incoming WhatsApp messages and message status callbacks.
//!
//! Both arrive as `application/x-www-form-urlencoded` POSTs. A status callback carries
//! `MessageStatus` (other than `received`); an incoming message carries `MessageSid`, `From`,
//! `To` and its content. Anything else is recorded as ignored. Twilio gives no timestamp, so
//! events carry 0 and the host uses the time it received them.

use crate::errors;
use crate::form::Form;
use switchyard_sdk::types::{
    Choice, DeliveryState, HttpRequest, InboundEvent, InboundMessage, InteractiveReply, Location,
    MediaRef, MessageKind, Party, StatusUpdate,
};

/// Twilio attaches at most ten media to one message.
pub const MAX_MEDIA: usize = 10;

/// The events in one webhook request.
pub fn parse(req: &HttpRequest) -> Result<Vec<InboundEvent>, String> {
    let json = req
        .headers
        .iter()
        .any(|(k, v)| k == "content-type" && v.to_ascii_lowercase().contains("json"));
    if json {
        return Ok(vec![InboundEvent::Ignored(
            "a JSON-bodied Twilio callback (not a message or status)".into(),
        )]);
    }
    let form = Form::parse(&req.body);
    parse_form(&form).map(|e| vec![e])
}

/// The event one form describes.
pub fn parse_form(form: &Form) -> Result<InboundEvent, String> {
    let sid = form
        .get("MessageSid")
        .or_else(|| form.get("SmsMessageSid"))
        .or_else(|| form.get("SmsSid"));
    match form.get("MessageStatus").or_else(|| form.get("SmsStatus")) {
        Some(status) if !status.eq_ignore_ascii_case("received") => {
            let sid = sid.ok_or("a status callback without MessageSid")?;
            return Ok(status_update(form, sid, status));
        }
        _ => {}
    }
    match (sid, form.get("From"), form.get("To")) {
        (Some(sid), Some(from), Some(to)) => {
            Ok(InboundEvent::Message(message(form, sid, from, to)))
        }
        (None, None, None) => Ok(InboundEvent::Ignored(
            "a Twilio request with no message".into(),
        )),
        _ => Err("an incoming message without MessageSid, From or To".into()),
    }
}

/// A party from a `whatsapp:+E164` or `whatsapp:<business-scoped id>` address, the `WaId`
/// (digits) and `ExternalUserId` (`whatsapp:<id>`) when given.
pub fn party(
    address: &str,
    wa_id: Option<&str>,
    external: Option<&str>,
    name: Option<&str>,
) -> Party {
    let bare = address.trim();
    let bare = bare.strip_prefix("whatsapp:").unwrap_or(bare);
    let (phone_from_address, id_from_address) = match bare.strip_prefix('+') {
        Some(digits) => (Some(digits.to_string()), None),
        None if !bare.is_empty() => (None, Some(bare.to_string())),
        None => (None, None),
    };
    let phone = wa_id
        .map(|w| w.trim().trim_start_matches('+').to_string())
        .filter(|w| !w.is_empty())
        .or(phone_from_address);
    let user_id = external
        .map(|e| {
            let e = e.trim();
            e.strip_prefix("whatsapp:").unwrap_or(e).to_string()
        })
        .filter(|e| !e.is_empty())
        .or(id_from_address);
    Party {
        phone,
        user_id,
        name: name.map(str::to_string),
    }
}

fn state_of(status: &str) -> Option<DeliveryState> {
    Some(match status.to_ascii_lowercase().as_str() {
        "accepted" | "scheduled" | "queued" | "sending" => DeliveryState::Accepted,
        "sent" => DeliveryState::Sent,
        "delivered" => DeliveryState::Delivered,
        "read" => DeliveryState::Read,
        "undelivered" | "failed" => DeliveryState::Failed,
        _ => return None,
    })
}

fn status_update(form: &Form, sid: &str, status: &str) -> InboundEvent {
    let Some(state) = state_of(status) else {
        return InboundEvent::Ignored(format!("message status {status:?}"));
    };
    let error = form
        .get("ErrorCode")
        .filter(|c| c.trim() != "0")
        .map(|code| {
            errors::provider_error(code.trim(), form.get("ErrorMessage").unwrap_or_default())
        });
    let error = match (state, error) {
        (DeliveryState::Failed, None) => Some(errors::provider_error(
            "unknown",
            &format!("Twilio reported the message {status}"),
        )),
        (_, e) => e,
    };
    InboundEvent::Status(StatusUpdate {
        provider_message_id: sid.to_string(),
        channel_address: form.get("From").unwrap_or_default().trim().to_string(),
        recipient: form
            .get("To")
            .map(|to| party(to, None, form.get("ExternalUserId"), None)),
        state,
        timestamp: 0,
        error,
        // Twilio's status callbacks carry no price: it is on the Message resource, later.
        pricing: None,
    })
}

fn kind_of_mime(mime: Option<&str>) -> MessageKind {
    let mime = mime.unwrap_or_default().to_ascii_lowercase();
    if mime == "image/webp" {
        MessageKind::Sticker
    } else if mime.starts_with("image/") {
        MessageKind::Image
    } else if mime.starts_with("video/") {
        MessageKind::Video
    } else if mime.starts_with("audio/") {
        MessageKind::Audio
    } else {
        MessageKind::Document
    }
}

fn message(form: &Form, sid: &str, from: &str, to: &str) -> InboundMessage {
    let num_media = form
        .get("NumMedia")
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_MEDIA);
    let body = form.string("Body");
    let media: Vec<MediaRef> = (0..num_media)
        .filter_map(|i| {
            let url = form.string(&format!("MediaUrl{i}"))?;
            Some(MediaRef {
                provider_media_id: None,
                url: Some(url),
                mime_type: form.string(&format!("MediaContentType{i}")),
                sha256: None,
                caption: if i == 0 { body.clone() } else { None },
                filename: None,
            })
        })
        .collect();
    let location = match (
        form.get("Latitude")
            .and_then(|v| v.trim().parse::<f64>().ok()),
        form.get("Longitude")
            .and_then(|v| v.trim().parse::<f64>().ok()),
    ) {
        (Some(latitude), Some(longitude)) => Some(Location {
            latitude,
            longitude,
            name: form.string("Label"),
            address: form.string("Address"),
        }),
        _ => None,
    };
    let button_text = form.string("ButtonText");
    let button_payload = form.string("ButtonPayload");
    let message_type = form.get("MessageType").map(str::to_ascii_lowercase);

    let mut kind = if location.is_some() {
        MessageKind::Location
    } else if button_text.is_some() || button_payload.is_some() {
        MessageKind::Button
    } else if let Some(first) = media.first() {
        kind_of_mime(first.mime_type.as_deref())
    } else {
        MessageKind::Text
    };
    let mut interactive = None;
    let mut details = None;
    let mut text = body.clone();
    match message_type.as_deref() {
        Some("interactive") if button_text.is_some() || button_payload.is_some() => {
            kind = MessageKind::Interactive;
            interactive = Some(InteractiveReply::ButtonReply(Choice {
                id: button_payload.clone().unwrap_or_default(),
                title: button_text.clone().unwrap_or_default(),
                description: None,
            }));
            text = button_text.clone().or(body);
        }
        Some("contacts") => kind = MessageKind::Contacts,
        Some("reaction") => kind = MessageKind::Reaction,
        Some("order") => kind = MessageKind::Order,
        Some("unsupported") => kind = MessageKind::Unsupported,
        _ => {
            if kind == MessageKind::Button {
                text = button_text.clone().or(body);
                details = Some(
                    serde_json::json!({"text": button_text, "payload": button_payload}).to_string(),
                );
            }
        }
    }
    if kind == MessageKind::Location {
        text = None;
    }
    InboundMessage {
        provider_message_id: sid.to_string(),
        channel_address: to.trim().to_string(),
        sender: party(
            from,
            form.get("WaId"),
            form.get("ExternalUserId"),
            form.get("ProfileName"),
        ),
        timestamp: 0,
        kind,
        text,
        media,
        location,
        interactive,
        reply_to: form.string("OriginalRepliedMessageSid"),
        referral: None,
        details,
        // Twilio reports no edits of WhatsApp messages.
        edits: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::{body, encode};
    use switchyard_sdk::types::ErrorKind;

    fn form(fields: &[(&str, &str)]) -> Form {
        let pairs: Vec<(&str, String)> = fields.iter().map(|(k, v)| (*k, v.to_string())).collect();
        Form::parse(body(&pairs).as_bytes())
    }

    const BASE: [(&str, &str); 9] = [
        ("SmsMessageSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f"),
        ("MessageSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f"),
        ("SmsSid", "SM1f0e8ae6ade43cb3c0ce4525424e404f"),
        ("SmsStatus", "received"),
        ("AccountSid", "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"),
        ("From", "whatsapp:+14017122661"),
        ("To", "whatsapp:+14155238886"),
        ("WaId", "14017122661"),
        ("ProfileName", "Ada"),
    ];

    fn inbound(extra: &[(&str, &str)]) -> InboundMessage {
        let mut fields = BASE.to_vec();
        fields.extend_from_slice(extra);
        match parse_form(&form(&fields)).expect("parses") {
            InboundEvent::Message(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_message() {
        let m = inbound(&[
            ("Body", "Hello 👋 & bye"),
            ("NumMedia", "0"),
            ("MessageType", "text"),
        ]);
        assert_eq!(m.provider_message_id, "SM1f0e8ae6ade43cb3c0ce4525424e404f");
        assert_eq!(m.channel_address, "whatsapp:+14155238886");
        assert_eq!(m.sender.phone.as_deref(), Some("14017122661"));
        assert_eq!(m.sender.user_id, None);
        assert_eq!(m.sender.name.as_deref(), Some("Ada"));
        assert_eq!(m.kind, MessageKind::Text);
        assert_eq!(m.text.as_deref(), Some("Hello 👋 & bye"));
        assert_eq!(m.timestamp, 0);
        assert!(m.media.is_empty() && m.location.is_none() && m.reply_to.is_none());
    }

    #[test]
    fn media_messages() {
        let m = inbound(&[
            ("Body", "two pictures"),
            ("NumMedia", "2"),
            (
                "MediaUrl0",
                "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
            ),
            ("MediaContentType0", "image/jpeg"),
            (
                "MediaUrl1",
                "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME2",
            ),
            ("MediaContentType1", "application/pdf"),
        ]);
        assert_eq!(m.kind, MessageKind::Image);
        assert_eq!(m.media.len(), 2);
        assert_eq!(
            m.media[0].url.as_deref(),
            Some("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1")
        );
        assert_eq!(m.media[0].mime_type.as_deref(), Some("image/jpeg"));
        assert_eq!(m.media[0].caption.as_deref(), Some("two pictures"));
        assert_eq!(m.media[1].mime_type.as_deref(), Some("application/pdf"));
        assert_eq!(m.media[1].caption, None);
        for (mime, kind) in [
            ("audio/ogg", MessageKind::Audio),
            ("video/mp4", MessageKind::Video),
            ("image/webp", MessageKind::Sticker),
            ("application/pdf", MessageKind::Document),
        ] {
            let m = inbound(&[
                ("NumMedia", "1"),
                ("MediaUrl0", "https://x/1"),
                ("MediaContentType0", mime),
            ]);
            assert_eq!(m.kind, kind, "{mime}");
            assert_eq!(m.text, None);
        }
        // NumMedia larger than what is there, or than ten, is capped to what exists.
        let m = inbound(&[("NumMedia", "99"), ("MediaUrl0", "https://x/1")]);
        assert_eq!(m.media.len(), 1);
    }

    #[test]
    fn location_button_interactive_and_reply() {
        let m = inbound(&[
            ("Latitude", "52.3676"),
            ("Longitude", "-4.9041"),
            ("Address", "Dam 1, Amsterdam"),
            ("Label", "Office"),
            ("MessageType", "location"),
        ]);
        assert_eq!(m.kind, MessageKind::Location);
        let l = m.location.expect("location");
        assert_eq!((l.latitude, l.longitude), (52.3676, -4.9041));
        assert_eq!(l.name.as_deref(), Some("Office"));
        assert_eq!(l.address.as_deref(), Some("Dam 1, Amsterdam"));

        let m = inbound(&[
            ("Body", "Stop promotions"),
            ("ButtonText", "Stop promotions"),
            ("ButtonPayload", "unsubscribe"),
            ("MessageType", "button"),
            (
                "OriginalRepliedMessageSid",
                "MM0123456789abcdef0123456789abcdef",
            ),
        ]);
        assert_eq!(m.kind, MessageKind::Button);
        assert_eq!(m.text.as_deref(), Some("Stop promotions"));
        assert!(
            m.details
                .as_deref()
                .is_some_and(|d| d.contains("\"payload\":\"unsubscribe\""))
        );
        assert_eq!(
            m.reply_to.as_deref(),
            Some("MM0123456789abcdef0123456789abcdef")
        );

        let m = inbound(&[
            ("ButtonText", "Yes"),
            ("ButtonPayload", "yes-1"),
            ("MessageType", "interactive"),
        ]);
        assert_eq!(m.kind, MessageKind::Interactive);
        match m.interactive {
            Some(InteractiveReply::ButtonReply(c)) => {
                assert_eq!((c.id.as_str(), c.title.as_str()), ("yes-1", "Yes"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn business_scoped_ids_are_kept_never_rejected() {
        let mut fields: Vec<(&str, &str)> = BASE
            .iter()
            .filter(|(k, _)| !matches!(*k, "From" | "WaId"))
            .copied()
            .collect();
        fields.extend([
            ("From", "whatsapp:US.13491208655302741918"),
            ("ExternalUserId", "whatsapp:US.13491208655302741918"),
            ("Body", "hi"),
        ]);
        match parse_form(&form(&fields)).expect("parses") {
            InboundEvent::Message(m) => {
                assert_eq!(m.sender.phone, None);
                assert_eq!(m.sender.user_id.as_deref(), Some("US.13491208655302741918"));
            }
            other => panic!("{other:?}"),
        }
        // Both a phone number and the business-scoped id.
        let m = inbound(&[("ExternalUserId", "whatsapp:US.1349"), ("Body", "hi")]);
        assert_eq!(m.sender.phone.as_deref(), Some("14017122661"));
        assert_eq!(m.sender.user_id.as_deref(), Some("US.1349"));
    }

    fn status(fields: &[(&str, &str)]) -> StatusUpdate {
        let mut all = vec![
            ("MessageSid", "SM5a1b"),
            ("SmsSid", "SM5a1b"),
            ("AccountSid", "AC1"),
            ("From", "whatsapp:+14155238886"),
            ("To", "whatsapp:+14017122661"),
            ("ChannelPrefix", "whatsapp"),
        ];
        all.extend_from_slice(fields);
        match parse_form(&form(&all)).expect("parses") {
            InboundEvent::Status(s) => s,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn status_callbacks() {
        for (st, state) in [
            ("queued", DeliveryState::Accepted),
            ("sending", DeliveryState::Accepted),
            ("sent", DeliveryState::Sent),
            ("delivered", DeliveryState::Delivered),
            ("read", DeliveryState::Read),
        ] {
            let s = status(&[("MessageStatus", st), ("SmsStatus", st)]);
            assert_eq!(s.state, state, "{st}");
            assert_eq!(s.provider_message_id, "SM5a1b");
            assert_eq!(s.channel_address, "whatsapp:+14155238886");
            assert_eq!(
                s.recipient.as_ref().and_then(|r| r.phone.as_deref()),
                Some("14017122661")
            );
            assert!(s.error.is_none());
        }
        let s = status(&[
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "63016"),
            ("ErrorMessage", "Outside the allowed window"),
        ]);
        assert_eq!(s.state, DeliveryState::Failed);
        let e = s.error.expect("error");
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::WindowClosed, "63016")
        );
        assert!(e.message.contains("Outside"));
        let s = status(&[("MessageStatus", "failed"), ("ErrorCode", "63024")]);
        let e = s.error.expect("error");
        assert_eq!(e.kind, ErrorKind::InvalidRecipient);
        assert!(!e.message.is_empty());
        let s = status(&[("MessageStatus", "failed")]);
        assert!(s.error.is_some());
        assert!(matches!(
            parse_form(&form(&[
                ("MessageSid", "SM1"),
                ("MessageStatus", "partially_delivered")
            ])),
            Ok(InboundEvent::Ignored(_))
        ));
    }

    #[test]
    fn other_requests() {
        assert!(matches!(
            parse_form(&form(&[("Foo", "bar")])),
            Ok(InboundEvent::Ignored(_))
        ));
        assert!(parse_form(&form(&[("MessageSid", "SM1"), ("From", "whatsapp:+1")])).is_err());
        assert!(parse_form(&form(&[("MessageStatus", "sent")])).is_err());
        let json = HttpRequest {
            method: "POST".into(),
            url: "https://h/x?bodySHA256=00".into(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: b"{}".to_vec(),
        };
        assert!(matches!(
            parse(&json).as_deref(),
            Ok([InboundEvent::Ignored(_)])
        ));
        let _ = encode("x");
    }
}
