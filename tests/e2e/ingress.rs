//! Webhook ingress on a real socket: Meta's handshake and signature through the bundled
//! connector, a receipt for every request, the body and its job only for accepted ones.

use hmac::{Hmac, KeyInit, Mac};
use switchyard::store::{Mode, Store};
use switchyard::tenancy::Scope;

use crate::api::{Db, GRAPH_OK, Host, setup};
use crate::fake::Fake;

fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `(outcome, status, body hash, has body, jobs)` of every receipt of `endpoint`, oldest first.
async fn receipts(h: &Host, endpoint: &str) -> Vec<(String, i64, Option<String>, i64, i64)> {
    let store = Store::open(&format!(
        "sqlite://{}",
        h.data.path().join("switchyard.db").display()
    ))
    .await
    .expect("open");
    let mut tx = store.begin(Scope::Host, Mode::Read).await.expect("begin");
    let mut out = Vec::new();
    for id in tx.receipt_ids(endpoint).await.expect("ids") {
        out.push(
            tx.receipt_summary(&id)
                .await
                .expect("summary")
                .expect("receipt"),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_verified_recorded_and_queued() {
    let graph = Fake::start(200, GRAPH_OK).await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);

    // Meta's subscription handshake, answered from the plugin's verdict.
    let ok = client
        .get(format!(
            "{hook}?hub.mode=subscribe&hub.verify_token=verify-1&hub.challenge=1158201444"
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.expect("text"), "1158201444");
    let bad = client
        .get(format!(
            "{hook}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1"
        ))
        .send()
        .await
        .expect("get");
    assert_eq!(bad.status(), 403);

    // A signed delivery: 200 after the receipt and its job are stored.
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/meta/bench_1500.json"
    ))
    .expect("fixture");
    let post = |sig: Option<String>, body: Vec<u8>| {
        let mut req = client
            .post(&hook)
            .header("content-type", "application/json")
            .body(body);
        if let Some(s) = sig {
            req = req.header("x-hub-signature-256", s);
        }
        req.send()
    };
    assert_eq!(
        post(Some(sign("app-secret-1", &body)), body.clone())
            .await
            .expect("post")
            .status(),
        200
    );
    // Forged, unsigned, and one changed byte: refused, nothing queued.
    let forged = post(Some(sign("someone-else", &body)), body.clone())
        .await
        .expect("post");
    assert!(
        matches!(forged.status().as_u16(), 401 | 403),
        "{}",
        forged.status()
    );
    let unsigned = post(None, body.clone()).await.expect("post");
    assert!(matches!(unsigned.status().as_u16(), 401 | 403));
    let mut changed = body.clone();
    changed[100] ^= 1;
    assert!(matches!(
        post(Some(sign("app-secret-1", &body)), changed)
            .await
            .expect("post")
            .status()
            .as_u16(),
        401 | 403
    ));
    // Over the cap: 413 before any hashing.
    let big = vec![b' '; (1 << 20) + 1];
    assert_eq!(
        post(Some(sign("app-secret-1", &big)), big)
            .await
            .expect("post")
            .status(),
        413
    );
    // Unknown endpoint.
    let none = client
        .post(format!("{}/hooks/end_nope", h.base))
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(none.status(), 404);

    let r = receipts(&h, &s.endpoint).await;
    let outcomes: Vec<(&str, i64, i64, i64)> = r
        .iter()
        .map(|(o, st, _, b, j)| (o.as_str(), *st, *b, *j))
        .collect();
    assert_eq!(outcomes.len(), 7, "{outcomes:?}");
    assert_eq!(outcomes[0], ("responded", 200, 0, 0));
    assert_eq!(outcomes[1], ("rejected", 403, 0, 0));
    assert_eq!(outcomes[2], ("accepted", 200, 1, 1));
    for o in &outcomes[3..6] {
        assert_eq!((o.0, o.2, o.3), ("rejected", 0, 0), "{o:?}");
    }
    assert_eq!(outcomes[6], ("too-large", 413, 0, 0));
    assert!(r[6].2.is_none(), "no hash of an oversized body");
    assert_eq!(
        r[2].2.as_deref(),
        Some(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body)).as_str())
    );
}
