//! The security review (issue 13): each hole, with the test that shows it closed, against the
//! real HTTP server and a Graph API fake that answers as Meta does for each token.

use reqwest::Method;
use serde_json::{Value, json};

use crate::api::{Db, Host, assert_error, graph_ok, setup};
use crate::fake::{Fake, Received};

/// The attacker's own number and WhatsApp Business Account.
const OWN: &str = "111111";
const OWN_WABA: &str = "111000";
/// Another business's number and account.
const VICTIM: &str = "222222";
const VICTIM_WABA: &str = "222000";

fn bearer(r: &Received) -> String {
    r.headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_string()
}

/// Graph as Meta answers it: a token reads only its own account's numbers; any other object is
/// error 100 ("does not exist, cannot be loaded due to missing permissions").
fn graph(r: &Received) -> (u16, String) {
    let (waba, number) = match bearer(r).as_str() {
        "token-attacker" => (OWN_WABA, OWN),
        "token-victim" => (VICTIM_WABA, VICTIM),
        _ => return graph_ok(r),
    };
    let denied = |id: &str| {
        (
            400,
            json!({"error": {"message": format!("Unsupported get request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."),
                             "type": "GraphMethodException", "code": 100, "error_subcode": 33, "fbtrace_id": "AxYz"}})
            .to_string(),
        )
    };
    let path = r.path.split('?').next().unwrap_or_default();
    let Some(rest) = path.strip_prefix("/v26.0/") else {
        return (
            400,
            json!({"error": {"message": "Unknown path components", "type": "OAuthException", "code": 2500}}).to_string(),
        );
    };
    match rest.split_once('/') {
        None if rest == number => (
            200,
            json!({"id": number, "display_phone_number": "+1 555-000-0000", "verified_name": "Own", "quality_rating": "GREEN"}).to_string(),
        ),
        Some((w, "phone_numbers")) if w == waba => {
            (200, json!({"data": [{"id": number}]}).to_string())
        }
        Some((w, "subscribed_apps")) if w == waba => (
            200,
            json!({"data": [{"whatsapp_business_api_data": {"id": "67084", "name": "Switchyard"}}]})
                .to_string(),
        ),
        None => denied(rest),
        Some((w, _)) => denied(w),
    }
}

fn connect(endpoint: &str, number: &str, waba: &str, token: &str, extra: &[(&str, &str)]) -> Value {
    let mut settings = json!({"phone_number_id": number, "waba_id": waba});
    for (k, v) in extra {
        settings[*k] = json!(v);
    }
    json!({
        "connector": "meta-cloud",
        "endpoint": endpoint,
        "settings": settings,
        "secrets": {"access_token": token},
        "consent": {"document_version": "2026-11"}
    })
}

