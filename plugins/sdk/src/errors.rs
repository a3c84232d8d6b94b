//! Provider errors, classified the way the host acts on them.

use crate::types::{EgressError, ErrorKind, ProviderError};

/// A provider error with the provider's own code and message.
pub fn provider_error(
    kind: ErrorKind,
    code: impl Into<String>,
    message: impl Into<String>,
) -> ProviderError {
    ProviderError {
        kind,
        code: code.into(),
        message: message.into(),
        retry_after: None,
    }
}

/// The usual meaning of an HTTP status from a provider's API, for providers that say little
/// more: 401 credentials no longer work, 403 a permission is missing, 429 slow down, 5xx try
/// again, 408 try again, other 4xx the request is wrong. Refine it with the provider's own codes
/// (a blocked recipient, a closed window) before falling back to this.
pub fn kind_of_status(status: u16) -> ErrorKind {
    match status {
        401 => ErrorKind::AuthExpired,
        403 => ErrorKind::PermissionMissing,
        408 => ErrorKind::Transient,
        429 => ErrorKind::RateLimited,
        400..=499 => ErrorKind::InvalidRequest,
        500..=599 => ErrorKind::Transient,
        _ => ErrorKind::Permanent,
    }
}

/// What the host's refusal to deliver a request means, with a code per refusal
/// (`egress-timeout`, `egress-credential-missing`, …): a timeout or a failed connection is worth
/// retrying; a secret the connection lacks means its credentials need renewing (the host pauses
/// it and asks for a reconnect); a URL or credential placement the host refused means the
/// request is wrong; a host not granted or a response too large will not get better.
pub fn from_egress(e: EgressError) -> ProviderError {
    let (kind, code, message) = match e {
        EgressError::Timeout => (
            ErrorKind::Transient,
            "egress-timeout",
            "the provider did not answer in time".to_string(),
        ),
        EgressError::ConnectionFailed(m) => (ErrorKind::Transient, "egress-connection-failed", m),
        EgressError::CredentialMissing(name) => (
            ErrorKind::AuthExpired,
            "egress-credential-missing",
            format!("no {name} is configured for this connection"),
        ),
        EgressError::CredentialNotAllowed(host) => (
            ErrorKind::InvalidRequest,
            "egress-credential-not-allowed",
            format!("host {host} may not receive the connection's credentials"),
        ),
        EgressError::InvalidUrl(m) => (ErrorKind::InvalidRequest, "egress-invalid-url", m),
        EgressError::HostNotAllowed(h) => (
            ErrorKind::Permanent,
            "egress-host-not-allowed",
            format!("host {h} is not granted to this plugin (manifest `egress`, operator grant)"),
        ),
        EgressError::ResponseTooLarge => (
            ErrorKind::Permanent,
            "egress-response-too-large",
            "the response was larger than the host allows".to_string(),
        ),
    };
    provider_error(kind, code, message)
}

/// Seconds from an HTTP `Retry-After` header, when it is a number of seconds.
pub fn retry_after_seconds(value: &str) -> Option<u32> {
    value.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_what_the_host_does() {
        assert_eq!(kind_of_status(401), ErrorKind::AuthExpired);
        assert_eq!(kind_of_status(403), ErrorKind::PermissionMissing);
        assert_eq!(kind_of_status(429), ErrorKind::RateLimited);
        assert_eq!(kind_of_status(404), ErrorKind::InvalidRequest);
        assert_eq!(kind_of_status(503), ErrorKind::Transient);
        assert_eq!(from_egress(EgressError::Timeout).kind, ErrorKind::Transient);
        let e = from_egress(EgressError::HostNotAllowed("x.example".into()));
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::Permanent, "egress-host-not-allowed")
        );
        let e = from_egress(EgressError::CredentialMissing("api_key".into()));
        assert_eq!(
            (e.kind, e.code.as_str()),
            (ErrorKind::AuthExpired, "egress-credential-missing")
        );
        assert!(e.message.contains("api_key"));
        assert_eq!(retry_after_seconds(" 30 "), Some(30));
        assert_eq!(retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
