//! Graph API calls (send, phone-number check, media lookup, template list) over a
//! [`Transport`], so they run against the host's egress in the component and a fake in tests.
//! Every call carries the access token, which the host adds as `Authorization: Bearer …`.

use serde::Deserialize;

use crate::{errors, send};
use switchyard_sdk::types::{
    ConnectionInfo, Credential, CredentialHealth, EgressError, ErrorKind, HttpRequest,
    HttpResponse, MediaFetch, MediaRef, MediaSource, OutboundMessage, ProviderError,
    TemplateCategory, TemplateInfo,
};

/// The most template pages followed (100 templates each).
pub const MAX_TEMPLATE_PAGES: usize = 20;

/// The fields `list-templates` asks for.
const TEMPLATE_FIELDS: &str = "fields=id,name,language,category,status&limit=100";

/// The connection secret every Graph call and media download carries, as the manifest
/// declares it.
pub const ACCESS_TOKEN: &str = "access_token";

/// The host's egress, as a trait so the calls can be tested natively.
pub trait Transport {
    /// Send one request with the given credentials added by the host.
    fn send(
        &self,
        req: &HttpRequest,
        credentials: &[Credential],
    ) -> Result<HttpResponse, EgressError>;
}

/// `Authorization: Bearer <access_token>`.
pub fn bearer() -> Vec<Credential> {
    vec![Credential::Bearer(ACCESS_TOKEN.into())]
}

fn local_error(kind: ErrorKind, code: &str, message: impl Into<String>) -> ProviderError {
    ProviderError {
        kind,
        code: code.into(),
        message: message.into(),
        retry_after: None,
    }
}

/// The Graph API version for a connection: the operator's `graph_version` setting when it is a
/// version (`v26.0`), else the default — so no setting can add a path segment to a Graph URL.
pub fn version(connection: &ConnectionInfo) -> &str {
    connection
        .settings
        .iter()
        .find(|(k, v)| k == "graph_version" && is_version(v))
        .map(|(_, v)| v.as_str())
        .unwrap_or(send::DEFAULT_GRAPH_VERSION)
}

/// `v` followed by `major.minor`, digits only (`^v\d+\.\d+$`).
fn is_version(v: &str) -> bool {
    let Some((major, minor)) = v.strip_prefix('v').and_then(|r| r.split_once('.')) else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    digits(major) && digits(minor)
}

/// Percent-encode one path segment, so an id can never change the path or add a query.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `{api-base-url}/{version}/{path}`.
pub fn url(connection: &ConnectionInfo, path: &str) -> String {
    format!(
        "{}/{}/{path}",
        connection.api_base_url.trim_end_matches('/'),
        version(connection)
    )
}

/// One call with the bearer access token; a non-2xx answer becomes a provider error.
fn call(
    t: &impl Transport,
    method: &str,
    url: String,
    body: Option<Vec<u8>>,
) -> Result<HttpResponse, ProviderError> {
    let mut headers = vec![("accept".to_string(), "application/json".to_string())];
    if body.is_some() {
        headers.push(("content-type".into(), "application/json".into()));
    }
    let req = HttpRequest {
        method: method.into(),
        url,
        headers,
        body: body.unwrap_or_default(),
    };
    let resp = t.send(&req, &bearer()).map_err(errors::from_egress)?;
    if (200..300).contains(&resp.status) {
        Ok(resp)
    } else {
        Err(errors::from_response(resp.status, &resp.body))
    }
}

fn json<T: for<'de> Deserialize<'de>>(resp: &HttpResponse, what: &str) -> Result<T, ProviderError> {
    serde_json::from_slice(&resp.body).map_err(|e| {
        local_error(
            ErrorKind::Transient,
            "bad-response",
            format!("the {what} response is not the expected JSON: {e}"),
        )
    })
}

