//! Replies end to end with the bundled `auto-reply` policy against a fake Graph API that answers
//! the way Meta does: a window-closed refusal (131047) on a send or later in a `failed` status
//! sends the template fallback; an expired token (190) pauses the connection's sends; a hand-off
//! turns the conversation's AI replies off; the host's rules block a free-form reply outside the
//! window with the reason recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Db, Host, graph_ok, setup};
use crate::fake::Fake;
use crate::ingress::{drained, now_s, sign};

/// A Graph API that refuses free-form text containing `window` with 131047, text containing
/// `expire` with 190, and accepts everything else, numbering the ids it gives.
async fn graph(removed: Arc<AtomicBool>) -> Fake {
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Fake::start_with(move |r| {
        if removed.load(Ordering::SeqCst) && r.path.starts_with("/v26.0/1001") {
            // What Graph answers once the business removed the app's access to the account.
            return (
                400,
                json!({"error": {"message": "Unsupported get request. Object with ID '1001' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
                    "type": "GraphMethodException", "code": 100, "error_subcode": 33, "fbtrace_id": "AbCdEf"}})
                .to_string(),
            );
        }
        if !(r.method == "POST" && r.path.ends_with("/messages")) {
            return graph_ok(r);
        }
        let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
        let text = body["text"]["body"].as_str().unwrap_or_default();
        let error = |status, code: i64, message: &str| {
            (
                status,
                json!({"error": {"message": message, "type": "OAuthException", "code": code,
                                 "error_data": {"messaging_product": "whatsapp", "details": message},
                                 "fbtrace_id": "AbCdEf"}})
                .to_string(),
            )
        };
        if text.contains("window") {
            return error(400, 131047, "Re-engagement message");
        }
        if text.contains("expire") {
            return error(401, 190, "Error validating access token: Session has expired");
        }
        if text.contains("reuse") {
            // A provider answering with an id another message already has.
            return (
                200,
                json!({"messaging_product": "whatsapp", "messages": [{"id": "wamid.REUSED"}]})
                    .to_string(),
            );
        }
        if text.contains("blocked") {
            return error(400, 368, "Temporarily blocked for policies violations");
        }
        let id = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        (
            200,
            json!({"messaging_product": "whatsapp",
                   "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                   "messages": [{"id": format!("wamid.OUT{id}")}]})
            .to_string(),
        )
    })
    .await
}

/// A text from contact `from` to the business number `1001`.
fn inbound(from: &str, wamid: &str, text: &str, timestamp: i64) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "1001"},
            "contacts": [{"profile": {"name": format!("Contact {from}")}, "wa_id": from}],
            "messages": [{"from": from, "id": wamid, "timestamp": timestamp.to_string(),
                          "type": "text", "text": {"body": text}}]
        }}]}]
    })
    .to_string()
    .into_bytes()
}

/// A `failed` status for an outbound message, with Meta's error.
fn failed_status(wamid: &str, to: &str, code: i64, title: &str) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "1001"},
            "statuses": [{"id": wamid, "status": "failed", "timestamp": "1750263773",
                          "recipient_id": to,
                          "errors": [{"code": code, "title": title, "message": title,
                                      "error_data": {"details": title}}]}]
        }}]}]
    })
    .to_string()
    .into_bytes()
}

const POLICY: &str = r#"{
  "rules": [
    {"keywords": ["hours"], "reply": "We are open 9-17."},
    {"keywords": ["window"], "reply": "This window reply is refused by Meta."},
    {"keywords": ["late"], "reply": "Accepted now, failed later."},
    {"keywords": ["expire"], "reply": "Please expire my token."},
    {"keywords": ["policy"], "reply": "This one gets us blocked."},
    {"keywords": ["again"], "reply": "The provider will reuse an id for this."}
  ],
  "handoff_keywords": ["agent"],
  "handoff_reply": "A person will answer you shortly.",
  "fallback": {"name": "follow_up", "language": "en_US", "category": "utility",
               "parameters": ["{name}"]}
}"#;

struct Run {
    h: Host,
    graph: Fake,
    /// Graph refuses number 1001: the business removed the app's access at Meta.
    removed: Arc<AtomicBool>,
    tenant: (String, String),
    connection: String,
    hook: String,
    client: reqwest::Client,
}

