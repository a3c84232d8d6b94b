//! The real `switchyard` binary: start, health, plugin directory, graceful shutdown.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

struct Server {
    child: Child,
    addr: String,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn command(data_dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .env_clear()
        .env("SWITCHYARD_DATA_DIR", data_dir)
        .env("SWITCHYARD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Start the binary and wait until it logs that it is listening.
fn start(mut cmd: Command) -> Server {
    let preset = cmd
        .get_envs()
        .find(|(k, _)| *k == "SWITCHYARD_LISTEN")
        .and_then(|(_, v)| v)
        .map(|v| v.to_string_lossy().into_owned());
    let addr = preset.unwrap_or_else(|| format!("127.0.0.1:{}", free_port()));
    cmd.env("SWITCHYARD_LISTEN", &addr);
    let mut child = cmd.spawn().expect("spawn switchyard");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let server = Server {
        child,
        addr,
        stderr: rx,
    };
    server.wait_for_line("switchyard listening", Duration::from_secs(120));
    server
}

impl Server {
    fn wait_for_line(&self, needle: &str, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match self.stderr.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    seen.push(line);
                    if hit {
                        return seen;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    panic!(
                        "never saw {needle:?}: the process closed stderr (it exited); output:\n{}",
                        seen.join("\n")
                    )
                }
            }
        }
        panic!(
            "never saw {needle:?} within {limit:?}; output:\n{}",
            seen.join("\n")
        );
    }

    fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let url = format!("http://{}{path}", self.addr);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            let resp = reqwest::get(&url).await.expect("request");
            let status = resp.status().as_u16();
            (status, resp.json().await.unwrap_or(serde_json::Value::Null))
        })
    }
}

#[test]
fn serve_answers_health_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start(command(dir.path()));
    let (status, body) = server.get("/healthz");
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["plugins"], switchyard::bundled::BUNDLED.len());
    assert!(
        dir.path().join("switchyard.db").exists(),
        "SQLite database created"
    );

    let pid = server.child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    server.wait_for_line("switchyard stopped", Duration::from_secs(30));
    let mut server = server;
    let exit = server.child.wait().expect("wait");
    assert!(exit.success(), "graceful shutdown exits 0: {exit:?}");
}

#[test]
fn serve_loads_plugins_from_the_plugin_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    let chaos = switchyard::bundled::testing_plugin("chaos").expect("chaos");
    std::fs::copy(chaos, plugins.join("chaos.wasm")).expect("copy");
    let mut cmd = command(dir.path());
    cmd.env("SWITCHYARD_PLUGIN_DIR", &plugins);
    let server = start(cmd);
    let (status, body) = server.get("/healthz");
    assert_eq!(status, 200);
    assert_eq!(body["plugins"], switchyard::bundled::BUNDLED.len() + 1);
    // The compiled code was cached under the data directory.
    let cached = std::fs::read_dir(dir.path().join("cache"))
        .expect("cache")
        .count();
    assert_eq!(cached, switchyard::bundled::BUNDLED.len() + 1);
}

#[test]
fn serve_refuses_an_invalid_plugin_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("mkdir");
    std::fs::write(plugins.join("broken.wasm"), b"\0asm\x0d\x00\x01\x00").expect("write");
    let out = command(dir.path())
        .env("SWITCHYARD_PLUGIN_DIR", &plugins)
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{}", free_port()))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("switchyard: plugin "), "{stderr}");
    assert!(
        last.contains("broken.wasm") && last.contains("switchyard plugin pack"),
        "{last}"
    );
}

#[test]
fn help_explains_every_setting() {
    let out = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "SWITCHYARD_LISTEN",
        "SWITCHYARD_DATABASE_URL",
        "SWITCHYARD_DATA_DIR",
        "SWITCHYARD_PLUGIN_DIR",
        "SWITCHYARD_PLUGIN_MEMORY_MIB",
        "SWITCHYARD_PLUGIN_CPU_MS",
    ] {
        assert!(help.contains(var), "--help names {var}");
    }
}

