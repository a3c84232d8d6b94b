//! What an operator watches (issue 19, items 1 and 2): `/metrics` in Prometheus's text format
//! changes as a webhook flows through to its reply, behind the scraper's or operator's token,
//! with no label naming a tenant; `/readyz` reports the workers and receipt writer.

use serde_json::{Value, json};

use crate::accounts::{sent_from, until};
use crate::api::{Db, Host, OPERATOR, setup};
use crate::ingress::{graph_that_sends, now_s, sign, use_echo};

const SCRAPER: &str = "scraper-token-for-tests";

/// The value of the sample `series` (name and labels exactly) in the text `metrics`, or 0.
fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(h: &Host, token: Option<&str>) -> (u16, Option<String>, String) {
    let mut req = reqwest::Client::new().get(format!("{}/metrics", h.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.expect("metrics");
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, kind, r.text().await.expect("body"))
}

/// A Meta webhook with one text from `from` to the number 1001.
fn message(from: &str, wamid: &str) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "1001"},
            "contacts": [{"profile": {"name": "Metrics Person"}, "wa_id": from}],
            "messages": [{"from": from, "id": wamid, "timestamp": now_s().to_string(), "type": "text", "text": {"body": "hello metrics"}}]
        }}]}]
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_change_as_a_webhook_flows_to_its_reply_and_readyz_names_the_workers() {
    let graph = graph_that_sends().await;
    let h = Host::start_with(
        Db::Sqlite,
        &graph.origin,
        &["--metrics-token", SCRAPER, "--workers", "3"],
    )
    .await;

    // Readiness: the database, three workers, the receipt writer, the plugins.
    let r = reqwest::get(format!("{}/readyz", h.base))
        .await
        .expect("readyz");
    assert_eq!(r.status(), 200);
    let ready: Value = r.json().await.expect("json");
    assert_eq!(ready["status"], "ready", "{ready}");
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["tasks"]["job worker"]["running"], 3, "{ready}");
    assert_eq!(ready["tasks"]["receipt writer"]["running"], 1, "{ready}");
    assert_eq!(ready["problems"], json!([]));
    assert!(ready["plugins"].as_u64().is_some_and(|n| n >= 2), "{ready}");

    // Only the scraper's token or the operator's opens the metrics.
    for token in [None, Some("wrong"), Some("")] {
        let (status, _, body) = scrape(&h, token).await;
        assert_eq!(status, 401, "{token:?}");
        assert!(!body.contains("switchyard_"), "{body}");
    }
    let (status, kind, _) = scrape(&h, Some(OPERATOR)).await;
    assert_eq!(status, 200);
    assert_eq!(
        kind.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );

    let s = setup(&h).await;
    use_echo(&h, &s.a).await;
    let (_, _, before) = scrape(&h, Some(SCRAPER)).await;
    let accepted =
        "switchyard_ingress_requests_total{connector=\"meta-cloud\",outcome=\"accepted\"}";
    let rejected =
        "switchyard_ingress_requests_total{connector=\"meta-cloud\",outcome=\"rejected\"}";
    let not_found = "switchyard_ingress_requests_total{connector=\"none\",outcome=\"not_found\"}";
    let acks = "switchyard_ingress_ack_seconds_count{connector=\"meta-cloud\"}";
    let parsed = "switchyard_job_duration_seconds_count{kind=\"process-receipt\",outcome=\"ok\"}";
    let sent = "switchyard_sends_total{connector=\"meta-cloud\",result=\"ok\"}";
    let groups = "switchyard_receipt_group_size_count";
    let waits = "switchyard_send_rate_wait_seconds_count{connector=\"meta-cloud\"}";

    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);
    let body = message("16505550001", "wamid.METRICS1");
    let r = client
        .post(&hook)
        .header("x-hub-signature-256", sign("app-secret-1", &body))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("webhook");
    assert_eq!(r.status(), 200);
    let r = client
        .post(&hook)
        .header("x-hub-signature-256", sign("not-the-secret", &body))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("forged webhook");
    assert_eq!(r.status(), 403);
    let r = client
        .post(format!("{}/hooks/no-such-endpoint", h.base))
        .body("{}")
        .send()
        .await
        .expect("unknown endpoint");
    assert_eq!(r.status(), 404);
    until("the echo reply", async || {
        sent_from(&graph, "1001").len() == 1
    })
    .await;

    // Other tests' hosts share this process's counters: each must have grown by at least this
    // test's own traffic.
    let mut after = String::new();
    until("the metrics to show the reply", async || {
        after = scrape(&h, Some(SCRAPER)).await.2;
        value(&after, sent) > value(&before, sent)
    })
    .await;
    for (series, by) in [
        (accepted, 1.0),
        (rejected, 1.0),
        (not_found, 1.0),
        (acks, 1.0),
        (parsed, 1.0),
        (sent, 1.0),
        (groups, 1.0),
        (waits, 1.0),
    ] {
        assert!(
            value(&after, series) >= value(&before, series) + by,
            "{series}: {} then {}",
            value(&before, series),
            value(&after, series)
        );
    }
    // The echo policy's and the connector's calls, by plugin, version and outcome.
    assert!(
        after.lines().any(|l| l
            .starts_with("switchyard_plugin_call_seconds_count{plugin=\"meta-cloud\",version=")
            && l.contains("outcome=\"ok\"")),
        "{after}"
    );
    assert!(
        after
            .lines()
            .any(|l| l.starts_with("switchyard_plugin_call_seconds_count{plugin=\"echo\",")),
        "{after}"
    );
    // The queue, read at the scrape: every kind is shown.
    for kind in [
        "process-receipt",
        "decide",
        "send",
        "fetch-media",
        "apply-status",
    ] {
        assert!(
            after.contains(&format!(
                "switchyard_jobs{{kind=\"{kind}\",state=\"queued\"}}"
            )),
            "{kind}: {after}"
        );
    }
    assert!(after.contains("switchyard_database_wait_seconds_count{mode=\"write\"}"));
    // No series name or label names a tenant, an endpoint, a number or a contact (sample
    // values are counts and seconds: a count may well read 1001).
    let series: Vec<&str> = after
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit_once(' ').map_or(l, |(series, _value)| series))
        .collect();
    for private in [
        s.a.0.as_str(),
        s.endpoint.as_str(),
        "1001",
        "16505550001",
        "Metrics Person",
    ] {
        assert!(
            series.iter().all(|l| !l.contains(private)),
            "{private} in the metrics"
        );
    }
    // Nothing secret either.
    for secret in [OPERATOR, SCRAPER, "app-secret-1"] {
        assert!(!after.contains(secret));
    }
}

