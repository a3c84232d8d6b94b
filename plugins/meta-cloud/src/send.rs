//! Outbound messages → the Cloud API's `POST /{version}/{phone-number-id}/messages` body.

use serde_json::{Value, json};

use crate::bindings::switchyard::plugin::types::{Content, MediaRef, OutboundMessage};

/// The default Graph API version (configurable per connection with `graph_version`).
pub const DEFAULT_GRAPH_VERSION: &str = "v26.0";

/// The request body for one message, or why it cannot be sent.
pub fn body(msg: &OutboundMessage) -> Result<Value, String> {
    let mut body = json!({ "messaging_product": "whatsapp", "recipient_type": "individual" });
    match (&msg.to.phone, &msg.to.user_id) {
        (Some(phone), _) => body["to"] = json!(phone),
        // A business-scoped user id goes in `recipient` when there is no phone number.
        (None, Some(user_id)) => body["recipient"] = json!(user_id),
        (None, None) => return Err("recipient has neither a phone number nor a user id".into()),
    }
    if let Some(id) = &msg.reply_to {
        body["context"] = json!({ "message_id": id });
    }
    match &msg.content {
        Content::Text(text) => {
            body["type"] = json!("text");
            body["text"] = json!({ "preview_url": text.contains("https://"), "body": text });
        }
        Content::Template(t) => {
            body["type"] = json!("template");
            let mut template = json!({ "name": t.name, "language": { "code": t.language } });
            if !t.parameters.is_empty() {
                let parameters: Vec<Value> = t
                    .parameters
                    .iter()
                    .map(|p| json!({ "type": "text", "text": p }))
                    .collect();
                template["components"] = json!([{ "type": "body", "parameters": parameters }]);
            }
            body["template"] = template;
        }
        Content::Media(media) => {
            let kind = media_type(media);
            let mut object = match (&media.provider_media_id, &media.url) {
                (Some(id), _) => json!({ "id": id }),
                (None, Some(link)) => json!({ "link": link }),
                (None, None) => return Err("media has neither an id nor a link".into()),
            };
            if let (Some(caption), "image" | "video" | "document") = (&media.caption, kind) {
                object["caption"] = json!(caption);
            }
            if let (Some(name), "document") = (&media.filename, kind) {
                object["filename"] = json!(name);
            }
            body["type"] = json!(kind);
            body[kind] = object;
        }
        Content::Reaction(r) => {
            body["type"] = json!("reaction");
            body["reaction"] = json!({ "message_id": r.message_id, "emoji": r.emoji });
        }
    }
    Ok(body)
}

/// The Cloud API message type for a piece of media, from its MIME type.
fn media_type(media: &MediaRef) -> &'static str {
    let mime = media.mime_type.as_deref().unwrap_or("");
    if mime == "image/webp" {
        "sticker"
    } else if mime.starts_with("image/") {
        "image"
    } else if mime.starts_with("audio/") {
        "audio"
    } else if mime.starts_with("video/") {
        "video"
    } else {
        "document"
    }
}

/// The message id in a successful send response.
pub fn message_id(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    v["messages"][0]["id"].as_str().map(str::to_string)
}
