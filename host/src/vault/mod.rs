//! The vault: where provider secrets live. Plugins never see these values.
//!
//! For now this module holds the seam the runtime's `secrets` and `egress` host interfaces read
//! through ([`SecretSource`]) and an in-memory source with fixed values ([`StaticSecrets`]). The
//! encrypted, per-tenant vault implements the same trait.

use std::collections::HashMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretBox};

/// A secret a plugin call may use (by name, never by value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretName {
    /// Meta app secret: the key of `X-Hub-Signature-256`.
    AppSecret,
    /// Meta webhook verify token.
    VerifyToken,
    /// Twilio auth token.
    AuthToken,
    /// Provider access token (bearer).
    AccessToken,
}

impl SecretName {
    /// Every secret name.
    pub const ALL: [SecretName; 4] = [
        SecretName::AppSecret,
        SecretName::VerifyToken,
        SecretName::AuthToken,
        SecretName::AccessToken,
    ];
}

/// Secret bytes: zeroized on drop, printed as `[redacted]`.
pub struct Secret(SecretBox<[u8]>);

impl Secret {
    /// Wrap secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(SecretBox::new(bytes.into().into_boxed_slice()))
    }

    /// The bytes, for the host code that must use them (HMAC keys, headers, redaction).
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Secret::new(self.expose().to_vec())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Whose secrets a plugin call may use: an endpoint's (webhook checks) and/or a connection's (API calls).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SecretScope {
    /// The webhook endpoint (connector installation) the call serves.
    pub endpoint: Option<String>,
    /// The connection the call serves.
    pub connection: Option<String>,
    /// The provider account id used as the Basic-auth user name (Twilio Account SID).
    pub account_id: Option<String>,
}

/// Where the runtime gets secret values from.
pub trait SecretSource: Send + Sync + 'static {
    /// The secret `name` for `scope`, if one is configured.
    fn secret(&self, scope: &SecretScope, name: SecretName) -> Option<Secret>;
}

/// Secrets held in memory, keyed by endpoint or connection id; for tests and fixed set-ups.
#[derive(Default)]
pub struct StaticSecrets {
    entries: HashMap<(String, SecretName), Secret>,
}

impl StaticSecrets {
    /// No secrets at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a secret for an endpoint or connection id.
    pub fn with(mut self, owner: &str, name: SecretName, value: impl Into<Vec<u8>>) -> Self {
        self.entries
            .insert((owner.to_string(), name), Secret::new(value));
        self
    }
}

impl fmt::Debug for StaticSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticSecrets")
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl SecretSource for StaticSecrets {
    fn secret(&self, scope: &SecretScope, name: SecretName) -> Option<Secret> {
        // A connection's own secret wins over its endpoint's.
        [&scope.connection, &scope.endpoint]
            .into_iter()
            .flatten()
            .find_map(|owner| self.entries.get(&(owner.clone(), name)).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new(b"canary-abc123".to_vec());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        let src = StaticSecrets::new().with("end_1", SecretName::AppSecret, "canary-abc123");
        assert!(!format!("{src:?}").contains("canary"));
    }

    #[test]
    fn connection_secret_wins_over_endpoint() {
        let src = StaticSecrets::new()
            .with("end_1", SecretName::AccessToken, "endpoint")
            .with("con_1", SecretName::AccessToken, "connection");
        let scope = SecretScope {
            endpoint: Some("end_1".into()),
            connection: Some("con_1".into()),
            account_id: None,
        };
        let got = src.secret(&scope, SecretName::AccessToken).expect("secret");
        assert_eq!(got.expose(), b"connection");
        let endpoint_only = SecretScope {
            connection: None,
            ..scope
        };
        let got = src
            .secret(&endpoint_only, SecretName::AccessToken)
            .expect("secret");
        assert_eq!(got.expose(), b"endpoint");
        assert!(src.secret(&endpoint_only, SecretName::AuthToken).is_none());
    }
}
