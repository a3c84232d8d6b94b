//! Bot API calls (send, credential check, webhook set-up, media) through the host's egress
//! ([`Request::send`]; a `FakeHost` answers them in tests).
//!
//! Every URL is `{api-base-url}/bot{{bot_token}}/<method>`: the host replaces the literal
//! `{{bot_token}}` with the connection's token ([`Credential::InUrl`]); the plugin never sees it.
//! Requests are POSTs with a JSON body, except `setWebhook`, whose parameters go in the query
//! string because the host substitutes secrets (the generated `webhook_secret`) only in URLs.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use switchyard_sdk::errors::provider_error;
use switchyard_sdk::http::Request;
use switchyard_sdk::types::{
    ConnectionInfo, Content, Credential, CredentialHealth, ErrorKind, HttpRequest, MediaFetch,
    MediaRef, MediaSource, OutboundMessage, ProviderError,
};
use switchyard_sdk::webhook::encode;

use crate::errors;

/// The secret holding the bot token, as the manifest declares it.
pub const BOT_TOKEN: &str = "bot_token";

/// The secret Telegram echoes in every update's header, as the manifest declares it.
pub const WEBHOOK_SECRET: &str = crate::verify::WEBHOOK_SECRET;

/// The update types the webhook asks for: private messages, their edits, button presses.
pub const ALLOWED_UPDATES: &str = r#"["message","edited_message","callback_query"]"#;

/// Simultaneous webhook connections Telegram may open (its default).
pub const MAX_CONNECTIONS: u32 = 40;

/// Pending updates above which check-credentials warns.
pub const PENDING_WARNING: u64 = 100;

/// `{api-base-url}/bot{{bot_token}}`, the base of every method URL.
fn bot_base(connection: &ConnectionInfo) -> String {
    format!(
        "{}/bot{{{{{BOT_TOKEN}}}}}",
        connection.api_base_url.trim_end_matches('/')
    )
}

/// `{api-base-url}/bot{{bot_token}}/{method}`.
pub fn method_url(connection: &ConnectionInfo, method: &str) -> String {
    format!("{}/{method}", bot_base(connection))
}

/// `s` percent-encoded as a URL path: each `/`-separated segment is encoded (only RFC 3986's
/// unreserved characters pass), the slashes kept.
fn encode_path(s: &str) -> String {
    s.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// A POST of `body` as JSON to `method`, with the bot token for the host to put in the URL.
pub fn json_request(connection: &ConnectionInfo, method: &str, body: &Value) -> Request {
    Request::post(method_url(connection, method))
        .json(body)
        .credential(Credential::InUrl(BOT_TOKEN.into()))
}

/// Send a request (with the secrets it names) and return the answer's `result`.
fn call(req: Request) -> Result<Value, ProviderError> {
    let resp = req.send()?;
    errors::result_of(resp.status(), resp.body())
}

/// Call `method` with a JSON body and the bot token.
fn call_json(
    connection: &ConnectionInfo,
    method: &str,
    body: &Value,
) -> Result<Value, ProviderError> {
    call(json_request(connection, method, body))
}

/// A chat id as Telegram takes it: an integer when it is one, else the text (`@channelname`).
fn chat_id_value(chat: &str) -> Value {
    chat.parse::<i64>()
        .map_or_else(|_| Value::String(chat.to_string()), Value::from)
}

/// The message id a reply-to id (`"{chat}:{message_id}"`, or an edit's
/// `"{chat}:{message_id}:edit:{date}"`) names, when it is in `chat`. Button presses
/// (`cbq:…`) and messages of other chats name nothing to quote.
pub fn reply_message_id(reply_to: &str, chat: &str) -> Option<i64> {
    let mut parts = reply_to.trim().split(':');
    let (reply_chat, id) = (parts.next()?, parts.next()?);
    if reply_chat != chat || reply_chat.parse::<i64>().is_err() {
        return None;
    }
    id.parse::<i64>().ok()
}

/// Whether media is sent as a photo: an `image/…` type, or no type and no file name.
fn is_photo(m: &MediaRef) -> bool {
    match m
        .mime_type
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        Some(mime) => mime.to_ascii_lowercase().starts_with("image/"),
        None => m.filename.as_deref().is_none_or(|f| f.trim().is_empty()),
    }
}