/// The route self-test (issue 19, item 5): the host calls an endpoint's webhook URL at its
/// public URL; it reaches ingress when that URL is the host's own, and a proxy's 404 or a
/// redirect in front is named. Only the endpoint's owner may run it; a forged self-test header
/// is refused and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_self_test_reaches_ingress_or_names_what_answered_instead() {
    let graph = crate::fake::Fake::start_with(crate::api::graph_ok).await;
    let h = Host::start_with(Db::Sqlite, &graph.origin, &["--public-url", "{self}"]).await;
    let s = setup(&h).await;
    let path = format!("/api/v1/endpoints/{}/self-test", s.endpoint);
    let got = h.ok(reqwest::Method::POST, &path, OPERATOR, None).await;
    assert_eq!(got["reached"], true, "{got}");
    assert_eq!(got["status"], 200);
    assert_eq!(got["url"], format!("{}/hooks/{}", h.base, s.endpoint));
    // The loopback http public URL is still named as one providers cannot use.
    assert!(
        got["problems"]
            .to_string()
            .contains("not reachable from the providers"),
        "{got}"
    );
    // A tenant's admin tests its number's webhook URL the same way.
    let mine = h
        .ok(
            reqwest::Method::POST,
            &format!(
                "/api/v1/tenants/{}/connections/{}/self-test",
                s.a.0, s.a_connection
            ),
            &s.a.1,
            None,
        )
        .await;
    assert_eq!(mine["reached"], true, "{mine}");
    // Not the endpoint's owner: another partner sees no such endpoint; a tenant may not.
    let r = h
        .call(reqwest::Method::POST, &path, Some(&s.p2.1), None)
        .await;
    assert_eq!(r.0, 404, "{}", r.1);
    let r = h
        .call(reqwest::Method::POST, &path, Some(&s.a.1), None)
        .await;
    assert_eq!(r.0, 403, "{}", r.1);
    // A forged or stale self-test header is refused before any connector runs.
    let forged = reqwest::Client::new()
        .get(format!("{}/hooks/{}", h.base, s.endpoint))
        .header("switchyard-self-test", "1.1800000000000.abc.AAAA")
        .send()
        .await
        .expect("forged");
    assert_eq!(forged.status(), 403);

    // Behind a proxy that does not forward /hooks/: its 404 is named.
    let proxy = crate::fake::Fake::start(404, "<html>Not Found</html>").await;
    let h2 = Host::start_with(Db::Sqlite, &graph.origin, &["--public-url", &proxy.origin]).await;
    let s2 = setup(&h2).await;
    let got = h2
        .ok(
            reqwest::Method::POST,
            &format!("/api/v1/endpoints/{}/self-test", s2.endpoint),
            OPERATOR,
            None,
        )
        .await;
    assert_eq!(
        (got["reached"].clone(), got["status"].clone()),
        (json!(false), json!(404)),
        "{got}"
    );
    assert!(
        got["problems"]
            .to_string()
            .contains("404 from something other than Switchyard"),
        "{got}"
    );
    // The proxy saw the self-test header and nothing secret.
    let seen = proxy.requests();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].headers.contains_key("switchyard-self-test"));
    assert!(seen[0].headers.get("authorization").is_none());

    // A redirect in front (http → https, say) is named too.
    let redirect = crate::fake::Fake::start_with_header(
        301,
        "location",
        "https://hooks.example.test/hooks/x".into(),
    )
    .await;
    let h3 = Host::start_with(
        Db::Sqlite,
        &graph.origin,
        &["--public-url", &redirect.origin],
    )
    .await;
    let s3 = setup(&h3).await;
    let got = h3
        .ok(
            reqwest::Method::POST,
            &format!("/api/v1/endpoints/{}/self-test", s3.endpoint),
            OPERATOR,
            None,
        )
        .await;
    assert_eq!(got["status"], 301, "{got}");
    assert!(
        got["problems"]
            .to_string()
            .contains("redirect to https://hooks.example.test/hooks/x"),
        "{got}"
    );
}