impl Run {
    /// Post a signed webhook and wait until every job is done.
    async fn post(&self, body: Vec<u8>) {
        self.post_only(body).await;
        drained(&self.h).await;
    }

    /// Post a signed webhook.
    async fn post_only(&self, body: Vec<u8>) {
        let sig = sign("app-secret-1", &body);
        let r = self
            .client
            .post(&self.hook)
            .header("x-hub-signature-256", sig)
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), 200);
    }

    /// The conversation with `from`: `(conversation, messages newest first)`.
    async fn conversation(&self, from: &str) -> (Value, Vec<Value>) {
        self.h
            .conversation_with(&self.tenant, "contact_phone", from)
            .await
            .unwrap_or_else(|| panic!("no conversation with {from}"))
    }

    /// Bodies of the sends the fake Graph received for recipient `to`.
    fn sends_to(&self, to: &str) -> Vec<Value> {
        self.graph
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
            .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .filter(|b| b["to"] == to)
            .collect()
    }
}

async fn start() -> Run {
    let removed = Arc::new(AtomicBool::new(false));
    let graph = graph(removed.clone()).await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    h.ok(
        Method::PUT,
        &format!("/api/v1/tenants/{}/policy", s.a.0),
        &s.a.1,
        Some(json!({"plugin": "auto-reply", "config": serde_json::from_str::<Value>(POLICY).expect("policy")})),
    )
    .await;
    Run {
        hook: format!("{}/hooks/{}", h.base, s.endpoint),
        h,
        graph,
        removed,
        tenant: s.a.clone(),
        connection: s.a_connection.clone(),
        client: reqwest::Client::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provider_errors_on_sends_and_in_statuses_act_on_the_reply() {
    let r = start().await;
    let now = now_s();

    // A keyword reply goes out as text, answering the inbound message.
    r.post(inbound("111", "wamid.A1", "What are your hours?", now))
        .await;
    let sent = r.sends_to("111");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["text"]["body"], "We are open 9-17.");
    assert_eq!(sent[0]["context"]["message_id"], "wamid.A1");

    // 131047 on the send: the template fallback goes out instead, with the contact's name.
    r.post(inbound("222", "wamid.B1", "window?", now)).await;
    let sent = r.sends_to("222");
    assert_eq!(sent.len(), 2, "text refused, then the template: {sent:?}");
    assert_eq!(sent[1]["type"], "template");
    assert_eq!(sent[1]["template"]["name"], "follow_up");
    assert_eq!(
        sent[1]["template"]["components"][0]["parameters"][0]["text"],
        "Contact 222"
    );
    let (_, msgs) = r.conversation("222").await;
    assert_eq!(
        (msgs[0]["kind"].as_str(), msgs[0]["status"].as_str()),
        (Some("template"), Some("accepted")),
        "{msgs:?}"
    );

    // Accepted, then failed in a status webhook with 131047: the fallback is sent then.
    r.post(inbound("333", "wamid.C1", "late reply please", now))
        .await;
    let (_, msgs) = r.conversation("333").await;
    let first = msgs[0]["provider_message_id"]
        .as_str()
        .expect("accepted")
        .to_string();
    r.post(failed_status(
        &first,
        "333",
        131047,
        "Re-engagement message",
    ))
    .await;
    let sent = r.sends_to("333");
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[1]["template"]["name"], "follow_up");
    let (_, msgs) = r.conversation("333").await;
    assert_eq!(msgs[0]["status"], "accepted");
    assert_ne!(
        msgs[0]["provider_message_id"].as_str(),
        Some(first.as_str())
    );
    // A late status for the first send changes nothing.
    r.post(failed_status(
        &first,
        "333",
        131026,
        "Message undeliverable",
    ))
    .await;
    assert_eq!(r.sends_to("333").len(), 2);

    // A hand-off: the reply goes out, AI replies stop, the reason is kept; the next message
    // gets no decision.
    r.post(inbound("444", "wamid.D1", "I want an agent", now))
        .await;
    r.post(inbound("444", "wamid.D2", "What are your hours?", now))
        .await;
    let sent = r.sends_to("444");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["text"]["body"], "A person will answer you shortly.");
    let (conv, _) = r.conversation("444").await;
    assert_eq!(conv["owner"], "people");
    assert!(
        conv["handoff_reason"]
            .as_str()
            .is_some_and(|s| s.contains("agent")),
        "{conv}"
    );

    // Outside the window (the contact wrote 25 hours ago): the fallback template is sent
    // directly.
    r.post(inbound(
        "666",
        "wamid.F1",
        "What are your hours?",
        now - 25 * 3600,
    ))
    .await;
    let sent = r.sends_to("666");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["template"]["name"], "follow_up");

    // 190: the connection is expired with Meta's message and its sends pause (the reply stays
    // queued, not failed and not shown as sent).
    r.post_only(inbound("555", "wamid.E1", "expire it", now))
        .await;
    let c = connection_becomes(&r, "expired").await;
    assert_eq!(c["status"], "expired", "{c}");
    assert!(
        c["status_reason"]
            .as_str()
            .is_some_and(|s| s.contains("190")),
        "{c}"
    );
    let (_, msgs) = r.conversation("555").await;
    assert_eq!(msgs[0]["direction"], "out");
    assert_eq!(msgs[0]["status"], "queued", "{msgs:?}");
    assert_eq!(msgs[0]["send_attempts"], 1);
    assert_eq!(msgs[0]["possible_duplicate"], 0);
    assert_eq!(r.sends_to("555").len(), 1);
}

