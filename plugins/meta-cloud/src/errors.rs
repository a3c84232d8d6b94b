//! Meta error codes → the host's error kinds: one mapping for send results and status webhooks.
//!
//! Codes: <https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes>.

use serde::Deserialize;

use switchyard_sdk::types::{ErrorKind, ProviderError};

/// The kind of a Meta (Graph / Cloud API) error code.
pub fn kind_of(code: i64) -> ErrorKind {
    match code {
        // Re-engagement message: more than 24 hours since the customer last wrote.
        131047 => ErrorKind::WindowClosed,
        // Throughput, pair rate, account rate, app call limits, spam rate, Flow throttled.
        130429 | 131056 | 80007 | 4 | 131048 | 132069 => ErrorKind::RateLimited,
        // Expired or invalidated access token; AuthException.
        190 | 0 => ErrorKind::AuthExpired,
        // Permission denied; API permission range.
        10 | 200..=299 => ErrorKind::PermissionMissing,
        // Healthy-ecosystem limit (per-user marketing frequency cap).
        131049 => ErrorKind::MarketingLimited,
        // The user stopped marketing messages from this business.
        131050 => ErrorKind::MarketingStopped,
        // Payment issue, account locked, policy block: the account cannot send.
        131042 | 131031 | 368 => ErrorKind::AccountBlocked,
        // Recipient cannot be sender.
        131021 => ErrorKind::InvalidRecipient,
        // BSUID recipient not supported for this message, invalid parameter, missing or bad
        // parameter, and template parameter / existence / length / format problems.
        131062 | 100 | 131008 | 131009 => ErrorKind::InvalidRequest,
        132000 | 132001 | 132005 | 132007 | 132012 => ErrorKind::InvalidRequest,
        // Unknown API error, API service, something went wrong, service unavailable.
        1 | 2 | 131000 | 131016 => ErrorKind::Transient,
        // 131026 undeliverable, 132015/132016 template paused/disabled, and anything unknown:
        // retrying won't help.
        _ => ErrorKind::Permanent,
    }
}

/// A provider error from Meta's code (when given), message and optional `error_data.details`.
pub fn provider_error(code: Option<i64>, message: &str, details: Option<&str>) -> ProviderError {
    let message = match details {
        Some(d) if !d.is_empty() && d != message => {
            if message.is_empty() {
                d.to_string()
            } else {
                format!("{message}: {d}")
            }
        }
        _ => message.to_string(),
    };
    match code {
        Some(code) => ProviderError {
            kind: kind_of(code),
            code: code.to_string(),
            message,
            retry_after: None,
        },
        None => ProviderError {
            kind: ErrorKind::Permanent,
            code: "unknown".into(),
            message,
            retry_after: None,
        },
    }
}

/// Meta's error object, as in Graph API responses and webhook `errors[]` entries.
#[derive(Deserialize, Default)]
pub struct MetaError {
    /// The numeric code.
    #[serde(default, deserialize_with = "lenient_code")]
    pub code: Option<i64>,
    /// Webhook errors: the code's title.
    #[serde(default)]
    pub title: Option<String>,
    /// The message (Graph responses prefix it with `(#code)`).
    #[serde(default)]
    pub message: Option<String>,
    /// Extra data; `details` says what went wrong.
    #[serde(default)]
    pub error_data: Option<ErrorData>,
}

/// `error_data` of a Meta error.
#[derive(Deserialize, Default)]
pub struct ErrorData {
    /// A description of the error.
    #[serde(default)]
    pub details: Option<String>,
}

impl MetaError {
    /// The classified error, keeping Meta's code, message (or title) and details.
    pub fn into_provider_error(self) -> ProviderError {
        let message = self.message.or(self.title).unwrap_or_default();
        provider_error(
            self.code,
            &message,
            self.error_data.as_ref().and_then(|d| d.details.as_deref()),
        )
    }
}

/// Accept a code given as a number or as a numeric string; anything else is no code.
fn lenient_code<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// The kind for an HTTP status when the body carried no Meta error code.
fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        401 => ErrorKind::AuthExpired,
        403 => ErrorKind::PermissionMissing,
        408 | 500..=599 => ErrorKind::Transient,
        429 => ErrorKind::RateLimited,
        _ => ErrorKind::Permanent,
    }
}

/// An error for a non-2xx Graph response, from its JSON `error` object when there is one.
///
/// Any 5xx is transient whatever the code says; Meta's code and message are kept. Meta names no
/// wait (no `Retry-After`; its rate limits are per hour or per pair), so `retry-after` is none.
pub fn from_response(status: u16, body: &[u8]) -> ProviderError {
    #[derive(Deserialize)]
    struct Envelope {
        error: Option<MetaError>,
    }
    let parsed = serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.error);
    let mut err = match parsed {
        Some(e) if e.code.is_some() => e.into_provider_error(),
        Some(e) => ProviderError {
            kind: kind_of_status(status),
            code: format!("http-{status}"),
            message: e.message.unwrap_or_default(),
            retry_after: None,
        },
        None => ProviderError {
            kind: kind_of_status(status),
            code: format!("http-{status}"),
            message: snippet(body),
            retry_after: None,
        },
    };
    if status >= 500 {
        err.kind = ErrorKind::Transient;
    }
    err
}

