//! Webhook ingress on a real socket: Meta's handshake and signature through the bundled
//! connector, a receipt for every request, the body and its job only for accepted ones.

use hmac::{Hmac, KeyInit, Mac};
use switchyard::store::{Mode, Store};
use switchyard::tenancy::Scope;

use crate::api::{Db, Host, graph_ok, setup};
use crate::fake::Fake;

/// Meta's `X-Hub-Signature-256` of `body` under the app secret `key`.
pub fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `(outcome, status, body hash, has body, jobs)` of every receipt of `endpoint`, oldest first.
pub async fn receipts(h: &Host, endpoint: &str) -> Vec<(String, i64, Option<String>, i64, i64)> {
    let store = Store::open(&format!(
        "sqlite://{}",
        h.data.path().join("switchyard.db").display()
    ))
    .await
    .expect("open");
    let mut tx = store.begin(Scope::Host, Mode::Read).await.expect("begin");
    let mut out = Vec::new();
    for id in tx.receipt_ids(endpoint).await.expect("ids") {
        out.push(
            tx.receipt_summary(&id)
                .await
                .expect("summary")
                .expect("receipt"),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_verified_recorded_and_queued() {
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);

    // Meta's subscription handshake, answered from the plugin's verdict.
    let ok = client
        .get(format!(
            "{hook}?hub.mode=subscribe&hub.verify_token=verify-1&hub.challenge=1158201444"
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.expect("text"), "1158201444");
    let bad = client
        .get(format!(
            "{hook}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(bad.status(), 403);

    // A signed delivery: 200 after the receipt and its job are stored.
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/meta/bench_1500.json"
    ))
    .expect("fixture");
    let post = |sig: Option<String>, body: Vec<u8>| {
        let mut req = client
            .post(&hook)
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = sig {
            req = req.header("x-hub-signature-256", s);
        }
        req.send()
    };
    assert_eq!(
        post(Some(sign("app-secret-1", &body)), body.clone())
            .await
            .expect("post")
            .status(),
        200
    );
    // Forged, unsigned, and one changed byte: refused, nothing queued.
    let forged = post(Some(sign("someone-else", &body)), body.clone())
        .await
        .expect("post");
    assert!(
        matches!(forged.status().as_u16(), 401 | 403),
        "{}",
        forged.status()
    );
    let unsigned = post(None, body.clone()).await.expect("post");
    assert!(matches!(unsigned.status().as_u16(), 401 | 403));
    let mut changed = body.clone();
    changed[100] ^= 1;
    assert!(matches!(
        post(Some(sign("app-secret-1", &body)), changed)
            .await
            .expect("post")
            .status()
            .as_u16(),
        401 | 403
    ));
    // Over the cap: 413 before any hashing.
    let big = vec![b' '; (1 << 20) + 1];
    assert_eq!(
        post(Some(sign("app-secret-1", &big)), big)
            .await
            .expect("post")
            .status(),
        413
    );
    // Unknown endpoint (a fresh connection: the server may close one whose body it did not read).
    let none = reqwest::Client::new()
        .post(format!("{}/hooks/end_nope", h.base))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(none.status(), 404);

    // Receipt ids are ordered by millisecond, then random: requests within one millisecond
    // may list in either order, so compare as sets.
    let r = receipts(&h, &s.endpoint).await;
    let mut outcomes: Vec<(&str, i64, i64, i64)> = r
        .iter()
        .map(|(o, st, _, b, j)| (o.as_str(), *st, *b, *j))
        .collect();
    outcomes.sort_unstable();
    assert_eq!(outcomes.len(), 7, "{outcomes:?}");
    assert_eq!(outcomes[0], ("accepted", 200, 1, 1), "{outcomes:?}");
    for o in &outcomes[1..5] {
        assert_eq!((o.0, o.2, o.3), ("rejected", 0, 0), "{o:?}");
    }
    assert_eq!(outcomes[5], ("responded", 200, 0, 0));
    assert_eq!(outcomes[6], ("too-large", 413, 0, 0));
    let hash = |outcome: &str| r.iter().find(|x| x.0 == outcome).and_then(|x| x.2.clone());
    assert!(hash("too-large").is_none(), "no hash of an oversized body");
    assert_eq!(
        hash("accepted").as_deref(),
        Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body)).as_str())
    );
}

