//! The plugin catalog (issue 14) against the real binary: uploads checked before anything is
//! stored, a version callable on every host sharing the database without a restart, versions
//! side by side with promotion, pins and roll back, and partners kept to their namespace and
//! their own tenants.

use clap::Parser as _;
use reqwest::Method;
use serde_json::{Value, json};
use switchyard::runtime::{Manifest, World};

use crate::api::{Db, Host, OPERATOR, assert_error, graph_ok, setup};
use crate::fake::Fake;
use crate::ingress::{meta_message, sign};
use crate::pg::PgDb;

/// A bundled (or test) plugin's component repacked under another name, version or world.
fn repack(from: &str, name: &str, version: &str, world: Option<World>) -> Vec<u8> {
    let bytes = switchyard::bundled::BUNDLED
        .iter()
        .find(|(n, _)| *n == from)
        .map(|(_, b)| b.to_vec())
        .or_else(|| {
            switchyard::bundled::testing_plugin(from)
                .map(|p| std::fs::read(p).expect("testing plugin"))
        })
        .unwrap_or_else(|| panic!("no plugin {from}"));
    let mut manifest = Manifest::from_component(&bytes).expect("manifest");
    manifest.name = name.into();
    manifest.version = version.into();
    if let Some(w) = world {
        manifest.world = w;
        manifest.connection = None;
        manifest.egress.clear();
        manifest.credentials.clear();
    }
    let raw = switchyard::runtime::manifest::strip(&bytes).expect("strip");
    manifest.embed(&raw).expect("embed")
}

/// The operator gives `partner` the plugin namespace `ns`.
async fn give_namespace(h: &Host, partner: &str, ns: &str) {
    h.ok(
        Method::PUT,
        &format!("/api/v1/partners/{partner}/namespace"),
        OPERATOR,
        Some(json!({ "namespace": ns })),
    )
    .await;
}

/// A plugin runtime with no secrets, for catalogs driven in-process.
fn bare_runtime() -> switchyard::runtime::Runtime {
    switchyard::runtime::Runtime::new(
        switchyard::runtime::RuntimeConfig::default(),
        switchyard::runtime::Services {
            secrets: std::sync::Arc::new(switchyard::vault::StaticSecrets::new()),
            egress: switchyard::egress::EgressClient::new(
                std::time::Duration::from_secs(2),
                1 << 20,
            )
            .expect("egress"),
        },
    )
    .expect("runtime")
}

/// A migrated SQLite store in `dir`, for catalogs driven in-process.
async fn catalog_store(dir: &tempfile::TempDir) -> switchyard::store::Store {
    let store = switchyard::store::Store::open(&format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("catalog.db").display()
    ))
    .await
    .expect("store");
    store.migrate().await.expect("migrate");
    store
}

/// `POST /api/v1/plugins` with raw bytes.
async fn upload(h: &Host, token: &str, bytes: Vec<u8>) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/plugins", h.base))
        .bearer_auth(token)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .expect("upload");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A signed Meta text message from 16505551234 to `number`.
async fn inbound(h: &Host, endpoint: &str, number: &str, wamid: &str, text: &str) {
    let body = meta_message(number, wamid, text);
    let r = reqwest::Client::new()
        .post(format!("{}/hooks/{endpoint}", h.base))
        .header("x-hub-signature-256", sign("app-secret-1", &body))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("webhook");
    assert_eq!(r.status(), 200);
}

