//! A tenant's numbers (issue 16, item 3): a name of its own, the active toggle (webhooks stored,
//! nothing sent), a reply policy per number falling back to the tenant's, activation needing a
//! policy — against the real host and a fake Graph, on both backends.

use reqwest::Method;
use serde_json::{Value, json};

use crate::accounts::{sent_from, until};
use crate::api::{Db, Host, assert_error, setup};
use crate::fake::Fake;
use crate::ingress::{graph_that_sends, post_meta_message, use_echo};

/// The texts of the tenant's messages in the conversation with `phone`, oldest first.
async fn texts(h: &Host, tenant: &(String, String), phone: &str) -> Vec<(String, String)> {
    let Some((_, msgs)) = h.conversation_with(tenant, "contact_phone", phone).await else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = msgs
        .iter()
        .map(|m| {
            (
                m["direction"].as_str().unwrap_or_default().to_string(),
                m["body"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.reverse();
    out
}

async fn numbers(h: Host, graph: &Fake) {
    let s = setup(&h).await;
    use_echo(&h, &s.a).await;
    let number = format!("/api/v1/tenants/{}/connections/{}", s.a.0, s.a_connection);
    let patch = async |body: Value| {
        h.call(Method::PATCH, &number, Some(&s.a.1), Some(body))
            .await
    };

    // A name of its own; the provider's display number stays.
    let named = patch(json!({"name": "  Sales Support "})).await;
    assert_eq!(named.0, 200, "{}", named.1);
    assert_eq!(named.1["name"], "Sales Support");
    assert_eq!(named.1["display_name"], "+1 555-078-3881");
    assert_eq!(named.1["policy"], Value::Null);
    assert_error(&patch(json!({"name": " "})).await, 422, "invalid_name");
    assert_error(&patch(json!({"colour": "red"})).await, 422, "invalid_body");
    assert_error(
        &patch(json!({"policy": {"plugin": "no-such-policy"}})).await,
        422,
        "unknown_policy",
    );
    // Agents and viewers may not touch numbers.
    for role in ["agent", "viewer"] {
        assert_error(
            &h.call(
                Method::PATCH,
                &number,
                Some(&s.a_keys[role]),
                Some(json!({"active": false})),
            )
            .await,
            403,
            "forbidden",
        );
    }

    // Switched off: the webhook is acknowledged and the message stored, nothing is sent.
    let off = patch(json!({"active": false})).await;
    assert_eq!(
        (off.0, off.1["active"].clone()),
        (200, json!(false)),
        "{}",
        off.1
    );
    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);
    let r = post_meta_message(&client, &hook, "1001", "wamid.OFF1", "are you there?").await;
    assert_eq!(r.status(), 200);
    until("the message is stored", async || {
        texts(&h, &s.a, "16505551234").await == [("in".to_string(), "are you there?".to_string())]
    })
    .await;
    // Switched on with a policy of its own: that policy answers, not the tenant's echo.
    let on = patch(json!({
        "active": true,
        "policy": {"plugin": "auto-reply", "config": {"default_reply": "Sales here, how can we help?"}}
    }))
    .await;
    assert_eq!(on.0, 200, "{}", on.1);
    assert_eq!(on.1["policy"]["plugin"], "auto-reply");
    assert_eq!(on.1["active"], true);
    let r = post_meta_message(&client, &hook, "1001", "wamid.ON1", "hello").await;
    assert_eq!(r.status(), 200);
    until("the number's policy answers", async || {
        sent_from(graph, "1001") == ["Sales here, how can we help?"]
    })
    .await;
    // Its policy cleared: the tenant's echo answers again.
    let cleared = patch(json!({"policy": null})).await;
    assert_eq!((cleared.0, cleared.1["policy"].clone()), (200, Value::Null));
    let r = post_meta_message(&client, &hook, "1001", "wamid.ON2", "echo me").await;
    assert_eq!(r.status(), 200);
    until("the tenant's policy answers", async || {
        sent_from(graph, "1001") == ["Sales here, how can we help?", "echo me"]
    })
    .await;
    // The message that came in while off was never answered.
    assert!(!sent_from(graph, "1001").iter().any(|t| t.contains("there")));

    // Tenant B has no policy at all: switching its number on is refused.
    let b_number = format!("/api/v1/tenants/{}/connections/{}", s.b.0, s.b_connection);
    let b_patch = async |body: Value| {
        h.call(Method::PATCH, &b_number, Some(&s.b.1), Some(body))
            .await
    };
    assert_eq!(b_patch(json!({"active": false})).await.0, 200);
    assert_error(
        &b_patch(json!({"active": true})).await,
        422,
        "policy_required",
    );
    let b = h.ok(Method::GET, &b_number, &s.b.1, None).await;
    assert_eq!(b["active"], false, "a refused edit changes nothing");
    // Another tenant's number is not found.
    assert_error(
        &h.call(
            Method::PATCH,
            &b_number,
            Some(&s.a.1),
            Some(json!({"name": "x"})),
        )
        .await,
        404,
        "not_found",
    );
    // A disconnected number keeps its history and can no longer be edited.
    h.ok(Method::DELETE, &number, &s.a.1, None).await;
    assert_error(
        &patch(json!({"name": "Old"})).await,
        409,
        "connection_ended",
    );
    assert_eq!(texts(&h, &s.a, "16505551234").await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_number_is_named_switched_off_and_answers_with_its_own_policy_on_both_backends() {
    let graph = graph_that_sends().await;
    numbers(Host::start(Db::Sqlite, &graph.origin).await, &graph).await;
    if let Some(pg) = crate::pg::PgDb::create("numbers").await {
        let graph = graph_that_sends().await;
        numbers(Host::start(Db::Postgres(pg), &graph.origin).await, &graph).await;
    }
}
