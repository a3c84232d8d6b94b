//! Connecting numbers through Meta against a fake Graph API that checks requests as Meta would
//! (versioned paths, the code exchange's parameters, bearer tokens, JSON bodies) and answers
//! with Meta's documented shapes, errors included: the redirect flow with two WABAs and a pick,
//! expired and replayed state, a failed exchange, Embedded Signup, and a PIN mismatch; and the
//! redirect flow's binding to the browser that started it (issue 13, item 8).

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Db, GRAPH_OK, Host, OPERATOR, assert_error, graph_read, setup};
use crate::fake::{Fake, Received};
use crate::ingress::{drained, meta_message, sign};

const APP_ID: &str = "1234567890";
const APP_SECRET: &str = "app-secret-onboarding";
const SHORT: &str = "EAAshort-lived-token-canary";
const LONG: &str = "EAAlong-lived-token-canary";
/// The tokens of a login whose business has one WABA with one number (code `one-code`).
const SHORT_ONE: &str = "EAAshort-one-canary";
const LONG_ONE: &str = "EAAlong-one-canary";
const SYSTEM: &str = "EAAsystem-user-token-canary";
const RETURN: &str = "https://app.example.test/channels";
const CALLBACK: &str = "https://hooks.example.test/connect/meta/callback";

fn error(status: u16, code: i64, message: &str) -> (u16, String) {
    (
        status,
        json!({"error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}})
            .to_string(),
    )
}

fn query(path: &str) -> std::collections::HashMap<String, String> {
    let url = url::Url::parse(&format!("http://x{path}")).expect("url");
    url.query_pairs().into_owned().collect()
}

fn bearer(r: &Received) -> String {
    r.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string()
}

/// Meta's Graph API as onboarding uses it.
fn graph(r: &Received) -> (u16, String) {
    let Some(rest) = r.path.strip_prefix("/v26.0/") else {
        return error(400, 2500, "Unknown path components");
    };
    let path = rest.split('?').next().unwrap_or_default();
    let q = query(&r.path);
    if path == "oauth/access_token" {
        if q.get("client_id").map(String::as_str) != Some(APP_ID)
            || q.get("client_secret").map(String::as_str) != Some(APP_SECRET)
        {
            return error(400, 1, "Error validating client secret.");
        }
        if q.get("grant_type").map(String::as_str) == Some("fb_exchange_token") {
            let long = match q.get("fb_exchange_token").map(String::as_str) {
                Some(SHORT) => LONG,
                Some(SHORT_ONE) => LONG_ONE,
                _ => return error(400, 190, "Invalid OAuth access token."),
            };
            return (
                200,
                json!({"access_token": long, "token_type": "bearer", "expires_in": 5183944})
                    .to_string(),
            );
        }
        return match (
            q.get("code").map(String::as_str),
            q.get("redirect_uri").map(String::as_str),
        ) {
            (Some(code @ ("good-code" | "one-code")), Some(CALLBACK)) => (
                200,
                json!({"access_token": if code == "one-code" { SHORT_ONE } else { SHORT },
                       "token_type": "bearer", "expires_in": 3600})
                .to_string(),
            ),
            (Some("embedded-code"), None) => (
                200,
                json!({"access_token": SYSTEM, "token_type": "bearer"}).to_string(),
            ),
            _ => error(400, 100, "Invalid verification code format."),
        };
    }
    let token = bearer(r);
    if path == "debug_token" {
        if token != format!("{APP_ID}|{APP_SECRET}")
            || q.get("input_token").map(String::as_str) != Some(SYSTEM)
        {
            return error(400, 190, "Invalid OAuth access token.");
        }
        return (200, json!({"data": {"app_id": APP_ID, "type": "SYSTEM_USER", "is_valid": true, "expires_at": 0,
            "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"],
            "granular_scopes": [
                {"scope": "whatsapp_business_management", "target_ids": ["900009"]},
                {"scope": "whatsapp_business_messaging", "target_ids": ["900009"]}
            ]}}).to_string());
    }
    if token != LONG && token != LONG_ONE && token != SYSTEM && !token.starts_with("token-") {
        return error(401, 190, "Invalid OAuth access token.");
    }
    match (r.method.as_str(), path) {
        ("GET", "me/businesses") if token == LONG_ONE => {
            (200, json!({"data": [{"id": "biz-2", "name": "Lucky Shrub One", "owned_whatsapp_business_accounts": {"data": [
                {"id": "900001", "name": "Shrub EU"}]}}]}).to_string())
        }
        ("GET", "me/businesses") => {
            assert!(q["fields"].contains("owned_whatsapp_business_accounts"));
            (200, json!({"data": [{"id": "biz-1", "name": "Lucky Shrub", "owned_whatsapp_business_accounts": {"data": [
                {"id": "900001", "name": "Shrub EU"}, {"id": "900002", "name": "Shrub US"}]}}]}).to_string())
        }
        ("GET", p) if p.ends_with("/phone_numbers") => {
            let n = match p.trim_end_matches("/phone_numbers") {
                "900001" => "5001",
                "900002" => "5002",
                "900009" => "5009",
                "900007" => "5007",
                // The shared setup's own account, as the permissive fake lists it.
                "102290129340398" => return crate::api::graph_read(r).expect("listed"),
                _ => return error(400, 100, "Unsupported get request."),
            };
            (200, json!({"data": [{"id": n, "display_phone_number": format!("+1 555-000-{n}"), "verified_name": "Lucky Shrub",
                "code_verification_status": "VERIFIED", "quality_rating": "GREEN"}]}).to_string())
        }
        ("POST", p) if p.ends_with("/subscribed_apps") => {
            if !r.body.is_empty() {
                let b: Value = serde_json::from_slice(&r.body).expect("json body");
                assert!(b["override_callback_uri"].is_string() && b["verify_token"].is_string());
            }
            (200, json!({"success": true}).to_string())
        }
        ("POST", p) if p.ends_with("/register") => {
            let b: Value = serde_json::from_slice(&r.body).expect("json body");
            assert_eq!(b["messaging_product"], "whatsapp");
            let pin = b["pin"].as_str().expect("pin");
            assert!(
                pin.len() == 6 && pin.bytes().all(|c| c.is_ascii_digit()),
                "{pin}"
            );
            if p.starts_with("5009/") {
                return error(400, 133005, "Two step verification PIN Mismatch");
            }
            (200, json!({"success": true}).to_string())
        }
        // The connector's own credential check.
        ("GET", _) => graph_read(r).unwrap_or_else(|| (200, GRAPH_OK.to_string())),
        _ => error(400, 100, "Unsupported request."),
    }
}

struct World {
    h: Host,
    fake: Fake,
    tenant: String,
    key: String,
    endpoint: String,
    /// Every API response body seen, to check no token leaks.
    seen: Vec<String>,
    browser: reqwest::Client,
    /// The flow cookie (`name=value`) the browser holds, if any.
    cookie: Option<String>,
    /// The session of the last flow started.
    session: String,
}

async fn world() -> World {
    world_with(graph).await
}

/// [`world`] with another Graph API.
async fn world_with(graph: impl Fn(&Received) -> (u16, String) + Send + Sync + 'static) -> World {
    let fake = Fake::start_with(graph).await;
    let h = Host::start(Db::Sqlite, &fake.origin).await;
    let s = setup(&h).await;
    let e = h
        .ok(
            Method::POST,
            "/api/v1/endpoints",
            OPERATOR,
            Some(json!({"connector": "meta-cloud",
                "settings": {"app_id": APP_ID, "return_url": RETURN, "override_callback": "true"},
                "secrets": {"app_secret": APP_SECRET, "verify_token": "verify-onboarding"}})),
        )
        .await;
    World {
        h,
        fake,
        tenant: s.a.0.clone(),
        key: s.a.1.clone(),
        endpoint: e["id"].as_str().expect("id").to_string(),
        seen: Vec::new(),
        browser: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        cookie: None,
        session: String::new(),
    }
}

/// The public URL the host was started with (tests/e2e/api.rs).
const PUBLIC: &str = "https://hooks.example.test";

impl World {
    async fn call(&mut self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let r = self.h.call(method, path, Some(&self.key), body).await;
        self.seen.push(r.1.to_string());
        r
    }

    /// Start a redirect flow through the API and open its browser URL: the browser now holds
    /// the flow's cookie; the state Facebook's dialog was given.
    async fn start(&mut self) -> String {
        let path = format!("/api/v1/tenants/{}/connect/meta", self.tenant);
        let body = json!({"endpoint": self.endpoint, "flow": "redirect"});
        let (status, v) = self.call(Method::POST, &path, Some(body)).await;
        assert_eq!(status, 200, "{v}");
        self.session = v["session"].as_str().expect("session").to_string();
        assert!(v["expires_at"].as_i64().expect("expires_at") > crate::ingress::now_s() * 1000);
        // The API hands out a page of this host, not Facebook's dialog itself.
        let start = url::Url::parse(v["dialog_url"].as_str().expect("dialog_url")).expect("url");
        assert_eq!(start.origin().ascii_serialization(), PUBLIC);
        assert_eq!(start.path(), "/connect/meta/start");
        let (status, location, cookie) = self.open_start(start.query().unwrap_or_default()).await;
        assert_eq!(status, 303, "{location}");
        let cookie = cookie.expect("the start sets the flow's cookie");
        for attribute in ["HttpOnly", "SameSite=Lax", "Secure", "Path=/connect/meta"] {
            assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
        }
        self.cookie = Some(cookie.split(';').next().expect("name=value").to_string());
        let dialog = url::Url::parse(&location).expect("url");
        assert_eq!(
            dialog.origin().ascii_serialization(),
            "https://www.facebook.com"
        );
        assert_eq!(dialog.path(), "/v26.0/dialog/oauth");
        let q: std::collections::HashMap<_, _> = dialog.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], APP_ID);
        assert_eq!(q["redirect_uri"], CALLBACK);
        assert_eq!(q["response_type"], "code");
        assert_eq!(
            q["scope"],
            "whatsapp_business_management,whatsapp_business_messaging,business_management"
        );
        q["state"].clone()
    }

    /// The browser opening the start page: `(status, location or body, Set-Cookie)`.
    async fn open_start(&mut self, query: &str) -> (u16, String, Option<String>) {
        let r = self
            .browser
            .get(format!("{}/connect/meta/start?{query}", self.h.base))
            .send()
            .await
            .expect("start");
        let status = r.status().as_u16();
        let header = |name: &str| {
            r.headers()
                .get(name)
                .map(|l| l.to_str().expect("ascii").to_string())
        };
        let (location, cookie) = (header("location"), header("set-cookie"));
        let body = r.text().await.expect("body");
        self.seen.push(body.clone());
        (status, location.unwrap_or(body), cookie)
    }

    /// The confirmation page's answer from this browser: `(status, location or body)`.
    async fn confirm(&mut self, page: &str, decision: &str) -> (u16, String) {
        let token = page
            .split("name=\"confirm\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the page carries a confirmation token")
            .to_string();
        self.post_confirm(
            &[("confirm", token.as_str()), ("decision", decision)],
            PUBLIC,
        )
        .await
    }

    /// A raw post to `/connect/meta/confirm` with this browser's cookie and `origin`.
    async fn post_confirm(&mut self, form: &[(&str, &str)], origin: &str) -> (u16, String) {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = self
            .browser
            .post(format!("{}/connect/meta/confirm", self.h.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", origin)
            .body(body);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await.expect("confirm");
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().expect("ascii").to_string());
        let body = r.text().await.expect("body");
        self.seen.push(body.clone());
        (status, location.unwrap_or(body))
    }

    /// Back from Facebook with the cookie: the confirmation page, confirmed; where it leads.
    async fn callback_and_confirm(&mut self, query: &[(&str, &str)]) -> String {
        let (status, page) = self.callback(query).await;
        assert_eq!(status, 200, "the confirmation page: {page}");
        assert!(page.contains("Alpha"), "the page names the tenant: {page}");
        let (status, location) = self.confirm(&page, "connect").await;
        assert_eq!(status, 303, "{location}");
        location
    }

    /// The browser coming back from Facebook: where the host sends it.
    async fn callback(&mut self, query: &[(&str, &str)]) -> (u16, String) {
        let mut req = self
            .browser
            .get(format!("{}/connect/meta/callback", self.h.base))
            .query(query);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let r = req.send().await.expect("callback");
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().expect("ascii").to_string());
        let body = r.text().await.expect("body");
        self.seen.push(body.clone());
        (status, location.unwrap_or(body))
    }

    fn assert_no_secret_seen(&self) {
        for body in &self.seen {
            for s in [SHORT, LONG, SYSTEM, APP_SECRET] {
                assert!(!body.contains(s), "{s} leaked in {body}");
            }
        }
        // The PIN: whatever the fake received in /register never shows in a response.
        for r in self.fake.requests() {
            if r.path.ends_with("/register") {
                let b: Value = serde_json::from_slice(&r.body).expect("json");
                let pin = b["pin"].as_str().expect("pin");
                for body in &self.seen {
                    assert!(
                        !body.contains(&format!("\"{pin}\"")),
                        "PIN leaked in {body}"
                    );
                }
            }
        }
    }
}

