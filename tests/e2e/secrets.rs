//! Secrets never leave the host: a canary token set through the API never appears in an API
//! response, a log line (the real binary at debug level), an error message or the database file;
//! after disconnect no secret of that connection can be opened from the database files.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Db, Host, MASTER_KEY, OPERATOR, connect_body, graph_ok, setup};
use crate::fake::Fake;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
const CANARIES: [&str; 4] = [
    "canary-access-7f3a9c51",
    "canary-refused-0b2e44d9",
    "canary-appsecret-19c0ffee",
    "canary-verify-5ad7e11e",
];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// A Graph API that echoes the bearer token back: in the phone number's fields, and in the
/// error message when the token is the "refused" one.
async fn echoing_graph() -> Fake {
    Fake::start_with(|r| {
        let auth = r
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if auth.contains(CANARIES[1]) {
            (
                401,
                json!({"error": {"message": format!("Invalid OAuth access token - Cannot parse access token: {auth}"), "type": "OAuthException", "code": 190, "fbtrace_id": "A"}}).to_string(),
            )
        } else if let Some((status, body)) = crate::api::graph_read(r) {
            // The number's node, with the token echoed in its fields; the account's numbers.
            let mut v: Value = serde_json::from_str(&body).expect("json");
            if v.get("id").is_some() {
                v["display_phone_number"] = json!(auth);
            }
            (status, v.to_string())
        } else {
            (200, json!({"display_phone_number": auth, "verified_name": "Echo", "quality_rating": "GREEN"}).to_string())
        }
    })
    .await
}

fn assert_clean(what: &str, text: &str) {
    for c in CANARIES {
        assert!(!text.contains(c), "{what} contains the canary {c}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_token_never_leaves_the_host() {
    let graph = echoing_graph().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("SWITCHYARD_DATA_DIR", dir.path())
        .env("SWITCHYARD_LISTEN", &addr)
        .env("SWITCHYARD_OPERATOR_TOKEN", OPERATOR)
        .env("SWITCHYARD_MASTER_KEY", MASTER_KEY)
        .env("SWITCHYARD_META_GRAPH_URL", &graph.origin)
        .env("SWITCHYARD_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(120);
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut bodies = Vec::new();
    let mut call =
        async |method: Method, path: String, token: &str, body: Option<Value>| -> Value {
            let mut req = client
                .request(method, format!("{base}{path}"))
                .bearer_auth(token);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let r = req.send().await.expect("send");
            let headers = format!("{:?}", r.headers());
            let text = format!("{headers}\n{}", r.text().await.expect("text"));
            bodies.push(text.clone());
            serde_json::from_str(text.split_once('\n').map_or("", |(_, b)| b))
                .unwrap_or(Value::Null)
        };
    let tenant = call(
        Method::POST,
        "/api/v1/tenants".into(),
        OPERATOR,
        Some(json!({"name": "Canary"})),
    )
    .await;
    let (t, key) = (
        tenant["id"].as_str().expect("id").to_string(),
        tenant["api_key"].as_str().expect("key").to_string(),
    );
    let endpoint = call(
        Method::POST,
        "/api/v1/endpoints".into(),
        OPERATOR,
        Some(json!({"connector": "meta-cloud", "secrets": {"app_secret": CANARIES[2], "verify_token": CANARIES[3]}})),
    )
    .await;
    let e = endpoint["id"].as_str().expect("endpoint").to_string();
    let ok = call(
        Method::POST,
        format!("/api/v1/tenants/{t}/connections"),
        &key,
        Some(connect_body(&e, "1001", CANARIES[0])),
    )
    .await;
    assert_eq!(ok["status"], "live", "{ok}");
    let refused = call(
        Method::POST,
        format!("/api/v1/tenants/{t}/connections"),
        &key,
        Some(connect_body(&e, "6006", CANARIES[1])),
    )
    .await;
    assert_eq!(refused["error"]["code"], "invalid_credentials", "{refused}");
    // The provider's message came through, with the token in it redacted.
    assert!(
        refused["error"]["message"]
            .as_str()
            .expect("message")
            .contains("[redacted]"),
        "{refused}"
    );
    let c = ok["id"].as_str().expect("id").to_string();
    for path in [
        format!("/api/v1/tenants/{t}"),
        format!("/api/v1/tenants/{t}/connections"),
        format!("/api/v1/tenants/{t}/connections/{c}"),
        format!("/api/v1/tenants/{t}/consent"),
        format!("/api/v1/tenants/{t}/consent/export"),
        "/api/v1/tenants".into(),
    ] {
        call(Method::GET, path, &key, None).await;
    }
    // The echoed token reached the fake (so it was really sent) …
    assert!(
        graph
            .requests()
            .iter()
            .any(|r| r.headers["authorization"] == format!("Bearer {}", CANARIES[0]))
    );
    // … and neither the database file nor any response holds it.
    for f in ["switchyard.db", "switchyard.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(f)) {
            assert_clean(f, &String::from_utf8_lossy(&bytes));
        }
    }
    call(
        Method::DELETE,
        format!("/api/v1/tenants/{t}/connections/{c}"),
        &key,
        None,
    )
    .await;
    for b in &bodies {
        assert_clean("an API response", b);
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let logs: Vec<String> = rx.try_iter().collect();
    assert!(logs.len() > 5, "debug logs were captured");
    assert!(
        logs.iter().any(|l| l.contains("number connected")),
        "{logs:?}"
    );
    assert_clean("the log", &logs.join("\n"));
}

/// Read the rows behind the server's back (SQLite).
async fn sealed_rows(db: &std::path::Path, connection: &str) -> Vec<Vec<u8>> {
    use sqlx::Connection as _;
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display()))
        .await
        .expect("open");
    let mut out: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT sealed FROM connection_keys WHERE connection_id = $1")
            .bind(connection)
            .fetch_all(&mut c)
            .await
            .expect("keys");
    out.extend(
        sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT ciphertext FROM connection_secrets WHERE connection_id = $1",
        )
        .bind(connection)
        .fetch_all(&mut c)
        .await
        .expect("secrets"),
    );
    out
}