/// Seconds since the Unix epoch.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// A Meta webhook carrying one inbound text message `wamid` to the number `phone_number_id`.
pub fn meta_message(phone_number_id: &str, wamid: &str, text: &str) -> Vec<u8> {
    meta_message_from(phone_number_id, "16505551234", wamid, text)
}

/// A Meta text webhook from `contact` (a wa_id) to number `phone_number_id`.
pub fn meta_message_from(phone_number_id: &str, contact: &str, wamid: &str, text: &str) -> Vec<u8> {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": contact}],
            // Sent now: the 24-hour window runs from the provider's timestamp.
            "messages": [{"from": contact, "id": wamid, "timestamp": now_s().to_string(), "type": "text", "text": {"body": text}}]
        }}]}]
    })
    .to_string()
    .into_bytes()
}

/// Wait until no job is queued or running; the job states then.
pub async fn drained(h: &Host) -> Vec<(String, i64)> {
    let store = Store::open(&format!(
        "sqlite://{}",
        h.data.path().join("switchyard.db").display()
    ))
    .await
    .expect("open");
    // Generous: a debug build under a parallel test run is slow; this is a bound, not a timer.
    for _ in 0..2400 {
        let mut tx = store.begin(Scope::Host, Mode::Read).await.expect("begin");
        let states = tx.job_states().await.expect("states");
        tx.commit().await.expect("commit");
        if states.iter().all(|(s, _)| s == "done" || s == "dead") {
            return states;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("jobs did not drain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_message_delivered_100_times_concurrently_is_stored_once_for_its_tenant() {
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);
    let body = meta_message("1001", "wamid.DEDUP1", "Does it come in blue?");
    let sig = sign("app-secret-1", &body);
    let posts: Vec<_> = (0..100)
        .map(|_| {
            let req = client
                .post(&hook)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", &sig)
                .body(body.clone());
            tokio::spawn(async move { req.send().await.expect("post").status().as_u16() })
        })
        .collect();
    for p in posts {
        assert_eq!(p.await.expect("task"), 200);
    }
    // Another number of the same app routes to the other tenant; an unknown one to nobody.
    for (number, wamid) in [("2002", "wamid.B1"), ("9999", "wamid.NOBODY")] {
        let b = meta_message(number, wamid, "hello");
        let r = client
            .post(&hook)
            .header("x-hub-signature-256", sign("app-secret-1", &b))
            .body(b)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 200);
    }
    let states = drained(&h).await;
    assert_eq!(
        states,
        // 102 receipts and 2 decisions, one per stored message (these tenants have no policy).
        vec![("done".to_string(), 104)],
        "every receipt processed, none dead"
    );

    let convs = h
        .ok(
            reqwest::Method::GET,
            &format!("/api/v1/tenants/{}/conversations", s.a.0),
            &s.a.1,
            None,
        )
        .await;
    let convs = convs["data"].as_array().expect("data");
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0]["contact_phone"], "16505551234");
    assert_eq!(convs[0]["contact_name"], "Sheena Nelson");
    assert!(
        convs[0]["last_inbound_at"].as_i64().is_some(),
        "the 24-hour window is open"
    );
    let msgs = h
        .ok(
            reqwest::Method::GET,
            &format!(
                "/api/v1/tenants/{}/conversations/{}/messages",
                s.a.0,
                convs[0]["id"].as_str().expect("id")
            ),
            &s.a.1,
            None,
        )
        .await;
    let msgs = msgs["data"].as_array().expect("data");
    assert_eq!(msgs.len(), 1, "100 deliveries, one message");
    assert_eq!(msgs[0]["provider_message_id"], "wamid.DEDUP1");
    assert_eq!(msgs[0]["body"], "Does it come in blue?");
    assert_eq!(msgs[0]["direction"], "in");
    // Tenant B got its own message and nothing of A's.
    let b = h
        .ok(
            reqwest::Method::GET,
            &format!("/api/v1/tenants/{}/conversations", s.b.0),
            &s.b.1,
            None,
        )
        .await;
    assert_eq!(b["data"].as_array().expect("data").len(), 1);
    let report = h
        .ok(
            reqwest::Method::GET,
            &format!("/api/v1/partners/{}/report", s.p1.0),
            &s.p1.1,
            None,
        )
        .await;
    assert_eq!(report["tenants"][0]["messages_in"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authentic_body_the_connector_cannot_read_is_dead_lettered_and_replayable() {
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    let body = b"{\"object\": \"whatsapp_business_account\", \"entry\": 5}".to_vec();
    let r = reqwest::Client::new()
        .post(format!("{}/hooks/{}", h.base, s.endpoint))
        .header("x-hub-signature-256", sign("app-secret-1", &body))
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(
        r.status(),
        200,
        "authentic: acknowledged, so Meta does not retry for days"
    );
    assert_eq!(drained(&h).await, vec![("dead".to_string(), 1)]);
    let op = crate::api::OPERATOR;
    let dead = h
        .ok(reqwest::Method::GET, "/api/v1/jobs/dead", op, None)
        .await;
    let job = dead[0]["id"].as_str().expect("id").to_string();
    assert_eq!(dead[0]["kind"], "process-receipt");
    assert!(
        dead[0]["last_error"]
            .as_str()
            .expect("error")
            .starts_with("malformed"),
        "{dead}"
    );
    crate::api::assert_error(
        &h.call(
            reqwest::Method::GET,
            "/api/v1/jobs/dead",
            Some(&s.a.1),
            None,
        )
        .await,
        403,
        "forbidden",
    );
    let replayed = h
        .ok(
            reqwest::Method::POST,
            &format!("/api/v1/jobs/{job}/replay"),
            op,
            None,
        )
        .await;
    assert_eq!(replayed["state"], "queued");
    // Replayed, it fails the same way (the plugin was not fixed): dead again, after one attempt.
    assert_eq!(drained(&h).await, vec![("dead".to_string(), 1)]);
    crate::api::assert_error(
        &h.call(
            reqwest::Method::POST,
            "/api/v1/jobs/job_nope/replay",
            Some(op),
            None,
        )
        .await,
        404,
        "not_found",
    );
    // The command line sees and replays it too.
    let url = format!("sqlite://{}", h.data.path().join("switchyard.db").display());
    let bin = env!("CARGO_BIN_EXE_switchyard");
    let out = std::process::Command::new(bin)
        .args(["jobs", "dead"])
        .env_clear()
        .env("SWITCHYARD_DATABASE_URL", &url)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains(&job) && text.contains("1 dead jobs"),
        "{text}"
    );
    let out = std::process::Command::new(bin)
        .args(["jobs", "replay", &job])
        .env_clear()
        .env("SWITCHYARD_DATABASE_URL", &url)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(drained(&h).await, vec![("dead".to_string(), 1)]);
}

/// A Graph API that proves credentials and accepts sends, numbering the message ids it gives.
pub async fn graph_that_sends() -> Fake {
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Fake::start_with(move |r| {
        if r.method == "POST" && r.path.ends_with("/messages") {
            let n = sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            (
                200,
                serde_json::json!({"messaging_product": "whatsapp", "contacts": [{"input": "16505551234", "wa_id": "16505551234"}], "messages": [{"id": format!("wamid.OUT{n}")}]}).to_string(),
            )
        } else {
            graph_ok(r)
        }
    })
    .await
}

fn meta_status(phone_number_id: &str, wamid: &str, status: &str) -> Vec<u8> {
    serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_number_id},
            "statuses": [{"id": wamid, "status": status, "timestamp": "1750263773", "recipient_id": "16505551234"}]
        }}]}]
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inbound_message_gets_exactly_one_reply_from_the_tenants_policy() {
    let graph = graph_that_sends().await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    use_echo(&h, &s.a).await;
    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);
    let post = |body: Vec<u8>| {
        let sig = sign("app-secret-1", &body);
        let req = client
            .post(&hook)
            .header("x-hub-signature-256", sig)
            .body(body);
        async move { req.send().await.expect("post").status().as_u16() }
    };
    // The same message 100 times at once, and one for tenant B, which has no policy.
    let body = meta_message("1001", "wamid.IN1", "Do you ship to Lisbon?");
    let all: Vec<_> = (0..100).map(|_| tokio::spawn(post(body.clone()))).collect();
    for p in all {
        assert_eq!(p.await.expect("task"), 200);
    }
    assert_eq!(post(meta_message("2002", "wamid.B1", "hi")).await, 200);
    let states = drained(&h).await;
    assert!(states.iter().all(|(s, _)| s == "done"), "{states:?}");

    let sends: Vec<_> = graph
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(
        sends.len(),
        1,
        "one reply for one message, none for the tenant without a policy"
    );
    assert!(
        sends[0].path.ends_with("/v26.0/1001/messages"),
        "{}",
        sends[0].path
    );
    assert_eq!(sends[0].headers["authorization"], "Bearer token-a");
    let sent: serde_json::Value = serde_json::from_slice(&sends[0].body).expect("json");
    assert_eq!(sent["to"], "16505551234");
    assert_eq!(sent["text"]["body"], "Do you ship to Lisbon?");
    assert_eq!(sent["context"]["message_id"], "wamid.IN1");

    let convs = h
        .ok(
            reqwest::Method::GET,
            &format!("/api/v1/tenants/{}/conversations", s.a.0),
            &s.a.1,
            None,
        )
        .await;
    let conv = convs["data"][0]["id"].as_str().expect("id").to_string();
    let path = format!("/api/v1/tenants/{}/conversations/{conv}/messages", s.a.0);
    let msgs = h.ok(reqwest::Method::GET, &path, &s.a.1, None).await;
    let msgs = msgs["data"].as_array().expect("data");
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        (msgs[0]["direction"].as_str(), msgs[0]["status"].as_str()),
        (Some("out"), Some("accepted"))
    );
    assert_eq!(msgs[0]["provider_message_id"], "wamid.OUT1");

    // Delivery states arrive out of order: read, then a late sent, then delivered → read.
    for status in ["read", "sent", "delivered"] {
        assert_eq!(post(meta_status("1001", "wamid.OUT1", status)).await, 200);
    }
    drained(&h).await;
    let msgs = h.ok(reqwest::Method::GET, &path, &s.a.1, None).await;
    assert_eq!(msgs["data"][0]["status"], "read");
    let report = h
        .ok(
            reqwest::Method::GET,
            &format!("/api/v1/partners/{}/report", s.p1.0),
            &s.p1.1,
            None,
        )
        .await;
    assert_eq!(
        (
            report["tenants"][0]["messages_in"].as_i64(),
            report["tenants"][0]["messages_out"].as_i64()
        ),
        (Some(1), Some(1))
    );
}

