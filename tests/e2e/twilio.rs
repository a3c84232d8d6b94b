//! The bundled Twilio connector end to end against a fake Twilio REST API that checks HTTP
//! Basic auth and form fields as Twilio does and answers with Twilio's documented shapes:
//! connect (bad credentials → 422), a signed inbound message → the `echo` policy → a send →
//! signed status callbacks (delivered, read), 63016 in a `failed` callback acting as
//! window-closed (the template fallback goes out as `ContentSid`), and forged callbacks refused;
//! inbound media through Twilio's redirect to a signed CDN URL (another origin, fetched without
//! the credentials); templates synced from the Content API (`/v1/ContentAndApprovals`, two pages).

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest as _;

use crate::api::{Db, Host, assert_error, graph_ok, setup};
use crate::fake::{Fake, Received};
use crate::ingress::{drained, receipts};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "twilio-auth-token-1";
const FROM: &str = "whatsapp:+14155550100";
/// The bytes behind an inbound picture's signed CDN URL.
const IMAGE: &str = "JFIF: a picture of the broken part, as bytes";
/// Content SIDs the fake Content API lists.
const HX_APPROVED: &str = "HXb5b62575e6e4ff6129ad7c8efe1f983e";
const HX_RECEIVED: &str = "HX0000000000000000000000000000aa02";
const HX_REJECTED: &str = "HX0000000000000000000000000000aa03";
const HX_UNSUBMITTED: &str = "HX0000000000000000000000000000aa04";

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn field<'a>(f: &'a [(String, String)], k: &str) -> Option<&'a str> {
    f.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// Twilio's error body.
