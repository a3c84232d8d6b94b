//! Telegram's answers → results, and its errors → the host's error kinds, in one place.
//!
//! Every Bot API answer is a JSON object: `{"ok":true,"result":…}` on success, else
//! `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`,
//! with `"parameters":{"retry_after":N}` when flood control asks the bot to wait
//! (<https://core.telegram.org/bots/api#making-requests>). The HTTP status equals `error_code`.
//!
//! A request the host could not deliver never reaches Telegram: `Request::send` classifies it
//! with [`switchyard_sdk::errors::from_egress`] (a timeout or a failed connection is transient,
//! a missing bot token means the connection needs new credentials, a refused URL is a wrong
//! request; codes `egress-…`).

use serde::Deserialize;
use serde_json::Value;
use switchyard_sdk::errors::provider_error;
use switchyard_sdk::types::{ErrorKind, ProviderError};

/// Telegram's `ResponseParameters`.
#[derive(Deserialize, Default)]
struct Parameters {
    retry_after: Option<i64>,
}

/// A Bot API answer.
#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    result: Value,
    error_code: Option<i64>,
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

/// The kind of a Telegram error code (the HTTP status) with its description.
pub fn kind_of(code: i64, description: &str) -> ErrorKind {
    let lower = description.to_ascii_lowercase();
    match code {
        // Unauthorized: the token was revoked or is wrong. Telegram answers 404 Not Found when
        // the token path itself is malformed or unknown.
        401 | 404 => ErrorKind::AuthExpired,
        // Forbidden: bot was blocked by the user / user is deactivated / bot can't initiate
        // conversation with a user.
        403 => ErrorKind::InvalidRecipient,
        400 if lower.contains("chat not found") || lower.contains("user not found") => {
            ErrorKind::InvalidRecipient
        }
        400 => ErrorKind::InvalidRequest,
        429 => ErrorKind::RateLimited,
        500..=599 => ErrorKind::Transient,
        _ => ErrorKind::Permanent,
    }
}

/// The error an answer with `error_code` (or, without one, the HTTP status) means.
fn failure(status: u16, answer: Option<Answer>) -> ProviderError {
    let (code, description, retry_after) = match answer {
        Some(a) => (
            a.error_code.unwrap_or(i64::from(status)),
            a.description.unwrap_or_default(),
            a.parameters.and_then(|p| p.retry_after),
        ),
        None => (i64::from(status), String::new(), None),
    };
    let message = if description.trim().is_empty() {
        format!("Telegram answered HTTP {status}")
    } else {
        description
    };
    let mut e = provider_error(kind_of(code, &message), code.to_string(), message);
    e.retry_after = retry_after.map(|s| u32::try_from(s.max(0)).unwrap_or(u32::MAX));
    e
}

