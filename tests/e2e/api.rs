//! The management API in-process (`switchyard::serve` on a real socket) on SQLite and
//! PostgreSQL: auth of every endpoint, tenant isolation, pagination, error shapes, connecting
//! and disconnecting a Meta number against a fake Graph API.

use std::net::SocketAddr;

use clap::Parser as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::fake::Fake;
use crate::pg::PgDb;

pub const OPERATOR: &str = "operator-token-for-tests";
pub const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
pub const GRAPH_OK: &str = r#"{"display_phone_number":"+1 555-078-3881","verified_name":"Lucky Shrub","quality_rating":"GREEN","id":"106540352242922"}"#;

/// The numbers every WhatsApp Business Account lists in the permissive Graph fake.
pub const LISTED_NUMBERS: &[&str] = &["106540352242922", "1001", "2002", "6006", "7007", "9"];

/// Graph's answer to the reads a Meta connect makes, for any token: a phone number's node
/// (`GET /v26.0/{id}?fields=id,…`) carries the id asked for; `GET /v26.0/{waba}/phone_numbers`
/// lists [`LISTED_NUMBERS`]. `None` for anything else.
pub fn graph_read(r: &crate::fake::Received) -> Option<(u16, String)> {
    if r.method != "GET" {
        return None;
    }
    let (path, query) = r.path.split_once('?').unwrap_or((r.path.as_str(), ""));
    let rest = path.trim_start_matches('/').split_once('/')?.1;
    if let Some(_waba) = rest.strip_suffix("/phone_numbers") {
        let data: Vec<Value> = LISTED_NUMBERS.iter().map(|n| json!({"id": n})).collect();
        return Some((200, json!({"data": data}).to_string()));
    }
    let asks_id = query
        .split('&')
        .any(|kv| kv.starts_with("fields=") && kv[7..].split(',').any(|f| f == "id"));
    if !rest.contains('/') && asks_id {
        let mut node: Value = serde_json::from_str(GRAPH_OK).expect("json");
        node["id"] = json!(rest);
        return Some((200, node.to_string()));
    }
    None
}

/// A permissive Graph API: [`graph_read`], else `GRAPH_OK` to everything.
pub fn graph_ok(r: &crate::fake::Received) -> (u16, String) {
    graph_read(r).unwrap_or_else(|| (200, GRAPH_OK.to_string()))
}

/// A client of one host's HTTP API (in-process or a spawned binary).
pub struct Api {
    pub base: String,
    client: reqwest::Client,
}

/// A host serving on 127.0.0.1, stopped when dropped; its API through `Deref`.
pub struct Host {
    api: Api,
    pub data: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _pg: Option<PgDb>,
}

impl std::ops::Deref for Host {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

pub enum Db {
    Sqlite,
    Postgres(PgDb),
}

impl Host {
    pub async fn start(db: Db, graph: &str) -> Host {
        Host::start_with(db, graph, &[]).await
    }

    /// Like [`Host::start`], with extra `serve` flags.
    pub async fn start_with(db: Db, graph: &str, extra: &[&str]) -> Host {
        let data = tempfile::tempdir().expect("tempdir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let mut args = vec![
            "switchyard".to_string(),
            "serve".into(),
            "--listen".into(),
            addr.to_string(),
            "--data-dir".into(),
            data.path().display().to_string(),
            "--operator-token".into(),
            OPERATOR.into(),
            "--master-key".into(),
            MASTER_KEY.into(),
            "--meta-graph-url".into(),
            graph.into(),
        ];
        // `{self}` in an extra flag is this host's own address (a public URL that reaches it).
        if !extra.contains(&"--public-url") {
            args.extend(["--public-url".into(), "https://hooks.example.test/".into()]);
        }
        args.extend(
            extra
                .iter()
                .map(|a| a.replace("{self}", &format!("http://{addr}"))),
        );
        let pg = match db {
            Db::Sqlite => None,
            Db::Postgres(pg) => {
                args.extend([
                    "--database-url".into(),
                    pg.app_url(),
                    "--database-owner-url".into(),
                    pg.owner_url(),
                ]);
                Some(pg)
            }
        };
        let cli = switchyard::config::Cli::try_parse_from(args).expect("flags");
        let switchyard::config::Command::Serve(serve) = cli.command else {
            panic!("serve")
        };
        let config = serve.into_config().expect("config");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready) = tokio::sync::oneshot::channel::<Result<(), String>>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            // serve() only returns on shutdown or a start-up error.
            let r = switchyard::serve(config, listener, shutdown).await;
            let _ = ready_tx.send(r.map_err(|e| format!("{e:#}")));
        });
        let host = Host {
            api: Api::new(&format!("http://{addr}")),
            data,
            stop: Some(stop),
            task: Some(task),
            _pg: pg,
        };
        for _ in 0..600 {
            if let Ok(r) = host
                .client
                .get(format!("{}/healthz", host.base))
                .send()
                .await
                && r.status() == 200
            {
                return host;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("host did not start: {:?}", ready.await);
    }
}