fn twilio_error(status: u16, code: u32, message: &str) -> String {
    json!({"code": code, "message": message,
           "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status})
    .to_string()
}

/// One content of the Content API's `ContentAndApprovals` list, with its WhatsApp approval
/// request (`None`: never submitted).
fn content(sid: &str, approval: Option<(&str, &str)>) -> Value {
    json!({
        "sid": sid, "account_sid": SID, "friendly_name": format!("template {sid}"),
        "language": "en", "variables": {"1": "name"},
        "types": {"twilio/text": {"body": "Hi {{1}}, your order is on its way."}},
        "approval_requests": approval.map(|(category, status)| json!({
            "name": "order_update", "category": category, "content_type": "twilio/text",
            "status": status, "rejection_reason": "", "allow_category_change": true
        })),
        "date_created": "2026-01-05T10:00:00Z", "date_updated": "2026-01-06T10:00:00Z",
        "url": format!("https://content.twilio.com/v1/Content/{sid}")
    })
}

/// A page of `GET /v1/ContentAndApprovals` as Twilio answers it: the first page's
/// `meta.next_page_url` is an absolute URL on the origin asked (its `Host`) with a `PageToken`.
fn content_page(r: &Received) -> String {
    let host = r
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("content.twilio.com");
    let query: Vec<(String, String)> = url::form_urlencoded::parse(
        r.path
            .split_once('?')
            .map(|(_, q)| q)
            .unwrap_or("")
            .as_bytes(),
    )
    .map(|(k, v)| (k.into_owned(), v.into_owned()))
    .collect();
    let size = field(&query, "PageSize").unwrap_or("50");
    let list = format!("http://{host}/v1/ContentAndApprovals");
    let (page, contents, next) = if field(&query, "PageToken") == Some("PAHX0000aa02") {
        (
            1,
            json!([
                content(HX_REJECTED, Some(("UTILITY", "rejected"))),
                content(HX_UNSUBMITTED, None)
            ]),
            Value::Null,
        )
    } else {
        (
            0,
            json!([
                content(HX_APPROVED, Some(("UTILITY", "approved"))),
                content(HX_RECEIVED, Some(("MARKETING", "received")))
            ]),
            json!(format!(
                "{list}?PageSize={size}&Page=1&PageToken=PAHX0000aa02"
            )),
        )
    };
    json!({
        "contents": contents,
        "meta": {
            "page": page, "page_size": size.parse::<u32>().unwrap_or(50),
            "first_page_url": format!("{list}?PageSize={size}&Page=0"),
            "previous_page_url": null,
            "url": format!("{list}?PageSize={size}&Page={page}"),
            "next_page_url": next, "key": "contents"
        }
    })
    .to_string()
}

/// A Twilio REST API: Basic auth must be the account's SID and token (else 401 / 20003), sends
/// need `To`, `From` and one of `Body`, `MediaUrl`, `ContentSid` (else 400 / 21619); a media URL
/// answers 307 to a signed URL on `cdn` (as api.twilio.com does to mms.twiliocdn.com); the
/// Content API's `ContentAndApprovals` list has two pages (one configured base serves it).
async fn twilio(cdn: &str) -> Fake {
    let n = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cdn = cdn.to_string();
    Fake::start_with_headers(move |r: &Received| {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
        );
        let authorized = r
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(basic.as_str());
        if !authorized {
            return (401, Vec::new(), twilio_error(401, 20003, "Authenticate"));
        }
        if r.method == "GET" && r.path == format!("/2010-04-01/Accounts/{SID}.json") {
            // Twilio's account resource returns the auth token: egress must redact it (A2).
            return (
                200,
                Vec::new(),
                json!({"sid": SID, "friendly_name": "Shop", "status": "active", "type": "Full",
                       "auth_token": TOKEN, "owner_account_sid": SID})
                .to_string(),
            );
        }
        if r.method == "POST" && r.path == format!("/2010-04-01/Accounts/{SID}/Messages.json") {
            let f = form(&r.body);
            let has = |k| field(&f, k).is_some();
            if !has("To") || !has("From") || !(has("Body") || has("MediaUrl") || has("ContentSid"))
            {
                return (
                    400,
                    Vec::new(),
                    twilio_error(400, 21619, "A text message body or media urls must be specified."),
                );
            }
            let id = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            return (
                201,
                Vec::new(),
                json!({"sid": format!("SM{:032x}", 0xf00d_0000_0000_u128 + id as u128), "account_sid": SID, "status": "queued",
                       "to": field(&f, "To"), "from": field(&f, "From"), "body": field(&f, "Body"),
                       "error_code": null, "error_message": null})
                .to_string(),
            );
        }
        if r.method == "GET"
            && r.path.starts_with(&format!("/2010-04-01/Accounts/{SID}/Messages/MM"))
            && r.path.contains("/Media/ME")
        {
            // A short-lived signed URL elsewhere, which takes no Authorization header.
            let signed = format!(
                "{cdn}/{SID}/5c1e0e5b8d7f1b2a?Expires=1767225600&Signature=c2lnbmF0dXJl&Key-Pair-Id=APKAEXAMPLE"
            );
            return (307, vec![("location", signed)], String::new());
        }
        if r.method == "GET" && r.path.starts_with("/v1/ContentAndApprovals") {
            return (200, Vec::new(), content_page(r));
        }
        (
            404,
            Vec::new(),
            twilio_error(404, 20404, "The requested resource was not found"),
        )
    })
    .await
}

/// The CDN a media redirect leads to (mms.twiliocdn.com): it serves the file at a signed URL to
/// a request without an Authorization header, and refuses one that has both, as S3 does.
async fn cdn() -> Fake {
    Fake::start_with_headers(|r: &Received| {
        if r.headers.contains_key("authorization") {
            return (
                400,
                vec![("content-type", "application/xml".to_string())],
                "<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed\
                 </Message></Error>"
                    .to_string(),
            );
        }
        if r.method == "GET"
            && r.path.starts_with(&format!("/{SID}/"))
            && r.path.contains("Signature=")
        {
            return (
                200,
                vec![("content-type", "image/jpeg".to_string())],
                IMAGE.to_string(),
            );
        }
        (
            403,
            vec![("content-type", "application/xml".to_string())],
            "<Error><Code>AccessDenied</Code></Error>".to_string(),
        )
    })
    .await
}

/// `X-Twilio-Signature` for `url` and form `params`, as Twilio computes it.
fn signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut s = url.to_string();
    for (k, v) in sorted {
        s.push_str(k);
        s.push_str(v);
    }
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(token.as_bytes()).expect("key");
    mac.update(s.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

struct Run {
    h: Host,
    twilio: Fake,
    /// The media CDN Twilio's media URLs redirect to.
    cdn: Fake,
    tenant: (String, String),
    /// The Twilio connection and an agent's key (agents may not verify or test).
    connection: String,
    agent: String,
    endpoint: String,
    /// The public webhook URL Twilio calls (and signs).
    public: String,
    client: reqwest::Client,
}

impl Run {
    /// Post a form to the connection's endpoint with `signature`; the response.
    async fn post_signed(&self, params: &[(&str, &str)], sig: Option<&str>) -> reqwest::Response {
        self.post_with(params, sig, &[]).await
    }

    /// [`Run::post_signed`] with more headers (a proxy's `X-Forwarded-*`).
    async fn post_with(
        &self,
        params: &[(&str, &str)],
        sig: Option<&str>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let mut req = self
            .client
            .post(format!("{}/hooks/{}", self.h.base, self.endpoint))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(sig) = sig {
            req = req.header("x-twilio-signature", sig);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.expect("post")
    }

    /// Post a correctly signed form, check Twilio gets the empty TwiML answer, wait for jobs.
    async fn post(&self, params: &[(&str, &str)]) {
        let sig = signature(TOKEN, &self.public, params);
        let r = self.post_signed(params, Some(&sig)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/xml")
        );
        assert_eq!(r.text().await.expect("body"), "<Response/>");
        drained(&self.h).await;
    }

    /// The sends the fake received, as forms.
    fn sends(&self) -> Vec<Vec<(String, String)>> {
        self.twilio
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST")
            .map(|r| form(&r.body))
            .collect()
    }

    /// Messages of the conversation with `phone`, newest first.
    async fn messages(&self, phone: &str) -> Vec<Value> {
        self.h
            .conversation_with(&self.tenant, "contact_phone", phone)
            .await
            .unwrap_or_else(|| panic!("no conversation with {phone}"))
            .1
    }
}

fn inbound<'a>(
    sid: &'a str,
    wa_id: &'a str,
    from: &'a str,
    body: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("SmsMessageSid", sid),
        ("NumMedia", "0"),
        ("ProfileName", "Ada"),
        ("MessageType", "text"),
        ("SmsSid", sid),
        ("WaId", wa_id),
        ("SmsStatus", "received"),
        ("Body", body),
        ("To", FROM),
        ("NumSegments", "1"),
        ("ReferralNumMedia", "0"),
        ("MessageSid", sid),
        ("AccountSid", SID),
        ("From", from),
        ("ApiVersion", "2010-04-01"),
    ]
}

fn status<'a>(
    sid: &'a str,
    to: &'a str,
    state: &'a str,
    error: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("ChannelPrefix", "whatsapp"),
        ("ApiVersion", "2010-04-01"),
        ("MessageStatus", state),
        ("SmsSid", sid),
        ("SmsStatus", state),
        ("ChannelInstallSid", "XE0123"),
        ("To", to),
        ("From", FROM),
        ("MessageSid", sid),
        ("AccountSid", SID),
    ];
    if let Some(code) = error {
        p.push(("ErrorCode", code));
    }
    p
}

