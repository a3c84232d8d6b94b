//! Crash safety of the real `switchyard` binary, as Meta would exercise it.
//!
//! A load generator posts a few thousand signed Meta webhooks, each a distinct text message, and
//! retries every one that is not answered 2xx (connection refused, 503, …) until it is, as Meta
//! does. A fake Graph API counts the replies the bundled `echo` policy sends, per reply text.
//!
//! * `crash_kill_9_loses_nothing_and_decides_once_*` (SQLite, PostgreSQL): the host is killed
//!   with SIGKILL three times (once while the webhooks arrive, twice while their replies are
//!   decided and sent) and restarted on the same port and data each time.
//!   Afterwards every acknowledged webhook is stored exactly once as an inbound message, every
//!   inbound message has exactly one decision (one outbound reply, key `<message id>:0`), no job
//!   is dead, every reply reached the provider, and the replies that reached it more than once
//!   are few (at most one per worker per kill: sent, then killed before the send was recorded)
//!   and each is marked `possible_duplicate` in the database.
//! * `two_hosts_on_one_postgres_process_one_stream_once`: two processes on one PostgreSQL
//!   database share the stream (webhooks alternate between them); nothing is killed, so every
//!   reply reaches the provider exactly once.
//!
//! `SWITCHYARD_CRASH_WEBHOOKS` sets how many webhooks the crash test posts (default 2000).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::api::{Api, MASTER_KEY, OPERATOR, setup};
use crate::fake::Fake;
use crate::ingress::{graph_that_sends, meta_message, sign};
use crate::pg::PgDb;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
/// Tenant A's number in [`setup`], and its Meta app's secret.
const NUMBER: &str = "1001";
const APP_SECRET: &str = "app-secret-1";
/// Job workers per host process: with the kills, the bound on duplicate sends.
const WORKERS: usize = 4;
/// How often the crash test kills the host.
const KILLS: usize = 3;
/// Concurrent webhook deliveries.
const CONCURRENCY: usize = 32;
/// Bounds of the phases (not timings: a healthy run is far inside them).
const START_LIMIT: Duration = Duration::from_secs(120);
const LOAD_LIMIT: Duration = Duration::from_secs(600);
const DRAIN_LIMIT: Duration = Duration::from_secs(180);

// ---------------------------------------------------------------------------------------------
// The host as a child process.