impl Api {
    /// The tenant's conversation whose contact's `field` (`contact_phone`, `contact_user_id`)
    /// is `value`, and its messages newest first; `None` while there is none.
    pub async fn conversation_with(
        &self,
        tenant: &(String, String),
        field: &str,
        value: &str,
    ) -> Option<(Value, Vec<Value>)> {
        let convs = self
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
            .find(|c| c[field].as_str() == Some(value))?
            .clone();
        let msgs = self
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
        Some((conv, msgs["data"].as_array().expect("data").clone()))
    }

    /// A client of the API at `base` (`http://host:port`).
    pub fn new(base: &str) -> Api {
        Api {
            base: base.to_string(),
            client: reqwest::Client::new(),
        }
    }

    /// Call the API; `(status, JSON body)`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value)
    }

    pub async fn ok(&self, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method.clone(), path, Some(token), body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }
}

/// The error shape: `{"error": {"code", "message"}}` with the expected status.
pub fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "{}", got.1);
    assert_eq!(got.1["error"]["code"], code, "{}", got.1);
    assert!(
        got.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        got.1
    );
}

/// Two partners with a tenant each (A under P1, B under P2), a shared Meta endpoint, a live
/// number for each tenant, and keys of every role for A.
pub struct Setup {
    pub p1: (String, String),
    pub p2: (String, String),
    pub a: (String, String),
    pub b: (String, String),
    pub a_keys: std::collections::HashMap<&'static str, String>,
    pub endpoint: String,
    pub a_connection: String,
    pub b_connection: String,
}

fn id_key(v: &Value) -> (String, String) {
    (
        v["id"].as_str().expect("id").to_string(),
        v["api_key"].as_str().expect("api_key").to_string(),
    )
}

pub fn connect_body(endpoint: &str, number: &str, token: &str) -> Value {
    json!({
        "connector": "meta-cloud",
        "endpoint": endpoint,
        "settings": {"phone_number_id": number, "waba_id": "102290129340398", "display_phone_number": "+1 555-078-3881"},
        "secrets": {"access_token": token},
        "consent": {"document_version": "2026-11", "scopes": ["messaging"]}
    })
}

