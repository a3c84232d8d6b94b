//! Store conformance: the same tenancy, vault and ledger tests against SQLite and PostgreSQL.
//! On PostgreSQL they run as an app role that owns nothing and has no BYPASSRLS, so row-level
//! security is what they test.

use std::sync::Arc;

use switchyard::consent::{self, Action, Entry, Origin};
use switchyard::store::{
    Backend, Holder, Mode, NewConnection, NewMessage, Slot, Store, StoreError, TENANT_TABLES,
};
use switchyard::tenancy::{Principal, Scope, TenantScope, auth};
use switchyard::vault::crypto::MasterKeys;
use switchyard::vault::{Secret, Vault};

use crate::pg::PgDb;

const KEY_V1: &str = "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const KEY_V2: &str = "2:HxwdHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA=";

/// A database under test: the app store and how to reach it behind the app's back.
pub struct Db {
    pub store: Store,
    pub backend: Backend,
    /// SQLite file, for reading its bytes.
    pub sqlite_path: Option<std::path::PathBuf>,
    /// Owner URL (Postgres) for tampering as the owner.
    pub owner_url: Option<String>,
    /// App role URL (Postgres) for SQL that skips the store.
    pub app_url: Option<String>,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<PgDb>,
}

pub async fn sqlite(pool: u32) -> Db {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.db");
    let store = Store::open_with(&format!("sqlite://{}?mode=rwc", path.display()), pool)
        .await
        .expect("open sqlite");
    store.migrate().await.expect("migrate");
    Db {
        store,
        backend: Backend::Sqlite,
        sqlite_path: Some(path),
        owner_url: None,
        app_url: None,
        _dir: Some(dir),
        _pg: None,
    }
}

pub async fn postgres(test: &str, pool: u32) -> Option<Db> {
    let pg = PgDb::create(test).await?;
    switchyard::migrate_postgres(&pg.owner_url(), &pg.app_url())
        .await
        .expect("migrate as owner");
    let store = Store::open_with(&pg.app_url(), pool)
        .await
        .expect("open app role");
    Some(Db {
        store,
        backend: Backend::Postgres,
        sqlite_path: None,
        owner_url: Some(pg.owner_url()),
        app_url: Some(pg.app_url()),
        _dir: None,
        _pg: Some(pg),
    })
}

/// Run `f` on SQLite and, when it is there, PostgreSQL.
macro_rules! both {
    ($name:ident, $pool:expr, $f:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            $f(sqlite($pool).await).await;
            if let Some(db) = postgres(stringify!($name), $pool).await {
                $f(db).await;
            }
        }
    };
}

fn partner(id: &str) -> Principal {
    Principal::Partner {
        partner_id: id.into(),
        by: switchyard::tenancy::Credential::Key("key_test".into()),
        role: switchyard::tenancy::PartnerRole::Owner,
    }
}

/// Run `sql` as the app would, in `tenant`'s scope, but without the store's own filters.
async fn raw_execute(db: &Db, tenant: &TenantScope, sql: &str) -> Result<u64, sqlx::Error> {
    use sqlx::Connection as _;
    match db.backend {
        Backend::Sqlite => {
            let path = db.sqlite_path.as_ref().expect("path");
            let mut c =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
            Ok(sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut c)
                .await?
                .rows_affected())
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(db.app_url.as_deref().expect("app")).await?;
            let mut tx = c.begin().await?;
            sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
                .bind(tenant.id())
                .execute(&mut *tx)
                .await?;
            let n = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok(n)
        }
    }
}

fn vault(current: &str, previous: &str) -> Vault {
    Vault::new(MasterKeys::parse(current, previous).expect("keys"))
}

/// Two partners, a tenant each, and a tenant without partner; all of one tenant's rows filled.
pub struct World {
    pub a: TenantScope,
    pub b: TenantScope,
    pub c: TenantScope,
    pub endpoint: String,
}

