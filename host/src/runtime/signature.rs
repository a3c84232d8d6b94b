//! Plugin signatures: an Ed25519 signature in a custom section at the very end of a packed
//! component, over everything before it, in a versioned format; checked offline. Whether the
//! signing key is trusted, and for which names, is the plugin catalog's business.
//!
//! Format `switchyard-signature/1`: the last top-level section is a custom section named
//! `switchyard-signature` whose payload is JSON `{"format", "algorithm": "ed25519", "key",
//! "signature"}` (key and signature in standard base64). The signed message is
//! `switchyard-signature/1\n` followed by the SHA-256 of every byte before that section.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use zeroize::Zeroizing;

use super::manifest::{custom_sections, remove_custom_sections};
use super::manifest_section::append_custom_section;

/// Name of the custom section that carries the signature.
pub const SECTION: &str = "switchyard-signature";
/// The signature format this host writes and reads.
pub const FORMAT: &str = "switchyard-signature/1";
/// Prefix of a public key's text form.
const PUBLIC_PREFIX: &str = "ed25519:";
/// Prefix of a secret key file's content.
const SECRET_PREFIX: &str = "switchyard-ed25519-secret:";

/// Why a signature or key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The section or a key is not in the expected form.
    #[error("malformed signature or key: {0}")]
    Malformed(String),
    /// The signature does not match the bytes: they changed after signing, or another key signed.
    #[error("the signature does not match the component: it was changed after signing")]
    Mismatch,
    /// The signature section is not the last section, or there are several.
    #[error("the signature must be the component's one and last section")]
    Misplaced,
    /// The component is already signed.
    #[error("the component is already signed")]
    AlreadySigned,
}

/// An Ed25519 public key of a plugin publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Read `ed25519:<base64>`.
    pub fn parse(text: &str) -> Result<PublicKey, SignatureError> {
        let b64 = text.trim().strip_prefix(PUBLIC_PREFIX).ok_or_else(|| {
            SignatureError::Malformed(format!("a public key starts with {PUBLIC_PREFIX}"))
        })?;
        let bytes: [u8; 32] = STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                SignatureError::Malformed("a public key is 32 bytes of base64".into())
            })?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| SignatureError::Malformed("not an Ed25519 public key".into()))
    }

    /// `ed25519:<base64>`.
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_PREFIX}{}", STANDARD.encode(self.0.as_bytes()))
    }

    /// A short stable id: the first 16 hex digits of the key's SHA-256.
    pub fn id(&self) -> String {
        hex::encode(&sha2::Sha256::digest(self.0.as_bytes())[..8])
    }
}

/// A publisher's Ed25519 signing key; its Debug output shows only the public half.
pub struct SecretKey(SigningKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.public().id())
    }
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Result<SecretKey, SignatureError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut())
            .map_err(|e| SignatureError::Malformed(format!("no randomness: {e}")))?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// Read a key file's content.
    pub fn parse(text: &str) -> Result<SecretKey, SignatureError> {
        let b64 = text.trim().strip_prefix(SECRET_PREFIX).ok_or_else(|| {
            SignatureError::Malformed(format!("a secret key file starts with {SECRET_PREFIX}"))
        })?;
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            STANDARD
                .decode(b64)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    SignatureError::Malformed("a secret key is 32 bytes of base64".into())
                })?,
        );
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// The key file's content.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "{SECRET_PREFIX}{}\n",
            STANDARD.encode(self.0.to_bytes())
        ))
    }

    /// Its public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    format: String,
    algorithm: String,
    key: String,
    signature: String,
}

fn message(signed: &[u8]) -> Vec<u8> {
    let mut m = format!("{FORMAT}\n").into_bytes();
    m.extend_from_slice(&sha2::Sha256::digest(signed));
    m
}

/// The component with `key`'s signature appended as its last section.
pub fn sign(component: &[u8], key: &SecretKey) -> Result<Vec<u8>, SignatureError> {
    let found = custom_sections(component, SECTION)
        .map_err(|e| SignatureError::Malformed(e.to_string()))?;
    if !found.is_empty() {
        return Err(SignatureError::AlreadySigned);
    }
    let signature = key.0.sign(&message(component));
    let payload = serde_json::to_vec(&Payload {
        format: FORMAT.into(),
        algorithm: "ed25519".into(),
        key: STANDARD.encode(key.public().0.as_bytes()),
        signature: STANDARD.encode(signature.to_bytes()),
    })
    .map_err(|e| SignatureError::Malformed(e.to_string()))?;
    let mut out = component.to_vec();
    append_custom_section(&mut out, SECTION, &payload);
    Ok(out)
}

