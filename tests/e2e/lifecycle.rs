//! The Meta connection's lifecycle against a fake Graph API that checks the bearer token and the
//! versioned path as Meta does: inbound media downloaded by its own job (retried without a
//! second inbound message) and served to its tenant only; templates listed and a non-approved
//! one refused at send; the periodic credential check (190 → `expired`, an expiring token → a
//! warning) and the sweep of connections stuck in `connecting`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest as _;
use switchyard::store::Store;

use crate::api::{Db, Host, graph_read, setup};
use crate::fake::{Fake, Received};
use crate::ingress::{drained, now_s, sign};

const IMAGE: &str = "\u{1}fake-jpeg-bytes\u{2}";
const WABA: &str = "102290129340398";

/// What the fake Graph API is told to do.
#[derive(Default)]
struct Graph {
    /// Its own origin (the media download URLs point back at it).
    origin: Mutex<String>,
    /// Media downloads still to fail with a 500.
    failing_downloads: AtomicUsize,
    /// `token-a` is refused with 190.
    a_expired: AtomicBool,
    /// No app is subscribed to the account's webhooks.
    unsubscribed: AtomicBool,
    /// Sends are refused with 132015 (template paused).
    paused_at_send: AtomicBool,
    /// The status Meta reports for the `follow_up` template.
    follow_up_status: Mutex<String>,
    /// What `debug_token` says of `token-a`: `(expires_at, data_access_expires_at, is_valid)`
    /// in Unix seconds; unset: the call fails (as for an app without the permission).
    debug_a: Mutex<Option<(i64, i64, bool)>>,
}

fn meta_error(code: i64, message: &str) -> String {
    json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}})
        .to_string()
}

impl Graph {
    fn answer(&self, r: &Received) -> (u16, String) {
        let token = r
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // `1|app-secret-1` is the shared endpoint's app token (app id and secret).
        let known = [
            "Bearer token-a",
            "Bearer token-b",
            "Bearer token-a2",
            "Bearer 1|app-secret-1",
        ]
        .contains(&token);
        if !known || (token == "Bearer token-a" && self.a_expired.load(Ordering::SeqCst)) {
            return (
                401,
                meta_error(190, "Error validating access token: Session has expired"),
            );
        }
        let path = r.path.split('?').next().unwrap_or("");
        if path == "/dl/MEDIA1" {
            if self
                .failing_downloads
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return (500, meta_error(2, "Service temporarily unavailable"));
            }
            return (200, IMAGE.to_string());
        }
        let Some(rest) = path.strip_prefix("/v26.0/") else {
            return (400, meta_error(2635, "Unknown or missing API version"));
        };
        match (r.method.as_str(), rest) {
            ("GET", "debug_token") if token == "Bearer 1|app-secret-1" => {
                let asked = r.path.split_once("input_token=").map(|(_, t)| t);
                match (asked, *self.debug_a.lock().expect("lock")) {
                    (Some("token-a"), Some((expires, data_access, valid))) => (
                        200,
                        json!({"data": {"app_id": "1", "type": "USER", "application": "Switchyard",
                               "data_access_expires_at": data_access, "expires_at": expires,
                               "is_valid": valid, "issued_at": now_s() - 86_400,
                               "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"],
                               "granular_scopes": [{"scope": "whatsapp_business_messaging", "target_ids": [WABA]}],
                               "user_id": "10225"}})
                        .to_string(),
                    ),
                    _ => (
                        400,
                        meta_error(100, "(#100) You must provide an app access token"),
                    ),
                }
            }
            ("GET", "MEDIA1") => {
                // A fresh, short-lived URL every time.
                let n = r.path.len();
                (
                    200,
                    json!({"messaging_product": "whatsapp", "id": "MEDIA1", "mime_type": "image/jpeg",
                           "sha256": hex::encode(sha2::Sha256::digest(IMAGE.as_bytes())),
                           "file_size": IMAGE.len(),
                           "url": format!("{}/dl/MEDIA1?ext={n}", self.origin.lock().expect("lock"))})
                    .to_string(),
                )
            }
            ("GET", "1001" | "2002") => graph_read(r).expect("a number node"),
            ("GET", p) if p == format!("{WABA}/phone_numbers") => {
                graph_read(r).expect("the account's numbers")
            }
            ("GET", p) if p == format!("{WABA}/subscribed_apps") => {
                if self.unsubscribed.load(Ordering::SeqCst) {
                    (200, json!({"data": []}).to_string())
                } else {
                    (
                        200,
                        json!({"data": [{"whatsapp_business_api_data": {"id": "67084", "link": "https://switchyard.example", "name": "Switchyard"}}]})
                            .to_string(),
                    )
                }
            }
            ("GET", p) if p == format!("{WABA}/message_templates") => (
                200,
                json!({"data": [
                    {"id": "1", "name": "hello_world", "language": "en_US", "category": "UTILITY", "status": "APPROVED"},
                    {"id": "2", "name": "follow_up", "language": "en_US", "category": "UTILITY",
                     "status": *self.follow_up_status.lock().expect("lock")}
                ], "paging": {"cursors": {"before": "a", "after": "b"}}})
                .to_string(),
            ),
            ("POST", "1001/messages") if self.paused_at_send.load(Ordering::SeqCst) => (
                400,
                meta_error(
                    132015,
                    "(#132015) Cannot send message as the template has been paused",
                ),
            ),
            ("POST", "1001/messages") => (
                200,
                json!({"messaging_product": "whatsapp", "contacts": [{"input": "777", "wa_id": "777"}],
                       "messages": [{"id": "wamid.OUT1"}]})
                .to_string(),
            ),
            _ => (404, meta_error(100, "Unsupported get request")),
        }
    }
}