/// The method and JSON body that send `msg`, and the chat id it goes to.
pub fn send_request(msg: &OutboundMessage) -> Result<(&'static str, Value, String), ProviderError> {
    let chat = msg
        .to
        .user_id
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            provider_error(
                ErrorKind::InvalidRequest,
                "no_chat_id",
                "a Telegram recipient needs a user id (the chat id)",
            )
        })?
        .to_string();
    let invalid = |code: &str, m: &str| provider_error(ErrorKind::InvalidRequest, code, m);
    let mut body = Map::new();
    body.insert("chat_id".into(), chat_id_value(&chat));
    let method = match &msg.content {
        Content::Text(text) => {
            body.insert("text".into(), Value::from(text.as_str()));
            "sendMessage"
        }
        Content::Media(m) => {
            let file = m
                .provider_media_id
                .as_deref()
                .or(m.url.as_deref())
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .ok_or_else(|| {
                    invalid(
                        "no_media",
                        "Telegram sends media by file_id or public URL; this media has neither",
                    )
                })?;
            let (method, field) = if is_photo(m) {
                ("sendPhoto", "photo")
            } else {
                ("sendDocument", "document")
            };
            body.insert(field.into(), Value::from(file));
            if let Some(caption) = m.caption.as_deref().filter(|c| !c.is_empty()) {
                body.insert("caption".into(), Value::from(caption));
            }
            method
        }
        Content::Template(_) => {
            return Err(invalid("no_templates", "Telegram has no templates"));
        }
        Content::Reaction(_) => {
            return Err(invalid(
                "no_reactions",
                "reactions are not sent on Telegram",
            ));
        }
    };
    if let Some(id) = msg
        .reply_to
        .as_deref()
        .and_then(|r| reply_message_id(r, &chat))
    {
        body.insert(
            "reply_parameters".into(),
            json!({ "message_id": id, "allow_sending_without_reply": true }),
        );
    }
    Ok((method, Value::Object(body), chat))
}

/// Send a message; its id, `"{chat_id}:{message_id}"`, on success.
pub fn send_message(
    connection: &ConnectionInfo,
    msg: &OutboundMessage,
) -> Result<String, ProviderError> {
    let (method, body, chat) = send_request(msg)?;
    let result = call_json(connection, method, &body)?;
    let chat = result
        .pointer("/chat/id")
        .and_then(Value::as_i64)
        .map_or(chat, |id| id.to_string());
    result
        .get("message_id")
        .and_then(Value::as_i64)
        .map(|id| format!("{chat}:{id}"))
        // Telegram took the message but named no id: retrying could send it twice.
        .ok_or_else(|| {
            provider_error(
                ErrorKind::Permanent,
                "no_message_id",
                "Telegram's answer to the send named no message_id",
            )
        })
}

/// The bot a token belongs to (`getMe`).
#[derive(Deserialize)]
struct Bot {
    id: i64,
    #[serde(default)]
    is_bot: bool,
    username: Option<String>,
}

/// The webhook as Telegram has it (`getWebhookInfo`).
#[derive(Deserialize, Default)]
struct WebhookInfo {
    #[serde(default)]
    url: String,
    #[serde(default)]
    pending_update_count: u64,
    last_error_message: Option<String>,
}

/// The warnings a webhook's state deserves, each one sentence.
fn webhook_warnings(connection: &ConnectionInfo, info: &WebhookInfo) -> Vec<String> {
    let mut warnings = Vec::new();
    if !info.url.is_empty() && Some(info.url.as_str()) != connection.callback_url.as_deref() {
        warnings.push(format!(
            "the bot's webhook points at {}, not this host",
            info.url
        ));
    }
    if let Some(e) = info.last_error_message.as_deref().filter(|e| !e.is_empty()) {
        warnings.push(format!("Telegram's last delivery failed: {e}"));
    }
    if info.pending_update_count > PENDING_WARNING {
        warnings.push(format!(
            "{} updates are waiting for delivery to the webhook",
            info.pending_update_count
        ));
    }
    warnings
}

