//! The sandbox: real components under the real runtime, hostile ones included.

use std::sync::Arc;
use std::time::Duration;

use switchyard::egress::EgressClient;
use switchyard::runtime::types::{
    Action, Content, ConversationContext, HttpRequest, InboundEvent, InboundMessage, MessageKind,
    Party, Verdict,
};
use switchyard::runtime::{
    CallError, ConnectorPlugin, LoadError, Manifest, Plugin, PolicyPlugin, Runtime, RuntimeConfig,
    Services, World,
};
use switchyard::vault::{SecretName, SecretScope, StaticSecrets};

use crate::fake::Fake;

const CANARY: &str = "canary-token-7f3a9c";

fn runtime(config: RuntimeConfig) -> Runtime {
    let secrets = StaticSecrets::new()
        .with("end_1", SecretName::AppSecret, "app-secret")
        .with("end_1", SecretName::VerifyToken, "verify-me")
        .with("con_1", SecretName::AccessToken, CANARY);
    Runtime::new(
        config,
        Services {
            secrets: Arc::new(secrets),
            egress: EgressClient::new(Duration::from_secs(5), 1 << 20).expect("egress"),
        },
    )
    .expect("runtime")
}

fn limits() -> RuntimeConfig {
    RuntimeConfig {
        cpu_limit: Duration::from_millis(50),
        memory_bytes: 16 << 20,
        max_instances: 64,
        ..RuntimeConfig::default()
    }
}

fn chaos_bytes() -> Vec<u8> {
    let path = switchyard::bundled::testing_plugin("chaos").expect("chaos plugin built");
    std::fs::read(path).expect("read chaos")
}

fn bundled(name: &str) -> &'static [u8] {
    switchyard::bundled::plugin(name).expect("bundled plugin")
}

fn chaos(rt: &Runtime, origins: Vec<String>) -> Arc<ConnectorPlugin> {
    match rt.load(&chaos_bytes(), origins).expect("load chaos") {
        Plugin::Connector(c) => c,
        Plugin::Policy(_) => panic!("chaos is a connector"),
    }
}

fn echo(rt: &Runtime) -> Arc<PolicyPlugin> {
    match rt.load(bundled("echo"), Vec::new()).expect("load echo") {
        Plugin::Policy(p) => p,
        Plugin::Connector(_) => panic!("echo is a policy"),
    }
}

fn post(body: &str) -> HttpRequest {
    HttpRequest {
        method: "POST".into(),
        url: "https://hooks.example/hooks/end_1".into(),
        headers: vec![("content-type".into(), "text/plain".into())],
        body: body.as_bytes().to_vec(),
    }
}

fn scope() -> SecretScope {
    SecretScope {
        endpoint: Some("end_1".into()),
        connection: Some("con_1".into()),
        account_id: None,
        loaded: None,
    }
}

/// A normal call succeeds and returns the parsed message.
async fn assert_serves(plugin: &ConnectorPlugin, text: &str) {
    let events = plugin
        .parse(scope(), &post(&format!("ok {text}")))
        .await
        .expect("call succeeds")
        .expect("parse succeeds");
    match events.as_slice() {
        [InboundEvent::Message(m)] => assert_eq!(m.text.as_deref(), Some(text)),
        other => panic!("unexpected events {other:?}"),
    }
}

async fn parse_err(plugin: &ConnectorPlugin, body: &str) -> CallError {
    plugin
        .parse(scope(), &post(body))
        .await
        .expect_err("hostile call must fail")
}