/// Send a message; the wamid on success.
pub fn send_message(
    t: &impl Transport,
    connection: &ConnectionInfo,
    msg: &OutboundMessage,
) -> Result<String, ProviderError> {
    let body = send::body(msg)
        .map_err(|m| local_error(ErrorKind::InvalidRequest, "invalid-message", m))?;
    let url = url(
        connection,
        &format!("{}/messages", segment(&connection.channel_address)),
    );
    let resp = call(t, "POST", url, Some(body.to_string().into_bytes()))?;
    // Meta took the message but named no id: retrying could send it twice.
    send::message_id(&resp.body).ok_or_else(|| {
        local_error(
            ErrorKind::Permanent,
            "no-message-id",
            "the send response carried no message id",
        )
    })
}

/// Check that the token works for the connection's number, summarising the number's state; an
/// account no app is subscribed to gets a warning.
pub fn check_credentials(
    t: &impl Transport,
    connection: &ConnectionInfo,
) -> Result<CredentialHealth, ProviderError> {
    #[derive(Deserialize)]
    struct PhoneNumber {
        id: Option<String>,
        display_phone_number: Option<String>,
        verified_name: Option<String>,
        quality_rating: Option<String>,
    }
    let wanted = connection.channel_address.as_str();
    let url = url(
        connection,
        &format!(
            "{}?fields=id,display_phone_number,verified_name,quality_rating",
            segment(wanted)
        ),
    );
    let n: PhoneNumber = json(&call(t, "GET", url, None)?, "phone number")?;
    // The node Graph answered must be the number asked for: anything else means the request
    // reached another object, and the token proved nothing about this number.
    if n.id.as_deref() != Some(wanted) {
        return Err(local_error(
            ErrorKind::InvalidRequest,
            "number-mismatch",
            format!("Graph answered for another object than phone number {wanted}"),
        ));
    }
    number_in_account(t, connection, wanted)?;
    let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "unknown".into());
    let summary = format!(
        "{} ({}), quality rating {}",
        or_unknown(n.display_phone_number),
        or_unknown(n.verified_name),
        or_unknown(n.quality_rating)
    );
    // "Verified but no messages arrive": the app was never subscribed to the account. The host
    // shows the warning in the connection's status.
    let warnings = match webhooks_subscribed(t, connection) {
        Some(false) => vec![NOT_SUBSCRIBED.to_string()],
        _ => Vec::new(),
    };
    Ok(CredentialHealth {
        expires_at: None,
        scopes: Vec::new(),
        warnings,
        detail: summary,
    })
}

/// The warning for an account whose webhooks no app receives.
pub const NOT_SUBSCRIBED: &str = "no app is subscribed to the WhatsApp Business Account's \
     webhooks, so no messages arrive; subscribe the app (POST /{waba-id}/subscribed_apps) or \
     reconnect the number.";

/// The most pages of `/{waba-id}/phone_numbers` read (100 numbers each).
const MAX_NUMBER_PAGES: usize = 10;

/// The number is listed under the connection's WhatsApp Business Account
/// (`GET /{waba-id}/phone_numbers`, following `paging.cursors.after`).
fn number_in_account(
    t: &impl Transport,
    connection: &ConnectionInfo,
    number: &str,
) -> Result<(), ProviderError> {
    #[derive(Deserialize)]
    struct Numbers {
        #[serde(default)]
        data: Vec<Listed>,
        paging: Option<Paging>,
    }
    #[derive(Deserialize)]
    struct Listed {
        id: Option<String>,
    }
    #[derive(Deserialize)]
    struct Paging {
        cursors: Option<Cursors>,
        next: Option<String>,
    }
    #[derive(Deserialize)]
    struct Cursors {
        after: Option<String>,
    }
    let waba = connection
        .account_id
        .as_deref()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            local_error(
                ErrorKind::InvalidRequest,
                "no-account",
                "the WhatsApp Business Account id (waba_id) is required",
            )
        })?;
    let mut after: Option<String> = None;
    for _ in 0..MAX_NUMBER_PAGES {
        let mut path = format!("{}/phone_numbers?fields=id&limit=100", segment(waba));
        if let Some(a) = &after {
            path.push_str("&after=");
            path.push_str(&segment(a));
        }
        let page: Numbers = json(
            &call(t, "GET", url(connection, &path), None)?,
            "phone numbers",
        )?;
        if page.data.iter().any(|n| n.id.as_deref() == Some(number)) {
            return Ok(());
        }
        let more = page.paging.as_ref().is_some_and(|p| p.next.is_some());
        after = page.paging.and_then(|p| p.cursors).and_then(|c| c.after);
        if !more || after.is_none() {
            break;
        }
    }
    Err(local_error(
        ErrorKind::InvalidRequest,
        "number-not-in-account",
        format!("phone number {number} is not listed under WhatsApp Business Account {waba}"),
    ))
}

