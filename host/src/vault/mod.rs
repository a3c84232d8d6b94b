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

/// Secrets the host seals for its own use (Meta's two-step PIN); no plugin may declare one,
/// and none reaches a plugin call.
pub const HOST_ONLY_SECRETS: &[&str] = &["two_step_pin"];

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
    /// The secret `name` (its field name, e.g. `access_token`) for this call, from the call's
    /// own secrets or else `shared`.
    pub fn secret(&self, shared: &dyn SecretSource, name: &str) -> Option<Secret> {
        match &self.loaded {
            Some(own) => own.secret(self, name),
            None => shared.secret(self, name),
        }
    }

    /// Every secret this call holds (all of them are redacted from what a plugin receives).
    pub fn all(&self, shared: &dyn SecretSource) -> Vec<Secret> {
        match &self.loaded {
            Some(own) => own.all(self),
            None => shared.all(self),
        }
    }
}

/// Where the runtime gets secret values from.
pub trait SecretSource: Send + Sync + 'static {
    /// The secret `name` for `scope`, if one is configured.
    fn secret(&self, scope: &SecretScope, name: &str) -> Option<Secret>;
    /// Every secret configured for `scope`.
    fn all(&self, scope: &SecretScope) -> Vec<Secret>;
}

/// Secrets held in memory, keyed by endpoint or connection id; for tests and fixed set-ups.
#[derive(Default)]
pub struct StaticSecrets {
    entries: HashMap<(String, String), Secret>,
}

impl StaticSecrets {
    /// No secrets at all.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the secret `name` (e.g. `app_secret`) for an endpoint or connection id.
    pub fn with(mut self, owner: &str, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.entries
            .insert((owner.to_string(), name.to_string()), Secret::new(value));
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
    fn secret(&self, scope: &SecretScope, name: &str) -> Option<Secret> {
        // A connection's own secret wins over its endpoint's.
        [&scope.connection, &scope.endpoint]
            .into_iter()
            .flatten()
            .find_map(|owner| {
                self.entries
                    .get(&(owner.clone(), name.to_string()))
                    .cloned()
            })
    }

    fn all(&self, scope: &SecretScope) -> Vec<Secret> {
        let owners: Vec<&String> = [&scope.connection, &scope.endpoint]
            .into_iter()
            .flatten()
            .collect();
        self.entries
            .iter()
            .filter(|((owner, _), _)| owners.contains(&owner))
            .map(|(_, secret)| secret.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new(b"canary-abc123".to_vec());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        let src = StaticSecrets::new().with("end_1", "app_secret", "canary-abc123");
        assert!(!format!("{src:?}").contains("canary"));
    }

    #[test]
    fn connection_secret_wins_over_endpoint() {
        let src = StaticSecrets::new()
            .with("end_1", "access_token", "endpoint")
            .with("con_1", "access_token", "connection");
        let scope = SecretScope {
            endpoint: Some("end_1".into()),
            connection: Some("con_1".into()),
            account_id: None,
            loaded: None,
        };
        let got = src.secret(&scope, "access_token").expect("secret");
        assert_eq!(got.expose(), b"connection");
        let endpoint_only = SecretScope {
            connection: None,
            ..scope
        };
        let got = src.secret(&endpoint_only, "access_token").expect("secret");
        assert_eq!(got.expose(), b"endpoint");
        assert!(src.secret(&endpoint_only, "auth_token").is_none());
    }
}
