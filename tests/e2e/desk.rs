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

/// Run `test` against a host on SQLite, then on PostgreSQL when there is one (`name` names its
/// database), each with a Graph API that sends and a mail sink.
async fn on_both_backends(name: &str, test: impl AsyncFn(Host, &Fake, &Sink)) {
    let sink = Sink::start().await;
    let args = ["--smtp-url", sink.url.as_str()];
    let graph = graph_that_sends().await;
    test(
        Host::start_with(Db::Sqlite, &graph.origin, &args).await,
        &graph,
        &sink,
    )
    .await;
    if let Some(pg) = crate::pg::PgDb::create(name).await {
        let graph = graph_that_sends().await;
        test(
            Host::start_with(Db::Postgres(pg), &graph.origin, &args).await,
            &graph,
            &sink,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn people_own_conversations_and_work_them_on_both_backends() {
    on_both_backends("desk", desk).await;
}

/// A Graph API that lists three templates (one approved utility, one paused, one approved
/// marketing), accepts sends with numbered ids, and refuses a text that says "please fail" as
/// Meta refuses an undeliverable message.
async fn graph_for_people() -> Fake {
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Fake::start_with(move |r| {
        if r.path.contains("/message_templates") {
            return (200, json!({"data": [
                {"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY", "id": "1"},
                {"name": "old_notice", "language": "en_US", "status": "PAUSED", "category": "UTILITY", "id": "2"},
                {"name": "spring_sale", "language": "en_US", "status": "APPROVED", "category": "MARKETING", "id": "3"}
            ]}).to_string());
        }
        if r.method == "POST" && r.path.ends_with("/messages") {
            if String::from_utf8_lossy(&r.body).contains("please fail") {
                return (400, json!({"error": {"message": "(#131026) Message undeliverable", "type": "OAuthException", "code": 131026, "fbtrace_id": "A1"}}).to_string());
            }
            let n = sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            return (200, json!({"messaging_product": "whatsapp", "contacts": [{"input": "16505551234", "wa_id": "16505551234"}], "messages": [{"id": format!("wamid.OUT{n}")}]}).to_string());
        }
        crate::api::graph_ok(r)
    })
    .await
}

/// Every send body the fake Graph received for `number`, in order.
fn sends(graph: &Fake, number: &str) -> Vec<Value> {
    graph
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(&format!("/{number}/messages")))
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .collect()
}

/// People reply: text with reply context, a reaction, a file the provider fetches from the
/// host, a template once the window closed (refused free-form, with the reason), a provider
/// refusal in words; each records who sent it, takes the conversation from the policy, and
/// the tenant's idle hand-back gives it back.
async fn replies(h: Host, graph: &Fake, pg_url: Option<String>) {
    let s = setup(&h).await;
    let t = s.a.0.clone();
    use_echo(&h, &s.a).await;
    let raw = crate::accounts::Raw::open(&h, pg_url.as_deref()).await;
    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);
    let post = async |wamid: &str, text: &str| {
        let r = post_meta_message(&client, &hook, "1001", wamid, text).await;
        assert_eq!(r.status(), 200);
    };
    post("wamid.R1", "hello").await;
    until("the policy answers", async || {
        sends(graph, "1001").len() == 1
    })
    .await;
    let (conv, msgs) = h
        .conversation_with(&s.a, "contact_phone", "16505551234")
        .await
        .expect("conversation");
    let conv_id = conv["id"].as_str().expect("id").to_string();
    let inbound = msgs
        .iter()
        .find(|m| m["direction"] == "in")
        .expect("inbound")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let base = format!("/api/v1/tenants/{t}/conversations/{conv_id}");
    let agent = s.a_keys["agent"].clone();
    let view = h.ok(Method::GET, &base, &s.a_keys["viewer"], None).await;
    assert_eq!(view["reply"]["mode"], "free-form", "{view}");
    assert!(view["reply"]["window_closes_at"].as_i64().is_some());
    assert_eq!(view["reply"]["channel"]["reactions"], true);
    // Templates appear once listed; only approved ones this contact may receive (no marketing
    // consent here).
    h.ok(
        Method::POST,
        &format!(
            "/api/v1/tenants/{t}/connections/{}/templates/sync",
            s.a_connection
        ),
        &s.a.1,
        None,
    )
    .await;
    let view = h.ok(Method::GET, &base, &agent, None).await;
    assert_eq!(
        view["reply"]["templates"],
        json!([{"name": "order_update", "language": "en_US", "category": "utility"}])
    );

    // Text, quoting the customer's message: who sent it is recorded; people own it now.
    let say = async |key: &str, body: Value| {
        h.call(
            Method::POST,
            &format!("{base}/messages"),
            Some(key),
            Some(body),
        )
        .await
    };
    assert_error(
        &say(&s.a_keys["viewer"], json!({"text": "hi"})).await,
        403,
        "forbidden",
    );
    // With an Idempotency-Key, as a client that retries after a lost answer sends it: the
    // retry gets the first request's message and nothing is sent twice (the sends counted
    // below prove it).
    let keyed = async |idem: &str, to: &str| {
        let r = reqwest::Client::new()
            .post(format!("{}{to}/messages", h.base))
            .bearer_auth(&agent)
            .header("idempotency-key", idem)
            .json(&json!({"text": "Hi, this is Ana from support", "reply_to": inbound}))
            .send()
            .await
            .expect("reply");
        let status = r.status().as_u16();
        (status, r.json::<Value>().await.expect("json"))
    };
    let (status, sent) = keyed("retry-1", &base).await;
    assert_eq!(status, 202, "{sent}");
    let (again, same) = keyed("retry-1", &base).await;
    assert_eq!(
        (again, same["id"].clone()),
        (200, sent["id"].clone()),
        "{same}"
    );
    let (bad, _) = keyed("has a space", &base).await;
    assert_eq!(bad, 400);
    assert_eq!(
        sent["author"].as_str().map(|a| a.starts_with("key_")),
        Some(true),
        "{sent}"
    );
    assert_eq!(sent["status"], "queued");
    until("the person's reply reaches Meta", async || {
        sends(graph, "1001").len() == 2
    })
    .await;
    let out = &sends(graph, "1001")[1];
    assert_eq!(out["text"]["body"], "Hi, this is Ana from support");
    assert_eq!(out["context"]["message_id"], "wamid.R1");
    let owned = h.ok(Method::GET, &base, &agent, None).await;
    assert_eq!(owned["conversation"]["owner"], "people");
    assert!(owned["conversation"]["people_active_at"].as_i64().is_some());

    // While people own it, the policy stays silent.
    post("wamid.R2", "are you a person?").await;
    until("the message is stored", async || {
        h.conversation_with(&s.a, "contact_phone", "16505551234")
            .await
            .is_some_and(|(_, m)| m.len() == 4)
    })
    .await;

    // A reaction, and shapes refused before anything is queued.
    let (status, reacted) = say(
        &agent,
        json!({"reaction": {"message": inbound, "emoji": "👍"}}),
    )
    .await;
    assert_eq!(
        (status, reacted["kind"].clone()),
        (202, json!("reaction")),
        "{reacted}"
    );
    until("the reaction reaches Meta", async || {
        sends(graph, "1001").len() == 3
    })
    .await;
    assert_eq!(
        sends(graph, "1001")[2]["reaction"],
        json!({"message_id": "wamid.R1", "emoji": "👍"})
    );
    assert_error(
        &say(
            &agent,
            json!({"text": "a", "template": {"name": "x", "language": "en"}}),
        )
        .await,
        422,
        "invalid_reply",
    );
    assert_error(
        &say(
            &agent,
            json!({"reaction": {"message": "msg_nope", "emoji": "👍"}}),
        )
        .await,
        422,
        "unknown_message",
    );
    assert_error(
        &say(&agent, json!({"text": " "})).await,
        422,
        "invalid_reply",
    );
    assert_error(
        &say(
            &agent,
            json!({"reaction": {"message": inbound, "emoji": "lol"}}),
        )
        .await,
        422,
        "invalid_reply",
    );

    // A file: the provider fetches it from the host through a link; a wrong link is 404.
    let png = b"\x89PNG\r\n\x1a\nnot-really-a-picture".to_vec();
    let r = client
        .post(format!("{}{base}/media?caption=our%20menu", h.base))
        .bearer_auth(&agent)
        .header("content-type", "image/png")
        .body(png.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 202);
    until("the picture reaches Meta", async || {
        sends(graph, "1001").len() == 4
    })
    .await;
    let image = sends(graph, "1001")[3]["image"].clone();
    assert_eq!(image["caption"], "our menu", "{image}");
    // The link is on the host's public URL; here it is reached on the host's address.
    let public = image["link"].as_str().expect("link");
    let at = public.find("/media/").expect("a media link");
    assert!(
        public[at..].starts_with(&format!("/media/{t}.med_")),
        "{public}"
    );
    let link = format!("{}{}", h.base, &public[at..]);
    let fetched = client.get(&link).send().await.expect("fetch");
    assert_eq!(fetched.status(), 200);
    let header = |name: &str| {
        fetched
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(header("content-type").as_deref(), Some("image/png"));
    assert_eq!(header("content-disposition").as_deref(), Some("attachment"));
    assert_eq!(
        header("content-security-policy").as_deref(),
        Some("sandbox; default-src 'none'")
    );
    assert_eq!(fetched.bytes().await.expect("bytes").to_vec(), png);
    let forged = format!("{}x", &link[..link.len() - 1]);
    assert_eq!(
        client.get(&forged).send().await.expect("forged").status(),
        404
    );
    let r = client
        .post(format!("{}{base}/media", h.base))
        .bearer_auth(&agent)
        .header("content-type", "application/x-msdownload")
        .body(b"MZ".to_vec())
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 422);
    // A file under a type it is not (a program called a PDF) is refused too.
    let r = client
        .post(format!("{}{base}/media", h.base))
        .bearer_auth(&agent)
        .header("content-type", "application/pdf")
        .body(b"MZ\x90\0 this is a program".to_vec())
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 422);
    let refused: Value = r.json().await.expect("json");
    assert_eq!(refused["error"]["code"], "media_mismatch", "{refused}");

    // The provider refuses one: the agent reads why, in words.
    let (status, _) = say(&agent, json!({"text": "please fail"})).await;
    assert_eq!(status, 202);
    until("the refusal is recorded in words", async || {
        h.conversation_with(&s.a, "contact_phone", "16505551234")
            .await
            .is_some_and(|(_, m)| {
                m.iter().any(|m| {
                    m["status"] == "failed"
                        && m["failure"]
                            .as_str()
                            .is_some_and(|f| f.starts_with("The provider refused it (131026"))
                })
            })
    })
    .await;

    // The window closes (25 hours pass): free-form is refused with the reason; only an
    // approved, listed template goes out.
    let past = "- 25 * 3600000";
    raw.exec(format!(
        "UPDATE conversations SET last_inbound_at = last_inbound_at {past} WHERE id = '{conv_id}'"
    ))
    .await;
    let view = h.ok(Method::GET, &base, &agent, None).await;
    assert_eq!(view["reply"]["mode"], "template", "{view}");
    assert!(
        view["reply"]["reason"]
            .as_str()
            .expect("reason")
            .contains("window")
    );
    let refused = say(&agent, json!({"text": "still there?"})).await;
    assert_error(&refused, 422, "window_closed");
    assert!(
        refused.1["error"]["message"]
            .as_str()
            .expect("message")
            .contains("approved template")
    );
    assert_error(
        &say(
            &agent,
            json!({"template": {"name": "nope", "language": "en_US"}}),
        )
        .await,
        422,
        "unknown_template",
    );
    assert_error(
        &say(
            &agent,
            json!({"template": {"name": "old_notice", "language": "en_US"}}),
        )
        .await,
        422,
        "template_not_approved",
    );
    assert_error(
        &say(
            &agent,
            json!({"template": {"name": "spring_sale", "language": "en_US"}}),
        )
        .await,
        422,
        "marketing_not_consented",
    );
    let (status, templated) = say(
        &agent,
        json!({"template": {"name": "order_update", "language": "en_US", "parameters": ["A-1"]}}),
    )
    .await;
    assert_eq!(
        (status, templated["kind"].clone()),
        (202, json!("template")),
        "{templated}"
    );
    until("the template reaches Meta", async || {
        sends(graph, "1001")
            .iter()
            .any(|b| b["template"]["name"] == "order_update")
    })
    .await;

    // The idle hand-back: admins set it; a conversation idle longer goes back to its policy,
    // which answers the next message.
    let settings = format!("/api/v1/tenants/{t}");
    assert_error(
        &h.call(
            Method::PATCH,
            &settings,
            Some(&agent),
            Some(json!({"hand_back_minutes": 5})),
        )
        .await,
        403,
        "forbidden",
    );
    assert_error(
        &h.call(
            Method::PATCH,
            &settings,
            Some(&s.a_keys["admin"]),
            Some(json!({"hand_back_minutes": 0})),
        )
        .await,
        422,
        "invalid_hand_back",
    );
    let set = h
        .ok(
            Method::PATCH,
            &settings,
            &s.a_keys["admin"],
            Some(json!({"hand_back_minutes": 5})),
        )
        .await;
    assert_eq!(set["hand_back_minutes"], 5);
    raw.exec(format!(
        "UPDATE conversations SET people_active_at = people_active_at - 6 * 60000 WHERE id = '{conv_id}'"
    ))
    .await;
    until(
        "the idle conversation goes back to its policy",
        async || h.ok(Method::GET, &base, &agent, None).await["conversation"]["owner"] == "policy",
    )
    .await;
    let before = sends(graph, "1001").len();
    post("wamid.R3", "anyone?").await;
    until("the policy answers again", async || {
        sends(graph, "1001").len() == before + 1
    })
    .await;
    assert_eq!(sends(graph, "1001")[before]["text"]["body"], "anyone?");

    // The business answers from the WhatsApp Business app (a coexistence echo): recorded as a
    // person's reply, and the policy stops answering.
    let echo = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398",
        "changes": [{"field": "smb_message_echoes", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "1001"},
            "message_echoes": [{"from": "15550783881", "to": "16505551234", "id": "wamid.ECHO1",
                "timestamp": crate::ingress::now_s().to_string(), "type": "text",
                "text": {"body": "Answering from my phone"}}]}}]}]})
    .to_string();
    let r = client
        .post(&hook)
        .header(
            "x-hub-signature-256",
            crate::ingress::sign("app-secret-1", echo.as_bytes()),
        )
        .header("content-type", "application/json")
        .body(echo)
        .send()
        .await
        .expect("echo");
    assert_eq!(r.status(), 200);
    until("the echo gives the conversation to people", async || {
        h.ok(Method::GET, &base, &agent, None).await["conversation"]["owner"] == "people"
    })
    .await;
    let (_, msgs) = h
        .conversation_with(&s.a, "contact_phone", "16505551234")
        .await
        .expect("conversation");
    let echoed = msgs
        .iter()
        .find(|m| m["provider_message_id"] == "wamid.ECHO1")
        .expect("the echo is in the conversation");
    assert_eq!(
        (
            echoed["direction"].clone(),
            echoed["author"].clone(),
            echoed["status"].clone()
        ),
        (json!("out"), json!("echo"), json!("sent"))
    );
    let before = sends(graph, "1001").len();
    post("wamid.R4", "thanks!").await;
    until("the message is stored", async || {
        h.conversation_with(&s.a, "contact_phone", "16505551234")
            .await
            .is_some_and(|(_, m)| m.iter().any(|m| m["provider_message_id"] == "wamid.R4"))
    })
    .await;
    // The decide job runs right after the message is stored; give it that turn.
    h.ok(Method::GET, &base, &agent, None).await;
    assert_eq!(
        sends(graph, "1001").len(),
        before,
        "the policy stayed silent after the echo"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn people_reply_with_text_reactions_media_and_templates_on_both_backends() {
    let args = ["--hand-back-every-secs", "1"];
    let graph = graph_for_people().await;
    replies(
        Host::start_with(Db::Sqlite, &graph.origin, &args).await,
        &graph,
        None,
    )
    .await;
    if let Some(pg) = crate::pg::PgDb::create("desk_replies").await {
        let graph = graph_for_people().await;
        let url = pg.superuser_url();
        replies(
            Host::start_with(Db::Postgres(pg), &graph.origin, &args).await,
            &graph,
            Some(url),
        )
        .await;
    }
}

/// The click-to-WhatsApp ad a contact came from, as Meta documents it on the message.
fn ad_referral() -> Value {
    json!({
        "source_url": "https://fb.me/2ZulEu42P",
        "source_id": "120226305854810726",
        "source_type": "ad",
        "body": "Spring sale: everything half price",
        "headline": "Chat with us",
        "media_type": "image",
        "image_url": "https://scontent.xx.fbcdn.net/v/ad.jpg",
        "ctwa_clid": "Aff-n8ZTODiE79d22KtAwQKj9e_mIEOOj27vDVwFjN80dp4_0N",
        "welcome_message": {"text": "Hi there! Let us know how we can help!"}
    })
}

/// A Meta text webhook whose message came from a click-to-WhatsApp ad.
fn message_from_ad(wamid: &str, text: &str) -> Vec<u8> {
    let mut body: Value =
        serde_json::from_slice(&crate::ingress::meta_message("1001", wamid, text)).expect("json");
    body["entry"][0]["changes"][0]["value"]["messages"][0]["referral"] = ad_referral();
    body.to_string().into_bytes()
}

/// The ad that started a chat (issue 19, item 7) is kept with the message that carried it: the
/// desk's API shows it with its click id (only the fields the host keeps), the export holds it,
/// and erasing the contact takes it away with their messages.
async fn referral(h: Host, graph: &Fake, sink: &Sink) {
    let s = setup(&h).await;
    let t = s.a.0.clone();
    use_echo(&h, &s.a).await;
    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);
    let r = crate::ingress::post_signed(&client, &hook, message_from_ad("wamid.AD1", "hi")).await;
    assert_eq!(r.status(), 200);
    until("the policy answers", async || {
        sent_from(graph, "1001").len() == 1
    })
    .await;
    let (conv, messages) = h
        .conversation_with(&s.a, "contact_phone", "16505551234")
        .await
        .expect("conversation");
    let kept = json!({
        "source_url": "https://fb.me/2ZulEu42P",
        "source_id": "120226305854810726",
        "source_type": "ad",
        "headline": "Chat with us",
        "body": "Spring sale: everything half price",
        "click_id": "Aff-n8ZTODiE79d22KtAwQKj9e_mIEOOj27vDVwFjN80dp4_0N"
    });
    let inbound = messages
        .iter()
        .find(|m| m["provider_message_id"] == "wamid.AD1")
        .expect("the inbound message");
    assert_eq!(inbound["referral"], kept, "{inbound}");
    let reply = messages
        .iter()
        .find(|m| m["direction"] == "out")
        .expect("the reply");
    assert!(reply.get("referral").is_none(), "{reply}");
    // The API's document describes it.
    let doc = h
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .1;
    let schema = &doc["components"]["schemas"]["ReferralRecord"]["properties"];
    assert!(schema["click_id"].is_object(), "{schema}");
    assert!(
        doc["components"]["schemas"]["MessageRecord"]["properties"]["referral"].is_object(),
        "{doc}"
    );

    // The console's conversation page says so on the message, linked to the ad.
    h.ok(
        Method::POST,
        &format!("/api/v1/tenants/{t}/invitations"),
        &s.a.1,
        Some(json!({"email": "ads@desk.test", "role": "agent"})),
    )
    .await;
    let mut agent = Browser::new(&h);
    agent
        .accept(sink, "ads@desk.test", "Ada", "a long enough passphrase")
        .await;
    let conversation_id = conv["id"].as_str().expect("id");
    let (status, page) = agent
        .call(
            Method::GET,
            &format!("/console/t/{t}/conversations/{conversation_id}"),
            None,
        )
        .await;
    let page = page.as_str().unwrap_or_default();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Started from an ad:"), "{page}");
    assert!(
        page.contains(
            r#"<a href="https://fb.me/2ZulEu42P" rel="noopener noreferrer nofollow" target="_blank">Chat with us</a>"#
        ),
        "{page}"
    );

    // The owner's export holds it.
    let export = format!("/api/v1/tenants/{t}/export");
    let archive = h.ok(Method::GET, &export, &s.a.1, None).await;
    let exported = archive["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["provider_message_id"] == "wamid.AD1")
        .expect("the message in the export");
    assert_eq!(exported["referral"], kept);

    // Erasing the contact erases the ad's trace too.
    let contact = conv["contact_id"].as_str().expect("contact");
    h.ok(
        Method::DELETE,
        &format!("/api/v1/tenants/{t}/contacts/{contact}"),
        &s.a_keys["admin"],
        None,
    )
    .await;
    let after = h.ok(Method::GET, &export, &s.a.1, None).await.to_string();
    for trace in [
        "Aff-n8ZTODiE79d22KtAwQKj9e",
        "fb.me/2ZulEu42P",
        "Chat with us",
    ] {
        assert!(!after.contains(trace), "{trace} outlived the erasure");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ads_referral_is_kept_shown_exported_and_erased_on_both_backends() {
    on_both_backends("desk_referral", referral).await;
}