async fn fake_graph() -> (Arc<Graph>, Fake) {
    let g = Arc::new(Graph::default());
    *g.follow_up_status.lock().expect("lock") = "PAUSED".into();
    let answer = g.clone();
    let fake = Fake::start_with(move |r| answer.answer(r)).await;
    *g.origin.lock().expect("lock") = fake.origin.clone();
    (g, fake)
}

fn image_message(wamid: &str) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "1001"},
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [{"from": "16505551234", "id": wamid, "timestamp": now_s().to_string(),
                          "type": "image", "image": {"caption": "the broken part", "mime_type": "image/jpeg",
                          "sha256": hex::encode(sha2::Sha256::digest(IMAGE.as_bytes())), "id": "MEDIA1"}}]
        }}]}]
    })
    .to_string()
    .into_bytes()
}

fn text_message(from: &str, wamid: &str, text: &str, timestamp: i64) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA, "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "1001"},
            "contacts": [{"profile": {"name": format!("Contact {from}")}, "wa_id": from}],
            "messages": [{"from": from, "id": wamid, "timestamp": timestamp.to_string(),
                          "type": "text", "text": {"body": text}}]
        }}]}]
    })
    .to_string()
    .into_bytes()
}

async fn post_hook(h: &Host, endpoint: &str, body: Vec<u8>) {
    let r = reqwest::Client::new()
        .post(format!("{}/hooks/{endpoint}", h.base))
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign("app-secret-1", &body))
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 200);
}

/// The messages of tenant A's conversation with `phone`, newest first.
async fn messages_with(h: &Host, tenant: &(String, String), phone: &str) -> Vec<Value> {
    let convs = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/conversations", tenant.0),
            &tenant.1,
            None,
        )
        .await;
    let conv = convs["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|c| c["contact_phone"] == phone)
        .unwrap_or_else(|| panic!("no conversation with {phone}: {convs}"))
        .clone();
    let msgs = h
        .ok(
            Method::GET,
            &format!(
                "/api/v1/tenants/{}/conversations/{}/messages",
                tenant.0,
                conv["id"].as_str().expect("id")
            ),
            &tenant.1,
            None,
        )
        .await;
    msgs["data"].as_array().expect("data").clone()
}

