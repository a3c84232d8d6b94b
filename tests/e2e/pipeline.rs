//! The job pipeline under adversity, end to end through the real HTTP server: an early status
//! waits on its own while the rest of its webhook is applied at once; a test send's statuses
//! find it; marketing consent is checked again right before the send; one tenant's backlog does
//! not hold up another tenant; one tenant's provider calls cannot fill the plugin pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Method;
use serde_json::{Value, json};
use switchyard::store::{Mode, Store};
use switchyard::tenancy::Scope;

use crate::api::{Db, Host, setup};
use crate::fake::{Fake, Received};
use crate::ingress::{drained, now_s, sign};

fn is_send(r: &Received) -> bool {
    r.method == "POST" && r.path.ends_with("/messages")
}

fn send_to(r: &Received) -> Option<String> {
    let b: Value = serde_json::from_slice(&r.body).ok()?;
    b["to"].as_str().map(str::to_string)
}

/// A Graph API that accepts every send with a numbered id and lists two templates; requests
/// `held` picks wait until `gate` opens.
async fn graph(
    held: impl Fn(&Received) -> bool + Send + Sync + 'static,
    gate: tokio::sync::watch::Receiver<bool>,
) -> Fake {
    let n = Arc::new(AtomicUsize::new(0));
    Fake::start_held(
        move |r| {
            if r.path.contains("message_templates") {
                return (200, r#"{"data":[{"name":"order_update","language":"en_US","status":"APPROVED","category":"UTILITY","id":"5944"}]}"#.to_string());
            }
            if !is_send(r) {
                return crate::api::graph_ok(r);
            }
            let id = n.fetch_add(1, Ordering::SeqCst) + 1;
            (
                200,
                json!({"messaging_product": "whatsapp", "messages": [{"id": format!("wamid.OUT{id}")}]})
                    .to_string(),
            )
        },
        held,
        gate,
    )
    .await
}

fn webhook(changes: Vec<Value>) -> Vec<u8> {
    json!({"object": "whatsapp_business_account",
           "entry": [{"id": "102290129340398", "changes": changes}]})
    .to_string()
    .into_bytes()
}

fn message(number: &str, from: &str, wamid: &str, text: &str, timestamp: i64) -> Value {
    json!({"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": number},
        "contacts": [{"profile": {"name": format!("Contact {from}")}, "wa_id": from}],
        "messages": [{"from": from, "id": wamid, "timestamp": timestamp.to_string(),
                      "type": "text", "text": {"body": text}}]
    }})
}

fn status(number: &str, wamid: &str, state: &str, to: &str) -> Value {
    json!({"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": number},
        "statuses": [{"id": wamid, "status": state, "timestamp": now_s().to_string(),
                      "recipient_id": to}]
    }})
}

async fn post(h: &Host, endpoint: &str, body: Vec<u8>) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/hooks/{endpoint}", h.base))
        .header("x-hub-signature-256", sign("app-secret-1", &body))
        .body(body)
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

async fn store(h: &Host) -> Store {
    Store::open(&format!(
        "sqlite://{}",
        h.data.path().join("switchyard.db").display()
    ))
    .await
    .expect("open")
}

async fn jobs_of_kind(h: &Host, kind: &str) -> Vec<(String, Option<String>)> {
    let s = store(h).await;
    let mut tx = s.begin(Scope::Host, Mode::Read).await.expect("begin");
    let jobs = tx.jobs_of_kind(kind).await.expect("jobs");
    tx.commit().await.expect("commit");
    jobs
}

/// Wait (bounded in count, not timed) until the fake received a send to `to`.
async fn wait_for_send(graph: &Fake, to: &str) {
    for _ in 0..1200 {
        if graph
            .requests()
            .iter()
            .any(|r| is_send(r) && send_to(r).as_deref() == Some(to))
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no send to {to}: {:?}", graph.requests().len());
}

fn sends_to(graph: &Fake, to: &str) -> usize {
    graph
        .requests()
        .iter()
        .filter(|r| is_send(r) && send_to(r).as_deref() == Some(to))
        .count()
}

/// The messages of tenant `t`'s conversation with `phone`, newest first.
async fn messages(h: &Host, t: &(String, String), phone: &str) -> Vec<Value> {
    let convs = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/conversations", t.0),
            &t.1,
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
                t.0,
                conv["id"].as_str().expect("id")
            ),
            &t.1,
            None,
        )
        .await;
    msgs["data"].as_array().expect("data").clone()
}

