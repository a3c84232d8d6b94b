//! Host side of `switchyard:plugin/secrets`: checks against secrets the plugin never sees.

use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

use super::PluginShared;
use super::bindings::secrets::{Host, SecretError};
use super::state::CallState;
use crate::vault::{Secret, SecretScope};

impl PluginShared {
    /// The secret `name`, if the plugin declares it and `scope` holds it.
    pub(crate) fn secret(&self, scope: &SecretScope, name: &str) -> Result<Secret, SecretError> {
        if !self.declared_secrets.iter().any(|d| d.name == name) {
            return Err(SecretError::NotDeclared);
        }
        scope
            .secret(self.services.secrets.as_ref(), name)
            .ok_or(SecretError::NotConfigured)
    }
}

impl CallState {
    fn secret(&self, name: &str) -> Result<Secret, SecretError> {
        self.plugin.secret(&self.scope, name)
    }
}

fn hmac_equals<M: Mac + KeyInit>(key: &Secret, message: &[u8], expected: &[u8]) -> bool {
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key.expose()) else {
        return false;
    };
    mac.update(message);
    // verify_slice compares in constant time and refuses a truncated tag.
    mac.verify_slice(expected).is_ok()
}

impl Host for CallState {
    fn hmac_sha256_equals(
        &mut self,
        name: String,
        message: Vec<u8>,
        expected: Vec<u8>,
    ) -> Result<bool, SecretError> {
        let key = self.secret(&name)?;
        Ok(hmac_equals::<Hmac<sha2::Sha256>>(&key, &message, &expected))
    }

    fn hmac_sha1_equals(
        &mut self,
        name: String,
        message: Vec<u8>,
        expected: Vec<u8>,
    ) -> Result<bool, SecretError> {
        let key = self.secret(&name)?;
        Ok(hmac_equals::<Hmac<sha1::Sha1>>(&key, &message, &expected))
    }

    fn equals(&mut self, name: String, candidate: String) -> Result<bool, SecretError> {
        let key = self.secret(&name)?;
        Ok(key.expose().ct_eq(candidate.as_bytes()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_checks_accept_only_the_exact_tag() {
        let key = Secret::new(b"app-secret".to_vec());
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"app-secret").expect("key");
        mac.update(b"body");
        let tag = mac.finalize().into_bytes().to_vec();
        assert!(hmac_equals::<Hmac<sha2::Sha256>>(&key, b"body", &tag));
        assert!(!hmac_equals::<Hmac<sha2::Sha256>>(&key, b"bodY", &tag));
        assert!(!hmac_equals::<Hmac<sha2::Sha256>>(
            &key,
            b"body",
            &tag[..16]
        ));
        assert!(!hmac_equals::<Hmac<sha2::Sha256>>(&key, b"body", &[]));
    }
}
