//! Plans (issue 16, item 4; DECISIONS C5) against the real host on both backends: the operator's
//! plans and a partner's within its ceiling, who may put a tenant on which plan, connects past
//! the plan refused with 403 `feature_not_in_plan` and the plan's terms, sends past the monthly
//! allowance refused with a recorded reason, and the partner's report of use against plan.

use reqwest::Method;
use serde_json::{Value, json};

use crate::accounts::{sent_from, until};
use crate::api::{Db, Host, OPERATOR, assert_error, connect_body, setup};
use crate::fake::Fake;
use crate::ingress::{graph_that_sends, post_meta_message, use_echo};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_string()
}

async fn plans(h: Host, graph: &Fake) {
    let s = setup(&h).await;
    let plan = |name: &str, terms: Value| {
        let mut body = terms;
        body["name"] = json!(name);
        body
    };
    // The operator's plans; terms are checked.
    assert_error(
        &h.call(
            Method::POST,
            "/api/v1/plans",
            Some(OPERATOR),
            Some(plan("Bad", json!({"channels": null, "numbers": -1, "monthly_messages": null, "ai_policies": false}))),
        )
        .await,
        422,
        "invalid_plan",
    );
    let wholesale = h
        .ok(
            Method::POST,
            "/api/v1/plans",
            OPERATOR,
            Some(plan("Wholesale", json!({"channels": ["meta-cloud", "twilio"], "numbers": 5, "monthly_messages": null, "ai_policies": false}))),
        )
        .await;
    assert_eq!(wholesale["numbers"], 5);
    assert_error(
        &h.call(
            Method::POST,
            "/api/v1/plans",
            Some(OPERATOR),
            Some(plan("Wholesale", json!({"channels": null, "numbers": null, "monthly_messages": null, "ai_policies": true}))),
        )
        .await,
        409,
        "plan_name_taken",
    );
    let twilio_only = h
        .ok(
            Method::POST,
            "/api/v1/plans",
            OPERATOR,
            Some(plan("Twilio only", json!({"channels": ["twilio"], "numbers": null, "monthly_messages": null, "ai_policies": false}))),
        )
        .await;

    // A partner defines plans only within a ceiling the operator gives it.
    let starter = plan(
        "Starter",
        json!({"channels": ["meta-cloud"], "numbers": 1, "monthly_messages": 1, "ai_policies": false}),
    );
    assert_error(
        &h.call(
            Method::POST,
            "/api/v1/plans",
            Some(&s.p1.1),
            Some(starter.clone()),
        )
        .await,
        403,
        "plans_not_allowed",
    );
    h.ok(
        Method::PUT,
        &format!("/api/v1/partners/{}/plan-ceiling", s.p1.0),
        OPERATOR,
        Some(json!({"plan": id(&wholesale)})),
    )
    .await;
    assert_error(
        &h.call(
            Method::POST,
            "/api/v1/plans",
            Some(&s.p1.1),
            Some(plan("Huge", json!({"channels": ["meta-cloud"], "numbers": 50, "monthly_messages": null, "ai_policies": false}))),
        )
        .await,
        403,
        "plan_beyond_ceiling",
    );
    let starter = h
        .ok(Method::POST, "/api/v1/plans", &s.p1.1, Some(starter))
        .await;
    assert_eq!(starter["partner_id"], json!(s.p1.0));
    // The other partner sees the operator's plans, not P1's.
    let seen = h.ok(Method::GET, "/api/v1/plans", &s.p2.1, None).await;
    let names: Vec<&str> = seen["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["Twilio only", "Wholesale"]);
    assert_error(
        &h.call(
            Method::GET,
            &format!("/api/v1/plans/{}", id(&starter)),
            Some(&s.p2.1),
            None,
        )
        .await,
        404,
        "not_found",
    );

    // Who puts a tenant on which plan.
    let put_plan = async |tenant: &str, key: &str, plan: Value| {
        h.call(
            Method::PUT,
            &format!("/api/v1/tenants/{tenant}/plan"),
            Some(key),
            Some(json!({"plan": plan})),
        )
        .await
    };
    assert_error(
        &put_plan(&s.a.0, &s.p2.1, json!(id(&starter))).await,
        404,
        "not_found",
    );
    assert_error(
        &put_plan(&s.a.0, &s.a_keys["admin"], json!(id(&starter))).await,
        403,
        "forbidden",
    );
    assert_error(
        &put_plan(&s.a.0, &s.a.1, Value::Null).await,
        403,
        "plan_not_offered",
    );
    assert_error(
        &put_plan(&s.a.0, &s.a.1, json!(id(&wholesale))).await,
        403,
        "plan_not_offered",
    );
    // The owner picks its partner's plan.
    let on = put_plan(&s.a.0, &s.a.1, json!(id(&starter))).await;
    assert_eq!(on.0, 200, "{}", on.1);
    assert_eq!(on.1["plan"]["name"], "Starter");
    assert_eq!(
        on.1["usage"],
        json!({"numbers": 1, "messages_this_month": 0, "pricing_this_month": []})
    );
    assert_eq!(
        put_plan(&s.b.0, OPERATOR, json!(id(&twilio_only))).await.0,
        200
    );

    // Connecting past the plan: another number, or a channel it does not list.
    let more = h
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{}/connections", s.a.0),
            Some(&s.a.1),
            Some(connect_body(&s.endpoint, "6006", "token-a2")),
        )
        .await;
    assert_error(&more, 403, "feature_not_in_plan");
    assert_eq!(more.1["error"]["plan"]["name"], "Starter");
    assert_eq!(more.1["error"]["plan"]["terms"]["numbers"], 1);
    assert!(
        more.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("1 of 1")),
        "{}",
        more.1
    );
    let channel = h
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{}/connections", s.b.0),
            Some(&s.b.1),
            Some(connect_body(&s.endpoint, "7007", "token-b2")),
        )
        .await;
    assert_error(&channel, 403, "feature_not_in_plan");
    assert_eq!(
        channel.1["error"]["plan"]["terms"]["channels"],
        json!(["twilio"])
    );
    let meta = h
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{}/connect/meta", s.b.0),
            Some(&s.b.1),
            Some(json!({"endpoint": s.endpoint, "flow": "redirect"})),
        )
        .await;
    assert_error(&meta, 403, "feature_not_in_plan");

    // Sends past the monthly allowance (1) are refused with a recorded reason.
    use_echo(&h, &s.a).await;
    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);
    // One after the other: sends in flight at once may each pass the count (documented).
    let r = post_meta_message(&client, &hook, "1001", "wamid.PL1", "first").await;
    assert_eq!(r.status(), 200);
    until("the first reply is sent", async || {
        sent_from(graph, "1001").len() == 1
    })
    .await;
    let r = post_meta_message(&client, &hook, "1001", "wamid.PL2", "second").await;
    assert_eq!(r.status(), 200);
    let refused = async || {
        let (_, msgs) = h
            .conversation_with(&s.a, "contact_phone", "16505551234")
            .await?;
        msgs.into_iter()
            .find(|m| m["direction"] == "out" && m["error_code"] == "plan-limit")
    };
    until("the second reply is refused", async || {
        refused().await.is_some()
    })
    .await;
    let m = refused().await.expect("refused");
    assert_eq!(m["status"], "failed", "{m}");
    assert!(
        m["error_message"]
            .as_str()
            .is_some_and(|t| t.contains("allows 1 messages a month")),
        "{m}"
    );
    assert_eq!(
        sent_from(graph, "1001").len(),
        1,
        "one reply within the allowance"
    );

    // The partner's report: use against plan, counts only.
    let report = h
        .ok(
            Method::GET,
            &format!("/api/v1/partners/{}/report", s.p1.0),
            &s.p1.1,
            None,
        )
        .await;
    let line = &report["tenants"][0];
    assert_eq!(line["plan"]["name"], "Starter");
    assert_eq!(line["usage"]["numbers"], 1);
    assert_eq!(line["usage"]["messages_this_month"], 1);
    assert!(
        !report.to_string().contains("16505551234"),
        "no contact data"
    );

    // A plan in use stays; an unused one goes, by its owner only.
    assert_error(
        &h.call(
            Method::DELETE,
            &format!("/api/v1/plans/{}", id(&starter)),
            Some(&s.p1.1),
            None,
        )
        .await,
        409,
        "plan_in_use",
    );
    assert_error(
        &h.call(
            Method::DELETE,
            &format!("/api/v1/plans/{}", id(&twilio_only)),
            Some(&s.p1.1),
            None,
        )
        .await,
        403,
        "not_plan_owner",
    );
    assert_eq!(put_plan(&s.b.0, OPERATOR, Value::Null).await.0, 200);
    assert_eq!(
        h.call(
            Method::DELETE,
            &format!("/api/v1/plans/{}", id(&twilio_only)),
            Some(OPERATOR),
            None
        )
        .await
        .0,
        204
    );
    // Without a plan, B connects freely again.
    let free = h
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{}/connections", s.b.0),
            Some(&s.b.1),
            Some(connect_body(&s.endpoint, "7007", "token-b2")),
        )
        .await;
    assert_eq!(free.0, 201, "{}", free.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plans_bound_connects_and_sends_on_both_backends() {
    let graph = graph_that_sends().await;
    plans(Host::start(Db::Sqlite, &graph.origin).await, &graph).await;
    if let Some(pg) = crate::pg::PgDb::create("plans").await {
        let graph = graph_that_sends().await;
        plans(Host::start(Db::Postgres(pg), &graph.origin).await, &graph).await;
    }
}
