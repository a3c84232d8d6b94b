//! Insights (issue 17, item 6; DECISIONS C1) against the real host on both backends: the
//! bundled `triage` policy reads conversations in English, Spanish, Portuguese and Indonesian
//! (tests/fixtures/insights), the host keeps its answer per conversation and marks it stale
//! when messages arrive; a policy without the export, and a plan without AI policies, get none.

use reqwest::Method;
use serde_json::{Value, json};

use crate::accounts::{sent_from, until};
use crate::api::{Db, Host, OPERATOR, assert_error, setup};
use crate::fake::Fake;
use crate::ingress::{graph_that_sends, meta_message_from, post_signed, use_echo};

const FIXTURES: [&str; 8] = [
    "en-negative",
    "en-positive",
    "es-negative",
    "es-positive",
    "pt-negative",
    "pt-positive",
    "id-negative",
    "id-positive",
];

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../tests/fixtures/insights/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json")
}

/// A signed Meta text webhook from `contact` to number 1001.
async fn post_from(client: &reqwest::Client, hook: &str, contact: &str, wamid: &str, text: &str) {
    let r = post_signed(
        client,
        hook,
        meta_message_from("1001", contact, wamid, text),
    )
    .await;
    assert_eq!(r.status(), 200);
}

async fn insights(h: Host, graph: &Fake) {
    let s = setup(&h).await;
    let t = s.a.0.clone();
    let agent = s.a_keys["agent"].clone();
    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);
    let ask = async |conversation: &str, key: &str| {
        h.call(
            Method::POST,
            &format!("/api/v1/tenants/{t}/conversations/{conversation}/insights"),
            Some(key),
            None,
        )
        .await
    };
    let conversation = async |contact: &str, n: usize| {
        let mut found = None;
        until("the messages are stored", async || {
            found = h
                .conversation_with(&s.a, "contact_phone", contact)
                .await
                .filter(|(_, m)| m.len() >= n);
            found.is_some()
        })
        .await;
        let (c, _) = found.expect("conversation");
        c["id"].as_str().expect("id").to_string()
    };

    // A policy without the export has no insights to give.
    use_echo(&h, &s.a).await;
    post_from(&client, &hook, "16505550100", "wamid.I0", "hello").await;
    let first = conversation("16505550100", 1).await;
    let none = ask(&first, &agent).await;
    assert_error(&none, 409, "no_insights");
    assert!(
        none.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("echo") && m.contains("triage")),
        "{}",
        none.1
    );
    assert_error(&ask("cnv_nope", &agent).await, 404, "not_found");

    // The bundled triage policy reads every conversation; it hands unhappy customers to people
    // (silently here, so each conversation holds exactly the customer's messages).
    let triage = async |config: Value| {
        h.ok(
            Method::PUT,
            &format!("/api/v1/tenants/{t}/policy"),
            &s.a.1,
            Some(json!({"plugin": "triage", "config": config})),
        )
        .await
    };
    triage(json!({})).await;
    for (i, name) in FIXTURES.iter().enumerate() {
        let f = fixture(name);
        let contact = format!("1650555{:04}", i + 1);
        let said: Vec<&str> = f["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter(|m| m["inbound"] == true)
            .map(|m| m["text"].as_str().expect("text"))
            .collect();
        // One at a time, each stored before the next: webhooks acknowledged together may be
        // stored in any order, and the summary reads them in stored order.
        let mut id = String::new();
        for (j, text) in said.iter().enumerate() {
            post_from(&client, &hook, &contact, &format!("wamid.I{i}.{j}"), text).await;
            id = conversation(&contact, j + 1).await;
        }
        let got = ask(&id, &agent).await;
        assert_eq!(got.0, 200, "{name}: {}", got.1);
        let got = got.1;
        assert_eq!(got["sentiment"], f["expect"], "{name}: {got}");
        assert_eq!(got["language"], f["language"], "{name}: {got}");
        let summary = got["summary"].as_str().expect("summary");
        let wanted = f["summary_contains"].as_str().expect("summary_contains");
        assert!(
            summary.contains(wanted),
            "{name}: {summary:?} lacks {wanted:?}"
        );
        assert!(summary.chars().count() <= 1_000);
        let score = got["score"].as_f64().expect("score");
        assert!((-1.0..=1.0).contains(&score), "{name}: {score}");
        assert_eq!(
            (score < 0.0, score > 0.0),
            (f["expect"] == "negative", f["expect"] == "positive"),
            "{name}: {score}"
        );
        assert_eq!(got["messages"], json!(said.len()), "{name}");
        assert_eq!(got["plugin"], "triage@0.1.0");
        assert_eq!(got["stale"], false);
        // Kept with the conversation: its view shows it.
        let view = h
            .ok(
                Method::GET,
                &format!("/api/v1/tenants/{t}/conversations/{id}"),
                &agent,
                None,
            )
            .await;
        assert_eq!(view["insights"], got, "{name}");
        if f["expect"] == "negative" {
            until("triage hands the unhappy customer to people", async || {
                h.conversation_with(&s.a, "contact_phone", &contact)
                    .await
                    .is_some_and(|(c, _)| c["owner"] == "people")
            })
            .await;
        }
    }
    // Told so, when the tenant says what to tell them.
    triage(json!({"handoff_reply": "A person is taking over now."})).await;
    post_from(
        &client,
        &hook,
        "16505550200",
        "wamid.I.angry",
        "This is the worst service, I am furious",
    )
    .await;
    until("the customer is told a person takes over", async || {
        sent_from(graph, "1001").contains(&"A person is taking over now.".to_string())
    })
    .await;
    until("and people own the conversation", async || {
        h.conversation_with(&s.a, "contact_phone", "16505550200")
            .await
            .is_some_and(|(c, _)| c["owner"] == "people")
    })
    .await;

    // A newer message makes the kept insights stale until someone asks again.
    let contact = "16505550001";
    let id = conversation(contact, 1).await;
    let n = h
        .conversation_with(&s.a, "contact_phone", contact)
        .await
        .map_or(0, |(_, m)| m.len());
    post_from(&client, &hook, contact, "wamid.I.more", "one more thing").await;
    let _ = conversation(contact, n + 1).await;
    let stale = async || {
        h.ok(
            Method::GET,
            &format!("/api/v1/tenants/{t}/conversations/{id}"),
            &agent,
            None,
        )
        .await["insights"]["stale"]
            .clone()
    };
    until("the insights are stale", async || stale().await == true).await;
    assert_eq!(ask(&id, &agent).await.0, 200);
    assert_eq!(stale().await, false);
    assert_error(&ask(&id, &s.a_keys["viewer"]).await, 403, "forbidden");

    // A plan without AI policies runs no insights.
    let plan = h
        .ok(
            Method::POST,
            "/api/v1/plans",
            OPERATOR,
            Some(json!({"name": "No AI", "channels": null, "numbers": null,
                        "monthly_messages": null, "ai_policies": false})),
        )
        .await;
    let on = h
        .call(
            Method::PUT,
            &format!("/api/v1/tenants/{t}/plan"),
            Some(OPERATOR),
            Some(json!({"plan": plan["id"]})),
        )
        .await;
    assert_eq!(on.0, 200, "{}", on.1);
    assert_error(&ask(&id, &agent).await, 403, "feature_not_in_plan");

    // Deleting the conversation deletes what was said about it.
    let admin = s.a_keys["admin"].clone();
    h.ok(
        Method::DELETE,
        &format!("/api/v1/tenants/{t}/conversations/{id}"),
        &admin,
        None,
    )
    .await;
    assert_error(&ask(&id, &agent).await, 404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn insights_in_four_languages_on_both_backends() {
    let graph = graph_that_sends().await;
    insights(Host::start(Db::Sqlite, &graph.origin).await, &graph).await;
    if let Some(pg) = crate::pg::PgDb::create("insights").await {
        let graph = graph_that_sends().await;
        insights(Host::start(Db::Postgres(pg), &graph.origin).await, &graph).await;
    }
}
