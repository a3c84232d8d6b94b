//! The bundled Telegram connector (interface 0.3.0, no Telegram code in the host) end to end
//! against a fake Bot API that answers as Telegram documents: `getMe` proves the token is the
//! bot's, `setWebhook` (its parameters in the query string) registers this connection's
//! endpoint with a secret the host generated, updates are verified by
//! `X-Telegram-Bot-Api-Secret-Token` in the host, the echo policy answers through
//! `sendMessage`, Telegram's errors (403 blocked, 400 chat not found, 429 `retry_after`) land
//! on the reply, inbound photos are downloaded by the host from where the connector points,
//! and a disconnect deletes the webhook.

use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Db, Host, assert_error, graph_ok, setup};
use crate::fake::{Fake, Received};
use crate::ingress::drained;

const TOKEN: &str = "7012345678:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";
const OTHER_TOKEN: &str = "7999999999:AAOtherBotTokenOtherBotTokenOtherBot";
const BOT: &str = "switchyard_test_bot";
/// Chats the fake refuses as Telegram would.
const BLOCKED: i64 = 403;
const MISSING: i64 = 400;
const BUSY: i64 = 429;
/// The fake answers text, so the "photo" is too.
const PHOTO: &[u8] = b"JFIF a small jpeg";

/// What the fake Bot API holds.
#[derive(Default)]
struct BotState {
    /// The registered webhook and its secret token.
    webhook: Option<(String, String)>,
    sent: i64,
}

fn ok(result: Value) -> (u16, String) {
    (200, json!({"ok": true, "result": result}).to_string())
}

fn fail(code: u16, description: &str, retry_after: Option<u64>) -> (u16, String) {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(s) = retry_after {
        body["parameters"] = json!({"retry_after": s});
    }
    (code, body.to_string())
}

/// The query parameters of a request path.
fn query(path: &str) -> Vec<(String, String)> {
    let q = path.split_once('?').map_or("", |(_, q)| q);
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(q: &[(String, String)], k: &str) -> Option<String> {
    q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
}

/// A Bot API: two bots by token, every method the connector uses, refusals by chat id.
async fn bot_api(state: Arc<Mutex<BotState>>) -> Fake {
    Fake::start_with(move |r: &Received| {
        let path = r.path.split('?').next().unwrap_or_default().to_string();
        if let Some(file) = path.strip_prefix(&format!("/file/bot{TOKEN}/")) {
            return match file {
                "photos/file_7.jpg" => (200, String::from_utf8_lossy(PHOTO).into_owned()),
                _ => fail(404, "Not Found", None),
            };
        }
        let (token, method) = match path
            .strip_prefix("/bot")
            .and_then(|rest| rest.rsplit_once('/'))
        {
            Some(x) => x,
            None => return fail(404, "Not Found", None),
        };
        let me = match token {
            TOKEN => json!({"id": 7012345678_i64, "is_bot": true, "first_name": "Test", "username": BOT}),
            OTHER_TOKEN => json!({"id": 7999999999_i64, "is_bot": true, "first_name": "Other", "username": "other_shop_bot"}),
            _ => return fail(401, "Unauthorized", None),
        };
        let body: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
        let mut s = state.lock().expect("lock");
        match method {
            "getMe" => ok(me),
            "getWebhookInfo" => ok(json!({
                "url": s.webhook.as_ref().map(|w| w.0.clone()).unwrap_or_default(),
                "has_custom_certificate": false,
                "pending_update_count": 0
            })),
            "setWebhook" => {
                let q = query(&r.path);
                match (param(&q, "url"), param(&q, "secret_token")) {
                    (Some(url), Some(secret))
                        if secret.len() <= 256
                            && secret
                                .bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
                    {
                        s.webhook = Some((url, secret));
                        (
                            200,
                            json!({"ok": true, "result": true, "description": "Webhook was set"})
                                .to_string(),
                        )
                    }
                    _ => fail(400, "Bad Request: bad webhook: secret token contains unallowed characters", None),
                }
            }
            "deleteWebhook" => {
                s.webhook = None;
                ok(json!(true))
            }
            "getFile" => match body["file_id"].as_str() {
                Some("AgACAgIAAxkBAAIBZ2") => ok(json!({
                    "file_id": "AgACAgIAAxkBAAIBZ2", "file_unique_id": "AQADx",
                    "file_size": PHOTO.len(), "file_path": "photos/file_7.jpg"
                })),
                _ => fail(400, "Bad Request: invalid file_id", None),
            },
            "sendMessage" | "sendPhoto" | "sendDocument" => {
                let chat = body["chat_id"].as_i64().unwrap_or_default();
                match chat {
                    BLOCKED => fail(403, "Forbidden: bot was blocked by the user", None),
                    MISSING => fail(400, "Bad Request: chat not found", None),
                    BUSY => fail(429, "Too Many Requests: retry after 3", Some(3)),
                    _ => {
                        s.sent += 1;
                        ok(json!({
                            "message_id": 500 + s.sent,
                            "date": 1_764_000_000,
                            "chat": {"id": chat, "type": "private"},
                            "text": body["text"].clone()
                        }))
                    }
                }
            }
            _ => fail(404, "Not Found", None),
        }
    })
    .await
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A private-chat text message update.
fn text_update(update_id: i64, chat: i64, message_id: i64, date: i64, text: &str) -> Value {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "from": {"id": chat, "is_bot": false, "first_name": "Ada", "last_name": "L", "language_code": "en"},
            "chat": {"id": chat, "first_name": "Ada", "last_name": "L", "type": "private"},
            "date": date,
            "text": text
        }
    })
}