/// Prove the token belongs to the connection's bot (`getMe`) and report the webhook's state
/// (`getWebhookInfo`; a failure there is only a warning).
pub fn check_credentials(connection: &ConnectionInfo) -> Result<CredentialHealth, ProviderError> {
    let me = call_json(connection, "getMe", &json!({}))?;
    let bot: Bot = serde_json::from_value(me).map_err(|e| {
        provider_error(
            ErrorKind::Transient,
            "bad_response",
            format!("getMe answered an unexpected result: {e}"),
        )
    })?;
    let address = connection.channel_address.trim();
    let address = address.strip_prefix('@').unwrap_or(address);
    let actual = bot.username.as_deref().unwrap_or_default();
    if !bot.is_bot || actual.is_empty() || !actual.eq_ignore_ascii_case(address) {
        return Err(provider_error(
            ErrorKind::PermissionMissing,
            "bot_mismatch",
            format!("the token belongs to @{actual}, not @{address}"),
        ));
    }
    let warnings = match call_json(connection, "getWebhookInfo", &json!({})) {
        Ok(result) => match serde_json::from_value::<WebhookInfo>(result) {
            Ok(info) => webhook_warnings(connection, &info),
            Err(e) => vec![format!("Telegram's webhook info was not understood: {e}")],
        },
        Err(e) => vec![format!(
            "Telegram's webhook info could not be read: {}",
            e.message
        )],
    };
    Ok(CredentialHealth {
        expires_at: None,
        scopes: Vec::new(),
        warnings,
        detail: format!("@{actual} (bot {})", bot.id),
    })
}

/// The `setWebhook` URL: the callback URL, the generated secret (substituted by the host), the
/// update types and the connection limit, all in the query string.
pub fn set_webhook_url(connection: &ConnectionInfo) -> Result<String, ProviderError> {
    let callback = connection
        .callback_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            provider_error(
                ErrorKind::InvalidRequest,
                "no_callback_url",
                "the connection has no callback URL to point the bot's webhook at",
            )
        })?;
    Ok(format!(
        "{}?url={}&secret_token={{{{{WEBHOOK_SECRET}}}}}&allowed_updates={}&max_connections={MAX_CONNECTIONS}",
        method_url(connection, "setWebhook"),
        encode(callback),
        encode(ALLOWED_UPDATES),
    ))
}

/// Point the bot's webhook at the connection's endpoint (`setWebhook`).
pub fn connect(connection: &ConnectionInfo) -> Result<(), ProviderError> {
    call(
        Request::post(set_webhook_url(connection)?)
            .credential(Credential::InUrl(BOT_TOKEN.into()))
            .credential(Credential::InUrl(WEBHOOK_SECRET.into())),
    )
    .map(drop)
}

/// Remove the bot's webhook (`deleteWebhook`).
pub fn disconnect(connection: &ConnectionInfo) -> Result<(), ProviderError> {
    call_json(connection, "deleteWebhook", &json!({})).map(drop)
}