pub async fn tenant_with_rows(
    store: &Store,
    v: &Vault,
    partner: Option<&str>,
    endpoint: &str,
    n: u32,
) -> TenantScope {
    let id = switchyard::tenancy::ids::new_id("ten");
    let mut tx = store
        .begin(Scope::Operator, Mode::Write)
        .await
        .expect("begin");
    tx.insert_tenant(&id, partner, &format!("Tenant {n}"))
        .await
        .expect("tenant");
    tx.commit().await.expect("commit");
    let scope = auth::access(store, &Principal::Operator, &id)
        .await
        .expect("access")
        .scope;
    let mut tx = store
        .begin(Scope::Tenant(scope.clone()), Mode::Write)
        .await
        .expect("begin");
    let con = switchyard::tenancy::ids::new_id("con");
    let address = format!("10{n}");
    tx.insert_connection(&NewConnection {
        id: &con,
        connector: "meta-cloud",
        endpoint_id: endpoint,
        channel_address: &address,
        account_id: Some("waba"),
        display_name: None,
        settings: "{}",
        status: "live",
        status_reason: None,
        token_expires_at: None,
    })
    .await
    .expect("connection");
    tx.insert_route(&switchyard::store::NewRoute {
        endpoint_id: endpoint,
        connector: "meta-cloud",
        channel_address: &address,
        account_id: Some("waba"),
        connection_id: &con,
    })
    .await
    .expect("route");
    v.seal_connection(
        &mut tx,
        &con,
        &[("access_token".into(), Secret::new(format!("token-{n}")))],
        None,
    )
    .await
    .expect("seal");
    let contact = tx
        .upsert_contact(&con, Some("15550001"), None, Some("Ann"))
        .await
        .expect("contact");
    let conv = tx
        .upsert_conversation(&con, &contact)
        .await
        .expect("conversation");
    let msg = tx
        .insert_message(&NewMessage {
            conversation_id: &conv,
            connection_id: &con,
            direction: "in",
            provider_message_id: Some("wamid.1"),
            kind: "image",
            body: Some("hi"),
            status: "received",
            idempotency_key: None,
            reply_to: None,
            content: None,
            sent_at: None,
            author: None,
            referral: None,
        })
        .await
        .expect("message");
    // A reply the provider priced (its status carried Meta's `pricing`).
    tx.insert_message(&NewMessage {
        conversation_id: &conv,
        connection_id: &con,
        direction: "out",
        provider_message_id: Some("wamid.priced"),
        kind: "text",
        body: Some("hello"),
        status: "sent",
        idempotency_key: None,
        reply_to: None,
        content: None,
        sent_at: None,
        author: None,
        referral: None,
    })
    .await
    .expect("reply");
    let priced = tx
        .record_pricing(
            &con,
            "wamid.priced",
            &switchyard::store::MessagePricing {
                category: "utility".into(),
                billable: Some(true),
                model: Some("PMP".into()),
                pricing_type: Some("regular".into()),
            },
        )
        .await
        .expect("pricing");
    assert!(priced, "the reply is priced once");
    let media = tx
        .insert_media(&msg, Some("m1"), Some("image/jpeg"), None)
        .await
        .expect("media");
    tx.store_media_content(&media, "image/jpeg", b"jpeg", "00")
        .await
        .expect("media content");
    tx.replace_templates(
        &con,
        &[switchyard::store::TemplateRecord {
            name: "hello".into(),
            language: "en_US".into(),
            category: "utility".into(),
            status: "APPROVED".into(),
            provider_id: None,
            updated_at: 0,
            display_name: None,
        }],
    )
    .await
    .expect("templates");
    // What a policy made of the conversation.
    tx.save_insight(
        &conv,
        &switchyard::store::NewInsight {
            sentiment: "neutral",
            score: 0.0,
            summary: "hi".into(),
            language: Some("en".into()),
            plugin: "triage@0.1.0".into(),
            through_message: msg.clone(),
            messages: 1,
        },
    )
    .await
    .expect("insight");
    // Who may reach the number's policy: its policy, a shared email, a code, a request.
    tx.set_access(&con, "sharing", &["shared@example.com".into()], "key_test")
        .await
        .expect("access");
    tx.issue_login_code(&contact, "ann@example.com", "00", 1)
        .await
        .expect("code");
    tx.request_access(&con, &contact, &conv, "ann@example.com")
        .await
        .expect("request");
    // A person's notification (the message above wrote the tenant's first events).
    tx.notify(
        switchyard::store::Audience::Person("usr_someone"),
        "message",
        Some(&conv),
        Some(&con),
        "New message from a contact",
    )
    .await
    .expect("notification");
    // An onboarding session with its sealed token (its key and secret rows).
    let session = switchyard::tenancy::ids::new_id("obs");
    tx.insert_onboarding(&switchyard::store::OnboardingRecord {
        id: session.clone(),
        tenant_id: id.clone(),
        endpoint_id: endpoint.to_string(),
        flow: "redirect".into(),
        state_hash: None,
        ticket_hash: None,
        browser_hash: None,
        confirm_hash: None,
        actor: "test".into(),
        ip: None,
        user_agent: None,
        consent_version: None,
        consent_scopes: "[\"messaging\"]".into(),
        status: "picking".into(),
        discovered: None,
        error_code: None,
        connection_id: None,
        token_expires_at: None,
        created_at: 0,
        expires_at: i64::MAX,
        used_at: None,
        updated_at: 0,
    })
    .await
    .expect("onboarding session");
    v.seal_onboarding(
        &mut tx,
        &session,
        &[(
            "access_token".into(),
            switchyard::vault::Secret::new(b"user-token".to_vec()),
        )],
        None,
    )
    .await
    .expect("seal onboarding");
    tx.put_policy("echo", "{}").await.expect("policy");
    consent::append(
        &mut tx,
        &Origin {
            actor: "test".into(),
            ip: None,
            user_agent: None,
        },
        &Entry {
            connection_id: Some(&con),
            action: Action::Granted,
            document_version: Some("v1"),
            scopes: &["messaging".to_string()],
        },
    )
    .await
    .expect("ledger");
    tx.commit().await.expect("commit");
    scope
}

pub async fn world(store: &Store, v: &Vault) -> World {
    let mut tx = store.begin(Scope::Host, Mode::Write).await.expect("begin");
    tx.insert_partner("par_1", "P1").await.expect("partner");
    tx.insert_partner("par_2", "P2").await.expect("partner");
    let endpoint = switchyard::store::EndpointRecord {
        id: "end_1".into(),
        connector: "meta-cloud".into(),
        owner: "operator".into(),
        partner_id: None,
        tenant_id: None,
        settings: "{}".into(),
        created_at: 0,
    };
    tx.insert_endpoint(&endpoint).await.expect("endpoint");
    v.seal_endpoint(
        &mut tx,
        &endpoint,
        &[("app_secret".into(), Secret::new("app-secret"))],
    )
    .await
    .expect("endpoint secrets");
    tx.commit().await.expect("commit");
    World {
        a: tenant_with_rows(store, v, Some("par_1"), "end_1", 1).await,
        b: tenant_with_rows(store, v, Some("par_2"), "end_1", 2).await,
        c: tenant_with_rows(store, v, None, "end_1", 3).await,
        endpoint: "end_1".into(),
    }
}

