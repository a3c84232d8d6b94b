//! One plugin call on a realistic 1.5 KB Meta webhook: fresh instance + `parse`, against the
//! same parser compiled natively, plus the fixed cost of a call (echo policy), and the same
//! call resolved through the plugin catalog (pins, promotion, hot loading) as the host makes it.
//!
//! Each call is measured twice: awaited from another runtime (an HTTP handler's call, which hops
//! to the plugin threads) and made on the plugin threads (a job worker's call, in place).
//!
//! Run: `cargo bench -p switchyard --bench plugin_call`

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard::egress::EgressClient;
use switchyard::runtime::types::{
    ConversationContext, ConversationOwner, HttpRequest, InboundMessage, MessageKind, Party,
};
use switchyard::runtime::{Plugin, Runtime, RuntimeConfig, Services};
use switchyard::vault::{SecretScope, StaticSecrets};

const BODY: &[u8] = include_bytes!("../../tests/fixtures/meta/bench_1500.json");

fn runtime() -> Runtime {
    Runtime::new(
        RuntimeConfig::default(),
        Services {
            secrets: Arc::new(StaticSecrets::new()),
            egress: EgressClient::new(Duration::from_secs(1), 1 << 20).expect("egress"),
        },
    )
    .expect("runtime")
}

fn bundled(name: &str) -> &'static [u8] {
    switchyard::bundled::plugin(name).expect("bundled plugin")
}

/// The native baseline: the plugin's own parser (`meta_cloud::webhook`), compiled for the host.
fn native_parse(body: &[u8]) -> usize {
    meta_cloud::webhook::parse(body)
        .map(|e| e.len())
        .unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let rt = runtime();
    let Plugin::Connector(meta) = rt.load(bundled("meta-cloud"), Vec::new()).expect("meta") else {
        panic!("meta-cloud is a connector")
    };
    let Plugin::Policy(echo) = rt.load(bundled("echo"), Vec::new()).expect("echo") else {
        panic!("echo is a policy")
    };
    let req = HttpRequest {
        method: "POST".into(),
        url: "https://hooks.example/hooks/end_1".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: BODY.to_vec(),
    };
    let events = tokio
        .block_on(meta.parse(SecretScope::default(), &req, None))
        .expect("call")
        .expect("parse");
    assert_eq!(events.len(), native_parse(BODY), "same work on both sides");

    let mut group = c.benchmark_group("meta_webhook_1500B");
    group.bench_function("plugin_fresh_instance_parse", |b| {
        b.iter(|| {
            tokio
                .block_on(meta.parse(SecretScope::default(), &req, None))
                .expect("call")
                .expect("parse")
        })
    });
    // As the job workers call it: from the plugin threads themselves, with no hop between
    // runtimes (the timed loop runs there; only its total crosses back).
    let threads = rt.plugin_threads().clone();
    group.bench_function("plugin_fresh_instance_parse_on_plugin_threads", |b| {
        b.iter_custom(|iters| {
            let (meta, req) = (meta.clone(), req.clone());
            tokio
                .block_on(threads.spawn(async move {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        meta.parse(SecretScope::default(), &req, None)
                            .await
                            .expect("call")
                            .expect("parse");
                    }
                    start.elapsed()
                }))
                .expect("join")
        })
    });
    group.bench_function("native_serde_parse", |b| b.iter(|| native_parse(BODY)));
    // As the host calls it: the catalog resolves the endpoint's pin (none), the promoted version
    // (none) and this host's bundled one, then the same parse.
    let data = tempfile::tempdir().expect("tempdir");
    let catalog = tokio.block_on(async {
        let store = switchyard::store::Store::open(&format!(
            "sqlite://{}?mode=rwc",
            data.path().join("bench.db").display()
        ))
        .await
        .expect("store");
        store.migrate().await.expect("migrate");
        let local = vec![switchyard::catalog::LocalPlugin {
            plugin: rt.load(bundled("meta-cloud"), Vec::new()).expect("meta"),
            directory_signer: None,
        }];
        switchyard::catalog::Catalog::start(
            runtime(),
            store,
            Box::new(|_| Default::default()),
            1 << 20,
            false,
            local,
        )
        .await
        .expect("catalog")
    });
    group.bench_function("catalog_resolved_parse", |b| {
        b.iter(|| {
            let plugin = catalog
                .connector("meta-cloud", Some("end_1"))
                .expect("resolved");
            tokio
                .block_on(plugin.parse(SecretScope::default(), &req, None))
                .expect("call")
                .expect("parse")
        })
    });
    group.bench_function("catalog_resolve_only", |b| {
        b.iter(|| catalog.connector("meta-cloud", Some("end_1")))
    });
    group.finish();

    let party = Party {
        phone: Some("15550001111".into()),
        user_id: None,
        name: None,
    };
    let ctx = ConversationContext {
        tenant_id: "ten_1".into(),
        conversation_id: "cnv_1".into(),
        channel: "meta-cloud".into(),
        rules: switchyard::runtime::manifest::ChannelRules::whatsapp().to_wit(),
        contact: party.clone(),
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
        channel_address: "1065".into(),
        sender: party,
        timestamp: 0,
        kind: MessageKind::Text,
        text: Some("hi".into()),
        media: Vec::new(),
        location: None,
        interactive: None,
        reply_to: None,
        referral: None,
        details: None,
        edits: None,
    };
    c.bench_function("echo_policy_fresh_instance_decide", |b| {
        b.iter(|| tokio.block_on(echo.decide(&ctx, &msg)).expect("decide"))
    });
    c.bench_function("echo_policy_fresh_instance_decide_on_plugin_threads", |b| {
        b.iter_custom(|iters| {
            let (echo, ctx, msg) = (echo.clone(), ctx.clone(), msg.clone());
            tokio
                .block_on(threads.spawn(async move {
                    let start = std::time::Instant::now();
                    for _ in 0..iters {
                        echo.decide(&ctx, &msg).await.expect("decide");
                    }
                    start.elapsed()
                }))
                .expect("join")
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
