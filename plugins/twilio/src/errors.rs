//! Twilio error codes → the host's error kinds: one mapping for API answers and status callbacks.
//!
//! Codes: <https://www.twilio.com/docs/api/errors>. An API error answers with
//! `{"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}`.

use serde::Deserialize;

use switchyard_sdk::types::{ErrorKind, HttpResponse, ProviderError};

/// The kind of a Twilio error code.
pub fn kind_of(code: i64) -> ErrorKind {
    match code {
        // Authenticate: wrong Account SID or auth token (Twilio tokens do not expire, they are
        // rotated or the account is gone).
        20003 => ErrorKind::AuthExpired,
        // Account not active (suspended or closed).
        20005 => ErrorKind::AccountBlocked,
        // Invalid 'To' number; channel could not find the To address; the recipient cannot
        // receive this message (not on WhatsApp, or blocked).
        21211 | 63003 | 63024 => ErrorKind::InvalidRecipient,
        // Too many requests; WhatsApp rate limit (includes the 24-hour messaging-tier cap).
        20429 | 63018 => ErrorKind::RateLimited,
        // Outside the 24-hour customer-service window: only templates (ContentSid).
        63016 => ErrorKind::WindowClosed,
        // `From` is not a WhatsApp sender of this account: a settings problem.
        63007 => ErrorKind::InvalidRequest,
        // Invalid parameter; content problems (format, template, variables).
        21604 | 21602 | 21619 | 21620 | 21621 | 63005 | 63013 | 63021 | 63027 | 63028 => {
            ErrorKind::InvalidRequest
        }
        // Internal errors and channel generic errors: try again.
        20500 | 20503 | 63023 => ErrorKind::Transient,
        _ => ErrorKind::Permanent,
    }
}

/// A short description for a code Twilio sent without a message (status callbacks carry only
/// `ErrorCode`).
fn describe(code: i64) -> &'static str {
    match code {
        20003 => "Authenticate: the Account SID or auth token is wrong",
        20005 => "Account not active",
        21211 => "Invalid 'To' phone number",
        20429 => "Too many requests",
        63003 => "Channel could not find the To address",
        63007 => "Twilio could not find a channel with the From address",
        63016 => "Outside the 24-hour messaging window: use a template (ContentSid)",
        63018 => "Rate limit exceeded for the channel",
        63024 => "Invalid message recipient",
        _ => "Twilio reported an error",
    }
}

/// A provider error from Twilio's code (as text, as callbacks give it) and message.
pub fn provider_error(code: &str, message: &str) -> ProviderError {
    let number = code.trim().parse::<i64>().ok();
    let message = match (message.trim(), number) {
        ("", Some(n)) => describe(n).to_string(),
        ("", None) => "Twilio reported an error".to_string(),
        (m, _) => m.to_string(),
    };
    ProviderError {
        kind: number.map_or(ErrorKind::Permanent, kind_of),
        code: code.trim().to_string(),
        message,
        retry_after: None,
    }
}

/// Twilio's error body.
#[derive(Deserialize, Default)]
struct TwilioError {
    code: Option<i64>,
    message: Option<String>,
}

/// The kind for an HTTP status when the body carried no Twilio code.
fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        401 => ErrorKind::AuthExpired,
        403 => ErrorKind::PermissionMissing,
        408 | 500..=599 => ErrorKind::Transient,
        429 => ErrorKind::RateLimited,
        _ => ErrorKind::Permanent,
    }
}

/// The error a non-2xx API answer means.
pub fn from_response(status: u16, body: &[u8]) -> ProviderError {
    let e: TwilioError = serde_json::from_slice(body).unwrap_or_default();
    let message = e.message.unwrap_or_default();
    match e.code {
        Some(code) => {
            let mut err = provider_error(&code.to_string(), &message);
            // A 5xx with a code Twilio did not document as permanent: retry.
            if status >= 500 && err.kind == ErrorKind::Permanent {
                err.kind = ErrorKind::Transient;
            }
            err
        }
        None => ProviderError {
            kind: kind_of_status(status),
            code: format!("http-{status}"),
            message: if message.is_empty() {
                format!("Twilio answered HTTP {status}")
            } else {
                message
            },
            retry_after: None,
        },
    }
}

/// The error a non-2xx answer means, with the wait Twilio asks for: a 429 (or 503) carries
/// `Retry-After` in seconds.
pub fn from_http(resp: &HttpResponse) -> ProviderError {
    let mut err = from_response(resp.status, &resp.body);
    if matches!(resp.status, 429 | 503) {
        err.retry_after = retry_after(&resp.headers);
    }
    err
}

/// A `Retry-After` header's delay in seconds, when it is given as a number (the HTTP-date form
/// is not read); a wait beyond `u32` is capped.
pub fn retry_after(headers: &[(String, String)]) -> Option<u32> {
    let value = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))?
        .1
        .trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: only an overflow fails to parse.
    Some(value.parse::<u32>().unwrap_or(u32::MAX))
}

