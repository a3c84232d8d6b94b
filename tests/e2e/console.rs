//! The console in headless Chromium against the real host, a fake Graph API, a fake Meta
//! sign-in dialog and an SMTP sink: a partner creates a business and invites its owner; the
//! owner invites an agent and connects a number through Embedded Signup, and watches the card
//! go live; a webhook's message appears in the inbox without a reload; the agent replies and it
//! reaches the fake Graph; close and reopen; notifications; the ledger shows the grant and,
//! after disconnecting, the revocation. Every page is screenshotted and checked for inline
//! script, inline style and secrets.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Db, Host, OPERATOR};
use crate::chromium::Chromium;
use crate::fake::{Fake, Received};
use crate::ingress::{meta_message_from, post_signed};
use crate::smtp::Sink;

const APP_ID: &str = "4455667788";
const CONFIG_ID: &str = "990011";
const WABA: &str = "102290129340398";
const NUMBER: &str = "7007";
const SYSTEM_TOKEN: &str = "EAAconsole-system-token-canary";
const PASSWORD: &str = "a long enough passphrase";

/// Meta's Graph API as Embedded Signup and the connector use it.
fn graph(r: &Received) -> (u16, String) {
    let path = r.path.split('?').next().unwrap_or_default();
    let query: std::collections::HashMap<String, String> =
        url::Url::parse(&format!("http://x{}", r.path))
            .map(|u| u.query_pairs().into_owned().collect())
            .unwrap_or_default();
    match (r.method.as_str(), path) {
        ("GET", "/v26.0/oauth/access_token") => {
            if query.get("code").map(String::as_str) == Some("console-code")
                && query.get("client_id").map(String::as_str) == Some(APP_ID)
                && query.get("client_secret").map(String::as_str) == Some("app-secret-1")
            {
                (200, json!({"access_token": SYSTEM_TOKEN, "token_type": "bearer"}).to_string())
            } else {
                (400, json!({"error": {"message": "Invalid verification code format.", "type": "OAuthException", "code": 100}}).to_string())
            }
        }
        ("GET", "/v26.0/debug_token") => (
            200,
            json!({"data": {"app_id": APP_ID, "type": "SYSTEM_USER", "is_valid": true, "expires_at": 0,
                "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"],
                "granular_scopes": [
                    {"scope": "whatsapp_business_management", "target_ids": [WABA]},
                    {"scope": "whatsapp_business_messaging", "target_ids": [WABA]}]}})
            .to_string(),
        ),
        ("POST", p) if p.ends_with("/messages") => (
            200,
            json!({"messaging_product": "whatsapp", "contacts": [{"input": "16505551234", "wa_id": "16505551234"}],
                   "messages": [{"id": format!("wamid.CONSOLE{}", r.body.len())}]})
            .to_string(),
        ),
        ("POST", p) if p.ends_with("/subscribed_apps") || p.ends_with("/register") => {
            (200, json!({"success": true}).to_string())
        }
        _ => crate::api::graph_ok(r),
    }
}

