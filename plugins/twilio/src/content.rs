//! Twilio's Content API: the account's content templates with their WhatsApp approval status
//! (`GET /v1/ContentAndApprovals`), listed as the host's templates.
//!
//! A content is sent by its SID (`HX…`) as `ContentSid` ([`crate::api::send_fields`]), so the
//! SID is both the id and the name the host stores and sends by. Only WhatsApp's `approved`
//! becomes `APPROVED`, the one status the host sends. The call takes the same HTTP Basic auth as
//! the REST API (the Account SID and auth token), which the host adds.
//!
//! Reference: <https://www.twilio.com/docs/content/content-api-resources> (list, paging through
//! `meta.next_page_url`) and
//! <https://www.twilio.com/docs/content/content-types-overview#whatsapp-template-approval-statuses>.

use serde::Deserialize;

use crate::api::{self, Transport};
use switchyard_sdk::types::{
    ConnectionInfo, ErrorKind, ProviderError, TemplateCategory, TemplateInfo,
};

/// Twilio's production REST API base URL.
pub const REST_API: &str = "https://api.twilio.com";

/// Twilio's production Content API base URL.
pub const CONTENT_API: &str = "https://content.twilio.com";

/// Contents asked for per page: Twilio's recommended maximum (a page is capped at 1 MB, about
/// 500 contents).
pub const PAGE_SIZE: usize = 500;

/// Most pages read in one listing (10,000 contents; WhatsApp approves at most 6,000 templates
/// per account).
pub const MAX_PAGES: usize = 20;

/// The Content API's base URL for a connection whose REST API base URL is `api_base_url`.
///
/// Exactly Twilio's production REST API (`https://api.twilio.com`, a trailing `/` aside) means
/// the production Content API, `https://content.twilio.com`. Any other base is one the operator
/// configured (a sandbox, or a fake on 127.0.0.1 in tests) and serves the Content API's paths
/// too, so that one configured origin answers every Twilio call and receives the credentials.
pub fn content_base_url(api_base_url: &str) -> String {
    let base = api_base_url.trim_end_matches('/');
    if base == REST_API {
        CONTENT_API.to_string()
    } else {
        base.to_string()
    }
}

/// The status the host stores for a content whose WhatsApp approval status is `approval`
/// (`None`: the content was never submitted to WhatsApp).
///
/// Twilio's statuses are `unsubmitted`, `received` (Twilio has it, WhatsApp has not reviewed
/// it yet), `pending` (in WhatsApp's review), `approved`, `rejected`, `paused` and `disabled`.
/// Only `approved` becomes `APPROVED`, the one status the host sends; the others keep Twilio's
/// word in upper case, as Meta's statuses are written, and so does a status Twilio adds later.
pub fn status(approval: Option<&str>) -> String {
    let word = approval
        .map(str::trim)
        .unwrap_or_default()
        .to_ascii_lowercase();
    match word.as_str() {
        "approved" => "APPROVED".into(),
        "" | "unsubmitted" => "UNSUBMITTED".into(),
        "received" => "RECEIVED".into(),
        "pending" => "PENDING".into(),
        "rejected" => "REJECTED".into(),
        "paused" => "PAUSED".into(),
        "disabled" => "DISABLED".into(),
        // Not `approved` (matched above), so never sendable.
        other => other.to_ascii_uppercase(),
    }
}

/// A WhatsApp template category as Twilio's approval request names it (`UTILITY`, `MARKETING`,
/// `AUTHENTICATION`, or the older `TRANSACTIONAL` and `OTP`); an absent or unknown category
/// counts as marketing, the strictest, as for Meta's templates.
pub fn category(name: Option<&str>) -> TemplateCategory {
    match name
        .unwrap_or_default()
        .trim()
        .to_ascii_uppercase()
        .as_str()
    {
        "UTILITY" | "TRANSACTIONAL" => TemplateCategory::Utility,
        "AUTHENTICATION" | "OTP" => TemplateCategory::Authentication,
        _ => TemplateCategory::Marketing,
    }
}

