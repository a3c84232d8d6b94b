//! Outbound messages → the Cloud API's `POST /{version}/{phone-number-id}/messages` body.
//!
//! Reference: <https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/send-messages>.

use serde_json::{Map, Value, json};

use switchyard_sdk::types::{Content, MediaRef, OutboundMessage};

/// The default Graph API version (configurable per connection with `graph_version`).
pub const DEFAULT_GRAPH_VERSION: &str = "v26.0";

/// The request body for one message, or why it cannot be sent.
pub fn body(msg: &OutboundMessage) -> Result<Value, String> {
    let mut body = Map::new();
    body.insert("messaging_product".into(), json!("whatsapp"));
    body.insert("recipient_type".into(), json!("individual"));
    match (&msg.to.phone, &msg.to.user_id) {
        (Some(phone), _) if !phone.trim().is_empty() => {
            // Meta wants digits with the country code; a leading `+` is tolerated but dropped.
            body.insert("to".into(), json!(phone.trim().trim_start_matches('+')));
        }
        // A business-scoped user id (BSUID) goes in `recipient` when there is no phone number.
        (_, Some(user_id)) if !user_id.trim().is_empty() => {
            body.insert("recipient".into(), json!(user_id.trim()));
        }
        _ => return Err("the recipient has neither a phone number nor a user id".into()),
    }
    let kind = match &msg.content {
        Content::Text(text) => {
            if text.is_empty() {
                return Err("text messages need a body".into());
            }
            let preview = text.contains("https://") || text.contains("http://");
            body.insert(
                "text".into(),
                json!({ "preview_url": preview, "body": text }),
            );
            "text"
        }
        Content::Template(t) => {
            if t.name.is_empty() || t.language.is_empty() {
                return Err("templates need a name and a language".into());
            }
            let mut template = Map::new();
            template.insert("name".into(), json!(t.name));
            template.insert("language".into(), json!({ "code": t.language }));
            if !t.parameters.is_empty() {
                let parameters: Vec<Value> = t
                    .parameters
                    .iter()
                    .map(|p| json!({ "type": "text", "text": p }))
                    .collect();
                template.insert(
                    "components".into(),
                    json!([{ "type": "body", "parameters": parameters }]),
                );
            }
            body.insert("template".into(), Value::Object(template));
            "template"
        }
        Content::Media(media) => {
            let kind = media_type(media);
            let mut object = Map::new();
            match (&media.provider_media_id, &media.url) {
                (Some(id), _) if !id.is_empty() => object.insert("id".into(), json!(id)),
                (_, Some(link)) if !link.is_empty() => object.insert("link".into(), json!(link)),
                _ => return Err("media has neither an id nor a link".into()),
            };
            // Captions exist for images, videos and documents; file names for documents.
            if let (Some(caption), "image" | "video" | "document") = (&media.caption, kind) {
                object.insert("caption".into(), json!(caption));
            }
            if let (Some(name), "document") = (&media.filename, kind) {
                object.insert("filename".into(), json!(name));
            }
            body.insert(kind.into(), Value::Object(object));
            kind
        }
        Content::Reaction(r) => {
            body.insert(
                "reaction".into(),
                json!({ "message_id": r.message_id, "emoji": r.emoji }),
            );
            "reaction"
        }
    };
    body.insert("type".into(), json!(kind));
    // A reaction names its message itself; every other type can quote the one it replies to.
    if let (Some(id), false) = (&msg.reply_to, kind == "reaction") {
        body.insert("context".into(), json!({ "message_id": id }));
    }
    Ok(Value::Object(body))
}

/// The Cloud API message type for a piece of media: from its MIME type, else its name or link.
pub fn media_type(media: &MediaRef) -> &'static str {
    let mime = media
        .mime_type
        .as_deref()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !mime.is_empty() {
        return if mime == "image/webp" {
            // WhatsApp sends WebP only as stickers; images are JPEG or PNG.
            "sticker"
        } else if mime.starts_with("image/") {
            "image"
        } else if mime.starts_with("audio/") {
            "audio"
        } else if mime.starts_with("video/") {
            "video"
        } else {
            "document"
        };
    }
    let name = media
        .filename
        .as_deref()
        .or(media.url.as_deref())
        .unwrap_or("");
    let name = name.split(['?', '#']).next().unwrap_or("");
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" | "jpeg" | "png" => "image",
        "webp" => "sticker",
        "aac" | "amr" | "mp3" | "m4a" | "ogg" | "opus" => "audio",
        "mp4" | "3gp" | "3gpp" => "video",
        _ => "document",
    }
}

