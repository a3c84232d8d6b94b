//! The end-to-end throughput scenario (issue 15): a fake Graph API that accepts every send, the
//! release `switchyard serve` on SQLite or PostgreSQL, tenants with a Meta number and the echo
//! policy each, and distinct signed Meta webhooks — the path a user waits on, from the webhook
//! to the reply accepted by the provider. Beside it, in the same run, `bare_axum_durable` (HMAC
//! check, SQLite group commit, 200 after commit) takes the same load: the floor of a durable ack.
//!
//! Prints: ingress acks/s (workers running) and its ratio to the baseline, end-to-end messages/s
//! and drain time of a burst, ack → reply latency percentiles at a paced offered rate, and the
//! host's peak RSS. Run it through `host/benches/throughput.sh`, which builds what it needs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use axum::response::IntoResponse;
use clap::Parser;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// `switchyard` release binary.
    #[arg(long)]
    bin: String,
    /// `bare_axum_durable` release binary.
    #[arg(long)]
    durable: String,
    /// Distinct messages in the burst.
    #[arg(long, default_value_t = 40_000)]
    messages: usize,
    /// Keep-alive connections posting webhooks.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Tenants (each with its own number, connection and policy configuration).
    #[arg(long, default_value_t = 1)]
    tenants: usize,
    /// Offered rate of the latency phase (messages/s).
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Seconds of the latency phase.
    #[arg(long, default_value_t = 10)]
    rate_secs: u64,
    /// `sqlite`, or a PostgreSQL server URL (a fresh database is made and dropped).
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// Longest wait for the backlog to drain, in seconds.
    #[arg(long, default_value_t = 600)]
    drain_limit: u64,
}

const SECRET: &str = "bench-secret";
const OPERATOR: &str = "bench-operator";

/// What the fake provider saw: when each message's reply arrived ([`provider_clock`], 0 = not yet).
struct Provider {
    replied: Vec<AtomicU64>,
    replies: AtomicUsize,
    duplicates: AtomicUsize,
    sent: AtomicU64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let total = args.messages + (args.rate * args.rate_secs) as usize;
    let provider = Arc::new(Provider {
        replied: (0..total).map(|_| AtomicU64::new(0)).collect(),
        replies: AtomicUsize::new(0),
        duplicates: AtomicUsize::new(0),
        sent: AtomicU64::new(0),
    });
    let graph = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let graph_url = format!("http://{}", graph.local_addr()?);
    let app = Router::new()
        .fallback(fake_graph)
        .with_state(provider.clone());
    tokio::spawn(async move { axum::serve(graph, app).await });