async fn start() -> Run {
    let graph = Fake::start_with(graph_ok).await;
    let cdn = cdn().await;
    let twilio = twilio(&cdn.origin).await;
    // The CDN is another origin the operator allows (never given credentials), as the manifest
    // declares mms.twiliocdn.com.
    let cdn_origin = format!("twilio={}", cdn.origin);
    let h = Host::start_with(
        Db::Sqlite,
        &graph.origin,
        &[
            "--twilio-api-url",
            &twilio.origin,
            "--egress-origins",
            &cdn_origin,
        ],
    )
    .await;
    let s = setup(&h).await;
    let path = format!("/api/v1/tenants/{}/connections", s.a.0);
    let body = |token: &str| {
        json!({
            "connector": "twilio",
            "settings": {"account_sid": SID, "from": FROM},
            "secrets": {"auth_token": token},
            "consent": {"document_version": "2026-11", "scopes": ["messaging"]}
        })
    };
    // Bad credentials: Twilio's 401 / 20003 → a clear invalid_credentials, nothing stored.
    let bad = h
        .call(Method::POST, &path, Some(&s.a.1), Some(body("wrong-token")))
        .await;
    assert_error(&bad, 422, "invalid_credentials");
    assert!(
        bad.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("20003")),
        "{}",
        bad.1
    );

    let c = h.ok(Method::POST, &path, &s.a.1, Some(body(TOKEN))).await;
    assert_eq!(c["status"], "live", "{c}");
    // A sender is live in one tenant only, host-wide, though each connection has its own
    // endpoint (issue 13).
    let again = h
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{}/connections", s.b.0),
            Some(&s.b.1),
            Some(body(TOKEN)),
        )
        .await;
    assert_error(&again, 409, "number_already_connected");
    assert_eq!(c["channel_address"], FROM);
    assert_eq!(c["account_id"], SID);
    let endpoint = c["endpoint_id"].as_str().expect("endpoint").to_string();
    let public = format!("https://hooks.example.test/hooks/{endpoint}");
    assert_eq!(c["webhook_url"], public);
    // The check was Twilio's account fetch, which sends nothing.
    assert!(twilio.requests().iter().all(|r| r.method == "GET"));

    h.ok(
        Method::PUT,
        &format!("/api/v1/tenants/{}/policy", s.a.0),
        &s.a.1,
        Some(json!({"plugin": "echo"})),
    )
    .await;
    Run {
        h,
        twilio,
        cdn,
        tenant: s.a.clone(),
        connection: c["id"].as_str().expect("id").to_string(),
        agent: s.a_keys["agent"].clone(),
        endpoint,
        public,
        client: reqwest::Client::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twilio_inbound_echo_send_and_status_callbacks() {
    let r = start().await;

    // A signed inbound text → stored → echo → a send reaches Twilio with the right form.
    r.post(&inbound(
        "SM00000000000000000000000000000001",
        "14017122661",
        "whatsapp:+14017122661",
        "Hello there",
    ))
    .await;
    let sends = r.sends();
    assert_eq!(sends.len(), 1, "{sends:?}");
    let f = &sends[0];
    assert_eq!(field(f, "To"), Some("whatsapp:+14017122661"));
    assert_eq!(field(f, "From"), Some(FROM));
    assert_eq!(field(f, "Body"), Some("Hello there"));
    assert_eq!(field(f, "StatusCallback"), Some(r.public.as_str()));
    let msgs = r.messages("14017122661").await;
    assert_eq!(msgs[0]["direction"], "out", "{msgs:?}");
    assert_eq!(msgs[0]["status"], "accepted");
    let out_sid = msgs[0]["provider_message_id"]
        .as_str()
        .expect("sid")
        .to_string();
    assert!(out_sid.starts_with("SM"));
    assert_eq!(
        msgs[1]["provider_message_id"],
        "SM00000000000000000000000000000001"
    );
    assert_eq!(msgs[1]["body"], "Hello there");

    // Signed status callbacks move it to delivered, then read.
    r.post(&status(&out_sid, "whatsapp:+14017122661", "sent", None))
        .await;
    r.post(&status(
        &out_sid,
        "whatsapp:+14017122661",
        "delivered",
        None,
    ))
    .await;
    assert_eq!(r.messages("14017122661").await[0]["status"], "delivered");
    r.post(&status(&out_sid, "whatsapp:+14017122661", "read", None))
        .await;
    assert_eq!(r.messages("14017122661").await[0]["status"], "read");

    // A forged callback (signed with another token, or for another URL, or changed after
    // signing) → 403 and a receipt; a missing signature → 401. Nothing changes.
    let failed = status(&out_sid, "whatsapp:+14017122661", "failed", Some("30008"));
    let forged = signature("not-the-token", &r.public, &failed);
    assert_eq!(r.post_signed(&failed, Some(&forged)).await.status(), 403);
    let other_url = signature(TOKEN, "https://hooks.example.test/hooks/end_other", &failed);
    assert_eq!(r.post_signed(&failed, Some(&other_url)).await.status(), 403);
    let read = status(&out_sid, "whatsapp:+14017122661", "read", None);
    let sig = signature(TOKEN, &r.public, &read);
    assert_eq!(r.post_signed(&failed, Some(&sig)).await.status(), 403);
    assert_eq!(r.post_signed(&failed, None).await.status(), 401);
    drained(&r.h).await;
    assert_eq!(r.messages("14017122661").await[0]["status"], "read");
    let rec = receipts(&r.h, &r.endpoint).await;
    // Receipt ids order by millisecond, then at random: compare as a sorted list.
    let mut refused: Vec<i64> = rec
        .iter()
        .filter(|x| x.0 == "rejected")
        .map(|x| x.1)
        .collect();
    refused.sort_unstable();
    assert_eq!(refused, [401, 403, 403, 403], "{rec:?}");

    // A sender known only by a business-scoped id is kept, and answered by that id.
    r.post(&[
        ("MessageSid", "SM00000000000000000000000000000002"),
        ("From", "whatsapp:US.13491208655302741918"),
        ("ExternalUserId", "whatsapp:US.13491208655302741918"),
        ("To", FROM),
        ("Body", "no number"),
        ("NumMedia", "0"),
        ("AccountSid", SID),
    ])
    .await;
    let sends = r.sends();
    assert_eq!(sends.len(), 2, "{sends:?}");
    assert_eq!(
        field(&sends[1], "To"),
        Some("whatsapp:US.13491208655302741918")
    );
}

/// A webhook Twilio signed over another form of the public URL (`http://` where the host's
/// `SWITCHYARD_PUBLIC_URL` says `https://`, or the host a proxy forwarded) is refused; the 403
/// and the refusal's receipt name the form that matched, never its path or query. A signature
/// that matches no form keeps the plain reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twilio_signature_over_another_form_of_the_url_is_refused_and_named() {
    let r = start().await;
    let params = inbound(
        "SM00000000000000000000000000000005",
        "14017122665",
        "whatsapp:+14017122665",
        "signed for the wrong URL",
    );
    let message = |resp: Value| {
        assert_eq!(resp["error"]["code"], "rejected", "{resp}");
        resp["error"]["message"]
            .as_str()
            .expect("message")
            .to_string()
    };

    let http = r.public.replacen("https://", "http://", 1);
    assert_ne!(http, r.public);
    let sig = signature(TOKEN, &http, &params);
    let resp = r.post_signed(&params, Some(&sig)).await;
    assert_eq!(resp.status(), 403);
    let over_http = "signature matches http://hooks.example.test, not the public URL \
                     https://hooks.example.test: set SWITCHYARD_PUBLIC_URL to \
                     http://hooks.example.test";
    assert_eq!(message(resp.json().await.expect("json")), over_http);

    // Behind a proxy that forwards the host Twilio called.
    let proxied = format!("https://edge.example.test/hooks/{}", r.endpoint);
    let sig = signature(TOKEN, &proxied, &params);
    let forwarded = [
        ("x-forwarded-host", "edge.example.test"),
        ("x-forwarded-proto", "https"),
    ];
    let resp = r.post_with(&params, Some(&sig), &forwarded).await;
    assert_eq!(resp.status(), 403);
    let over_edge = "signature matches https://edge.example.test, not the public URL \
                     https://hooks.example.test: set SWITCHYARD_PUBLIC_URL to \
                     https://edge.example.test";
    assert_eq!(message(resp.json().await.expect("json")), over_edge);

    // Another token matches no form: the plain reason, whatever the headers say.
    let forged = signature("not-the-token", &proxied, &params);
    let resp = r.post_with(&params, Some(&forged), &forwarded).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        message(resp.json().await.expect("json")),
        "signature mismatch"
    );

    // Each refusal is in a receipt with its reason (the first refusals of a minute are kept);
    // nothing was accepted or stored.
    drained(&r.h).await;
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        r.h.data.path().join("switchyard.db").display()
    ))
    .await
    .expect("open");
    let mut refused: Vec<(String, i64, Option<String>)> =
        sqlx::query_as("SELECT outcome, status, reason FROM receipts WHERE endpoint_id = ?")
            .bind(&r.endpoint)
            .fetch_all(&db)
            .await
            .expect("receipts");
    refused.sort();
    let rejected = |reason: &str| ("rejected".to_string(), 403, Some(reason.to_string()));
    assert_eq!(
        refused,
        [
            rejected(over_http),
            rejected(over_edge),
            rejected("signature mismatch")
        ]
    );
    assert!(
        r.h.conversation_with(&r.tenant, "contact_phone", "14017122665")
            .await
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twilio_63016_in_a_failed_callback_acts_as_window_closed() {
    let r = start().await;
    let t = &r.tenant;
    r.h.ok(
        Method::PUT,
        &format!("/api/v1/tenants/{}/policy", t.0),
        &t.1,
        Some(json!({"plugin": "auto-reply", "config": {
            "rules": [{"keywords": ["window"], "reply": "Free-form reply."}],
            "fallback": {"name": "HXb5b62575e6e4ff6129ad7c8efe1f983e", "language": "en",
                         "category": "utility", "parameters": ["{name}"]}
        }})),
    )
    .await;
    r.post(&inbound(
        "SM00000000000000000000000000000003",
        "14017122662",
        "whatsapp:+14017122662",
        "window?",
    ))
    .await;
    let sends = r.sends();
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(field(&sends[0], "Body"), Some("Free-form reply."));
    let first = r.messages("14017122662").await[0]["provider_message_id"]
        .as_str()
        .expect("sid")
        .to_string();

    // Twilio took it (201) and reports 63016 in the `undelivered` callback: the template
    // fallback goes out as ContentSid + ContentVariables, without Body or MediaUrl.
    r.post(&status(
        &first,
        "whatsapp:+14017122662",
        "undelivered",
        Some("63016"),
    ))
    .await;
    let sends = r.sends();
    assert_eq!(sends.len(), 2, "{sends:?}");
    let f = &sends[1];
    assert_eq!(
        field(f, "ContentSid"),
        Some("HXb5b62575e6e4ff6129ad7c8efe1f983e")
    );
    assert_eq!(field(f, "ContentVariables"), Some(r#"{"1":"Ada"}"#));
    assert_eq!(field(f, "Body"), None);
    assert_eq!(field(f, "MediaUrl"), None);
    assert_eq!(field(f, "To"), Some("whatsapp:+14017122662"));
    let msgs = r.messages("14017122662").await;
    assert_eq!(
        (msgs[0]["kind"].as_str(), msgs[0]["status"].as_str()),
        (Some("template"), Some("accepted")),
        "{msgs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twilio_verify_rechecks_and_a_test_send_goes_out_once_and_is_in_the_ledger() {
    let r = start().await;
    let base = format!(
        "/api/v1/tenants/{}/connections/{}",
        r.tenant.0, r.connection
    );
    // A sandbox sender: the status explains the testers' `join <keyword>` opt-in.
    let sandbox =
        r.h.ok(
            Method::POST,
            &format!("/api/v1/tenants/{}/connections", r.tenant.0),
            &r.tenant.1,
            Some(json!({
                "connector": "twilio",
                "settings": {"account_sid": SID, "from": "whatsapp:+14155238886"},
                "secrets": {"auth_token": TOKEN},
                "consent": {"document_version": "2026-11"}
            })),
        )
        .await;
    assert_eq!(sandbox["status"], "live", "{sandbox}");
    assert!(
        sandbox["status_reason"]
            .as_str()
            .is_some_and(|s| s.contains("sandbox") && s.contains("join <keyword>")),
        "{sandbox}"
    );
    let checks_before = r.twilio.requests().len();
    let v =
        r.h.ok(Method::POST, &format!("{base}/verify"), &r.tenant.1, None)
            .await;
    assert_eq!(v["status"], "live", "{v}");
    assert_eq!(
        r.twilio.requests().len(),
        checks_before + 1,
        "one account fetch"
    );

    // Agents may do neither.
    let denied =
        r.h.call(
            Method::POST,
            &format!("{base}/verify"),
            Some(&r.agent),
            None,
        )
        .await;
    assert_error(&denied, 403, "forbidden");
    let body = json!({"to": "+14155550123", "message": "Test from Switchyard"});
    let denied =
        r.h.call(
            Method::POST,
            &format!("{base}/test"),
            Some(&r.agent),
            Some(body.clone()),
        )
        .await;
    assert_error(&denied, 403, "forbidden");
    let bad =
        r.h.call(
            Method::POST,
            &format!("{base}/test"),
            Some(&r.tenant.1),
            Some(json!({"to": "call me", "message": "x"})),
        )
        .await;
    assert_error(&bad, 422, "invalid_recipient");

    // No one wrote first, yet a test send goes out: once, with Twilio's form.
    let sent =
        r.h.ok(
            Method::POST,
            &format!("{base}/test"),
            &r.tenant.1,
            Some(body),
        )
        .await;
    assert!(
        sent["provider_message_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("SM")),
        "{sent}"
    );
    let sends = r.sends();
    assert_eq!(sends.len(), 1, "{sends:?}");
    assert_eq!(field(&sends[0], "To"), Some("whatsapp:+14155550123"));
    assert_eq!(field(&sends[0], "From"), Some(FROM));
    assert_eq!(field(&sends[0], "Body"), Some("Test from Switchyard"));
    let ledger =
        r.h.ok(
            Method::GET,
            &format!("/api/v1/tenants/{}/consent", r.tenant.0),
            &r.tenant.1,
            None,
        )
        .await;
    assert!(
        ledger["data"]
            .as_array()
            .expect("data")
            .iter()
            .any(|e| e["action"] == "test-send" && e["connection_id"] == r.connection.as_str()),
        "{ledger}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twilio_media_follows_the_redirect_to_the_cdn_without_credentials_and_is_stored() {
    let r = start().await;
    let media_path = format!(
        "/2010-04-01/Accounts/{SID}/Messages/MM00000000000000000000000000000009/Media/ME00000000000000000000000000000009"
    );
    let media_url = format!("{}{media_path}", r.twilio.origin);
    let mut params = inbound(
        "MM00000000000000000000000000000009",
        "14017122663",
        "whatsapp:+14017122663",
        "",
    );
    params.retain(|(k, _)| !matches!(*k, "NumMedia" | "MessageType"));
    params.extend([
        ("NumMedia", "1"),
        ("MessageType", "image"),
        ("MediaContentType0", "image/jpeg"),
        ("MediaUrl0", media_url.as_str()),
    ]);
    r.post(&params).await;

    // Twilio's media URL got the account's Basic auth and answered 307; the signed CDN URL was
    // fetched once, without any Authorization header.
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    );
    let asked: Vec<Received> = r
        .twilio
        .requests()
        .into_iter()
        .filter(|q| q.path == media_path)
        .collect();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0].method, "GET");
    assert_eq!(
        asked[0]
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok()),
        Some(basic.as_str())
    );
    let hops = r.cdn.requests();
    assert_eq!(hops.len(), 1, "{hops:?}");
    assert_eq!(hops[0].method, "GET");
    assert!(
        hops[0].path.starts_with(&format!("/{SID}/")) && hops[0].path.contains("Signature="),
        "{}",
        hops[0].path
    );
    assert!(
        !hops[0].headers.contains_key("authorization"),
        "the CDN got credentials: {:?}",
        hops[0].headers
    );

    // The host stored the CDN's bytes, and serves them to the tenant.
    let msgs = r.messages("14017122663").await;
    let received = msgs
        .iter()
        .find(|m| m["provider_message_id"] == "MM00000000000000000000000000000009")
        .unwrap_or_else(|| panic!("the inbound picture: {msgs:?}"));
    assert_eq!(received["direction"], "in");
    assert_eq!(received["kind"], "image");
    let media = &received["media"][0];
    assert_eq!(media["status"], "stored", "{media}");
    assert_eq!(media["size_bytes"], IMAGE.len());
    assert_eq!(
        media["sha256"],
        hex::encode(sha2::Sha256::digest(IMAGE.as_bytes()))
    );
    let got = r
        .client
        .get(format!(
            "{}/api/v1/tenants/{}/media/{}",
            r.h.base,
            r.tenant.0,
            media["id"].as_str().expect("media id")
        ))
        .bearer_auth(&r.tenant.1)
        .send()
        .await
        .expect("get media");
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/jpeg");
    assert_eq!(got.bytes().await.expect("bytes").as_ref(), IMAGE.as_bytes());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twilio_templates_sync_from_the_content_api_with_their_whatsapp_approval() {
    let r = start().await;
    let path = format!(
        "/api/v1/tenants/{}/connections/{}/templates",
        r.tenant.0, r.connection
    );
    let synced =
        r.h.ok(Method::POST, &format!("{path}/sync"), &r.tenant.1, None)
            .await;
    let list = r.h.ok(Method::GET, &path, &r.tenant.1, None).await;
    assert_eq!(list, synced);
    let list = list.as_array().expect("array");
    assert_eq!(list.len(), 4, "{list:?}");
    let by_sid = |sid: &str| {
        list.iter()
            .find(|t| t["name"] == sid)
            .unwrap_or_else(|| panic!("{sid} in {list:?}"))
            .clone()
    };
    // Listed by content SID, the name a send uses as `ContentSid`; only `approved` is sendable.
    let approved = by_sid(HX_APPROVED);
    assert_eq!(approved["provider_id"], HX_APPROVED);
    assert_eq!(approved["language"], "en");
    assert_eq!(approved["category"], "utility");
    assert_eq!(approved["status"], "APPROVED");
    assert_eq!(approved["sendable"], true);
    // People know it by its friendly name; the SID stays what a send names.
    assert_eq!(approved["display_name"], format!("template {HX_APPROVED}"));
    for (sid, status, category) in [
        (HX_RECEIVED, "RECEIVED", "marketing"),
        (HX_REJECTED, "REJECTED", "utility"),
        // Never submitted to WhatsApp: listed, not sendable.
        (HX_UNSUBMITTED, "UNSUBMITTED", "marketing"),
    ] {
        let t = by_sid(sid);
        assert_eq!(
            (t["status"].as_str(), t["category"].as_str(), &t["sendable"]),
            (Some(status), Some(category), &json!(false)),
            "{t}"
        );
    }

    // Both pages were read with the account's Basic auth (the fake refuses anything else), the
    // second at Twilio's `next_page_url`.
    let pages: Vec<String> = r
        .twilio
        .requests()
        .into_iter()
        .filter(|q| q.method == "GET" && q.path.starts_with("/v1/ContentAndApprovals"))
        .map(|q| q.path)
        .collect();
    assert_eq!(
        pages,
        [
            "/v1/ContentAndApprovals?PageSize=500",
            "/v1/ContentAndApprovals?PageSize=500&Page=1&PageToken=PAHX0000aa02",
        ]
    );
}
