//! API keys and tenant suspension on SQLite and PostgreSQL (issue 13, item 11): keys are listed
//! (never the key or its hash), created with an expiry, revoked, and refused afterwards with a
//! precise 401 code; a partner key's rotation keeps the old key for the overlap only; a
//! suspended tenant's own keys get 403 `tenant_suspended`, its webhooks are acknowledged and
//! stored, and its replies are sent only after it is reinstated.

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Db, Host, OPERATOR, Setup, assert_error, setup};
use crate::fake::Fake;
use crate::ingress::post_meta_message;
use crate::pg::PgDb;

/// Direct access to the host's database, for what a test cannot wait for (an expiry reached).
pub(crate) enum Raw {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

impl Raw {
    pub(crate) async fn open(h: &Host, pg_url: Option<&str>) -> Raw {
        match pg_url {
            Some(url) => Raw::Pg(sqlx::PgPool::connect(url).await.expect("pg")),
            None => Raw::Sqlite(
                sqlx::SqlitePool::connect(&format!(
                    "sqlite://{}",
                    h.data.path().join("switchyard.db").display()
                ))
                .await
                .expect("sqlite"),
            ),
        }
    }

    pub(crate) async fn exec(&self, sql: String) {
        match self {
            Raw::Sqlite(p) => sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(p)
                .await
                .map(drop),
            Raw::Pg(p) => sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(p)
                .await
                .map(drop),
        }
        .expect("exec");
    }

    async fn count(&self, sql: String) -> i64 {
        match self {
            Raw::Sqlite(p) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(p)
                    .await
            }
            Raw::Pg(p) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(p)
                    .await
            }
        }
        .expect("count")
    }

    /// Move a key's expiry into the past (what an hour of waiting would do).
    async fn expire(&self, key_id: &str) {
        self.exec(format!(
            "UPDATE api_keys SET expires_at = 1 WHERE id = '{key_id}'"
        ))
        .await;
    }
}

fn id_of(token: &str) -> &str {
    token.split_once('.').expect("key_….secret").0
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    i64::try_from(since.as_millis()).expect("ms")
}