/// `scheme://authority` of an absolute URL, lower-cased; `None` when `url` has no scheme or
/// authority, or carries user info.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = rest.get(..end)?;
    if scheme.is_empty() || authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    ))
}

/// One page of `GET /v1/ContentAndApprovals`.
#[derive(Deserialize)]
struct Page {
    contents: Option<Vec<Item>>,
    meta: Option<Meta>,
}

/// The page's paging links.
#[derive(Deserialize)]
struct Meta {
    next_page_url: Option<String>,
}

/// One content with its approval request.
#[derive(Deserialize)]
struct Item {
    sid: Option<String>,
    friendly_name: Option<String>,
    language: Option<String>,
    approval_requests: Option<Approval>,
}

/// A content's WhatsApp approval request.
#[derive(Deserialize)]
struct Approval {
    status: Option<String>,
    category: Option<String>,
    /// The same fields nested under `whatsapp`, as the single-content approval fetch
    /// (`/v1/Content/{sid}/ApprovalRequests`) writes them; read when present.
    whatsapp: Option<Box<Approval>>,
}

/// The template the host lists for `item`; `None` for a content without a SID (nothing could
/// send it).
///
/// A content never submitted to WhatsApp (no approval request) is listed as `UNSUBMITTED`, not
/// skipped: the host sends a template it never listed and lets the provider judge it
/// (`replies::template_sendable(None)`), so a skipped content would go out although WhatsApp
/// never approved it, and the console would not show it. Listed, it shows as not sendable.
fn template(item: Item) -> Option<TemplateInfo> {
    let sid = item
        .sid
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())?;
    let approval = item.approval_requests.map(|a| match a.whatsapp {
        Some(nested) => *nested,
        None => a,
    });
    let (state, kind) = match &approval {
        Some(a) => (a.status.as_deref(), a.category.as_deref()),
        None => (None, None),
    };
    Some(TemplateInfo {
        id: sid.clone(),
        name: sid,
        language: item.language.unwrap_or_default(),
        category: category(kind),
        status: status(state),
        // The SID is what a send names; people know the content by its friendly name.
        display_name: item
            .friendly_name
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty()),
    })
}