/// One `switchyard serve` process, restarted on the same flags (port, data, keys) after a kill,
/// its stderr appended to a log file. Killed when dropped.
struct Proc {
    name: String,
    args: Vec<String>,
    base: String,
    log: PathBuf,
    child: Option<Child>,
    starts: usize,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Proc {
    /// The flags of a host on `port` with its data in `data`, calling the Graph API at `graph`,
    /// on `pg`'s database or on SQLite in `data`.
    fn new(name: &str, port: u16, data: &Path, graph: &str, pg: Option<&PgDb>) -> Proc {
        let listen = format!("127.0.0.1:{port}");
        let (dir, workers) = (data.display().to_string(), WORKERS.to_string());
        let mut args: Vec<String> = [
            "serve",
            "--listen",
            listen.as_str(),
            "--data-dir",
            dir.as_str(),
            "--operator-token",
            OPERATOR,
            "--master-key",
            MASTER_KEY,
            "--public-url",
            "https://hooks.example.test/",
            "--meta-graph-url",
            graph,
            "--job-lease-secs",
            "3",
            "--plugin-wall-ms",
            "2000",
            "--egress-timeout-ms",
            "1000",
            "--workers",
            workers.as_str(),
        ]
        .map(String::from)
        .to_vec();
        if let Some(pg) = pg {
            args.extend([
                "--database-url".into(),
                pg.app_url(),
                "--database-owner-url".into(),
                pg.owner_url(),
            ]);
        }
        Proc {
            name: name.to_string(),
            args,
            base: format!("http://{listen}"),
            log: data.join("host.log"),
            child: None,
            starts: 0,
        }
    }

    /// Spawn the binary and wait until `/healthz` answers 200.
    async fn start(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        self.starts += 1;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the host log");
        std::io::Write::write_all(
            &mut log,
            format!("=== crash test: start #{}\n", self.starts).as_bytes(),
        )
        .expect("write the host log");
        let child = Command::new(BIN)
            .args(&self.args)
            .env_clear()
            .env("SWITCHYARD_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn switchyard");
        self.child = Some(child);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Ok(r) = client.get(format!("{}/healthz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            if let Some(Ok(Some(exit))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "{} exited during start-up ({exit}):\n{}",
                    self.name,
                    self.log_tail(40)
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer /healthz within {START_LIMIT:?}:\n{}",
                self.name,
                self.log_tail(40)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kill -9`, and reap it.
    fn kill9(&mut self) {
        let mut child = self.child.take().expect("a running host to kill");
        child.kill().expect("SIGKILL the host");
        child.wait().expect("reap the host");
    }

    /// The last `n` lines of the log.
    fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The log lines that contain `needle`.
    fn log_lines(&self, needle: &str) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .map(String::from)
            .collect()
    }

    fn api(&self) -> Api {
        Api::new(&self.base)
    }
}

// ---------------------------------------------------------------------------------------------
// The webhook stream.

/// Webhook `n`: its message id and text (the text is also its echo reply).
fn wamid(run: &str, n: usize) -> String {
    format!("wamid.{run}{n}")
}

fn text(run: &str, n: usize) -> String {
    format!("{run}-{n}")
}

/// Delivery counters of a load run.
#[derive(Default)]
struct Load {
    next: AtomicUsize,
    acked: AtomicUsize,
    /// Per webhook: answered 2xx at least once.
    acks: Vec<AtomicBool>,
    /// Answered, but not 2xx (e.g. 503 while the database is away).
    refused: AtomicUsize,
    /// No answer at all (connection refused or reset: the host is down).
    failed: AtomicUsize,
}

/// Post webhooks `0..total` of `run` with [`CONCURRENCY`] tasks, webhook `n` to
/// `hooks[n % hooks.len()]`, each retried until it is answered 2xx.
fn post_all(
    run: &str,
    total: usize,
    hooks: Vec<String>,
) -> (Arc<Load>, Vec<tokio::task::JoinHandle<()>>) {
    let load = Arc::new(Load {
        acks: (0..total).map(|_| AtomicBool::new(false)).collect(),
        ..Load::default()
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let hooks = Arc::new(hooks);
    let deadline = Instant::now() + LOAD_LIMIT;
    let tasks = (0..CONCURRENCY)
        .map(|_| {
            let (load, client, hooks, run) =
                (load.clone(), client.clone(), hooks.clone(), run.to_string());
            tokio::spawn(async move {
                loop {
                    let n = load.next.fetch_add(1, Ordering::SeqCst);
                    if n >= total {
                        return;
                    }
                    let body = meta_message(NUMBER, &wamid(&run, n), &text(&run, n));
                    let signature = sign(APP_SECRET, &body);
                    let hook = &hooks[n % hooks.len()];
                    loop {
                        let sent = client
                            .post(hook)
                            .header("content-type", "application/json")
                            .header("x-hub-signature-256", &signature)
                            .body(body.clone())
                            .send()
                            .await;
                        match sent {
                            Ok(r) if r.status().is_success() => {
                                load.acks[n].store(true, Ordering::SeqCst);
                                load.acked.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            Ok(_) => load.refused.fetch_add(1, Ordering::SeqCst),
                            Err(_) => load.failed.fetch_add(1, Ordering::SeqCst),
                        };
                        assert!(
                            Instant::now() < deadline,
                            "webhook {n} was not acknowledged within {LOAD_LIMIT:?}"
                        );
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            })
        })
        .collect();
    (load, tasks)
}

/// Wait for every load task (a task's panic is the test's).
async fn finish(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for t in tasks {
        if let Err(e) = t.await {
            match e.try_into_panic() {
                Ok(p) => std::panic::resume_unwind(p),
                Err(e) => panic!("load task: {e}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the database and the provider saw.

/// A connection that reads every row: the SQLite file, or PostgreSQL as the superuser (the
/// owner and app roles see nothing outside a tenant scope: row-level security is forced).
enum Reader {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Reader {
    async fn open(data: &Path, pg: Option<&PgDb>) -> Reader {
        match pg {
            Some(pg) => Reader::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(2)
                    .connect(&pg.superuser_url())
                    .await
                    .expect("connect to PostgreSQL as the superuser"),
            ),
            None => Reader::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(
                        sqlx::sqlite::SqliteConnectOptions::new()
                            .filename(data.join("switchyard.db")),
                    )
                    .await
                    .expect("open the SQLite database"),
            ),
        }
    }

    /// The rows of `sql`, on either backend.
    async fn rows<R>(&self, sql: &'static str) -> Result<Vec<R>, sqlx::Error>
    where
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
            + Send
            + Unpin,
    {
        match self {
            Reader::Sqlite(p) => sqlx::query_as(sql).fetch_all(p).await,
            Reader::Postgres(p) => sqlx::query_as(sql).fetch_all(p).await,
        }
    }

    /// Rows of `(text, count)`.
    async fn pairs(&self, sql: &'static str) -> Result<Vec<(String, i64)>, sqlx::Error> {
        self.rows(sql).await
    }

    /// Per reply text whose send job ran more than once: `(attempts, last error)` — no error
    /// when its lease ran out after a kill, the error when an attempt failed.
    async fn repeated_sends(&self) -> HashMap<String, (i64, String)> {
        let rows: Vec<(String, i64, String)> = self
            .rows(REPEATED_SENDS)
            .await
            .unwrap_or_else(|e| panic!("{REPEATED_SENDS}: {e}"));
        rows.into_iter().map(|(t, a, e)| (t, (a, e))).collect()
    }

    /// [`Reader::pairs`] as a map; a failing query fails the test.
    async fn map(&self, sql: &'static str) -> BTreeMap<String, i64> {
        self.pairs(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .collect()
    }
}

const JOB_STATES: &str = "SELECT state, COUNT(*) FROM jobs GROUP BY state";
const OUT_STATES: &str =
    "SELECT status, COUNT(*) FROM messages WHERE direction = 'out' GROUP BY status";
const INBOUND: &str = "SELECT COALESCE(provider_message_id, ''), COUNT(*) FROM messages
                       WHERE direction = 'in' GROUP BY provider_message_id";
/// Per inbound message, its decisions: outbound replies keyed `<inbound id>:0`.
const DECISIONS: &str = "SELECT COALESCE(i.provider_message_id, ''), COUNT(o.id)
                         FROM messages i
                         LEFT JOIN messages o ON o.direction = 'out'
                                             AND o.idempotency_key = i.id || ':0'
                         WHERE i.direction = 'in' GROUP BY i.provider_message_id";
const DEAD: &str = "SELECT kind || ': ' || COALESCE(last_error, ''), COUNT(*) FROM jobs
                    WHERE state = 'dead' GROUP BY kind || ': ' || COALESCE(last_error, '')";
const REPEATED_SENDS: &str = "SELECT COALESCE(m.body, ''), j.attempts, COALESCE(j.last_error, '')
                              FROM jobs j JOIN messages m
                                ON m.direction = 'out' AND j.payload LIKE '%\"' || m.id || '\"%'
                              WHERE j.kind = 'send' AND j.attempts > 1";
const MARKED: &str = "SELECT COALESCE(body, ''), COUNT(*) FROM messages
                      WHERE direction = 'out' AND possible_duplicate = 1 GROUP BY body";

/// Sends the fake Graph API received, per reply text.
fn sends(graph: &Fake) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for r in graph.requests() {
        if r.method != "POST" || !r.path.ends_with(&format!("/{NUMBER}/messages")) {
            continue;
        }
        let body: serde_json::Value = serde_json::from_slice(&r.body).expect("a JSON send");
        let text = body["text"]["body"].as_str().expect("a text send");
        *out.entry(text.to_string()).or_default() += 1;
    }
    out
}

/// How many sends the fake Graph API received so far (cheaper than [`sends`]).
fn sent_so_far(graph: &Fake) -> usize {
    graph
        .received
        .lock()
        .expect("lock")
        .iter()
        .filter(|r| r.method == "POST")
        .count()
}

/// Wait until no job is queued or running, no reply is queued and the provider has seen every
/// reply of `run`; fail naming what is missing.
async fn drain(db: &Reader, graph: &Fake, run: &str, total: usize, procs: &[&Proc]) {
    let deadline = Instant::now() + DRAIN_LIMIT;
    loop {
        let jobs = db.map(JOB_STATES).await;
        let out = db.map(OUT_STATES).await;
        let sent = sends(graph);
        let pending: i64 = ["queued", "running"]
            .iter()
            .filter_map(|s| jobs.get(*s))
            .sum();
        let unsent: Vec<String> = (0..total)
            .map(|n| text(run, n))
            .filter(|t| !sent.contains_key(t))
            .collect();
        let queued_replies = out.get("queued").copied().unwrap_or(0);
        if pending == 0 && queued_replies == 0 && unsent.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            let inbound = db.map(INBOUND).await;
            let missing: Vec<String> = (0..total)
                .map(|n| wamid(run, n))
                .filter(|w| !inbound.contains_key(w))
                .collect();
            let logs: Vec<String> = procs
                .iter()
                .map(|p| format!("--- {} log:\n{}", p.name, p.log_tail(30)))
                .collect();
            panic!(
                "not drained after {DRAIN_LIMIT:?}: jobs {jobs:?}; replies by status {out:?}; \
                 {} of {total} inbound messages not stored (e.g. {:?}); {} of {total} replies \
                 never reached the provider (e.g. {:?})\n{}",
                missing.len(),
                &missing[..missing.len().min(5)],
                unsent.len(),
                &unsent[..unsent.len().min(5)],
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What a run ended with.
struct Outcome {
    stored: usize,
    decisions: usize,
    sends: usize,
    /// Reply texts the provider received more than once.
    duplicated: Vec<String>,
    /// Why each duplicated reply was sent again (see [`Reader::repeated_sends`]).
    causes: Vec<String>,
}

/// The invariants of a drained run: every acknowledged webhook stored once, one decision per
/// inbound message, no dead job, every reply sent at least once. The duplicated sends are
/// returned for the caller's bound.
async fn check(db: &Reader, graph: &Fake, run: &str, load: &Load) -> Outcome {
    let total = load.acks.len();
    let acked: Vec<usize> = (0..total)
        .filter(|n| load.acks[*n].load(Ordering::SeqCst))
        .collect();
    assert_eq!(
        acked.len(),
        total,
        "every webhook was acknowledged in the end"
    );

    let inbound = db.map(INBOUND).await;
    let lost: Vec<String> = acked
        .iter()
        .map(|n| wamid(run, *n))
        .filter(|w| !inbound.contains_key(w))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged webhooks were never stored, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let twice: Vec<(&String, &i64)> = inbound.iter().filter(|(_, c)| **c != 1).collect();
    assert!(
        twice.is_empty(),
        "inbound messages stored more than once: {twice:?}"
    );
    assert_eq!(
        inbound.len(),
        total,
        "exactly the posted messages are stored"
    );

    let decisions = db.map(DECISIONS).await;
    let undecided: Vec<&String> = decisions
        .iter()
        .filter(|(_, c)| **c == 0)
        .map(|(w, _)| w)
        .collect();
    let redecided: Vec<(&String, &i64)> = decisions.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        undecided.is_empty() && redecided.is_empty(),
        "one decision per inbound message: {} without (e.g. {:?}), duplicates {redecided:?}",
        undecided.len(),
        &undecided[..undecided.len().min(10)]
    );
    let out: i64 = db.map(OUT_STATES).await.values().sum();
    assert_eq!(
        out as usize, total,
        "no outbound message besides the one reply per inbound message"
    );

    let dead = db.map(DEAD).await;
    assert!(dead.is_empty(), "dead jobs: {dead:?}");

    let sent = sends(graph);
    let unsent: Vec<String> = (0..total)
        .map(|n| text(run, n))
        .filter(|t| !sent.contains_key(t))
        .collect();
    assert!(
        unsent.is_empty(),
        "replies that never reached the provider: {unsent:?}"
    );
    let mut duplicated: Vec<String> = sent
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(t, _)| t.clone())
        .collect();
    duplicated.sort();
    let repeated = db.repeated_sends().await;
    let causes = duplicated
        .iter()
        .map(|t| match repeated.get(t) {
            Some((attempts, e)) if e.is_empty() => {
                format!("{t}: {attempts} attempts, no failure recorded (a lost lease)")
            }
            Some((attempts, e)) => format!("{t}: {attempts} attempts, last error {e:?}"),
            None => format!("{t}: its send job ran once"),
        })
        .collect();
    Outcome {
        causes,
        stored: inbound.len(),
        decisions: decisions.values().sum::<i64>() as usize,
        sends: sent.values().sum(),
        duplicated,
    }
}

// ---------------------------------------------------------------------------------------------
// The set-up both tests share.

/// Set up tenant A of [`setup`] through `api`, with the bundled `echo` policy; the hook URL.
async fn echo_tenant(api: &Api) -> String {
    let s = setup(api).await;
    api.ok(
        Method::PUT,
        &format!("/api/v1/tenants/{}/policy", s.a.0),
        &s.a.1,
        Some(json!({"plugin": "echo"})),
    )
    .await;
    format!("/hooks/{}", s.endpoint)
}

fn webhooks() -> usize {
    match std::env::var("SWITCHYARD_CRASH_WEBHOOKS") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("SWITCHYARD_CRASH_WEBHOOKS={v:?} is not a number")),
        Err(_) => 2000,
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

async fn crash_kill_9(flavor: &str, pg: Option<PgDb>) {
    let started = Instant::now();
    let run = "crash";
    let total = webhooks();
    let graph = graph_that_sends().await;
    let data = tempfile::tempdir().expect("tempdir");
    let mut host = Proc::new(
        &format!("host ({flavor})"),
        crate::serve::free_port(),
        data.path(),
        &graph.origin,
        pg.as_ref(),
    );
    host.start().await;
    let hook = format!("{}{}", host.base, echo_tenant(&host.api()).await);

    let (load, tasks) = post_all(run, total, vec![hook]);
    // Ingress is quicker than the replies: the first kill lands while webhooks arrive, the
    // others while the backlog is parsed, decided and sent.
    let triggers: [(&str, usize); KILLS] = [
        ("acks", total / 2),
        ("sends", total / 3),
        ("sends", total * 2 / 3),
    ];
    let progress = |what: &str| match what {
        "acks" => load.acked.load(Ordering::SeqCst),
        _ => sent_so_far(&graph),
    };
    let kill_deadline = Instant::now() + LOAD_LIMIT;
    let mut kills = 0;
    for (what, at) in triggers {
        while progress(what) < at {
            assert!(
                Instant::now() < kill_deadline,
                "only {} of {total} webhooks acknowledged and {} replies sent within \
                 {LOAD_LIMIT:?}:\n{}",
                progress("acks"),
                progress("sends"),
                host.log_tail(30)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        host.kill9();
        kills += 1;
        eprintln!(
            "crash[{flavor}]: kill -9 #{kills} after {} acks and {} sends ({:.1} s)",
            progress("acks"),
            progress("sends"),
            started.elapsed().as_secs_f64()
        );
        host.start().await;
    }
    finish(tasks).await;

    let db = Reader::open(data.path(), pg.as_ref()).await;
    drain(&db, &graph, run, total, &[&host]).await;
    let outcome = check(&db, &graph, run, &load).await;
    let retried = host.log_lines("will retry");
    let overtaken = host.log_lines("after its lease was taken over").len();
    for line in retried.iter().take(5) {
        eprintln!("crash[{flavor}]: {line}");
    }
    eprintln!(
        "crash[{flavor}]: acked {}/{total} (refused answers {}, failed posts {}), stored {}, \
         decisions {}, sends {}, duplicate sends {} {:?}, kills {kills}, retried jobs {}, \
         lease takeovers logged {overtaken}, elapsed {:.1} s",
        load.acked.load(Ordering::SeqCst),
        load.refused.load(Ordering::SeqCst),
        load.failed.load(Ordering::SeqCst),
        outcome.stored,
        outcome.decisions,
        outcome.sends,
        outcome.duplicated.len(),
        outcome.causes,
        retried.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        outcome.duplicated.len() <= WORKERS * KILLS,
        "{} replies reached the provider more than once; at most {WORKERS} workers × {KILLS} \
         kills may: {:?}",
        outcome.duplicated.len(),
        outcome.causes
    );
    // A reply that may have reached the provider twice says so.
    let marked = db
        .pairs(MARKED)
        .await
        .unwrap_or_else(|e| panic!("reading messages.possible_duplicate: {e}"));
    let marked: HashMap<String, i64> = marked.into_iter().collect();
    let unmarked: Vec<&String> = outcome
        .duplicated
        .iter()
        .filter(|t| !marked.contains_key(*t))
        .collect();
    assert!(
        unmarked.is_empty(),
        "replies sent twice but not marked possible_duplicate: {unmarked:?}"
    );
    drop(host);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_kill_9_loses_nothing_and_decides_once_sqlite() {
    crash_kill_9("sqlite", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_kill_9_loses_nothing_and_decides_once_postgres() {
    let Some(pg) = PgDb::create("crash_kill_9_loses_nothing_and_decides_once_postgres").await
    else {
        return;
    };
    crash_kill_9("postgres", Some(pg)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_on_one_postgres_process_one_stream_once() {
    let Some(pg) = PgDb::create("two_hosts_on_one_postgres_process_one_stream_once").await else {
        return;
    };
    let started = Instant::now();
    let run = "two";
    let total = 600;
    let graph = graph_that_sends().await;
    let (data_a, data_b) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let mut a = Proc::new(
        "host A",
        crate::serve::free_port(),
        data_a.path(),
        &graph.origin,
        Some(&pg),
    );
    let mut b = Proc::new(
        "host B",
        crate::serve::free_port(),
        data_b.path(),
        &graph.origin,
        Some(&pg),
    );
    // One after the other: the second finds the migrations applied.
    a.start().await;
    b.start().await;
    let path = echo_tenant(&a.api()).await;
    let hooks = vec![format!("{}{path}", a.base), format!("{}{path}", b.base)];

    let (load, tasks) = post_all(run, total, hooks);
    finish(tasks).await;
    let db = Reader::open(data_a.path(), Some(&pg)).await;
    drain(&db, &graph, run, total, &[&a, &b]).await;
    let outcome = check(&db, &graph, run, &load).await;
    eprintln!(
        "two hosts: acked {}/{total}, stored {}, decisions {}, sends {}, duplicate sends {}, \
         elapsed {:.1} s",
        load.acked.load(Ordering::SeqCst),
        outcome.stored,
        outcome.decisions,
        outcome.sends,
        outcome.duplicated.len(),
        started.elapsed().as_secs_f64()
    );
    // Nothing is killed, so a reply reaches the provider twice only when a plugin call died
    // mid-send (a deadline on a loaded machine), and then it is marked as such (A8).
    let marked: HashMap<String, i64> = db
        .pairs(MARKED)
        .await
        .unwrap_or_else(|e| panic!("reading messages.possible_duplicate: {e}"))
        .into_iter()
        .collect();
    let unmarked: Vec<&String> = outcome
        .duplicated
        .iter()
        .filter(|t| !marked.contains_key(*t))
        .collect();
    assert!(
        unmarked.is_empty(),
        "replies sent twice without a possible-duplicate mark: {unmarked:?} ({:?})",
        outcome.causes
    );
    assert_eq!(sends(&graph).len(), total, "every reply sent");
    drop((a, b));
}