    let dir = tempfile::tempdir()?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(60))
        .build()?;
    let bodies = Arc::new(webhooks(total, args.tenants));
    println!(
        "== {} distinct signed Meta webhooks ({} bytes each), {} tenant(s), {} connections, database {}",
        args.messages,
        bodies[0].0.len(),
        args.tenants,
        args.connections,
        if args.database == "sqlite" {
            "sqlite"
        } else {
            "postgres"
        }
    );

    // The baseline first: nothing else runs beside it.
    let before = baseline(&args, &client, &bodies, dir.path(), "before").await?;

    let pg = if args.database == "sqlite" {
        None
    } else {
        Some(Postgres::create(&args.database).await?)
    };
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let mut command = std::process::Command::new(&args.bin);
    command
        .arg("serve")
        .env("SWITCHYARD_DATA_DIR", dir.path())
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
        .env(
            "SWITCHYARD_LOG",
            std::env::var("BENCH_HOST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stderr(std::process::Stdio::from(std::fs::File::create(
            std::env::temp_dir().join("switchyard-throughput-host.log"),
        )?))
        .env("SWITCHYARD_INGRESS_CLIENT_RATE", "0")
        .env("SWITCHYARD_INGRESS_ENDPOINT_RATE", "0")
        .env("SWITCHYARD_SEND_RATE", "10000")
        .env("SWITCHYARD_OPERATOR_TOKEN", OPERATOR)
        .env(
            "SWITCHYARD_MASTER_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        )
        .env("SWITCHYARD_META_GRAPH_URL", &graph_url);
    if let Some(pg) = &pg {
        command
            .env("SWITCHYARD_DATABASE_URL", &pg.url)
            .env("SWITCHYARD_INSECURE_DB_ROLE", "true");
    }
    let mut host = Killed(command.spawn()?);
    let pid = host.0.id();
    wait_healthy(&client, &base).await?;
    let setup_start = Instant::now();
    let endpoint = setup(&client, &base, &graph_url, args.tenants).await?;
    println!(
        "setup: {} tenant(s) connected in {:.1} s; host pid {pid}, data in {}, RSS {} MiB",
        args.tenants,
        setup_start.elapsed().as_secs_f64(),
        dir.path().display(),
        rss_mib(pid).0
    );
    let hook = format!("{base}/hooks/{endpoint}");

    // The burst: every message as fast as the front door takes it, workers running.
    let t0 = Duration::from_nanos((provider_clock())());
    let acks = post_all(
        &client,
        &hook,
        &bodies,
        0..args.messages,
        args.connections,
        None,
    )
    .await;
    let ingress_secs = (acks.last_ack - t0).as_secs_f64();
    let mut drained = true;
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain_limit);
    let (mut seen, mut progress) = (0, Instant::now());
    while provider.replies.load(Ordering::Relaxed) < args.messages {
        let now = provider.replies.load(Ordering::Relaxed);
        if now > seen {
            (seen, progress) = (now, Instant::now());
        }
        // No reply for 30 s: something refuses them (the host's log says what).
        if Instant::now() > drain_deadline || progress.elapsed() > Duration::from_secs(30) {
            drained = false;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let last_reply = (0..args.messages)
        .map(|i| provider.replied[i].load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    let last_reply = Duration::from_nanos(last_reply);
    let e2e_secs = (last_reply - t0).as_secs_f64();
    let (rss_now, rss_peak) = rss_mib(pid);
    println!(
        "ingress (workers running): {:.0} acks/s, p50 {:.1} ms, p99 {:.1} ms, {} refused 503 and retried, {} other failures",
        args.messages as f64 / ingress_secs,
        acks.percentile(0.50),
        acks.percentile(0.99),
        acks.unavailable,
        acks.failed
    );
    let replied = provider.replies.load(Ordering::Relaxed);
    println!(
        "end to end: {replied} of {} replies accepted by the provider in {e2e_secs:.1} s = {:.0} messages/s; drain after the last ack {:.1} s{}",
        args.messages,
        replied as f64 / e2e_secs,
        (last_reply.saturating_sub(acks.last_ack)).as_secs_f64(),
        if drained { "" } else { " (NOT DRAINED)" }
    );

    // Latency at a paced offered rate: ack → reply accepted.
    let paced = args.messages..total;
    let acks = post_all(
        &client,
        &hook,
        &bodies,
        paced.clone(),
        args.connections,
        Some(args.rate),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while provider.replies.load(Ordering::Relaxed) < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut latencies: Vec<f64> = paced
        .clone()
        .filter_map(|i| {
            let reply = provider.replied[i].load(Ordering::Relaxed);
            let ack = acks.acked_at[i - paced.start].load(Ordering::Relaxed);
            (reply > 0 && ack > 0).then(|| (reply.saturating_sub(ack)) as f64 / 1e6)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "paced {} messages/s for {} s: ack p99 {:.1} ms; ack → reply accepted p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} of {} replied)",
        args.rate,
        args.rate_secs,
        acks.percentile(0.99),
        pick(0.50),
        pick(0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len(),
        paced.len()
    );
    let (_, rss_end_peak) = rss_mib(pid);
    println!(
        "host RSS: {rss_now} MiB after the burst, peak {} MiB; duplicate replies {}; sends answered {}",
        rss_peak.max(rss_end_peak),
        provider.duplicates.load(Ordering::Relaxed),
        provider.sent.load(Ordering::Relaxed)
    );
    host.stop();
    if let Some(pg) = pg {
        pg.drop().await;
    }

    let after = baseline(&args, &client, &bodies, dir.path(), "after").await?;
    let floor = (before + after) / 2.0;
    println!(
        "ingress : durable baseline = {:.2} ({:.0} / {:.0} acks/s)",
        args.messages as f64 / ingress_secs / floor,
        args.messages as f64 / ingress_secs,
        floor
    );
    Ok(())
}

/// The baseline's acks/s on the same burst.
async fn baseline(
    args: &Args,
    client: &reqwest::Client,
    bodies: &Arc<Vec<(String, String)>>,
    dir: &std::path::Path,
    when: &str,
) -> anyhow::Result<f64> {
    let port = free_port()?;
    let file = dir.join(format!("durable-{when}.db"));
    let mut child = Killed(
        std::process::Command::new(&args.durable)
            .arg(format!("127.0.0.1:{port}"))
            .arg(&file)
            .arg(SECRET)
            .spawn()?,
    );
    let url = format!("http://127.0.0.1:{port}/hooks/end_bench");
    for _ in 0..100 {
        if client.get(&url).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let start = Instant::now();
    let acks = post_all(
        client,
        &url,
        bodies,
        0..args.messages,
        args.connections,
        None,
    )
    .await;
    let rate = args.messages as f64 / start.elapsed().as_secs_f64();
    println!(
        "baseline {when} (bare axum + HMAC + SQLite group commit): {rate:.0} acks/s, p50 {:.1} ms, p99 {:.1} ms",
        acks.percentile(0.50),
        acks.percentile(0.99)
    );
    child.stop();
    Ok(rate)
}

/// Outcome of posting a range of webhooks.
struct Acks {
    /// Ack latencies in ms.
    latencies: Vec<f64>,
    /// When each webhook was acknowledged (ns after the provider's start), by offset in the range.
    acked_at: Vec<AtomicU64>,
    last_ack: Duration,
    unavailable: usize,
    failed: usize,
}

impl Acks {
    fn percentile(&self, q: f64) -> f64 {
        let n = self.latencies.len();
        if n == 0 {
            return f64::NAN;
        }
        self.latencies[((n as f64 * q) as usize).min(n - 1)]
    }
}

/// Post `range` of `bodies` over `connections` concurrent connections, at most `rate` per
/// second when given. A 503 is retried after a short pause, as a provider retries.
async fn post_all(
    client: &reqwest::Client,
    url: &str,
    bodies: &Arc<Vec<(String, String)>>,
    range: std::ops::Range<usize>,
    connections: usize,
    rate: Option<u64>,
) -> Acks {
    let zero = Instant::now();
    let clock = provider_clock();
    let next = Arc::new(AtomicUsize::new(range.start));
    let acked_at: Arc<Vec<AtomicU64>> =
        Arc::new(range.clone().map(|_| AtomicU64::new(0)).collect());
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, bodies, next, acked_at) = (
            client.clone(),
            url.to_string(),
            bodies.clone(),
            next.clone(),
            acked_at.clone(),
        );
        let (start, end) = (range.start, range.end);
        let clock = clock.clone();
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut unavailable, mut failed) = (Vec::new(), 0usize, 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                if let Some(rate) = rate {
                    let due =
                        zero + Duration::from_nanos((i - start) as u64 * 1_000_000_000 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let (body, signature) = &bodies[i];
                loop {
                    let sent = Instant::now();
                    let answer = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-hub-signature-256", signature)
                        .body(body.clone())
                        .send()
                        .await;
                    match answer.map(|r| r.status().as_u16()) {
                        Ok(200) => {
                            latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                            acked_at[i - start].store(clock(), Ordering::Relaxed);
                            break;
                        }
                        Ok(503) => {
                            unavailable += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        _ => {
                            failed += 1;
                            break;
                        }
                    }
                }
            }
            (latencies, unavailable, failed)
        }));
    }
    let mut acks = Acks {
        latencies: Vec::new(),
        acked_at: Vec::new(),
        last_ack: Duration::ZERO,
        unavailable: 0,
        failed: 0,
    };
    for t in tasks {
        if let Ok((l, u, f)) = t.await {
            acks.latencies.extend(l);
            acks.unavailable += u;
            acks.failed += f;
        }
    }
    acks.latencies.sort_by(f64::total_cmp);
    acks.last_ack = Duration::from_nanos(clock());
    acks.acked_at = Arc::try_unwrap(acked_at).unwrap_or_default();
    acks
}

/// Nanoseconds on the provider's clock (one process-wide start).
fn provider_clock() -> impl Fn() -> u64 + Send + Sync + Clone + 'static {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    move || start.elapsed().as_nanos() as u64
}

/// The fake Graph API: the credential check's reads, and `POST /{version}/{number}/messages`
/// answered as Meta answers a send.
async fn fake_graph(
    State(p): State<Arc<Provider>>,
    uri: Uri,
    body: Bytes,
) -> axum::response::Response {
    let path = uri.path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let id = segments.get(1).copied().unwrap_or("1").to_string();
    let answer = if path.ends_with("/messages") {
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let to = v["to"].as_str().unwrap_or("").to_string();
        if let Some(i) = v["text"]["body"]
            .as_str()
            .and_then(|t| t.strip_prefix("bench "))
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|i| *i < p.replied.len())
        {
            let now = (provider_clock())().max(1);
            if p.replied[i]
                .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                p.replies.fetch_add(1, Ordering::Relaxed);
            } else {
                p.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
        let n = p.sent.fetch_add(1, Ordering::Relaxed);
        json!({"messaging_product": "whatsapp", "contacts": [{"input": to, "wa_id": to}],
               "messages": [{"id": format!("wamid.bench.out.{n}")}]})
    } else if path.ends_with("/phone_numbers") {
        json!({"data": [{"id": id}]})
    } else if path.ends_with("/subscribed_apps") {
        json!({"data": [{"whatsapp_business_api_data": {"id": "1", "name": "Bench"}}]})
    } else {
        json!({"id": id, "display_phone_number": "+1 555", "verified_name": "Bench", "quality_rating": "GREEN"})
    };
    axum::Json(answer).into_response()
}

/// Tenant `t`'s phone number id (its WABA id is the same string).
fn number(t: usize) -> String {
    format!("10654{t:010}")
}

/// `n` distinct signed webhooks, spread over `tenants` numbers and 1,000 contacts each: one text
/// message each, about 1.35 KB, its text `bench <i> …` so the reply names its message.
fn webhooks(n: usize, tenants: usize) -> Vec<(String, String)> {
    // Sent now: the customer-service window is open for the reply.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    (0..n)
        .map(|i| {
            let t = i % tenants;
            let contact = format!("1650555{:04}", (i / tenants) % 1000);
            let body = json!({"object": "whatsapp_business_account", "entry": [{"id": number(t), "changes": [{"field": "messages", "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": number(t)},
                "contacts": [{"profile": {"name": format!("Customer {contact}")}, "wa_id": contact}],
                "messages": [{"from": contact, "id": format!("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFCRTc2QzA1N0FFOEFBQzBFQwA.bench.{i}"),
                              "timestamp": now.to_string(), "type": "text",
                              "text": {"body": format!("bench {i} {}", "lorem ipsum dolor sit amet ".repeat(34))}}]}}]}]})
            .to_string();
            let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes())
                .expect("any key length");
            mac.update(body.as_bytes());
            let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
            (body, signature)
        })
        .collect()
}