/// Wait until the connection's status is `status`; the connection as the API shows it.
async fn connection_becomes(r: &Run, status: &str) -> Value {
    let path = format!(
        "/api/v1/tenants/{}/connections/{}",
        r.tenant.0, r.connection
    );
    let mut c = Value::Null;
    for _ in 0..1200 {
        c = r.h.ok(Method::GET, &path, &r.tenant.1, None).await;
        if c["status"] == status {
            return c;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the connection never became {status}: {c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_the_provider_blocked_puts_the_connection_in_error_and_pauses_sends() {
    let r = start().await;
    r.post_only(inbound("888", "wamid.H1", "what is your policy?", now_s()))
        .await;
    let c = connection_becomes(&r, "error").await;
    let reason = c["status_reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("368 "), "{c}");
    assert!(reason.contains("resolve it with the provider"), "{c}");
    // The reply waits, queued, for the connection to be fixed; it is not shown as sent.
    let (_, msgs) = r.conversation("888").await;
    assert_eq!(
        (msgs[0]["direction"].as_str(), msgs[0]["status"].as_str()),
        (Some("out"), Some("queued")),
        "{msgs:?}"
    );
    assert_eq!(r.sends_to("888").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_free_form_reply_outside_the_window_is_blocked_with_the_reason() {
    let graph = graph(Arc::default()).await;
    let h = Host::start(Db::Sqlite, &graph.origin).await;
    let s = setup(&h).await;
    // Tenant B's echo policy has no template fallback.
    h.ok(
        Method::PUT,
        &format!("/api/v1/tenants/{}/policy", s.b.0),
        &s.b.1,
        Some(json!({"plugin": "echo"})),
    )
    .await;
    let mut body = inbound(
        "777",
        "wamid.G1",
        "hello from yesterday",
        now_s() - 25 * 3600,
    );
    body = String::from_utf8(body)
        .expect("utf8")
        .replace("\"1001\"", "\"2002\"")
        .into_bytes();
    let sig = sign("app-secret-1", &body);
    let resp = reqwest::Client::new()
        .post(format!("{}/hooks/{}", h.base, s.endpoint))
        .header("x-hub-signature-256", sig)
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    drained(&h).await;
    assert!(
        graph.requests().iter().all(|r| r.method != "POST"),
        "nothing is sent"
    );
    let convs = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/conversations", s.b.0),
            &s.b.1,
            None,
        )
        .await;
    let conv = convs["data"][0]["id"].as_str().expect("conversation");
    let msgs = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/conversations/{conv}/messages", s.b.0),
            &s.b.1,
            None,
        )
        .await;
    let reply = &msgs["data"][0];
    assert_eq!(reply["direction"], "out");
    assert_eq!(
        (
            reply["status"].as_str(),
            reply["error_kind"].as_str(),
            reply["error_message"].as_str()
        ),
        (
            Some("failed"),
            Some("blocked"),
            Some("window closed and the policy gave no template fallback")
        )
    );
}

/// An `account_update` webhook from Meta for the WhatsApp Business Account behind connections,
/// happening now.
fn account_update(waba: &str, event: &str) -> Vec<u8> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    account_update_at(waba, event, now)
}

/// An `account_update` webhook that happened at `time` (Unix seconds).
fn account_update_at(waba: &str, event: &str, time: u64) -> Vec<u8> {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": waba, "time": time, "changes": [{"field": "account_update", "value": {
            "event": event,
            "waba_info": {"waba_id": waba, "owner_business_id": "1234567890"}
        }}]}]
    })
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_business_removing_the_app_at_meta_ends_and_shreds_the_connection() {
    let r = start().await;
    // Restricted, then reinstated: sends pause, then resume.
    r.post(account_update("102290129340398", "ACCOUNT_RESTRICTION"))
        .await;
    let c = connection_becomes(&r, "error").await;
    assert!(
        c["status_reason"]
            .as_str()
            .is_some_and(|s| s.contains("ACCOUNT_RESTRICTION")),
        "{c}"
    );
    r.post(account_update("102290129340398", "ACCOUNT_RECONNECTED"))
        .await;
    connection_becomes(&r, "live").await;
    // Another account's event changes nothing here.
    r.post(account_update("999", "PARTNER_REMOVED")).await;
    connection_becomes(&r, "live").await;

    // The business removes the app at Meta: Graph refuses the number from now on.
    r.removed.store(true, Ordering::SeqCst);
    r.post(account_update("102290129340398", "PARTNER_REMOVED"))
        .await;
    let c = connection_becomes(&r, "disconnected").await;
    assert!(
        c["status_reason"]
            .as_str()
            .is_some_and(|s| s.contains("PARTNER_REMOVED")),
        "{c}"
    );
    let ledger =
        r.h.ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/consent", r.tenant.0),
            &r.tenant.1,
            None,
        )
        .await;
    let actions: Vec<(String, String)> = ledger["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|e| e["connection_id"] == r.connection.as_str())
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_string(),
                e["actor"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert!(
        actions.contains(&("revoked-at-provider".into(), "provider".into()))
            && actions.contains(&("shredded".into(), "provider".into())),
        "{actions:?}"
    );
    // The number no longer routes: a message for it is not stored and nothing is sent.
    r.post(inbound("999", "wamid.Z1", "What are your hours?", now_s()))
        .await;
    assert!(r.sends_to("999").is_empty());
    let convs =
        r.h.ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/conversations", r.tenant.0),
            &r.tenant.1,
            None,
        )
        .await;
    assert!(
        convs["data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|c| c["contact_phone"] != "999"),
        "{convs}"
    );
}

/// Issue 13, item 13: after a reconnect, Meta redelivering the old `PARTNER_REMOVED` (the same
/// bytes) or any stale access-removed event for the account does not end the new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replayed_or_stale_partner_removed_spares_a_reconnected_number() {
    let r = start().await;
    let path = format!(
        "/api/v1/tenants/{}/connections/{}",
        r.tenant.0, r.connection
    );
    let removal = account_update("102290129340398", "PARTNER_REMOVED");
    r.removed.store(true, Ordering::SeqCst);
    r.post(removal.clone()).await;
    connection_becomes(&r, "disconnected").await;

    // The business grants access again and the tenant reconnects: the same connection, live.
    r.removed.store(false, Ordering::SeqCst);
    let endpoint = r.hook.rsplit('/').next().expect("endpoint").to_string();
    let (status, c) =
        r.h.call(
            Method::POST,
            &format!("/api/v1/tenants/{}/connections", r.tenant.0),
            Some(&r.tenant.1),
            Some(crate::api::connect_body(&endpoint, "1001", "token-a")),
        )
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["status"], "live");

    // Meta redelivers the very same body: acknowledged, stored, not applied again.
    let checks = |r: &Run| {
        r.graph
            .requests()
            .iter()
            .filter(|q| q.method == "GET" && q.path.starts_with("/v26.0/1001?"))
            .count()
    };
    let before = checks(&r);
    r.post(removal.clone()).await;
    assert_eq!(checks(&r), before, "a redelivery is not even checked");
    let live = r.h.ok(Method::GET, &path, &r.tenant.1, None).await;
    assert_eq!(live["status"], "live", "{live}");

    // A stale event in other bytes (an older delivery Meta had not managed to make): it
    // happened before the reconnect, so it is ignored without even asking Meta.
    let an_hour_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        - 3600;
    r.post(account_update_at(
        "102290129340398",
        "PARTNER_REMOVED",
        an_hour_ago,
    ))
    .await;
    assert_eq!(checks(&r), before, "an event older than the connection");
    // One that claims to be newer: the provider still accepts the credentials, so nothing is
    // destroyed.
    r.post(account_update_at(
        "102290129340398",
        "PARTNER_REMOVED",
        an_hour_ago + 7200,
    ))
    .await;
    assert_eq!(
        checks(&r),
        before + 1,
        "the newer event was checked with Meta"
    );
    let live = r.h.ok(Method::GET, &path, &r.tenant.1, None).await;
    assert_eq!(live["status"], "live", "{live}");
    assert!(live["status_reason"].is_null(), "{live}");
    // The ledger: one removal, two grants; nothing shredded after the reconnect.
    let ledger =
        r.h.ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/consent", r.tenant.0),
            &r.tenant.1,
            None,
        )
        .await;
    let actions: Vec<&str> = ledger["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|e| e["connection_id"] == r.connection.as_str())
        .filter_map(|e| e["action"].as_str())
        .collect();
    let count = |a: &str| actions.iter().filter(|x| **x == a).count();
    assert_eq!(
        (
            count("granted"),
            count("revoked-at-provider"),
            count("shredded")
        ),
        (2, 1, 1),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_contact_who_changes_number_keeps_their_conversation() {
    let r = start().await;
    r.post(inbound("111", "wamid.N1", "hello", now_s())).await;
    let (before, _) = r.conversation("111").await;
    // Meta's system message: "User … changed from 111 to 222".
    let change = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "1001"},
            "messages": [{"from": "111", "id": "wamid.N2", "timestamp": now_s().to_string(),
                          "type": "system", "system": {
                              "body": "User Contact 111 changed from 111 to 222",
                              "wa_id": "222", "type": "user_changed_number"}}]
        }}]}]
    })
    .to_string()
    .into_bytes();
    r.post(change).await;
    r.post(inbound("222", "wamid.N3", "it's me, new number", now_s()))
        .await;
    let (after, msgs) = r.conversation("222").await;
    assert_eq!(after["id"], before["id"], "same conversation, new number");
    let ids: Vec<&str> = msgs
        .iter()
        .filter(|m| m["direction"] == "in")
        .filter_map(|m| m["provider_message_id"].as_str())
        .collect();
    assert_eq!(ids, vec!["wamid.N3", "wamid.N2", "wamid.N1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_template_meta_paused_is_not_sent() {
    let r = start().await;
    let paused = json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "time": 1749416700, "changes": [{
            "field": "message_template_status_update",
            "value": {"event": "PAUSED", "message_template_id": 594425479261596_i64,
                      "message_template_name": "follow_up", "message_template_language": "en_US",
                      "reason": "Low quality"}
        }]}]
    })
    .to_string()
    .into_bytes();
    r.post(paused).await;
    // Outside the window the reply would be the follow_up fallback: paused, so nothing goes out.
    r.post(inbound(
        "321",
        "wamid.T1",
        "What are your hours?",
        now_s() - 25 * 3600,
    ))
    .await;
    assert!(r.sends_to("321").is_empty());
    let (_, msgs) = r.conversation("321").await;
    assert_eq!(
        (msgs[0]["status"].as_str(), msgs[0]["error_kind"].as_str()),
        (Some("failed"), Some("template-not-approved")),
        "{msgs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_provider_id_already_taken_does_not_make_a_sent_reply_look_unsent() {
    let r = start().await;
    r.post(inbound("654", "wamid.REUSED", "say it again", now_s()))
        .await;
    // Sent once, recorded as accepted (without the clashing id), never retried.
    assert_eq!(r.sends_to("654").len(), 1);
    let (_, msgs) = r.conversation("654").await;
    assert_eq!(
        (
            msgs[0]["direction"].as_str(),
            msgs[0]["status"].as_str(),
            msgs[0]["send_attempts"].as_i64()
        ),
        (Some("out"), Some("accepted"), Some(1)),
        "{msgs:?}"
    );
    assert!(msgs[0]["provider_message_id"].is_null());
}
