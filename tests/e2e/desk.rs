//! The desk's first step (issue 17, items 1 and 3; DECISIONS C4) against the real host on both
//! backends: a conversation owned by people is not answered by its policy until it is given
//! back; close, archive and reopen (an inbound message reopens); assignment; filters; delete.

use reqwest::Method;
use serde_json::{Value, json};

use crate::accounts::{sent_from, until};
use crate::api::{Db, Host, assert_error, setup};
use crate::fake::Fake;
use crate::ingress::{graph_that_sends, post_meta_message, use_echo};
use crate::people::Browser;
use crate::smtp::Sink;

async fn desk(h: Host, graph: &Fake, sink: &Sink) {
    let s = setup(&h).await;
    let t = s.a.0.clone();
    use_echo(&h, &s.a).await;
    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);
    let post = async |wamid: &str, text: &str| {
        let r = post_meta_message(&client, &hook, "1001", wamid, text).await;
        assert_eq!(r.status(), 200);
    };
    post("wamid.D1", "first").await;
    until("the policy answers", async || {
        sent_from(graph, "1001").len() == 1
    })
    .await;
    let (conv, _) = h
        .conversation_with(&s.a, "contact_phone", "16505551234")
        .await
        .expect("conversation");
    assert_eq!(
        (conv["owner"].clone(), conv["assignee"].clone()),
        (json!("policy"), Value::Null)
    );
    let path = format!(
        "/api/v1/tenants/{t}/conversations/{}",
        conv["id"].as_str().expect("id")
    );
    let change =
        async |key: &str, body: Value| h.call(Method::PATCH, &path, Some(key), Some(body)).await;
    let agent = s.a_keys["agent"].clone();
    let messages = async || {
        h.conversation_with(&s.a, "contact_phone", "16505551234")
            .await
            .map_or(0, |(_, m)| m.len())
    };

    // People take it: the policy stays silent while they own it.
    assert_error(
        &change(&s.a_keys["viewer"], json!({"owner": "people"})).await,
        403,
        "forbidden",
    );
    let taken = change(&agent, json!({"owner": "people"})).await;
    assert_eq!(
        (taken.0, taken.1["owner"].clone()),
        (200, json!("people")),
        "{}",
        taken.1
    );
    post("wamid.D2", "are you a bot?").await;
    until("the message is stored", async || messages().await == 3).await;
    // Given back: the policy answers the next one.
    assert_eq!(
        change(&agent, json!({"owner": "policy"})).await.1["owner"],
        "policy"
    );
    post("wamid.D3", "hello again").await;
    until("the policy answers again", async || {
        sent_from(graph, "1001").len() == 2
    })
    .await;
    assert_eq!(
        sent_from(graph, "1001"),
        ["first", "hello again"],
        "nothing while people owned it"
    );

    // Closed, then reopened by the customer's next message; archived and reopened by hand.
    assert_eq!(
        change(&agent, json!({"state": "closed"})).await.1["state"],
        "closed"
    );
    let closed = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{t}/conversations?state=closed"),
            &agent,
            None,
        )
        .await;
    assert_eq!(closed["data"].as_array().expect("data").len(), 1);
    post("wamid.D4", "one more thing").await;
    until("an inbound message reopens it", async || {
        h.conversation_with(&s.a, "contact_phone", "16505551234")
            .await
            .is_some_and(|(c, _)| c["state"] == "open")
    })
    .await;
    until("and its policy answers", async || {
        sent_from(graph, "1001").len() == 3
    })
    .await;
    assert_eq!(
        change(&agent, json!({"state": "archived"})).await.1["state"],
        "archived"
    );
    assert_eq!(
        change(&agent, json!({"state": "open"})).await.1["state"],
        "open"
    );
    assert_error(
        &change(&agent, json!({"state": "gone"})).await,
        422,
        "invalid_state",
    );
    assert_error(
        &change(&agent, json!({"owner": "robot"})).await,
        422,
        "invalid_owner",
    );

    // Assignment: a person assigns themself; an admin assigns any member; strangers are refused.
    h.ok(
        Method::POST,
        &format!("/api/v1/tenants/{t}/invitations"),
        &s.a.1,
        Some(json!({"email": "agent@desk.test", "role": "agent"})),
    )
    .await;
    let mut ana = Browser::new(&h);
    let me = ana
        .accept(sink, "agent@desk.test", "Ana", "a long enough passphrase")
        .await;
    let ana_id = me["user"]["id"].as_str().expect("id").to_string();
    let mine = ana
        .call(Method::PATCH, &path, Some(json!({"assignee": ana_id})))
        .await;
    assert_eq!(
        (mine.0, mine.1["assignee"].clone()),
        (200, json!(ana_id)),
        "{}",
        mine.1
    );
    assert_error(
        &ana.call(
            Method::PATCH,
            &path,
            Some(json!({"assignee": "usr_someone_else"})),
        )
        .await,
        403,
        "assign_self_only",
    );
    assert_error(
        &change(&s.a_keys["admin"], json!({"assignee": "usr_not_a_member"})).await,
        422,
        "unknown_member",
    );
    let list = async |query: &str| {
        ana.call(
            Method::GET,
            &format!("/api/v1/tenants/{t}/conversations?{query}"),
            None,
        )
        .await
        .1["data"]
            .as_array()
            .map_or(usize::MAX, Vec::len)
    };
    assert_eq!(list("assignee=me").await, 1);
    assert_eq!(list("assignee=none").await, 0);
    assert_eq!(list("q=sheena").await, 1);
    assert_eq!(list("q=nobody").await, 0);
    assert_eq!(list("owner=people").await, 0);
    assert_eq!(list(&format!("connection={}", s.a_connection)).await, 1);
    assert_error(
        &h.call(
            Method::GET,
            &format!("/api/v1/tenants/{t}/conversations?state=gone"),
            Some(&agent),
            None,
        )
        .await,
        400,
        "bad_request",
    );
    assert_eq!(
        change(&s.a_keys["admin"], json!({"assignee": null}))
            .await
            .1["assignee"],
        Value::Null
    );

    // Delete: admins only; the history goes, the consent ledger stays.
    assert_error(
        &h.call(Method::DELETE, &path, Some(&agent), None).await,
        403,
        "forbidden",
    );
    assert_eq!(
        h.call(Method::DELETE, &path, Some(&s.a_keys["admin"]), None)
            .await
            .0,
        204
    );
    assert!(
        h.conversation_with(&s.a, "contact_phone", "16505551234")
            .await
            .is_none()
    );
    assert_error(
        &h.call(Method::DELETE, &path, Some(&s.a.1), None).await,
        404,
        "not_found",
    );
    let ledger = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{t}/consent"),
            &s.a.1,
            None,
        )
        .await;
    assert!(!ledger["data"].as_array().expect("data").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn people_own_conversations_and_work_them_on_both_backends() {
    let sink = Sink::start().await;
    let args = ["--smtp-url", sink.url.as_str()];
    let graph = graph_that_sends().await;
    desk(
        Host::start_with(Db::Sqlite, &graph.origin, &args).await,
        &graph,
        &sink,
    )
    .await;
    if let Some(pg) = crate::pg::PgDb::create("desk").await {
        let graph = graph_that_sends().await;
        desk(
            Host::start_with(Db::Postgres(pg), &graph.origin, &args).await,
            &graph,
            &sink,
        )
        .await;
    }
}