/// The key whose valid signature the component carries (`None`: unsigned). A signature that
/// does not verify, or is not the last section, is an error, never "unsigned".
pub fn signer(component: &[u8]) -> Result<Option<PublicKey>, SignatureError> {
    let found = custom_sections(component, SECTION)
        .map_err(|e| SignatureError::Malformed(e.to_string()))?;
    let (whole, payload) = match found.as_slice() {
        [] => return Ok(None),
        [one] => one.clone(),
        _ => return Err(SignatureError::Misplaced),
    };
    if whole.end != component.len() {
        return Err(SignatureError::Misplaced);
    }
    let p: Payload = serde_json::from_slice(&component[payload])
        .map_err(|e| SignatureError::Malformed(e.to_string()))?;
    if p.format != FORMAT || p.algorithm != "ed25519" {
        return Err(SignatureError::Malformed(format!(
            "unsupported signature format {:?} ({:?}); this host reads {FORMAT} (ed25519)",
            p.format, p.algorithm
        )));
    }
    let key = PublicKey::parse(&format!("{PUBLIC_PREFIX}{}", p.key))?;
    let signature: [u8; 64] = STANDARD
        .decode(&p.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| SignatureError::Malformed("a signature is 64 bytes of base64".into()))?;
    key.0
        .verify_strict(
            &message(&component[..whole.start]),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .map_err(|_| SignatureError::Mismatch)?;
    Ok(Some(key))
}

/// The component without its signature (to sign it again).
pub fn unsigned(component: &[u8]) -> Result<Vec<u8>, SignatureError> {
    remove_custom_sections(component, SECTION).map_err(|e| SignatureError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component() -> Vec<u8> {
        let mut c = b"\0asm\x0d\x00\x01\x00".to_vec();
        append_custom_section(&mut c, "switchyard-manifest", br#"{"name":"x"}"#);
        c
    }

    #[test]
    fn a_signed_component_names_its_key_and_any_change_breaks_it() {
        let key = SecretKey::generate().expect("key");
        let signed = sign(&component(), &key).expect("sign");
        assert_eq!(signer(&signed).expect("verifies"), Some(key.public()));
        assert_eq!(signer(&component()).expect("unsigned"), None);
        assert_eq!(
            sign(&signed, &key).err(),
            Some(SignatureError::AlreadySigned)
        );
        // One flipped byte anywhere before the signature: it never verifies as the key's. A
        // flipped section size (byte 9) can make the rest read as no signature at all, depending
        // on the random signature's bytes; that is "unsigned", which is not the key's either.
        for at in [0, 9, component().len() - 1] {
            let mut bad = signed.clone();
            bad[at] ^= 1;
            let got = signer(&bad);
            assert!(
                !matches!(&got, Ok(Some(k)) if *k == key.public()),
                "byte {at}: {got:?}"
            );
            if at != 9 {
                assert!(got.is_err(), "byte {at}");
            }
        }
        // Something appended after the signature.
        let mut after = signed.clone();
        append_custom_section(&mut after, "other", b"x");
        assert_eq!(signer(&after).err(), Some(SignatureError::Misplaced));
        assert_eq!(unsigned(&signed).expect("strip"), component());
    }

    #[test]
    fn keys_round_trip_through_their_text_forms_and_debug_hides_the_secret() {
        let key = SecretKey::generate().expect("key");
        let again = SecretKey::parse(&key.to_text()).expect("parse");
        assert_eq!(again.public(), key.public());
        assert_eq!(PublicKey::parse(&key.public().to_text()), Ok(key.public()));
        assert_eq!(key.public().id().len(), 16);
        let debug = format!("{key:?}");
        assert!(!debug.contains(&key.to_text().trim()[SECRET_PREFIX.len()..]));
        assert!(PublicKey::parse("ed25519:AAAA").is_err());
        assert!(PublicKey::parse("rsa:xyz").is_err());
    }
}