/// Everything scope `s` reads through the store's API belongs to its tenant; the other tenant's
/// ids are invisible and unchangeable.
async fn store_isolation(db: Db) {
    let v = vault(KEY_V1, "");
    let w = world(&db.store, &v).await;
    let other_connection = {
        let mut tx = db
            .store
            .begin(Scope::Tenant(w.b.clone()), Mode::Read)
            .await
            .expect("b");
        tx.connections(None, 10).await.expect("list")[0].id.clone()
    };
    let other_conversation = {
        let mut tx = db
            .store
            .begin(Scope::Tenant(w.b.clone()), Mode::Read)
            .await
            .expect("b");
        tx.conversations(None, 10, &Default::default())
            .await
            .expect("list")[0]
            .id
            .clone()
    };
    let mut tx = db
        .store
        .begin(Scope::Tenant(w.a.clone()), Mode::Write)
        .await
        .expect("a");
    let own = tx.connections(None, 10).await.expect("list");
    assert_eq!(own.len(), 1);
    assert!(own.iter().all(|c| c.tenant_id == w.a.id()));
    assert!(
        tx.connection(&other_connection)
            .await
            .expect("get")
            .is_none()
    );
    assert!(matches!(
        tx.set_connection_status(&other_connection, "error", Some("x"))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(
        !tx.conversation_exists(&other_conversation)
            .await
            .expect("exists")
    );
    assert!(
        tx.messages(&other_conversation, None, 10)
            .await
            .expect("messages")
            .is_empty()
    );
    let convs = tx
        .conversations(None, 10, &Default::default())
        .await
        .expect("conversations");
    assert_eq!(convs.len(), 1);
    assert!(
        tx.secrets(Holder::Connection(&other_connection))
            .await
            .expect("secrets")
            .is_empty()
    );
    assert!(
        tx.data_key(Holder::Connection(&other_connection))
            .await
            .expect("key")
            .is_none()
    );
    assert!(
        v.open_connection(&mut tx, &other_connection)
            .await
            .expect("open")
            .is_empty()
    );
    assert!(
        tx.ledger(0, 100)
            .await
            .expect("ledger")
            .iter()
            .all(|r| r.tenant_id == w.a.id())
    );
    assert!(tx.tenant(w.b.id()).await.expect("tenant").is_none());
    assert_eq!(tx.tenants(None, 10).await.expect("tenants").len(), 1);
    tx.commit().await.expect("commit");

    // Partners see their own tenants only; the operator sees all; the host scope none.
    let p1 = partner("par_1");
    let mut tx = db
        .store
        .begin(p1.listing_scope(), Mode::Read)
        .await
        .expect("p1");
    let seen: Vec<String> = tx
        .tenants(None, 10)
        .await
        .expect("tenants")
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(seen, vec![w.a.id().to_string()]);
    assert!(tx.tenant(w.b.id()).await.expect("tenant").is_none());
    let report = tx.partner_report("par_1").await.expect("report");
    assert_eq!((report.len(), report[0].messages_in), (1, 1));
    assert!(matches!(
        tx.partner_report("par_2").await,
        Err(StoreError::WrongScope)
    ));
    tx.commit().await.expect("commit");
    assert!(matches!(
        auth::access(&db.store, &p1, w.b.id()).await,
        Err(auth::AccessError::NotFound)
    ));
    assert!(auth::access(&db.store, &p1, w.a.id()).await.is_ok());
    let mut tx = db
        .store
        .begin(Scope::Operator, Mode::Read)
        .await
        .expect("op");
    assert_eq!(tx.tenants(None, 10).await.expect("tenants").len(), 3);
    tx.commit().await.expect("commit");
    let mut tx = db.store.begin(Scope::Host, Mode::Read).await.expect("host");
    assert!(tx.tenants(None, 10).await.expect("tenants").is_empty());
    assert!(matches!(
        tx.connections(None, 10).await,
        Err(StoreError::WrongScope)
    ));
    tx.commit().await.expect("commit");
    let _ = w.c;
}
both!(store_isolation_on_both_backends, 4, store_isolation);

/// Ledger rows cannot be changed through the app's connection, and a row changed behind the
/// database's back is named by verification.
async fn ledger_append_only(db: Db) {
    let v = vault(KEY_V1, "");
    let w = world(&db.store, &v).await;
    let mut tx = db
        .store
        .begin(Scope::Tenant(w.a.clone()), Mode::Write)
        .await
        .expect("a");
    for i in 0..3 {
        consent::append(
            &mut tx,
            &Origin {
                actor: format!("actor {i}"),
                ip: Some("10.0.0.1".into()),
                user_agent: None,
            },
            &Entry {
                connection_id: None,
                action: Action::Granted,
                document_version: Some("v2"),
                scopes: &["marketing".into()],
            },
        )
        .await
        .expect("append");
    }
    tx.commit().await.expect("commit");
    assert_eq!(
        consent::verify(&db.store, &w.a).await.expect("verify"),
        (4, None)
    );

    for sql in [
        "UPDATE consent_ledger SET actor = 'mallory'",
        "DELETE FROM consent_ledger",
    ] {
        let err = raw_execute(&db, &w.a, sql).await.expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("append-only") || text.contains("permission denied"),
            "{sql}: {text}"
        );
    }
    assert_eq!(
        consent::verify(&db.store, &w.a).await.expect("verify"),
        (4, None)
    );

    // Tamper as the owner with the triggers off.
    match db.backend {
        Backend::Sqlite => {
            use sqlx::Connection as _;
            let path = db.sqlite_path.as_ref().expect("path");
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                .await
                .expect("raw");
            sqlx::query("DROP TRIGGER consent_ledger_no_update")
                .execute(&mut c)
                .await
                .expect("drop");
            sqlx::query(
                "UPDATE consent_ledger SET actor = 'mallory' WHERE tenant_id = $1 AND seq = 3",
            )
            .bind(w.a.id())
            .execute(&mut c)
            .await
            .expect("tamper");
        }
        Backend::Postgres => {
            use sqlx::Connection as _;
            let mut c = sqlx::PgConnection::connect(db.owner_url.as_deref().expect("owner"))
                .await
                .expect("owner");
            sqlx::query("ALTER TABLE consent_ledger DISABLE TRIGGER consent_ledger_no_update")
                .execute(&mut c)
                .await
                .expect("disable");
            sqlx::query("SELECT set_config('app.tenant_id', $1, false)")
                .bind(w.a.id())
                .execute(&mut c)
                .await
                .expect("scope");
            let done = sqlx::query("UPDATE consent_ledger SET actor = 'mallory' WHERE seq = 3")
                .execute(&mut c)
                .await
                .expect("tamper");
            assert_eq!(done.rows_affected(), 1);
        }
    }
    let (_, broken) = consent::verify(&db.store, &w.a).await.expect("verify");
    let broken = broken.expect("tampering found");
    assert_eq!((broken.tenant_id.as_str(), broken.seq), (w.a.id(), 3));
    assert_eq!(
        consent::verify(&db.store, &w.b).await.expect("verify b").1,
        None
    );
}
both!(ledger_is_append_only_and_verified, 4, ledger_append_only);

/// Concurrent appends of one tenant never fork its chain.
async fn ledger_concurrent_appends(db: Db) {
    let v = vault(KEY_V1, "");
    let w = world(&db.store, &v).await;
    let store = db.store.clone();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            let scope = w.a.clone();
            tokio::spawn(async move {
                let mut tx = store
                    .begin(Scope::Tenant(scope), Mode::Write)
                    .await
                    .expect("begin");
                consent::append(
                    &mut tx,
                    &Origin {
                        actor: format!("writer {i}"),
                        ip: None,
                        user_agent: None,
                    },
                    &Entry {
                        connection_id: None,
                        action: Action::Granted,
                        document_version: Some("v"),
                        scopes: &[],
                    },
                )
                .await
                .expect("append");
                tx.commit().await.expect("commit");
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(
        consent::verify(&db.store, &w.a).await.expect("verify"),
        (17, None)
    );
}
both!(
    ledger_appends_serialize_per_tenant,
    4,
    ledger_concurrent_appends
);

/// Re-sealing under a new master key while readers open secrets loses nothing.
async fn rotation_under_reads(db: Db) {
    let v1 = vault(KEY_V1, "");
    let w = world(&db.store, &v1).await;
    let mut scopes = vec![w.a.clone(), w.b.clone(), w.c.clone()];
    for n in 10..20 {
        scopes.push(tenant_with_rows(&db.store, &v1, None, &w.endpoint, n).await);
    }
    // A Meta onboarding session waiting for a pick holds a user token and a two-step PIN.
    let session = onboarding_session(&db.store, &v1, &w.a, &w.endpoint).await;
    let v2 = vault(KEY_V2, KEY_V1);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (store, v2, scopes, stop) =
                (db.store.clone(), v2.clone(), scopes.clone(), stop.clone());
            tokio::spawn(async move {
                let mut opened = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || opened == 0 {
                    for s in &scopes {
                        let mut tx = store
                            .begin(Scope::Tenant(s.clone()), Mode::Read)
                            .await
                            .expect("begin");
                        let con = tx.connections(None, 1).await.expect("list")[0].id.clone();
                        let got = v2
                            .open_connection(&mut tx, &con)
                            .await
                            .expect("open during rotation");
                        assert_eq!(got.len(), 1);
                        tx.commit().await.expect("commit");
                        opened += 1;
                    }
                }
                opened
            })
        })
        .collect();
    let report = v2.rotate(&db.store).await.expect("rotate");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        assert!(r.await.expect("reader") > 0);
    }
    assert_eq!(
        report.resealed,
        2 * scopes.len() + 2,
        "every connection and onboarding session (one each per tenant, one more) and the endpoint"
    );
    // Only the new key now: everything still opens.
    let only_v2 = vault(KEY_V2, "");
    for s in &scopes {
        let mut tx = db
            .store
            .begin(Scope::Tenant(s.clone()), Mode::Read)
            .await
            .expect("begin");
        let con = tx.connections(None, 1).await.expect("list")[0].id.clone();
        assert_eq!(
            tx.data_key(Holder::Connection(&con))
                .await
                .expect("key")
                .expect("some")
                .key_version,
            2
        );
        let got = only_v2
            .open_connection(&mut tx, &con)
            .await
            .expect("open after rotation");
        assert!(got[0].1.expose().starts_with(b"token-"));
    }
    let mut tx = db
        .store
        .begin(Scope::Tenant(w.a.clone()), Mode::Read)
        .await
        .expect("begin");
    let sealed = only_v2
        .open_onboarding(&mut tx, &session)
        .await
        .expect("the session's secrets open under the new key alone");
    tx.commit().await.expect("commit");
    assert_eq!(sealed.len(), 2);
    assert_eq!(only_v2.rotate(&db.store).await.expect("again").resealed, 0);
}

