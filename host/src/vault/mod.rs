//! The vault: where provider secrets live. Plugins never see these values.
//!
//! Holds the seam the runtime's `secrets` and `egress` host interfaces read through
//! ([`SecretSource`], [`SecretScope`]), the envelope cryptography ([`crypto`]) and the sealed
//! store of connection and endpoint secrets ([`Vault`]), which opens a call's secrets into a
//! [`StaticSecrets`] that lives as long as the call.

pub mod crypto;
pub mod sealed;

pub use sealed::{Vault, VaultError};

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
    /// The field name the API and the vault use (`app_secret`, …).
    pub fn field(self) -> &'static str {
        match self {
            SecretName::AppSecret => "app_secret",
            SecretName::VerifyToken => "verify_token",
            SecretName::AuthToken => "auth_token",
            SecretName::AccessToken => "access_token",
        }
    }

    /// The secret name of an API/vault field.
    pub fn from_field(field: &str) -> Option<SecretName> {
        SecretName::ALL.into_iter().find(|n| n.field() == field)
    }

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

impl<'de> serde::Deserialize<'de> for Secret {
    /// A secret from a JSON string (API request bodies).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = zeroize::Zeroizing::new(String::deserialize(d)?);
        Ok(Secret::new(s.as_bytes().to_vec()))
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    /// A secret from a flag or environment value.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(s.as_bytes().to_vec()))
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
#[derive(Debug, Clone, Default)]
pub struct SecretScope {
    /// The webhook endpoint (connector installation) the call serves.
    pub endpoint: Option<String>,
    /// The connection the call serves.
    pub connection: Option<String>,
    /// The provider account id used as the Basic-auth user name (Twilio Account SID).
    pub account_id: Option<String>,
    /// Secrets the host opened from the vault for this one call; when set, the call sees these
    /// and not the runtime's shared source. Dropped (and zeroized) with the call.
    pub loaded: Option<std::sync::Arc<StaticSecrets>>,
}

impl SecretScope {
    /// The secret `name` for this call, from the call's own secrets or else `shared`.
    pub fn secret(&self, shared: &dyn SecretSource, name: SecretName) -> Option<Secret> {
        match &self.loaded {
            Some(own) => own.secret(self, name),
            None => shared.secret(self, name),
        }
    }
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
            loaded: None,
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
