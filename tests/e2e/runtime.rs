//! The sandbox: real components under the real runtime, hostile ones included.

use std::sync::Arc;
use std::time::Duration;

use switchyard::egress::EgressClient;
use switchyard::runtime::types::{
    Action, Content, ConversationContext, ConversationOwner, HttpRequest, InboundEvent,
    InboundMessage, MessageKind, Party, Verdict,
};
use switchyard::runtime::{
    CallError, ConnectorPlugin, LoadError, Manifest, Origins, Plugin, PolicyPlugin, Runtime,
    RuntimeConfig, Services, World,
};
use switchyard::vault::{SecretScope, StaticSecrets};

use crate::fake::Fake;

const CANARY: &str = "canary-token-7f3a9c";

fn runtime(config: RuntimeConfig) -> Runtime {
    let secrets = StaticSecrets::new()
        .with("end_1", "app_secret", "app-secret")
        .with("end_1", "verify_token", "verify-me")
        .with("con_1", "access_token", CANARY);
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
        .parse(scope(), &post(&format!("ok {text}")), None)
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
        .parse(scope(), &post(body), None)
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
            .parse(scope(), &post(&format!("egress {url}")), None)
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
        .parse(
            scope(),
            &post(&format!("egress {}/v1/me", fake.origin)),
            None,
        )
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
            (i, plugin.parse(scope(), &post(&body), None).await)
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
            tokio::spawn(async move { plugin.parse(scope(), &post(&body), None).await })
        })
        .collect();
    while slow.requests().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let third = plugin.parse(scope(), &post("ok third"), None).await;
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
        channel: "meta-cloud".into(),
        rules: switchyard::runtime::manifest::ChannelRules::whatsapp().to_wit(),
        contact: Party {
            phone: Some("15550001111".into()),
            user_id: None,
            name: None,
        },
        window_open: true,
        window_closes_at: Some(1_900_000_000),
        history: Vec::new(),
        config: "{}".into(),
        owner: ConversationOwner::Policy,
        assignee: None,
        contact_email: None,
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
        edits: None,
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
                missing.contains("does not export `switchyard:plugin/channel@0.3.0`"),
                "{missing}"
            );
            assert!(
                missing.contains("switchyard:plugin/policy@0.3.0"),
                "{missing}"
            );
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a policy must not load as a connector"),
    }
    let connector_as_policy = repack(&chaos_bytes(), |m| m.world = World::ReplyPolicy);
    // chaos is built against 0.1.0, kept so for good: the check speaks its version.
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
        cache_key: Some(switchyard::runtime::CacheKey::from_bytes([1; 32])),
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

/// Chaos with another manifest: `egress` hosts and the `credentials` among them.
fn chaos_declaring(
    rt: &Runtime,
    egress: &[&str],
    credentials: &[&str],
    origins: Origins,
) -> Arc<ConnectorPlugin> {
    let bytes = repack(&chaos_bytes(), |m| {
        m.egress = egress.iter().map(|h| h.to_string()).collect();
        m.credentials = credentials.iter().map(|h| h.to_string()).collect();
    });
    match rt.load(&bytes, origins).expect("load chaos") {
        Plugin::Connector(c) => c,
        Plugin::Policy(_) => panic!("chaos is a connector"),
    }
}

/// What one `egress …` command of chaos reported.
async fn probe(plugin: &ConnectorPlugin, command: &str) -> String {
    let events = plugin
        .parse(scope(), &post(command), None)
        .await
        .expect("call")
        .expect("parse");
    match events.as_slice() {
        [InboundEvent::Ignored(outcome)] => outcome.clone(),
        other => panic!("unexpected {other:?}"),
    }
}

