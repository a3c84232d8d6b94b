//! From an empty directory to a connector answering on a running host, the way the guide
//! (docs/plugin-authors.md) tells an author: `switchyard plugin new` scaffolds a crate on the
//! SDK, its own tests pass with plain `cargo test`, `switchyard plugin build` packs it, the
//! operator uploads it, a tenant connects it against a fake provider over HTTP, and a signed
//! webhook gets the echo policy's reply through it.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Db, Host, OPERATOR, graph_ok, setup};
use crate::fake::{Fake, Received};
use crate::ingress::drained;

/// A target directory kept between runs: the SDK and its dependencies build once.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffolded")
}

fn cargo_test(dir: &Path) -> String {
    let out =
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["test", "--offline"])
            .current_dir(dir)
            .env("CARGO_TARGET_DIR", target_dir())
            .output()
            .expect("cargo test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the scaffolded crate's tests failed:\n{text}"
    );
    text
}

#[test]
fn a_scaffolded_policy_builds_packs_and_passes_its_tests() {
    let dir = tempfile::tempdir().expect("dir");
    let crate_dir = dir.path().join("my-policy");
    let sdk = switchyard::authoring::default_sdk().expect("plugins/sdk");
    switchyard::authoring::new_plugin(
        "my-policy",
        switchyard::runtime::World::ReplyPolicy,
        &crate_dir,
        &sdk,
    )
    .expect("new");
    let out = cargo_test(&crate_dir);
    assert!(out.contains("1 passed"), "{out}");
    let built = switchyard::authoring::build_plugin(
        &crate_dir.join("Cargo.toml"),
        None,
        Some(&target_dir()),
    )
    .expect("build");
    assert_eq!(built.manifest.interface, "switchyard:plugin@0.3.0");
    let bytes = std::fs::read(&built.path).expect("packed");
    let manifest = switchyard::runtime::Manifest::from_component(&bytes).expect("manifest");
    assert_eq!(manifest.world, switchyard::runtime::World::ReplyPolicy);
    // A second scaffold into the same place is refused rather than overwriting work.
    assert!(
        switchyard::authoring::new_plugin(
            "my-policy",
            switchyard::runtime::World::ReplyPolicy,
            &crate_dir,
            &sdk
        )
        .is_err()
    );
}

/// The provider the scaffolded connector talks to as generated.
async fn provider() -> Fake {
    Fake::start_with(|r: &Received| {
        let authorized =
            r.headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer key-1");
        if !authorized {
            return (401, json!({"error": "bad key"}).to_string());
        }
        match (r.method.as_str(), r.path.as_str()) {
            ("GET", "/v1/me") => (200, json!({"address": "shop-1"}).to_string()),
            ("POST", "/v1/messages") => (200, json!({"id": "out-1"}).to_string()),
            _ => (404, json!({"error": "no such route"}).to_string()),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scaffolded_connector_goes_from_an_empty_directory_to_a_reply_on_a_running_host() {
    let dir = tempfile::tempdir().expect("dir");
    let crate_dir = dir.path().join("acme-chat");
    let sdk = switchyard::authoring::default_sdk().expect("plugins/sdk");
    switchyard::authoring::new_plugin(
        "acme-chat",
        switchyard::runtime::World::Connector,
        &crate_dir,
        &sdk,
    )
    .expect("new");
    let out = tokio::task::spawn_blocking({
        let crate_dir = crate_dir.clone();
        move || cargo_test(&crate_dir)
    })
    .await
    .expect("join");
    assert!(out.contains("3 passed"), "{out}");
    let built = tokio::task::spawn_blocking({
        let crate_dir = crate_dir.clone();
        move || {
            switchyard::authoring::build_plugin(
                &crate_dir.join("Cargo.toml"),
                None,
                Some(&target_dir()),
            )
        }
    })
    .await
    .expect("join")
    .expect("build");

    let graph = Fake::start_with(graph_ok).await;
    let api = provider().await;
    let api_urls = format!("acme-chat={}", api.origin);
    let h = Host::start_with(Db::Sqlite, &graph.origin, &["--api-urls", &api_urls]).await;
    let s = setup(&h).await;
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/plugins", h.base))
        .bearer_auth(OPERATOR)
        .header("content-type", "application/wasm")
        .body(std::fs::read(&built.path).expect("packed"))
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());

    let path = format!("/api/v1/tenants/{}/connections", s.a.0);
    let c = h
        .ok(
            Method::POST,
            &path,
            &s.a.1,
            Some(json!({
                "connector": "acme-chat",
                "settings": {"address": "shop-1"},
                "secrets": {"api_key": "key-1", "webhook_secret": "whsec-1"},
                "consent": {"document_version": "2026-11"}
            })),
        )
        .await;
    assert_eq!(c["status"], "live", "{c}");
    h.ok(
        Method::PUT,
        &format!("/api/v1/tenants/{}/policy", s.a.0),
        &s.a.1,
        Some(json!({"plugin": "echo"})),
    )
    .await;

    let body = json!({"id": "m1", "from": "ada", "to": "shop-1", "text": "hi there", "timestamp": 1_700_000_000})
        .to_string();
    let sig = {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"whsec-1").expect("key");
        mac.update(body.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let endpoint = c["endpoint_id"].as_str().expect("endpoint");
    let posted = reqwest::Client::new()
        .post(format!("{}/hooks/{endpoint}", h.base))
        .header("content-type", "application/json")
        .header("x-signature", format!("sha256={sig}"))
        .body(body)
        .send()
        .await
        .expect("webhook");
    assert_eq!(posted.status(), 200);
    drained(&h).await;
    let sends: Vec<Value> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| serde_json::from_slice(&r.body).expect("json"))
        .collect();
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(sends[0]["to"], "ada");
    assert_eq!(sends[0]["text"], "hi there");
    assert_eq!(sends[0]["from"], "shop-1");
}
