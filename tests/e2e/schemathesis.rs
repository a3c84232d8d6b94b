//! Schemathesis (PyPI) against the real host, with every check, once for each kind of key: the
//! operator's token, a partner's key and a tenant's key, each against a fresh host of its own
//! (a run may suspend or delete its tenant, or revoke its own key, and must not spoil another's).
//! Whatever schemathesis finds fails the test with its report: a server error, a response the
//! document does not describe, a schema-valid request refused or a schema-violating one taken.
//!
//! The few documented refusals that no schema can state are told to schemathesis per operation
//! in `schemathesis.toml` beside this file. `st` is found at
//! `$HOME/.cache/switchyard-schemathesis/bin/st` (where .ci/run installs it) or at
//! `$SWITCHYARD_SCHEMATHESIS`; without it the test skips loudly, and fails under `CI=true`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::api::{Host, OPERATOR};
use crate::fake::{Fake, Received};

/// Fixed, so a failure can be replayed (`st run … --seed 1`).
const SEED: &str = "1";
/// Examples per operation and phase: enough to find a missing constraint, few enough for CI.
const MAX_EXAMPLES: &str = "10";
/// Each run stops by then whatever it has left (seconds); three runs stay well under 6 minutes.
const MAX_TIME: &str = "60";

/// Where `st` is: `$SWITCHYARD_SCHEMATHESIS`, else .ci/run's virtualenv under `$HOME/.cache`.
fn st_path() -> PathBuf {
    match std::env::var_os("SWITCHYARD_SCHEMATHESIS") {
        Some(p) => PathBuf::from(p),
        None => {
            let home = std::env::var_os("HOME").map_or(PathBuf::from("/root"), PathBuf::from);
            home.join(".cache/switchyard-schemathesis/bin/st")
        }
    }
}

/// Twilio's Senders API for any account: one online sender, no next page.
fn twilio_senders(r: &Received) -> (u16, String) {
    if r.method == "GET" && r.path.starts_with("/v2/Channels/Senders") {
        let sender = crate::onboarding::twilio_sender(1, "ONLINE", "Shop");
        return (
            200,
            json!({"senders": [sender], "meta": {"next_page_url": null}}).to_string(),
        );
    }
    (404, json!({"code": 20404, "status": 404}).to_string())
}

/// A fresh host (its Graph API and Twilio fakes beside it) and the key `who` names on it.
async fn host_and_key(who: &str) -> (Host, Fake, Fake, String) {
    let (h, graph, twilio) = crate::onboarding::host_with_twilio(twilio_senders).await;
    let key_of = |v: serde_json::Value| v["api_key"].as_str().expect("api_key").to_string();
    let key = match who {
        "operator" => OPERATOR.to_string(),
        _ => {
            let partner = json!({"name": "Schemathesis Partner"});
            let partner = key_of(
                h.ok(Method::POST, "/api/v1/partners", OPERATOR, Some(partner))
                    .await,
            );
            if who == "partner" {
                partner
            } else {
                let tenant = json!({"name": "Schemathesis Tenant"});
                key_of(
                    h.ok(Method::POST, "/api/v1/tenants", &partner, Some(tenant))
                        .await,
                )
            }
        }
    };
    (h, graph, twilio, key)
}

/// Runs `st` with every check against a fresh host with `who`'s key; its report on failure.
async fn run(st: PathBuf, who: &'static str) -> Result<Duration, String> {
    let (h, _graph, _twilio, key) = host_and_key(who).await;
    let here = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e");
    // Its own directory: schemathesis and hypothesis keep state in the working directory, and
    // an example found by an earlier run must not change what this one tries.
    let cwd = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(&st);
    cmd.current_dir(cwd.path())
        .env(
            "SCHEMATHESIS_HOOKS",
            format!("{here}/schemathesis_hooks.py"),
        )
        .env("NO_COLOR", "1")
        .arg("--config-file")
        .arg(format!("{here}/schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", h.base))
        .args([
            "--checks",
            "all",
            "--seed",
            SEED,
            "--max-examples",
            MAX_EXAMPLES,
        ])
        .args(["--max-time", MAX_TIME, "--request-timeout", "10"])
        .args(["-H", &format!("Authorization: Bearer {key}")]);
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", st.display()));
    let took = started.elapsed();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    drop(h);
    if out.status.success() {
        Ok(took)
    } else {
        Err(format!(
            "schemathesis with the {who} key ({:?}, {took:?}):\n{report}",
            out.status
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_with_operator_partner_and_tenant_keys() {
    let st = st_path();
    if !st.is_file() {
        let what = format!("schemathesis test: {} is missing", st.display());
        let ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
        assert!(!ci, "{what}: .ci/run must install schemathesis");
        let loud = format!(
            "\n*** SKIPPED: {what} (python3 -m venv ~/.cache/switchyard-schemathesis && \
             ~/.cache/switchyard-schemathesis/bin/pip install schemathesis, or set \
             SWITCHYARD_SCHEMATHESIS)\n"
        );
        let _ = std::io::stderr().write_all(loud.as_bytes()); // Not captured, unlike eprintln!.
        return;
    }
    // One after another: the machines have 2 cores, and other tests run beside this one.
    let mut failures = Vec::new();
    for who in ["operator", "partner", "tenant"] {
        match run(st.clone(), who).await {
            Ok(took) => eprintln!("schemathesis, {who} key: nothing found in {took:?}"),
            Err(report) => failures.push(report),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
