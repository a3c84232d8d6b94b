//! The host's interfaces as plain functions. In a component they call the host; in native
//! tests they call the fakes a [`crate::testing::FakeHost`] installed on the current thread.

use crate::types::{Credential, EgressError, HttpRequest, HttpResponse, Level};

/// Checks against secrets the host keeps (connectors only): the values never reach you.
#[cfg(feature = "connector")]
pub mod secrets {
    use crate::types::SecretError;

    /// Whether the secret `name` (as the manifest declares it) equals `candidate`, compared in
    /// constant time in the host.
    pub fn equals(name: &str, candidate: &str) -> Result<bool, SecretError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::secrets::equals(name, candidate);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::with(|h| h.secret_equals(name, candidate.as_bytes()));
    }

    /// Whether HMAC-SHA256 of `message` under the secret `name` is `expected` (the raw 32-byte
    /// digest: decode hex with [`crate::webhook::hex`] or base64 first).
    pub fn hmac_sha256_equals(
        name: &str,
        message: &[u8],
        expected: &[u8],
    ) -> Result<bool, SecretError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::secrets::hmac_sha256_equals(name, message, expected);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::with(|h| h.hmac_equals(name, message, expected, false));
    }

    /// Whether HMAC-SHA1 of `message` under the secret `name` is `expected` (raw 20 bytes).
    pub fn hmac_sha1_equals(
        name: &str,
        message: &[u8],
        expected: &[u8],
    ) -> Result<bool, SecretError> {
        #[cfg(target_arch = "wasm32")]
        return crate::wit::secrets::hmac_sha1_equals(name, message, expected);
        #[cfg(not(target_arch = "wasm32"))]
        return crate::testing::with(|h| h.hmac_equals(name, message, expected, true));
    }
}

/// Send `req` through the host, which adds `credentials` (secrets by their declared names) and
/// replaces any secret in the answer with `[redacted]`. Prefer [`crate::http::Request`].
pub fn egress(req: &HttpRequest, credentials: &[Credential]) -> Result<HttpResponse, EgressError> {
    #[cfg(target_arch = "wasm32")]
    return crate::wit::egress::send(req, credentials);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::with(|h| h.egress(req, credentials));
}

/// Write a log line; the host tags it with the tenant, plugin and call. Never log secrets or
/// message text.
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    #[cfg(target_arch = "wasm32")]
    crate::wit::log::write(level, message, &fields);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::with(|h| h.log(level, message, fields));
}
