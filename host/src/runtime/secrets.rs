//! Host side of `switchyard:plugin/secrets`: checks against secrets the plugin never sees.

use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

use super::bindings::secrets::{Host, SecretError, SecretName as WitSecretName};
use super::state::CallState;
use crate::vault::{Secret, SecretName};

impl From<WitSecretName> for SecretName {
    fn from(name: WitSecretName) -> Self {
        match name {
            WitSecretName::AppSecret => SecretName::AppSecret,
            WitSecretName::VerifyToken => SecretName::VerifyToken,
            WitSecretName::AuthToken => SecretName::AuthToken,
            WitSecretName::AccessToken => SecretName::AccessToken,
        }
    }
}

impl CallState {
    fn secret(&self, name: WitSecretName) -> Result<Secret, SecretError> {
        self.scope
            .secret(self.plugin.services.secrets.as_ref(), name.into())
            .ok_or(SecretError::NotConfigured)
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
        key: WitSecretName,
        message: Vec<u8>,
        expected: Vec<u8>,
    ) -> Result<bool, SecretError> {
        let key = self.secret(key)?;
        Ok(hmac_equals::<Hmac<sha2::Sha256>>(&key, &message, &expected))
    }

    fn hmac_sha1_equals(
        &mut self,
        key: WitSecretName,
        message: Vec<u8>,
        expected: Vec<u8>,
    ) -> Result<bool, SecretError> {
        let key = self.secret(key)?;
        Ok(hmac_equals::<Hmac<sha1::Sha1>>(&key, &message, &expected))
    }

    fn equals(&mut self, key: WitSecretName, candidate: String) -> Result<bool, SecretError> {
        let key = self.secret(key)?;
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