/// A `picking` onboarding session of `tenant` with a sealed token and PIN; its id.
async fn onboarding_session(
    store: &Store,
    vault: &Vault,
    tenant: &TenantScope,
    endpoint: &str,
) -> String {
    let now = 1_700_000_000_000;
    let id = "onb_rotation".to_string();
    let mut tx = store
        .begin(Scope::Tenant(tenant.clone()), Mode::Write)
        .await
        .expect("begin");
    tx.insert_onboarding(&switchyard::store::OnboardingRecord {
        id: id.clone(),
        tenant_id: tenant.id().to_string(),
        endpoint_id: endpoint.to_string(),
        flow: "embedded".into(),
        state_hash: None,
        ticket_hash: None,
        browser_hash: None,
        confirm_hash: None,
        actor: "test".into(),
        ip: None,
        user_agent: None,
        consent_version: None,
        consent_scopes: "[]".into(),
        status: "picking".into(),
        discovered: None,
        error_code: None,
        connection_id: None,
        token_expires_at: None,
        created_at: now,
        expires_at: i64::MAX,
        used_at: None,
        updated_at: now,
    })
    .await
    .expect("session");
    vault
        .seal_onboarding(
            &mut tx,
            &id,
            &[
                ("access_token".into(), Secret::new("EAA-onboarding")),
                ("two_step_pin:5001".into(), Secret::new("123456")),
            ],
            None,
        )
        .await
        .expect("seal");
    tx.commit().await.expect("commit");
    id
}
both!(
    rotation_loses_no_secret_under_concurrent_reads,
    8,
    rotation_under_reads
);