struct Run {
    h: Host,
    fake: Fake,
    state: Arc<Mutex<BotState>>,
    tenant: (String, String),
    connection: Value,
    client: reqwest::Client,
}

impl Run {
    fn secret(&self) -> String {
        self.state
            .lock()
            .expect("lock")
            .webhook
            .as_ref()
            .map(|w| w.1.clone())
            .expect("a webhook is set")
    }

    async fn post(&self, update: &Value, secret: Option<&str>) -> reqwest::Response {
        let endpoint = self.connection["endpoint_id"].as_str().expect("endpoint");
        let mut req = self
            .client
            .post(format!("{}/hooks/{endpoint}", self.h.base))
            .header("content-type", "application/json")
            .body(update.to_string());
        if let Some(s) = secret {
            req = req.header("x-telegram-bot-api-secret-token", s);
        }
        req.send().await.expect("post")
    }

    /// Post an update as Telegram does, expect 200, wait for the jobs.
    async fn deliver(&self, update: &Value) {
        let r = self.post(update, Some(&self.secret())).await;
        assert_eq!(r.status(), 200);
        drained(&self.h).await;
    }

    /// Messages of the conversation with Telegram user `chat`, newest first.
    async fn messages(&self, chat: i64) -> Vec<Value> {
        self.try_messages(chat)
            .await
            .unwrap_or_else(|| panic!("no conversation with {chat}"))
    }

    /// Messages of the conversation with Telegram user `chat`, if it exists yet.
    async fn try_messages(&self, chat: i64) -> Option<Vec<Value>> {
        let (conv, msgs) = self
            .h
            .conversation_with(&self.tenant, "contact_user_id", &chat.to_string())
            .await?;
        assert!(conv["contact_phone"].is_null(), "{conv}");
        Some(msgs)
    }

    /// The bodies of what the fake received for a Bot API method.
    fn calls(&self, method: &str) -> Vec<Received> {
        let suffix = format!("/{method}");
        self.fake
            .requests()
            .into_iter()
            .filter(|r| {
                r.path
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .ends_with(&suffix)
            })
            .collect()
    }
}