/// The message id (wamid) in a successful send response: `messages[0].id`.
pub fn message_id(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v.get("messages")?
        .get(0)?
        .get("id")?
        .as_str()
        .filter(|id| !id.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::types::{Party, Reaction, Template, TemplateCategory};

    fn to_phone(content: Content) -> OutboundMessage {
        OutboundMessage {
            to: Party {
                phone: Some("+16505551234".into()),
                user_id: Some("US.13491208655302741918".into()),
                name: None,
            },
            content,
            reply_to: None,
            idempotency_key: "snd_1".into(),
        }
    }

    fn media(id: Option<&str>, url: Option<&str>, mime: Option<&str>) -> MediaRef {
        MediaRef {
            provider_media_id: id.map(Into::into),
            url: url.map(Into::into),
            mime_type: mime.map(Into::into),
            sha256: None,
            caption: Some("Here it is".into()),
            filename: Some("catalog.pdf".into()),
        }
    }

    #[test]
    fn text_with_reply_context_and_preview() {
        let mut msg = to_phone(Content::Text("See https://example.com/dress".into()));
        msg.reply_to = Some("wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQ".into());
        let b = body(&msg).expect("body");
        assert_eq!(
            b,
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": "16505551234",
                "type": "text",
                "text": { "preview_url": true, "body": "See https://example.com/dress" },
                "context": { "message_id": "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQ" }
            })
        );
        let b = body(&to_phone(Content::Text("plain".into()))).expect("body");
        assert_eq!(b["text"]["preview_url"], false);
        assert!(b.get("context").is_none() && b.get("recipient").is_none());
        assert!(body(&to_phone(Content::Text(String::new()))).is_err());
    }

    #[test]
    fn business_scoped_ids_go_in_recipient() {
        let mut msg = to_phone(Content::Text("hi".into()));
        msg.to.phone = None;
        let b = body(&msg).expect("body");
        assert_eq!(b["recipient"], "US.13491208655302741918");
        assert!(b.get("to").is_none());
        msg.to.phone = Some("  ".into());
        assert_eq!(
            body(&msg).expect("body")["recipient"],
            "US.13491208655302741918"
        );
        msg.to.user_id = None;
        assert!(body(&msg).is_err());
    }

    #[test]
    fn template_with_body_parameters() {
        let b = body(&to_phone(Content::Template(Template {
            name: "order_update".into(),
            language: "en_US".into(),
            category: TemplateCategory::Utility,
            parameters: vec!["Sheena".into(), "48213".into()],
        })))
        .expect("body");
        assert_eq!(b["type"], "template");
        assert_eq!(
            b["template"],
            json!({
                "name": "order_update",
                "language": { "code": "en_US" },
                "components": [{ "type": "body", "parameters": [
                    { "type": "text", "text": "Sheena" },
                    { "type": "text", "text": "48213" }
                ]}]
            })
        );
        let b = body(&to_phone(Content::Template(Template {
            name: "hello_world".into(),
            language: "en_US".into(),
            category: TemplateCategory::Marketing,
            parameters: Vec::new(),
        })))
        .expect("body");
        assert!(b["template"].get("components").is_none());
    }

    #[test]
    fn media_by_id_or_link_with_type_from_mime() {
        let b = body(&to_phone(Content::Media(media(
            Some("1013859600285441"),
            Some("https://cdn.example/a.png"),
            Some("image/jpeg"),
        ))))
        .expect("body");
        assert_eq!(b["type"], "image");
        assert_eq!(
            b["image"],
            json!({ "id": "1013859600285441", "caption": "Here it is" })
        );

        let b = body(&to_phone(Content::Media(media(
            None,
            Some("https://cdn.example/catalog.pdf"),
            Some("application/pdf"),
        ))))
        .expect("body");
        assert_eq!(
            b["document"],
            json!({ "link": "https://cdn.example/catalog.pdf", "caption": "Here it is", "filename": "catalog.pdf" })
        );

        let b = body(&to_phone(Content::Media(media(
            Some("1"),
            None,
            Some("audio/ogg"),
        ))))
        .expect("body");
        assert_eq!(b["type"], "audio");
        assert_eq!(b["audio"], json!({ "id": "1" }), "audio has no caption");
        let b = body(&to_phone(Content::Media(media(
            Some("2"),
            None,
            Some("image/webp"),
        ))))
        .expect("body");
        assert_eq!(
            (b["type"].as_str(), &b["sticker"]),
            (Some("sticker"), &json!({ "id": "2" }))
        );
        let b = body(&to_phone(Content::Media(media(
            Some("3"),
            None,
            Some("video/mp4"),
        ))))
        .expect("body");
        assert_eq!(b["video"]["caption"], "Here it is");
        assert!(body(&to_phone(Content::Media(media(None, None, None)))).is_err());
    }

    #[test]
    fn media_type_without_mime_uses_the_name() {
        let mut m = media(None, Some("https://cdn.example/x.JPG?v=2"), None);
        m.filename = None;
        assert_eq!(media_type(&m), "image");
        m.url = Some("https://cdn.example/clip.mp4".into());
        assert_eq!(media_type(&m), "video");
        m.url = Some("https://cdn.example/noext".into());
        assert_eq!(media_type(&m), "document");
        m.filename = Some("voice.opus".into());
        assert_eq!(media_type(&m), "audio");
    }

    #[test]
    fn reaction_has_no_context() {
        let mut msg = to_phone(Content::Reaction(Reaction {
            message_id: "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQ".into(),
            emoji: "\u{1f44d}".into(),
        }));
        msg.reply_to = Some("wamid.other".into());
        let b = body(&msg).expect("body");
        assert_eq!(b["type"], "reaction");
        assert_eq!(
            b["reaction"],
            json!({ "message_id": "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQ", "emoji": "\u{1f44d}" })
        );
        assert!(b.get("context").is_none());
    }

    #[test]
    fn message_ids() {
        let ok = br#"{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI3"}]}"#;
        assert_eq!(
            message_id(ok).as_deref(),
            Some("wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI3")
        );
        for bad in [
            &b"{}"[..],
            b"[]",
            b"x",
            br#"{"messages":[]}"#,
            br#"{"messages":[{"id":""}]}"#,
            br#"{"messages":{"id":"x"}}"#,
        ] {
            assert_eq!(message_id(bad), None);
        }
    }
}
