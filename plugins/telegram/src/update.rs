//! Telegram's webhook updates → events (<https://core.telegram.org/bots/api#update>).
//!
//! Each webhook request carries one `Update`: an `update_id` and exactly one of its optional
//! fields. Private-chat `message`, `edited_message` and `callback_query` become messages; every
//! other update, and anything from a group, supergroup or channel, is recorded as ignored.
//! Updates do not name the bot they are for: the connection whose endpoint received the request
//! gives the channel address.
//!
//! Ids: a message is `"{chat_id}:{message_id}"` (message ids are unique per chat only); an edit
//! is `"{chat_id}:{message_id}:edit:{edit_date}"`; a button press is `"cbq:{callback_query.id}"`.

use serde::Deserialize;
use serde_json::Value;

use switchyard_sdk::types::{
    Choice, HttpRequest, InboundEvent, InboundMessage, InteractiveReply, Location, MediaRef,
    MessageKind, Party,
};

/// A chat (<https://core.telegram.org/bots/api#chat>).
#[derive(Deserialize)]
struct Chat {
    /// Up to 52 significant bits: i64.
    id: i64,
    #[serde(rename = "type", default)]
    kind: String,
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
}

/// A user (<https://core.telegram.org/bots/api#user>).
#[derive(Deserialize)]
struct User {
    id: i64,
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
}

/// The message a message replies to; only its id is used.
#[derive(Deserialize)]
struct Replied {
    message_id: i64,
}

/// A file: `PhotoSize`, `Document`, `Voice`, `Audio`, `Video`, `Animation`, `VideoNote`.
#[derive(Deserialize)]
struct File {
    file_id: String,
    mime_type: Option<String>,
    file_name: Option<String>,
}

/// A sticker: static (WEBP), animated (TGS) or video (WEBM).
#[derive(Deserialize)]
struct Sticker {
    file_id: String,
    emoji: Option<String>,
    #[serde(default)]
    is_animated: bool,
    #[serde(default)]
    is_video: bool,
}

/// A point on the map.
#[derive(Deserialize)]
struct Point {
    latitude: f64,
    longitude: f64,
}

/// A venue: a point with a name and an address.
#[derive(Deserialize)]
struct Venue {
    location: Point,
    title: Option<String>,
    address: Option<String>,
}

/// A message (<https://core.telegram.org/bots/api#message>), the parts this connector reads.
#[derive(Deserialize)]
struct Message {
    message_id: i64,
    #[serde(default)]
    date: u64,
    edit_date: Option<u64>,
    chat: Chat,
    from: Option<User>,
    reply_to_message: Option<Replied>,
    text: Option<String>,
    caption: Option<String>,
    photo: Option<Vec<File>>,
    document: Option<File>,
    animation: Option<File>,
    voice: Option<File>,
    audio: Option<File>,
    video: Option<File>,
    video_note: Option<File>,
    sticker: Option<Sticker>,
    location: Option<Point>,
    venue: Option<Venue>,
    contact: Option<Value>,
}

/// The message a callback button was attached to; `date` is 0 when the message is no longer
/// accessible to the bot.
#[derive(Deserialize)]
struct ButtonMessage {
    message_id: i64,
    #[serde(default)]
    date: u64,
    chat: Chat,
}

/// A press on an inline keyboard button (<https://core.telegram.org/bots/api#callbackquery>).
#[derive(Deserialize)]
struct CallbackQuery {
    id: String,
    from: User,
    message: Option<ButtonMessage>,
    data: Option<String>,
}

/// Keys of a message that describe its envelope rather than its content: they do not make a
/// message unsupported, and are left out when naming the content of one that is.
const ENVELOPE: &[&str] = &[
    "message_id",
    "message_thread_id",
    "from",
    "sender_chat",
    "sender_boost_count",
    "sender_business_bot",
    "date",
    "edit_date",
    "business_connection_id",
    "chat",
    "forward_origin",
    "is_topic_message",
    "is_automatic_forward",
    "reply_to_message",
    "external_reply",
    "quote",
    "reply_to_story",
    "via_bot",
    "has_protected_content",
    "is_from_offline",
    "media_group_id",
    "author_signature",
    "entities",
    "caption",
    "caption_entities",
    "show_caption_above_media",
    "has_media_spoiler",
    "link_preview_options",
    "effect_id",
    "reply_markup",
];

