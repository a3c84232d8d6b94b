//! Access policies and the customers' commands (issue 17, item 7; reference 001) against the
//! real host on both backends, with a fake Graph and an SMTP sink: `/whoami`, `/login` by mail
//! (a wrong code, an expired code, too many attempts, a resend too soon), `/logout`; a number
//! that requires a verified email, then sharing, with access requests approved and refused;
//! admins notified of requests and of a policy's hand-off.

use reqwest::Method;
use serde_json::{Value, json};

use crate::accounts::{Raw, until};
use crate::api::{Db, Host, assert_error, setup};
use crate::fake::Fake;
use crate::ingress::{graph_that_sends, meta_message_from, post_signed, use_echo};
use crate::people::Browser;
use crate::smtp::Sink;

/// What the business sent `contact`, in order (text bodies).
fn said_to(graph: &Fake, contact: &str) -> Vec<String> {
    graph
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/1001/messages"))
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .filter(|b| b["to"] == contact)
        .map(|b| b["text"]["body"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The six digits in a `/login` mail.
fn code_in(text: &str) -> String {
    let start = text.find("Your code is ").expect("code") + "Your code is ".len();
    text[start..start + 6].to_string()
}

/// Another code than `code`.
fn wrong(code: &str) -> String {
    let n: u32 = code.parse().expect("digits");
    format!("{:06}", (n + 1) % 1_000_000)
}

struct Chat<'a> {
    graph: &'a Fake,
    client: reqwest::Client,
    hook: String,
    sent: std::cell::Cell<u32>,
}

impl Chat<'_> {
    /// `contact` writes `text`; the business's next answer to them.
    async fn say(&self, contact: &str, text: &str) -> String {
        let before = said_to(self.graph, contact).len();
        self.sent.set(self.sent.get() + 1);
        let wamid = format!("wamid.AC{}", self.sent.get());
        let body = meta_message_from("1001", contact, &wamid, text);
        let r = post_signed(&self.client, &self.hook, body).await;
        assert_eq!(r.status(), 200);
        let mut answer = None;
        until(&format!("an answer to {text:?}"), async || {
            answer = said_to(self.graph, contact).get(before).cloned();
            answer.is_some()
        })
        .await;
        answer.expect("answer")
    }
}

async fn access(h: Host, graph: &Fake, sink: &Sink, pg_url: Option<String>) {
    let s = setup(&h).await;
    let t = s.a.0.clone();
    let admin = s.a_keys["admin"].clone();
    use_echo(&h, &s.a).await;
    let chat = Chat {
        graph,
        client: reqwest::Client::new(),
        hook: format!("{}/hooks/{}", h.base, s.endpoint),
        sent: std::cell::Cell::new(0),
    };
    let path = format!("/api/v1/tenants/{t}/connections/{}/access", s.a_connection);
    // An admin who signs in, to see the access requests' notifications.
    h.ok(
        Method::POST,
        &format!("/api/v1/tenants/{t}/invitations"),
        &s.a.1,
        Some(json!({"email": "admin@access.test", "role": "admin"})),
    )
    .await;
    let mut ad = Browser::new(&h);
    ad.accept(sink, "admin@access.test", "Ada", "a long enough passphrase")
        .await;
    let set = async |body: Value| h.call(Method::PUT, &path, Some(&admin), Some(body)).await;
    let mail_code = async |email: &str, before: usize| {
        until("the code is mailed", async || {
            sink.mails()
                .iter()
                .filter(|m| m.to.iter().any(|t| t == email))
                .count()
                > before
        })
        .await;
        code_in(&sink.last_to(email).await.text())
    };
    let mails_to = |email: &str| {
        sink.mails()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == email))
            .count()
    };

    // Open by default: commands are the host's, everything else the policy's.
    let view = h.ok(Method::GET, &path, &admin, None).await;
    assert_eq!(view, json!({"policy": "open", "shared": []}));
    let ana = "16505550301";
    assert!(
        chat.say(ana, "/whoami")
            .await
            .starts_with("No email is verified")
    );
    assert_eq!(
        chat.say(ana, "hello").await,
        "hello",
        "the echo policy answers"
    );
    assert!(
        chat.say(ana, "/login")
            .await
            .contains("/login you@example.com")
    );

    // Settings are checked.
    assert_error(
        &set(json!({"policy": "closed"})).await,
        422,
        "invalid_access_policy",
    );
    assert_error(
        &set(json!({"policy": "sharing", "shared": ["not an email"]})).await,
        422,
        "invalid_email",
    );
    assert_error(
        &set(json!({"policy": "open", "extra": 1})).await,
        422,
        "invalid_body",
    );
    assert_error(
        &h.call(
            Method::PUT,
            &format!("/api/v1/tenants/{t}/connections/con_nope/access"),
            Some(&admin),
            Some(json!({"policy": "email"})),
        )
        .await,
        404,
        "not_found",
    );

    // A verified email first.
    let on = set(json!({"policy": "email"})).await;
    assert_eq!(
        (on.0, on.1["policy"].clone()),
        (200, json!("email")),
        "{}",
        on.1
    );
    assert!(
        chat.say(ana, "hello?")
            .await
            .starts_with("Before we chat, please verify your email")
    );
    let asked = chat.say(ana, "/login Ana@Example.com").await;
    assert!(asked.contains("ana@example.com"), "{asked}");
    let code = mail_code("ana@example.com", 0).await;
    let mail = sink.last_to("ana@example.com").await.text();
    assert!(mail.contains(&format!("/login {code}")), "{mail}");
    assert_eq!(
        chat.say(ana, &format!("/login {}", wrong(&code))).await,
        "That code is not right. 4 tries left."
    );
    assert_eq!(
        chat.say(ana, &format!("/login {code}")).await,
        "Thanks: you are verified as ana@example.com."
    );
    assert_eq!(chat.say(ana, "hello again").await, "hello again");
    assert_eq!(
        chat.say(ana, "/whoami").await,
        "You are verified as ana@example.com on this number."
    );
    // The codes never stay in the conversation; the desk shows the proved email.
    let (conv, messages) = h
        .conversation_with(&s.a, "contact_phone", ana)
        .await
        .expect("conversation");
    assert_eq!(conv["contact_email"], "ana@example.com");
    let bodies: Vec<&str> = messages.iter().filter_map(|m| m["body"].as_str()).collect();
    assert!(!bodies.iter().any(|b| b.contains(&code)), "{bodies:?}");
    assert_eq!(bodies.iter().filter(|b| **b == "/login ······").count(), 2);
    assert!(
        messages
            .iter()
            .filter(|m| m["direction"] == "out")
            .any(|m| m["author"] == "host")
    );

    // Too many wrong codes spend the code.
    let bo = "16505550302";
    chat.say(bo, "/login bo@example.com").await;
    let code = mail_code("bo@example.com", 0).await;
    for left in ["4 tries", "3 tries", "2 tries", "1 try"] {
        assert_eq!(
            chat.say(bo, &format!("/login {}", wrong(&code))).await,
            format!("That code is not right. {left} left.")
        );
    }
    assert!(
        chat.say(bo, &format!("/login {}", wrong(&code)))
            .await
            .starts_with("Too many wrong codes")
    );
    assert!(
        chat.say(bo, &format!("/login {code}"))
            .await
            .starts_with("There is no code waiting")
    );
    // A resend within the minute is refused, without a mail.
    assert!(
        chat.say(bo, "/login bo@example.com")
            .await
            .starts_with("We sent you a code less than a minute ago")
    );
    assert_eq!(mails_to("bo@example.com"), 1);

    // One address gets codes for at most three contacts an hour: no mail bombing a stranger.
    for (i, contact) in ["16505550311", "16505550312", "16505550313"]
        .iter()
        .enumerate()
    {
        assert!(
            chat.say(contact, "/login target@example.org")
                .await
                .starts_with("We mailed"),
            "contact {i}"
        );
    }
    assert_eq!(
        chat.say("16505550314", "/login target@example.org").await,
        "Too many codes were asked for this address in the last hour. Try again later."
    );
    until("three mails", async || mails_to("target@example.org") == 3).await;

    // An expired code.
    let cy = "16505550303";
    chat.say(cy, "/login cy@example.com").await;
    let code = mail_code("cy@example.com", 0).await;
    let raw = Raw::open(&h, pg_url.as_deref()).await;
    raw.exec("UPDATE login_codes SET expires_at = expires_at - 600001".into())
        .await;
    assert!(
        chat.say(cy, &format!("/login {code}"))
            .await
            .starts_with("That code has expired")
    );
    assert!(
        chat.say(cy, "/whoami")
            .await
            .starts_with("No email is verified")
    );

    // Sharing: only the emails the number is shared with reach the policy.
    let on = set(json!({"policy": "sharing", "shared": ["ANA@example.com"]})).await;
    assert_eq!(on.1["shared"][0]["email"], "ana@example.com", "{}", on.1);
    assert_eq!(chat.say(ana, "shared?").await, "shared?");
    let dee = "16505550304";
    assert!(
        chat.say(dee, "hi")
            .await
            .contains("Verify your email first")
    );
    chat.say(dee, "/login dee@example.com").await;
    let code = mail_code("dee@example.com", 0).await;
    let before = said_to(graph, dee).len();
    chat.say(dee, &format!("/login {code}")).await;
    until("both answers", async || {
        said_to(graph, dee).len() == before + 2
    })
    .await;
    let answers = said_to(graph, dee).split_off(before);
    assert!(answers.contains(&"Thanks: you are verified as dee@example.com.".to_string()));
    assert!(
        answers
            .iter()
            .any(|a| a.contains("We asked the team to let dee@example.com in")),
        "{answers:?}"
    );
    assert_eq!(
        chat.say(dee, "hi again").await,
        "Your request for dee@example.com is still waiting for the team's approval."
    );
    let requests = async |state: &str| {
        h.ok(
            Method::GET,
            &format!("/api/v1/tenants/{t}/access-requests?state={state}"),
            &admin,
            None,
        )
        .await["data"]
            .as_array()
            .expect("data")
            .clone()
    };
    let pending = requests("pending").await;
    assert_eq!(
        pending.len(),
        1,
        "one request, however often they write: {pending:?}"
    );
    assert_eq!(pending[0]["email"], "dee@example.com");
    // The tenant's admins are told, with the conversation to open.
    let listed = ad
        .call(
            Method::GET,
            &format!("/api/v1/tenants/{t}/notifications"),
            None,
        )
        .await;
    let note = &listed.1["data"][0];
    assert_eq!(
        (note["kind"].clone(), note["text"].clone()),
        (
            json!("access"),
            json!("dee@example.com asks for access to this number")
        ),
        "{}",
        listed.1
    );
    assert_eq!(note["conversation_id"], pending[0]["conversation_id"]);
    let decide = async |id: &Value, decision: &str, key: &str| {
        h.call(
            Method::POST,
            &format!(
                "/api/v1/tenants/{t}/access-requests/{}",
                id.as_str().expect("id")
            ),
            Some(key),
            Some(json!({"decision": decision})),
        )
        .await
    };
    assert_error(
        &decide(&pending[0]["id"], "approve", &s.a_keys["agent"]).await,
        403,
        "forbidden",
    );
    assert_error(
        &decide(&pending[0]["id"], "maybe", &admin).await,
        422,
        "invalid_decision",
    );
    let approved = decide(&pending[0]["id"], "approve", &admin).await;
    assert_eq!(
        (approved.0, approved.1["state"].clone()),
        (200, json!("approved")),
        "{}",
        approved.1
    );
    assert_error(
        &decide(&pending[0]["id"], "refuse", &admin).await,
        409,
        "already_decided",
    );
    let view = h.ok(Method::GET, &path, &admin, None).await;
    let shared: Vec<&str> = view["shared"]
        .as_array()
        .expect("shared")
        .iter()
        .map(|e| e["email"].as_str().expect("email"))
        .collect();
    assert_eq!(shared, ["ana@example.com", "dee@example.com"]);
    assert_eq!(chat.say(dee, "thanks!").await, "thanks!");

    // Refused stays refused, and the owners are not asked again.
    let eve = "16505550305";
    chat.say(eve, "/login eve@example.com").await;
    let code = mail_code("eve@example.com", 0).await;
    let before = said_to(graph, eve).len();
    chat.say(eve, &format!("/login {code}")).await;
    until("both answers", async || {
        said_to(graph, eve).len() == before + 2
    })
    .await;
    let pending = requests("pending").await;
    assert_eq!(pending.len(), 1);
    assert_eq!(
        decide(&pending[0]["id"], "refuse", &admin).await.1["state"],
        "refused"
    );
    assert!(
        chat.say(eve, "please?")
            .await
            .starts_with("Access for eve@example.com was declined")
    );
    assert!(requests("pending").await.is_empty());
    assert_eq!(requests("refused").await.len(), 1);

    // Logging out unlinks the email: the number is closed to them again.
    assert_eq!(
        chat.say(ana, "/logout").await,
        "Done: ana@example.com is no longer linked to this number."
    );
    assert!(
        chat.say(ana, "still there?")
            .await
            .contains("Verify your email first")
    );
    assert_eq!(
        chat.say(ana, "/logout").await,
        "No email is linked to this number."
    );

    // Open again, with a policy that hands unhappy customers to people: the desk is told.
    assert_eq!(set(json!({"policy": "open"})).await.0, 200);
    h.ok(
        Method::PUT,
        &format!("/api/v1/tenants/{t}/policy"),
        &s.a.1,
        Some(
            json!({"plugin": "triage", "config": {"handoff_reply": "A person will help you now."}}),
        ),
    )
    .await;
    let zed = "16505550320";
    assert_eq!(
        chat.say(zed, "This is terrible, the worst service ever")
            .await,
        "A person will help you now."
    );
    let (conv, _) = h
        .conversation_with(&s.a, "contact_phone", zed)
        .await
        .expect("conversation");
    assert_eq!(conv["owner"], "people");
    let mut note = Value::Null;
    until("the hand-off notification", async || {
        let listed = ad
            .call(
                Method::GET,
                &format!("/api/v1/tenants/{t}/notifications"),
                None,
            )
            .await;
        note = listed.1["data"][0].clone();
        note["kind"] == "hand-off"
    })
    .await;
    assert_eq!(note["conversation_id"], conv["id"]);
    assert!(
        note["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("The policy handed a conversation to people")),
        "{note}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_policies_and_login_commands_on_both_backends() {
    let sink = Sink::start().await;
    let args = ["--smtp-url", sink.url.as_str()];
    let graph = graph_that_sends().await;
    access(
        Host::start_with(Db::Sqlite, &graph.origin, &args).await,
        &graph,
        &sink,
        None,
    )
    .await;
    if let Some(pg) = crate::pg::PgDb::create("access").await {
        let graph = graph_that_sends().await;
        let url = pg.superuser_url();
        let sink = Sink::start().await;
        let args = ["--smtp-url", sink.url.as_str()];
        access(
            Host::start_with(Db::Postgres(pg), &graph.origin, &args).await,
            &graph,
            &sink,
            Some(url),
        )
        .await;
    }
}