/// The `result` of a successful answer, or the error the answer means. A 2xx answer that is
/// not `ok:true` JSON is transient (a proxy's page, a truncated body).
pub fn result_of(status: u16, body: &[u8]) -> Result<Value, ProviderError> {
    let answer = serde_json::from_slice::<Answer>(body).ok();
    let success = (200..300).contains(&status);
    match answer {
        Some(a) if a.ok && success => Ok(a.result),
        Some(a) if !a.ok && (a.error_code.is_some() || !success) => Err(failure(status, Some(a))),
        _ if !success => Err(failure(status, None)),
        _ => Err(provider_error(
            ErrorKind::Transient,
            "bad_response",
            format!("Telegram answered HTTP {status} without an ok:true JSON body"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> ProviderError {
        result_of(status, body.as_bytes()).expect_err("an error")
    }

    #[test]
    fn success_answers() {
        let v = result_of(200, br#"{"ok":true,"result":{"message_id":7}}"#).expect("ok");
        assert_eq!(v["message_id"], 7);
        assert_eq!(
            result_of(
                200,
                br#"{"ok":true,"result":true,"description":"Webhook was set"}"#
            )
            .expect("ok"),
            Value::Bool(true)
        );
        for body in [
            "<html>bad gateway</html>",
            "",
            r#"{"ok":false}"#,
            r#"{"result":1}"#,
        ] {
            let e = err(200, body);
            assert_eq!(
                (e.kind, e.code.as_str()),
                (ErrorKind::Transient, "bad_response"),
                "{body}"
            );
        }
    }

    #[test]
    fn documented_errors() {
        for (status, body, kind) in [
            (
                401,
                r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
                ErrorKind::AuthExpired,
            ),
            (
                404,
                r#"{"ok":false,"error_code":404,"description":"Not Found"}"#,
                ErrorKind::AuthExpired,
            ),
            (
                403,
                r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
                ErrorKind::InvalidRecipient,
            ),
            (
                403,
                r#"{"ok":false,"error_code":403,"description":"Forbidden: user is deactivated"}"#,
                ErrorKind::InvalidRecipient,
            ),
            (
                403,
                r#"{"ok":false,"error_code":403,"description":"Forbidden: bot can't initiate conversation with a user"}"#,
                ErrorKind::InvalidRecipient,
            ),
            (
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#,
                ErrorKind::InvalidRecipient,
            ),
            (
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: user not found"}"#,
                ErrorKind::InvalidRecipient,
            ),
            (
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: message text is empty"}"#,
                ErrorKind::InvalidRequest,
            ),
            (
                400,
                r#"{"ok":false,"error_code":400,"description":"Bad Request: wrong file identifier/HTTP URL specified"}"#,
                ErrorKind::InvalidRequest,
            ),
            (
                409,
                r#"{"ok":false,"error_code":409,"description":"Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"}"#,
                ErrorKind::Permanent,
            ),
            (
                500,
                r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#,
                ErrorKind::Transient,
            ),
            (
                502,
                "<html><body>502 Bad Gateway</body></html>",
                ErrorKind::Transient,
            ),
        ] {
            let e = err(status, body);
            assert_eq!(e.kind, kind, "{body}");
            assert_eq!(e.code, status.to_string(), "{body}");
            assert_eq!(e.retry_after, None);
        }
        let e = err(
            403,
            r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#,
        );
        assert_eq!(e.message, "Forbidden: bot was blocked by the user");
        let e = err(502, "");
        assert_eq!(e.message, "Telegram answered HTTP 502");
    }

    #[test]
    fn flood_control_carries_retry_after() {
        let e = err(
            429,
            r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 35","parameters":{"retry_after":35}}"#,
        );
        assert_eq!(
            (e.kind, e.code.as_str(), e.retry_after),
            (ErrorKind::RateLimited, "429", Some(35))
        );
        assert_eq!(e.message, "Too Many Requests: retry after 35");
        // Without parameters, still rate-limited, no wait given.
        let e = err(429, "");
        assert_eq!((e.kind, e.retry_after), (ErrorKind::RateLimited, None));
    }

    /// What the SDK makes of the host's refusals is what this connector reports for them.
    #[test]
    fn egress_failures() {
        use switchyard_sdk::errors::from_egress;
        use switchyard_sdk::types::EgressError;

        for (e, kind, code) in [
            (EgressError::Timeout, ErrorKind::Transient, "egress-timeout"),
            (
                EgressError::ConnectionFailed("dns".into()),
                ErrorKind::Transient,
                "egress-connection-failed",
            ),
            (
                EgressError::HostNotAllowed("evil.test".into()),
                ErrorKind::Permanent,
                "egress-host-not-allowed",
            ),
            (
                EgressError::CredentialNotAllowed("evil.test".into()),
                ErrorKind::InvalidRequest,
                "egress-credential-not-allowed",
            ),
            (
                EgressError::CredentialMissing("bot_token".into()),
                ErrorKind::AuthExpired,
                "egress-credential-missing",
            ),
            (
                EgressError::InvalidUrl("not https".into()),
                ErrorKind::InvalidRequest,
                "egress-invalid-url",
            ),
            (
                EgressError::ResponseTooLarge,
                ErrorKind::Permanent,
                "egress-response-too-large",
            ),
        ] {
            let p = from_egress(e);
            assert_eq!((p.kind, p.code.as_str()), (kind, code));
        }
        assert!(
            from_egress(EgressError::CredentialMissing("bot_token".into()))
                .message
                .contains("bot_token")
        );
    }
}