async fn start() -> Run {
    let graph = Fake::start_with(graph_ok).await;
    let state = Arc::new(Mutex::new(BotState::default()));
    let fake = bot_api(state.clone()).await;
    let api_urls = format!("telegram={}", fake.origin);
    let h = Host::start_with(Db::Sqlite, &graph.origin, &["--api-urls", &api_urls]).await;
    let s = setup(&h).await;
    let path = format!("/api/v1/tenants/{}/connections", s.a.0);
    let body = |token: &str, secrets: Value| {
        let mut secrets = secrets;
        secrets["bot_token"] = json!(token);
        json!({
            "connector": "telegram",
            "settings": {"bot_username": BOT},
            "secrets": secrets,
            "consent": {"document_version": "2026-11", "scopes": ["messaging"]}
        })
    };
    // A token Telegram refuses: 401 → invalid_credentials, no webhook set.
    let bad = h
        .call(
            Method::POST,
            &path,
            Some(&s.a.1),
            Some(body("1:bad", json!({}))),
        )
        .await;
    assert_error(&bad, 422, "invalid_credentials");
    // Another bot's token cannot claim this bot's username.
    let other = h
        .call(
            Method::POST,
            &path,
            Some(&s.a.1),
            Some(body(OTHER_TOKEN, json!({}))),
        )
        .await;
    assert_error(&other, 422, "invalid_credentials");
    assert!(
        other.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("other_shop_bot")),
        "{}",
        other.1
    );
    // One spelling per bot: Telegram usernames ignore case, so the address is lower case and
    // another tenant cannot claim `Switchyard_Test_Bot` beside `switchyard_test_bot`.
    let mut cased = body(TOKEN, json!({}));
    cased["settings"]["bot_username"] = json!("Switchyard_Test_Bot");
    let cased = h.call(Method::POST, &path, Some(&s.a.1), Some(cased)).await;
    assert_error(&cased, 422, "invalid_settings");
    // The webhook secret is the host's to make.
    let given = h
        .call(
            Method::POST,
            &path,
            Some(&s.a.1),
            Some(body(TOKEN, json!({"webhook_secret": "mine"}))),
        )
        .await;
    assert_error(&given, 422, "invalid_secrets");
    assert!(state.lock().expect("lock").webhook.is_none());

    let c = h
        .ok(Method::POST, &path, &s.a.1, Some(body(TOKEN, json!({}))))
        .await;
    assert_eq!(c["status"], "live", "{c}");
    assert_eq!(c["channel_address"], BOT);
    // setWebhook pointed Telegram at this connection's own endpoint, with a generated secret
    // that never shows in the API.
    let (url, secret) = state
        .lock()
        .expect("lock")
        .webhook
        .clone()
        .expect("setWebhook");
    assert_eq!(url, c["webhook_url"].as_str().expect("webhook_url"));
    assert_eq!(secret.len(), 43, "{secret}");
    let shown = c.to_string();
    assert!(
        !shown.contains(&secret) && !shown.contains(TOKEN),
        "{shown}"
    );
    // Telegram saw the token only in the path it belongs in.
    for r in fake.requests() {
        assert!(
            r.headers.get("authorization").is_none(),
            "{}: no Authorization header on the Bot API",
            r.path
        );
    }

    // The same bot in another tenant: 409 before Telegram is touched again.
    let set_before = fake
        .requests()
        .iter()
        .filter(|r| r.path.contains("/setWebhook"))
        .count();
    let again = h
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{}/connections", s.b.0),
            Some(&s.b.1),
            Some(body(TOKEN, json!({}))),
        )
        .await;
    assert_error(&again, 409, "number_already_connected");
    let set_after = fake
        .requests()
        .iter()
        .filter(|r| r.path.contains("/setWebhook"))
        .count();
    assert_eq!(set_before, set_after, "no second setWebhook");
    assert_eq!(
        state.lock().expect("lock").webhook.as_ref().map(|w| &w.1),
        Some(&secret)
    );

    h.ok(
        Method::PUT,
        &format!("/api/v1/tenants/{}/policy", s.a.0),
        &s.a.1,
        Some(json!({"plugin": "echo"})),
    )
    .await;
    Run {
        h,
        fake,
        state,
        tenant: s.a.clone(),
        connection: c,
        client: reqwest::Client::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn telegram_connects_verifies_echoes_maps_errors_and_disconnects() {
    let r = start().await;

    // Updates without the secret, or with another, are refused before anything is stored.
    let update = text_update(1, 1001, 41, now(), "Hello there");
    assert_eq!(r.post(&update, None).await.status(), 401);
    assert_eq!(r.post(&update, Some("not-the-secret")).await.status(), 403);
    drained(&r.h).await;
    assert!(r.calls("sendMessage").is_empty());

    // The real one: stored, echoed through sendMessage quoting the message it answers.
    r.deliver(&update).await;
    let sends = r.calls("sendMessage");
    assert_eq!(sends.len(), 1, "one reply");
    let sent: Value = serde_json::from_slice(&sends[0].body).expect("json");
    assert_eq!(sent["chat_id"], 1001);
    assert_eq!(sent["text"], "Hello there");
    assert_eq!(sent["reply_parameters"]["message_id"], 41);
    let msgs = r.messages(1001).await;
    let reply = msgs
        .iter()
        .find(|m| m["direction"] == "out")
        .expect("reply");
    assert_eq!(reply["status"], "accepted", "{reply}");
    assert_eq!(reply["provider_message_id"], "1001:501");
    // The same update again (Telegram retries until it gets a 200): applied once.
    r.deliver(&update).await;
    assert_eq!(r.calls("sendMessage").len(), 1);

    // Telegram has no 24-hour window: a customer who wrote two days ago still gets free text,
    // where WhatsApp would need a template.
    r.deliver(&text_update(2, 1002, 7, now() - 2 * 86_400, "still there?"))
        .await;
    let sends = r.calls("sendMessage");
    assert_eq!(sends.len(), 2, "answered outside a WhatsApp window");

    // Telegram's refusals, classified: blocked and unknown chats fail for good.
    r.deliver(&text_update(3, BLOCKED, 1, now(), "hi")).await;
    let blocked = r.messages(BLOCKED).await;
    let out = blocked
        .iter()
        .find(|m| m["direction"] == "out")
        .expect("reply");
    assert_eq!(out["status"], "failed", "{out}");
    assert_eq!(out["error_kind"], "invalid-recipient", "{out}");
    assert_eq!(out["error_code"], "403", "{out}");
    r.deliver(&text_update(4, MISSING, 1, now(), "hi")).await;
    let missing = r.messages(MISSING).await;
    let out = missing
        .iter()
        .find(|m| m["direction"] == "out")
        .expect("reply");
    assert_eq!(out["error_kind"], "invalid-recipient", "{out}");
    // A photo: the connector answers getFile and points the host at the file, which the host
    // downloads itself.
    r.deliver(&json!({
        "update_id": 6,
        "message": {
            "message_id": 42,
            "from": {"id": 1001, "is_bot": false, "first_name": "Ada"},
            "chat": {"id": 1001, "first_name": "Ada", "type": "private"},
            "date": now(),
            "photo": [
                {"file_id": "AgACAgIAAxkBAAIBZ1", "file_unique_id": "AQADw", "file_size": 1200, "width": 90, "height": 67},
                {"file_id": "AgACAgIAAxkBAAIBZ2", "file_unique_id": "AQADx", "file_size": 30000, "width": 800, "height": 600}
            ],
            "caption": "my receipt"
        }
    }))
    .await;
    let msgs = r.messages(1001).await;
    let photo = msgs
        .iter()
        .find(|m| m["kind"] == "image")
        .unwrap_or_else(|| panic!("no photo: {msgs:?}"));
    assert_eq!(photo["body"], "my receipt");
    let media = &photo["media"][0];
    assert_eq!(media["status"], "stored", "{photo}");
    let bytes = r
        .client
        .get(format!(
            "{}/api/v1/tenants/{}/media/{}",
            r.h.base,
            r.tenant.0,
            media["id"].as_str().expect("media id")
        ))
        .bearer_auth(&r.tenant.1)
        .send()
        .await
        .expect("media");
    assert_eq!(bytes.status(), 200);
    assert_eq!(bytes.bytes().await.expect("bytes").as_ref(), PHOTO);
    assert_eq!(r.calls("getFile").len(), 1);

    // 429 with `retry_after`: the reply waits as long as Telegram asks, queued meanwhile.
    let posted = r
        .post(&text_update(5, BUSY, 1, now(), "hi"), Some(&r.secret()))
        .await;
    assert_eq!(posted.status(), 200);
    let mut waited = None;
    for _ in 0..400 {
        let busy = r.try_messages(BUSY).await.unwrap_or_default();
        if let Some(out) = busy.iter().find(|m| m["direction"] == "out")
            && out["send_attempts"].as_i64().unwrap_or_default() >= 1
        {
            waited = Some(out.clone());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let out = waited.expect("the rate-limited reply was attempted");
    assert_eq!(out["status"], "queued", "{out}");

    // The owner's test send reaches a user by chat id: no phone numbers on Telegram.
    let id = r.connection["id"].as_str().expect("id");
    let test = format!("/api/v1/tenants/{}/connections/{id}/test", r.tenant.0);
    let sent =
        r.h.ok(
            Method::POST,
            &test,
            &r.tenant.1,
            Some(json!({"to_user_id": "1001", "message": "Test from Switchyard"})),
        )
        .await;
    assert!(
        sent["provider_message_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("1001:")),
        "{sent}"
    );
    let both =
        r.h.call(
            Method::POST,
            &test,
            Some(&r.tenant.1),
            Some(json!({"to": "+14155550123", "to_user_id": "1001", "message": "x"})),
        )
        .await;
    assert_error(&both, 422, "invalid_recipient");

    // Disconnect: Telegram's webhook is deleted, then the connection's secrets are shredded.
    let gone =
        r.h.ok(
            Method::DELETE,
            &format!("/api/v1/tenants/{}/connections/{id}", r.tenant.0),
            &r.tenant.1,
            None,
        )
        .await;
    assert_eq!(gone["status"], "disconnected");
    assert!(r.state.lock().expect("lock").webhook.is_none());
    assert_eq!(r.calls("deleteWebhook").len(), 1);
}