/// `(p50, p99)` of `samples`, in milliseconds.
fn percentiles(samples: &mut [std::time::Duration]) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}

/// Sequential `GET /healthz` for at most `span` or `n` requests; every one must be 200.
async fn healthz_latencies(
    h: &Host,
    n: usize,
    span: std::time::Duration,
) -> Vec<std::time::Duration> {
    let client = reqwest::Client::new();
    let start = std::time::Instant::now();
    let mut out = Vec::new();
    while out.len() < n && start.elapsed() < span {
        let t = std::time::Instant::now();
        let r = client
            .get(format!("{}/healthz", h.base))
            .send()
            .await
            .expect("healthz");
        assert_eq!(r.status(), 200);
        out.push(t.elapsed());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    out
}

/// Guests run on threads of their own and yield on every epoch tick: policies spinning on every
/// plugin thread until their CPU deadline leave `/healthz` answering promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_heavy_policy_does_not_stall_healthz() {
    let graph = graph_that_sends().await;
    let plugins = tempfile::tempdir().expect("tempdir");
    let busy = switchyard::bundled::testing_plugin("busy-policy").expect("busy-policy built");
    std::fs::copy(busy, plugins.path().join("busy-policy.wasm")).expect("copy");
    let dir = plugins.path().display().to_string();
    let h = Host::start_with(
        Db::Sqlite,
        &graph.origin,
        &[
            "--plugin-dir",
            &dir,
            "--plugin-threads",
            "2",
            "--plugin-cpu-ms",
            "3000",
            "--workers",
            "4",
        ],
    )
    .await;
    let s = setup(&h).await;
    h.ok(
        reqwest::Method::PUT,
        &format!("/api/v1/tenants/{}/policy", s.a.0),
        &s.a.1,
        Some(serde_json::json!({"plugin": "busy-policy"})),
    )
    .await;
    let window = std::time::Duration::from_millis(2500);
    let mut idle = healthz_latencies(&h, 200, window).await;

    // Four messages: four decides spinning 3 s of CPU each on the two plugin threads, so both
    // stay saturated for at least 6 s; healthz is sampled inside that.
    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);
    for i in 0..4 {
        let body = meta_message("1001", &format!("wamid.BUSY{i}"), "burn");
        let status = client
            .post(&hook)
            .header("x-hub-signature-256", sign("app-secret-1", &body))
            .body(body)
            .send()
            .await
            .expect("post")
            .status();
        assert_eq!(status, 200);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let cpu = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        std::time::Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
    };
    let (cpu_before, wall) = (cpu(), std::time::Instant::now());
    let mut busy = healthz_latencies(&h, 200, window).await;
    let (burnt, wall) = (cpu() - cpu_before, wall.elapsed());
    // The guests were really running meanwhile (the test process's CPU, on a shared machine).
    assert!(
        burnt > wall / 2,
        "only {burnt:?} of CPU in {wall:?}: the policies were not running"
    );
    let (idle_p50, idle_p99) = percentiles(&mut idle);
    let (busy_p50, busy_p99) = percentiles(&mut busy);
    println!(
        "healthz latency: idle p50 {idle_p50:.2} ms, p99 {idle_p99:.2} ms ({} requests); \
         under a CPU-heavy policy on every plugin thread p50 {busy_p50:.2} ms, p99 {busy_p99:.2} ms \
         ({} requests; the process used {burnt:?} of CPU in {wall:?})",
        idle.len(),
        busy.len()
    );
    // Generous: one decide alone holds a worker for 3 s when guests run on the HTTP workers.
    assert!(
        busy_p99 < 1000.0,
        "healthz p99 {busy_p99:.1} ms under a busy policy (idle {idle_p99:.1} ms)"
    );
}