/// The events in one webhook request; `connection` gives the channel address and is required.
pub fn parse(
    req: &HttpRequest,
    channel_address: Option<&str>,
) -> Result<Vec<InboundEvent>, String> {
    let address = channel_address
        .ok_or("a Telegram update needs the connection whose endpoint received it")?;
    parse_update(&req.body, address).map(|e| vec![e])
}

/// The event one `Update` body describes.
pub fn parse_update(body: &[u8], channel_address: &str) -> Result<InboundEvent, String> {
    let update: serde_json::Map<String, Value> = serde_json::from_slice(body)
        .map_err(|e| format!("the update is not a JSON object: {e}"))?;
    let Some((kind, value)) = update.iter().find(|(k, _)| k.as_str() != "update_id") else {
        return Ok(InboundEvent::Ignored("an empty update".into()));
    };
    match kind.as_str() {
        "message" | "edited_message" => {
            let m = Message::deserialize(value).map_err(|e| format!("a malformed {kind}: {e}"))?;
            if m.chat.kind != "private" {
                let what = if kind == "message" {
                    "message"
                } else {
                    "edited message"
                };
                return Ok(InboundEvent::Ignored(format!(
                    "{} {what} ignored",
                    chat_kind(&m.chat.kind)
                )));
            }
            let details = content_keys(value);
            Ok(InboundEvent::Message(message(
                &m,
                kind == "edited_message",
                channel_address,
                details,
            )))
        }
        "callback_query" => {
            let q = CallbackQuery::deserialize(value)
                .map_err(|e| format!("a malformed callback_query: {e}"))?;
            Ok(button_press(q, channel_address))
        }
        "channel_post" | "edited_channel_post" => Ok(InboundEvent::Ignored(format!(
            "channel post ignored ({kind})"
        ))),
        other => Ok(InboundEvent::Ignored(format!(
            "update type {other} ignored"
        ))),
    }
}

/// A short name for a chat type in an ignored event's description.
fn chat_kind(kind: &str) -> &str {
    match kind {
        "group" => "group",
        "supergroup" => "supergroup",
        "channel" => "channel",
        _ => "non-private chat",
    }
}

/// `first_name last_name`, trimmed; else the username.
fn display_name(first: Option<&str>, last: Option<&str>, username: Option<&str>) -> Option<String> {
    let full = format!("{} {}", first.unwrap_or_default(), last.unwrap_or_default());
    let full = full.trim();
    if !full.is_empty() {
        return Some(full.to_string());
    }
    username
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
}

fn user_name(u: &User) -> Option<String> {
    display_name(
        u.first_name.as_deref(),
        u.last_name.as_deref(),
        u.username.as_deref(),
    )
}

/// The sender of a private-chat message: the chat (its id is the user's), named from `from`,
/// else from the chat.
fn sender(m: &Message) -> Party {
    let name = m.from.as_ref().and_then(user_name).or_else(|| {
        display_name(
            m.chat.first_name.as_deref(),
            m.chat.last_name.as_deref(),
            m.chat.username.as_deref(),
        )
    });
    Party {
        phone: None,
        user_id: Some(m.chat.id.to_string()),
        name,
    }
}