/// A 2-connection pool under many interleaved tenants never carries one scope into another.
async fn pool_never_leaks(db: Db) {
    let v = vault(KEY_V1, "");
    let w = world(&db.store, &v).await;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = db.store.clone();
            let scope = if i % 2 == 0 { w.a.clone() } else { w.b.clone() };
            let backend = db.backend;
            tokio::spawn(async move {
                let mode = if i % 3 == 0 { Mode::Write } else { Mode::Read };
                let mut tx = store
                    .begin(Scope::Tenant(scope.clone()), mode)
                    .await
                    .expect("begin");
                let rows = tx.connections(None, 10).await.expect("list");
                assert!(rows.iter().all(|c| c.tenant_id == scope.id()));
                if backend == Backend::Postgres {
                    for table in TENANT_TABLES {
                        let ids = tx.visible_tenant_ids(table).await.expect("probe");
                        assert!(
                            !ids.is_empty() && ids.iter().all(|t| t == scope.id()),
                            "{table}"
                        );
                    }
                }
                if i % 5 == 0 {
                    drop(tx); // rolled back
                } else {
                    tx.commit().await.expect("commit");
                }
                if backend == Backend::Postgres {
                    // Right after, on whichever pooled connection: no scope, zero rows.
                    let mut tx = store.begin(Scope::Host, Mode::Read).await.expect("host");
                    for table in TENANT_TABLES {
                        assert!(
                            tx.visible_tenant_ids(table)
                                .await
                                .expect("probe")
                                .is_empty(),
                            "{table}"
                        );
                    }
                    tx.commit().await.expect("commit");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
}
both!(two_connection_pool_never_leaks_a_scope, 2, pool_never_leaks);

/// PostgreSQL only: the role and the tables are what isolation depends on.
#[tokio::test]
async fn postgres_rls_is_enabled_forced_and_the_app_role_is_unprivileged() {
    let Some(db) = postgres("postgres_rls", 2).await else {
        return;
    };
    let check = db
        .store
        .role_check()
        .await
        .expect("check")
        .expect("postgres");
    assert!(
        !check.superuser && !check.bypass_rls && !check.owns_tables,
        "{check:?}"
    );
    assert!(check.refusal().is_none());
    use sqlx::Connection as _;
    let mut owner = sqlx::PgConnection::connect(db.owner_url.as_deref().expect("owner"))
        .await
        .expect("owner");
    for table in TENANT_TABLES {
        let (enabled, forced): (bool, bool) = sqlx::query_as(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = $1 AND relkind = 'r'",
        )
        .bind(table)
        .fetch_one(&mut owner)
        .await
        .expect("pg_class");
        assert!(
            enabled && forced,
            "{table}: rls enabled {enabled}, forced {forced}"
        );
    }
    // The owner and a superuser are refused at start-up.
    let owner_store = Store::open_with(db.owner_url.as_deref().expect("owner"), 1)
        .await
        .expect("owner store");
    let refusal = owner_store
        .role_check()
        .await
        .expect("check")
        .expect("pg")
        .refusal()
        .expect("refused");
    assert!(
        refusal.contains("owns the tables") && refusal.contains("--insecure-db-role"),
        "{refusal}"
    );
    let pg = db._pg.as_ref().expect("pg");
    let su = Store::open_with(&pg.superuser_url(), 1)
        .await
        .expect("superuser store");
    let refusal = su
        .role_check()
        .await
        .expect("check")
        .expect("pg")
        .refusal()
        .expect("refused");
    assert!(refusal.contains("superuser"), "{refusal}");
}

/// PostgreSQL only: an app role that is a member of the owning role could `SET ROLE` to it
/// (and turn row-level security off): start-up refuses it, and accepts it again once revoked.
#[tokio::test]
async fn postgres_an_app_role_in_the_owners_role_is_refused_at_start() {
    let Some(db) = postgres("postgres_member", 1).await else {
        return;
    };
    use clap::Parser as _;
    let pg = db._pg.as_ref().expect("pg");
    let app_url = db.app_url.clone().expect("app");
    let owner_url = db.owner_url.clone().expect("owner");
    let config = |data: &std::path::Path| {
        let cli = switchyard::config::Cli::try_parse_from([
            "switchyard",
            "serve",
            "--data-dir",
            &data.display().to_string(),
            "--database-url",
            &app_url,
            "--database-owner-url",
            &owner_url,
            "--operator-token",
            "operator-token-for-tests",
            "--master-key",
            crate::api::MASTER_KEY,
        ])
        .expect("flags");
        let switchyard::config::Command::Serve(serve) = cli.command else {
            panic!("serve")
        };
        serve.into_config().expect("config")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    // Unprivileged: starts.
    switchyard::open_store(&config(dir.path()))
        .await
        .expect("the app role is accepted");

    use sqlx::Connection as _;
    let mut su = sqlx::PgConnection::connect(&pg.superuser_url())
        .await
        .expect("superuser");
    let grant = |verb: &str| {
        sqlx::AssertSqlSafe(if verb == "GRANT" {
            format!("GRANT {0}_owner TO {0}_app", pg.name)
        } else {
            format!("REVOKE {0}_owner FROM {0}_app", pg.name)
        })
    };
    sqlx::query(grant("GRANT"))
        .execute(&mut su)
        .await
        .expect("grant membership");
    let check = db
        .store
        .role_check()
        .await
        .expect("check")
        .expect("postgres");
    assert!(
        check.member_of_owner && !check.owns_tables && !check.superuser,
        "{check:?}"
    );
    let Err(err) = switchyard::open_store(&config(dir.path())).await else {
        panic!("a member of the owner is refused");
    };
    let text = format!("{err:#}");
    assert!(
        text.contains("is a member of the role that owns the tables")
            && text.contains("--insecure-db-role"),
        "{text}"
    );
    sqlx::query(grant("REVOKE"))
        .execute(&mut su)
        .await
        .expect("revoke membership");
    switchyard::open_store(&config(dir.path()))
        .await
        .expect("accepted again after the revoke");
}

/// PostgreSQL only: SQL that skips the store's own filters still cannot cross tenants.
#[tokio::test]
async fn postgres_rls_holds_against_raw_sql() {
    let Some(db) = postgres("postgres_raw", 2).await else {
        return;
    };
    let v = vault(KEY_V1, "");
    let w = world(&db.store, &v).await;
    // Partner and operator scopes: tenants and counters only, never contact-level tables.
    for (scope, tenants_seen) in [(partner("par_1").listing_scope(), 1), (Scope::Operator, 3)] {
        let mut tx = db.store.begin(scope, Mode::Read).await.expect("begin");
        for table in TENANT_TABLES {
            let n = tx.visible_tenant_ids(table).await.expect("probe").len();
            let expected = match *table {
                "tenants" | "tenant_counters" | "pricing_counters" => tenants_seen,
                _ => 0,
            };
            assert_eq!(n, expected, "{table}");
        }
        tx.commit().await.expect("commit");
    }
    for sql in [
        "UPDATE connections SET status = 'error'",
        "DELETE FROM media",
        "UPDATE tenants SET name = 'x'",
    ] {
        raw_execute(&db, &w.a, sql).await.expect("runs");
    }
    let mut tx = db
        .store
        .begin(Scope::Tenant(w.b.clone()), Mode::Read)
        .await
        .expect("b");
    assert_eq!(tx.connections(None, 10).await.expect("b")[0].status, "live");
    assert_eq!(tx.visible_tenant_ids("media").await.expect("b").len(), 1);
    assert_eq!(
        tx.tenant(w.b.id()).await.expect("b").expect("b").name,
        "Tenant 2"
    );
    tx.commit().await.expect("commit");
    let err = raw_execute(&db, &w.a, &format!("INSERT INTO policies (tenant_id, plugin, config, updated_at) VALUES ('{}', 'echo', '{{}}', 0)", w.b.id()))
        .await
        .expect_err("RLS refuses writing another tenant's row");
    assert!(err.to_string().contains("row-level security"), "{err}");
}

/// Status updates in every order end in the right final state; `failed` is terminal.
async fn status_orders(db: Db) {
    let v = vault(KEY_V1, "");
    let w = world(&db.store, &v).await;
    fn permutations(items: &[&'static str]) -> Vec<Vec<&'static str>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let head = rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, head);
                out.push(p);
            }
        }
        out
    }
    let cases: Vec<(Vec<&str>, &str)> = permutations(&["accepted", "sent", "delivered", "read"])
        .into_iter()
        .map(|p| (p, "read"))
        .chain(
            permutations(&["sent", "delivered", "failed"])
                .into_iter()
                .map(|p| (p, "failed")),
        )
        .chain(
            permutations(&["sent", "read", "played"])
                .into_iter()
                .map(|p| (p, "played")),
        )
        .collect();
    let mut tx = db
        .store
        .begin(Scope::Tenant(w.a.clone()), Mode::Write)
        .await
        .expect("a");
    let con = tx.connections(None, 1).await.expect("list")[0].id.clone();
    let conv = tx
        .conversations(None, 1, &Default::default())
        .await
        .expect("convs")[0]
        .id
        .clone();
    for (i, (order, expected)) in cases.iter().enumerate() {
        let wamid = format!("wamid.out.{i}");
        tx.insert_message(&NewMessage {
            conversation_id: &conv,
            connection_id: &con,
            direction: "out",
            provider_message_id: Some(&wamid),
            kind: "text",
            body: Some("hi"),
            status: "queued",
            idempotency_key: None,
            reply_to: None,
            content: None,
            sent_at: None,
            author: None,
            referral: None,
        })
        .await
        .expect("out");
        for state in order {
            let error = (*state == "failed").then_some((
                "window-closed",
                "131047",
                "Re-engagement message",
            ));
            tx.advance_status(&con, &wamid, state, error)
                .await
                .expect("advance");
        }
        let msgs = tx.messages(&conv, None, 200).await.expect("messages");
        let m = msgs
            .iter()
            .find(|m| m.provider_message_id.as_deref() == Some(wamid.as_str()))
            .expect("msg");
        assert_eq!(m.status, *expected, "{order:?}");
        if *expected == "failed" {
            assert_eq!(m.error_code.as_deref(), Some("131047"));
        }
    }
    // Another tenant's status for the same provider id changes nothing here.
    tx.commit().await.expect("commit");
    let mut tx = db
        .store
        .begin(Scope::Tenant(w.b.clone()), Mode::Write)
        .await
        .expect("b");
    assert!(
        tx.advance_status(&con, "wamid.out.0", "failed", None)
            .await
            .expect("b")
            .is_none()
    );
    tx.commit().await.expect("commit");
}
both!(
    status_updates_in_every_order_end_in_the_right_state,
    2,
    status_orders
);

/// Send slots on one connection are handed out `interval` apart, never twice, to concurrent
/// reservers from two separate pools (two host processes) — and none beyond the horizon.
async fn send_slots(db: Db) {
    let v = vault(KEY_V1, "");
    let w = world(&db.store, &v).await;
    let second = match db.backend {
        Backend::Sqlite => Store::open(&format!(
            "sqlite://{}",
            db.sqlite_path.as_ref().expect("path").display()
        ))
        .await
        .expect("second pool"),
        Backend::Postgres => Store::open(db.app_url.as_ref().expect("app url"))
            .await
            .expect("second pool"),
    };
    let mut tx = db
        .store
        .begin(Scope::Tenant(w.a.clone()), Mode::Read)
        .await
        .expect("a");
    let con = tx.connections(None, 1).await.expect("list")[0].id.clone();
    tx.commit().await.expect("commit");
    // A fixed clock: 80 per second, a one-second horizon, 100 reservers across two hosts.
    let (now, interval, horizon) = (1_000_000_000_000i64, 12_500i64, 1_000_000i64);
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let store = if i % 2 == 0 {
                db.store.clone()
            } else {
                second.clone()
            };
            let (scope, con) = (w.a.clone(), con.clone());
            tokio::spawn(async move {
                let mut tx = store
                    .begin(Scope::Tenant(scope), Mode::Write)
                    .await
                    .expect("begin");
                let slot = tx
                    .reserve_send_slot(&con, now, interval, horizon)
                    .await
                    .expect("reserve");
                tx.commit().await.expect("commit");
                slot
            })
        })
        .collect();
    let mut granted = Vec::new();
    let mut busy = 0;
    for t in tasks {
        match t.await.expect("task") {
            Slot::At(at) => granted.push(at),
            Slot::Busy(retry_at) => {
                assert!(retry_at > now, "retry later, not now");
                busy += 1;
            }
        }
    }
    granted.sort_unstable();
    // Slots up to the horizon: now, now + interval, … — 81 of them, each exactly once.
    let expected: Vec<i64> = (0..=horizon / interval)
        .map(|k| now + k * interval)
        .collect();
    assert_eq!(granted, expected);
    assert_eq!(busy, 100 - expected.len());
    second.close().await;
}
both!(send_slots_are_spaced_and_shared_by_two_hosts, 4, send_slots);