/// An error for a request the host's egress did not deliver: the SDK's classification.
pub use switchyard_sdk::errors::from_egress;

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::types::EgressError;

    #[test]
    fn codes_map_to_kinds() {
        for (code, kind) in [
            (20003, ErrorKind::AuthExpired),
            (21211, ErrorKind::InvalidRecipient),
            (63003, ErrorKind::InvalidRecipient),
            (63024, ErrorKind::InvalidRecipient),
            (20429, ErrorKind::RateLimited),
            (63018, ErrorKind::RateLimited),
            (63016, ErrorKind::WindowClosed),
            (63007, ErrorKind::InvalidRequest),
            // 21614 is an SMS landline check, not a WhatsApp recipient error (DECISIONS).
            (21614, ErrorKind::Permanent),
            (30008, ErrorKind::Permanent),
        ] {
            assert_eq!(kind_of(code), kind, "{code}");
        }
    }

    #[test]
    fn api_answers() {
        let e = from_response(
            401,
            br#"{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}"#,
        );
        assert_eq!(
            (e.kind, e.code.as_str(), e.message.as_str()),
            (ErrorKind::AuthExpired, "20003", "Authenticate")
        );
        let e = from_response(400, br#"{"code":63016,"message":"Failed to send freeform message because you are outside the allowed window.","status":400}"#);
        assert_eq!(e.kind, ErrorKind::WindowClosed);
        assert!(e.message.contains("outside the allowed window"));
        assert_eq!(from_response(503, b"<html>").kind, ErrorKind::Transient);
        assert_eq!(
            from_response(500, br#"{"code":12345,"message":"x"}"#).kind,
            ErrorKind::Transient
        );
        assert_eq!(from_response(429, b"").kind, ErrorKind::RateLimited);
        assert_eq!(from_response(401, b"").kind, ErrorKind::AuthExpired);
        assert_eq!(from_response(404, b"").code, "http-404");
        let e = provider_error("63016", "");
        assert!(e.message.contains("24-hour"));
        assert_eq!(provider_error("x", "").kind, ErrorKind::Permanent);
        assert_eq!(from_egress(EgressError::Timeout).kind, ErrorKind::Transient);
    }

    #[test]
    fn egress_failures_are_classified() {
        let e = from_egress(EgressError::CredentialMissing("auth_token".into()));
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::AuthExpired, "egress-credential-missing")
        );
        assert!(e.message.contains("auth_token"), "{}", e.message);
        let e = from_egress(EgressError::CredentialNotAllowed(
            "mms.twiliocdn.com".into(),
        ));
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::InvalidRequest, "egress-credential-not-allowed")
        );
        assert_eq!(
            from_egress(EgressError::InvalidUrl("ftp://x".into())).kind,
            ErrorKind::InvalidRequest
        );
        assert_eq!(
            from_egress(EgressError::HostNotAllowed("evil.example".into())).kind,
            ErrorKind::Permanent
        );
        assert!(from_egress(EgressError::Timeout).retry_after.is_none());
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_429_carries_twilios_retry_after() {
        let too_many = r#"{"code":20429,"message":"Too Many Requests","status":429}"#;
        let e = from_http(&answer(429, &[("retry-after", "30")], too_many));
        assert_eq!(
            (e.kind, e.code.as_str(), e.retry_after),
            (ErrorKind::RateLimited, "20429", Some(30))
        );
        // Without a code in the body, and with spaces around the value.
        let e = from_http(&answer(429, &[("retry-after", " 5 ")], ""));
        assert_eq!((e.kind, e.retry_after), (ErrorKind::RateLimited, Some(5)));
        // A 503 may ask for a wait too.
        let e = from_http(&answer(503, &[("retry-after", "120")], ""));
        assert_eq!((e.kind, e.retry_after), (ErrorKind::Transient, Some(120)));
        // Absent, an HTTP date, negative, fractional or empty: no wait.
        for headers in [
            &[][..],
            &[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")][..],
            &[("retry-after", "-1")][..],
            &[("retry-after", "1.5")][..],
            &[("retry-after", "")][..],
            &[("retry-after", "+3")][..],
        ] {
            let e = from_http(&answer(429, headers, too_many));
            assert_eq!(
                (e.kind, e.retry_after),
                (ErrorKind::RateLimited, None),
                "{headers:?}"
            );
        }
        // Beyond u32: capped.
        let e = from_http(&answer(429, &[("retry-after", "99999999999")], ""));
        assert_eq!(e.retry_after, Some(u32::MAX));
        // Other answers name no wait, even with the header.
        let e = from_http(&answer(
            400,
            &[("retry-after", "30")],
            r#"{"code":21211,"message":"Invalid 'To' Phone Number"}"#,
        ));
        assert_eq!((e.kind, e.retry_after), (ErrorKind::InvalidRecipient, None));
        assert_eq!(from_response(429, too_many.as_bytes()).retry_after, None);
    }
}
