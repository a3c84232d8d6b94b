//! The bundled Meta Cloud API connector under the real runtime, against a fake Graph API.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use switchyard::egress::EgressClient;
use switchyard::runtime::types::{
    ConnectionInfo, Content, ErrorKind, HttpRequest, InboundEvent, OutboundMessage, Party, Verdict,
};
use switchyard::runtime::{ConnectorPlugin, Plugin, Runtime, RuntimeConfig, Services};
use switchyard::vault::{SecretScope, StaticSecrets};

use crate::fake::Fake;

const APP_SECRET: &str = "meta-app-secret-1";
const TOKEN: &str = "EAAG-canary-access-token";

fn meta(origins: Vec<String>) -> (Runtime, Arc<ConnectorPlugin>) {
    let secrets = StaticSecrets::new()
        .with("end_meta", "app_secret", APP_SECRET)
        .with("end_meta", "verify_token", "my verify token")
        .with("con_meta", "access_token", TOKEN);
    let rt = Runtime::new(
        RuntimeConfig::default(),
        Services {
            secrets: Arc::new(secrets),
            egress: EgressClient::new(Duration::from_secs(5), 1 << 20).expect("egress"),
        },
    )
    .expect("runtime");
    let bytes = switchyard::bundled::plugin("meta-cloud").expect("meta-cloud is bundled");
    let Plugin::Connector(c) = rt.load(bytes, origins).expect("load") else {
        panic!("connector")
    };
    (rt, c)
}

fn scope() -> SecretScope {
    SecretScope {
        endpoint: Some("end_meta".into()),
        connection: Some("con_meta".into()),
        account_id: Some("102290129340398".into()),
        loaded: None,
    }
}

fn signed(body: &[u8], secret: &str) -> HttpRequest {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    HttpRequest {
        method: "POST".into(),
        url: "https://hooks.example/hooks/end_meta".into(),
        headers: vec![(
            "x-hub-signature-256".into(),
            format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
        )],
        body: body.to_vec(),
    }
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../tests/fixtures/meta/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

#[tokio::test]
async fn signature_and_handshake_are_checked_in_the_host() {
    let (_rt, meta) = meta(Vec::new());
    let body = fixture("text.json");
    let good = signed(&body, APP_SECRET);
    assert!(matches!(
        meta.verify(scope(), &good).await,
        Ok(Verdict::Accept)
    ));

    let forged = signed(&body, "not-the-app-secret");
    assert!(
        matches!(meta.verify(scope(), &forged).await, Ok(Verdict::Reject(r)) if r.status == 403)
    );
    let mut tampered = good.clone();
    tampered.body[10] ^= 1;
    assert!(
        matches!(meta.verify(scope(), &tampered).await, Ok(Verdict::Reject(r)) if r.status == 403)
    );
    let mut unsigned = good.clone();
    unsigned.headers.clear();
    assert!(
        matches!(meta.verify(scope(), &unsigned).await, Ok(Verdict::Reject(r)) if r.status == 401)
    );
    let mut malformed = good.clone();
    malformed.headers[0].1 = "sha1=abc".into();
    assert!(
        matches!(meta.verify(scope(), &malformed).await, Ok(Verdict::Reject(r)) if r.status == 403)
    );

    let handshake = |token: &str| HttpRequest {
        method: "GET".into(),
        url: format!(
            "https://hooks.example/hooks/end_meta?hub.mode=subscribe&hub.verify_token={token}&hub.challenge=1158201444"
        ),
        headers: Vec::new(),
        body: Vec::new(),
    };
    match meta.verify(scope(), &handshake("my+verify%20token")).await {
        Ok(Verdict::Respond(r)) => {
            assert_eq!((r.status, r.body.as_slice()), (200, &b"1158201444"[..]))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        meta.verify(scope(), &handshake("wrong")).await,
        Ok(Verdict::Reject(r)) if r.status == 403
    ));
}

#[tokio::test]
async fn one_flipped_bit_anywhere_is_rejected_and_raw_unicode_bytes_are_signed() {
    let (_rt, meta) = meta(Vec::new());
    let body = fixture("text.json");
    let good = signed(&body, APP_SECRET);
    // Every byte of the body, each with one bit flipped (the bit cycles through the byte).
    for i in 0..body.len() {
        let mut bad = good.clone();
        bad.body[i] ^= 1 << (i % 8);
        assert!(
            matches!(meta.verify(scope(), &bad).await, Ok(Verdict::Reject(r)) if r.status == 403),
            "body byte {i} flipped was accepted"
        );
    }
    // Every hex digit of the signature, changed to another hex digit.
    let header = good.headers[0].1.clone();
    for i in "sha256=".len()..header.len() {
        let mut sig = header.clone().into_bytes();
        sig[i] = if sig[i] == b'0' { b'1' } else { b'0' };
        let mut bad = good.clone();
        bad.headers[0].1 = String::from_utf8(sig).expect("ascii");
        assert!(
            matches!(meta.verify(scope(), &bad).await, Ok(Verdict::Reject(r)) if r.status == 403),
            "signature digit {i} changed was accepted"
        );
    }
    // Meta signs the bytes it sent: unicode escapes, raw UTF-8 and escaped slashes as they are.
    let raw = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"1001"},"messages":[{"from":"16505551234","id":"wamid.U1","timestamp":"1749416383","type":"text","text":{"body":"caf\u00e9 \/ na\u00efve \ud83d\ude00 – über"}}]}}]}]}"#;
    let unicode = signed(raw.as_bytes(), APP_SECRET);
    assert!(matches!(
        meta.verify(scope(), &unicode).await,
        Ok(Verdict::Accept)
    ));
    // The same JSON re-serialized (escapes resolved) is different bytes: its signature fails.
    let reserialized =
        serde_json::to_vec(&serde_json::from_str::<serde_json::Value>(raw).expect("json"))
            .expect("serialize");
    assert_ne!(reserialized, raw.as_bytes());
    let mut moved = unicode.clone();
    moved.body = reserialized;
    assert!(matches!(
        meta.verify(scope(), &moved).await,
        Ok(Verdict::Reject(r)) if r.status == 403
    ));
}