#[test]
fn plugin_pack_and_inspect_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chaos =
        std::fs::read(switchyard::bundled::testing_plugin("chaos").expect("chaos")).expect("read");
    let raw = switchyard::runtime::manifest::strip(&chaos).expect("strip");
    let raw_path = dir.path().join("raw.wasm");
    std::fs::write(&raw_path, raw).expect("write");
    let packed = dir.path().join("packed.wasm");
    let out = Command::new(BIN)
        .args(["plugin", "pack"])
        .arg(&raw_path)
        .args([
            "--name",
            "partner-chat",
            "--version",
            "1.2.3",
            "--world",
            "connector",
        ])
        .args(["--egress-host", "api.partner.example", "-o"])
        .arg(&packed)
        .output()
        .expect("pack");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .args(["plugin", "inspect"])
        .arg(&packed)
        .output()
        .expect("inspect");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(manifest["name"], "partner-chat");
    assert_eq!(manifest["egress"][0], "api.partner.example");
}

/// `switchyard doctor` with `serve`'s settings (issue 19, item 5): before the host runs it names
/// what to fix offline (a public URL providers cannot reach, demo credentials) and exits 1; with
/// the host running it also finds it ready, its plugins loaded and each endpoint's route
/// reaching ingress.
#[test]
fn doctor_names_what_to_fix_offline_and_against_the_running_host() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = format!("127.0.0.1:{}", free_port());
    let doctor = || {
        let out = Command::new(BIN)
            .arg("doctor")
            .env_clear()
            .env("SWITCHYARD_DATA_DIR", dir.path())
            .env("SWITCHYARD_LISTEN", &addr)
            .env("SWITCHYARD_PUBLIC_URL", format!("http://{addr}"))
            .output()
            .expect("doctor");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = doctor();
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FAIL  public URL"), "{text}");
    assert!(text.contains("fix: set SWITCHYARD_PUBLIC_URL"), "{text}");
    assert!(
        text.contains("warn  master key") && text.contains("demo mode"),
        "{text}"
    );
    assert!(text.contains("warn  mail"), "{text}");
    assert!(
        !dir.path().join("operator-token").exists(),
        "doctor generates nothing"
    );

    let mut cmd = command(dir.path());
    cmd.env("SWITCHYARD_LISTEN", &addr)
        .env("SWITCHYARD_PUBLIC_URL", format!("http://{addr}"));
    let server = start(cmd);
    let token = std::fs::read_to_string(dir.path().join("operator-token")).expect("token");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let endpoint = rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("http://{}/api/v1/endpoints", server.addr))
            .bearer_auth(token.trim())
            .json(
                &serde_json::json!({"connector": "meta-cloud", "settings": {"app_id": "1"},
                                      "secrets": {"app_secret": "s", "verify_token": "v"}}),
            )
            .send()
            .await
            .expect("endpoint");
        assert_eq!(r.status(), 201);
        r.json::<serde_json::Value>().await.expect("json")["id"]
            .as_str()
            .expect("id")
            .to_string()
    });
    let (code, text) = doctor();
    assert_eq!(code, Some(1), "the loopback public URL still fails: {text}");
    assert!(
        text.contains(&format!("ok    host             http://{addr} is ready")),
        "{text}"
    );
    assert!(
        text.contains(&format!("ok    route {endpoint}")) && text.contains("reaches ingress"),
        "{text}"
    );
    assert!(
        text.contains("ok    sealed secrets   1 data keys, all under version"),
        "{text}"
    );
    assert!(text.contains("ok    plugins"), "{text}");
    assert!(
        text.contains("ok    database") && text.contains("migrations applied"),
        "{text}"
    );
    assert!(!text.contains(token.trim()), "the token is never printed");
}