/// The endpoint, and `tenants` tenants each with the echo policy (its own configuration) and a
/// live Meta connection on it.
async fn setup(
    client: &reqwest::Client,
    base: &str,
    graph: &str,
    tenants: usize,
) -> anyhow::Result<String> {
    let _ = graph;
    let endpoint = call(
        client,
        &format!("{base}/api/v1/endpoints"),
        OPERATOR,
        json!({"connector": "meta-cloud", "secrets": {"app_secret": SECRET, "verify_token": "v"}}),
        reqwest::Method::POST,
    )
    .await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, base, endpoint, next) = (
            client.clone(),
            base.to_string(),
            endpoint.clone(),
            next.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let t = next.fetch_add(1, Ordering::Relaxed);
                if t >= tenants {
                    return anyhow::Ok(());
                }
                let tenant = call(
                    &client,
                    &format!("{base}/api/v1/tenants"),
                    OPERATOR,
                    json!({"name": format!("bench {t}")}),
                    reqwest::Method::POST,
                )
                .await?;
                let (id, key) = (
                    tenant["id"].as_str().unwrap_or_default(),
                    tenant["api_key"].as_str().unwrap_or_default(),
                );
                call(
                    &client,
                    &format!("{base}/api/v1/tenants/{id}/policy"),
                    key,
                    json!({"plugin": "echo", "config": {"greeting": format!("tenant {t}")}}),
                    reqwest::Method::PUT,
                )
                .await?;
                call(&client, &format!("{base}/api/v1/tenants/{id}/connections"), key,
                     json!({"connector": "meta-cloud", "endpoint": endpoint,
                            "settings": {"phone_number_id": number(t), "waba_id": number(t)},
                            "secrets": {"access_token": format!("bench-access-token-{t:08}-0123456789")},
                            "consent": {"document_version": "1"}}),
                     reqwest::Method::POST).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(endpoint)
}