#[tokio::test]
async fn sqlite_durability_is_a_setting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("d.db").display());
    for (durability, expected) in [
        (switchyard::store::Durability::Crash, 1),
        (switchyard::store::Durability::PowerLoss, 2),
    ] {
        let store = Store::open_durable(&url, 2, durability)
            .await
            .expect("open");
        assert_eq!(store.sqlite_synchronous().await, Some(expected));
        store.close().await;
    }
}

/// Claims are fair between keys: a key with a backlog of 2,000 jobs delays another key's new
/// job by at most a claim or two; jobs put back for later wait until due and then queue behind
/// their key; with one key the order is first in, first out. One query on both backends (with
/// FOR UPDATE SKIP LOCKED on PostgreSQL).
async fn fair_claims(db: Db) {
    let s = &db.store;
    let mut tx = s.begin(Scope::Host, Mode::Write).await.expect("begin");
    for i in 0..2000 {
        tx.enqueue("flood", None, &format!("{{\"n\":{i}}}"), "ten_flood")
            .await
            .expect("enqueue");
    }
    tx.commit().await.expect("commit");
    let claim = || async {
        let mut tx = s.begin(Scope::Host, Mode::Write).await.expect("begin");
        let job = tx.claim_job(60_000).await.expect("claim");
        tx.commit().await.expect("commit");
        job
    };
    // First in, first out within one key.
    for i in 0..3 {
        let j = claim().await.expect("job");
        assert_eq!(j.payload, format!("{{\"n\":{i}}}"));
    }
    let mut tx = s.begin(Scope::Host, Mode::Write).await.expect("begin");
    tx.enqueue("other", None, "{}", "ten_other")
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    let mut claimed = Vec::new();
    for _ in 0..3 {
        claimed.push(claim().await.expect("job").kind);
    }
    assert!(
        claimed.iter().take(2).any(|k| k == "other"),
        "the other key's job waits behind the flood: {claimed:?}"
    );
    // A job put back for later waits until due, then takes its turn.
    let j = claim().await.expect("job");
    let mut tx = s.begin(Scope::Host, Mode::Write).await.expect("begin");
    tx.defer_job(&j, switchyard::store::now_ms() + 600, "later")
        .await
        .expect("defer");
    tx.enqueue("third", None, "{}", "ten_third")
        .await
        .expect("enqueue");
    tx.commit().await.expect("commit");
    let next = [claim().await.expect("job"), claim().await.expect("job")];
    assert!(next.iter().any(|n| n.kind == "third"), "{next:?}");
    assert!(next.iter().all(|n| n.id != j.id), "not due yet");
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    // Due again: it is promoted behind its key's queue, and every job is claimed exactly once.
    let mut seen = std::collections::HashSet::new();
    while let Some(job) = claim().await {
        assert!(seen.insert(job.id.clone()), "claimed twice: {}", job.id);
    }
    assert!(
        seen.contains(&j.id),
        "the deferred job ran after it was due"
    );
    assert_eq!(seen.len(), 2000 - 3 - 2 - 1 - 1 + 1);
}
both!(
    claims_are_fair_between_keys_on_both_backends,
    4,
    fair_claims
);