fn files_contain(dir: &std::path::Path, needle: &[u8]) -> bool {
    ["switchyard.db", "switchyard.db-wal", "switchyard.db-shm"]
        .iter()
        .any(|f| {
            std::fs::read(dir.join(f))
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_disconnect_no_secret_of_the_connection_can_be_opened_from_the_files() {
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    let db = h.data.path().join("switchyard.db");
    let a_rows = sealed_rows(&db, &s.a_connection).await;
    let b_rows = sealed_rows(&db, &s.b_connection).await;
    assert_eq!(
        (a_rows.len(), b_rows.len()),
        (2, 2),
        "a sealed key and one secret each"
    );
    for r in &a_rows {
        assert!(
            files_contain(h.data.path(), r),
            "the sealed bytes are in the files before"
        );
    }
    h.ok(
        Method::DELETE,
        &format!("/api/v1/tenants/{}/connections/{}", s.a.0, s.a_connection),
        &s.a.1,
        None,
    )
    .await;
    for r in &a_rows {
        assert!(
            !files_contain(h.data.path(), r),
            "a shredded key or ciphertext is still in the files"
        );
    }
    // The other tenant's are untouched (so the search above could find them).
    for r in &b_rows {
        assert!(files_contain(h.data.path(), r));
    }
    assert!(sealed_rows(&db, &s.a_connection).await.is_empty());
}

#[test]
fn demo_mode_generates_credentials_only_where_it_is_safe() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Not loopback: refused, naming the variable.
    let out = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("SWITCHYARD_DATA_DIR", dir.path())
        .env("SWITCHYARD_LISTEN", "0.0.0.0:1")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SWITCHYARD_OPERATOR_TOKEN"));
    // A token but no key: refused, naming the key.
    let out = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("SWITCHYARD_DATA_DIR", dir.path())
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("SWITCHYARD_OPERATOR_TOKEN", "x")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SWITCHYARD_MASTER_KEY"));
    // A malformed key: refused with a clear error that does not echo it.
    let out = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("SWITCHYARD_DATA_DIR", dir.path())
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("SWITCHYARD_OPERATOR_TOKEN", "x")
        .env("SWITCHYARD_MASTER_KEY", "bm90LWEta2V5LXNlY3JldA==")
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("SWITCHYARD_MASTER_KEY") && err.contains("32"),
        "{err}"
    );
    assert!(!err.contains("bm90LWEta2V5LXNlY3JldA"), "{err}");
}

#[test]
fn demo_mode_writes_private_files_and_names_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("SWITCHYARD_DATA_DIR", dir.path())
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{}", free_port()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("switchyard listening") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let token_file = dir.path().join(switchyard::demo::TOKEN_FILE);
    let token = std::fs::read_to_string(&token_file).expect("token file");
    assert!(
        seen.contains("DEMO MODE") && seen.contains(&token_file.display().to_string()),
        "{seen}"
    );
    assert!(
        !seen.contains(token.trim()),
        "the banner must not print the token"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for f in [switchyard::demo::TOKEN_FILE, switchyard::demo::KEY_FILE] {
            let mode = std::fs::metadata(dir.path().join(f))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_verify_and_vault_rotate_commands_work_on_a_real_database() {
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    let url = format!("sqlite://{}", h.data.path().join("switchyard.db").display());
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("SWITCHYARD_DATABASE_URL", &url);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, out) = run(&["ledger", "verify"], &[]);
    assert!(
        ok && out.contains("checked 2 tenants") && out.contains("0 broken"),
        "{out}"
    );
    let (ok, out) = run(&["ledger", "verify", "--tenant", &s.a.0], &[]);
    assert!(ok && out.contains("checked 1 tenants"), "{out}");
    // Rotate to a second key version; the old key listed as previous.
    let new_key = "2:HxwdHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";
    let previous = format!("1:{MASTER_KEY}");
    let (ok, out) = run(
        &["vault", "rotate"],
        &[
            ("SWITCHYARD_MASTER_KEY", new_key),
            ("SWITCHYARD_MASTER_KEYS_PREVIOUS", &previous),
        ],
    );
    assert!(
        ok && out.contains("key version 2") && out.contains("3 data keys re-sealed"),
        "{out}"
    );
    let (ok, out) = run(&["vault", "rotate"], &[("SWITCHYARD_MASTER_KEY", new_key)]);
    assert!(
        ok && out.contains("0 data keys re-sealed, 3 already current"),
        "{out}"
    );
    // Tamper behind the database's back: verify names the row and fails.
    {
        use sqlx::Connection as _;
        let mut c = sqlx::SqliteConnection::connect(&url).await.expect("raw");
        sqlx::query("DROP TRIGGER consent_ledger_no_update")
            .execute(&mut c)
            .await
            .expect("drop");
        sqlx::query("UPDATE consent_ledger SET ip = '6.6.6.6' WHERE tenant_id = $1 AND seq = 1")
            .bind(&s.b.0)
            .execute(&mut c)
            .await
            .expect("tamper");
    }
    let (ok, out) = run(&["ledger", "verify"], &[]);
    assert!(
        !ok && out.contains(&format!("BROKEN tenant {} at row seq 1", s.b.0)),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_postgres_role_that_rls_would_not_hold() {
    let Some(pg) = crate::pg::PgDb::create("serve_refuses_superuser").await else {
        return;
    };
    switchyard::migrate_postgres(&pg.owner_url(), &pg.app_url())
        .await
        .expect("migrate");
    for (url, why) in [
        (pg.superuser_url(), "superuser"),
        (pg.owner_url(), "owns the tables"),
    ] {
        let out = Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("SWITCHYARD_DATABASE_URL", &url)
            .env("SWITCHYARD_OPERATOR_TOKEN", OPERATOR)
            .env("SWITCHYARD_MASTER_KEY", MASTER_KEY)
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or_default();
        assert!(!out.status.success(), "{err}");
        assert!(
            last.contains(why) && last.contains("--insecure-db-role"),
            "{last}"
        );
    }
}