async fn call(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    body: Value,
    method: reqwest::Method,
) -> anyhow::Result<Value> {
    for _ in 0..50 {
        let r = client
            .request(method.clone(), url)
            .bearer_auth(key)
            .json(&body)
            .send()
            .await?;
        let status = r.status();
        let text = r.text().await?;
        if status.as_u16() == 429 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        anyhow::ensure!(status.is_success(), "{url}: {status} {text}");
        return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
    }
    anyhow::bail!("{url}: rate-limited throughout")
}

async fn wait_healthy(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..600 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the host did not become healthy")
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// (VmRSS, VmHWM) of a process in MiB.
fn rss_mib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A database of its own on a PostgreSQL server, dropped at the end.
struct Postgres {
    admin: String,
    name: String,
    url: String,
}

impl Postgres {
    async fn create(server: &str) -> anyhow::Result<Postgres> {
        use sqlx::Connection;
        let name = format!("bench_throughput_{}", std::process::id());
        let admin = format!("{}/test", server.trim_end_matches('/'));
        let mut c = sqlx::PgConnection::connect(&admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut c)
            .await?;
        Ok(Postgres {
            url: format!("{}/{name}", server.trim_end_matches('/')),
            admin,
            name,
        })
    }

    async fn drop(self) {
        use sqlx::Connection;
        if let Ok(mut c) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut c)
            .await;
        }
    }
}

/// A child process killed when dropped.
struct Killed(std::process::Child);

impl Killed {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        self.stop();
    }
}