/// The consent state a decision reads stays right through grant, revoke, grant — per
/// connection and tenant-wide; a tenant-wide revoke ends every connection's grant of the scope.
async fn consent_grants(db: Db) {
    let v = vault(KEY_V1, "");
    let w = world(&db.store, &v).await;
    let con = {
        let mut tx = db
            .store
            .begin(Scope::Tenant(w.a.clone()), Mode::Read)
            .await
            .expect("a");
        let list = tx.connections(None, 10).await.expect("connections");
        tx.commit().await.expect("commit");
        list[0].id.clone()
    };
    let origin = Origin {
        actor: "test".into(),
        ip: None,
        user_agent: None,
    };
    let change = |action, connection: Option<String>| {
        let store = db.store.clone();
        let scope = w.a.clone();
        let origin = origin.clone();
        async move {
            let mut tx = store
                .begin(Scope::Tenant(scope), Mode::Write)
                .await
                .expect("begin");
            consent::append(
                &mut tx,
                &origin,
                &Entry {
                    connection_id: connection.as_deref(),
                    action,
                    document_version: Some("v1"),
                    scopes: &["marketing".to_string()],
                },
            )
            .await
            .expect("append");
            tx.commit().await.expect("commit");
        }
    };
    let allowed = || consent::marketing_allowed(&db.store, &w.a, &con);
    assert!(!allowed().await.expect("read"));
    change(Action::Granted, Some(con.clone())).await;
    assert!(allowed().await.expect("read"));
    change(Action::Revoked, Some(con.clone())).await;
    assert!(!allowed().await.expect("read"));
    change(Action::Granted, Some(con.clone())).await;
    assert!(allowed().await.expect("read"));
    // Tenant-wide: a revoke ends the connection's own grant too.
    change(Action::Revoked, None).await;
    assert!(!allowed().await.expect("read"));
    change(Action::Granted, None).await;
    assert!(allowed().await.expect("read"));
    // Another tenant's grants never count.
    assert!(
        !consent::marketing_allowed(&db.store, &w.b, &con)
            .await
            .expect("b")
    );
    // The ledger still verifies and says the same.
    let rows = consent::read_all(&db.store, &w.a).await.expect("rows");
    assert!(consent::check_chain(&rows).is_none());
    assert!(consent::active_scopes(&rows, Some(&con)).contains("marketing"));
}
both!(
    consent_grants_follow_the_ledger_on_both_backends,
    4,
    consent_grants
);