/// The JSON naming a message's content keys (its envelope left out), for an unsupported one.
fn content_keys(value: &Value) -> String {
    let keys: Vec<&str> = value
        .as_object()
        .map(|o| {
            o.keys()
                .map(String::as_str)
                .filter(|k| !ENVELOPE.contains(k))
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({ "keys": keys }).to_string()
}

fn media(file: &File, mime: Option<&str>, caption: Option<&String>) -> MediaRef {
    MediaRef {
        provider_media_id: Some(file.file_id.clone()),
        url: None,
        mime_type: file.mime_type.clone().or_else(|| mime.map(str::to_string)),
        sha256: None,
        caption: caption.cloned(),
        filename: file.file_name.clone(),
    }
}

/// A private-chat message (or its edit) as an inbound message. `unsupported_details` names the
/// content keys, used when the message is of no kind this connector maps.
fn message(
    m: &Message,
    edited: bool,
    channel_address: &str,
    unsupported_details: String,
) -> InboundMessage {
    let chat = m.chat.id;
    let original = format!("{chat}:{}", m.message_id);
    let (provider_message_id, edits, timestamp) = if edited {
        let at = m.edit_date.unwrap_or(m.date);
        (format!("{original}:edit:{at}"), Some(original), at)
    } else {
        (original, None, m.date)
    };
    let caption = m.caption.as_ref();
    let mut out = InboundMessage {
        provider_message_id,
        channel_address: channel_address.to_string(),
        sender: sender(m),
        timestamp,
        kind: MessageKind::Unsupported,
        text: caption.cloned(),
        media: Vec::new(),
        location: None,
        interactive: None,
        reply_to: m
            .reply_to_message
            .as_ref()
            .map(|r| format!("{chat}:{}", r.message_id)),
        referral: None,
        details: None,
        edits,
    };
    let mut with_media = |kind: MessageKind, m: MediaRef| {
        out.kind = kind;
        out.media.push(m);
    };
    if let Some(text) = &m.text {
        out.kind = MessageKind::Text;
        out.text = Some(text.clone());
    } else if let Some(largest) = m.photo.as_ref().and_then(|sizes| sizes.last()) {
        // Telegram stores photos as JPEG; the sizes come smallest first.
        with_media(
            MessageKind::Image,
            media(largest, Some("image/jpeg"), caption),
        );
    } else if let Some(a) = &m.animation {
        // A GIF or silent MPEG-4 clip; `document` is also set for older clients.
        with_media(MessageKind::Video, media(a, None, caption));
    } else if let Some(d) = &m.document {
        with_media(MessageKind::Document, media(d, None, caption));
    } else if let Some(v) = m.voice.as_ref().or(m.audio.as_ref()) {
        with_media(MessageKind::Audio, media(v, None, caption));
    } else if let Some(v) = m.video.as_ref().or(m.video_note.as_ref()) {
        with_media(MessageKind::Video, media(v, None, caption));
    } else if let Some(s) = &m.sticker {
        let mime = if s.is_video {
            "video/webm"
        } else if s.is_animated {
            "application/x-tgsticker"
        } else {
            "image/webp"
        };
        let file = File {
            file_id: s.file_id.clone(),
            mime_type: None,
            file_name: None,
        };
        with_media(MessageKind::Sticker, media(&file, Some(mime), None));
        out.text = s.emoji.clone();
    } else if let Some(v) = &m.venue {
        // Checked before `location`, which Telegram also sets on a venue.
        out.kind = MessageKind::Location;
        out.location = Some(Location {
            latitude: v.location.latitude,
            longitude: v.location.longitude,
            name: v.title.clone(),
            address: v.address.clone(),
        });
    } else if let Some(p) = &m.location {
        out.kind = MessageKind::Location;
        out.location = Some(Location {
            latitude: p.latitude,
            longitude: p.longitude,
            name: None,
            address: None,
        });
    } else if let Some(contact) = &m.contact {
        out.kind = MessageKind::Contacts;
        out.text = contact
            .get("phone_number")
            .and_then(Value::as_str)
            .map(str::to_string);
        out.details = Some(contact.to_string());
    } else {
        out.details = Some(unsupported_details);
    }
    out
}

/// A press on an inline keyboard button under a private-chat message.
fn button_press(q: CallbackQuery, channel_address: &str) -> InboundEvent {
    let Some(message) = q.message else {
        return InboundEvent::Ignored("callback query on an inline-mode message ignored".into());
    };
    if message.chat.kind != "private" {
        return InboundEvent::Ignored(format!(
            "{} callback query ignored",
            chat_kind(&message.chat.kind)
        ));
    }
    let Some(data) = q.data else {
        return InboundEvent::Ignored("callback query without data (a game) ignored".into());
    };
    let name = user_name(&q.from);
    InboundEvent::Message(InboundMessage {
        provider_message_id: format!("cbq:{}", q.id),
        channel_address: channel_address.to_string(),
        sender: Party {
            phone: None,
            user_id: Some(q.from.id.to_string()),
            name,
        },
        // Callback queries carry no time; the message's date is 0 when it is inaccessible.
        timestamp: message.date,
        kind: MessageKind::Interactive,
        text: Some(data.clone()),
        media: Vec::new(),
        location: None,
        interactive: Some(InteractiveReply::ButtonReply(Choice {
            id: data.clone(),
            title: data,
            description: None,
        })),
        reply_to: Some(format!("{}:{}", message.chat.id, message.message_id)),
        referral: None,
        details: None,
        edits: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOT: &str = "ShopHelperBot";

    fn event(body: &str) -> InboundEvent {
        parse_update(body.as_bytes(), BOT).expect("parses")
    }

    fn msg(body: &str) -> InboundMessage {
        match event(body) {
            InboundEvent::Message(m) => m,
            other => panic!("{other:?}"),
        }
    }

    fn ignored(body: &str) -> String {
        match event(body) {
            InboundEvent::Ignored(why) => why,
            other => panic!("{other:?}"),
        }
    }

    /// A private-chat message update with the given content fields.
    fn private(content: &str) -> String {
        format!(
            r#"{{"update_id":10000,"message":{{"message_id":1365,"from":{{"id":1111111,"is_bot":false,"first_name":"Ada","last_name":"Lovelace","username":"ada","language_code":"en"}},"chat":{{"id":1111111,"first_name":"Ada","last_name":"Lovelace","username":"ada","type":"private"}},"date":1441645532,{content}}}}}"#
        )
    }

    #[test]
    fn text_message() {
        let m = msg(&private(r#""text":"Hello 👋 /start""#));
        assert_eq!(m.provider_message_id, "1111111:1365");
        assert_eq!(m.channel_address, BOT);
        assert_eq!(m.sender.phone, None);
        assert_eq!(m.sender.user_id.as_deref(), Some("1111111"));
        assert_eq!(m.sender.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(m.timestamp, 1441645532);
        assert_eq!(m.kind, MessageKind::Text);
        assert_eq!(m.text.as_deref(), Some("Hello 👋 /start"));
        assert!(m.media.is_empty() && m.location.is_none() && m.interactive.is_none());
        assert_eq!((m.reply_to, m.edits, m.details), (None, None, None));
    }

    #[test]
    fn request_needs_the_connection() {
        let req = HttpRequest {
            method: "POST".into(),
            url: "https://hooks.example.test/hooks/end_1".into(),
            headers: Vec::new(),
            body: private(r#""text":"hi""#).into_bytes(),
        };
        assert!(parse(&req, None).is_err());
        let events = parse(&req, Some(BOT)).expect("parses");
        assert!(
            matches!(events.as_slice(), [InboundEvent::Message(m)] if m.channel_address == BOT)
        );
    }

    #[test]
    fn names_fall_back_to_the_username() {
        let body = r#"{"update_id":1,"message":{"message_id":2,"from":{"id":5,"is_bot":false,"first_name":" ","username":"nick"},"chat":{"id":5,"type":"private","username":"nick"},"date":3,"text":"x"}}"#;
        assert_eq!(msg(body).sender.name.as_deref(), Some("nick"));
        let body = r#"{"update_id":1,"message":{"message_id":2,"from":{"id":5,"is_bot":false,"first_name":"Grace"},"chat":{"id":5,"type":"private","first_name":"Grace"},"date":3,"text":"x"}}"#;
        assert_eq!(msg(body).sender.name.as_deref(), Some("Grace"));
    }

    #[test]
    fn photo_takes_the_largest_size() {
        let m = msg(&private(
            r#""photo":[{"file_id":"AgACAgQAAxkBAAIBsmZ-small","file_unique_id":"AQADs1","file_size":1320,"width":90,"height":67},{"file_id":"AgACAgQAAxkBAAIBsmZ-medium","file_unique_id":"AQADs2","file_size":17150,"width":320,"height":240},{"file_id":"AgACAgQAAxkBAAIBsmZ-large","file_unique_id":"AQADs3","file_size":66341,"width":800,"height":600}],"caption":"our shop front""#,
        ));
        assert_eq!(m.kind, MessageKind::Image);
        assert_eq!(m.media.len(), 1);
        let p = &m.media[0];
        assert_eq!(
            p.provider_media_id.as_deref(),
            Some("AgACAgQAAxkBAAIBsmZ-large")
        );
        assert_eq!(p.caption.as_deref(), Some("our shop front"));
        assert_eq!(p.mime_type.as_deref(), Some("image/jpeg"));
        assert_eq!(p.url, None);
        assert_eq!(m.text.as_deref(), Some("our shop front"));
    }

    #[test]
    fn document_voice_audio_video_sticker() {
        let m = msg(&private(
            r#""document":{"file_name":"invoice 42.pdf","mime_type":"application/pdf","file_id":"BQACAgQAAxkBAAIBs2Z-doc","file_unique_id":"AgADdoc","file_size":48213},"caption":"the invoice""#,
        ));
        assert_eq!(m.kind, MessageKind::Document);
        let d = &m.media[0];
        assert_eq!(
            d.provider_media_id.as_deref(),
            Some("BQACAgQAAxkBAAIBs2Z-doc")
        );
        assert_eq!(d.mime_type.as_deref(), Some("application/pdf"));
        assert_eq!(d.filename.as_deref(), Some("invoice 42.pdf"));
        assert_eq!(d.caption.as_deref(), Some("the invoice"));

        let m = msg(&private(
            r#""voice":{"duration":3,"mime_type":"audio/ogg","file_id":"AwACAgQAAxkBAAIBtGZ-voice","file_unique_id":"AgADvoice","file_size":10934}"#,
        ));
        assert_eq!(m.kind, MessageKind::Audio);
        assert_eq!(
            m.media[0].provider_media_id.as_deref(),
            Some("AwACAgQAAxkBAAIBtGZ-voice")
        );
        assert_eq!(m.media[0].mime_type.as_deref(), Some("audio/ogg"));
        assert_eq!(m.text, None);

        let m = msg(&private(
            r#""audio":{"duration":215,"performer":"Band","title":"Song","file_name":"song.mp3","mime_type":"audio/mpeg","file_id":"CQACAgQ-audio","file_unique_id":"AgADaudio","file_size":3440000}"#,
        ));
        assert_eq!(m.kind, MessageKind::Audio);
        assert_eq!(m.media[0].filename.as_deref(), Some("song.mp3"));

        let m = msg(&private(
            r#""video":{"duration":12,"width":1280,"height":720,"file_name":"clip.mp4","mime_type":"video/mp4","file_id":"BAACAgQ-video","file_unique_id":"AgADvideo","file_size":2100000}"#,
        ));
        assert_eq!(m.kind, MessageKind::Video);
        assert_eq!(m.media[0].mime_type.as_deref(), Some("video/mp4"));

        // An animation also carries `document`: it is a video.
        let m = msg(&private(
            r#""animation":{"file_name":"cat.mp4","mime_type":"video/mp4","duration":3,"width":320,"height":240,"file_id":"CgACAgQ-anim","file_unique_id":"AgADanim"},"document":{"file_name":"cat.mp4","mime_type":"video/mp4","file_id":"CgACAgQ-anim","file_unique_id":"AgADanim"}"#,
        ));
        assert_eq!(m.kind, MessageKind::Video);
        assert_eq!(m.media.len(), 1);

        let m = msg(&private(
            r#""sticker":{"width":512,"height":512,"emoji":"😀","set_name":"HotCherry","is_animated":false,"is_video":false,"type":"regular","file_id":"CAACAgIAAxkBAAIBtWZ-sticker","file_unique_id":"AgADsticker","file_size":22000}"#,
        ));
        assert_eq!(m.kind, MessageKind::Sticker);
        assert_eq!(m.media[0].mime_type.as_deref(), Some("image/webp"));
        assert_eq!(m.text.as_deref(), Some("😀"));
    }

    #[test]
    fn location_and_venue() {
        let m = msg(&private(
            r#""location":{"latitude":52.520008,"longitude":13.404954}"#,
        ));
        assert_eq!(m.kind, MessageKind::Location);
        let l = m.location.expect("location");
        assert_eq!((l.latitude, l.longitude), (52.520008, 13.404954));
        assert_eq!((l.name, l.address), (None, None));
        assert_eq!(m.text, None);

        // A venue also carries `location`.
        let m = msg(&private(
            r#""venue":{"location":{"latitude":48.858844,"longitude":2.294351},"title":"Eiffel Tower","address":"Champ de Mars, 5 Av. Anatole France, Paris","foursquare_id":"51a2445e5019c80b56934c75"},"location":{"latitude":48.858844,"longitude":2.294351}"#,
        ));
        assert_eq!(m.kind, MessageKind::Location);
        let l = m.location.expect("location");
        assert_eq!((l.latitude, l.longitude), (48.858844, 2.294351));
        assert_eq!(l.name.as_deref(), Some("Eiffel Tower"));
        assert_eq!(
            l.address.as_deref(),
            Some("Champ de Mars, 5 Av. Anatole France, Paris")
        );
    }

    #[test]
    fn contact() {
        let m = msg(&private(
            r#""contact":{"phone_number":"+4915112345678","first_name":"Grace","last_name":"Hopper","user_id":2222222}"#,
        ));
        assert_eq!(m.kind, MessageKind::Contacts);
        assert_eq!(m.text.as_deref(), Some("+4915112345678"));
        let details: Value =
            serde_json::from_str(m.details.as_deref().expect("details")).expect("json");
        assert_eq!(details["first_name"], "Grace");
        assert_eq!(details["user_id"], 2222222);
    }

    #[test]
    fn other_content_is_unsupported_and_named() {
        let m = msg(&private(r#""dice":{"emoji":"🎲","value":4}"#));
        assert_eq!(m.kind, MessageKind::Unsupported);
        assert_eq!(m.details.as_deref(), Some(r#"{"keys":["dice"]}"#));
        assert!(m.media.is_empty());
    }

    #[test]
    fn replies() {
        let m = msg(&private(
            r#""reply_to_message":{"message_id":1360,"from":{"id":7000000001,"is_bot":true,"first_name":"Shop","username":"ShopHelperBot"},"chat":{"id":1111111,"type":"private","first_name":"Ada"},"date":1441645500,"text":"Which size?"},"text":"Large please""#,
        ));
        assert_eq!(m.reply_to.as_deref(), Some("1111111:1360"));
        assert_eq!(m.text.as_deref(), Some("Large please"));
    }

    #[test]
    fn large_ids() {
        // User ids exceed 32 bits (up to 52 significant bits).
        let body = r#"{"update_id":987654321,"message":{"message_id":2147483647,"from":{"id":6812345678901,"is_bot":false,"first_name":"Big"},"chat":{"id":6812345678901,"type":"private","first_name":"Big"},"date":1700000000,"text":"hi","reply_to_message":{"message_id":2147483000,"chat":{"id":6812345678901,"type":"private"},"date":1699999999}}}"#;
        let m = msg(body);
        assert_eq!(m.sender.user_id.as_deref(), Some("6812345678901"));
        assert_eq!(m.provider_message_id, "6812345678901:2147483647");
        assert_eq!(m.reply_to.as_deref(), Some("6812345678901:2147483000"));
    }

    #[test]
    fn edited_message() {
        let body = r#"{"update_id":10001,"edited_message":{"message_id":1365,"from":{"id":1111111,"is_bot":false,"first_name":"Ada"},"chat":{"id":1111111,"first_name":"Ada","type":"private"},"date":1441645532,"edit_date":1441645600,"text":"Hello, edited"}}"#;
        let m = msg(body);
        assert_eq!(m.provider_message_id, "1111111:1365:edit:1441645600");
        assert_eq!(m.edits.as_deref(), Some("1111111:1365"));
        assert_eq!(m.timestamp, 1441645600);
        assert_eq!(m.kind, MessageKind::Text);
        assert_eq!(m.text.as_deref(), Some("Hello, edited"));
    }

    #[test]
    fn callback_query() {
        let body = r#"{"update_id":10002,"callback_query":{"id":"4382bfdwdsb323b2d9","from":{"id":1111111,"is_bot":false,"first_name":"Ada","last_name":"Lovelace","language_code":"en"},"message":{"message_id":1370,"from":{"id":7000000001,"is_bot":true,"first_name":"Shop","username":"ShopHelperBot"},"chat":{"id":1111111,"first_name":"Ada","type":"private"},"date":1441645540,"text":"Pick a size","reply_markup":{"inline_keyboard":[[{"text":"Large","callback_data":"size_l"}]]}},"chat_instance":"-8811726712345","data":"size_l"}}"#;
        let m = msg(body);
        assert_eq!(m.kind, MessageKind::Interactive);
        assert_eq!(m.provider_message_id, "cbq:4382bfdwdsb323b2d9");
        assert_eq!(m.sender.user_id.as_deref(), Some("1111111"));
        assert_eq!(m.sender.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(m.text.as_deref(), Some("size_l"));
        assert_eq!(m.reply_to.as_deref(), Some("1111111:1370"));
        assert_eq!(m.timestamp, 1441645540);
        match m.interactive {
            Some(InteractiveReply::ButtonReply(c)) => {
                assert_eq!((c.id.as_str(), c.title.as_str()), ("size_l", "size_l"));
                assert_eq!(c.description, None);
            }
            other => panic!("{other:?}"),
        }
        // An inaccessible message has date 0 and only chat and id.
        let body = r#"{"update_id":10003,"callback_query":{"id":"99","from":{"id":1111111,"is_bot":false,"first_name":"Ada"},"message":{"chat":{"id":1111111,"type":"private"},"message_id":5,"date":0},"chat_instance":"1","data":"x"}}"#;
        assert_eq!(msg(body).timestamp, 0);
        // Inline-mode messages and games are not messages of a chat with the bot.
        let inline = r#"{"update_id":10004,"callback_query":{"id":"98","from":{"id":1,"is_bot":false,"first_name":"A"},"inline_message_id":"AAA","chat_instance":"1","data":"x"}}"#;
        assert!(ignored(inline).contains("inline"));
        let game = r#"{"update_id":10005,"callback_query":{"id":"97","from":{"id":1,"is_bot":false,"first_name":"A"},"message":{"message_id":5,"chat":{"id":1,"type":"private"},"date":9},"chat_instance":"1","game_short_name":"g"}}"#;
        assert!(ignored(game).contains("without data"));
        let group = r#"{"update_id":10006,"callback_query":{"id":"96","from":{"id":1,"is_bot":false,"first_name":"A"},"message":{"message_id":5,"chat":{"id":-1001234567890,"title":"Team","type":"supergroup"},"date":9},"chat_instance":"1","data":"x"}}"#;
        assert_eq!(ignored(group), "supergroup callback query ignored");
    }

    #[test]
    fn groups_channels_and_other_updates_are_ignored() {
        let group = r#"{"update_id":10010,"message":{"message_id":44,"from":{"id":1111111,"is_bot":false,"first_name":"Ada"},"chat":{"id":-4012345678,"title":"Friends","type":"group","all_members_are_administrators":true},"date":1441645532,"text":"hi all"}}"#;
        assert_eq!(ignored(group), "group message ignored");
        let supergroup = r#"{"update_id":10011,"edited_message":{"message_id":44,"from":{"id":1,"is_bot":false,"first_name":"A"},"chat":{"id":-1001234567890,"title":"Big","type":"supergroup"},"date":1,"edit_date":2,"text":"x"}}"#;
        assert_eq!(ignored(supergroup), "supergroup edited message ignored");
        let post = r#"{"update_id":10012,"channel_post":{"message_id":3,"sender_chat":{"id":-1009876543210,"title":"News","type":"channel"},"chat":{"id":-1009876543210,"title":"News","type":"channel"},"date":1,"text":"news"}}"#;
        assert!(ignored(post).contains("channel post"));
        let member = r#"{"update_id":10013,"my_chat_member":{"chat":{"id":1111111,"first_name":"Ada","type":"private"},"from":{"id":1111111,"is_bot":false,"first_name":"Ada"},"date":1441645600,"old_chat_member":{"user":{"id":7000000001,"is_bot":true,"first_name":"Shop","username":"ShopHelperBot"},"status":"member"},"new_chat_member":{"user":{"id":7000000001,"is_bot":true,"first_name":"Shop","username":"ShopHelperBot"},"status":"kicked","until_date":0}}}"#;
        assert_eq!(ignored(member), "update type my_chat_member ignored");
        let inline = r#"{"update_id":10014,"inline_query":{"id":"1","from":{"id":1,"is_bot":false,"first_name":"A"},"query":"shoes","offset":""}}"#;
        assert_eq!(ignored(inline), "update type inline_query ignored");
        assert!(ignored(r#"{"update_id":1}"#).contains("empty"));
    }

    #[test]
    fn malformed_bodies() {
        for body in [
            "",
            "not json",
            "[1,2]",
            r#"{"update_id":1,"message":{"message_id":"x"}}"#,
            r#"{"update_id":1,"message":{"message_id":1,"date":1}}"#,
            r#"{"update_id":1,"callback_query":{"id":"1"}}"#,
        ] {
            let e = parse_update(body.as_bytes(), BOT).expect_err(body);
            assert!(!e.is_empty() && e.len() < 300, "{e}");
        }
    }
}