/// The text of the `n`th reply Graph received from `number` (waits for it).
async fn reply(graph: &Fake, number: &str, n: usize) -> String {
    let path = format!("/v26.0/{number}/messages");
    for _ in 0..1200 {
        let sends: Vec<String> = graph
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path == path)
            .map(|r| {
                let b: Value = serde_json::from_slice(&r.body).expect("json");
                b["text"]["body"].as_str().unwrap_or_default().to_string()
            })
            .collect();
        if let Some(text) = sends.get(n) {
            return text.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no reply {n} from {number}");
}

const RULES: &str = r#"{"rules": [{"keywords": ["hours"], "reply": "We are open 9-17."}]}"#;

/// The name as the operator sees it.
async fn plugin(h: &Host, name: &str) -> Value {
    h.ok(
        Method::GET,
        &format!("/api/v1/plugins/{name}"),
        OPERATOR,
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versions_live_side_by_side_with_promotion_pins_and_roll_back() {
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    // 1.0.0 echoes; 2.0.0 answers from rules. The first version of a new name is promoted.
    let (status, v1) = upload(&h, OPERATOR, repack("echo", "shop-bot", "1.0.0", None)).await;
    assert_eq!(status, 201, "{v1}");
    assert_eq!(v1["promoted"], true);
    assert_eq!(v1["world"], "reply-policy");
    assert_eq!(v1["publisher"], "operator");
    let (status, v2) = upload(
        &h,
        OPERATOR,
        repack("auto-reply", "shop-bot", "2.0.0", None),
    )
    .await;
    assert_eq!(status, 201, "{v2}");
    assert_eq!(v2["promoted"], false, "a later version waits for promotion");
    // Checked and compiled at upload, but kept in memory only once a call can reach it.
    let waiting = h
        .ok(
            Method::GET,
            "/api/v1/plugins/shop-bot/2.0.0",
            OPERATOR,
            None,
        )
        .await;
    assert_eq!(
        (&waiting["loaded"], &waiting["load_error"]),
        (&json!(false), &Value::Null)
    );
    // The same bytes again: nothing new; the same version with other bytes: refused.
    let (status, again) = upload(
        &h,
        OPERATOR,
        repack("auto-reply", "shop-bot", "2.0.0", None),
    )
    .await;
    assert_eq!((status, &again["sha256"]), (200, &v2["sha256"]));
    let clash = upload(&h, OPERATOR, repack("echo", "shop-bot", "2.0.0", None)).await;
    assert_error(&clash, 409, "version_exists");

    for t in [&s.a, &s.b] {
        let policy = h
            .ok(
                Method::PUT,
                &format!("/api/v1/tenants/{}/policy", t.0),
                &t.1,
                Some(json!({"plugin": "shop-bot", "config": serde_json::from_str::<Value>(RULES).expect("json")})),
            )
            .await;
        assert!(policy["version"].is_null(), "{policy}");
    }
    inbound(&h, &s.endpoint, "1001", "wamid.V1", "opening hours?").await;
    assert_eq!(
        reply(&graph, "1001", 0).await,
        "opening hours?",
        "1.0.0 echoes"
    );

    // Promote 2.0.0; tenant B pins 1.0.0.
    let p = h
        .ok(
            Method::POST,
            "/api/v1/plugins/shop-bot/promote",
            OPERATOR,
            Some(json!({"version": "2.0.0", "reason": "rules engine"})),
        )
        .await;
    assert_eq!(p["promoted"], "2.0.0");
    assert_eq!(p["previous"], "1.0.0");
    assert_eq!(p["promoted_reason"], "rules engine");
    let pinned = h
        .ok(
            Method::PUT,
            &format!("/api/v1/tenants/{}/policy", s.b.0),
            &s.b.1,
            Some(json!({"plugin": "shop-bot", "version": "1.0.0",
                        "config": serde_json::from_str::<Value>(RULES).expect("json")})),
        )
        .await;
    assert_eq!(pinned["version"], "1.0.0");
    let unknown = h
        .call(
            Method::PUT,
            &format!("/api/v1/tenants/{}/policy", s.b.0),
            Some(&s.b.1),
            Some(json!({"plugin": "shop-bot", "version": "9.9.9"})),
        )
        .await;
    assert_error(&unknown, 422, "unknown_version");
    inbound(&h, &s.endpoint, "1001", "wamid.V2", "opening hours?").await;
    inbound(&h, &s.endpoint, "2002", "wamid.V3", "opening hours?").await;
    assert_eq!(
        reply(&graph, "1001", 1).await,
        "We are open 9-17.",
        "A runs 2.0.0"
    );
    assert_eq!(
        reply(&graph, "2002", 0).await,
        "opening hours?",
        "B stays on 1.0.0"
    );

    // Roll back: A is back on 1.0.0, and the record says why.
    let back = h
        .ok(
            Method::POST,
            "/api/v1/plugins/shop-bot/rollback",
            OPERATOR,
            Some(json!({"reason": "customers complained"})),
        )
        .await;
    assert_eq!(back["promoted"], "1.0.0");
    assert_eq!(back["promoted_reason"], "rolled back: customers complained");
    inbound(&h, &s.endpoint, "1001", "wamid.V4", "opening hours?").await;
    assert_eq!(reply(&graph, "1001", 2).await, "opening hours?");

    // 1.0.0 is promoted and pinned: not deletable; 2.0.0 is neither.
    let info = plugin(&h, "shop-bot").await;
    let v = |version: &str| {
        info["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .find(|v| v["version"] == version)
            .cloned()
            .expect("version listed")
    };
    assert_eq!(v("1.0.0")["pinned_by"], 1);
    assert_eq!(v("2.0.0")["loaded"], true);
    assert_eq!(v("2.0.0")["source"], "upload");
    let busy = h
        .call(
            Method::DELETE,
            "/api/v1/plugins/shop-bot/1.0.0",
            Some(OPERATOR),
            None,
        )
        .await;
    assert_error(&busy, 409, "version_in_use");
    // B leaves shop-bot: its pin goes with it.
    h.ok(
        Method::PUT,
        &format!("/api/v1/tenants/{}/policy", s.b.0),
        &s.b.1,
        Some(json!({"plugin": "echo"})),
    )
    .await;
    let info = plugin(&h, "shop-bot").await;
    assert_eq!(info["versions"][0]["pinned_by"], 0, "{info}");
    let (status, _) = h
        .call(
            Method::DELETE,
            "/api/v1/plugins/shop-bot/2.0.0",
            Some(OPERATOR),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let gone = h
        .call(
            Method::GET,
            "/api/v1/plugins/shop-bot/2.0.0",
            Some(OPERATOR),
            None,
        )
        .await;
    assert_error(&gone, 404, "not_found");
    // A bundled version is not deletable.
    let bundled = h
        .call(
            Method::DELETE,
            "/api/v1/plugins/echo/0.1.0",
            Some(OPERATOR),
            None,
        )
        .await;
    assert_eq!(bundled.0, 404, "{}", bundled.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_uploads_are_refused_naming_the_check_and_nothing_is_stored() {
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start_with(Db::Sqlite, &graph.origin, &["--plugin-max-kib", "600"]).await;
    let s = setup(&h).await;
    let before = h.ok(Method::GET, "/api/v1/plugins", OPERATOR, None).await;
    let cached = || {
        std::fs::read_dir(h.data.path().join("cache"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let cached_before = cached();
    assert!(cached_before > 0, "the host caches compiled plugins");
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "a core module",
            b"\0asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00".to_vec(),
            422,
            "not_a_component",
        ),
        (
            "not wasm",
            b"PK\x03\x04 a zip file".to_vec(),
            422,
            "not_a_component",
        ),
        (
            "no manifest",
            switchyard::runtime::manifest::strip(&repack("echo", "plain-echo", "1.0.0", None))
                .expect("strip"),
            422,
            "invalid_manifest",
        ),
        (
            "a manifest that lies about the world",
            repack("echo", "liar", "1.0.0", Some(World::Connector)),
            422,
            "wrong_world",
        ),
        (
            "a connector's imports in a policy",
            repack("greedy-policy", "sneaky", "1.0.0", None),
            422,
            "forbidden_import",
        ),
        (
            "too large",
            {
                let mut big = repack("echo", "big-echo", "1.0.0", None);
                big.resize(601 << 10, 0);
                big
            },
            413,
            "payload_too_large",
        ),
    ];
    for (what, bytes, status, code) in cases {
        let r = upload(&h, OPERATOR, bytes).await;
        assert_eq!(
            (r.0, r.1["error"]["code"].as_str()),
            (status, Some(code)),
            "{what}: {}",
            r.1
        );
    }
    // Who may upload: not a tenant; a partner only in a namespace it was given.
    let tenant = upload(&h, &s.a.1, repack("echo", "t-echo", "1.0.0", None)).await;
    assert_error(&tenant, 403, "forbidden");
    let no_ns = upload(&h, &s.p1.1, repack("echo", "one-echo", "1.0.0", None)).await;
    assert_error(&no_ns, 403, "namespace_forbidden");
    give_namespace(&h, &s.p1.0, "one").await;
    for name in ["meta-cloud", "echo", "onex-echo", "two-echo"] {
        let r = upload(&h, &s.p1.1, repack("echo", name, "9.0.0", None)).await;
        assert_error(&r, 403, "namespace_forbidden");
    }
    // A namespace that would cover another publisher's plugin is refused.
    let meta = h
        .call(
            Method::PUT,
            &format!("/api/v1/partners/{}/namespace", s.p2.0),
            Some(OPERATOR),
            Some(json!({"namespace": "meta"})),
        )
        .await;
    assert_error(&meta, 409, "namespace_taken");
    let after = h.ok(Method::GET, "/api/v1/plugins", OPERATOR, None).await;
    assert_eq!(before, after, "nothing was stored");
    assert_eq!(
        cached(),
        cached_before,
        "components refused after compiling leave no compiled code behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partners_plugin_serves_only_that_partners_tenants() {
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    give_namespace(&h, &s.p1.0, "one").await;
    let (status, up) = upload(&h, &s.p1.1, repack("echo", "one-echo", "1.0.0", None)).await;
    assert_eq!(status, 201, "{up}");
    assert_eq!(up["publisher"], format!("partner:{}", s.p1.0));
    // Partner One and the operator see it; Partner Two does not, even by name.
    let listed = |v: &Value| {
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .any(|p| p["name"] == "one-echo")
    };
    assert!(listed(
        &h.ok(Method::GET, "/api/v1/plugins", &s.p1.1, None).await
    ));
    assert!(listed(
        &h.ok(Method::GET, "/api/v1/plugins", OPERATOR, None).await
    ));
    let two = h.ok(Method::GET, "/api/v1/plugins", &s.p2.1, None).await;
    assert!(!listed(&two), "{two}");
    assert!(
        two["data"]
            .as_array()
            .expect("data")
            .iter()
            .any(|p| p["name"] == "echo"),
        "bundled plugins are everyone's"
    );
    let hidden = h
        .call(Method::GET, "/api/v1/plugins/one-echo", Some(&s.p2.1), None)
        .await;
    assert_error(&hidden, 404, "not_found");
    // Tenants see what they may choose: A (Partner One's) sees it, B (Partner Two's) does not.
    let for_a = h.ok(Method::GET, "/api/v1/plugins", &s.a.1, None).await;
    let one = for_a["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|p| p["name"] == "one-echo")
        .cloned()
        .expect("tenant A sees its partner's plugin");
    assert_eq!(one["usable_by"], format!("tenants of partner {}", s.p1.0));
    assert!(!listed(
        &h.ok(Method::GET, "/api/v1/plugins", &s.b.1, None).await
    ));
    let tenant_upload = upload(&h, &s.a.1, repack("echo", "one-other", "1.0.0", None)).await;
    assert_error(&tenant_upload, 403, "forbidden");
    let promote = h
        .call(
            Method::POST,
            "/api/v1/plugins/one-echo/promote",
            Some(&s.p2.1),
            Some(json!({"version": "1.0.0"})),
        )
        .await;
    assert_error(&promote, 404, "not_found");
    // Tenant A (Partner One's) may choose it; tenant B (Partner Two's) may not.
    let a = h
        .call(
            Method::PUT,
            &format!("/api/v1/tenants/{}/policy", s.a.0),
            Some(&s.a.1),
            Some(json!({"plugin": "one-echo"})),
        )
        .await;
    assert_eq!(a.0, 200, "{}", a.1);
    let b = h
        .call(
            Method::PUT,
            &format!("/api/v1/tenants/{}/policy", s.b.0),
            Some(&s.b.1),
            Some(json!({"plugin": "one-echo"})),
        )
        .await;
    assert_error(&b, 422, "unknown_policy");
    inbound(&h, &s.endpoint, "1001", "wamid.P1", "ping").await;
    assert_eq!(reply(&graph, "1001", 0).await, "ping");
    // Nor may Partner Two's tenant connect through Partner One's connector, even one that
    // makes its own endpoint per connection.
    let (status, _) = upload(&h, &s.p1.1, repack("chaos", "one-chaos", "1.0.0", None)).await;
    assert_eq!(status, 201);
    let connect = h
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{}/connections", s.b.0),
            Some(&s.b.1),
            Some(
                json!({"connector": "one-chaos", "settings": {}, "secrets": {},
                        "consent": {"document_version": "2026-11", "scopes": ["messaging"]}}),
            ),
        )
        .await;
    assert_error(&connect, 422, "unknown_connector");
}

/// Upload on one host, call on the other: both share one PostgreSQL and neither restarts. Host
/// B polls only once a minute: it learns of the upload from PostgreSQL's NOTIFY.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_on_one_host_is_callable_on_another_without_a_restart() {
    let Some(pg) = PgDb::create("an_upload_on_one_host_is_callable_on_another").await else {
        return;
    };
    let (app, owner) = (pg.app_url(), pg.owner_url());
    let graph = Fake::start_with(graph_ok).await;
    let a = Host::start(Db::Postgres(pg), &graph.origin).await;
    let b = Host::start_with(
        Db::Sqlite,
        &graph.origin,
        &[
            "--database-url",
            &app,
            "--database-owner-url",
            &owner,
            "--plugin-poll-ms",
            "60000",
        ],
    )
    .await;
    let s = setup(&a).await;
    let started = std::time::Instant::now();
    let (status, up) = upload(&a, OPERATOR, repack("echo", "fleet-echo", "1.0.0", None)).await;
    assert_eq!(status, 201, "{up}");
    let uploaded = started.elapsed();
    // Host B serves it long before its next poll: the change was announced.
    let mut on_b = Value::Null;
    for _ in 0..200 {
        let (status, v) = b
            .call(
                Method::PUT,
                &format!("/api/v1/tenants/{}/policy", s.a.0),
                Some(&s.a.1),
                Some(json!({"plugin": "fleet-echo"})),
            )
            .await;
        on_b = v;
        if status == 200 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(on_b["plugin"], "fleet-echo", "{on_b}");
    eprintln!(
        "upload answered in {:?}; callable on the other host after {:?}",
        uploaded,
        started.elapsed()
    );
    inbound(&b, &s.endpoint, "1001", "wamid.F1", "hello fleet").await;
    assert_eq!(reply(&graph, "1001", 0).await, "hello fleet");
    drop(b);
}

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// Run the `switchyard` binary; `(success, stdout, stderr)`.
fn cli(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .output()
        .expect("run switchyard");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A version as the operator sees it.
async fn version(h: &Host, name: &str, version: &str) -> Value {
    h.ok(
        Method::GET,
        &format!("/api/v1/plugins/{name}/{version}"),
        OPERATOR,
        None,
    )
    .await
}

/// `SWITCHYARD_REQUIRE_SIGNED`: keys made and components signed with the CLI, registered by the
/// operator; unsigned, unknown-key, tampered and out-of-namespace signatures refused; a revoked
/// key's versions stop loading; an unsigned plugin directory stops the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_components_signed_by_registered_publisher_keys_load_when_required() {
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start_with(Db::Sqlite, &graph.origin, &["--require-signed"]).await;
    let s = setup(&h).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = |name: &str| dir.path().join(name).display().to_string();
    // Keys and signatures through the CLI.
    let (ok, operator_public, err) = cli(&["plugin", "keygen", "--out", &file("operator.key")]);
    assert!(ok, "{err}");
    let operator_public = operator_public.trim().to_string();
    assert!(operator_public.starts_with("ed25519:"), "{operator_public}");
    let mode = std::fs::metadata(file("operator.key"))
        .expect("key")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let (ok, _, err) = cli(&["plugin", "keygen", "--out", &file("operator.key")]);
    assert!(!ok && err.contains("must not exist"), "{err}");
    std::fs::write(
        file("bot.wasm"),
        repack("echo", "signed-bot", "1.0.0", None),
    )
    .expect("write");
    let (ok, out, err) = cli(&[
        "plugin",
        "sign",
        &file("bot.wasm"),
        "--key",
        &file("operator.key"),
        "-o",
        &file("bot.signed.wasm"),
    ]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = cli(&["plugin", "inspect", &file("bot.signed.wasm")]);
    assert!(ok && err.contains("signed by key"), "{out}{err}");
    let manifest: Value = serde_json::from_str(&out).expect("the manifest as JSON");
    assert_eq!(manifest["name"], "signed-bot");
    let signed = std::fs::read(file("bot.signed.wasm")).expect("signed");

    // Unsigned, and signed by a key nobody registered: refused.
    let unsigned = upload(&h, OPERATOR, repack("echo", "signed-bot", "1.0.0", None)).await;
    assert_error(&unsigned, 403, "signature_required");
    let unknown = upload(&h, OPERATOR, signed.clone()).await;
    assert_error(&unknown, 403, "signature_required");
    // Registered: accepted and shown as trusted.
    let key = h
        .ok(
            Method::POST,
            "/api/v1/publisher-keys",
            OPERATOR,
            Some(json!({"publisher": "operator", "public_key": operator_public, "label": "release key"})),
        )
        .await;
    let key_id = key["id"].as_str().expect("id").to_string();
    let again = h
        .call(
            Method::POST,
            "/api/v1/publisher-keys",
            Some(OPERATOR),
            Some(json!({"publisher": "operator", "public_key": key["public_key"]})),
        )
        .await;
    assert_error(&again, 409, "key_exists");
    let partner_try = h
        .call(
            Method::POST,
            "/api/v1/publisher-keys",
            Some(&s.p1.1),
            Some(json!({"publisher": "operator", "public_key": key["public_key"]})),
        )
        .await;
    assert_error(&partner_try, 403, "forbidden");
    // One flipped byte inside the signed part: refused whatever the key.
    let mut tampered = signed.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    let bad = upload(&h, OPERATOR, tampered).await;
    assert_error(&bad, 422, "bad_signature");
    let (status, up) = upload(&h, OPERATOR, signed).await;
    assert_eq!(status, 201, "{up}");
    let v = version(&h, "signed-bot", "1.0.0").await;
    assert_eq!(
        v["signature"],
        json!({"state": "trusted", "key": key_id, "publisher": "operator"})
    );
    assert_eq!(v["loaded"], true);

    // A partner's key signs only its namespace: not `meta-cloud`, whoever uploads it.
    give_namespace(&h, &s.p1.0, "one").await;
    let partner_key = switchyard::runtime::signature::SecretKey::generate().expect("key");
    h.ok(
        Method::POST,
        "/api/v1/publisher-keys",
        OPERATOR,
        Some(json!({"publisher": s.p1.0, "public_key": partner_key.public().to_text()})),
    )
    .await;
    let sign =
        |bytes: Vec<u8>| switchyard::runtime::signature::sign(&bytes, &partner_key).expect("sign");
    let hijack = upload(
        &h,
        OPERATOR,
        sign(repack("meta-cloud", "meta-cloud", "9.9.9", None)),
    )
    .await;
    assert_error(&hijack, 403, "namespace_forbidden");
    let (status, own) = upload(&h, &s.p1.1, sign(repack("echo", "one-bot", "1.0.0", None))).await;
    assert_eq!(status, 201, "{own}");

    // Revoking the operator's key: its version is untrusted and no longer loads.
    let (status, _) = h
        .call(
            Method::DELETE,
            &format!("/api/v1/publisher-keys/{key_id}"),
            Some(OPERATOR),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let v = version(&h, "signed-bot", "1.0.0").await;
    assert_eq!(v["signature"]["state"], "untrusted", "{v}");
    assert_eq!(v["loaded"], false, "{v}");
    assert!(
        v["load_error"]
            .as_str()
            .is_some_and(|e| e.contains("SWITCHYARD_REQUIRE_SIGNED")),
        "{v}"
    );

    // An unsigned component in the plugin directory stops the start, naming it.
    let plugins = tempfile::tempdir().expect("plugins");
    std::fs::write(
        plugins.path().join("dir-bot.wasm"),
        repack("echo", "dir-bot", "1.0.0", None),
    )
    .expect("write");
    let data = tempfile::tempdir().expect("data");
    let cli = switchyard::config::Cli::try_parse_from([
        "switchyard",
        "serve",
        "--data-dir",
        &data.path().display().to_string(),
        "--operator-token",
        OPERATOR,
        "--master-key",
        crate::api::MASTER_KEY,
        "--require-signed",
        "--plugin-dir",
        &plugins.path().display().to_string(),
    ])
    .expect("flags");
    let switchyard::config::Command::Serve(serve) = cli.command else {
        panic!("serve")
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let refused = switchyard::serve(serve.into_config().expect("config"), listener, async {})
        .await
        .expect_err("an unsigned directory plugin must stop the start");
    let why = format!("{refused:#}");
    assert!(
        why.contains("dir-bot.wasm") && why.contains("SWITCHYARD_REQUIRE_SIGNED"),
        "{why}"
    );
}

/// A partner's version reaches only the egress hosts the operator granted to it: before the
/// grant a call fails naming the host; after it the host is reachable (here it does not resolve,
/// which is a different error); a host the manifest does not request cannot be granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partners_egress_host_is_refused_until_the_operator_grants_it() {
    use std::sync::Arc;
    use switchyard::catalog::{Catalog, Publisher};
    use switchyard::runtime::types::{HttpRequest, InboundEvent};
    use switchyard::store::Mode;
    use switchyard::tenancy::Scope;

    let data = tempfile::tempdir().expect("data");
    let store = catalog_store(&data).await;
    let mut tx = store.begin(Scope::Host, Mode::Write).await.expect("begin");
    tx.insert_partner("par_one", "One").await.expect("partner");
    tx.set_partner_namespace("par_one", "one")
        .await
        .expect("namespace");
    tx.commit().await.expect("commit");
    let runtime = bare_runtime();
    let catalog = Catalog::start(
        runtime,
        store.clone(),
        Box::new(|_| Default::default()),
        1 << 20,
        false,
        Vec::new(),
    )
    .await
    .expect("catalog");
    // Chaos, published by Partner One, asking for one host.
    let packed = repack("chaos", "one-chaos", "1.0.0", None);
    let mut manifest = Manifest::from_component(&packed).expect("manifest");
    manifest.egress = vec!["public.example".into()];
    let bytes = manifest
        .embed(&switchyard::runtime::manifest::strip(&packed).expect("strip"))
        .expect("embed");
    let partner = Publisher::Partner {
        id: "par_one".into(),
        namespace: Some("one".into()),
    };
    catalog
        .upload(bytes, &partner, "partner:par_one")
        .await
        .expect("upload");
    let probe = |catalog: Arc<Catalog>| async move {
        let plugin = catalog.connector("one-chaos", None).expect("loaded");
        let events = plugin
            .parse(
                Default::default(),
                &HttpRequest {
                    method: "POST".into(),
                    url: "https://hooks.example/hooks/end_1".into(),
                    headers: Vec::new(),
                    body: b"egress-anon https://public.example/x".to_vec(),
                },
                None,
            )
            .await
            .expect("call")
            .expect("parse");
        match events.as_slice() {
            [InboundEvent::Ignored(outcome)] => outcome.clone(),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(
        probe(catalog.clone()).await,
        "error EgressError::HostNotAllowed(\"public.example\")"
    );
    let info = catalog.list(switchyard::catalog::Viewer::Operator);
    let v = &info
        .iter()
        .find(|p| p.name == "one-chaos")
        .expect("listed")
        .versions[0];
    assert_eq!(
        (v.egress_requested.clone(), v.egress_granted.clone()),
        (vec!["public.example".to_string()], vec![])
    );
    let refused = catalog
        .grant("one-chaos", "1.0.0", &["evil.example".into()], "operator")
        .await
        .expect_err("not requested");
    assert_eq!(refused.code(), "host_not_requested");
    catalog
        .grant("one-chaos", "1.0.0", &["public.example".into()], "operator")
        .await
        .expect("grant");
    let after = probe(catalog.clone()).await;
    assert!(
        after.starts_with("error") && !after.contains("HostNotAllowed"),
        "granted: the host is tried (and does not resolve here): {after}"
    );
    let info = catalog.list(switchyard::catalog::Viewer::Operator);
    let v = &info
        .iter()
        .find(|p| p.name == "one-chaos")
        .expect("listed")
        .versions[0];
    assert_eq!(v.egress_granted, vec!["public.example".to_string()]);
    // Deleted and uploaded again with other bytes under the same version: no grant carries over.
    catalog.delete("one-chaos", "1.0.0").await.expect("delete");
    let mut other = manifest.clone();
    other.credentials = vec!["public.example".into()];
    let bytes = other
        .embed(&switchyard::runtime::manifest::strip(&packed).expect("strip"))
        .expect("embed");
    catalog
        .upload(bytes, &partner, "partner:par_one")
        .await
        .expect("upload again");
    assert_eq!(
        probe(catalog.clone()).await,
        "error EgressError::HostNotAllowed(\"public.example\")"
    );
    let info = catalog.list(switchyard::catalog::Viewer::Operator);
    let v = &info
        .iter()
        .find(|p| p.name == "one-chaos")
        .expect("listed")
        .versions[0];
    assert_eq!(v.credentials_requested, vec!["public.example".to_string()]);
    assert!(v.egress_granted.is_empty());
}

/// Istio's failure policy made a roll back: a promoted version whose calls fault past its
/// name's policy is rolled back by the host itself, the record says why, and every message of
/// the window is answered afterwards by the restored version (the failed jobs were retried).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_faulting_promoted_version_is_rolled_back_by_itself_and_nothing_is_lost() {
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start_with(Db::Sqlite, &graph.origin, &["--plugin-poll-ms", "100"]).await;
    let s = setup(&h).await;
    let (status, _) = upload(&h, OPERATOR, repack("echo", "shop-bot", "1.0.0", None)).await;
    assert_eq!(status, 201);
    // 2.0.0 spins in every decide until the CPU deadline stops it.
    let (status, _) = upload(
        &h,
        OPERATOR,
        repack("busy-policy", "shop-bot", "2.0.0", None),
    )
    .await;
    assert_eq!(status, 201);
    let bad_policy = h
        .call(
            Method::PUT,
            "/api/v1/plugins/shop-bot/failure-policy",
            Some(OPERATOR),
            Some(json!({"auto_rollback": true, "max_fault_pct": 0, "min_calls": 3, "window_secs": 30})),
        )
        .await;
    assert_error(&bad_policy, 422, "invalid_failure_policy");
    let p = h
        .ok(
            Method::PUT,
            "/api/v1/plugins/shop-bot/failure-policy",
            OPERATOR,
            Some(json!({"auto_rollback": true, "max_fault_pct": 50, "min_calls": 3, "window_secs": 30})),
        )
        .await;
    assert_eq!(p["failure_policy"]["min_calls"], 3);
    h.ok(
        Method::PUT,
        &format!("/api/v1/tenants/{}/policy", s.a.0),
        &s.a.1,
        Some(json!({"plugin": "shop-bot"})),
    )
    .await;
    h.ok(
        Method::POST,
        "/api/v1/plugins/shop-bot/promote",
        OPERATOR,
        Some(json!({"version": "2.0.0"})),
    )
    .await;
    let texts: Vec<String> = (0..6).map(|i| format!("question {i}")).collect();
    for (i, text) in texts.iter().enumerate() {
        inbound(&h, &s.endpoint, "1001", &format!("wamid.R{i}"), text).await;
    }
    let mut info = Value::Null;
    for _ in 0..600 {
        info = plugin(&h, "shop-bot").await;
        if info["promoted"] == "1.0.0" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(info["promoted"], "1.0.0", "{info}");
    let reason = info["promoted_reason"].as_str().expect("reason");
    assert!(
        reason.starts_with("rolled back automatically:") && reason.contains("of 2.0.0 failed"),
        "{reason}"
    );
    // Every message of the window is answered by 1.0.0 once its job is retried.
    let mut answered = Vec::new();
    for n in 0..texts.len() {
        answered.push(reply(&graph, "1001", n).await);
    }
    answered.sort();
    assert_eq!(answered, texts);
    // The faulty version can go; a roll back never targets a version that is not loaded.
    let (status, _) = h
        .call(
            Method::DELETE,
            "/api/v1/plugins/shop-bot/2.0.0",
            Some(OPERATOR),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let info = plugin(&h, "shop-bot").await;
    assert_eq!(info["promoted"], "1.0.0", "{info}");
}

/// With `SWITCHYARD_REQUIRE_SIGNED`, a plugin-directory component is judged again on every
/// reload: revoking its key unloads it on every host without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_directory_plugin_whose_key_is_revoked_stops_loading() {
    use switchyard::catalog::{Catalog, LocalPlugin};
    use switchyard::runtime::signature::{self, SecretKey};

    let data = tempfile::tempdir().expect("data");
    let store = catalog_store(&data).await;
    let runtime = bare_runtime();
    let key = SecretKey::generate().expect("key");
    let signed = signature::sign(&repack("echo", "dir-echo", "1.0.0", None), &key).expect("sign");
    let plugin = runtime.load(&signed, Vec::new()).expect("load");
    let local = vec![LocalPlugin {
        plugin,
        directory_signer: Some(signature::signer(&signed).expect("verifies")),
    }];
    // Trusted when the host starts.
    let boot = Catalog::start(
        bare_runtime(),
        store.clone(),
        Box::new(|_| Default::default()),
        1 << 20,
        true,
        Vec::new(),
    )
    .await
    .expect("catalog");
    let registered = boot
        .add_key("operator", &key.public(), None)
        .await
        .expect("register");
    let catalog = Catalog::start(
        runtime,
        store.clone(),
        Box::new(|_| Default::default()),
        1 << 20,
        true,
        local,
    )
    .await
    .expect("catalog");
    assert!(
        catalog.policy("dir-echo", "ten_1").is_some(),
        "trusted at start"
    );
    // Revoked (through another host): this one unloads it at its next reload.
    boot.revoke_key(&registered.id).await.expect("revoke");
    catalog.reload().await.expect("reload");
    assert!(
        catalog.policy("dir-echo", "ten_1").is_none(),
        "no longer trusted, no longer callable"
    );
}

/// A partner keeps at most `MAX_PARTNER_VERSIONS` uploaded versions; the next is refused until
/// it deletes one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partner_stores_a_bounded_number_of_versions() {
    let graph = Fake::start_with(graph_ok).await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    give_namespace(&h, &s.p1.0, "one").await;
    let max = switchyard::catalog::MAX_PARTNER_VERSIONS;
    for n in 0..max {
        let (status, v) = upload(
            &h,
            &s.p1.1,
            repack("echo", "one-echo", &format!("1.0.{n}"), None),
        )
        .await;
        assert_eq!(status, 201, "version {n}: {v}");
    }
    let over = upload(&h, &s.p1.1, repack("echo", "one-echo", "2.0.0", None)).await;
    assert_error(&over, 403, "upload_quota");
    // One deleted (not the promoted first one): room for one more.
    let (status, _) = h
        .call(
            Method::DELETE,
            "/api/v1/plugins/one-echo/1.0.7",
            Some(&s.p1.1),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, v) = upload(&h, &s.p1.1, repack("echo", "one-echo", "2.0.0", None)).await;
    assert_eq!(status, 201, "{v}");
    // The operator is not a partner: no such bound.
    let (status, _) = upload(&h, OPERATOR, repack("echo", "op-echo", "1.0.0", None)).await;
    assert_eq!(status, 201);
}