/// Meta's Embedded Signup dialog, faked: a page on its own origin whose "Continue" button
/// posts the session event to the opener, as Meta's does, and returns the code to the
/// `redirect_uri`.
async fn dialog() -> (String, tokio::task::JoinHandle<()>) {
    use axum::response::{Html, IntoResponse};
    let app = axum::Router::new()
        .route(
            "/v26.0/dialog/oauth",
            axum::routing::get(
                |q: axum::extract::Query<std::collections::HashMap<String, String>>| async move {
                    let ok = q.get("client_id").map(String::as_str) == Some(APP_ID)
                        && q.get("config_id").map(String::as_str) == Some(CONFIG_ID)
                        && q.get("response_type").map(String::as_str) == Some("code");
                    if !ok {
                        return (axum::http::StatusCode::BAD_REQUEST, "bad dialog parameters")
                            .into_response();
                    }
                    Html(format!(
                        r#"<!doctype html><html><body><h1>Meta (fake)</h1>
                        <p>Connect Lucky Shrub's number to the app</p>
                        <button id="allow" data-waba="{WABA}" data-number="{NUMBER}">Continue</button>
                        <script src="/dialog.js"></script></body></html>"#
                    ))
                    .into_response()
                },
            ),
        )
        .route(
            "/dialog.js",
            axum::routing::get(|| async {
                (
                    [(axum::http::header::CONTENT_TYPE, "text/javascript")],
                    r#"document.getElementById('allow').addEventListener('click', (e) => {
  const q = new URLSearchParams(location.search);
  window.opener.postMessage(JSON.stringify({type: 'WA_EMBEDDED_SIGNUP', event: 'FINISH',
    data: {phone_number_id: e.target.dataset.number, waba_id: e.target.dataset.waba}}), '*');
  const back = new URL(q.get('redirect_uri'));
  back.searchParams.set('code', 'console-code');
  back.searchParams.set('state', q.get('state'));
  location.assign(back.toString());
});"#,
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (origin, task)
}

/// Every page visited: its name and source, checked at the end.
#[derive(Default)]
struct Pages(Vec<(String, String)>);

impl Pages {
    async fn shot(&mut self, b: &Chromium, name: &str) {
        b.screenshot(name).await;
        // Usable at a phone's width: nothing makes the page scroll sideways.
        let wide = b
            .execute(
                "return [document.documentElement.scrollWidth - innerWidth, [...document.querySelectorAll('body *')].filter(e => !e.parentElement.closest('.table-wrap, header.top nav') && e.getBoundingClientRect().right > innerWidth + 1).slice(0, 6).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))];",
                vec![],
            )
            .await;
        assert!(
            wide[0].as_i64().unwrap_or(1) <= 0,
            "{name}: wider than the phone's screen: {wide}"
        );
        self.0.push((name.to_string(), b.source().await));
    }
}

async fn accept_invitation(b: &Chromium, h: &Host, sink: &Sink, email: &str, name: &str) {
    let token = sink
        .last_to(email)
        .await
        .link_param("token")
        .expect("token in the mail");
    b.goto(&format!("{}/invitation?token={token}", h.base))
        .await;
    let page = b.source().await;
    assert!(
        !page.contains(&token),
        "the page must not render the mailed token"
    );
    b.fill("#name", name).await;
    b.fill("#password", PASSWORD).await;
    b.click("form[data-api] button[type=submit]").await;
}

async fn sign_out(b: &Chromium) {
    b.click("form.sign-out button").await;
    b.wait_css("#password").await;
}

async fn sign_in(b: &Chromium, h: &Host, email: &str) {
    b.goto(&format!("{}/console/sign-in", h.base)).await;
    b.fill("#email", email).await;
    b.fill("#password", PASSWORD).await;
    b.click("form[data-api] button[type=submit]").await;
}

/// Sheena writes to the number (a signed Meta webhook), and the host acknowledges it.
async fn customer_writes(client: &reqwest::Client, hook: &str, wamid: &str, text: &str) {
    let res = post_signed(
        client,
        hook,
        meta_message_from(NUMBER, "16505551234", wamid, text),
    )
    .await;
    assert_eq!(res.status(), 200);
}

async fn wait_url(b: &Chromium, part: &str) -> String {
    for _ in 0..200 {
        let url = b.url().await;
        if url.contains(part) {
            return url;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "never reached {part}; at {}, showing: {}",
        b.url().await,
        b.text("main").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_business_connects_a_number_and_works_its_inbox_in_chromium() {
    let Some(b) = Chromium::start().await else {
        return;
    };
    let sink = Sink::start().await;
    let fake = Fake::start_with(graph).await;
    let (dialog_origin, _dialog) = dialog().await;
    let h = Host::start_with(
        Db::Sqlite,
        &fake.origin,
        &[
            "--smtp-url",
            &sink.url,
            "--mail-from",
            "Switchyard <no-reply@example.test>",
            "--meta-dialog-url",
            &dialog_origin,
        ],
    )
    .await;
    let mut pages = Pages::default();

    // The page headers: a strict policy, never framed, never cached.
    let res = reqwest::get(format!("{}/console/sign-in", h.base))
        .await
        .expect("sign-in page");
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self';"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(res.headers()["cache-control"], "no-store");

    // The Meta app (an endpoint, through the API), then the operator signs in to the console
    // with the operator token, adds the partner and invites its owner.
    let endpoint = h
        .ok(
            Method::POST,
            "/api/v1/endpoints",
            OPERATOR,
            Some(json!({"connector": "meta-cloud",
                "settings": {"app_id": APP_ID, "config_id": CONFIG_ID},
                "secrets": {"app_secret": "app-secret-1", "verify_token": "verify-console"}})),
        )
        .await;
    let endpoint = endpoint["id"].as_str().expect("id").to_string();
    b.goto(&format!("{}/console/operator", h.base)).await;
    b.fill("#token", OPERATOR).await;
    b.click("form[data-api] button[type=submit]").await;
    b.wait_css("#partner-name").await;
    b.fill("#partner-name", "Acme Reseller").await;
    b.click("form[data-api='/api/v1/partners'] button[type=submit]")
        .await;
    b.wait_text("#partners", "Acme Reseller").await;
    let partners = h.ok(Method::GET, "/api/v1/partners", OPERATOR, None).await;
    let p = partners["data"]
        .as_array()
        .expect("partners")
        .iter()
        .find(|x| x["name"] == "Acme Reseller")
        .and_then(|x| x["id"].as_str())
        .expect("the partner")
        .to_string();
    b.click("#partners details summary").await;
    b.fill(&format!("#owner-{p}"), "pat@acme.example").await;
    b.click(&format!(
        "form[data-api='/api/v1/partners/{p}/invitations'] button[type=submit]"
    ))
    .await;
    let _ = sink.last_to("pat@acme.example").await;
    pages.shot(&b, "operator-partners").await;
    b.goto(&format!("{}/console/operator/plugins", h.base))
        .await;
    b.wait_text("main", "meta-cloud").await;
    pages.shot(&b, "operator-plugins").await;
    b.goto(&format!("{}/console/operator/jobs", h.base)).await;
    b.wait_text("main", "No dead job").await;
    pages.shot(&b, "operator-jobs").await;
    b.goto(&format!("{}/console/operator/health", h.base)).await;
    b.wait_text("main", "database").await;
    pages.shot(&b, "operator-health").await;
    b.click("form.sign-out button").await;
    b.wait_css("#token").await;

    // Signed out, the console sends people to sign in and back.
    b.goto(&format!("{}/console/p/{p}", h.base)).await;
    b.wait_css("#password").await;
    assert!(b.url().await.contains("next=%2Fconsole%2Fp%2F"));
    pages.shot(&b, "sign-in").await;

    // The partner accepts, lands on its businesses, creates one and invites its owner.
    accept_invitation(&b, &h, &sink, "pat@acme.example", "Pat Partner").await;
    wait_url(&b, &format!("/console/p/{p}")).await;
    b.fill("#tenant-name", "Lucky Shrub").await;
    b.click("form[data-api='/api/v1/tenants'] button[type=submit]")
        .await;
    b.wait_text("#tenants", "Lucky Shrub").await;
    let tenants = h.ok(Method::GET, "/api/v1/tenants", OPERATOR, None).await;
    let t = tenants["data"]
        .as_array()
        .expect("tenants")
        .iter()
        .find(|x| x["name"] == "Lucky Shrub")
        .and_then(|x| x["id"].as_str())
        .expect("the tenant")
        .to_string();
    b.click("#tenants details summary").await;
    b.fill(&format!("#owner-{t}"), "olivia@luckyshrub.example")
        .await;
    b.click(&format!(
        "form[data-api='/api/v1/tenants/{t}/invitations'] button[type=submit]"
    ))
    .await;
    let _ = sink.last_to("olivia@luckyshrub.example").await;
    pages.shot(&b, "partner-businesses").await;
    sign_out(&b).await;

    // The owner accepts and invites an agent.
    accept_invitation(&b, &h, &sink, "olivia@luckyshrub.example", "Olivia Owner").await;
    wait_url(&b, &format!("/console/t/{t}")).await;
    b.wait_text("main", "No number is connected yet").await;
    pages.shot(&b, "numbers-empty").await;
    b.goto(&format!("{}/console/t/{t}/people", h.base)).await;
    b.fill("#invite-email", "aaron@luckyshrub.example").await;
    b.select("#invite-role", "agent").await;
    b.click(&format!(
        "form[data-api='/api/v1/tenants/{t}/invitations'] button[type=submit]"
    ))
    .await;
    b.wait_text("#invitations", "aaron@luckyshrub.example")
        .await;
    pages.shot(&b, "people").await;

    // Embedded Signup: tick the disclosure, Meta's dialog in a pop-up, the card goes live.
    b.goto(&format!("{}/console/t/{t}/connect", h.base)).await;
    b.wait_css("#embedded-signup").await;
    pages.shot(&b, "connect").await;
    b.check(&format!("#consent-{endpoint}")).await;
    let main = b.current_window().await;
    b.click("#embedded-signup button[type=submit]").await;
    b.switch_to_new_window().await;
    b.click("#allow").await;
    b.switch_back(main).await;
    let url = wait_url(&b, &format!("/console/t/{t}/numbers/con_")).await;
    let connection = url.rsplit('/').next().expect("id").to_string();
    b.wait_text("#connect-card .badge", "Live").await;
    pages.shot(&b, "number").await;
    let c = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{t}/connections/{connection}"),
            OPERATOR,
            None,
        )
        .await;
    assert_eq!(c["channel_address"], NUMBER);
    assert_eq!(c["status"], "live");

    // A customer writes: the message appears in the open inbox without a reload.
    b.goto(&format!("{}/console/t/{t}/inbox", h.base)).await;
    b.wait_text("#conversations", "No conversation").await;
    b.execute("window.__stayed = true;", vec![]).await;
    let client = reqwest::Client::new();
    let hook = format!("{}/hooks/{endpoint}", h.base);
    customer_writes(
        &client,
        &hook,
        "wamid.CONSOLE-IN-1",
        "Hi, is my order shipped?",
    )
    .await;
    b.wait_text("#conversations", "Sheena Nelson").await;
    assert_eq!(
        b.execute("return window.__stayed === true;", vec![]).await,
        Value::Bool(true),
        "the inbox updated without reloading"
    );
    pages.shot(&b, "inbox").await;
    sign_out(&b).await;

    // The agent accepts, opens the conversation and replies.
    accept_invitation(&b, &h, &sink, "aaron@luckyshrub.example", "Aaron Agent").await;
    wait_url(&b, &format!("/console/t/{t}")).await;
    b.goto(&format!("{}/console/t/{t}/inbox", h.base)).await;
    b.click("#conversations a").await;
    wait_url(&b, "/conversations/").await;
    b.wait_text("#messages", "Hi, is my order shipped?").await;
    b.fill("#reply-text", "Yes! It left this morning.").await;
    b.click("form.composer button[type=submit]").await;
    b.wait_text("#messages", "Yes! It left this morning.").await;
    for _ in 0..100 {
        if fake.requests().iter().any(|r| {
            r.path.ends_with(&format!("/{NUMBER}/messages"))
                && String::from_utf8_lossy(&r.body).contains("It left this morning")
        }) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        fake.requests()
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains("It left this morning")),
        "the reply reached the fake Graph"
    );
    b.wait_text("#conversation-facts", "People").await;
    pages.shot(&b, "conversation").await;

    // Close, then reopen.
    b.click("#conversation-actions form:first-child button")
        .await;
    b.wait_text("#conversation-facts", "Closed").await;
    b.wait_text("#conversation-actions", "Reopen").await;
    b.click("#conversation-actions form:first-child button")
        .await;
    b.wait_text("#conversation-facts", "Open").await;

    // A new message in a conversation people own notifies the agent: the count appears live.
    customer_writes(&client, &hook, "wamid.CONSOLE-IN-2", "Great, thanks!").await;
    b.wait_text("#messages", "Great, thanks!").await;
    b.wait_text("nav .count", "1").await;
    b.goto(&format!("{}/console/t/{t}/notifications", h.base))
        .await;
    b.wait_css("#notifications li.unread").await;
    pages.shot(&b, "notifications").await;
    b.click(&format!(
        "form[data-api='/api/v1/tenants/{t}/notifications/read'] button"
    ))
    .await;
    b.wait_css("#notifications li.read").await;
    sign_out(&b).await;

    // The owner sees the grant in the ledger, disconnects, and sees the revocation.
    sign_in(&b, &h, "olivia@luckyshrub.example").await;
    wait_url(&b, &format!("/console/t/{t}")).await;
    b.goto(&format!("{}/console/t/{t}/consent", h.base)).await;
    b.wait_text("main", "The chain verifies").await;
    b.wait_text("table.list", "grant").await;
    pages.shot(&b, "consent").await;
    b.goto(&format!("{}/console/t/{t}/numbers/{connection}", h.base))
        .await;
    b.click("details.danger-zone summary").await;
    b.check("#disconnect-sure").await;
    b.click("details.danger-zone button.danger").await;
    wait_url(&b, &format!("/console/t/{t}")).await;
    b.wait_text("main", "No number is connected yet").await;
    b.goto(&format!("{}/console/t/{t}/consent", h.base)).await;
    b.wait_text("table.list", "revoke").await;
    b.wait_text("main", "The chain verifies").await;
    b.goto(&format!("{}/console/t/{t}/account", h.base)).await;
    b.wait_text("main", "Plan and usage").await;
    pages.shot(&b, "account").await;

    // A signed-in request that changes something without the CSRF token is refused.
    let refused = b
        .execute(
            "return fetch(arguments[0], {method: 'POST', credentials: 'same-origin', headers: {'content-type': 'application/json'}, body: '{}'}).then(r => r.status);",
            vec![json!(format!("/api/v1/tenants/{t}/notifications/read"))],
        )
        .await;
    assert_eq!(refused, json!(403));

    // No page holds inline script or style, or any secret.
    let secrets = [
        SYSTEM_TOKEN,
        "app-secret-1",
        "verify-console",
        PASSWORD,
        OPERATOR,
    ];
    let mut names = BTreeSet::new();
    for (name, html) in &pages.0 {
        names.insert(name.clone());
        for secret in secrets {
            assert!(!html.contains(secret), "{name} shows a secret");
        }
        for (i, _) in html.match_indices("<script") {
            let tag = &html[i..html[i..].find('>').map_or(html.len(), |e| i + e)];
            assert!(tag.contains(" src="), "{name}: inline script {tag}");
        }
        assert!(!html.contains(" style=\""), "{name}: inline style");
        assert!(!html.contains(" onclick="), "{name}: inline handler");
    }
    assert_eq!(names.len(), pages.0.len());
    b.finish().await;
}

/// One console page as a signed-in person fetches it: status, headers, body.
async fn page(
    h: &Host,
    cookie: Option<&str>,
    path: &str,
) -> (u16, reqwest::header::HeaderMap, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut req = client.get(format!("{}{path}", h.base));
    if let Some(c) = cookie {
        req = req.header("cookie", format!("switchyard_session={c}"));
    }
    let res = req.send().await.expect("page");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.text().await.expect("body"))
}

/// The pages over plain HTTP, on both backends, whether or not a browser is installed: every
/// page answers with the strict policy and no inline script, style or secret; signed out it
/// leads to the sign-in page; another business's pages are the API's 404; the channels a
/// business may connect come from the connectors' declarations and the shared endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_page_is_strict_and_shows_only_what_the_api_allows_on_both_backends() {
    let sink = Sink::start().await;
    let fake = Fake::start_with(graph).await;
    let args = ["--smtp-url", sink.url.as_str()];
    pages_as_people(
        Host::start_with(Db::Sqlite, &fake.origin, &args).await,
        &sink,
    )
    .await;
    if let Some(pg) = crate::pg::PgDb::create("console").await {
        let sink = Sink::start().await;
        let args = ["--smtp-url", sink.url.as_str()];
        pages_as_people(
            Host::start_with(Db::Postgres(pg), &fake.origin, &args).await,
            &sink,
        )
        .await;
    }
}

async fn pages_as_people(h: Host, sink: &Sink) {
    let s = crate::api::setup(&h).await;
    let (t, key) = (&s.a.0, &s.a.1);
    // A Meta app the tenant's partner shares, set up for Embedded Signup.
    h.ok(
        Method::POST,
        "/api/v1/endpoints",
        OPERATOR,
        Some(json!({"connector": "meta-cloud",
            "settings": {"app_id": APP_ID, "config_id": CONFIG_ID, "return_url": "https://app.example.test/back"},
            "secrets": {"app_secret": "app-secret-1"}})),
    )
    .await;
    let channels = h
        .ok(
            Method::GET,
            &format!("/api/v1/tenants/{t}/channels"),
            key,
            None,
        )
        .await;
    let meta = channels["data"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|c| c["connector"] == "meta-cloud")
        .expect("meta-cloud");
    let signup = meta["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .filter_map(|e| e.get("meta_signup"))
        .find(|m| m["config_id"] == CONFIG_ID)
        .expect("the endpoint with Embedded Signup");
    assert_eq!(signup["app_id"], APP_ID);
    assert_eq!(signup["config_id"], CONFIG_ID);
    assert_eq!(signup["redirect"], true);
    let names: Vec<&str> = meta["settings"]
        .as_array()
        .expect("settings")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(
        names.contains(&"phone_number_id") && names.contains(&"waba_id"),
        "{names:?}"
    );
    assert!(
        !names.contains(&"app_id") && !names.contains(&"graph_version"),
        "{names:?}"
    );
    assert_eq!(
        meta["secrets"],
        json!([{"name": "access_token", "required": true}])
    );
    let twilio = channels["data"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|c| c["connector"] == "twilio")
        .expect("twilio");
    assert_eq!(twilio["own_endpoint"], true);
    // Viewers cannot see what to connect.
    let (status, _) = h
        .call(
            Method::GET,
            &format!("/api/v1/tenants/{t}/channels"),
            Some(&s.a_keys["viewer"]),
            None,
        )
        .await;
    assert_eq!(status, 403);

    // A tenant created for people to sign in to mints no key.
    let created = h
        .ok(
            Method::POST,
            "/api/v1/tenants",
            &s.p1.1,
            Some(json!({"name": "Gamma", "owner_key": false})),
        )
        .await;
    assert!(created.get("api_key").is_none(), "{created}");

    // An admin of tenant A, signed in.
    h.ok(
        Method::POST,
        &format!("/api/v1/tenants/{t}/invitations"),
        key,
        Some(json!({"email": "ada@alpha.example", "role": "admin"})),
    )
    .await;
    let mut person = crate::people::Browser::new(&h);
    person
        .accept(sink, "ada@alpha.example", "Ada Admin", PASSWORD)
        .await;
    let cookie = person.cookie.clone().expect("cookie");

    // Signed out: to the sign-in page, and back afterwards (never elsewhere).
    let (status, headers, _) = page(&h, None, &format!("/console/t/{t}/inbox")).await;
    assert_eq!(status, 303);
    assert_eq!(
        headers["location"],
        format!("/console/sign-in?next=%2Fconsole%2Ft%2F{t}%2Finbox").as_str()
    );
    let (status, _, body) = page(&h, None, "/console/sign-in?next=https://evil.example/").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#"data-next="/console""#), "{body}");
    assert!(!body.contains("evil.example"));

    // One membership: the start page leads straight there.
    let (status, headers, _) = page(&h, Some(&cookie), "/console").await;
    assert_eq!(status, 303);
    assert_eq!(headers["location"], format!("/console/t/{t}").as_str());
    let paths = [
        format!("/console/t/{t}"),
        format!("/console/t/{t}/connect"),
        format!("/console/t/{t}/numbers/{}", s.a_connection),
        format!("/console/t/{t}/inbox?state=open&q=x"),
        format!("/console/t/{t}/notifications"),
        format!("/console/t/{t}/consent"),
        format!("/console/t/{t}/people"),
        format!("/console/t/{t}/account"),
        "/console/sign-in".to_string(),
        "/console/forgot".to_string(),
        "/invitation?token=inv_x.y".to_string(),
        "/password-reset?token=rst_x.y".to_string(),
        "/console/signup-done".to_string(),
    ];
    let mut assets = BTreeSet::new();
    for path in &paths {
        let (status, headers, body) = page(&h, Some(&cookie), path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let csp = headers["content-security-policy"].to_str().expect("csp");
        assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        for (i, _) in body.match_indices("<script") {
            let tag = &body[i..body[i..].find('>').map_or(body.len(), |e| i + e)];
            assert!(tag.contains(" src="), "{path}: inline script {tag}");
        }
        assert!(!body.contains(" style="), "{path}: inline style");
        for secret in [cookie.as_str(), key.as_str(), "app-secret-1", "token-a"] {
            assert!(!body.contains(secret), "{path} shows a secret");
        }
        // Every form that changes something carries the CSRF token.
        let forms = body.matches("<form").count();
        let get_forms = body.matches(r#"method="get""#).count();
        let public = body.contains(r#"data-api="/api/v1/session" data-method="POST""#)
            || !body.contains("csrf-token");
        if !public {
            assert_eq!(
                body.matches(r#"name="_csrf""#).count(),
                forms - get_forms,
                "{path}: a form without its CSRF token"
            );
        }
        for (i, _) in body.match_indices("/console/assets/") {
            let end = body[i..].find('"').map_or(body.len(), |e| i + e);
            assets.insert(body[i..end].to_string());
        }
    }
    // The connect page offers Embedded Signup, and Meta's SDK is allowed there only.
    let (_, headers, body) = page(&h, Some(&cookie), &format!("/console/t/{t}/connect")).await;
    assert!(body.contains(&format!(r#"data-config-id="{CONFIG_ID}""#)));
    assert!(
        headers["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("https://connect.facebook.net")
    );
    let (_, headers, _) = page(&h, Some(&cookie), &format!("/console/t/{t}")).await;
    assert!(
        !headers["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("facebook")
    );
    // The number's page shows its webhook URL and never its token.
    let (_, _, body) = page(
        &h,
        Some(&cookie),
        &format!("/console/t/{t}/numbers/{}", s.a_connection),
    )
    .await;
    assert!(
        body.contains(&format!("/hooks/{}", s.endpoint)),
        "webhook URL"
    );

    // Assets: digest names, kept forever; anything else is 404.
    assert_eq!(assets.len(), 3, "{assets:?}");
    for a in &assets {
        let (status, headers, body) = page(&h, None, a).await;
        assert_eq!(status, 200, "{a}");
        assert!(
            headers["cache-control"]
                .to_str()
                .expect("cc")
                .contains("immutable")
        );
        assert!(!body.is_empty());
    }
    let (status, _, _) = page(&h, None, "/console/assets/console.js").await;
    assert_eq!(status, 404);

    // Another business's pages, and ids that are not ids, are the API's 404.
    for path in [
        format!("/console/t/{}", s.b.0),
        format!("/console/t/{t}/numbers/{}", s.b_connection),
        format!("/console/t/{t}/conversations/..%2F..%2Fsession"),
        format!("/console/t/{t}/numbers/con_%00x"),
    ] {
        let (status, _, body) = page(&h, Some(&cookie), &path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("Beta"), "{path}");
    }
    // Meta's redirect flow comes back to the new number, found among the person's businesses;
    // an error code is shown only when it is one.
    let (status, headers, _) = page(
        &h,
        Some(&cookie),
        &format!("/console/meta-return?connected={}", s.a_connection),
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        headers["location"],
        format!("/console/t/{t}/numbers/{}", s.a_connection).as_str()
    );
    let (_, _, body) = page(
        &h,
        Some(&cookie),
        "/console/meta-return?error=state_expired",
    )
    .await;
    assert!(body.contains("state_expired"), "{body}");
    let (_, _, body) = page(
        &h,
        Some(&cookie),
        "/console/meta-return?error=Call%20%2B1-800",
    )
    .await;
    assert!(
        !body.contains("800") && body.contains("did not finish"),
        "{body}"
    );
    let (status, _, _) = page(
        &h,
        Some(&cookie),
        &format!("/console/meta-return?connected={}", s.b_connection),
    )
    .await;
    assert_eq!(status, 200, "another business's number is not found");

    // The operator signs in to the console with the token; nothing else opens it.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let res = client
        .post(format!("{}/api/v1/operator/session", h.base))
        .json(&json!({"token": "not-the-token"}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), 401);
    let res = client
        .post(format!("{}/api/v1/operator/session", h.base))
        .json(&json!({"token": OPERATOR}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), 201);
    let set: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .collect();
    let op = set
        .iter()
        .find(|c| c.starts_with("switchyard_operator=ops_"))
        .expect("operator cookie");
    assert!(
        op.contains("HttpOnly") && op.contains("SameSite=Strict"),
        "{op}"
    );
    assert!(
        set.iter().any(|c| c.starts_with("switchyard_session=;")),
        "a person's session in the same browser is cleared: {set:?}"
    );
    let op_cookie = op
        .strip_prefix("switchyard_operator=")
        .and_then(|c| c.split(';').next())
        .expect("value")
        .to_string();
    let csrf = res.json::<Value>().await.expect("json")["csrf_token"]
        .as_str()
        .expect("csrf")
        .to_string();
    let as_operator = |method: Method, path: &str| {
        client
            .request(method, format!("{}{path}", h.base))
            .header("cookie", format!("switchyard_operator={op_cookie}"))
    };
    for path in [
        "/console/operator",
        "/console/operator/plugins",
        "/console/operator/jobs",
        "/console/operator/health",
    ] {
        let res = as_operator(Method::GET, path).send().await.expect("page");
        assert_eq!(res.status(), 200, "{path}");
        assert!(
            res.headers()["content-security-policy"]
                .to_str()
                .expect("csp")
                .starts_with("default-src 'none'")
        );
        let body = res.text().await.expect("body");
        assert!(
            !body.contains(OPERATOR) && !body.contains(&op_cookie),
            "{path}"
        );
        assert!(!body.contains(" style="), "{path}");
    }
    // Without the CSRF token the cookie changes nothing; with it, a partner without a key.
    let res = as_operator(Method::POST, "/api/v1/partners")
        .json(&json!({"name": "Delta"}))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 403);
    let res = as_operator(Method::POST, "/api/v1/partners")
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "Delta", "owner_key": false}))
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), 201);
    assert!(
        res.json::<Value>()
            .await
            .expect("json")
            .get("api_key")
            .is_none()
    );
    // The operator's cookie is not a person's session, and a person's is not the operator's.
    let res = as_operator(Method::GET, "/api/v1/session")
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 401);
    let (status, headers, _) = page(&h, Some(&cookie), "/console/operator").await;
    assert_eq!(status, 303);
    assert_eq!(
        headers["location"],
        "/console/operator/sign-in?next=%2Fconsole%2Foperator"
    );
    let res = as_operator(Method::DELETE, "/api/v1/operator/session")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("delete");
    assert_eq!(res.status(), 204);
    let res = as_operator(Method::GET, "/console/operator")
        .send()
        .await
        .expect("page");
    assert_eq!(res.status(), 303);
    // An ended (or planted) operator cookie beside a person's session does not lock them out.
    let res = client
        .get(format!("{}/api/v1/tenants/{t}", h.base))
        .header(
            "cookie",
            format!("switchyard_operator={op_cookie}; switchyard_session={cookie}"),
        )
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), 200);
    let res = client
        .post(format!("{}/api/v1/operator/session", h.base))
        .json(&json!({"token": ""}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(res.status(), 401, "an empty token opens nothing");

    // A person of tenant A is not a partner.
    let (status, _, _) = page(&h, Some(&cookie), &format!("/console/p/{}", s.p1.0)).await;
    assert!(status == 403 || status == 404, "{status}");
}