fn auth_of(r: &crate::fake::Received) -> Option<String> {
    r.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[tokio::test]
async fn a_declared_host_that_resolves_to_a_private_address_is_refused() {
    let rt = runtime(limits());
    // A directory-loaded plugin may declare any name; `localhost` resolves to 127.0.0.1 (and
    // ::1), a literal is an address already. Neither is reached, with or without a credential.
    let plugin = chaos_declaring(
        &rt,
        &["localhost", "127.0.0.1", "169.254.169.254"],
        &[],
        Origins::default(),
    );
    for (command, host) in [
        ("egress-anon https://localhost/admin", "localhost"),
        ("egress-anon https://127.0.0.1/admin", "127.0.0.1"),
        (
            "egress-anon https://169.254.169.254/latest/meta-data/",
            "169.254.169.254",
        ),
    ] {
        assert_eq!(
            probe(&plugin, command).await,
            format!("error EgressError::HostNotAllowed(\"{host} (not a public address)\")"),
            "{command}"
        );
    }
    // The operator's exact origin on 127.0.0.1 (how the tests' fake providers run) still works.
    let fake = Fake::start(200, "fake provider").await;
    let configured = chaos_declaring(
        &rt,
        &["localhost"],
        &[],
        Origins {
            api: vec![fake.origin.clone()],
            extra: Vec::new(),
        },
    );
    assert_eq!(
        probe(&configured, &format!("egress {}/v1", fake.origin)).await,
        "status 200 fake provider"
    );
}

#[tokio::test]
async fn credentials_go_only_to_the_providers_api_origin() {
    let rt = runtime(limits());
    let api = Fake::start(200, "api").await;
    let other = Fake::start(200, "other").await;
    let plugin = chaos_declaring(
        &rt,
        &["api.example", "cdn.example"],
        &["api.example"],
        Origins {
            api: vec![api.origin.clone()],
            extra: vec![other.origin.clone()],
        },
    );
    // An allowed origin that is not the API: refused before anything is sent.
    let refused = probe(&plugin, &format!("egress {}/media", other.origin)).await;
    assert!(
        refused.starts_with(
            "error EgressError::InvalidUrl(\"credentials are only sent to the provider's API origin"
        ),
        "{refused}"
    );
    // A declared host not listed under `credentials`: refused the same way (no DNS, no send).
    let refused = probe(&plugin, "egress https://cdn.example/file").await;
    assert!(refused.contains("not to cdn.example"), "{refused}");
    assert!(
        other.requests().is_empty(),
        "nothing reached the other origin"
    );
    // Without a credential the other origin is reachable; the API origin gets the token.
    assert_eq!(
        probe(&plugin, &format!("egress-anon {}/media", other.origin)).await,
        "status 200 other"
    );
    assert_eq!(auth_of(&other.requests()[0]), None);
    assert_eq!(
        probe(&plugin, &format!("egress {}/v1", api.origin)).await,
        "status 200 api"
    );
    assert_eq!(
        auth_of(&api.requests()[0]).as_deref(),
        Some("Bearer canary-token-7f3a9c")
    );
}

#[tokio::test]
async fn redirects_are_followed_to_allowed_hosts_only_and_never_carry_credentials() {
    let rt = runtime(limits());
    // Twilio's shape: the API answers a media URL with a redirect to a signed URL elsewhere.
    let cdn = Fake::start(200, "media-bytes").await;
    let api =
        Fake::start_with_header(307, "location", format!("{}/signed?sig=abc", cdn.origin)).await;
    let unlisted = Fake::start(200, "should never be reached").await;
    let to_unlisted =
        Fake::start_with_header(302, "location", format!("{}/x", unlisted.origin)).await;
    let to_loopback_name =
        Fake::start_with_header(302, "location", "https://localhost/x".into()).await;
    let plugin = chaos_declaring(
        &rt,
        &["localhost"],
        &[],
        Origins {
            api: vec![
                api.origin.clone(),
                to_unlisted.origin.clone(),
                to_loopback_name.origin.clone(),
            ],
            extra: vec![cdn.origin.clone()],
        },
    );
    assert_eq!(
        probe(&plugin, &format!("egress {}/Media/ME1", api.origin)).await,
        "status 200 media-bytes"
    );
    assert_eq!(
        auth_of(&api.requests()[0]).as_deref(),
        Some("Bearer canary-token-7f3a9c"),
        "the API got the credential"
    );
    let hop = &cdn.requests()[0];
    assert_eq!(hop.path, "/signed?sig=abc");
    assert_eq!(auth_of(hop), None, "the redirect target got no credential");

    assert_eq!(
        probe(&plugin, &format!("egress {}/Media/ME2", to_unlisted.origin)).await,
        "error EgressError::HostNotAllowed(\"127.0.0.1\")"
    );
    assert!(
        unlisted.requests().is_empty(),
        "nothing left for the unlisted host"
    );
    assert_eq!(
        probe(
            &plugin,
            &format!("egress {}/Media/ME3", to_loopback_name.origin)
        )
        .await,
        "error EgressError::HostNotAllowed(\"localhost (not a public address)\")"
    );

    // A redirect loop on the API origin: a few hops (same origin: the credential stays), then
    // an error.
    let looping = Fake::start_with_header(302, "location", "/again".into()).await;
    let plugin = chaos(&rt, vec![looping.origin.clone()]);
    assert_eq!(
        probe(&plugin, &format!("egress {}/start", looping.origin)).await,
        "error EgressError::ConnectionFailed(\"more than 3 redirects\")"
    );
    let got = looping.requests();
    assert_eq!(got.len(), 4, "the first request and 3 redirects");
    assert!(got.iter().all(|r| auth_of(r).is_some()));
}

/// Set in the child process of [`egress_ignores_proxy_settings_in_the_environment`].
const PROXY_CHILD: &str = "SWITCHYARD_TEST_PROXY_CHILD";

#[tokio::test]
async fn egress_ignores_proxy_settings_in_the_environment() {
    if std::env::var_os(PROXY_CHILD).is_some() {
        // The child: the proxy variables were set before the process started (no data race
        // with other threads), and point at the parent's fake proxy.
        let target = Fake::start(200, "direct").await;
        let rt = runtime(limits());
        let plugin = chaos(&rt, vec![target.origin.clone()]);
        assert_eq!(
            probe(&plugin, &format!("egress {}/v1", target.origin)).await,
            "status 200 direct"
        );
        assert_eq!(target.requests().len(), 1);
        return;
    }
    let proxy = Fake::start(200, "through the proxy").await;
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--exact",
        "runtime::egress_ignores_proxy_settings_in_the_environment",
        "--test-threads=1",
    ])
    .env(PROXY_CHILD, "1");
    for var in ["NO_PROXY", "no_proxy"] {
        cmd.env_remove(var);
    }
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env(var, &proxy.origin);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(proxy.requests().is_empty(), "the proxy saw nothing");
}