/// List the account's contents with their WhatsApp approval status, following
/// `meta.next_page_url` for up to [`MAX_PAGES`] pages.
///
/// A next page on another origin than the first is refused with an error (the credentials go
/// to the first origin only, and a partial list would drop the stored status of the rest).
pub fn list_templates(
    t: &impl Transport,
    connection: &ConnectionInfo,
) -> Result<Vec<TemplateInfo>, ProviderError> {
    let sid = api::account_sid(connection)?;
    let first = format!(
        "{}/v1/ContentAndApprovals?PageSize={PAGE_SIZE}",
        content_base_url(&connection.api_base_url)
    );
    let home = origin(&first);
    let mut next = Some(first);
    let mut out = Vec::new();
    for _ in 0..MAX_PAGES {
        let Some(url) = next.take() else { break };
        let resp = api::call(t, sid, "GET", url, None)?;
        let page: Page = serde_json::from_slice(&resp.body).map_err(|e| {
            api::local_error(
                ErrorKind::Transient,
                "bad-response",
                format!("the content list is not the expected JSON: {e}"),
            )
        })?;
        out.extend(
            page.contents
                .unwrap_or_default()
                .into_iter()
                .filter_map(template),
        );
        next = page
            .meta
            .and_then(|m| m.next_page_url)
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty());
        if let Some(url) = &next
            && (home.is_none() || origin(url) != home)
        {
            return Err(api::local_error(
                ErrorKind::Permanent,
                "next-page-elsewhere",
                format!("Twilio's next page of contents is on another origin: {url}"),
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::VecDeque;
    use switchyard_sdk::types::{Credential, EgressError, HttpRequest, HttpResponse};

    const SID: &str = "AC0123456789abcdef0123456789abcdef";
    const APPROVED: &str = "HXb5b62575e6e4ff6129ad7c8efe1f983e";

    /// Answers requests in order from a script and records them.
    struct Script {
        answers: RefCell<VecDeque<(u16, String)>>,
        seen: RefCell<Vec<(HttpRequest, Vec<Credential>)>>,
    }

    fn script(answers: &[(u16, String)]) -> Script {
        Script {
            answers: RefCell::new(answers.iter().cloned().collect()),
            seen: RefCell::default(),
        }
    }

    impl Script {
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
            let (status, body) = self
                .answers
                .borrow_mut()
                .pop_front()
                .expect("an answer for every request");
            Ok(HttpResponse {
                status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: body.into_bytes(),
            })
        }
    }

    fn conn(base: &str) -> ConnectionInfo {
        ConnectionInfo {
            connection_id: "con_1".into(),
            channel_address: "whatsapp:+14155550100".into(),
            account_id: Some(SID.into()),
            api_base_url: base.into(),
            settings: vec![("account_sid".into(), SID.into())],
            callback_url: None,
        }
    }

    /// A page in Twilio's documented shape.
    fn page(base: &str, contents: serde_json::Value, next: Option<&str>) -> String {
        serde_json::json!({
            "contents": contents,
            "meta": {
                "page": 0,
                "page_size": PAGE_SIZE,
                "first_page_url": format!("{base}/v1/ContentAndApprovals?PageSize={PAGE_SIZE}&Page=0"),
                "previous_page_url": null,
                "url": format!("{base}/v1/ContentAndApprovals?PageSize={PAGE_SIZE}&Page=0"),
                "next_page_url": next,
                "key": "contents"
            }
        })
        .to_string()
    }

    /// A content with an approval request (`None`: never submitted to WhatsApp).
    fn content(sid: &str, language: &str, approval: Option<(&str, &str)>) -> serde_json::Value {
        serde_json::json!({
            "sid": sid,
            "account_sid": SID,
            "friendly_name": format!("name of {sid}"),
            "language": language,
            "variables": {"1": "name"},
            "types": {"twilio/text": {"body": "Hi {{1}}"}},
            "approval_requests": approval.map(|(category, status)| serde_json::json!({
                "name": "order_update",
                "category": category,
                "content_type": "twilio/text",
                "status": status,
                "rejection_reason": "",
                "allow_category_change": true
            })),
            "date_created": "2024-05-01T10:00:00Z",
            "date_updated": "2024-05-02T10:00:00Z",
            "url": format!("{CONTENT_API}/v1/Content/{sid}")
        })
    }

    #[test]
    fn statuses_map_so_only_approved_is_sendable() {
        for (twilio, host) in [
            (Some("approved"), "APPROVED"),
            (Some("received"), "RECEIVED"),
            (Some("pending"), "PENDING"),
            (Some("rejected"), "REJECTED"),
            (Some("paused"), "PAUSED"),
            (Some("disabled"), "DISABLED"),
            (Some("unsubmitted"), "UNSUBMITTED"),
            (Some(""), "UNSUBMITTED"),
            (None, "UNSUBMITTED"),
            (Some("in_appeal"), "IN_APPEAL"),
        ] {
            assert_eq!(status(twilio), host, "{twilio:?}");
        }
        // Twilio's own word, however it is cased or spaced, is the only way to `APPROVED`.
        assert_eq!(status(Some(" Approved ")), "APPROVED");
        for other in [
            "pending",
            "received",
            "approval",
            "not approved",
            "approved_x",
        ] {
            assert_ne!(status(Some(other)), "APPROVED", "{other}");
        }
    }

    #[test]
    fn categories_map_like_metas() {
        for (name, want) in [
            (Some("UTILITY"), TemplateCategory::Utility),
            (Some("utility"), TemplateCategory::Utility),
            (Some("TRANSACTIONAL"), TemplateCategory::Utility),
            (Some("AUTHENTICATION"), TemplateCategory::Authentication),
            (Some("OTP"), TemplateCategory::Authentication),
            (Some("MARKETING"), TemplateCategory::Marketing),
            (Some("TRANSPORTATION_UPDATE"), TemplateCategory::Marketing),
            (None, TemplateCategory::Marketing),
        ] {
            assert_eq!(category(name), want, "{name:?}");
        }
    }

    #[test]
    fn the_content_api_is_content_twilio_com_only_for_twilios_own_rest_api() {
        assert_eq!(content_base_url("https://api.twilio.com"), CONTENT_API);
        assert_eq!(content_base_url("https://api.twilio.com/"), CONTENT_API);
        // A configured base serves the Content API's paths itself.
        for base in [
            "http://127.0.0.1:4010",
            "https://twilio-sandbox.example.test",
            "http://api.twilio.com",
            "https://api.twilio.com:8443",
            "https://api.twilio.com.example.test",
        ] {
            assert_eq!(content_base_url(base), base);
        }
        assert_eq!(
            content_base_url("http://127.0.0.1:4010/"),
            "http://127.0.0.1:4010"
        );
    }

    #[test]
    fn lists_every_page_with_the_sid_as_name_and_each_status() {
        let next = format!(
            "{CONTENT_API}/v1/ContentAndApprovals?PageSize={PAGE_SIZE}&Page=1&PageToken=DNHX0123-1678723520"
        );
        let t = script(&[
            (
                200,
                page(
                    CONTENT_API,
                    serde_json::json!([
                        content(APPROVED, "en", Some(("UTILITY", "approved"))),
                        content("HX00000000000000000000000000000002", "pt_BR", Some(("MARKETING", "pending"))),
                        content("HX00000000000000000000000000000003", "en", None),
                        // No SID: nothing could send it.
                        {"language": "en", "approval_requests": {"status": "approved"}},
                    ]),
                    Some(&next),
                ),
            ),
            (
                200,
                page(
                    CONTENT_API,
                    serde_json::json!([
                        content("HX00000000000000000000000000000004", "es", Some(("AUTHENTICATION", "rejected"))),
                        // The approval fetch's nesting under `whatsapp`.
                        {"sid": "HX00000000000000000000000000000005", "language": "en",
                         "approval_requests": {"whatsapp": {"type": "whatsapp", "name": "t5",
                             "category": "UTILITY", "status": "paused", "rejection_reason": ""}}},
                    ]),
                    None,
                ),
            ),
        ]);
        let listed = list_templates(&t, &conn("https://api.twilio.com")).expect("listed");
        let got: Vec<(&str, &str, &str, TemplateCategory, &str)> = listed
            .iter()
            .map(|t| {
                (
                    t.id.as_str(),
                    t.name.as_str(),
                    t.language.as_str(),
                    t.category,
                    t.status.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    APPROVED,
                    APPROVED,
                    "en",
                    TemplateCategory::Utility,
                    "APPROVED"
                ),
                (
                    "HX00000000000000000000000000000002",
                    "HX00000000000000000000000000000002",
                    "pt_BR",
                    TemplateCategory::Marketing,
                    "PENDING"
                ),
                (
                    "HX00000000000000000000000000000003",
                    "HX00000000000000000000000000000003",
                    "en",
                    TemplateCategory::Marketing,
                    "UNSUBMITTED"
                ),
                (
                    "HX00000000000000000000000000000004",
                    "HX00000000000000000000000000000004",
                    "es",
                    TemplateCategory::Authentication,
                    "REJECTED"
                ),
                (
                    "HX00000000000000000000000000000005",
                    "HX00000000000000000000000000000005",
                    "en",
                    TemplateCategory::Utility,
                    "PAUSED"
                ),
            ]
        );
        assert_eq!(
            t.urls(),
            [
                format!("{CONTENT_API}/v1/ContentAndApprovals?PageSize={PAGE_SIZE}"),
                next
            ]
        );
        for (req, credentials) in t.seen.borrow().iter() {
            assert_eq!(req.method, "GET");
            assert!(req.body.is_empty());
            assert_eq!(credentials, &api::basic(SID));
        }
    }

    #[test]
    fn a_configured_base_serves_the_content_api_and_its_pages() {
        let base = "http://127.0.0.1:4010";
        let next =
            format!("{base}/v1/ContentAndApprovals?PageSize={PAGE_SIZE}&Page=1&PageToken=T1");
        let t = script(&[
            (200, page(base, serde_json::json!([]), Some(&next))),
            (
                200,
                page(
                    base,
                    serde_json::json!([content(APPROVED, "en", Some(("UTILITY", "approved")))]),
                    None,
                ),
            ),
        ]);
        let listed = list_templates(&t, &conn(&format!("{base}/"))).expect("listed");
        assert_eq!(listed.len(), 1);
        assert_eq!(
            t.urls(),
            [
                format!("{base}/v1/ContentAndApprovals?PageSize={PAGE_SIZE}"),
                next
            ]
        );
    }

    #[test]
    fn a_next_page_on_another_origin_is_refused() {
        for elsewhere in [
            "https://evil.example.test/v1/ContentAndApprovals?Page=1",
            "http://content.twilio.com/v1/ContentAndApprovals?Page=1",
            "https://content.twilio.com:8443/v1/ContentAndApprovals?Page=1",
            "https://user@content.twilio.com/v1/ContentAndApprovals?Page=1",
            "/v1/ContentAndApprovals?Page=1",
        ] {
            let t = script(&[(
                200,
                page(
                    CONTENT_API,
                    serde_json::json!([content(APPROVED, "en", Some(("UTILITY", "approved")))]),
                    Some(elsewhere),
                ),
            )]);
            let e = list_templates(&t, &conn(REST_API)).expect_err(elsewhere);
            assert_eq!(
                (e.kind, e.code.as_str()),
                (ErrorKind::Permanent, "next-page-elsewhere"),
                "{elsewhere}"
            );
            assert_eq!(t.seen.borrow().len(), 1, "nothing sent to {elsewhere}");
        }
        // The same origin, however the host name is cased, is followed.
        let next = "https://CONTENT.twilio.com/v1/ContentAndApprovals?Page=1&PageToken=T";
        let t = script(&[
            (200, page(CONTENT_API, serde_json::json!([]), Some(next))),
            (200, page(CONTENT_API, serde_json::json!([]), None)),
        ]);
        assert!(
            list_templates(&t, &conn(REST_API))
                .expect("listed")
                .is_empty()
        );
        assert_eq!(t.urls()[1], next);
    }

    #[test]
    fn pages_stop_at_the_cap() {
        let next = format!(
            "{CONTENT_API}/v1/ContentAndApprovals?PageSize={PAGE_SIZE}&Page=1&PageToken=again"
        );
        let answers: Vec<(u16, String)> = (0..MAX_PAGES + 5)
            .map(|_| {
                (
                    200,
                    page(
                        CONTENT_API,
                        serde_json::json!([content(APPROVED, "en", Some(("UTILITY", "approved")))]),
                        Some(&next),
                    ),
                )
            })
            .collect();
        let t = script(&answers);
        let listed = list_templates(&t, &conn(REST_API)).expect("listed");
        assert_eq!(listed.len(), MAX_PAGES);
        assert_eq!(t.seen.borrow().len(), MAX_PAGES);
    }

    #[test]
    fn errors_are_twilios() {
        let t = script(&[(
            401,
            r#"{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}"#.into(),
        )]);
        let e = list_templates(&t, &conn(REST_API)).unwrap_err();
        assert_eq!(
            (e.kind, e.code.as_str(), e.message.as_str()),
            (ErrorKind::AuthExpired, "20003", "Authenticate")
        );
        let t = script(&[(200, "<html>".into())]);
        let e = list_templates(&t, &conn(REST_API)).unwrap_err();
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::Transient, "bad-response")
        );
        // Without a valid Account SID (the Basic user) nothing is sent.
        let mut bad = conn(REST_API);
        bad.account_id = Some("AC123".into());
        bad.settings.clear();
        let t = script(&[]);
        assert_eq!(
            list_templates(&t, &bad).unwrap_err().code,
            "invalid-account-sid"
        );
        assert!(t.seen.borrow().is_empty());
    }
}