/// With `SWITCHYARD_OTLP_ENDPOINT` set, a webhook and every job it leads to (processing, the
/// policy's decision, the send) are one trace at the collector (issue 19, item 3): the trace
/// context is stored with each job and continued by the worker that runs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_the_webhook_through_its_jobs_to_the_send() {
    use serde_json::{Value, json};
    let collector = crate::fake::Fake::start(200, "{}").await;
    let graph = crate::ingress::graph_that_sends().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = command(dir.path());
    cmd.env(
        "SWITCHYARD_OTLP_ENDPOINT",
        format!("{}/v1/traces", collector.origin),
    )
    .env("SWITCHYARD_OTLP_PROTOCOL", "http/json")
    .env("OTEL_BSP_SCHEDULE_DELAY", "200")
    .env("SWITCHYARD_META_GRAPH_URL", &graph.origin)
    .env("SWITCHYARD_OPERATOR_TOKEN", crate::api::OPERATOR)
    .env("SWITCHYARD_MASTER_KEY", crate::api::MASTER_KEY);
    let server = start(cmd);
    let api = crate::api::Api::new(&format!("http://{}", server.addr));
    let s = crate::api::setup(&api).await;
    api.ok(
        reqwest::Method::PUT,
        &format!("/api/v1/tenants/{}/policy", s.a.0),
        &s.a.1,
        Some(json!({"plugin": "echo"})),
    )
    .await;
    let body = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "1001"},
            "contacts": [{"profile": {"name": "Trace Person"}, "wa_id": "16505550042"}],
            "messages": [{"from": "16505550042", "id": "wamid.TRACE1",
                          "timestamp": crate::ingress::now_s().to_string(), "type": "text", "text": {"body": "trace me"}}]
        }}]}]
    })
    .to_string();
    let r = reqwest::Client::new()
        .post(format!("http://{}/hooks/{}", server.addr, s.endpoint))
        .header(
            "x-hub-signature-256",
            crate::ingress::sign("app-secret-1", body.as_bytes()),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("webhook");
    assert_eq!(r.status(), 200);

    // Every span the collector got: (trace id, name, attributes).
    let spans = || -> Vec<(String, String, Value)> {
        collector
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/traces")
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .flat_map(|doc| {
                let mut out = Vec::new();
                for rs in doc["resourceSpans"].as_array().cloned().unwrap_or_default() {
                    for ss in rs["scopeSpans"].as_array().cloned().unwrap_or_default() {
                        for sp in ss["spans"].as_array().cloned().unwrap_or_default() {
                            let attrs: serde_json::Map<String, Value> = sp["attributes"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|a| {
                                    Some((
                                        a["key"].as_str()?.to_string(),
                                        a["value"]["stringValue"].clone(),
                                    ))
                                })
                                .collect();
                            out.push((
                                sp["traceId"].as_str().unwrap_or_default().to_string(),
                                sp["name"].as_str().unwrap_or_default().to_string(),
                                Value::Object(attrs),
                            ));
                        }
                    }
                }
                out
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let (trace, kinds) = loop {
        let all = spans();
        let webhook = all
            .iter()
            .find(|(_, name, a)| name == "webhook" && a["outcome"] == "accepted");
        if let Some((trace, _, _)) = webhook {
            let kinds: Vec<String> = all
                .iter()
                .filter(|(t, name, _)| t == trace && name == "job")
                .filter_map(|(_, _, a)| a["kind"].as_str().map(str::to_string))
                .collect();
            if kinds.iter().any(|k| k == "send") {
                break (trace.clone(), kinds);
            }
        }
        assert!(
            Instant::now() < deadline,
            "no trace from webhook to send; spans: {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(trace.len(), 32, "{trace}");
    for kind in ["process-receipt", "decide", "send"] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} not in the trace: {kinds:?}"
        );
    }
    assert_eq!(
        graph
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/messages"))
            .count(),
        1,
        "the echo went out once"
    );
    // Nothing secret went to the collector.
    for r in collector.requests() {
        let text = String::from_utf8_lossy(&r.body);
        for secret in [crate::api::OPERATOR, "app-secret-1", "token-a", "trace me"] {
            assert!(!text.contains(secret), "{secret} exported");
        }
    }
}