/// The start of a body, as text, for an error message.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body.get(..200).unwrap_or(body)).into_owned();
    if text.trim().is_empty() {
        "empty response".into()
    } else {
        text
    }
}

/// An error for a request the host's egress did not deliver: the SDK's classification.
pub use switchyard_sdk::errors::from_egress;

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_sdk::types::EgressError;

    #[test]
    fn documented_codes_map_to_kinds() {
        use ErrorKind::*;
        let cases = [
            (131047, WindowClosed),
            (130429, RateLimited),
            (131056, RateLimited),
            (80007, RateLimited),
            (4, RateLimited),
            (131048, RateLimited),
            (132069, RateLimited),
            (190, AuthExpired),
            (0, AuthExpired),
            (10, PermissionMissing),
            (200, PermissionMissing),
            (299, PermissionMissing),
            (131049, MarketingLimited),
            (131050, MarketingStopped),
            (131026, Permanent),
            (131021, InvalidRecipient),
            (131062, InvalidRequest),
            (100, InvalidRequest),
            (131008, InvalidRequest),
            (131009, InvalidRequest),
            (132000, InvalidRequest),
            (132001, InvalidRequest),
            (132005, InvalidRequest),
            (132007, InvalidRequest),
            (132012, InvalidRequest),
            (132015, Permanent),
            (132016, Permanent),
            (131042, AccountBlocked),
            (131031, AccountBlocked),
            (368, AccountBlocked),
            (1, Transient),
            (2, Transient),
            (131000, Transient),
            (131016, Transient),
            (300, Permanent),
            (999999, Permanent),
            (-1, Permanent),
        ];
        for (code, kind) in cases {
            assert_eq!(kind_of(code), kind, "code {code}");
        }
    }

    #[test]
    fn graph_error_bodies_keep_code_message_and_details() {
        let body = br#"{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},"fbtrace_id":"AbCdEfGhIjK"}}"#;
        let e = from_response(400, body);
        assert_eq!(e.kind, ErrorKind::WindowClosed);
        assert_eq!(e.code, "131047");
        assert!(e.message.starts_with("(#131047) Re-engagement message: "));
        assert!(e.message.contains("24 hours"));

        let expired = br#"{"error":{"message":"Error validating access token: Session has expired on Friday, 20-Jun-25 10:00:00 PDT.","type":"OAuthException","code":190,"error_subcode":463,"fbtrace_id":"A1"}}"#;
        let e = from_response(401, expired);
        assert_eq!((e.kind, e.code.as_str()), (ErrorKind::AuthExpired, "190"));
    }

    #[test]
    fn server_errors_are_transient_and_bodies_without_codes_use_the_status() {
        let e = from_response(
            500,
            br#"{"error":{"message":"Invalid parameter","code":100}}"#,
        );
        assert_eq!((e.kind, e.code.as_str()), (ErrorKind::Transient, "100"));
        let e = from_response(502, b"<html>bad gateway</html>");
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::Transient, "http-502")
        );
        // Meta names no wait, not even on a 429.
        let e = from_response(429, b"");
        assert_eq!((e.kind, e.retry_after), (ErrorKind::RateLimited, None));
        assert_eq!(from_response(401, b"").kind, ErrorKind::AuthExpired);
        assert_eq!(from_response(404, b"").kind, ErrorKind::Permanent);
        assert_eq!(from_response(404, b"").message, "empty response");
        let long = vec![b'x'; 10_000];
        assert_eq!(from_response(400, &long).message.len(), 200);
        // Not UTF-8, cut inside a character: still no panic.
        assert!(!from_response(400, &[0xe2, 0x82]).message.is_empty());
    }

    #[test]
    fn codes_given_as_strings_are_read() {
        let e = from_response(400, br#"{"error":{"message":"x","code":"131026"}}"#);
        assert_eq!(e.code, "131026");
        let e = from_response(400, br#"{"error":{"message":"x","code":{"odd":1}}}"#);
        assert_eq!(e.code, "http-400");
    }

    #[test]
    fn egress_failures_are_classified() {
        assert_eq!(from_egress(EgressError::Timeout).kind, ErrorKind::Transient);
        assert_eq!(
            from_egress(EgressError::ConnectionFailed("refused".into())).kind,
            ErrorKind::Transient
        );
        let e = from_egress(EgressError::CredentialMissing("access_token".into()));
        assert_eq!(e.kind, ErrorKind::AuthExpired);
        assert!(e.message.contains("access_token"), "{}", e.message);
        let e = from_egress(EgressError::CredentialNotAllowed("cdn.example".into()));
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
    }
}