/// Whether any app is subscribed to the connection's account webhooks
/// (`GET /{waba-id}/subscribed_apps`): `None` when it cannot tell (no account id, an error, an
/// unexpected answer), so a failing check never fails the credential check.
pub fn webhooks_subscribed(t: &impl Transport, connection: &ConnectionInfo) -> Option<bool> {
    #[derive(Deserialize)]
    struct Apps {
        data: Option<Vec<serde_json::Value>>,
    }
    let account = connection.account_id.as_deref().filter(|a| !a.is_empty())?;
    let url = url(connection, &format!("{}/subscribed_apps", segment(account)));
    let resp = call(t, "GET", url, None).ok()?;
    let apps: Apps = serde_json::from_slice(&resp.body).ok()?;
    apps.data.map(|d| !d.is_empty())
}

/// Where the host downloads inbound media from: a fresh URL from `GET /{media-id}` (URLs live
/// five minutes), which the host then fetches itself with the access token, streaming the file
/// into its media store (files reach 100 MB); a media-ref with only a URL is fetched from it.
/// The URLs are on lookaside.fbsbx.com, an egress host that receives credentials.
///
/// The MIME type is Meta's own word about the file (Graph's answer, else the webhook's), and the
/// response's content type when Meta named none.
pub fn fetch_media(
    t: &impl Transport,
    connection: &ConnectionInfo,
    media: &MediaRef,
) -> Result<MediaSource, ProviderError> {
    #[derive(Deserialize)]
    struct MediaUrl {
        url: Option<String>,
        mime_type: Option<String>,
    }
    let (url, mime) = match (&media.provider_media_id, &media.url) {
        (Some(id), _) if !id.is_empty() => {
            let found: MediaUrl = json(
                &call(t, "GET", url(connection, &segment(id)), None)?,
                "media",
            )?;
            let url = found.url.filter(|u| !u.is_empty()).ok_or_else(|| {
                local_error(
                    ErrorKind::Permanent,
                    "no-media-url",
                    format!("media {id} has no download URL"),
                )
            })?;
            (url, found.mime_type.filter(|m| !m.is_empty()))
        }
        (_, Some(url)) if !url.is_empty() => (url.clone(), None),
        _ => {
            return Err(local_error(
                ErrorKind::InvalidRequest,
                "no-media",
                "the media has neither an id nor a URL",
            ));
        }
    };
    Ok(MediaSource::Fetch(MediaFetch {
        request: HttpRequest {
            method: "GET".into(),
            url,
            headers: Vec::new(),
            body: Vec::new(),
        },
        credentials: bearer(),
        mime_type: mime.or_else(|| media.mime_type.clone().filter(|m| !m.is_empty())),
    }))
}

/// A template category as Meta names it; unknown names count as marketing, the strictest.
pub fn category(name: &str) -> TemplateCategory {
    match name.to_ascii_uppercase().as_str() {
        "UTILITY" | "TRANSACTIONAL" => TemplateCategory::Utility,
        "AUTHENTICATION" | "OTP" => TemplateCategory::Authentication,
        _ => TemplateCategory::Marketing,
    }
}