async fn keys_lifecycle(h: Host, pg_url: Option<String>) {
    let s = setup(&h).await;
    let raw = Raw::open(&h, pg_url.as_deref()).await;
    let tenant_keys = format!("/api/v1/tenants/{}/keys", s.a.0);
    let me = format!("/api/v1/tenants/{}", s.a.0);

    // Listed by the owner: every key with its role, never a key or its hash.
    let list = h.ok(Method::GET, &tenant_keys, &s.a.1, None).await;
    let rows = list["data"].as_array().expect("data");
    assert_eq!(rows.len(), 4, "{list}");
    for role in ["owner", "admin", "agent", "viewer"] {
        let token = &s.a_keys[role];
        let row = rows
            .iter()
            .find(|r| r["id"] == id_of(token))
            .unwrap_or_else(|| panic!("{role} key not listed: {list}"));
        assert_eq!(row["role"], role);
        assert!(row["created_at"].as_i64().is_some());
        assert!(row["revoked_at"].is_null() && row["expires_at"].is_null());
        let secret = token.split_once('.').expect("secret").1;
        assert!(!list.to_string().contains(secret), "a key's secret listed");
    }
    for field in ["api_key", "secret_hash", "token"] {
        assert!(
            rows.iter().all(|r| r.get(field).is_none()),
            "{field} listed"
        );
    }

    // An expiring key works until it expires, then answers key_expired (to its holder only).
    let expiry = now_ms() + 3_600_000;
    let created = h
        .ok(
            Method::POST,
            &tenant_keys,
            &s.a_keys["admin"],
            Some(json!({"role": "viewer", "label": "Dashboard", "expires_at": expiry})),
        )
        .await;
    assert_eq!(created["expires_at"], expiry);
    let short = created["api_key"].as_str().expect("api_key").to_string();
    h.ok(Method::GET, &me, &short, None).await;
    let listed = h.ok(Method::GET, &tenant_keys, &s.a.1, None).await;
    let row = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|r| r["id"] == id_of(&short))
        .cloned()
        .expect("listed");
    assert_eq!(
        (row["label"].as_str(), row["expires_at"].as_i64()),
        (Some("Dashboard"), Some(expiry))
    );
    raw.expire(id_of(&short)).await;
    assert_error(
        &h.call(Method::GET, &me, Some(&short), None).await,
        401,
        "key_expired",
    );
    // A wrong secret for that key id learns nothing about it.
    assert_error(
        &h.call(
            Method::GET,
            &me,
            Some(&format!("{}.wrong", id_of(&short))),
            None,
        )
        .await,
        401,
        "unauthorized",
    );
    for bad in [json!(1), json!(now_ms() - 1000), json!(i64::MAX)] {
        assert_error(
            &h.call(
                Method::POST,
                &tenant_keys,
                Some(&s.a.1),
                Some(json!({"role": "agent", "expires_at": bad})),
            )
            .await,
            422,
            "invalid_expiry",
        );
    }

    // Revoked by an admin: key_revoked from then on; revoking again changes nothing.
    let agent = &s.a_keys["agent"];
    let revoke = format!("{tenant_keys}/{}", id_of(agent));
    let revoked = h
        .ok(Method::DELETE, &revoke, &s.a_keys["admin"], None)
        .await;
    let at = revoked["revoked_at"].as_i64().expect("revoked_at");
    assert_error(
        &h.call(Method::GET, &me, Some(agent), None).await,
        401,
        "key_revoked",
    );
    let again = h.ok(Method::DELETE, &revoke, &s.a.1, None).await;
    assert_eq!(again["revoked_at"], at);
    // Only an owner (among the tenant's users) touches owner keys.
    assert_error(
        &h.call(
            Method::DELETE,
            &format!("{tenant_keys}/{}", id_of(&s.a.1)),
            Some(&s.a_keys["admin"]),
            None,
        )
        .await,
        403,
        "forbidden",
    );
    // The partner and the operator manage the tenant's keys; another partner or tenant does
    // not see them.
    h.ok(
        Method::DELETE,
        &format!("{tenant_keys}/{}", id_of(&s.a_keys["viewer"])),
        &s.p1.1,
        None,
    )
    .await;
    assert_error(
        &h.call(Method::GET, &me, Some(&s.a_keys["viewer"]), None)
            .await,
        401,
        "key_revoked",
    );
    let by_operator = h.ok(Method::GET, &tenant_keys, OPERATOR, None).await;
    assert_eq!(by_operator["data"].as_array().expect("data").len(), 5);
    for other in [&s.p2.1, &s.b.1] {
        assert_error(
            &h.call(Method::GET, &tenant_keys, Some(other), None).await,
            404,
            "not_found",
        );
    }
    assert_error(
        &h.call(
            Method::DELETE,
            &format!("{tenant_keys}/{}", id_of(&s.b.1)),
            Some(&s.a.1),
            None,
        )
        .await,
        404,
        "not_found",
    );
    h.ok(
        Method::GET,
        &format!("/api/v1/tenants/{}", s.b.0),
        &s.b.1,
        None,
    )
    .await;

    partner_keys(&h, &s, &raw).await;
}