fn param(location: &str, key: &str) -> Option<String> {
    let url = url::Url::parse(location).expect("location");
    assert_eq!(
        format!("{}{}", url.origin().ascii_serialization(), url.path()),
        RETURN
    );
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redirect_flow_with_two_wabas_waits_for_a_pick_and_ends_live() {
    let mut w = world().await;
    let state = w.start().await;
    let (status, page) = w
        .callback(&[("code", "good-code"), ("state", &state)])
        .await;
    assert_eq!(status, 200, "{page}");
    // The page names the tenant and every number before anything is registered.
    for shown in ["Alpha", "+1 555-000-5001", "+1 555-000-5002"] {
        assert!(page.contains(shown), "{shown} not on the page: {page}");
    }
    assert!(!w.fake.requests().iter().any(|r| r.method == "POST"));
    let (status, location) = w.confirm(&page, "connect").await;
    assert_eq!(status, 303, "{location}");
    let session = param(&location, "session").expect("?session= when several numbers");

    // Replaying the state is refused.
    let (status, replay) = w
        .callback(&[("code", "good-code"), ("state", &state)])
        .await;
    assert_eq!(status, 303);
    assert_eq!(param(&replay, "error").as_deref(), Some("state_invalid"));

    let path = format!("/api/v1/tenants/{}/connect/meta/{session}", w.tenant);
    let (status, v) = w.call(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "picking");
    let wabas = v["wabas"].as_array().expect("wabas");
    assert_eq!(wabas.len(), 2, "{v}");
    assert_eq!(wabas[1]["phone_numbers"][0]["id"], "5002");
    // Nothing was subscribed or registered before the pick.
    assert!(!w.fake.requests().iter().any(|r| r.method == "POST"));

    let bad = w
        .call(
            Method::POST,
            &format!("{path}/pick"),
            Some(json!({"waba_id": "900001", "phone_number_id": "5002"})),
        )
        .await;
    assert_error(&bad, 422, "unknown_number");
    let (status, con) = w
        .call(
            Method::POST,
            &format!("{path}/pick"),
            Some(json!({"waba_id": "900002", "phone_number_id": "5002"})),
        )
        .await;
    assert_eq!(status, 201, "{con}");
    assert_eq!(con["status"], "live");
    assert_eq!(con["channel_address"], "5002");
    assert_eq!(con["account_id"], "900002");
    let again = w
        .call(
            Method::POST,
            &format!("{path}/pick"),
            Some(json!({"waba_id": "900002", "phone_number_id": "5002"})),
        )
        .await;
    assert_error(&again, 409, "session_not_pickable");

    // What Meta received: the long-lived token on every call, the override callback, the PIN.
    let reqs = w.fake.requests();
    let exchange = reqs
        .iter()
        .find(|r| r.path.contains("fb_exchange_token"))
        .expect("long-lived exchange");
    assert_eq!(query(&exchange.path)["grant_type"], "fb_exchange_token");
    let sub = reqs
        .iter()
        .find(|r| r.path.starts_with("/v26.0/900002/subscribed_apps"))
        .expect("subscribed");
    assert_eq!(bearer(sub), LONG);
    let body: Value = serde_json::from_slice(&sub.body).expect("json");
    assert_eq!(
        body["override_callback_uri"],
        format!("https://hooks.example.test/hooks/{}", w.endpoint)
    );
    assert_eq!(body["verify_token"], "verify-onboarding");
    let reg = reqs
        .iter()
        .find(|r| r.path.starts_with("/v26.0/5002/register"))
        .expect("register");
    assert_eq!(bearer(reg), LONG);
    assert!(
        !reqs
            .iter()
            .any(|r| r.path.starts_with("/v26.0/5001/register")),
        "the other number untouched"
    );

    // A signed webhook for the number is stored for the tenant.
    let body = meta_message("5002", "wamid.ONBOARD1", "Hello from onboarding");
    let r = reqwest::Client::new()
        .post(format!("{}/hooks/{}", w.h.base, w.endpoint))
        .header("x-hub-signature-256", sign(APP_SECRET, &body))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("webhook");
    assert_eq!(r.status(), 200);
    drained(&w.h).await;
    let (_, convs) = w
        .call(
            Method::GET,
            &format!("/api/v1/tenants/{}/conversations", w.tenant),
            None,
        )
        .await;
    let convs = convs["data"].as_array().expect("data");
    assert!(
        convs.iter().any(|c| c["contact_phone"] == "16505551234"),
        "{convs:?}"
    );
    let (_, shown) = w
        .call(
            Method::GET,
            &format!(
                "/api/v1/tenants/{}/connections/{}",
                w.tenant,
                con["id"].as_str().expect("id")
            ),
            None,
        )
        .await;
    assert_eq!(shown["status"], "live");
    let (_, done) = w.call(Method::GET, &path, None).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["connection_id"], con["id"]);
    w.assert_no_secret_seen();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_invalid_and_refused_states_redirect_with_codes() {
    let mut w = world().await;

    // Expired: the session's expiry moved into the past (no ten-minute sleep).
    let state = w.start().await;
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        w.h.data.path().join("switchyard.db").display()
    ))
    .await
    .expect("open");
    sqlx::query("UPDATE meta_onboarding_sessions SET expires_at = 1")
        .execute(&pool)
        .await
        .expect("expire");
    let (status, location) = w
        .callback(&[("code", "good-code"), ("state", &state)])
        .await;
    assert_eq!(status, 303);
    assert_eq!(param(&location, "error").as_deref(), Some("state_expired"));
    assert!(
        !w.fake
            .requests()
            .iter()
            .any(|r| r.path.contains("oauth/access_token")),
        "no exchange after expiry"
    );

    // A failed code exchange.
    let state = w.start().await;
    let (status, location) = w.callback(&[("code", "bad-code"), ("state", &state)]).await;
    assert_eq!(status, 303);
    assert_eq!(
        param(&location, "error").as_deref(),
        Some("token_exchange_failed")
    );

    // The user cancelled in Facebook's dialog.
    let state = w.start().await;
    let (_, location) = w
        .callback(&[
            ("error", "access_denied"),
            ("error_reason", "user_denied"),
            ("state", &state),
        ])
        .await;
    assert_eq!(param(&location, "error").as_deref(), Some("access_denied"));

    // A forged or mangled state: no return URL is known, so a 400 with the code.
    let forged = state.replacen('.', "x.", 1);
    let (status, body) = w
        .callback(&[("code", "good-code"), ("state", &forged)])
        .await;
    assert_eq!(status, 400);
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["error"]["code"], "state_invalid");
    let (status, _) = w.callback(&[("code", "good-code")]).await;
    assert_eq!(status, 400);
    w.assert_no_secret_seen();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_signup_connects_with_given_ids_and_reports_a_pin_mismatch() {
    let mut w = world().await;
    let path = format!("/api/v1/tenants/{}/connect/meta", w.tenant);
    let (status, v) = w
        .call(
            Method::POST,
            &path,
            Some(
                json!({"endpoint": w.endpoint, "flow": "embedded", "code": "embedded-code",
                "waba_id": "900007", "phone_number_id": "5007",
                "consent": {"document_version": "2026-11", "scopes": ["messaging"]}}),
            ),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["connection"]["channel_address"], "5007");
    assert_eq!(v["connection"]["status"], "live");
    assert!(
        v["connection"]["token_expires_at"].is_null(),
        "a system-user token that never expires is healthy"
    );
    let reqs = w.fake.requests();
    let exchange = reqs
        .iter()
        .find(|r| r.path.contains("code=embedded-code"))
        .expect("exchange");
    assert!(!query(&exchange.path).contains_key("redirect_uri"));
    assert!(
        !reqs.iter().any(|r| r.path.contains("fb_exchange_token")),
        "no long-lived exchange"
    );
    assert_eq!(
        bearer(
            reqs.iter()
                .find(|r| r.path.starts_with("/v26.0/5007/register"))
                .expect("register")
        ),
        SYSTEM
    );

    // Ids left out: found through debug_token; the number's PIN is refused (133005).
    let (status, v) = w
        .call(
            Method::POST,
            &path,
            Some(json!({"endpoint": w.endpoint, "flow": "embedded", "code": "embedded-code"})),
        )
        .await;
    assert_error(&(status, v.clone()), 422, "two_step_pin_mismatch");
    assert!(
        v["error"]["message"]
            .as_str()
            .expect("message")
            .contains("133005"),
        "{v}"
    );
    assert!(
        w.fake
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/v26.0/debug_token"))
    );

    // Nothing connected for that number, and agents may not connect at all.
    let (_, list) = w
        .call(
            Method::GET,
            &format!("/api/v1/tenants/{}/connections", w.tenant),
            None,
        )
        .await;
    assert!(
        !list["data"]
            .as_array()
            .expect("data")
            .iter()
            .any(|c| c["channel_address"] == "5009")
    );
    w.assert_no_secret_seen();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_abandoned_session_is_shredded_by_the_periodic_sweep() {
    let mut w = world().await;
    let state = w.start().await;
    let location = w
        .callback_and_confirm(&[("code", "good-code"), ("state", &state)])
        .await;
    let session = param(&location, "session").expect("picking");
    // The user never picks; ten minutes pass (moved in the database, not slept).
    let db = format!(
        "sqlite://{}",
        w.h.data.path().join("switchyard.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&db).await.expect("open");
    sqlx::query("UPDATE meta_onboarding_sessions SET expires_at = 1")
        .execute(&pool)
        .await
        .expect("expire");
    let store = switchyard::store::Store::open(&db).await.expect("store");
    let vault = switchyard::vault::Vault::new(
        switchyard::vault::crypto::MasterKeys::parse(crate::api::MASTER_KEY, "").expect("keys"),
    );
    let shredded = switchyard::lifecycle::expire_onboarding_once(&store, &vault)
        .await
        .expect("sweep");
    assert_eq!(shredded, 1);
    // Nothing left to shred the second time; the session says why it ended.
    assert_eq!(
        switchyard::lifecycle::expire_onboarding_once(&store, &vault)
            .await
            .expect("sweep"),
        0
    );
    let path = format!("/api/v1/tenants/{}/connect/meta/{session}", w.tenant);
    let (status, v) = w.call(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["error"].as_str()),
        (Some("failed"), Some("state_expired")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connect_that_fails_after_register_keeps_its_pin_for_the_retry() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    // Meta as it behaves: the first PIN registered for a number is its two-step PIN, another
    // one is refused with 133005; the number's first credential check fails transiently.
    let pins: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let checks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = pins.clone();
    let mut w = world_with(move |r: &Received| {
        let path = r.path.split('?').next().unwrap_or_default();
        if let Some(number) = path
            .strip_prefix("/v26.0/")
            .and_then(|p| p.strip_suffix("/register"))
        {
            let b: Value = serde_json::from_slice(&r.body).expect("json body");
            let pin = b["pin"].as_str().expect("pin").to_string();
            let mut pins = seen.lock().expect("pins");
            let first = pins.entry(number.to_string()).or_insert(pin.clone());
            if *first != pin {
                return error(400, 133005, "Two step verification PIN Mismatch");
            }
        }
        if r.method == "GET"
            && path == "/v26.0/5001"
            && checks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0
        {
            return (
                503,
                json!({"error": {"message": "Service temporarily unavailable", "type": "OAuthException",
                    "code": 2, "is_transient": true, "fbtrace_id": "AbCdEf"}})
                .to_string(),
            );
        }
        graph(r)
    })
    .await;
    let path = format!("/api/v1/tenants/{}/connect/meta", w.tenant);
    let (status, v) = w
        .call(
            Method::POST,
            &path,
            Some(
                json!({"endpoint": w.endpoint, "flow": "embedded", "code": "embedded-code",
                "waba_id": "900001", "phone_number_id": "5001",
                "consent": {"document_version": "2026-11", "scopes": ["messaging"]}}),
            ),
        )
        .await;
    assert!(
        status >= 500,
        "the check failed after register: {status} {v}"
    );
    let registers = |w: &World| {
        w.fake
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/v26.0/5001/register"))
            .count()
    };
    assert_eq!(registers(&w), 1, "the PIN reached Meta before the failure");
    // The session waits for a retry with its token and PIN kept; no new flow is needed.
    let session = v["error"]["session"]
        .as_str()
        .expect("the error names the session to retry in")
        .to_string();
    let (state, error) = session_state(&mut w, &session).await;
    assert_eq!(state, "picking", "{error:?}");
    assert!(error.is_some(), "the session says why the last try failed");
    let (status, con) = w
        .call(
            Method::POST,
            &format!("{path}/{session}/pick"),
            Some(json!({"waba_id": "900001", "phone_number_id": "5001"})),
        )
        .await;
    assert_eq!(status, 201, "the retry registers with the same PIN: {con}");
    assert_eq!(con["status"], "live");
    assert_eq!(registers(&w), 2);
    assert_eq!(pins.lock().expect("pins").len(), 1);
    // Done: the session's token and PIN are shredded; the PIN never showed in a response.
    let (state, _) = session_state(&mut w, &session).await;
    assert_eq!(state, "completed");
    w.assert_no_secret_seen();
}

/// The session as the API shows it: `(status, error)`.
async fn session_state(w: &mut World, session: &str) -> (String, Option<String>) {
    let path = format!("/api/v1/tenants/{}/connect/meta/{session}", w.tenant);
    let (status, v) = w.call(Method::GET, &path, None).await;
    assert_eq!(status, 200, "{v}");
    (
        v["status"].as_str().expect("status").to_string(),
        v["error"].as_str().map(str::to_string),
    )
}

/// What was done at Meta for the number or in the tenant: `(code exchanges, POSTs, connections)`.
async fn effects(w: &mut World) -> (usize, usize, usize) {
    let reqs = w.fake.requests();
    let exchanges = reqs
        .iter()
        .filter(|r| r.path.contains("oauth/access_token"))
        .count();
    let posts = reqs.iter().filter(|r| r.method == "POST").count();
    let (_, list) = w
        .call(
            Method::GET,
            &format!("/api/v1/tenants/{}/connections", w.tenant),
            None,
        )
        .await;
    (
        exchanges,
        posts,
        list["data"].as_array().expect("data").len(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_redirect_flow_connects_only_in_the_browser_that_started_it() {
    let mut w = world().await;
    // The tenant's manual connection from `setup` (number 1001).
    let baseline = effects(&mut w).await;
    assert_eq!(baseline, (0, 0, 1));

    // Account-linking CSRF: the tenant opens its own link (its browser gets the cookie) and
    // sends Facebook's dialog link to another business; that business's browser comes back
    // without the cookie. Nothing is exchanged, subscribed, registered or connected.
    let state = w.start().await;
    let victim_session = w.session.clone();
    let attacker_cookie = w.cookie.take();
    let (status, location) = w.callback(&[("code", "one-code"), ("state", &state)]).await;
    assert_eq!(status, 303, "{location}");
    assert_eq!(
        param(&location, "error").as_deref(),
        Some("browser_mismatch")
    );
    assert_eq!(effects(&mut w).await, baseline);
    assert_eq!(
        session_state(&mut w, &victim_session).await,
        ("failed".to_string(), Some("browser_mismatch".to_string()))
    );
    // The state is spent: the attacker's own browser cannot use it afterwards either.
    w.cookie = attacker_cookie;
    let (_, location) = w.callback(&[("code", "one-code"), ("state", &state)]).await;
    assert_eq!(param(&location, "error").as_deref(), Some("state_invalid"));

    // Another flow's cookie is not this flow's.
    let first = w.start().await;
    let first_session = w.session.clone();
    let _second = w.start().await;
    let (_, location) = w.callback(&[("code", "one-code"), ("state", &first)]).await;
    assert_eq!(
        param(&location, "error").as_deref(),
        Some("browser_mismatch")
    );
    assert_eq!(effects(&mut w).await, baseline);
    assert_eq!(session_state(&mut w, &first_session).await.0, "failed");

    // A ticket opens once.
    let path = format!("/api/v1/tenants/{}/connect/meta", w.tenant);
    let (_, v) = w
        .call(
            Method::POST,
            &path,
            Some(json!({"endpoint": w.endpoint, "flow": "redirect"})),
        )
        .await;
    let start = url::Url::parse(v["dialog_url"].as_str().expect("dialog_url")).expect("url");
    let query = start.query().unwrap_or_default().to_string();
    assert_eq!(w.open_start(&query).await.0, 303);
    let (status, body, cookie) = w.open_start(&query).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("ticket_invalid"), "{body}");
    assert!(cookie.is_none());
    let (status, body, _) = w.open_start("ticket=1.ten_x.onb_x.bm9uY2U.bWFj").await;
    assert_eq!(
        (status, body.contains("ticket_invalid")),
        (400, true),
        "{body}"
    );

    // The right browser: the callback shows the tenant and the number; nothing registered
    // until that browser confirms.
    let state = w.start().await;
    let session = w.session.clone();
    let (status, page) = w.callback(&[("code", "one-code"), ("state", &state)]).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Alpha") && page.contains("+1 555-000-5001"),
        "{page}"
    );
    assert_eq!(session_state(&mut w, &session).await.0, "confirming");
    assert_eq!(
        effects(&mut w).await.1,
        0,
        "nothing posted to Meta before the confirmation"
    );
    let token = page
        .split("name=\"confirm\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("token")
        .to_string();
    // Not from another site, not from another browser, not a forged token.
    let mine = w.cookie.clone();
    let connect = [("confirm", token.as_str()), ("decision", "connect")];
    let (status, body) = w.post_confirm(&connect, "https://evil.example.test").await;
    assert_eq!(
        (status, body.contains("confirmation_invalid")),
        (400, true),
        "{body}"
    );
    w.cookie = None;
    let (status, body) = w.post_confirm(&connect, PUBLIC).await;
    assert_eq!(
        (status, body.contains("confirmation_invalid")),
        (400, true),
        "{body}"
    );
    w.cookie = mine;
    let forged = [
        ("confirm", "1.ten_x.onb_x.bm9uY2U.bWFj"),
        ("decision", "connect"),
    ];
    let (status, _) = w.post_confirm(&forged, PUBLIC).await;
    assert_eq!(status, 400);
    assert_eq!(effects(&mut w).await.1, 0, "still nothing posted to Meta");
    // Confirmed: the number is connected.
    let (status, location) = w.confirm(&page, "connect").await;
    assert_eq!(status, 303, "{location}");
    let connected = param(&location, "connected").expect("?connected=");
    let (_, con) = w
        .call(
            Method::GET,
            &format!("/api/v1/tenants/{}/connections/{connected}", w.tenant),
            None,
        )
        .await;
    assert_eq!(
        (con["status"].as_str(), con["channel_address"].as_str()),
        (Some("live"), Some("5001"))
    );
    assert_eq!(session_state(&mut w, &session).await.0, "completed");
    assert!(
        w.fake
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/v26.0/5001/register") && bearer(r) == LONG_ONE)
    );
    // The confirmation is single use.
    let (status, location) = w.confirm(&page, "connect").await;
    assert_eq!(status, 400, "{location}");

    // Cancelled on the confirmation page: nothing registered.
    let posts = effects(&mut w).await.1;
    let state = w.start().await;
    let (_, page) = w.callback(&[("code", "one-code"), ("state", &state)]).await;
    let (status, location) = w.confirm(&page, "cancel").await;
    assert_eq!(status, 303, "{location}");
    assert_eq!(param(&location, "error").as_deref(), Some("access_denied"));
    let (_, after, connections) = effects(&mut w).await;
    assert_eq!(
        (after, connections),
        (posts, baseline.2 + 1),
        "nothing registered on a cancel"
    );
    w.assert_no_secret_seen();
}

/// A host on SQLite whose Twilio API is a fake answering `twilio`, beside the permissive Graph
/// fake; the host, the Graph fake and the Twilio fake.
pub async fn host_with_twilio(
    twilio: impl Fn(&Received) -> (u16, String) + Send + Sync + 'static,
) -> (Host, Fake, Fake) {
    let graph = Fake::start_with(crate::api::graph_ok).await;
    let twilio = Fake::start_with(twilio).await;
    let args = ["--twilio-api-url", twilio.origin.as_str()];
    let h = Host::start_with(Db::Sqlite, &graph.origin, &args).await;
    (h, graph, twilio)
}

/// One WhatsApp sender as Twilio's Senders API lists it.
pub fn twilio_sender(n: u8, status: &str, name: &str) -> Value {
    json!({"sid": format!("XE{n:032x}"), "status": status,
           "sender_id": format!("whatsapp:+1415555010{n}"),
           "configuration": {"waba_id": "1234567890"},
           "profile": {"name": name},
           "properties": {"quality_rating": "HIGH", "messaging_limit": "10K Customers/24hr"},
           "offline_reasons": null,
           "url": format!("https://messaging.twilio.com/v2/Channels/Senders/XE{n:032x}")})
}

/// Twilio's Senders API (`GET /v2/Channels/Senders?Channel=whatsapp`) for one account: Basic auth
/// of [`TWILIO_SID`] and [`TWILIO_TOKEN`] or 401 / 20003; two pages, the second naming a "next"
/// page on another origin, which must not be followed.
fn twilio_senders(r: &Received) -> (u16, String) {
    use base64::Engine as _;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{TWILIO_SID}:{TWILIO_TOKEN}"))
    );
    if r.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
        return (
            401,
            json!({"code": 20003, "message": "Authentication Error - invalid username",
                   "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})
            .to_string(),
        );
    }
    let sender = twilio_sender;
    // Twilio's page links are absolute: on this fake's own origin.
    let host = r
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if r.method == "GET" && r.path == "/v2/Channels/Senders?Channel=whatsapp&PageSize=50" {
        return (
            200,
            json!({"senders": [sender(1, "OFFLINE", "Old Shop"), sender(2, "ONLINE", "Shop")],
                   "meta": {"page": 0, "page_size": 50, "key": "senders",
                            "next_page_url": format!("http://{host}/v2/Channels/Senders?Channel=whatsapp&PageSize=50&Page=1")}})
            .to_string(),
        );
    }
    if r.method == "GET" && r.path == "/v2/Channels/Senders?Channel=whatsapp&PageSize=50&Page=1" {
        return (
            200,
            json!({"senders": [sender(3, "ONLINE:UPDATING", "Shop Two")],
                   "meta": {"page": 1, "page_size": 50, "key": "senders",
                            "next_page_url": "https://evil.example/v2/Channels/Senders?Page=2"}})
            .to_string(),
        );
    }
    (
        404,
        json!({"code": 20404, "message": "The requested resource was not found", "status": 404})
            .to_string(),
    )
}

const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
const TWILIO_TOKEN: &str = "twilio-auth-token-for-senders";

/// A tenant lists its Twilio account's WhatsApp senders with the SID and token it typed (issue
/// 19, item 6): every page on Twilio's origin, online senders first, the token in no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_lists_its_twilio_senders_to_pick_one() {
    let (h, _graph, twilio) = host_with_twilio(twilio_senders).await;
    let s = setup(&h).await;
    let path = format!("/api/v1/tenants/{}/connect/twilio/senders", s.a.0);
    let body = json!({"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN});
    let got = h.ok(Method::POST, &path, &s.a.1, Some(body.clone())).await;
    let ids: Vec<(&str, &str, bool)> = got["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|s| {
            (
                s["sender_id"].as_str().unwrap_or_default(),
                s["status"].as_str().unwrap_or_default(),
                s["online"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        vec![
            ("whatsapp:+14155550102", "ONLINE", true),
            ("whatsapp:+14155550103", "ONLINE:UPDATING", true),
            ("whatsapp:+14155550101", "OFFLINE", false),
        ],
        "{got}"
    );
    assert_eq!(got["data"][0]["name"], "Shop");
    assert_eq!(got["data"][0]["quality_rating"], "HIGH");
    assert!(!got.to_string().contains(TWILIO_TOKEN));
    // Two pages read; the link to another origin was not followed.
    let asked = twilio.received.lock().expect("lock").len();
    assert_eq!(asked, 2);

    // Twilio refuses the token: 422, with Twilio's code, and still no token in the answer.
    let wrong = h
        .call(
            Method::POST,
            &path,
            Some(&s.a.1),
            Some(json!({"account_sid": TWILIO_SID, "auth_token": "not-the-token"})),
        )
        .await;
    assert_error(&wrong, 422, "invalid_credentials");
    assert!(wrong.1.to_string().contains("20003"), "{}", wrong.1);
    assert!(!wrong.1.to_string().contains("not-the-token"));
    // Malformed input never reaches Twilio.
    for bad in [
        json!({"account_sid": "AC123", "auth_token": TWILIO_TOKEN}),
        json!({"account_sid": TWILIO_SID, "auth_token": ""}),
        json!({"account_sid": TWILIO_SID, "auth_token": "x".repeat(200)}),
    ] {
        let r = h.call(Method::POST, &path, Some(&s.a.1), Some(bad)).await;
        assert_error(&r, 422, "invalid_settings");
    }
    let r = h
        .call(
            Method::POST,
            &path,
            Some(&s.a.1),
            Some(json!({"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN, "x": 1})),
        )
        .await;
    assert_error(&r, 422, "invalid_body");
    assert_eq!(twilio.received.lock().expect("lock").len(), 3);
    // Agents and other tenants may not.
    let r = h
        .call(
            Method::POST,
            &path,
            Some(&s.a_keys["agent"]),
            Some(body.clone()),
        )
        .await;
    assert_error(&r, 403, "forbidden");
    let r = h.call(Method::POST, &path, Some(&s.b.1), Some(body)).await;
    assert_eq!(r.0, 404, "{}", r.1);
}
