//! Meta error codes → the host's error kinds; one mapping for send results and status webhooks.

use crate::bindings::switchyard::plugin::types::{ErrorKind, ProviderError};

/// The kind of a Meta (Graph / Cloud API) error code.
pub fn kind_of(code: i64) -> ErrorKind {
    match code {
        131047 => ErrorKind::WindowClosed,
        130429 | 131056 | 80007 | 4 | 131048 | 132069 => ErrorKind::RateLimited,
        190 | 0 => ErrorKind::AuthExpired,
        10 | 200..=299 => ErrorKind::PermissionMissing,
        131049 | 131050 => ErrorKind::MarketingLimited,
        131021 => ErrorKind::InvalidRecipient,
        131062 | 100 | 131008 | 131009 => ErrorKind::InvalidRequest,
        132000 | 132001 | 132005 | 132007 | 132012 => ErrorKind::InvalidRequest,
        1 | 2 | 131000 | 131016 => ErrorKind::Transient,
        // 131026 undeliverable, 132015/132016 template paused/disabled, 131042/131031/368 account
        // problems, and anything unknown: retrying does not help.
        _ => ErrorKind::Permanent,
    }
}

/// A provider error from Meta's code, message and optional details.
pub fn provider_error(code: i64, message: &str, details: Option<&str>) -> ProviderError {
    let message = match details {
        Some(d) if !d.is_empty() && d != message => format!("{message}: {d}"),
        _ => message.to_string(),
    };
    ProviderError {
        kind: kind_of(code),
        code: code.to_string(),
        message,
    }
}

/// An error for a non-2xx Graph response, from its JSON `error` object when there is one.
pub fn from_response(status: u16, body: &[u8]) -> ProviderError {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Option<GraphError>,
    }
    #[derive(serde::Deserialize)]
    struct GraphError {
        code: Option<i64>,
        message: Option<String>,
        error_data: Option<ErrorData>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorData {
        details: Option<String>,
    }
    let parsed = serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.error);
    match parsed {
        Some(GraphError {
            code: Some(code),
            message,
            error_data,
        }) if status < 500 || code != 0 => provider_error(
            code,
            message.as_deref().unwrap_or("Graph API error"),
            error_data.as_ref().and_then(|d| d.details.as_deref()),
        ),
        _ => ProviderError {
            kind: if status >= 500 || status == 429 {
                ErrorKind::Transient
            } else {
                ErrorKind::Permanent
            },
            code: format!("http-{status}"),
            message: String::from_utf8_lossy(body.get(..200).unwrap_or(body)).into_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_codes_map_to_kinds() {
        let cases = [
            (131047, ErrorKind::WindowClosed),
            (130429, ErrorKind::RateLimited),
            (131056, ErrorKind::RateLimited),
            (80007, ErrorKind::RateLimited),
            (4, ErrorKind::RateLimited),
            (190, ErrorKind::AuthExpired),
            (10, ErrorKind::PermissionMissing),
            (200, ErrorKind::PermissionMissing),
            (131050, ErrorKind::MarketingLimited),
            (131026, ErrorKind::Permanent),
            (131021, ErrorKind::InvalidRecipient),
            (100, ErrorKind::InvalidRequest),
            (132001, ErrorKind::InvalidRequest),
            (132015, ErrorKind::Permanent),
            (368, ErrorKind::Permanent),
            (131000, ErrorKind::Transient),
        ];
        for (code, kind) in cases {
            assert_eq!(kind_of(code), kind, "code {code}");
        }
    }

    #[test]
    fn graph_error_bodies_keep_code_and_details() {
        let body = br#"{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because more than 24 hours have passed"},"fbtrace_id":"AbC"}}"#;
        let e = from_response(400, body);
        assert_eq!(e.kind, ErrorKind::WindowClosed);
        assert_eq!(e.code, "131047");
        assert!(e.message.contains("24 hours"));
        let e = from_response(502, b"<html>bad gateway</html>");
        assert_eq!(e.kind, ErrorKind::Transient);
        assert_eq!(e.code, "http-502");
    }
}