/// Item 1: a tenant setting cannot move a Graph URL, the credential check proves the number,
/// and 409 answers only someone whose credentials proved it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_cannot_take_another_business_number() {
    let fake = Fake::start_with(graph).await;
    let h = Host::start(Db::Sqlite, &fake.origin).await;
    let s = setup(&h).await;
    let (attacker, attacker_key) = (&s.a.0, &s.a.1);
    let (victim, victim_key) = (&s.b.0, &s.b.1);
    let post = |tenant: &str, key: &str, body: Value| {
        let path = format!("/api/v1/tenants/{tenant}/connections");
        let key = key.to_string();
        let h = &h;
        async move { h.call(Method::POST, &path, Some(&key), Some(body)).await }
    };
    let graph_calls = || fake.requests().len();
    let before = graph_calls();

    // The reported attack: a Graph version that re-points the check at the attacker's number.
    let hijack = connect(
        &s.endpoint,
        VICTIM,
        OWN_WABA,
        "token-attacker",
        &[("graph_version", &format!("v26.0/{OWN}#"))],
    );
    assert_error(
        &post(attacker, attacker_key, hijack).await,
        422,
        "setting_not_allowed",
    );
    // Settings the connector does not declare, and values outside its pattern.
    for (extra, code) in [
        (("api_base_url", "https://evil.example"), "unknown_setting"),
        (("access_token", "t"), "unknown_setting"),
    ] {
        let body = connect(&s.endpoint, OWN, OWN_WABA, "token-attacker", &[extra]);
        assert_error(&post(attacker, attacker_key, body).await, 422, code);
    }
    for number in [format!("{OWN}/../{VICTIM}"), format!("{OWN}?fields=x")] {
        let body = connect(&s.endpoint, &number, OWN_WABA, "token-attacker", &[]);
        assert_error(
            &post(attacker, attacker_key, body).await,
            422,
            "invalid_settings",
        );
    }
    assert_eq!(graph_calls(), before, "refused settings reach no provider");

    // The attacker's token cannot prove the victim's number, under either account.
    for waba in [OWN_WABA, VICTIM_WABA] {
        let body = connect(&s.endpoint, VICTIM, waba, "token-attacker", &[]);
        assert_error(
            &post(attacker, attacker_key, body).await,
            422,
            "invalid_credentials",
        );
    }
    // A number Graph knows under another account than the one given is refused too.
    let body = connect(&s.endpoint, OWN, VICTIM_WABA, "token-attacker", &[]);
    assert_error(
        &post(attacker, attacker_key, body).await,
        422,
        "invalid_credentials",
    );

    // The victim connects its own number.
    let body = connect(&s.endpoint, VICTIM, VICTIM_WABA, "token-victim", &[]);
    let (status, con) = post(victim, victim_key, body).await;
    assert_eq!(status, 201, "{con}");

    // Now live: the attacker still learns nothing (422, not 409) ...
    let body = connect(&s.endpoint, VICTIM, VICTIM_WABA, "token-attacker", &[]);
    assert_error(
        &post(attacker, attacker_key, body).await,
        422,
        "invalid_credentials",
    );
    // ... while credentials that prove the number hear that it is taken.
    let body = connect(&s.endpoint, VICTIM, VICTIM_WABA, "token-victim", &[]);
    assert_error(
        &post(attacker, attacker_key, body).await,
        409,
        "number_already_connected",
    );
    // The attacker's own number connects.
    let body = connect(&s.endpoint, OWN, OWN_WABA, "token-attacker", &[]);
    let (status, own) = post(attacker, attacker_key, body).await;
    assert_eq!(status, 201, "{own}");
    assert_eq!(
        own["settings"],
        json!({"phone_number_id": OWN, "waba_id": OWN_WABA})
    );

    // Every Graph call went to the operator's version, with the number as one path segment.
    for r in fake.requests() {
        assert!(
            r.path.starts_with("/v26.0/") && !r.path.contains('#') && !r.path.contains(".."),
            "{}",
            r.path
        );
    }
}

/// Item 1: an endpoint owner sets only the endpoint's declared settings and secrets; a tenant
/// gives only the connection's (a signing secret on a connection is refused, not accepted and
/// then silently useless).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_and_secrets_are_checked_on_their_own_side() {
    let fake = Fake::start_with(graph).await;
    let h = Host::start(Db::Sqlite, &fake.origin).await;
    let s = setup(&h).await;
    let endpoint = |settings: Value, secrets: Value| json!({"connector": "meta-cloud", "settings": settings, "secrets": secrets});
    for (body, code) in [
        (
            endpoint(json!({"phone_number_id": "1"}), json!({"app_secret": "s"})),
            "setting_not_allowed",
        ),
        (
            endpoint(json!({"graph_version": "v1.0"}), json!({"app_secret": "s"})),
            "setting_not_allowed",
        ),
        (
            endpoint(
                json!({"return_url": "javascript:alert(1)"}),
                json!({"app_secret": "s"}),
            ),
            "invalid_settings",
        ),
        (
            endpoint(json!({}), json!({"access_token": "t", "app_secret": "s"})),
            "invalid_secrets",
        ),
        (endpoint(json!({}), json!({})), "invalid_secrets"),
    ] {
        let got = h
            .call(
                Method::POST,
                "/api/v1/endpoints",
                Some(crate::api::OPERATOR),
                Some(body),
            )
            .await;
        assert_error(&got, 422, code);
    }
    let mut body = connect(&s.endpoint, OWN, OWN_WABA, "token-attacker", &[]);
    body["secrets"]["app_secret"] = json!("signing-secret");
    let got = h
        .call(
            Method::POST,
            &format!("/api/v1/tenants/{}/connections", s.a.0),
            Some(&s.a.1),
            Some(body),
        )
        .await;
    assert_error(&got, 422, "invalid_secrets");
}