fn policy_input(text: &str) -> (ConversationContext, InboundMessage) {
    let contact = Party {
        phone: Some("15550001111".into()),
        user_id: None,
        name: None,
    };
    let ctx = ConversationContext {
        tenant_id: "ten_1".into(),
        conversation_id: "cnv_1".into(),
        channel: "meta-cloud".into(),
        rules: switchyard::runtime::manifest::ChannelRules::whatsapp().to_wit(),
        contact: contact.clone(),
        window_open: true,
        window_closes_at: None,
        history: Vec::new(),
        config: "{}".into(),
        owner: ConversationOwner::Policy,
        assignee: None,
        contact_email: None,
    };
    let msg = InboundMessage {
        provider_message_id: "wamid.1".into(),
        channel_address: "106540352242922".into(),
        sender: contact,
        timestamp: 1_700_000_000,
        kind: MessageKind::Text,
        text: Some(text.into()),
        media: Vec::new(),
        location: None,
        interactive: None,
        reply_to: None,
        referral: None,
        details: None,
        edits: None,
    };
    (ctx, msg)
}

fn busy_policy(rt: &Runtime) -> Arc<PolicyPlugin> {
    let path = switchyard::bundled::testing_plugin("busy-policy").expect("busy-policy built");
    let bytes = std::fs::read(path).expect("read busy-policy");
    match rt.load(&bytes, Vec::new()).expect("load busy-policy") {
        Plugin::Policy(p) => p,
        Plugin::Connector(_) => panic!("busy-policy is a policy"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_are_charged_for_their_own_cpu_not_for_waiting_their_turn() {
    // How long one finite decide takes alone (its wall time bounds its CPU time from above).
    let one = {
        let rt = runtime(RuntimeConfig {
            cpu_limit: Duration::from_secs(60),
            wall_limit: Duration::from_secs(120),
            threads: 1,
            ..limits()
        });
        let policy = busy_policy(&rt);
        let (ctx, msg) = policy_input("spin 20");
        let t = std::time::Instant::now();
        policy.decide(&ctx, &msg).await.expect("one decide alone");
        t.elapsed()
    };
    // A CPU deadline of three such calls; sixteen of them share one plugin thread, taking turns
    // at every epoch tick, so each waits about sixteen calls' time but runs one. A `loop` among
    // them still stops at the deadline.
    let rt = runtime(RuntimeConfig {
        cpu_limit: one * 3 + Duration::from_millis(50),
        wall_limit: Duration::from_secs(300),
        threads: 1,
        ..limits()
    });
    let policy = busy_policy(&rt);
    let started = std::time::Instant::now();
    let calls: Vec<_> = (0..17)
        .map(|i| {
            let policy = policy.clone();
            tokio::spawn(async move {
                let (ctx, msg) = policy_input(if i == 0 { "loop" } else { "spin 20" });
                (i, policy.decide(&ctx, &msg).await)
            })
        })
        .collect();
    for call in calls {
        match call.await.expect("task") {
            (0, Err(CallError::Timeout { .. })) => {}
            (0, other) => panic!("the endless decide: {other:?}"),
            (i, result) => assert!(
                result.is_ok(),
                "call {i} failed although it used one call's CPU: {result:?}"
            ),
        }
    }
    println!(
        "one decide alone {one:?}; 17 sharing one plugin thread took {:?}",
        started.elapsed()
    );
}

/// A connector built against 0.2.0 (frozen) keeps working now that 0.3.0 is the newest: every
/// export converts to and from the newest types, and its imports (secrets, egress, log) reach
/// the same host implementations, credentials and grants included.
#[tokio::test]
async fn a_connector_built_against_0_2_0_runs_every_export_through_the_newest_types() {
    use switchyard::runtime::types::{
        ConnectionInfo, Content, DeliveryState, OutboundMessage, Party,
    };
    let rt = runtime(limits());
    let api = Fake::start(200, "{\"id\":\"out-1\"}").await;
    let path = switchyard::bundled::testing_plugin("legacy-connector").expect("legacy built");
    let bytes = std::fs::read(path).expect("read legacy");
    let origins = Origins {
        api: vec![api.origin.clone()],
        extra: Vec::new(),
    };
    let plugin = match rt.load(&bytes, origins).expect("a 0.2.0 connector loads") {
        Plugin::Connector(c) => c,
        Plugin::Policy(_) => panic!("legacy is a connector"),
    };
    assert_eq!(plugin.manifest().interface, "switchyard:plugin@0.2.0");
    assert!(plugin.has_lifecycle(), "0.2.0 has connect and disconnect");

    // verify: the endpoint's app secret, checked in the host through 0.2.0's `secrets`.
    let body = br#"{"messages":[{"id":"in-1","from":"15550001111","text":"hi"}],"statuses":[{"id":"out-0","state":"delivered"}]}"#;
    let mut req = post(std::str::from_utf8(body).expect("utf-8"));
    let signature = crate::ingress::sign("app-secret", body);
    let hex = signature.trim_start_matches("sha256=").to_string();
    req.headers.push(("x-legacy-signature".into(), hex));
    let verdict = plugin.verify(scope(), &req).await.expect("verify");
    assert!(matches!(verdict, Verdict::Accept), "{verdict:?}");
    let mut forged = req.clone();
    forged.body = b"{}".to_vec();
    let verdict = plugin.verify(scope(), &forged).await.expect("verify");
    assert!(
        matches!(&verdict, Verdict::Reject(r) if r.status == 403),
        "{verdict:?}"
    );

    // parse: a message and a status, the status without the pricing 0.2.0 cannot carry.
    let events = plugin
        .parse(scope(), &req, None)
        .await
        .expect("call")
        .expect("parse");
    match events.as_slice() {
        [InboundEvent::Message(m), InboundEvent::Status(s)] => {
            assert_eq!(m.text.as_deref(), Some("hi"));
            assert_eq!(m.sender.phone.as_deref(), Some("15550001111"));
            assert_eq!(s.provider_message_id, "out-0");
            assert_eq!(s.state, DeliveryState::Delivered);
            assert_eq!(s.pricing, None);
        }
        other => panic!("unexpected events {other:?}"),
    }
    let malformed = plugin
        .parse(scope(), &post("not json"), None)
        .await
        .expect("call");
    assert!(malformed.is_err(), "{malformed:?}");

    // send: through 0.2.0's `egress`, with the bearer token added by the host.
    let connection = ConnectionInfo {
        connection_id: "con_1".into(),
        channel_address: "legacy".into(),
        account_id: None,
        api_base_url: api.origin.clone(),
        settings: vec![("sender".into(), "legacy".into())],
        callback_url: None,
    };
    let msg = OutboundMessage {
        to: Party {
            phone: Some("15550001111".into()),
            user_id: None,
            name: None,
        },
        content: Content::Text("hello back".into()),
        reply_to: None,
        idempotency_key: "k1".into(),
    };
    let sent = plugin.send(scope(), &connection, &msg).await.expect("call");
    assert_eq!(sent, Ok("out-1".to_string()));
    let got = api.requests();
    assert_eq!(got[0].path, "/messages");
    assert_eq!(
        auth_of(&got[0]).as_deref(),
        Some("Bearer canary-token-7f3a9c")
    );
    assert!(String::from_utf8_lossy(&got[0].body).contains("hello back"));

    // The rest of the channel, each converted both ways.
    let health = plugin
        .check_credentials(scope(), &connection)
        .await
        .expect("call")
        .expect("healthy");
    assert_eq!(health.warnings, vec!["built against 0.2.0".to_string()]);
    assert_eq!(health.expires_at, Some(1_900_000_000));
    assert_eq!(
        plugin.connect(scope(), &connection).await.expect("call"),
        Ok(())
    );
    let gone = plugin
        .disconnect(scope(), &connection)
        .await
        .expect("call")
        .expect_err("its error converts");
    assert_eq!(gone.code, "gone");
    let media = switchyard::runtime::types::MediaRef {
        provider_media_id: Some("m-7".into()),
        url: None,
        mime_type: None,
        sha256: None,
        caption: None,
        filename: None,
    };
    let content = plugin
        .fetch_media(scope(), &connection, &media)
        .await
        .expect("call")
        .expect("the host downloads where it said");
    assert_eq!(content.mime_type, "image/png");
    let got = api.requests();
    assert_eq!(got.last().map(|r| r.path.as_str()), Some("/media/m-7"));
    assert_eq!(
        got.last().and_then(auth_of).as_deref(),
        Some("Bearer canary-token-7f3a9c")
    );
    let templates = plugin
        .list_templates(scope(), &connection)
        .await
        .expect("call")
        .expect("templates");
    assert_eq!(templates.len(), 1);
    assert_eq!(templates[0].name, "welcome");
}