/// Where the host downloads a file from: `getFile` names its path, served at
/// `{api-base-url}/file/bot{{bot_token}}/{file_path}`.
pub fn fetch_media(
    connection: &ConnectionInfo,
    media: &MediaRef,
) -> Result<MediaSource, ProviderError> {
    let file_id = media
        .provider_media_id
        .as_deref()
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .ok_or_else(|| {
            provider_error(
                ErrorKind::InvalidRequest,
                "no_file_id",
                "Telegram media is fetched by file_id; this media has none",
            )
        })?;
    let file = call_json(connection, "getFile", &json!({ "file_id": file_id }))?;
    let path = file
        .get("file_path")
        .and_then(Value::as_str)
        .map(|p| p.trim_start_matches('/'))
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            provider_error(
                ErrorKind::Permanent,
                "no_file_path",
                "Telegram named no file_path for this file",
            )
        })?;
    Ok(MediaSource::Fetch(MediaFetch {
        request: HttpRequest {
            method: "GET".into(),
            url: format!(
                "{}/file/bot{{{{{BOT_TOKEN}}}}}/{}",
                connection.api_base_url.trim_end_matches('/'),
                encode_path(path)
            ),
            headers: Vec::new(),
            body: Vec::new(),
        },
        credentials: vec![Credential::InUrl(BOT_TOKEN.into())],
        mime_type: media.mime_type.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::testing::{FakeHost, Sent};
    use switchyard_sdk::types::{HttpResponse, Party, Reaction, Template, TemplateCategory};

    const TOKEN_LIKE: &str = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";

    const GENERATED_SECRET: &str = "k3Jd9_x-Qz0aP8vLm2NwE5rTy7UiOb4cVfGh6Sj1AbC";

    /// The real Bot API; each other scenario of a test gets its own base URL.
    const API: &str = "https://api.telegram.org";

    /// A host holding the connection's secrets, with no routes yet.
    fn host() -> FakeHost {
        FakeHost::new()
            .secret(BOT_TOKEN, TOKEN_LIKE)
            .secret(WEBHOOK_SECRET, GENERATED_SECRET)
    }

    fn answer(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    /// `host` answering the Bot API method `method` of the bot at `base` with `status` and
    /// `body`.
    fn route(
        host: FakeHost,
        base: &str,
        method: &str,
        status: u16,
        body: &'static str,
    ) -> FakeHost {
        host.on(
            "POST",
            &format!("{base}/bot{{{{bot_token}}}}/{method}"),
            move |_| answer(status, body),
        )
    }

    /// The names of the secrets a request asked the host to put in its URL.
    fn credentials(sent: &Sent) -> Vec<&str> {
        sent.credentials
            .iter()
            .map(|c| match c {
                Credential::InUrl(name) => name.as_str(),
                other => panic!("unexpected credential {other:?}"),
            })
            .collect()
    }

    fn body(sent: &Sent) -> Value {
        serde_json::from_slice(&sent.request.body).expect("JSON body")
    }

    fn conn_at(base: &str) -> ConnectionInfo {
        ConnectionInfo {
            connection_id: "con_1".into(),
            channel_address: "ShopHelperBot".into(),
            account_id: None,
            api_base_url: base.into(),
            settings: vec![("bot_username".into(), "ShopHelperBot".into())],
            callback_url: Some("https://hooks.example.test/hooks/end_1".into()),
        }
    }

    fn conn() -> ConnectionInfo {
        conn_at("https://api.telegram.org/")
    }

    fn to(chat: &str) -> Party {
        Party {
            phone: None,
            user_id: Some(chat.into()),
            name: None,
        }
    }

    fn msg(content: Content) -> OutboundMessage {
        OutboundMessage {
            to: to("1111111"),
            content,
            reply_to: None,
            idempotency_key: "k1".into(),
        }
    }

    fn media(
        id: Option<&str>,
        url: Option<&str>,
        mime: Option<&str>,
        name: Option<&str>,
    ) -> MediaRef {
        MediaRef {
            provider_media_id: id.map(str::to_string),
            url: url.map(str::to_string),
            mime_type: mime.map(str::to_string),
            sha256: None,
            caption: Some("look".into()),
            filename: name.map(str::to_string),
        }
    }

    const SENT: &str = r#"{"ok":true,"result":{"message_id":1371,"from":{"id":7000000001,"is_bot":true,"first_name":"Shop","username":"ShopHelperBot"},"chat":{"id":1111111,"first_name":"Ada","type":"private"},"date":1441645600,"text":"Hi"}}"#;

    #[test]
    fn urls_carry_the_placeholder_never_a_token() {
        let c = conn();
        assert_eq!(
            method_url(&c, "getMe"),
            "https://api.telegram.org/bot{{bot_token}}/getMe"
        );
        let host = route(host(), API, "sendMessage", 200, SENT).install();
        send_message(&c, &msg(Content::Text("Hi".into()))).expect("sent");
        let sent = host.requests();
        assert!(sent[0].request.url.contains("{{bot_token}}"));
        // The fake host never fills the token in: nothing the plugin built carries it.
        assert!(!format!("{sent:?}").contains(TOKEN_LIKE));
        assert_eq!(credentials(&sent[0]), ["bot_token"]);
    }

    #[test]
    fn text_send() {
        let host = route(host(), API, "sendMessage", 200, SENT).install();
        let id = send_message(&conn(), &msg(Content::Text("Hi & bye".into()))).expect("sent");
        assert_eq!(id, "1111111:1371");
        let sent = host.requests();
        let req = &sent[0].request;
        assert_eq!(req.method, "POST");
        assert_eq!(
            req.url,
            "https://api.telegram.org/bot{{bot_token}}/sendMessage"
        );
        assert!(
            req.headers
                .contains(&("content-type".into(), "application/json".into()))
        );
        assert_eq!(
            body(&sent[0]),
            json!({"chat_id": 1111111, "text": "Hi & bye"})
        );
    }

    #[test]
    fn replies_quote_the_message() {
        let mut m = msg(Content::Text("Large it is".into()));
        m.reply_to = Some("1111111:1365".into());
        let (_, body, _) = send_request(&m).expect("request");
        assert_eq!(
            body["reply_parameters"],
            json!({"message_id": 1365, "allow_sending_without_reply": true})
        );
        // An edit's id names the same message.
        m.reply_to = Some("1111111:1365:edit:1441645600".into());
        assert_eq!(
            send_request(&m).expect("request").1["reply_parameters"]["message_id"],
            1365
        );
        // A button press, another chat's message or junk quote nothing.
        for r in ["cbq:4382bfdwdsb323b2d9", "2222222:5", "junk", "1111111:x"] {
            m.reply_to = Some(r.into());
            assert!(
                send_request(&m)
                    .expect("request")
                    .1
                    .get("reply_parameters")
                    .is_none(),
                "{r}"
            );
        }
        assert_eq!(
            reply_message_id("6812345678901:2147483647", "6812345678901"),
            Some(2147483647)
        );
    }

    #[test]
    fn large_chat_ids_stay_integers() {
        let mut m = msg(Content::Text("x".into()));
        m.to = to("6812345678901");
        let (_, body, chat) = send_request(&m).expect("request");
        assert_eq!(body["chat_id"], json!(6812345678901_i64));
        assert_eq!(chat, "6812345678901");
        m.to = to("@shopnews");
        assert_eq!(send_request(&m).expect("request").1["chat_id"], "@shopnews");
    }

    #[test]
    fn media_sends() {
        let host = route(host(), API, "send", 200, SENT).install();
        let cases = [
            (
                media(Some("AgACAgQ-large"), None, None, None),
                "sendPhoto",
                "photo",
                "AgACAgQ-large",
            ),
            (
                media(
                    None,
                    Some("https://cdn.example.test/a.png"),
                    Some("image/png"),
                    None,
                ),
                "sendPhoto",
                "photo",
                "https://cdn.example.test/a.png",
            ),
            (
                media(
                    None,
                    Some("https://cdn.example.test/a.pdf"),
                    Some("application/pdf"),
                    Some("a.pdf"),
                ),
                "sendDocument",
                "document",
                "https://cdn.example.test/a.pdf",
            ),
            (
                media(Some("BQACAgQ-doc"), None, None, Some("invoice.pdf")),
                "sendDocument",
                "document",
                "BQACAgQ-doc",
            ),
            (
                media(
                    Some("BQACAgQ-zip"),
                    Some("https://cdn.example.test/x"),
                    Some("application/zip"),
                    None,
                ),
                "sendDocument",
                "document",
                "BQACAgQ-zip",
            ),
        ];
        for (i, (m, method, field, value)) in cases.into_iter().enumerate() {
            send_message(&conn(), &msg(Content::Media(m))).expect("sent");
            let sent = host.requests();
            let req = &sent[i].request;
            assert!(req.url.ends_with(&format!("/{method}")), "{i}: {}", req.url);
            let body = body(&sent[i]);
            assert_eq!(body[field], value, "{i}");
            assert_eq!(body["caption"], "look", "{i}");
            assert_eq!(body["chat_id"], 1111111, "{i}");
        }
        let e = send_request(&msg(Content::Media(media(
            None,
            None,
            Some("image/png"),
            None,
        ))))
        .expect_err("no file");
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::InvalidRequest, "no_media")
        );
    }

    #[test]
    fn refusals() {
        // Telegram would take anything: the refusals are the connector's own.
        let host = route(host(), API, "send", 200, SENT).install();
        let template = Content::Template(Template {
            name: "order_update".into(),
            language: "en".into(),
            category: TemplateCategory::Utility,
            parameters: Vec::new(),
        });
        let reaction = Content::Reaction(Reaction {
            message_id: "1111111:1365".into(),
            emoji: "👍".into(),
        });
        for content in [template, reaction] {
            let e = send_message(&conn(), &msg(content)).expect_err("refused");
            assert_eq!(e.kind, ErrorKind::InvalidRequest);
        }
        let mut m = msg(Content::Text("x".into()));
        m.to = Party {
            phone: Some("4915112345678".into()),
            user_id: None,
            name: None,
        };
        let e = send_message(&conn(), &m).expect_err("no chat");
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::InvalidRequest, "no_chat_id")
        );
        assert!(host.requests().is_empty());
    }

    /// Telegram's answers to a send, by the case number the test sends as the text.
    const SEND_ERRORS: [(u16, &str, ErrorKind); 6] = [
        (
            403,
            r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
            ErrorKind::InvalidRecipient,
        ),
        (
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
            ErrorKind::InvalidRecipient,
        ),
        (
            401,
            r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
            ErrorKind::AuthExpired,
        ),
        (
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}"#,
            ErrorKind::RateLimited,
        ),
        (200, "<html>", ErrorKind::Transient),
        (200, r#"{"ok":true,"result":{}}"#, ErrorKind::Permanent),
    ];

    #[test]
    fn send_errors() {
        let _host = host()
            .on("POST", &method_url(&conn(), "sendMessage"), |req| {
                let case = serde_json::from_slice::<Value>(&req.body)
                    .ok()
                    .and_then(|b| b["text"].as_str()?.parse::<usize>().ok())
                    .and_then(|i| SEND_ERRORS.get(i))
                    .expect("a case number as the text");
                answer(case.0, case.1)
            })
            .install();
        for (i, (_, body, kind)) in SEND_ERRORS.iter().enumerate() {
            let e = send_message(&conn(), &msg(Content::Text(i.to_string()))).expect_err(body);
            assert_eq!(e.kind, *kind, "{body}");
            if e.kind == ErrorKind::RateLimited {
                assert_eq!(e.retry_after, Some(7));
            }
        }
        // Telegram out of reach: the host's failure is worth a retry.
        let e = send_message(
            &conn_at("https://unreachable.example.test"),
            &msg(Content::Text("x".into())),
        )
        .expect_err("unreachable");
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::Transient, "egress-connection-failed")
        );
    }

    const ME: &str = r#"{"ok":true,"result":{"id":7000000001,"is_bot":true,"first_name":"Shop","username":"ShopHelperBot","can_join_groups":true,"can_read_all_group_messages":false,"supports_inline_queries":false}}"#;

    #[test]
    fn credentials_match_the_bot() {
        let hook = r#"{"ok":true,"result":{"url":"https://hooks.example.test/hooks/end_1","has_custom_certificate":false,"pending_update_count":0,"max_connections":40,"ip_address":"203.0.113.7"}}"#;
        let not_a_bot = r#"{"ok":true,"result":{"id":1,"is_bot":false,"first_name":"Ada","username":"ShopHelperBot"}}"#;
        let mut h = route(host(), API, "getMe", 200, ME);
        h = route(h, API, "getWebhookInfo", 200, hook);
        h = route(h, "https://not-a-bot.test", "getMe", 200, not_a_bot);
        h = route(
            h,
            "https://revoked.test",
            "getMe",
            401,
            r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
        );
        h = route(
            h,
            "https://malformed.test",
            "getMe",
            404,
            r#"{"ok":false,"error_code":404,"description":"Not Found"}"#,
        );
        let host = h.install();

        let mut c = conn();
        c.channel_address = "shophelperbot".into();
        let h = check_credentials(&c).expect("healthy");
        assert_eq!(h.detail, "@ShopHelperBot (bot 7000000001)");
        assert!(h.warnings.is_empty(), "{:?}", h.warnings);
        assert_eq!((h.expires_at, h.scopes.len()), (None, 0));
        let sent = host.requests();
        assert!(sent[0].request.url.ends_with("/bot{{bot_token}}/getMe"));
        assert!(
            sent[1]
                .request
                .url
                .ends_with("/bot{{bot_token}}/getWebhookInfo")
        );

        // Someone else's bot: getMe alone settles it.
        c.channel_address = "OtherShopBot".into();
        let e = check_credentials(&c).expect_err("mismatch");
        assert_eq!(
            (e.kind, e.code.as_str(), e.message.as_str()),
            (
                ErrorKind::PermissionMissing,
                "bot_mismatch",
                "the token belongs to @ShopHelperBot, not @OtherShopBot"
            )
        );
        assert_eq!(host.requests().len(), 3);

        let e = check_credentials(&conn_at("https://not-a-bot.test")).expect_err("not a bot");
        assert_eq!(e.code, "bot_mismatch");
        let e = check_credentials(&conn_at("https://revoked.test")).expect_err("revoked");
        assert_eq!(e.kind, ErrorKind::AuthExpired);
        let e = check_credentials(&conn_at("https://malformed.test")).expect_err("malformed");
        assert_eq!(e.kind, ErrorKind::AuthExpired);
    }

    #[test]
    fn webhook_state_warns() {
        let elsewhere = r#"{"ok":true,"result":{"url":"https://elsewhere.example/tg","has_custom_certificate":false,"pending_update_count":250,"last_error_date":1441645000,"last_error_message":"Wrong response from the webhook: 502 Bad Gateway","max_connections":40}}"#;
        let none = r#"{"ok":true,"result":{"url":"","has_custom_certificate":false,"pending_update_count":0}}"#;
        let failing = r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#;
        let mut h = host();
        for (base, status, hook) in [
            (API, 200, elsewhere),
            ("https://no-webhook.test", 200, none),
            ("https://webhook-info-fails.test", 500, failing),
        ] {
            h = route(h, base, "getMe", 200, ME);
            h = route(h, base, "getWebhookInfo", status, hook);
        }
        let _host = h.install();

        let h = check_credentials(&conn()).expect("healthy");
        assert_eq!(
            h.warnings,
            [
                "the bot's webhook points at https://elsewhere.example/tg, not this host",
                "Telegram's last delivery failed: Wrong response from the webhook: 502 Bad Gateway",
                "250 updates are waiting for delivery to the webhook",
            ]
        );
        // No webhook yet (before connect): nothing to warn about.
        let h = check_credentials(&conn_at("https://no-webhook.test")).expect("healthy");
        assert!(h.warnings.is_empty());
        // getWebhookInfo failing only warns.
        let h = check_credentials(&conn_at("https://webhook-info-fails.test")).expect("healthy");
        assert_eq!(h.warnings.len(), 1);
        assert!(h.warnings[0].contains("Internal Server Error"));
    }

    #[test]
    fn connect_sets_the_webhook_in_the_query_string() {
        let set = r#"{"ok":true,"result":true,"description":"Webhook was set"}"#;
        let bad = r#"{"ok":false,"error_code":400,"description":"Bad Request: bad webhook: An HTTPS URL must be provided for webhook"}"#;
        let h = route(host(), API, "setWebhook", 200, set);
        let host = route(h, "https://refuses.test", "setWebhook", 400, bad).install();
        connect(&conn()).expect("connected");
        let sent = host.requests();
        let req = &sent[0].request;
        assert_eq!(req.method, "POST");
        assert!(req.body.is_empty());
        assert_eq!(
            req.url,
            "https://api.telegram.org/bot{{bot_token}}/setWebhook\
             ?url=https%3A%2F%2Fhooks.example.test%2Fhooks%2Fend_1\
             &secret_token={{webhook_secret}}\
             &allowed_updates=%5B%22message%22%2C%22edited_message%22%2C%22callback_query%22%5D\
             &max_connections=40"
        );
        assert_eq!(credentials(&sent[0]), ["bot_token", "webhook_secret"]);
        assert!(!format!("{sent:?}").contains(GENERATED_SECRET));

        let mut c = conn();
        c.callback_url = None;
        let e = connect(&c).expect_err("no callback");
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
        assert_eq!(host.requests().len(), 1);

        let e = connect(&conn_at("https://refuses.test")).expect_err("refused");
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
    }

    #[test]
    fn disconnect_deletes_the_webhook() {
        let deleted = r#"{"ok":true,"result":true,"description":"Webhook was deleted"}"#;
        let host = route(host(), API, "deleteWebhook", 200, deleted).install();
        disconnect(&conn()).expect("disconnected");
        let sent = host.requests();
        assert_eq!(
            sent[0].request.url,
            "https://api.telegram.org/bot{{bot_token}}/deleteWebhook"
        );
        assert_eq!(body(&sent[0]), json!({}));
        assert_eq!(credentials(&sent[0]), ["bot_token"]);
    }

    #[test]
    fn media_is_fetched_by_the_host() {
        let file = r#"{"ok":true,"result":{"file_id":"AwACAgQ-voice","file_unique_id":"AgADvoice","file_size":10934,"file_path":"voice/file_12.oga"}}"#;
        let big = r#"{"ok":false,"error_code":400,"description":"Bad Request: file is too big"}"#;
        let no_path = r#"{"ok":true,"result":{"file_id":"x","file_unique_id":"y"}}"#;
        let mut h = route(host(), API, "getFile", 200, file);
        h = route(h, "https://too-big.test", "getFile", 400, big);
        h = route(h, "https://no-path.test", "getFile", 200, no_path);
        let host = h.install();
        let m = MediaRef {
            provider_media_id: Some("AwACAgQ-voice".into()),
            url: None,
            mime_type: Some("audio/ogg".into()),
            sha256: None,
            caption: None,
            filename: None,
        };
        let source = fetch_media(&conn(), &m).expect("source");
        let sent = host.requests();
        assert_eq!(body(&sent[0]), json!({"file_id": "AwACAgQ-voice"}));
        assert!(sent[0].request.url.ends_with("/bot{{bot_token}}/getFile"));
        match source {
            MediaSource::Fetch(f) => {
                assert_eq!(f.request.method, "GET");
                assert_eq!(
                    f.request.url,
                    "https://api.telegram.org/file/bot{{bot_token}}/voice/file_12.oga"
                );
                assert!(
                    matches!(f.credentials.as_slice(), [Credential::InUrl(n)] if n == "bot_token")
                );
                assert_eq!(f.mime_type.as_deref(), Some("audio/ogg"));
            }
            MediaSource::Content(_) => panic!("expected a fetch"),
        }
        let none = MediaRef {
            provider_media_id: None,
            url: Some("https://x.test/a".into()),
            ..m.clone()
        };
        assert_eq!(
            fetch_media(&conn(), &none).expect_err("no id").kind,
            ErrorKind::InvalidRequest
        );
        assert_eq!(host.requests().len(), 1);
        assert_eq!(
            fetch_media(&conn_at("https://too-big.test"), &m)
                .expect_err("too big")
                .kind,
            ErrorKind::InvalidRequest
        );
        assert_eq!(
            fetch_media(&conn_at("https://no-path.test"), &m)
                .expect_err("no path")
                .code,
            "no_file_path"
        );
    }

    /// The query values of `setWebhook` rely on the SDK's encoding: only RFC 3986's unreserved
    /// characters pass, every other byte of the UTF-8 text becomes `%XX`.
    #[test]
    fn unreserved_pass_the_rest_is_encoded() {
        assert_eq!(encode("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(
            encode("https://hooks.example.test/hooks/end_1?a=b&c=d"),
            "https%3A%2F%2Fhooks.example.test%2Fhooks%2Fend_1%3Fa%3Db%26c%3Dd"
        );
        assert_eq!(
            encode(r#"["message","edited_message","callback_query"]"#),
            "%5B%22message%22%2C%22edited_message%22%2C%22callback_query%22%5D"
        );
        assert_eq!(encode("a b+{}"), "a%20b%2B%7B%7D");
        assert_eq!(encode("é€"), "%C3%A9%E2%82%AC");
        assert_eq!(encode(""), "");
    }

    #[test]
    fn paths_keep_their_slashes() {
        assert_eq!(encode_path("photos/file_0.jpg"), "photos/file_0.jpg");
        assert_eq!(
            encode_path("documents/my file #1.pdf"),
            "documents/my%20file%20%231.pdf"
        );
    }
}