/// Give `tenant` (id, key) the bundled echo policy.
pub async fn use_echo(h: &Host, tenant: &(String, String)) {
    h.ok(
        reqwest::Method::PUT,
        &format!("/api/v1/tenants/{}/policy", tenant.0),
        &tenant.1,
        Some(serde_json::json!({"plugin": "echo"})),
    )
    .await;
}

/// Post a Meta text message for `number`, signed with the test endpoint's app secret.
pub async fn post_meta_message(
    client: &reqwest::Client,
    hook: &str,
    number: &str,
    wamid: &str,
    text: &str,
) -> reqwest::Response {
    post_signed(client, hook, meta_message(number, wamid, text)).await
}

/// Post a Meta webhook body, signed with the test endpoint's app secret.
pub async fn post_signed(client: &reqwest::Client, hook: &str, body: Vec<u8>) -> reqwest::Response {
    client
        .post(hook)
        .header("x-hub-signature-256", sign("app-secret-1", &body))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("webhook")
}

/// Past the backlog bound (`--max-backlog`), a webhook is answered 503 `backlog_full` with
/// `Retry-After`, so its provider retries; every webhook acknowledged before is processed and
/// replied to.
async fn backlog_bound(h: Host, graph: &Fake) {
    let s = setup(&h).await;
    use_echo(&h, &s.a).await;
    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);
    let post = async |wamid: &str, text: &str| {
        post_meta_message(&client, &hook, "1001", wamid, text).await
    };
    for i in 0..2 {
        let r = post(&format!("wamid.BACKLOG{i}"), &format!("queued {i}")).await;
        assert_eq!(r.status(), 200, "within the bound");
    }
    let r = post("wamid.BACKLOG2", "over the bound").await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "backlog_full");
    crate::accounts::until("both acknowledged messages are replied to", async || {
        crate::accounts::sent_from(graph, "1001").len() == 2
    })
    .await;
    let mut sent = crate::accounts::sent_from(graph, "1001");
    sent.sort();
    assert_eq!(
        sent,
        ["queued 0", "queued 1"],
        "the refused one was not kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_backlog_bound_webhooks_get_503_and_every_acknowledged_one_is_answered() {
    // The queue is counted once, at start: from then on each acceptance adds one.
    let args = ["--max-backlog", "2", "--backlog-count-ms", "3600000"];
    let g = graph_that_sends().await;
    backlog_bound(Host::start_with(Db::Sqlite, &g.origin, &args).await, &g).await;
    if let Some(pg) = crate::pg::PgDb::create("ingress_backlog").await {
        let g = graph_that_sends().await;
        backlog_bound(
            Host::start_with(Db::Postgres(pg), &g.origin, &args).await,
            &g,
        )
        .await;
    }
}
