//! A tenant's data rights (issue 16, item 6) against the real host on both backends: the owner's
//! JSON export, one contact's erasure, and the deletion of the account — after which no row of
//! the tenant's contacts, messages, media or receipts is in the database (on SQLite: not in the
//! files' bytes either), while the consent ledger still verifies and the counters stay.

use reqwest::Method;
use serde_json::{Value, json};

use crate::accounts::{sent_from, until};
use crate::api::{Db, Host, OPERATOR, assert_error, setup};
use crate::fake::Fake;
use crate::ingress::{graph_that_sends, now_s, sign, use_echo};

/// What only the erased tenant's contacts said or were called: none of it may outlive them.
const CANARIES: [&str; 4] = [
    "canary-lisbon-7731",
    "canary-porto-4420",
    "Canary Person",
    "15550009999",
];

/// A Meta webhook: one text from `from` (named `name`) to the number 1001.
fn message(from: &str, name: &str, wamid: &str, text: &str) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "1001"},
            "contacts": [{"profile": {"name": name}, "wa_id": from}],
            "messages": [{"from": from, "id": wamid, "timestamp": now_s().to_string(), "type": "text", "text": {"body": text}}]
        }}]}]
    })
    .to_string()
    .into_bytes()
}

async fn account(h: Host, graph: &Fake, superuser: Option<String>) {
    let s = setup(&h).await;
    let t = s.a.0.clone();
    use_echo(&h, &s.a).await;
    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);
    for (from, name, wamid, text) in [
        (
            "16505551234",
            "Sheena Nelson",
            "wamid.AC1",
            "hello from sheena",
        ),
        (
            "15550009999",
            "Canary Person",
            "wamid.AC2",
            "canary-lisbon-7731",
        ),
        (
            "15550009999",
            "Canary Person",
            "wamid.AC3",
            "canary-porto-4420",
        ),
    ] {
        let body = message(from, name, wamid, text);
        let r = client
            .post(&hook)
            .header("x-hub-signature-256", sign("app-secret-1", &body))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("webhook");
        assert_eq!(r.status(), 200);
    }
    until("three replies", async || {
        sent_from(graph, "1001").len() == 3
    })
    .await;

    // The export: the owner's only, complete, with the ledger verified.
    assert_error(
        &h.call(
            Method::GET,
            &format!("/api/v1/tenants/{t}/export"),
            Some(&s.a_keys["admin"]),
            None,
        )
        .await,
        403,
        "forbidden",
    );
    let got = client
        .get(format!("{}/api/v1/tenants/{t}/export", h.base))
        .bearer_auth(&s.a.1)
        .send()
        .await
        .expect("export");
    assert_eq!(got.status(), 200);
    assert!(
        got.headers()["content-disposition"]
            .to_str()
            .is_ok_and(|d| d.starts_with("attachment;")),
        "{:?}",
        got.headers()
    );
    let archive: Value = got.json().await.expect("a JSON document");
    assert_eq!(archive["complete"], true);
    assert_eq!(archive["ledger_verified"], true);
    assert_eq!(archive["tenant"]["id"], json!(t));
    assert_eq!(archive["contacts"].as_array().expect("contacts").len(), 2);
    assert_eq!(
        archive["conversations"]
            .as_array()
            .expect("conversations")
            .len(),
        2
    );
    assert_eq!(archive["messages"].as_array().expect("messages").len(), 6);
    assert!(archive["media"].is_array());
    let ledger = archive["consent_ledger"].as_array().expect("ledger");
    assert!(
        ledger.iter().any(|r| r["action"] == "granted"),
        "{ledger:?}"
    );
    let text = archive.to_string();
    for needle in ["canary-lisbon-7731", "Canary Person", "hello from sheena"] {
        assert!(text.contains(needle), "{needle} missing from the export");
    }
    for secret in ["token-a", "app-secret-1"] {
        assert!(!text.contains(secret), "{secret} in the export");
    }

    // The control: before any erasure, the files do hold what the contacts said.
    if superuser.is_none() {
        let held = ["switchyard.db", "switchyard.db-wal"].iter().any(|name| {
            let bytes = std::fs::read(h.data.path().join(name)).unwrap_or_default();
            memchr::memmem::find(&bytes, b"canary-lisbon-7731").is_some()
        });
        assert!(held, "the canary was never in the database files");
    }

    // One contact's erasure: their conversation and messages go, the other contact stays.
    let convs = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{t}/conversations"),
            &s.a.1,
            None,
        )
        .await;
    let canary = convs["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|c| c["contact_phone"] == "15550009999")
        .expect("the canary's conversation")["contact_id"]
        .as_str()
        .expect("contact")
        .to_string();
    assert_error(
        &h.call(
            Method::DELETE,
            &format!("/api/v1/tenants/{t}/contacts/{canary}"),
            Some(&s.a_keys["agent"]),
            None,
        )
        .await,
        403,
        "forbidden",
    );
    let erased = h
        .ok(
            Method::DELETE,
            &format!("/api/v1/tenants/{t}/contacts/{canary}"),
            &s.a_keys["admin"],
            None,
        )
        .await;
    assert_eq!(erased["erased"]["contacts"], 1);
    assert_eq!(erased["erased"]["conversations"], 1);
    assert_eq!(erased["erased"]["messages"], 4);
    assert_eq!(erased["ledger_verified"], true);
    assert!(
        h.conversation_with(&s.a, "contact_phone", "15550009999")
            .await
            .is_none()
    );
    assert!(
        h.conversation_with(&s.a, "contact_phone", "16505551234")
            .await
            .is_some()
    );
    assert_error(
        &h.call(
            Method::DELETE,
            &format!("/api/v1/tenants/{t}/contacts/{canary}"),
            Some(&s.a.1),
            None,
        )
        .await,
        404,
        "not_found",
    );

    // Deleting the account: owner only, confirmed with the tenant's name.
    let delete = async |key: &str, confirm: &str| {
        h.call(
            Method::DELETE,
            &format!("/api/v1/tenants/{t}"),
            Some(key),
            Some(json!({"confirm": confirm})),
        )
        .await
    };
    assert_error(&delete(&s.a_keys["admin"], "Alpha").await, 403, "forbidden");
    assert_error(&delete(&s.p1.1, "Alpha").await, 403, "forbidden");
    assert_error(&delete(&s.a.1, "alpha").await, 422, "confirmation_mismatch");
    let done = delete(&s.a.1, "Alpha").await;
    assert_eq!(done.0, 200, "{}", done.1);
    assert_eq!(done.1["ledger_verified"], true);
    assert_eq!(done.1["erased"]["contacts"], 1);
    assert_eq!(done.1["erased"]["messages"], 2);

    // Gone for its keys and its partner; the operator sees the minimal record.
    assert_error(
        &h.call(
            Method::GET,
            &format!("/api/v1/tenants/{t}"),
            Some(&s.a.1),
            None,
        )
        .await,
        401,
        "unauthorized",
    );
    assert_error(
        &h.call(
            Method::GET,
            &format!("/api/v1/tenants/{t}"),
            Some(&s.p1.1),
            None,
        )
        .await,
        404,
        "not_found",
    );
    let record = h
        .ok(Method::GET, &format!("/api/v1/tenants/{t}"), OPERATOR, None)
        .await;
    assert!(record["deleted_at"].is_i64(), "{record}");
    let conns = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{t}/connections"),
            OPERATOR,
            None,
        )
        .await;
    assert!(
        conns["data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|c| c["status"] == "disconnected"),
        "{conns}"
    );
    // The partner's aggregate counters stay.
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
        .find(|l| l["tenant_id"] == json!(t))
        .expect("the deleted tenant's line")
        .clone();
    assert_eq!(line["messages_in"], 3, "{line}");
    // Its number, reconnected by another tenant later, starts clean: B still works.
    let b = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/connections", s.b.0),
            &s.b.1,
            None,
        )
        .await;
    assert_eq!(b["data"][0]["status"], "live");

    // The ledger still verifies, and says what happened, in order.
    let scope = {
        let store = match &superuser {
            None => switchyard::store::Store::open(&format!(
                "sqlite://{}",
                h.data.path().join("switchyard.db").display()
            ))
            .await
            .expect("open"),
            Some(url) => switchyard::store::Store::open(url).await.expect("open"),
        };
        let scope = switchyard::tenancy::auth::one_tenant(&store, &t)
            .await
            .expect("the operator reaches the deleted tenant");
        let (rows, broken) = switchyard::consent::verify(&store, &scope)
            .await
            .expect("verify");
        assert!(broken.is_none(), "the chain breaks at {broken:?}");
        let actions: Vec<String> = switchyard::consent::read_all(&store, &scope)
            .await
            .expect("ledger")
            .into_iter()
            .map(|r| r.action)
            .collect();
        assert_eq!(actions.len(), rows);
        let tail: Vec<&str> = actions
            .iter()
            .rev()
            .take(5)
            .rev()
            .map(String::as_str)
            .collect();
        assert_eq!(
            tail,
            [
                "data-exported",
                "contact-erased",
                "revoked",
                "shredded",
                "account-deleted"
            ]
        );
        scope
    };
    let _ = scope;

    // Nothing of the tenant's contacts, messages or receipts is left in the database.
    match superuser {
        None => {
            for name in ["switchyard.db", "switchyard.db-wal"] {
                let bytes = std::fs::read(h.data.path().join(name)).unwrap_or_default();
                for c in CANARIES
                    .iter()
                    .chain(["hello from sheena", "Sheena Nelson"].iter())
                {
                    assert!(
                        memchr::memmem::find(&bytes, c.as_bytes()).is_none(),
                        "{c:?} is still in {name}"
                    );
                }
            }
        }
        Some(url) => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await
                .expect("superuser");
            for table in ["contacts", "conversations", "messages", "media", "receipts"] {
                let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM {table} WHERE tenant_id = $1"
                )))
                .bind(&t)
                .fetch_one(&pool)
                .await
                .expect("count");
                assert_eq!(n, 0, "{table} rows of the deleted tenant");
            }
            for c in CANARIES {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM receipts WHERE position($1::bytea in COALESCE(body, ''::bytea)) > 0",
                )
                .bind(c.as_bytes().to_vec())
                .fetch_one(&pool)
                .await
                .expect("count");
                assert_eq!(n, 0, "{c} in a receipt body");
            }
            pool.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_erasure_and_account_deletion_on_both_backends() {
    let graph = graph_that_sends().await;
    account(Host::start(Db::Sqlite, &graph.origin).await, &graph, None).await;
    if let Some(pg) = crate::pg::PgDb::create("account").await {
        let graph = graph_that_sends().await;
        let superuser = pg.superuser_url();
        account(
            Host::start(Db::Postgres(pg), &graph.origin).await,
            &graph,
            Some(superuser),
        )
        .await;
    }
}