/// List the account's templates, following the paging cursor for up to [`MAX_TEMPLATE_PAGES`].
pub fn list_templates(
    t: &impl Transport,
    connection: &ConnectionInfo,
) -> Result<Vec<TemplateInfo>, ProviderError> {
    #[derive(Deserialize)]
    struct Page {
        #[serde(default)]
        data: Vec<Template>,
        paging: Option<Paging>,
    }
    #[derive(Deserialize)]
    struct Template {
        id: Option<String>,
        name: Option<String>,
        language: Option<String>,
        category: Option<String>,
        status: Option<String>,
    }
    #[derive(Deserialize)]
    struct Paging {
        next: Option<String>,
        cursors: Option<Cursors>,
    }
    #[derive(Deserialize)]
    struct Cursors {
        after: Option<String>,
    }
    let account = connection
        .account_id
        .as_deref()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            local_error(
                ErrorKind::InvalidRequest,
                "no-account",
                "the connection has no WhatsApp Business Account id",
            )
        })?;
    let first = url(
        connection,
        &format!("{}/message_templates?{TEMPLATE_FIELDS}", segment(account)),
    );
    let mut next = Some(first.clone());
    let mut out = Vec::new();
    for _ in 0..MAX_TEMPLATE_PAGES {
        let Some(page_url) = next.take() else { break };
        let page: Page = json(&call(t, "GET", page_url, None)?, "template list")?;
        out.extend(page.data.into_iter().filter_map(|t| {
            Some(TemplateInfo {
                id: t.id.unwrap_or_default(),
                name: t.name.filter(|n| !n.is_empty())?,
                language: t.language.unwrap_or_default(),
                category: category(t.category.as_deref().unwrap_or("")),
                status: t.status.unwrap_or_default(),
                // Meta's template name is the one people chose.
                display_name: None,
            })
        }));
        // Meta gives `paging.next` only when there is a next page. Follow it through the
        // configured base URL (the `after` cursor), so a proxy or test base keeps being used.
        next = page.paging.and_then(|p| {
            let after = p.cursors.and_then(|c| c.after).filter(|a| !a.is_empty());
            match (p.next, after) {
                (Some(_), Some(after)) => Some(format!("{first}&after={}", segment(&after))),
                (Some(next), None) => Some(next),
                (None, _) => None,
            }
        });
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::RefCell;
    use std::collections::VecDeque;

    use super::*;
    use switchyard_sdk::types::{Content, Party};

    /// Answers requests from a script and records them.
    struct Script {
        answers: RefCell<VecDeque<Result<HttpResponse, EgressError>>>,
        seen: RefCell<Vec<(HttpRequest, Vec<Credential>)>>,
    }

    impl Script {
        fn new(answers: Vec<Result<HttpResponse, EgressError>>) -> Self {
            Script {
                answers: RefCell::new(answers.into()),
                seen: RefCell::new(Vec::new()),
            }
        }
        fn urls(&self) -> Vec<String> {
            self.seen
                .borrow()
                .iter()
                .map(|(r, _)| r.url.clone())
                .collect()
        }
    }

    impl Transport for Script {
        fn send(
            &self,
            req: &HttpRequest,
            credentials: &[Credential],
        ) -> Result<HttpResponse, EgressError> {
            self.seen
                .borrow_mut()
                .push((req.clone(), credentials.to_vec()));
            self.answers
                .borrow_mut()
                .pop_front()
                .unwrap_or(Err(EgressError::ConnectionFailed("script ran out".into())))
        }
    }

    /// Exactly the bearer access token.
    fn is_bearer(credentials: &[Credential]) -> bool {
        matches!(credentials, [Credential::Bearer(name)] if name == "access_token")
    }

    fn ok(status: u16, body: &str) -> Result<HttpResponse, EgressError> {
        Ok(HttpResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        })
    }

    /// A connection of the test number (base URL with a trailing slash).
    pub(crate) fn conn() -> ConnectionInfo {
        ConnectionInfo {
            connection_id: "con_1".into(),
            channel_address: "106540352242922".into(),
            account_id: Some("102290129340398".into()),
            api_base_url: "https://graph.facebook.com/".into(),
            settings: Vec::new(),
            callback_url: None,
        }
    }

    /// A text reply to the test contact.
    pub(crate) fn text() -> OutboundMessage {
        OutboundMessage {
            to: Party {
                phone: Some("16505551234".into()),
                user_id: None,
                name: None,
            },
            content: Content::Text("Yes, in blue.".into()),
            reply_to: None,
            idempotency_key: "snd_1".into(),
        }
    }

    #[test]
    fn urls_and_versions() {
        let mut c = conn();
        assert_eq!(url(&c, "x"), "https://graph.facebook.com/v26.0/x");
        c.settings = vec![("graph_version".into(), "v24.0".into())];
        assert_eq!(url(&c, "x"), "https://graph.facebook.com/v24.0/x");
        c.settings = vec![("graph_version".into(), " ".into())];
        assert_eq!(version(&c), "v26.0");
        // A version that would add a path segment or a fragment is never used.
        for bad in [
            "v26.0/111#",
            "v26.0?x",
            "../v1.0",
            "v26",
            "v26.0.1",
            "v1234.0",
        ] {
            c.settings = vec![("graph_version".into(), bad.into())];
            assert_eq!(url(&c, "x"), "https://graph.facebook.com/v26.0/x", "{bad}");
        }
        assert_eq!(segment("1003383421387256"), "1003383421387256");
        assert_eq!(segment("../me?x=1#y"), "..%2Fme%3Fx%3D1%23y");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn send_posts_json_with_the_bearer_token() {
        let s = Script::new(vec![ok(
            200,
            r#"{"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI3"}]}"#,
        )]);
        let id = send_message(&s, &conn(), &text()).expect("sent");
        assert_eq!(id, "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI3");
        let seen = s.seen.borrow();
        let (req, cred) = &seen[0];
        assert!(is_bearer(cred), "{cred:?}");
        assert_eq!(req.method, "POST");
        assert_eq!(
            req.url,
            "https://graph.facebook.com/v26.0/106540352242922/messages"
        );
        assert!(
            req.headers
                .contains(&("content-type".into(), "application/json".into()))
        );
        let body: serde_json::Value = serde_json::from_slice(&req.body).expect("json");
        assert_eq!(body["to"], "16505551234");
        assert_eq!(body["text"]["body"], "Yes, in blue.");
    }

    #[test]
    fn send_failures() {
        let s = Script::new(vec![ok(
            400,
            r#"{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},"fbtrace_id":"A1b2"}}"#,
        )]);
        let e = send_message(&s, &conn(), &text()).expect_err("window");
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::WindowClosed, "131047")
        );

        let s = Script::new(vec![Err(EgressError::Timeout)]);
        let e = send_message(&s, &conn(), &text()).expect_err("timeout");
        assert_eq!(e.kind, ErrorKind::Transient);

        let s = Script::new(vec![ok(503, "upstream unavailable")]);
        assert_eq!(
            send_message(&s, &conn(), &text()).expect_err("5xx").kind,
            ErrorKind::Transient
        );

        let s = Script::new(vec![ok(200, r#"{"messaging_product":"whatsapp"}"#)]);
        let e = send_message(&s, &conn(), &text()).expect_err("no id");
        assert_eq!(e.code, "no-message-id");

        let s = Script::new(Vec::new());
        let mut nobody = text();
        nobody.to.phone = None;
        let e = send_message(&s, &conn(), &nobody).expect_err("no recipient");
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
        assert!(s.seen.borrow().is_empty(), "nothing was sent");
    }

    const NUMBER: &str = r#"{"display_phone_number":"+1 555-078-3881","verified_name":"Lucky Shrub","quality_rating":"GREEN","id":"106540352242922"}"#;
    const LISTED: &str = r#"{"data":[{"id":"999"},{"id":"106540352242922"}],"paging":{"cursors":{"before":"QVFIUk","after":"QVFIUl"}}}"#;

    #[test]
    fn credential_check_summarises_the_number() {
        let s = Script::new(vec![ok(200, NUMBER), ok(200, LISTED)]);
        let h = check_credentials(&s, &conn()).expect("healthy");
        assert_eq!(
            h.detail,
            "+1 555-078-3881 (Lucky Shrub), quality rating GREEN"
        );
        assert_eq!(h.expires_at, None);
        assert!(h.warnings.is_empty(), "{:?}", h.warnings);
        assert_eq!(
            s.urls(),
            [
                "https://graph.facebook.com/v26.0/106540352242922?fields=id,display_phone_number,verified_name,quality_rating",
                "https://graph.facebook.com/v26.0/102290129340398/phone_numbers?fields=id&limit=100",
                // The subscription check failed (the script ran out): no warning.
                "https://graph.facebook.com/v26.0/102290129340398/subscribed_apps",
            ]
        );

        // No app subscribed to the account: a warning the host shows in the status, one
        // sentence without the old `warning:` prefix; the detail stays the plain summary.
        let s = Script::new(vec![
            ok(200, NUMBER),
            ok(200, LISTED),
            ok(200, r#"{"data":[]}"#),
        ]);
        let h = check_credentials(&s, &conn()).expect("healthy");
        assert_eq!(
            h.warnings,
            [
                "no app is subscribed to the WhatsApp Business Account's webhooks, so no messages \
              arrive; subscribe the app (POST /{waba-id}/subscribed_apps) or reconnect the number."
            ]
        );
        assert_eq!(
            h.detail,
            "+1 555-078-3881 (Lucky Shrub), quality rating GREEN"
        );
        assert!(h.scopes.is_empty());
        let s = Script::new(vec![
            ok(200, NUMBER),
            ok(200, LISTED),
            ok(
                200,
                r#"{"data":[{"whatsapp_business_api_data":{"id":"67084","link":"https://example.test/app","name":"Switchyard"}}]}"#,
            ),
        ]);
        let h = check_credentials(&s, &conn()).expect("healthy");
        assert!(h.warnings.is_empty(), "{:?}", h.warnings);
        assert!(!h.detail.contains("warning"), "{}", h.detail);
        // An answer without `data`: it cannot tell, so no warning.
        let s = Script::new(vec![ok(200, NUMBER), ok(200, LISTED), ok(200, "{}")]);
        assert!(
            check_credentials(&s, &conn())
                .expect("healthy")
                .warnings
                .is_empty()
        );

        let s = Script::new(vec![ok(
            401,
            r#"{"error":{"message":"Error validating access token: Session has expired.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"x"}}"#,
        )]);
        let e = check_credentials(&s, &conn()).expect_err("expired");
        assert_eq!((e.kind, e.code.as_str()), (ErrorKind::AuthExpired, "190"));

        let s = Script::new(vec![ok(200, "not json")]);
        assert_eq!(
            check_credentials(&s, &conn()).expect_err("bad").code,
            "bad-response"
        );
    }

    #[test]
    fn the_credential_check_proves_the_number_itself() {
        // Graph answered for another node (a version setting that redirected the path once did
        // this): the token proved nothing about the number asked for.
        let other = NUMBER.replace("106540352242922", "555000111");
        let s = Script::new(vec![ok(200, &other)]);
        let e = check_credentials(&s, &conn()).expect_err("other node");
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::InvalidRequest, "number-mismatch")
        );
        let no_id = r#"{"display_phone_number":"+1 555-078-3881"}"#;
        let s = Script::new(vec![ok(200, no_id)]);
        assert_eq!(
            check_credentials(&s, &conn()).expect_err("no id").code,
            "number-mismatch"
        );

        // The number exists but is not under the given WABA, over two pages.
        let page1 = r#"{"data":[{"id":"1"}],"paging":{"cursors":{"before":"b","after":"c1"},"next":"https://graph.facebook.com/v26.0/102290129340398/phone_numbers?after=c1"}}"#;
        let page2 = r#"{"data":[{"id":"2"}],"paging":{"cursors":{"before":"c1","after":"c2"}}}"#;
        let s = Script::new(vec![ok(200, NUMBER), ok(200, page1), ok(200, page2)]);
        let e = check_credentials(&s, &conn()).expect_err("not listed");
        assert_eq!(e.code, "number-not-in-account");
        assert_eq!(
            s.urls()[2],
            "https://graph.facebook.com/v26.0/102290129340398/phone_numbers?fields=id&limit=100&after=c1"
        );

        // No WABA given: nothing to prove the number against.
        let mut c = conn();
        c.account_id = None;
        let s = Script::new(vec![ok(200, NUMBER)]);
        assert_eq!(
            check_credentials(&s, &c).expect_err("no waba").code,
            "no-account"
        );
    }

    /// The download the host is asked to make.
    fn fetch(source: MediaSource) -> MediaFetch {
        match source {
            MediaSource::Fetch(f) => f,
            MediaSource::Content(_) => panic!("expected a fetch for the host"),
        }
    }

    #[test]
    fn media_is_resolved_then_left_to_the_host() {
        let s = Script::new(vec![ok(
            200,
            r#"{"messaging_product":"whatsapp","url":"https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1003383421387256&ext=1749416801&hash=ARlq","mime_type":"image/jpeg","sha256":"81d3bd8a8db4868c9520ed47186e8b7c5789e61ff79f7f834be6950b808a90d3","file_size":"303833","id":"1003383421387256"}"#,
        )]);
        let m = MediaRef {
            provider_media_id: Some("1003383421387256".into()),
            url: Some("https://lookaside.fbsbx.com/stale".into()),
            mime_type: Some("image/png".into()),
            sha256: None,
            caption: None,
            filename: None,
        };
        let f = fetch(fetch_media(&s, &conn(), &m).expect("media"));
        // Only the lookup went out; the host downloads the fresh URL (not the stale one) itself,
        // with the bearer token, and Graph's MIME type wins over the webhook's.
        assert_eq!(
            s.urls(),
            ["https://graph.facebook.com/v26.0/1003383421387256"]
        );
        assert!(is_bearer(&s.seen.borrow()[0].1));
        assert_eq!(f.request.method, "GET");
        assert_eq!(
            f.request.url,
            "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1003383421387256&ext=1749416801&hash=ARlq"
        );
        assert!(f.request.headers.is_empty() && f.request.body.is_empty());
        assert!(is_bearer(&f.credentials), "{:?}", f.credentials);
        assert_eq!(f.mime_type.as_deref(), Some("image/jpeg"));

        // Graph names no type: the webhook's, else none (the host takes the response's).
        let no_type = r#"{"url":"https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=7","id":"7"}"#;
        let f =
            fetch(fetch_media(&Script::new(vec![ok(200, no_type)]), &conn(), &m).expect("media"));
        assert_eq!(f.mime_type.as_deref(), Some("image/png"));
        let untyped = MediaRef {
            mime_type: None,
            ..m.clone()
        };
        let f = fetch(
            fetch_media(&Script::new(vec![ok(200, no_type)]), &conn(), &untyped).expect("media"),
        );
        assert_eq!(f.mime_type, None);

        // Only a URL: the host fetches it directly, nothing goes out from here.
        let s = Script::new(Vec::new());
        let m = MediaRef {
            provider_media_id: None,
            url: Some("https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=9".into()),
            mime_type: None,
            sha256: None,
            caption: None,
            filename: None,
        };
        let f = fetch(fetch_media(&s, &conn(), &m).expect("media"));
        assert!(s.seen.borrow().is_empty());
        assert_eq!(
            f.request.url,
            "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=9"
        );
        assert!(is_bearer(&f.credentials));
        assert_eq!(f.mime_type, None);

        // Expired media id.
        let s = Script::new(vec![ok(
            400,
            r#"{"error":{"message":"Unsupported get request.","type":"GraphMethodException","code":100,"error_subcode":33}}"#,
        )]);
        let m = MediaRef {
            provider_media_id: Some("1".into()),
            url: None,
            mime_type: None,
            sha256: None,
            caption: None,
            filename: None,
        };
        assert_eq!(fetch_media(&s, &conn(), &m).expect_err("gone").code, "100");
        let s = Script::new(vec![ok(200, r#"{"id":"1"}"#)]);
        assert_eq!(
            fetch_media(&s, &conn(), &m).expect_err("no url").code,
            "no-media-url"
        );
        let empty = MediaRef {
            provider_media_id: None,
            ..m
        };
        assert_eq!(
            fetch_media(&Script::new(Vec::new()), &conn(), &empty)
                .expect_err("nothing")
                .kind,
            ErrorKind::InvalidRequest
        );
    }

    /// The host downloads Meta's media URLs only on hosts granted to this plugin, and adds the
    /// token only on its `credentials` hosts: lookaside.fbsbx.com must be both.
    #[test]
    fn the_manifest_lets_the_host_download_media_with_the_token() {
        let manifest = include_str!("../Cargo.toml");
        let list = |key: &str| {
            manifest
                .lines()
                .find(|l| l.starts_with(&format!("{key} = [")))
                .unwrap_or_else(|| panic!("no {key} list"))
                .to_string()
        };
        for key in ["egress", "credentials"] {
            let hosts = list(key);
            for host in ["\"graph.facebook.com\"", "\"lookaside.fbsbx.com\""] {
                assert!(hosts.contains(host), "{key}: {hosts}");
            }
        }
        assert!(manifest.contains("interface = \"switchyard:plugin@0.3.0\""));
        assert!(manifest.contains("{ name = \"access_token\", required = true }"));
    }

    #[test]
    fn templates_are_paged_through_the_base_url() {
        let s = Script::new(vec![
            ok(
                200,
                r#"{"data":[{"name":"order_update","language":"en_US","status":"APPROVED","category":"UTILITY","id":"594425479261596"},{"name":"summer_sale","language":"pt_PT","status":"PAUSED","category":"MARKETING","id":"594425479261597"}],"paging":{"cursors":{"before":"QVFIUmx","after":"QVFIUjRm+/="},"next":"https://graph.facebook.com/v26.0/102290129340398/message_templates?fields=id,name,language,category,status&limit=100&after=QVFIUjRm%2B%2F%3D"}}"#,
            ),
            ok(
                200,
                r#"{"data":[{"name":"login_code","language":"en_US","status":"APPROVED","category":"AUTHENTICATION","id":"594425479261598"},{"language":"en_US"},{"name":"odd","category":"NEW_KIND","id":"5"}],"paging":{"cursors":{"before":"QVFIUjRm","after":"QVFIUkx"}}}"#,
            ),
        ]);
        let mut c = conn();
        c.api_base_url = "https://graph.example:8443".into();
        let list = list_templates(&s, &c).expect("templates");
        let names: Vec<&str> = list.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["order_update", "summer_sale", "login_code", "odd"]);
        assert_eq!(list[0].category, TemplateCategory::Utility);
        assert_eq!(list[1].category, TemplateCategory::Marketing);
        assert_eq!(list[1].status, "PAUSED");
        assert_eq!(list[2].category, TemplateCategory::Authentication);
        assert_eq!(list[3].category, TemplateCategory::Marketing);
        assert_eq!(
            s.urls(),
            [
                "https://graph.example:8443/v26.0/102290129340398/message_templates?fields=id,name,language,category,status&limit=100",
                "https://graph.example:8443/v26.0/102290129340398/message_templates?fields=id,name,language,category,status&limit=100&after=QVFIUjRm%2B%2F%3D",
            ]
        );
    }

    #[test]
    fn template_paging_is_capped() {
        let page = r#"{"data":[{"name":"t","language":"en","status":"APPROVED","category":"UTILITY","id":"1"}],"paging":{"cursors":{"after":"A"},"next":"https://graph.facebook.com/next"}}"#;
        let s = Script::new((0..50).map(|_| ok(200, page)).collect());
        let list = list_templates(&s, &conn()).expect("templates");
        assert_eq!(list.len(), MAX_TEMPLATE_PAGES);
        assert_eq!(s.seen.borrow().len(), MAX_TEMPLATE_PAGES);

        let mut c = conn();
        c.account_id = None;
        assert_eq!(
            list_templates(&Script::new(Vec::new()), &c)
                .expect_err("no waba")
                .kind,
            ErrorKind::InvalidRequest
        );
    }
}