pub async fn setup(h: &Api) -> Setup {
    let p1 = id_key(
        &h.ok(
            Method::POST,
            "/api/v1/partners",
            OPERATOR,
            Some(json!({"name": "Partner One"})),
        )
        .await,
    );
    let p2 = id_key(
        &h.ok(
            Method::POST,
            "/api/v1/partners",
            OPERATOR,
            Some(json!({"name": "Partner Two"})),
        )
        .await,
    );
    let a = id_key(
        &h.ok(
            Method::POST,
            "/api/v1/tenants",
            &p1.1,
            Some(json!({"name": "Alpha"})),
        )
        .await,
    );
    let b = id_key(
        &h.ok(
            Method::POST,
            "/api/v1/tenants",
            &p2.1,
            Some(json!({"name": "Beta"})),
        )
        .await,
    );
    let endpoint = h
        .ok(
            Method::POST,
            "/api/v1/endpoints",
            OPERATOR,
            Some(json!({"connector": "meta-cloud", "settings": {"app_id": "1"}, "secrets": {"app_secret": "app-secret-1", "verify_token": "verify-1"}})),
        )
        .await;
    let endpoint = endpoint["id"].as_str().expect("id").to_string();
    let mut a_keys = std::collections::HashMap::new();
    a_keys.insert("owner", a.1.clone());
    for role in ["admin", "agent", "viewer"] {
        let k = h
            .ok(
                Method::POST,
                &format!("/api/v1/tenants/{}/keys", a.0),
                &a.1,
                Some(json!({"role": role})),
            )
            .await;
        a_keys.insert(role, k["api_key"].as_str().expect("key").to_string());
    }
    let ac = h
        .ok(
            Method::POST,
            &format!("/api/v1/tenants/{}/connections", a.0),
            &a.1,
            Some(connect_body(&endpoint, "1001", "token-a")),
        )
        .await;
    let bc = h
        .ok(
            Method::POST,
            &format!("/api/v1/tenants/{}/connections", b.0),
            &b.1,
            Some(connect_body(&endpoint, "2002", "token-b")),
        )
        .await;
    Setup {
        p1,
        p2,
        a,
        b,
        a_keys,
        endpoint,
        a_connection: ac["id"].as_str().expect("id").to_string(),
        b_connection: bc["id"].as_str().expect("id").to_string(),
    }
}

/// Every tenant endpoint: (method, path with {t} and {c}, body, capability class).
fn tenant_endpoints() -> Vec<(Method, &'static str, Option<Value>, &'static str)> {
    vec![
        (Method::GET, "/api/v1/tenants/{t}", None, "read"),
        (
            Method::POST,
            "/api/v1/tenants/{t}/keys",
            Some(json!({"role": "viewer"})),
            "keys",
        ),
        (Method::GET, "/api/v1/tenants/{t}/keys", None, "keys"),
        (
            Method::DELETE,
            "/api/v1/tenants/{t}/keys/key_x",
            None,
            "keys",
        ),
        (Method::POST, "/api/v1/tenants/{t}/suspend", None, "status"),
        (
            Method::POST,
            "/api/v1/tenants/{t}/reinstate",
            None,
            "status",
        ),
        (
            Method::PUT,
            "/api/v1/tenants/{t}/policy",
            Some(json!({"plugin": "echo"})),
            "manage",
        ),
        (Method::GET, "/api/v1/tenants/{t}/policy", None, "inbox"),
        (
            Method::POST,
            "/api/v1/tenants/{t}/connections",
            Some(connect_body("end_x", "9", "t")),
            "manage",
        ),
        (Method::GET, "/api/v1/tenants/{t}/connections", None, "read"),
        (
            Method::GET,
            "/api/v1/tenants/{t}/connections/{c}",
            None,
            "read",
        ),
        (
            Method::DELETE,
            "/api/v1/tenants/{t}/connections/{c}",
            None,
            "manage",
        ),
        (
            Method::GET,
            "/api/v1/tenants/{t}/conversations",
            None,
            "inbox",
        ),
        (
            Method::GET,
            "/api/v1/tenants/{t}/conversations/cnv_x/messages",
            None,
            "inbox",
        ),
        (
            Method::GET,
            "/api/v1/tenants/{t}/connections/{c}/templates",
            None,
            "read",
        ),
        (
            Method::POST,
            "/api/v1/tenants/{t}/connections/{c}/templates/sync",
            None,
            "manage",
        ),
        (
            Method::POST,
            "/api/v1/tenants/{t}/connections/{c}/verify",
            None,
            "manage",
        ),
        (
            Method::POST,
            "/api/v1/tenants/{t}/connections/{c}/test",
            Some(json!({"to": "+14155550123", "message": "test"})),
            "manage",
        ),
        (
            Method::GET,
            "/api/v1/tenants/{t}/media/med_x",
            None,
            "inbox",
        ),
        (Method::GET, "/api/v1/tenants/{t}/consent", None, "inbox"),
        (
            Method::POST,
            "/api/v1/tenants/{t}/consent",
            Some(json!({"action": "grant", "scopes": ["marketing"], "document_version": "v1"})),
            "manage",
        ),
        (
            Method::GET,
            "/api/v1/tenants/{t}/consent/export",
            None,
            "manage",
        ),
    ]
}