fn count(fake: &Fake, method: &str, path_prefix: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.method == method && r.path.starts_with(path_prefix))
        .count()
}

async fn store_of(h: &Host) -> Store {
    Store::open(&format!(
        "sqlite://{}",
        h.data.path().join("switchyard.db").display()
    ))
    .await
    .expect("open")
}

async fn sql(h: &Host, statement: &str) {
    use sqlx::Connection as _;
    let mut c = sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}",
        h.data.path().join("switchyard.db").display()
    ))
    .await
    .expect("sqlite");
    sqlx::query(sqlx::AssertSqlSafe(statement.to_string()))
        .execute(&mut c)
        .await
        .expect("sql");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inbound_media_is_downloaded_by_its_own_job_retried_and_served_to_its_tenant_only() {
    let (g, graph) = fake_graph().await;
    g.failing_downloads.store(1, Ordering::SeqCst);
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    post_hook(&h, &s.endpoint, image_message("wamid.IMG1")).await;
    let states = drained(&h).await;
    assert!(states.iter().all(|(s, _)| s == "done"), "{states:?}");

    // One inbound message, its media stored after a retry that asked for a fresh URL.
    let msgs = messages_with(&h, &s.a, "16505551234").await;
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert_eq!(msgs[0]["kind"], "image");
    let media = &msgs[0]["media"][0];
    assert_eq!(media["status"], "stored", "{media}");
    assert_eq!(media["size_bytes"], IMAGE.len());
    assert_eq!(media["caption"], "the broken part");
    assert_eq!(
        media["sha256"],
        hex::encode(sha2::Sha256::digest(IMAGE.as_bytes()))
    );
    assert_eq!(count(&graph, "GET", "/v26.0/MEDIA1"), 2);
    assert_eq!(count(&graph, "GET", "/dl/MEDIA1"), 2);
    let id = media["id"].as_str().expect("id");

    // Any role of tenant A gets the bytes with their type; tenant B gets a 404 either way.
    let client = reqwest::Client::new();
    let url = |tenant: &str| format!("{}/api/v1/tenants/{tenant}/media/{id}", h.base);
    let r = client
        .get(url(&s.a.0))
        .bearer_auth(&s.a_keys["viewer"])
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert_eq!(r.bytes().await.expect("bytes").as_ref(), IMAGE.as_bytes());
    for (tenant, key) in [(&s.b.0, &s.b.1), (&s.a.0, &s.b.1)] {
        let r = client
            .get(url(tenant))
            .bearer_auth(key)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 404);
    }
    let r = client.get(url(&s.a.0)).send().await.expect("get");
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn media_not_downloaded_yet_is_a_409() {
    let (g, graph) = fake_graph().await;
    // Every download fails: the media stays pending while the job retries.
    g.failing_downloads.store(usize::MAX, Ordering::SeqCst);
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    post_hook(&h, &s.endpoint, image_message("wamid.IMG2")).await;
    let mut media = Value::Null;
    for _ in 0..600 {
        if count(&graph, "GET", "/dl/MEDIA1") > 0 {
            let msgs = messages_with(&h, &s.a, "16505551234").await;
            media = msgs[0]["media"][0].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(media["status"], "pending", "{media}");
    let got = h
        .call(
            Method::GET,
            &format!(
                "/api/v1/tenants/{}/media/{}",
                s.a.0,
                media["id"].as_str().expect("id")
            ),
            Some(&s.a.1),
            None,
        )
        .await;
    crate::api::assert_error(&got, 409, "media_not_downloaded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn templates_are_listed_and_a_paused_one_is_refused_without_a_provider_call() {
    let (g, graph) = fake_graph().await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    let path = format!(
        "/api/v1/tenants/{}/connections/{}/templates",
        s.a.0, s.a_connection
    );
    // Synced by an admin through the connector; then any role reads the stored list.
    let synced = h
        .ok(
            Method::POST,
            &format!("{path}/sync"),
            &s.a_keys["admin"],
            None,
        )
        .await;
    let list = h.ok(Method::GET, &path, &s.a_keys["viewer"], None).await;
    assert_eq!(list, synced);
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 2, "{list:?}");
    let by_name = |n: &str| {
        list.iter()
            .find(|t| t["name"] == n)
            .unwrap_or_else(|| panic!("{n}"))
            .clone()
    };
    assert_eq!(by_name("hello_world")["status"], "APPROVED");
    assert_eq!(by_name("hello_world")["sendable"], true);
    assert_eq!(by_name("hello_world")["category"], "utility");
    assert_eq!(by_name("follow_up")["status"], "PAUSED");
    assert_eq!(by_name("follow_up")["sendable"], false);
    assert!(
        graph.requests().iter().any(|r| r
            .path
            .starts_with(&format!("/v26.0/{WABA}/message_templates"))),
        "listed live"
    );
    // Another tenant cannot list A's connection.
    let other = h.call(Method::GET, &path, Some(&s.b.1), None).await;
    assert_eq!(other.0, 404, "{}", other.1);

    // Outside the window the policy's template fallback `follow_up` would go out: it is paused,
    // so the reply fails with a clear error and Meta is never called.
    h.ok(
        Method::PUT,
        &format!("/api/v1/tenants/{}/policy", s.a.0),
        &s.a.1,
        Some(json!({"plugin": "auto-reply", "config": {
            "rules": [{"keywords": ["hours"], "reply": "We are open 9-17."}],
            "fallback": {"name": "follow_up", "language": "en_US", "category": "utility", "parameters": []}
        }})),
    )
    .await;
    let old = now_s() - 25 * 3600;
    post_hook(
        &h,
        &s.endpoint,
        text_message("777", "wamid.T1", "What are your hours?", old),
    )
    .await;
    drained(&h).await;
    let msgs = messages_with(&h, &s.a, "777").await;
    assert_eq!(msgs[0]["direction"], "out", "{msgs:?}");
    assert_eq!(msgs[0]["status"], "failed", "{msgs:?}");
    assert_eq!(msgs[0]["error_kind"], "template-not-approved");
    assert!(
        msgs[0]["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("PAUSED")),
        "{msgs:?}"
    );
    assert_eq!(count(&graph, "POST", "/v26.0/1001/messages"), 0);

    // Approved again and re-listed: the next one goes out.
    *g.follow_up_status.lock().expect("lock") = "APPROVED".into();
    h.ok(Method::POST, &format!("{path}/sync"), &s.a.1, None)
        .await;
    post_hook(
        &h,
        &s.endpoint,
        text_message("778", "wamid.T2", "What are your hours?", old),
    )
    .await;
    drained(&h).await;
    let sends: Vec<Value> = graph
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.starts_with("/v26.0/1001/messages"))
        .filter_map(|r| serde_json::from_slice(&r.body).ok())
        .collect();
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(sends[0]["template"]["name"], "follow_up");

    // Meta pauses it after approval (132015 on a send): the host remembers, and the next reply
    // with it is refused here without calling Meta.
    g.paused_at_send.store(true, Ordering::SeqCst);
    post_hook(
        &h,
        &s.endpoint,
        text_message("779", "wamid.T3", "What are your hours?", old),
    )
    .await;
    drained(&h).await;
    let msgs = messages_with(&h, &s.a, "779").await;
    assert_eq!(msgs[0]["status"], "failed", "{msgs:?}");
    assert_eq!(msgs[0]["error_code"], "132015", "{msgs:?}");
    let posts = count(&graph, "POST", "/v26.0/1001/messages");
    post_hook(
        &h,
        &s.endpoint,
        text_message("780", "wamid.T4", "What are your hours?", old),
    )
    .await;
    drained(&h).await;
    let msgs = messages_with(&h, &s.a, "780").await;
    assert_eq!(msgs[0]["error_kind"], "template-not-approved", "{msgs:?}");
    assert_eq!(count(&graph, "POST", "/v26.0/1001/messages"), posts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_health_marks_expired_warns_before_expiry_and_stuck_connects_are_swept() {
    let (g, graph) = fake_graph().await;
    let h = Host::start_with(
        Db::Sqlite,
        &graph.origin,
        &["--health-interval-secs", "1", "--token-warn-days", "7"],
    )
    .await;
    let s = setup(&h).await;
    // Meta now refuses A's token (190); B's token expires in two days (onboarding recorded it)
    // and no app is subscribed to B's account any more.
    g.a_expired.store(true, Ordering::SeqCst);
    g.unsubscribed.store(true, Ordering::SeqCst);
    let in_two_days = switchyard::store::now_ms() + 2 * 86_400_000;
    sql(
        &h,
        &format!(
            "UPDATE connections SET token_expires_at = {in_two_days} WHERE id = '{}'",
            s.b_connection
        ),
    )
    .await;
    let show = |tenant: &(String, String), c: &str| {
        let path = format!("/api/v1/tenants/{}/connections/{c}", tenant.0);
        let key = tenant.1.clone();
        let h = &h;
        async move { h.ok(Method::GET, &path, &key, None).await }
    };
    let mut a = Value::Null;
    let mut b = Value::Null;
    for _ in 0..600 {
        a = show(&s.a, &s.a_connection).await;
        b = show(&s.b, &s.b_connection).await;
        if a["status"] == "expired" && !b["status_reason"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(a["status"], "expired", "{a}");
    let reason = a["status_reason"].as_str().expect("reason");
    assert!(
        reason.contains("190") && reason.contains("reconnect"),
        "{reason}"
    );
    assert_eq!(b["status"], "live", "{b}");
    let warning = b["status_reason"].as_str().expect("warning");
    assert!(
        warning.starts_with("warning: the access token expires on ")
            && warning.contains(&switchyard::lifecycle::date(in_two_days))
            && warning.contains("no app is subscribed"),
        "{warning}"
    );
    assert!(
        graph
            .requests()
            .iter()
            .any(|r| r.path == format!("/v26.0/{WABA}/subscribed_apps")),
        "the health check asked for the subscription"
    );

    // A connection left in `connecting` for long is swept to `error`; a fresh one is not.
    sql(
        &h,
        &format!(
            "UPDATE connections SET status = 'connecting', updated_at = 0 WHERE id = '{}'",
            s.b_connection
        ),
    )
    .await;
    let store = store_of(&h).await;
    assert_eq!(
        switchyard::lifecycle::sweep_once(&store)
            .await
            .expect("sweep"),
        1
    );
    let b = show(&s.b, &s.b_connection).await;
    assert_eq!(b["status"], "error", "{b}");
    assert_eq!(b["status_reason"], "connect did not finish");
    sql(
        &h,
        &format!(
            "UPDATE connections SET status = 'connecting', updated_at = {} WHERE id = '{}'",
            switchyard::store::now_ms(),
            s.b_connection
        ),
    )
    .await;
    assert_eq!(
        switchyard::lifecycle::sweep_once(&store)
            .await
            .expect("sweep"),
        0
    );
}

/// Reference page 000: "Your contacts and history survive the reconnection." A tenant reconnects
/// its expired number, and later its disconnected one: each time the same connection is
/// renewed in place (200, same id, new credentials), and the customer's next message lands in
/// the conversation it already had. Meanwhile nobody else can take the number.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reconnect_renews_the_connection_and_keeps_contacts_and_history() {
    let (g, graph) = fake_graph().await;
    let sink = crate::smtp::Sink::start().await;
    let h = Host::start_with(
        Db::Sqlite,
        &graph.origin,
        &["--health-interval-secs", "1", "--smtp-url", &sink.url],
    )
    .await;
    let s = setup(&h).await;
    let connections = format!("/api/v1/tenants/{}/connections", s.a.0);
    let path = format!("{connections}/{}", s.a_connection);
    // An admin at the desk, to be told when the number stops working.
    h.ok(
        Method::POST,
        &format!("/api/v1/tenants/{}/invitations", s.a.0),
        &s.a.1,
        Some(json!({"email": "admin@lifecycle.test", "role": "admin"})),
    )
    .await;
    let mut admin = crate::people::Browser::new(&h);
    admin
        .accept(
            &sink,
            "admin@lifecycle.test",
            "Ada",
            "a long enough passphrase",
        )
        .await;
    let conversations = format!("/api/v1/tenants/{}/conversations", s.a.0);
    post_hook(
        &h,
        &s.endpoint,
        text_message("16505551234", "wamid.RC1", "first", now_s()),
    )
    .await;
    drained(&h).await;
    let before = h.ok(Method::GET, &conversations, &s.a.1, None).await;
    let conversation = before["data"][0]["id"].clone();
    assert!(conversation.is_string(), "{before}");

    // Meta refuses the token: the health check marks the connection expired.
    g.a_expired.store(true, Ordering::SeqCst);
    let mut con = Value::Null;
    for _ in 0..600 {
        con = h.ok(Method::GET, &path, &s.a.1, None).await;
        if con["status"] == "expired" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(con["status"], "expired", "{con}");
    let listed = admin
        .call(
            Method::GET,
            &format!("/api/v1/tenants/{}/notifications", s.a.0),
            None,
        )
        .await;
    let note = &listed.1["data"][0];
    assert_eq!(
        (note["kind"].clone(), note["connection_id"].clone()),
        (json!("connection"), json!(s.a_connection)),
        "the admin is told: {}",
        listed.1
    );
    // The expired number still belongs to A: another tenant is refused.
    let other = h
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{}/connections", s.b.0),
            Some(&s.b.1),
            Some(crate::api::connect_body(&s.endpoint, "1001", "token-b")),
        )
        .await;
    crate::api::assert_error(&other, 409, "number_already_connected");

    // A connects 1001 again: the same connection, renewed, live (the answer, for more checks).
    let reconnect = || async {
        let (status, renewed) = h
            .call(
                Method::POST,
                &connections,
                Some(&s.a.1),
                Some(crate::api::connect_body(&s.endpoint, "1001", "token-a2")),
            )
            .await;
        assert_eq!(status, 200, "{renewed}");
        assert_eq!(renewed["id"], s.a_connection.as_str());
        assert_eq!(renewed["status"], "live");
        renewed
    };
    // The customer writes again: the message joins the one conversation there is.
    let customer_writes = |wamid: &'static str, text: &'static str, total: usize| {
        let (h, s, conversations, conversation) = (&h, &s, &conversations, &conversation);
        async move {
            post_hook(
                h,
                &s.endpoint,
                text_message("16505551234", wamid, text, now_s()),
            )
            .await;
            drained(h).await;
            let list = h.ok(Method::GET, conversations, &s.a.1, None).await;
            assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
            assert_eq!(&list["data"][0]["id"], conversation);
            assert_eq!(messages_with(h, &s.a, "16505551234").await.len(), total);
        }
    };
    // A reconnects with a new token: the same connection, renewed.
    let renewed = reconnect().await;
    assert!(renewed["status_reason"].is_null(), "{renewed}");
    customer_writes("wamid.RC2", "second", 2).await;

    // Disconnected, then connected again: still the same connection and conversation; the
    // ledger shows each grant.
    let gone = h.ok(Method::DELETE, &path, &s.a_keys["admin"], None).await;
    assert_eq!(gone["status"], "disconnected");
    let back = reconnect().await;
    assert!(back["disconnected_at"].is_null(), "{back}");
    customer_writes("wamid.RC3", "third", 3).await;
    let listed = h.ok(Method::GET, &connections, &s.a.1, None).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");
    let ledger = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/consent", s.a.0),
            &s.a.1,
            None,
        )
        .await;
    let granted = ledger["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|e| e["action"] == "granted" && e["connection_id"] == s.a_connection.as_str())
        .count();
    assert_eq!(granted, 3, "connect, reconnect, connect again: {ledger}");
    // The credentials were replaced: the health check now runs on the new token (the old
    // one is still refused), and the connection stays live.
    let checked = graph.requests().len();
    for _ in 0..600 {
        let new_checks = graph.requests()[checked..]
            .iter()
            .filter(|r| r.path.starts_with("/v26.0/1001?"))
            .count();
        if new_checks > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let later: Vec<_> = graph.requests()[checked..]
        .iter()
        .filter(|r| r.path.starts_with("/v26.0/1001?"))
        .map(|r| {
            r.headers["authorization"]
                .to_str()
                .expect("ascii")
                .to_string()
        })
        .collect();
    assert!(!later.is_empty(), "a health check ran after the reconnect");
    assert!(later.iter().all(|t| t == "Bearer token-a2"), "{later:?}");
    assert_eq!(
        h.ok(Method::GET, &path, &s.a.1, None).await["status"],
        "live"
    );
}

/// A token connected by hand has no expiry on record: the credential check asks Meta's
/// `debug_token` with the endpoint's app token (issue 19, item 7) and warns before the token and
/// the app's data access expire; a token Meta calls invalid marks the number expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn debug_token_warns_of_a_manual_tokens_expiry_and_catches_an_invalid_one() {
    let (g, graph) = fake_graph().await;
    let h = Host::start_with(
        Db::Sqlite,
        &graph.origin,
        &["--health-interval-secs", "1", "--token-warn-days", "7"],
    )
    .await;
    let s = setup(&h).await;
    let path = format!("/api/v1/tenants/{}/connections/{}", s.a.0, s.a_connection);
    let before = h.ok(Method::GET, &path, &s.a.1, None).await;
    assert!(before["token_expires_at"].is_null(), "{before}");
    let (expires, data_access) = (now_s() + 3 * 86_400, now_s() + 5 * 86_400);
    *g.debug_a.lock().expect("lock") = Some((expires, data_access, true));
    let mut a = Value::Null;
    for _ in 0..600 {
        a = h.ok(Method::GET, &path, &s.a.1, None).await;
        if a["status_reason"]
            .as_str()
            .is_some_and(|r| r.contains("data"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(a["status"], "live", "{a}");
    let reason = a["status_reason"].as_str().expect("warning");
    assert!(
        reason.contains(&format!(
            "the access token expires on {}",
            switchyard::lifecycle::date(expires * 1000)
        )) && reason.contains(&format!(
            "access to the business's data ends on {}",
            switchyard::lifecycle::date(data_access * 1000)
        )),
        "{reason}"
    );
    assert!(!a.to_string().contains("app-secret-1") && !a.to_string().contains("token-a"));
    // The app token went to debug_token, and only there.
    let asked: Vec<_> = graph
        .requests()
        .into_iter()
        .filter(|r| {
            r.headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some("Bearer 1|app-secret-1")
        })
        .map(|r| r.path)
        .collect();
    assert!(
        !asked.is_empty()
            && asked
                .iter()
                .all(|p| p.starts_with("/v26.0/debug_token?input_token=")),
        "{asked:?}"
    );

    // Meta says the token is no longer valid (the user changed their password, say).
    *g.debug_a.lock().expect("lock") = Some((expires, data_access, false));
    for _ in 0..600 {
        a = h.ok(Method::GET, &path, &s.a.1, None).await;
        if a["status"] == "expired" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(a["status"], "expired", "{a}");
    assert!(
        a["status_reason"]
            .as_str()
            .is_some_and(|r| r.contains("debug_token") && r.contains("reconnect")),
        "{a}"
    );
}