#[tokio::test]
async fn infinite_loop_is_stopped_at_the_cpu_deadline() {
    let rt = runtime(limits());
    let plugin = chaos(&rt, Vec::new());
    let err = parse_err(&plugin, "loop").await;
    assert!(
        matches!(&err, CallError::Timeout { plugin, limit_ms: 50 } if plugin == "chaos@0.1.0"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "chaos@0.1.0: exceeded its CPU deadline of 50 ms"
    );
    assert_serves(&plugin, "after the loop").await;
}

#[tokio::test]
async fn memory_bomb_is_stopped_at_the_cap() {
    let rt = runtime(limits());
    let plugin = chaos(&rt, Vec::new());
    let err = parse_err(&plugin, "hog").await;
    assert!(
        matches!(&err, CallError::OutOfMemory { limit_mib: 16, .. }),
        "{err:?}"
    );
    assert_serves(&plugin, "after the hog").await;
}

#[tokio::test]
async fn traps_and_panics_surface_as_errors() {
    let rt = runtime(limits());
    let plugin = chaos(&rt, Vec::new());
    let err = parse_err(&plugin, "trap").await;
    assert!(
        matches!(&err, CallError::Trap { reason, .. } if reason.contains("unreachable")),
        "{err:?}"
    );
    let err = parse_err(&plugin, "panic").await;
    assert!(
        matches!(&err, CallError::Trap { reason, .. } if reason.contains("chaos asked to panic")),
        "the panic message reaches the error: {err:?}"
    );
    assert_serves(&plugin, "after the trap").await;
}

#[tokio::test]
async fn egress_to_an_undeclared_host_is_refused() {
    let rt = runtime(limits());
    let fake = Fake::start(200, "should never be reached").await;
    // chaos declares only `allowed.example`; the fake's origin is not granted.
    let plugin = chaos(&rt, Vec::new());
    for (url, host) in [
        (format!("{}/steal", fake.origin), "127.0.0.1"),
        ("https://evil.example/steal".to_string(), "evil.example"),
    ] {
        let events = plugin
            .parse(scope(), &post(&format!("egress {url}")))
            .await
            .expect("call")
            .expect("parse");
        match events.as_slice() {
            [InboundEvent::Ignored(outcome)] => {
                assert_eq!(
                    outcome,
                    &format!("error EgressError::HostNotAllowed({host:?})")
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(fake.requests().is_empty(), "nothing left the host");
    assert_serves(&plugin, "after egress").await;
}

#[tokio::test]
async fn granted_egress_gets_the_credential_and_never_shows_it_to_the_plugin() {
    let rt = runtime(limits());
    // The provider echoes the token back, as Twilio's account endpoint does with auth_token.
    let fake = Fake::start(200, "{\"token\":\"canary-token-7f3a9c\"}").await;
    let plugin = chaos(&rt, vec![fake.origin.clone()]);
    let events = plugin
        .parse(scope(), &post(&format!("egress {}/v1/me", fake.origin)))
        .await
        .expect("call")
        .expect("parse");
    match events.as_slice() {
        [InboundEvent::Ignored(outcome)] => {
            assert_eq!(outcome, "status 200 {\"token\":\"[redacted]\"}");
            assert!(!outcome.contains(CANARY));
        }
        other => panic!("unexpected {other:?}"),
    }
    let got = fake.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "GET");
    assert_eq!(got[0].path, "/v1/me");
    assert!(got[0].body.is_empty());
    assert_eq!(
        got[0]
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer canary-token-7f3a9c")
    );
}

#[tokio::test]
async fn secrets_are_checked_in_the_host() {
    use hmac::{Hmac, KeyInit, Mac};
    let rt = runtime(limits());
    let plugin = chaos(&rt, Vec::new());
    let body = "ok signed";
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"app-secret").expect("key");
    mac.update(body.as_bytes());
    let good = hex::encode(mac.finalize().into_bytes());
    let mut req = post(body);
    req.headers.push(("x-chaos-signature".into(), good.clone()));
    assert!(matches!(
        plugin.verify(scope(), &req).await,
        Ok(Verdict::Accept)
    ));

    let mut forged = post("ok forged");
    forged.headers.push(("x-chaos-signature".into(), good));
    assert!(matches!(
        plugin.verify(scope(), &forged).await,
        Ok(Verdict::Reject(r)) if r.status == 403 && r.reason == "signature mismatch"
    ));
    assert!(matches!(
        plugin.verify(scope(), &post(body)).await,
        Ok(Verdict::Reject(r)) if r.status == 401
    ));

    let handshake = HttpRequest {
        method: "GET".into(),
        url: "https://hooks.example/hooks/end_1?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444".into(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    match plugin.verify(scope(), &handshake).await {
        Ok(Verdict::Respond(resp)) => {
            assert_eq!(resp.status, 200);
            assert_eq!(resp.body, b"1158201444");
        }
        other => panic!("unexpected {other:?}"),
    }
    // Without the endpoint's secrets in scope the check cannot pass.
    let unscoped = plugin.verify(SecretScope::default(), &req).await;
    assert!(matches!(unscoped, Ok(Verdict::Reject(r)) if r.reason == "app secret not configured"));
}

#[tokio::test]
async fn hostile_calls_run_concurrently_with_normal_ones() {
    // A deadline generous for a normal call even on a loaded machine (the deadline is wall time
    // minus egress waits, and this test shares the machine with the crash tests); the spinning
    // calls still hit it.
    let rt = runtime(RuntimeConfig {
        cpu_limit: Duration::from_secs(1),
        ..limits()
    });
    let plugin = chaos(&rt, Vec::new());
    let mut tasks = Vec::new();
    for i in 0..24 {
        let plugin = plugin.clone();
        tasks.push(tokio::spawn(async move {
            let body = match i % 4 {
                0 => "loop".to_string(),
                1 => "hog".to_string(),
                2 => "trap".to_string(),
                _ => format!("ok call {i}"),
            };
            (i, plugin.parse(scope(), &post(&body)).await)
        }));
    }
    for task in tasks {
        let (i, result) = task.await.expect("task");
        match (i % 4, result) {
            (0, Err(CallError::Timeout { .. })) => {}
            (1, Err(CallError::OutOfMemory { .. })) => {}
            (2, Err(CallError::Trap { .. })) => {}
            (3, Ok(Ok(events))) => assert_eq!(events.len(), 1),
            (kind, other) => panic!("call {i} (kind {kind}): unexpected {other:?}"),
        }
    }
    assert_serves(&plugin, "after the storm").await;
}

#[tokio::test]
async fn a_full_pool_is_a_retryable_error_not_a_crash() {
    let rt = runtime(RuntimeConfig {
        max_instances: 2,
        ..limits()
    });
    // Two calls hold both slots while they wait on a slow provider.
    let slow = Fake::start_slow(200, "late", Duration::from_millis(1500)).await;
    let plugin = chaos(&rt, vec![slow.origin.clone()]);
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let plugin = plugin.clone();
            let body = format!("egress {}/slow", slow.origin);
            tokio::spawn(async move { plugin.parse(scope(), &post(&body)).await })
        })
        .collect();
    while slow.requests().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let third = plugin.parse(scope(), &post("ok third")).await;
    assert!(
        matches!(&third, Err(e @ CallError::Busy(2)) if e.is_retryable()),
        "{third:?}"
    );
    for task in holders {
        // Waiting on egress does not count against the CPU deadline.
        let events = task.await.expect("task").expect("call").expect("parse");
        assert!(matches!(events.as_slice(), [InboundEvent::Ignored(o)] if o == "status 200 late"));
    }
    assert_serves(&plugin, "slots are back").await;
}

#[tokio::test]
async fn the_echo_policy_loads_and_answers_text() {
    let rt = runtime(limits());
    let policy = echo(&rt);
    assert_eq!(policy.manifest().world, World::ReplyPolicy);
    let ctx = ConversationContext {
        tenant_id: "ten_1".into(),
        conversation_id: "cnv_1".into(),
        contact: Party {
            phone: Some("15550001111".into()),
            user_id: None,
            name: None,
        },
        window_open: true,
        window_closes_at: Some(1_900_000_000),
        history: Vec::new(),
        config: "{}".into(),
    };
    let mut msg = InboundMessage {
        provider_message_id: "wamid.1".into(),
        channel_address: "106540352242922".into(),
        sender: ctx.contact.clone(),
        timestamp: 1_700_000_000,
        kind: MessageKind::Text,
        text: Some("hello there".into()),
        media: Vec::new(),
        location: None,
        interactive: None,
        reply_to: None,
        referral: None,
        details: None,
    };
    let actions = policy.decide(&ctx, &msg).await.expect("decide");
    match actions.as_slice() {
        [Action::Reply(r)] => {
            assert!(matches!(&r.content, Content::Text(t) if t == "hello there"));
            assert!(r.fallback.is_none());
        }
        other => panic!("unexpected {other:?}"),
    }
    msg.kind = MessageKind::Reaction;
    assert!(policy.decide(&ctx, &msg).await.expect("decide").is_empty());
}

fn repack(bytes: &[u8], edit: impl FnOnce(&mut Manifest)) -> Vec<u8> {
    let mut manifest = Manifest::from_component(bytes).expect("manifest");
    edit(&mut manifest);
    let raw = switchyard::runtime::manifest::strip(bytes).expect("strip");
    manifest.embed(&raw).expect("embed")
}

#[tokio::test]
async fn a_component_for_the_wrong_world_is_refused_with_what_is_missing() {
    let rt = runtime(limits());
    let policy_as_connector = repack(bundled("echo"), |m| m.world = World::Connector);
    match rt.load(&policy_as_connector, Vec::new()) {
        Err(LoadError::WrongWorld {
            plugin,
            world,
            missing,
        }) => {
            assert_eq!(plugin, "echo@0.1.0");
            assert_eq!(world, "connector");
            assert!(
                missing.contains("does not export `switchyard:plugin/channel@0.1.0`"),
                "{missing}"
            );
            assert!(
                missing.contains("switchyard:plugin/policy@0.1.0"),
                "{missing}"
            );
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a policy must not load as a connector"),
    }
    let connector_as_policy = repack(&chaos_bytes(), |m| m.world = World::ReplyPolicy);
    match rt.load(&connector_as_policy, Vec::new()) {
        Err(LoadError::WrongWorld { missing, .. }) => {
            assert!(
                missing.contains("switchyard:plugin/policy@0.1.0"),
                "{missing}"
            )
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a connector must not load as a policy"),
    }
}

#[tokio::test]
async fn a_component_without_manifest_or_for_another_interface_is_refused() {
    let rt = runtime(limits());
    let raw = switchyard::runtime::manifest::strip(&chaos_bytes()).expect("strip");
    let err = rt.load(&raw, Vec::new()).err().expect("refused");
    assert!(err.to_string().contains("switchyard plugin pack"), "{err}");
    let mut future = raw.clone();
    switchyard::runtime::manifest::append_custom_section(
        &mut future,
        switchyard::runtime::manifest::SECTION_NAME,
        br#"{"name":"chaos","version":"0.1.0","world":"connector","interface":"switchyard:plugin@0.9.0"}"#,
    );
    assert!(Manifest::from_component(&future).is_err());
    let err = rt.load(&future, Vec::new()).err().expect("refused");
    assert!(
        err.to_string().contains("not supported by this host"),
        "{err}"
    );
    let err = rt
        .load(b"\0asm\x0d\x00\x01\x00", Vec::new())
        .err()
        .expect("refused");
    assert!(matches!(err, LoadError::Manifest(_)));
}

#[tokio::test]
async fn compiled_code_is_cached_on_disk_and_a_corrupt_cache_is_recompiled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..limits()
    };
    let rt = runtime(config.clone());
    assert_serves(&chaos(&rt, Vec::new()), "compiled").await;
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("cache dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0]
        .file_name()
        .and_then(|n| n.to_str())
        .expect("name")
        .to_string();
    let sha = Plugin::Connector(chaos(&rt, Vec::new()));
    let Plugin::Connector(c) = sha else {
        unreachable!()
    };
    assert!(
        name.starts_with(c.sha256()),
        "{name} is keyed by the component's sha256"
    );

    // A second runtime (a restart) loads from the cache.
    let again = runtime(config.clone());
    assert_serves(&chaos(&again, Vec::new()), "cached").await;

    // Flip a byte: the cache is refused and the plugin recompiled, never loaded corrupt.
    let mut data = std::fs::read(&files[0]).expect("read");
    let last = data.len() - 1;
    data[last] ^= 0xff;
    std::fs::write(&files[0], &data).expect("write");
    let third = runtime(config);
    assert_serves(&chaos(&third, Vec::new()), "recompiled").await;
    assert_ne!(
        std::fs::read(&files[0]).expect("read"),
        data,
        "cache rewritten"
    );
}