async fn auth_and_isolation(h: Host) {
    let s = setup(&h).await;
    let path = |p: &str, t: &str, c: &str| p.replace("{t}", t).replace("{c}", c);
    for (method, p, body, class) in tenant_endpoints() {
        let own = path(p, &s.a.0, &s.a_connection);
        // No key, a wrong key, a malformed header: 401.
        assert_error(
            &h.call(method.clone(), &own, None, body.clone()).await,
            401,
            "unauthorized",
        );
        assert_error(
            &h.call(method.clone(), &own, Some("key_0.nope"), body.clone())
                .await,
            401,
            "unauthorized",
        );
        assert_error(
            &h.call(
                method.clone(),
                &own,
                Some(&format!("{}x", s.a.1)),
                body.clone(),
            )
            .await,
            401,
            "unauthorized",
        );
        // Another tenant's objects: 404 for B's key and for B's partner, never 403.
        assert_error(
            &h.call(method.clone(), &own, Some(&s.b.1), body.clone())
                .await,
            404,
            "not_found",
        );
        assert_error(
            &h.call(method.clone(), &own, Some(&s.p2.1), body.clone())
                .await,
            404,
            "not_found",
        );
        // A's own connection through B's path: 404.
        let cross = path(p, &s.b.0, &s.a_connection);
        if p.contains("{c}") {
            assert_error(
                &h.call(method.clone(), &cross, Some(&s.b.1), body.clone())
                    .await,
                404,
                "not_found",
            );
        }
        // Roles.
        let viewer = h
            .call(
                method.clone(),
                &own,
                Some(&s.a_keys["viewer"]),
                body.clone(),
            )
            .await;
        let partner = h
            .call(method.clone(), &own, Some(&s.p1.1), body.clone())
            .await;
        match class {
            "manage" => {
                assert_error(&viewer, 403, "forbidden");
                assert_error(
                    &h.call(method.clone(), &own, Some(&s.a_keys["agent"]), body.clone())
                        .await,
                    403,
                    "forbidden",
                );
                assert_error(&partner, 403, "forbidden");
            }
            "keys" => {
                // The tenant's owners and admins, its partner and the operator.
                assert_error(&viewer, 403, "forbidden");
                assert_error(
                    &h.call(method.clone(), &own, Some(&s.a_keys["agent"]), body.clone())
                        .await,
                    403,
                    "forbidden",
                );
                assert_ne!(partner.0, 403, "{p}: {}", partner.1);
                assert!(partner.0 < 500, "{p}: {}", partner.1);
                let admin = h
                    .call(method.clone(), &own, Some(&s.a_keys["admin"]), body.clone())
                    .await;
                assert_ne!(admin.0, 403, "{p}: {}", admin.1);
            }
            "status" => {
                // Only the tenant's partner and the operator; never the tenant's own keys.
                assert_error(&viewer, 403, "forbidden");
                assert!(partner.0 < 300, "{p}: {partner:?}");
                let reinstate = path("/api/v1/tenants/{t}/reinstate", &s.a.0, "");
                h.ok(Method::POST, &reinstate, OPERATOR, None).await;
                assert_error(
                    &h.call(method.clone(), &own, Some(&s.a.1), body.clone())
                        .await,
                    403,
                    "forbidden",
                );
                let operator = h
                    .call(method.clone(), &own, Some(OPERATOR), body.clone())
                    .await;
                assert!(operator.0 < 300, "{p}: {operator:?}");
                // Leave the tenant active for the rest of the matrix.
                h.ok(Method::POST, &reinstate, OPERATOR, None).await;
            }
            "inbox" => {
                assert_ne!(viewer.0, 403, "{p}: {}", viewer.1);
                assert_error(&partner, 403, "forbidden");
                assert_error(
                    &h.call(method.clone(), &own, Some(OPERATOR), body.clone())
                        .await,
                    403,
                    "forbidden",
                );
            }
            _ => {
                assert!(viewer.0 < 300, "{p}: {viewer:?}");
                assert!(partner.0 < 300, "{p}: {partner:?}");
            }
        }
    }
    // B's connection survived everything A and others tried.
    let c = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/connections/{}", s.b.0, s.b_connection),
            &s.b.1,
            None,
        )
        .await;
    assert_eq!(c["status"], "live");
    // Lists are scoped.
    let ids = |v: &Value| {
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|t| t["id"].as_str().expect("id").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&h.ok(Method::GET, "/api/v1/tenants", &s.a.1, None).await),
        vec![s.a.0.clone()]
    );
    assert_eq!(
        ids(&h.ok(Method::GET, "/api/v1/tenants", &s.p1.1, None).await),
        vec![s.a.0.clone()]
    );
    assert_eq!(
        ids(&h.ok(Method::GET, "/api/v1/tenants", &s.p2.1, None).await),
        vec![s.b.0.clone()]
    );
    assert_eq!(
        ids(&h.ok(Method::GET, "/api/v1/tenants", OPERATOR, None).await).len(),
        2
    );
    assert_eq!(
        ids(&h
            .ok(
                Method::GET,
                &format!("/api/v1/tenants/{}/connections", s.a.0),
                &s.p1.1,
                None
            )
            .await),
        vec![s.a_connection.clone()]
    );
    // Partner-level endpoints.
    assert_error(
        &h.call(
            Method::POST,
            "/api/v1/partners",
            Some(&s.p1.1),
            Some(json!({"name": "x"})),
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &h.call(
            Method::POST,
            "/api/v1/partners",
            Some(&s.a.1),
            Some(json!({"name": "x"})),
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &h.call(
            Method::POST,
            "/api/v1/partners",
            None,
            Some(json!({"name": "x"})),
        )
        .await,
        401,
        "unauthorized",
    );
    assert_error(
        &h.call(
            Method::POST,
            "/api/v1/tenants",
            Some(&s.a.1),
            Some(json!({"name": "x"})),
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &h.call(
            Method::POST,
            "/api/v1/tenants",
            Some(&s.p1.1),
            Some(json!({"name": "x", "partner_id": s.p2.0})),
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &h.call(
            Method::POST,
            "/api/v1/endpoints",
            Some(&s.a.1),
            Some(json!({"connector": "meta-cloud"})),
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &h.call(
            Method::GET,
            &format!("/api/v1/partners/{}/report", s.p2.0),
            Some(&s.p1.1),
            None,
        )
        .await,
        404,
        "not_found",
    );
    assert_error(
        &h.call(
            Method::GET,
            &format!("/api/v1/partners/{}/report", s.p1.0),
            Some(&s.a.1),
            None,
        )
        .await,
        403,
        "forbidden",
    );
    let report = h
        .ok(
            Method::GET,
            &format!("/api/v1/partners/{}/report", s.p1.0),
            &s.p1.1,
            None,
        )
        .await;
    assert_eq!(report["tenants"].as_array().expect("tenants").len(), 1);
    assert_eq!(report["tenants"][0]["tenant_id"], s.a.0);
    assert_eq!(report["tenants"][0]["connections"]["live"], 1);
    h.ok(
        Method::GET,
        &format!("/api/v1/partners/{}/report", s.p1.0),
        OPERATOR,
        None,
    )
    .await;
    // A partner's endpoint is not usable by another partner's tenant.
    let p2_endpoint = h
        .ok(
            Method::POST,
            "/api/v1/endpoints",
            &s.p2.1,
            Some(json!({"connector": "meta-cloud", "secrets": {"app_secret": "s"}})),
        )
        .await;
    let got = h
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{}/connections", s.a.0),
            Some(&s.a.1),
            Some(connect_body(
                p2_endpoint["id"].as_str().expect("id"),
                "3003",
                "t",
            )),
        )
        .await;
    assert_error(&got, 422, "unknown_endpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_endpoint_checks_auth_role_and_tenant_on_both_backends() {
    let graph = Fake::start_with(graph_ok).await;
    auth_and_isolation(Host::start(Db::Sqlite, &graph.origin).await).await;
    if let Some(pg) = PgDb::create("api_isolation").await {
        auth_and_isolation(Host::start(Db::Postgres(pg), &graph.origin).await).await;
    }
}

async fn connect_lifecycle(h: Host, graph: &Fake) {
    let s = setup(&h).await;
    // The credential check reached the fake Graph API with the connection's own token.
    let checks: Vec<_> = graph
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/v26.0/1001?"))
        .collect();
    assert_eq!(checks.len(), 1, "one credential check for A's number");
    assert_eq!(checks[0].headers["authorization"], "Bearer token-a");
    let con = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/connections/{}", s.a.0, s.a_connection),
            &s.a.1,
            None,
        )
        .await;
    assert_eq!(con["status"], "live");
    assert_eq!(con["channel_address"], "1001");
    assert_eq!(con["account_id"], "102290129340398");
    assert_eq!(
        con["webhook_url"],
        format!("https://hooks.example.test/hooks/{}", s.endpoint)
    );
    assert!(!con.to_string().contains("token-a"));

    // A second live owner for the same number: 409.
    let third = id_key(
        &h.ok(
            Method::POST,
            "/api/v1/tenants",
            OPERATOR,
            Some(json!({"name": "Gamma"})),
        )
        .await,
    );
    let dup = h
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{}/connections", third.0),
            Some(&third.1),
            Some(connect_body(&s.endpoint, "1001", "token-c")),
        )
        .await;
    assert_error(&dup, 409, "number_already_connected");

    // Disconnect: history stays, ledger granted → revoked → shredded, the number is free again.
    let path = format!("/api/v1/tenants/{}/connections/{}", s.a.0, s.a_connection);
    let gone = h.ok(Method::DELETE, &path, &s.a_keys["admin"], None).await;
    assert_eq!(gone["status"], "disconnected");
    assert!(gone["disconnected_at"].as_i64().is_some());
    // Tenant B's number is on the same WABA: the app stays subscribed (the last number out
    // unsubscribes it: security::a_shared_waba_stays_subscribed_until_its_last_number_leaves).
    assert!(
        !graph
            .requests()
            .iter()
            .any(|r| r.method == "DELETE" && r.path.ends_with("/subscribed_apps")),
        "no unsubscribe while another number uses the WABA"
    );
    assert_eq!(
        gone["status_reason"],
        "the app stays subscribed to WhatsApp Business Account 102290129340398: another number uses it"
    );
    assert_eq!(
        h.ok(Method::GET, &path, &s.a.1, None).await["status"],
        "disconnected"
    );
    let ledger = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/consent", s.a.0),
            &s.a.1,
            None,
        )
        .await;
    let actions: Vec<_> = ledger["data"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["action"].as_str().expect("action").to_string())
        .collect();
    assert_eq!(actions, ["granted", "revoked", "shredded"]);
    let granted = &ledger["data"][0];
    assert_eq!(granted["document_version"], "2026-11");
    assert_eq!(granted["ip"], "127.0.0.1");
    assert_eq!(granted["scopes"], "[\"messaging\"]");
    assert!(
        granted["actor"]
            .as_str()
            .expect("actor")
            .contains("(owner)")
    );
    assert!(
        ledger["data"][2]["actor"]
            .as_str()
            .expect("actor")
            .contains("(admin)")
    );
    h.ok(
        Method::POST,
        &format!("/api/v1/tenants/{}/connections", third.0),
        &third.1,
        Some(connect_body(&s.endpoint, "1001", "token-c")),
    )
    .await;

    // Consent scopes without disconnecting; the export carries the verified chain.
    let granted = h
        .ok(
            Method::POST,
            &format!("/api/v1/tenants/{}/consent", s.a.0),
            &s.a.1,
            Some(json!({"action": "grant", "scopes": ["marketing"], "document_version": "mkt-1"})),
        )
        .await;
    assert_eq!(granted["active_scopes"], json!(["marketing"]));
    let revoked = h
        .ok(
            Method::POST,
            &format!("/api/v1/tenants/{}/consent", s.a.0),
            &s.a.1,
            Some(json!({"action": "revoke", "scopes": ["marketing"]})),
        )
        .await;
    assert_eq!(revoked["active_scopes"], json!([]));
    let export = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/consent/export", s.a.0),
            &s.a.1,
            None,
        )
        .await;
    assert_eq!(export["verified"], true);
    let rows = export["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 5);
    assert_eq!(export["head_hash"], rows[4]["hash"]);
    for w in rows.windows(2) {
        assert_eq!(w[1]["prev_hash"], w[0]["hash"]);
    }

    // Bad credentials never go live and store nothing.
    let refusing = Fake::start(401, r#"{"error":{"message":"Error validating access token: Session has expired.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"A"}}"#).await;
    let h2 = Host::start(Db::Sqlite, &refusing.origin).await;
    let s2 = (
        id_key(
            &h2.ok(
                Method::POST,
                "/api/v1/tenants",
                OPERATOR,
                Some(json!({"name": "Delta"})),
            )
            .await,
        ),
        h2.ok(
            Method::POST,
            "/api/v1/endpoints",
            OPERATOR,
            Some(json!({"connector": "meta-cloud", "secrets": {"app_secret": "x"}})),
        )
        .await,
    );
    let got = h2
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{}/connections", (s2.0).0),
            Some(&(s2.0).1),
            Some(connect_body(
                s2.1["id"].as_str().expect("id"),
                "4004",
                "expired-token",
            )),
        )
        .await;
    assert_error(&got, 422, "invalid_credentials");
    assert!(
        got.1["error"]["message"]
            .as_str()
            .expect("message")
            .contains("190"),
        "{}",
        got.1
    );
    let list = h2
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/connections", (s2.0).0),
            &(s2.0).1,
            None,
        )
        .await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connecting_proves_credentials_and_disconnecting_shreds_on_both_backends() {
    let graph = Fake::start_with(graph_ok).await;
    connect_lifecycle(Host::start(Db::Sqlite, &graph.origin).await, &graph).await;
    if let Some(pg) = PgDb::create("api_connect").await {
        let graph = Fake::start_with(graph_ok).await;
        connect_lifecycle(Host::start(Db::Postgres(pg), &graph.origin).await, &graph).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_paginate_and_errors_have_one_shape() {
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let mut made = Vec::new();
    for i in 0..7 {
        let t = h
            .ok(
                Method::POST,
                "/api/v1/tenants",
                OPERATOR,
                Some(json!({"name": format!("T{i}")})),
            )
            .await;
        made.push(t["id"].as_str().expect("id").to_string());
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/v1/tenants?limit=3&cursor={c}"),
            None => "/api/v1/tenants?limit=3".into(),
        };
        let page = h.ok(Method::GET, &q, OPERATOR, None).await;
        pages += 1;
        for t in page["data"].as_array().expect("data") {
            seen.push(t["id"].as_str().expect("id").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    // Every tenant exactly once, in id order (ids sort by creation millisecond).
    made.sort();
    assert_eq!((seen.clone(), pages), (made.clone(), 3));
    for bad in ["limit=0", "limit=201", "limit=x"] {
        assert_error(
            &h.call(
                Method::GET,
                &format!("/api/v1/tenants?{bad}"),
                Some(OPERATOR),
                None,
            )
            .await,
            400,
            "bad_request",
        );
    }
    // Bodies: malformed JSON 400, wrong shape 422, unknown fields 422, too large 413.
    let raw = |body: &'static str| {
        let c = reqwest::Client::new();
        let url = format!("{}/api/v1/partners", h.base);
        async move {
            let r = c
                .post(url)
                .bearer_auth(OPERATOR)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("send");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.expect("json"))
        }
    };
    assert_error(&raw("{not json").await, 400, "bad_request");
    assert_error(&raw(r#"{"name": 5}"#).await, 422, "invalid_body");
    assert_error(
        &raw(r#"{"name": "x", "extra": 1}"#).await,
        422,
        "invalid_body",
    );
    assert_error(&raw(r#"{"name": "   "}"#).await, 422, "invalid_name");
    // One byte over the limit: the server reads it all, so it answers 413 on an intact connection.
    let limit = switchyard::http::API_BODY_LIMIT;
    let big = json!({"name": "x".repeat(limit + 1 - r#"{"name":""}"#.len())});
    assert_eq!(big.to_string().len(), limit + 1);
    assert_error(
        &h.call(Method::POST, "/api/v1/partners", Some(OPERATOR), Some(big))
            .await,
        413,
        "payload_too_large",
    );
    assert_error(
        &h.call(Method::PATCH, "/api/v1/tenants", Some(OPERATOR), None)
            .await,
        405,
        "method_not_allowed",
    );
    assert_error(
        &h.call(Method::GET, "/api/v1/nothing-here", Some(OPERATOR), None)
            .await,
        404,
        "not_found",
    );
    let t = &made[0];
    let owner = h
        .ok(
            Method::POST,
            "/api/v1/tenants",
            OPERATOR,
            Some(json!({"name": "Owner test"})),
        )
        .await;
    let (tid, key) = id_key(&owner);
    let _ = t;
    assert_error(
        &h.call(
            Method::POST,
            &format!("/api/v1/tenants/{tid}/connections"),
            Some(&key),
            Some(
                json!({"connector": "nope", "settings": {}, "consent": {"document_version": "1"}}),
            ),
        )
        .await,
        422,
        "unknown_connector",
    );
    assert_error(
        &h.call(Method::POST, &format!("/api/v1/tenants/{tid}/connections"), Some(&key), Some(json!({"connector": "meta-cloud", "settings": {"phone_number_id": "1"}, "consent": {"document_version": "1"}}))).await,
        422,
        "invalid_settings",
    );
    assert_error(
        &h.call(
            Method::PUT,
            &format!("/api/v1/tenants/{tid}/policy"),
            Some(&key),
            Some(json!({"plugin": "meta-cloud"})),
        )
        .await,
        422,
        "unknown_policy",
    );
    let p = h
        .ok(
            Method::PUT,
            &format!("/api/v1/tenants/{tid}/policy"),
            &key,
            Some(json!({"plugin": "echo", "config": {"greeting": "hi"}})),
        )
        .await;
    assert_eq!(p["config"]["greeting"], "hi");
    // A policy's config reaches every decision: past 64 KiB it is refused (the body itself is
    // well under the API's 1 MiB limit), and the stored policy is unchanged.
    assert_error(
        &h.call(
            Method::PUT,
            &format!("/api/v1/tenants/{tid}/policy"),
            Some(&key),
            Some(json!({"plugin": "echo", "config": {"greeting": "x".repeat(64 << 10)}})),
        )
        .await,
        422,
        "policy_config_too_large",
    );
    let p = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{tid}/policy"),
            &key,
            None,
        )
        .await;
    assert_eq!(p["config"]["greeting"], "hi");
    // An admin may not mint owner keys; an owner may.
    let admin = h
        .ok(
            Method::POST,
            &format!("/api/v1/tenants/{tid}/keys"),
            &key,
            Some(json!({"role": "admin"})),
        )
        .await;
    let admin = admin["api_key"].as_str().expect("key");
    assert_error(
        &h.call(
            Method::POST,
            &format!("/api/v1/tenants/{tid}/keys"),
            Some(admin),
            Some(json!({"role": "owner"})),
        )
        .await,
        403,
        "forbidden",
    );
    h.ok(
        Method::POST,
        &format!("/api/v1/tenants/{tid}/keys"),
        admin,
        Some(json!({"role": "agent"})),
    )
    .await;
    assert_error(
        &h.call(
            Method::POST,
            &format!("/api/v1/tenants/{tid}/keys"),
            Some(&key),
            Some(json!({"role": "root"})),
        )
        .await,
        422,
        "invalid_body",
    );
}