async fn partner_keys(h: &Host, s: &Setup, raw: &Raw) {
    let keys = format!("/api/v1/partners/{}/keys", s.p1.0);
    let list = h.ok(Method::GET, &keys, &s.p1.1, None).await;
    let rows = list["data"].as_array().expect("data");
    assert_eq!(rows.len(), 1, "{list}");
    assert_eq!(rows[0]["id"], id_of(&s.p1.1));
    assert_eq!(rows[0]["kind"], "partner");
    assert!(
        !list
            .to_string()
            .contains(s.p1.1.split_once('.').expect("s").1)
    );
    // Only the partner itself and the operator.
    assert_error(
        &h.call(Method::GET, &keys, Some(&s.p2.1), None).await,
        404,
        "not_found",
    );
    assert_error(
        &h.call(Method::GET, &keys, Some(&s.a.1), None).await,
        403,
        "forbidden",
    );
    h.ok(Method::GET, &keys, OPERATOR, None).await;

    // Rotation with an overlap: both keys work until the overlap ends, then only the new one.
    let rotate = format!("{keys}/{}/rotate", id_of(&s.p1.1));
    assert_error(
        &h.call(
            Method::POST,
            &rotate,
            Some(&s.p1.1),
            Some(json!({"overlap_seconds": 31 * 24 * 3600})),
        )
        .await,
        422,
        "invalid_overlap",
    );
    let before = now_ms();
    let (status, rotated) = h
        .call(
            Method::POST,
            &rotate,
            Some(&s.p1.1),
            Some(json!({"overlap_seconds": 3600})),
        )
        .await;
    assert_eq!(status, 201, "{rotated}");
    let new = rotated["api_key"].as_str().expect("api_key").to_string();
    assert_ne!(id_of(&new), id_of(&s.p1.1));
    assert_eq!(rotated["replaced"]["id"], id_of(&s.p1.1));
    let until = rotated["replaced"]["expires_at"].as_i64().expect("overlap");
    assert!(
        until >= before + 3_600_000 && until <= now_ms() + 3_600_000,
        "{rotated}"
    );
    assert_eq!(rotated["replaced"]["label"], "initial");
    for key in [&s.p1.1, &new] {
        h.ok(Method::GET, "/api/v1/tenants", key, None).await;
    }
    raw.expire(id_of(&s.p1.1)).await;
    assert_error(
        &h.call(Method::GET, "/api/v1/tenants", Some(&s.p1.1), None)
            .await,
        401,
        "key_expired",
    );
    h.ok(Method::GET, "/api/v1/tenants", &new, None).await;
    // An expired key cannot be rotated again.
    assert_error(
        &h.call(Method::POST, &rotate, Some(&new), Some(json!({})))
            .await,
        409,
        "key_not_active",
    );

    // A second key, made by the operator; rotated without overlap: revoked at once.
    let extra = h
        .ok(
            Method::POST,
            &keys,
            OPERATOR,
            Some(json!({"label": "deploy"})),
        )
        .await;
    let extra = extra["api_key"].as_str().expect("api_key").to_string();
    let rotated = h
        .ok(
            Method::POST,
            &format!("{keys}/{}/rotate", id_of(&extra)),
            &new,
            Some(json!({})),
        )
        .await;
    assert!(rotated["replaced"]["revoked_at"].is_i64(), "{rotated}");
    assert_error(
        &h.call(Method::GET, "/api/v1/tenants", Some(&extra), None)
            .await,
        401,
        "key_revoked",
    );
    // Revoked by the partner itself.
    let third = rotated["api_key"].as_str().expect("api_key").to_string();
    h.ok(
        Method::DELETE,
        &format!("{keys}/{}", id_of(&third)),
        &new,
        None,
    )
    .await;
    assert_error(
        &h.call(Method::GET, "/api/v1/tenants", Some(&third), None)
            .await,
        401,
        "key_revoked",
    );
    assert_error(
        &h.call(
            Method::DELETE,
            &format!("{keys}/{}", id_of(&s.p2.1)),
            Some(&new),
            None,
        )
        .await,
        404,
        "not_found",
    );
    let list = h.ok(Method::GET, &keys, &new, None).await;
    assert_eq!(list["data"].as_array().expect("data").len(), 4, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_are_listed_expired_revoked_and_rotated_on_both_backends() {
    let graph = Fake::start_with(crate::api::graph_ok).await;
    keys_lifecycle(Host::start(Db::Sqlite, &graph.origin).await, None).await;
    if let Some(pg) = PgDb::create("accounts_keys").await {
        let url = pg.app_url();
        keys_lifecycle(
            Host::start(Db::Postgres(pg), &graph.origin).await,
            Some(url),
        )
        .await;
    }
}

/// A Graph API that accepts every send with a fresh id.
async fn graph() -> Fake {
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Fake::start_with(move |r| {
        if !(r.method == "POST" && r.path.ends_with("/messages")) {
            return crate::api::graph_ok(r);
        }
        let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let id = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        (
            200,
            json!({"messaging_product": "whatsapp",
                   "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                   "messages": [{"id": format!("wamid.SENT{id}")}]})
            .to_string(),
        )
    })
    .await
}

/// The text bodies the fake Graph was asked to send from `number`.
pub(crate) fn sent_from(graph: &Fake, number: &str) -> Vec<String> {
    graph
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(&format!("/{number}/messages")))
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .map(|b| b["text"]["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Wait (bounded in count, not a speed claim) until `done` holds.
pub(crate) async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..1200 {
        if done().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting until {what}");
}

async fn suspension(h: Host, graph: &Fake, pg_url: Option<String>) {
    let s = setup(&h).await;
    let raw = Raw::open(&h, pg_url.as_deref()).await;
    for (t, key) in [&s.a, &s.b] {
        h.ok(
            Method::PUT,
            &format!("/api/v1/tenants/{t}/policy"),
            key,
            Some(json!({"plugin": "echo"})),
        )
        .await;
    }
    let me = format!("/api/v1/tenants/{}", s.a.0);

    // Suspended by its partner (another partner cannot; the tenant itself cannot undo it).
    assert_error(
        &h.call(Method::POST, &format!("{me}/suspend"), Some(&s.p2.1), None)
            .await,
        404,
        "not_found",
    );
    let t = h
        .ok(Method::POST, &format!("{me}/suspend"), &s.p1.1, None)
        .await;
    assert_eq!(t["status"], "suspended");
    for key in [&s.a.1, &s.a_keys["admin"], &s.a_keys["viewer"]] {
        assert_error(
            &h.call(Method::GET, &me, Some(key), None).await,
            403,
            "tenant_suspended",
        );
        assert_error(
            &h.call(Method::GET, &format!("{me}/conversations"), Some(key), None)
                .await,
            403,
            "tenant_suspended",
        );
    }
    assert_error(
        &h.call(Method::POST, &format!("{me}/reinstate"), Some(&s.a.1), None)
            .await,
        403,
        "tenant_suspended",
    );
    assert_error(
        &h.call(Method::GET, "/api/v1/tenants", Some(&s.a.1), None)
            .await,
        403,
        "tenant_suspended",
    );
    // Its partner and the operator still read its status.
    for key in [s.p1.1.as_str(), OPERATOR] {
        assert_eq!(
            h.ok(Method::GET, &me, key, None).await["status"],
            "suspended"
        );
    }

    // Its webhook is acknowledged and stored; its reply waits. Another tenant's goes out.
    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);
    for (number, wamid, text) in [
        ("1001", "wamid.SUSPENDED1", "hello while suspended"),
        ("2002", "wamid.OTHER1", "hello from another tenant"),
    ] {
        let r = post_meta_message(&client, &hook, number, wamid, text).await;
        assert_eq!(r.status(), 200, "acknowledged");
    }
    until("the other tenant's reply is sent", async || {
        !sent_from(graph, "2002").is_empty()
    })
    .await;
    let reason = format!("tenant {} is suspended", s.a.0);
    until("the suspended tenant's decision is deferred", async || {
        raw.count(format!(
            "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND last_error = '{reason}'"
        ))
        .await
            >= 1
    })
    .await;
    // The deferred decision was queued with the stored message, in one transaction.
    assert!(
        sent_from(graph, "1001").is_empty(),
        "nothing sent while suspended"
    );
    assert_eq!(sent_from(graph, "2002"), ["hello from another tenant"]);

    // Reinstated by the operator: the key works again and the reply goes out, once.
    let t = h
        .ok(Method::POST, &format!("{me}/reinstate"), OPERATOR, None)
        .await;
    assert_eq!(t["status"], "active");
    h.ok(Method::GET, &me, &s.a.1, None).await;
    until("the suspended tenant's reply is sent", async || {
        !sent_from(graph, "1001").is_empty()
    })
    .await;
    until("no job of it waits", async || {
        raw.count(format!(
            "SELECT COUNT(*) FROM jobs WHERE state <> 'done' AND last_error = '{reason}'"
        ))
        .await
            == 0
    })
    .await;
    assert_eq!(sent_from(graph, "1001"), ["hello while suspended"]);
    let convs = h
        .ok(Method::GET, &format!("{me}/conversations"), &s.a.1, None)
        .await;
    let convs = convs["data"].as_array().expect("data");
    assert_eq!(convs.len(), 1, "{convs:?}");
    let msgs = h
        .ok(
            Method::GET,
            &format!(
                "{me}/conversations/{}/messages",
                convs[0]["id"].as_str().expect("id")
            ),
            &s.a.1,
            None,
        )
        .await;
    let bodies: Vec<_> = msgs["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| {
            (
                m["direction"].as_str().unwrap_or_default(),
                m["body"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        bodies,
        [
            ("out", "hello while suspended"),
            ("in", "hello while suspended")
        ],
        "{msgs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_suspended_tenant_is_refused_and_its_replies_wait_for_reinstatement_on_both_backends() {
    let g = graph().await;
    suspension(Host::start(Db::Sqlite, &g.origin).await, &g, None).await;
    if let Some(pg) = PgDb::create("accounts_suspension").await {
        let g = graph().await;
        let url = pg.app_url();
        suspension(
            Host::start(Db::Postgres(pg), &g.origin).await,
            &g,
            Some(url),
        )
        .await;
    }
}