#[tokio::test]
async fn parses_the_benchmark_webhook() {
    let (_rt, meta) = meta(Vec::new());
    let events = meta
        .parse(
            scope(),
            &signed(&fixture("bench_1500.json"), APP_SECRET),
            None,
        )
        .await
        .expect("call")
        .expect("parse");
    match events.as_slice() {
        [InboundEvent::Message(m)] => {
            assert_eq!(m.channel_address, "106540352242922");
            assert_eq!(m.sender.name.as_deref(), Some("Sheena Nelson"));
        }
        other => panic!("{other:?}"),
    }
}

fn connection(base: &str) -> ConnectionInfo {
    ConnectionInfo {
        connection_id: "con_meta".into(),
        channel_address: "106540352242922".into(),
        account_id: Some("102290129340398".into()),
        api_base_url: base.into(),
        settings: Vec::new(),
        callback_url: None,
    }
}

fn text(to: &str, body: &str) -> OutboundMessage {
    OutboundMessage {
        to: Party {
            phone: Some(to.into()),
            user_id: None,
            name: None,
        },
        content: Content::Text(body.into()),
        reply_to: Some("wamid.IN1".into()),
        idempotency_key: "snd_1".into(),
    }
}

#[tokio::test]
async fn sends_text_through_egress_with_the_token() {
    let graph = Fake::start(
        200,
        r#"{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.OUT42"}]}"#,
    )
    .await;
    let (_rt, meta) = meta(vec![graph.origin.clone()]);
    let id = meta
        .send(
            scope(),
            &connection(&graph.origin),
            &text("16505551234", "Yes, in blue."),
        )
        .await
        .expect("call")
        .expect("sent");
    assert_eq!(id, "wamid.OUT42");
    let got = graph.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/v26.0/106540352242922/messages");
    assert_eq!(
        got[0]
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).expect("json body");
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["to"], "16505551234");
    assert_eq!(body["type"], "text");
    assert_eq!(body["text"]["body"], "Yes, in blue.");
    assert_eq!(body["context"]["message_id"], "wamid.IN1");
}

#[tokio::test]
async fn graph_errors_keep_metas_code_and_kind() {
    let graph = Fake::start(
        400,
        r#"{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},"fbtrace_id":"A1b2"}}"#,
    )
    .await;
    let (_rt, meta) = meta(vec![graph.origin.clone()]);
    let err = meta
        .send(
            scope(),
            &connection(&graph.origin),
            &text("16505551234", "late"),
        )
        .await
        .expect("call")
        .expect_err("window closed");
    assert_eq!(err.kind, ErrorKind::WindowClosed);
    assert_eq!(err.code, "131047");
    assert!(err.message.contains("24 hours"));
}

async fn healthz(h: &crate::api::Host) -> serde_json::Value {
    reqwest::get(format!("{}/healthz", h.base))
        .await
        .expect("healthz")
        .json()
        .await
        .expect("json")
}

/// A Graph API version past its end of life is named in `/healthz` (and logged at start);
/// the default version is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ended_graph_version_is_reported_in_healthz() {
    let graph = crate::fake::Fake::start_with(crate::api::graph_ok).await;
    let h = crate::api::Host::start_with(
        crate::api::Db::Sqlite,
        &graph.origin,
        &["--meta-graph-version", "v19.0"],
    )
    .await;
    let health = healthz(&h).await;
    let warnings = health["warnings"].to_string();
    assert!(
        warnings.contains("v19.0") && warnings.contains("2026-05-21"),
        "{health}"
    );
    let h = crate::api::Host::start(crate::api::Db::Sqlite, &graph.origin).await;
    let health = healthz(&h).await;
    assert!(health.get("warnings").is_none(), "{health}");
}