async fn set_policy(h: &Host, t: &(String, String), plugin: &str, config: Value) {
    h.ok(
        Method::PUT,
        &format!("/api/v1/tenants/{}/policy", t.0),
        &t.1,
        Some(json!({"plugin": plugin, "config": config})),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_early_status_waits_alone_and_the_rest_of_its_webhook_is_applied_at_once() {
    let (open, gate) = tokio::sync::watch::channel(false);
    let graph = graph(|r| is_send(r) && send_to(r).as_deref() == Some("111"), gate).await;
    let h = Host::start_with(
        Db::Sqlite,
        &graph.origin,
        &["--job-lease-secs", "30", "--plugin-wall-ms", "20000"],
    )
    .await;
    let s = setup(&h).await;
    set_policy(&h, &s.a, "echo", json!({})).await;
    set_policy(&h, &s.b, "echo", json!({})).await;

    // Tenant A's reply is in flight (the provider has not answered yet).
    let now = now_s();
    let body = webhook(vec![message("1001", "111", "wamid.A1", "hello a", now)]);
    assert_eq!(post(&h, &s.endpoint, body).await, 200);
    wait_for_send(&graph, "111").await;

    // A status no message has yet (it may be that send's), then tenant B's message, in one body.
    let body = webhook(vec![
        status("1001", "wamid.NOT-RECORDED", "delivered", "111"),
        message("2002", "222", "wamid.B1", "hello b", now),
    ]);
    assert_eq!(post(&h, &s.endpoint, body).await, 200);
    // B's message is stored and answered while A's send is still in flight.
    wait_for_send(&graph, "222").await;
    let b = messages(&h, &s.b, "222").await;
    assert_eq!(b.len(), 2, "{b:?}");
    // The early status waits on its own; no receipt is held or dead.
    let early = jobs_of_kind(&h, "apply-status").await;
    assert_eq!(early.len(), 1, "{early:?}");
    assert_eq!(early[0].0, "queued", "{early:?}");
    let receipts = jobs_of_kind(&h, "process-receipt").await;
    assert!(receipts.iter().all(|(s, _)| s == "done"), "{receipts:?}");

    // A's send comes back; the status matches nothing and is dropped, not dead-lettered.
    open.send(true).expect("open");
    let states = drained(&h).await;
    assert!(states.iter().all(|(s, _)| s == "done"), "{states:?}");
    assert_eq!(jobs_of_kind(&h, "apply-status").await[0].0, "done");
    let a = messages(&h, &s.a, "111").await;
    assert_eq!(a[0]["status"], "accepted", "{a:?}");

    // A test send is an outbound message: its delivery status updates it.
    let sent = h
        .ok(
            Method::POST,
            &format!(
                "/api/v1/tenants/{}/connections/{}/test",
                s.a.0, s.a_connection
            ),
            &s.a.1,
            Some(json!({"to": "+14155550123", "message": "ping"})),
        )
        .await;
    let id = sent["provider_message_id"]
        .as_str()
        .expect("id")
        .to_string();
    let body = webhook(vec![status("1001", &id, "delivered", "14155550123")]);
    assert_eq!(post(&h, &s.endpoint, body).await, 200);
    drained(&h).await;
    let test = messages(&h, &s.a, "14155550123").await;
    assert_eq!(test.len(), 1, "{test:?}");
    assert_eq!(
        (
            test[0]["direction"].as_str(),
            test[0]["provider_message_id"].as_str(),
            test[0]["status"].as_str()
        ),
        (Some("out"), Some(id.as_str()), Some("delivered")),
        "{test:?}"
    );
}

const MARKETING_POLICY: &str = r#"{
  "rules": [{"keywords": ["hours"], "reply": "We are open 9-17."}],
  "fallback": {"name": "spring_sale", "language": "en_US", "category": "marketing",
               "parameters": ["{name}"]}
}"#;

async fn consent(h: &Host, t: &(String, String), action: &str, connection: Option<&str>) {
    let mut body = json!({"action": action, "scopes": ["marketing"], "document_version": "v1"});
    if let Some(c) = connection {
        body["connection_id"] = json!(c);
    }
    h.ok(
        Method::POST,
        &format!("/api/v1/tenants/{}/consent", t.0),
        &t.1,
        Some(body),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn marketing_consent_revoked_tenant_wide_or_before_the_send_stops_the_template() {
    let (open, gate) = tokio::sync::watch::channel(false);
    let graph = graph(|r| is_send(r) && send_to(r).as_deref() == Some("112"), gate).await;
    // One worker: the jobs run one after another, in the fair order.
    let h = Host::start_with(Db::Sqlite, &graph.origin, &["--workers", "1"]).await;
    let s = setup(&h).await;
    let policy: Value = serde_json::from_str(MARKETING_POLICY).expect("policy");
    set_policy(&h, &s.a, "auto-reply", policy).await;
    let old = now_s() - 25 * 3600; // outside the window: only the (marketing) template may go

    // A grant on the connection, then a tenant-wide revoke: no marketing template goes out.
    consent(&h, &s.a, "grant", Some(&s.a_connection)).await;
    consent(&h, &s.a, "revoke", None).await;
    let body = webhook(vec![message("1001", "701", "wamid.C1", "hours?", old)]);
    assert_eq!(post(&h, &s.endpoint, body).await, 200);
    drained(&h).await;
    assert_eq!(sends_to(&graph, "701"), 0);
    let m = messages(&h, &s.a, "701").await;
    assert_eq!(
        (m[0]["status"].as_str(), m[0]["error_kind"].as_str()),
        (Some("failed"), Some("blocked")),
        "{m:?}"
    );

    // Granted when the reply is decided, revoked before it is sent: refused at the send.
    consent(&h, &s.a, "grant", None).await;
    let body = webhook(vec![
        message("1001", "112", "wamid.D1", "hours?", now_s()),
        message("1001", "777", "wamid.E1", "hours?", old),
    ]);
    assert_eq!(post(&h, &s.endpoint, body).await, 200);
    // The worker is busy with 112's send; 777's template reply is decided and queued.
    wait_for_send(&graph, "112").await;
    let m = messages(&h, &s.a, "777").await;
    assert_eq!(
        (
            m[0]["direction"].as_str(),
            m[0]["kind"].as_str(),
            m[0]["status"].as_str()
        ),
        (Some("out"), Some("template"), Some("queued")),
        "{m:?}"
    );
    consent(&h, &s.a, "revoke", None).await;
    open.send(true).expect("open");
    drained(&h).await;
    assert_eq!(
        sends_to(&graph, "777"),
        0,
        "the template went out after the revoke"
    );
    let m = messages(&h, &s.a, "777").await;
    assert_eq!(
        (m[0]["status"].as_str(), m[0]["error_kind"].as_str()),
        (Some("failed"), Some("blocked")),
        "{m:?}"
    );
    assert!(
        m[0]["error_message"]
            .as_str()
            .is_some_and(|e| e.contains("marketing consent")),
        "{m:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_tenants_message_is_processed_while_the_first_tenants_backlog_waits() {
    let (_open, gate) = tokio::sync::watch::channel(false);
    let graph = graph(|_| false, gate).await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    set_policy(&h, &s.b, "echo", json!({})).await;
    // Tenant A's backlog: 20,000 decisions queued at once (for messages that are not there, so
    // each one is quick and dead-lettered).
    const BACKLOG: i64 = 20_000;
    let db = store(&h).await;
    let mut tx = db.begin(Scope::Host, Mode::Write).await.expect("begin");
    for i in 0..BACKLOG {
        let payload = json!({"tenant": s.a.0, "message": format!("msg_gone{i}")}).to_string();
        tx.enqueue("decide", None, &payload, &s.a.0)
            .await
            .expect("enqueue");
    }
    tx.commit().await.expect("commit");

    let body = webhook(vec![message("2002", "222", "wamid.B1", "hello b", now_s())]);
    assert_eq!(post(&h, &s.endpoint, body).await, 200);
    wait_for_send(&graph, "222").await;
    let mut tx = db.begin(Scope::Host, Mode::Read).await.expect("begin");
    let states = tx.job_states().await.expect("states");
    tx.commit().await.expect("commit");
    let queued = states
        .iter()
        .find(|(s, _)| s == "queued")
        .map_or(0, |(_, n)| *n);
    eprintln!("fairness: tenant B replied with {queued} of tenant A's {BACKLOG} jobs still queued");
    assert!(
        queued >= BACKLOG * 3 / 4,
        "B waited behind A's backlog: {states:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_tenants_provider_calls_cannot_make_a_signed_webhook_503() {
    let (open, gate) = tokio::sync::watch::channel(false);
    // Template listings hang at the provider until the gate opens.
    let graph = graph(|r| r.path.contains("message_templates"), gate).await;
    let h = Host::start_with(
        Db::Sqlite,
        &graph.origin,
        &[
            "--plugin-max-instances",
            "8",
            "--plugin-reserved-for-verify",
            "2",
        ],
    )
    .await;
    let s = setup(&h).await;
    let owner = s.a_keys["owner"].clone();
    let viewer = s.a_keys["viewer"].clone();
    let sync = format!(
        "/api/v1/tenants/{}/connections/{}/templates/sync",
        s.a.0, s.a_connection
    );
    let list = format!(
        "/api/v1/tenants/{}/connections/{}/templates",
        s.a.0, s.a_connection
    );
    // A viewer cannot sync; reading the stored list never calls the provider.
    crate::api::assert_error(
        &h.call(Method::POST, &sync, Some(&viewer), None).await,
        403,
        "forbidden",
    );
    let before = graph.requests().len();
    let mut reads = Vec::new();
    for _ in 0..20 {
        let (base, viewer, list) = (h.base.clone(), viewer.clone(), list.clone());
        reads.push(tokio::spawn(async move {
            crate::api::Api::new(&base)
                .call(Method::GET, &list, Some(&viewer), None)
                .await
        }));
    }
    for r in reads {
        let r = r.await.expect("join");
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(r.1, json!([]));
    }
    assert_eq!(
        graph.requests().len(),
        before,
        "GET templates called the provider"
    );

    // 20 concurrent syncs by one tenant: a few hang at the provider, the rest get 429.
    let mut syncs = Vec::new();
    for _ in 0..20 {
        let base = h.base.clone();
        let sync = sync.clone();
        let owner = owner.clone();
        syncs.push(tokio::spawn(async move {
            crate::api::Api::new(&base)
                .call(Method::POST, &sync, Some(&owner), None)
                .await
        }));
    }
    for _ in 0..1200 {
        let hanging = graph
            .requests()
            .iter()
            .filter(|r| r.path.contains("message_templates"))
            .count();
        if hanging >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Meanwhile signed webhooks are acknowledged (verify has its own share of the pool).
    for i in 0..10 {
        let body = webhook(vec![message(
            "2002",
            "222",
            &format!("wamid.W{i}"),
            "hi",
            now_s(),
        )]);
        assert_eq!(post(&h, &s.endpoint, body).await, 200, "webhook {i}");
    }
    open.send(true).expect("open");
    let mut codes = Vec::new();
    for t in syncs {
        let (status, v) = t.await.expect("join");
        if status == 429 {
            assert_eq!(v["error"]["code"], "too_many_plugin_calls", "{v}");
        }
        codes.push(status);
    }
    let ok = codes.iter().filter(|c| **c == 200).count();
    let limited = codes.iter().filter(|c| **c == 429).count();
    assert_eq!(ok + limited, 20, "{codes:?}");
    assert!((1..=4).contains(&ok), "{codes:?}");
    // The stored list is what the last sync found.
    let listed = h.ok(Method::GET, &list, &viewer, None).await;
    assert_eq!(listed[0]["name"], "order_update", "{listed}");
}

fn priced_status(number: &str, wamid: &str, state: &str, to: &str, pricing: Value) -> Value {
    json!({"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": number},
        "statuses": [{"id": wamid, "status": state, "timestamp": now_s().to_string(),
                      "recipient_id": to, "pricing": pricing}]
    }})
}

/// Wait (bounded in count) until tenant `t`'s outbound message `wamid` to `phone` satisfies
/// `done`; the message as the API shows it.
async fn wait_for_out(
    h: &Host,
    t: &(String, String),
    phone: &str,
    wamid: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        if let Some(m) = messages(h, t, phone)
            .await
            .into_iter()
            .find(|m| m["provider_message_id"] == wamid)
        {
            if done(&m) {
                return m;
            }
            last = m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{wamid} never got there: {last}");
}

/// Meta's per-message `pricing` on a status is kept on its message (once, whatever order the
/// statuses come in), shown by the desk API, and counted by category in the partner report;
/// pricing the host cannot keep is dropped while the status still applies.
async fn pricing_flow(h: Host, graph: &Fake) {
    let s = setup(&h).await;
    set_policy(&h, &s.a, "echo", json!({})).await;
    let service = json!({"billable": false, "pricing_model": "PMP", "category": "service",
                         "type": "free_customer_service"});
    let utility = json!({"pricing_model": "PMP", "category": "utility", "type": "regular"});

    // Two replies: wamid.OUT1 and wamid.OUT2 (the fake numbers its sends).
    let now = now_s();
    let body = webhook(vec![message("1001", "111", "wamid.P1", "first", now)]);
    assert_eq!(post(&h, &s.endpoint, body).await, 200);
    wait_for_send(graph, "111").await;
    wait_for_out(&h, &s.a, "111", "wamid.OUT1", |_| true).await;
    let body = webhook(vec![message("1001", "111", "wamid.P2", "second", now + 1)]);
    assert_eq!(post(&h, &s.endpoint, body).await, 200);
    wait_for_out(&h, &s.a, "111", "wamid.OUT2", |_| true).await;

    // OUT1: delivered first, then sent (older): priced once, by the first; the state stays.
    for state in ["delivered", "sent"] {
        let body = webhook(vec![priced_status(
            "1001",
            "wamid.OUT1",
            state,
            "111",
            service.clone(),
        )]);
        assert_eq!(post(&h, &s.endpoint, body).await, 200);
    }
    // OUT2: `billable` left out (Meta deprecated it): a `regular` message is charged. Then a
    // status whose pricing the host cannot keep: the status applies, the pricing stays.
    let body = webhook(vec![priced_status(
        "1001",
        "wamid.OUT2",
        "sent",
        "111",
        utility.clone(),
    )]);
    assert_eq!(post(&h, &s.endpoint, body).await, 200);
    let body = webhook(vec![priced_status(
        "1001",
        "wamid.OUT2",
        "read",
        "111",
        json!({"category": "<script>", "billable": true}),
    )]);
    assert_eq!(post(&h, &s.endpoint, body).await, 200);

    let out1 = wait_for_out(&h, &s.a, "111", "wamid.OUT1", |m| {
        m["status"] == "delivered" && m["pricing"].is_object()
    })
    .await;
    assert_eq!(
        out1["pricing"],
        json!({"category": "service", "billable": false, "model": "PMP",
               "pricing_type": "free_customer_service"})
    );
    let out2 = wait_for_out(&h, &s.a, "111", "wamid.OUT2", |m| m["status"] == "read").await;
    assert_eq!(
        out2["pricing"],
        json!({"category": "utility", "billable": true, "model": "PMP",
               "pricing_type": "regular"})
    );
    // Inbound messages carry none.
    assert!(
        messages(&h, &s.a, "111")
            .await
            .iter()
            .filter(|m| m["direction"] == "in")
            .all(|m| m.get("pricing").is_none())
    );

    // The partner's report: this month's messages by category, each counted once.
    let report = h
        .ok(
            Method::GET,
            &format!("/api/v1/partners/{}/report", s.p1.0),
            &s.p1.1,
            None,
        )
        .await;
    let line = report["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .find(|l| l["tenant_id"] == s.a.0.as_str())
        .expect("tenant A's line")
        .clone();
    assert_eq!(
        line["usage"]["pricing_this_month"],
        json!([
            {"category": "service", "messages": 1, "billable": 0},
            {"category": "utility", "messages": 1, "billable": 1},
        ]),
        "{line}"
    );
    // Another partner's tenant shows none of it.
    let report = h
        .ok(
            Method::GET,
            &format!("/api/v1/partners/{}/report", s.p2.0),
            &s.p2.1,
            None,
        )
        .await;
    assert!(
        report["tenants"]
            .as_array()
            .expect("tenants")
            .iter()
            .all(|l| l["usage"]["pricing_this_month"] == json!([])),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn meta_pricing_is_kept_per_message_and_counted_by_category_on_both_backends() {
    let (_open, gate) = tokio::sync::watch::channel(true);
    let g = graph(|_| false, gate.clone()).await;
    pricing_flow(Host::start(Db::Sqlite, &g.origin).await, &g).await;
    if let Some(pg) = crate::pg::PgDb::create("pricing").await {
        let g = graph(|_| false, gate).await;
        pricing_flow(Host::start(Db::Postgres(pg), &g.origin).await, &g).await;
    }
}