/// Item 2: dead-lettering a send on SQLite records the reply as failed at once; it used to open
/// a second write inside the job's own and wait on itself (10 s of 503s, the reply left queued).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_send_fails_its_reply_without_stalling_writes() {
    // Every send fails as Meta's transient error 2; everything else as Graph answers.
    let fake = Fake::start_with(|r| {
        if r.method == "POST" && r.path.ends_with("/messages") {
            return (
                503,
                json!({"error": {"message": "Service temporarily unavailable", "type": "OAuthException", "code": 2, "fbtrace_id": "A"}}).to_string(),
            );
        }
        graph_ok(r)
    })
    .await;
    let h = Host::start(Db::Sqlite, &fake.origin).await;
    let s = setup(&h).await;
    h.ok(
        Method::PUT,
        &format!("/api/v1/tenants/{}/policy", s.a.0),
        &s.a.1,
        Some(json!({"plugin": "echo"})),
    )
    .await;
    let body = crate::ingress::meta_message("1001", "wamid.DEAD1", "echo me");
    let hook = format!("{}/hooks/{}", h.base, s.endpoint);
    let client = reqwest::Client::new();
    let post = client
        .post(&hook)
        .header(
            "x-hub-signature-256",
            crate::ingress::sign("app-secret-1", &body),
        )
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(post.status(), 200);

    // Wait for the first failed attempt, then make the next one the last.
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        h.data.path().join("switchyard.db").display()
    ))
    .await
    .expect("open");
    let mut bumped = false;
    for _ in 0..600 {
        let n = sqlx::query(
            "UPDATE jobs SET attempts = 8, run_at = 0 WHERE kind = 'send' AND state = 'queued' AND attempts >= 1",
        )
        .execute(&db)
        .await
        .expect("update")
        .rows_affected();
        if n == 1 {
            bumped = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(bumped, "the send never failed once");
    crate::ingress::drained(&h).await;

    let reply: (String, Option<String>) =
        sqlx::query_as("SELECT status, error_kind FROM messages WHERE direction = 'out'")
            .fetch_one(&db)
            .await
            .expect("reply");
    assert_eq!(
        reply.0, "failed",
        "the dead send's reply is failed, not left queued"
    );
    assert_eq!(reply.1.as_deref(), Some("gave-up"));
    let dead: (String, String) = sqlx::query_as("SELECT kind, state FROM jobs WHERE kind = 'send'")
        .fetch_one(&db)
        .await
        .expect("job");
    assert_eq!(dead.1, "dead");
    // The API answers writes again straight away (no write stalled behind the gate).
    let (status, _) = h
        .call(
            Method::PUT,
            &format!("/api/v1/tenants/{}/policy", s.a.0),
            Some(&s.a.1),
            Some(json!({"plugin": "echo"})),
        )
        .await;
    assert_eq!(status, 200);
    db.close().await;
}

/// Item 10: disconnecting a number leaves the app subscribed to a WABA that another tenant's
/// connected number still uses; the last one out unsubscribes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_waba_stays_subscribed_until_its_last_number_leaves() {
    let fake = Fake::start_with(graph_ok).await;
    let h = Host::start(Db::Sqlite, &fake.origin).await;
    // Tenants A and B (different partners) each connect a number of WABA 102290129340398.
    let s = setup(&h).await;
    let unsubscribes = || {
        fake.requests()
            .iter()
            .filter(|r| r.method == "DELETE" && r.path.contains("/subscribed_apps"))
            .count()
    };
    let a = h
        .ok(
            Method::DELETE,
            &format!("/api/v1/tenants/{}/connections/{}", s.a.0, s.a_connection),
            &s.a.1,
            None,
        )
        .await;
    assert_eq!(a["status"], "disconnected");
    assert_eq!(unsubscribes(), 0, "B's number still uses the WABA");
    assert!(
        a["status_reason"]
            .as_str()
            .is_some_and(|r| r.contains("another number uses it")),
        "{a}"
    );
    let b = h
        .ok(
            Method::DELETE,
            &format!("/api/v1/tenants/{}/connections/{}", s.b.0, s.b_connection),
            &s.b.1,
            None,
        )
        .await;
    assert_eq!(b["status"], "disconnected");
    assert_eq!(
        unsubscribes(),
        1,
        "the last number out unsubscribes the app"
    );
    let delete = fake
        .requests()
        .into_iter()
        .find(|r| r.method == "DELETE")
        .expect("the unsubscribe");
    assert_eq!(delete.path, "/v26.0/102290129340398/subscribed_apps");
    assert_eq!(
        delete.headers["authorization"], "Bearer token-b",
        "with the number's own token"
    );
}