/// A template's status is its own in the language a send names. A template whose name is the
/// provider's id (a Twilio content SID, sent whatever the language) listed in another language
/// is judged by that listing, so a misspelt language cannot send an unapproved one unchecked;
/// Meta's languages, and statuses learnt from webhooks, stay separate.
async fn template_status_by_language(db: Db) {
    let v = vault(KEY_V1, "");
    let w = world(&db.store, &v).await;
    let mut tx = db
        .store
        .begin(Scope::Tenant(w.a.clone()), Mode::Write)
        .await
        .expect("a");
    let con = tx.connections(None, 1).await.expect("list")[0].id.clone();
    let t =
        |name: &str, language: &str, status: &str, id: &str| switchyard::store::TemplateRecord {
            name: name.into(),
            language: language.into(),
            category: "utility".into(),
            status: status.into(),
            provider_id: Some(id.into()),
            updated_at: 0,
            display_name: None,
        };
    tx.replace_templates(
        &con,
        &[
            t("HX0000aa", "en", "UNSUBMITTED", "HX0000aa"),
            t("HX0000bb", "en", "APPROVED", "HX0000bb"),
            t("promo", "en_US", "PAUSED", "5944"),
            t("promo", "es", "APPROVED", "5945"),
        ],
    )
    .await
    .expect("templates");
    // A webhook said another language of a never-listed name is rejected.
    tx.set_template_status(&con, "welcome", "fr", "REJECTED")
        .await
        .expect("learnt");
    for (name, language, status) in [
        ("HX0000aa", "en", Some("UNSUBMITTED")),
        ("HX0000aa", "en_US", Some("UNSUBMITTED")),
        ("HX0000bb", "pt_BR", Some("APPROVED")),
        ("promo", "en_US", Some("PAUSED")),
        ("promo", "es", Some("APPROVED")),
        // Not listed in French: Meta judges it (it refuses a language it does not have).
        ("promo", "fr", None),
        ("welcome", "fr", Some("REJECTED")),
        ("welcome", "en_US", None),
        ("never_listed", "en", None),
    ] {
        assert_eq!(
            tx.template_status(&con, name, language)
                .await
                .expect("status")
                .as_deref(),
            status,
            "{name} {language}"
        );
    }
    tx.commit().await.expect("commit");
}
both!(
    a_template_is_judged_in_its_language_or_else_by_its_provider_id,
    2,
    template_status_by_language
);
