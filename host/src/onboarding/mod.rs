//! Connecting numbers through Meta (the redirect flow and Embedded Signup): the signed,
//! single-use `state`, the two-step PIN, and the Graph API calls ([`meta`]), all host code so
//! no token passes through a plugin (A2). The HTTP flow lives in `http::onboarding`; sessions
//! are stored through `store` and their tokens sealed in the vault.

pub mod meta;

use base64::Engine as _;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use crate::vault::{Secret, Vault};

/// How long a state (and a pending pick) stays usable.
pub const SESSION_TTL_MS: i64 = 10 * 60 * 1000;

/// The HKDF purpose label of the state-signing key (distinct from every vault owner label).
const STATE_PURPOSE: &str = "meta-onboarding-state";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a verified state names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateClaims {
    /// The tenant that started the session.
    pub tenant_id: String,
    /// The session (`onb_…`).
    pub session_id: String,
    /// SHA-256 of the nonce, compared with the stored hash.
    pub nonce_hash: Vec<u8>,
}

/// A new state for `(tenant, session)`: `v.tenant.session.nonce.mac`, the MAC an HMAC-SHA256
/// under a key derived from the current master key. Returns the state and its nonce's hash
/// (what the session row keeps).
pub fn sign_state(vault: &Vault, tenant_id: &str, session_id: &str) -> (String, Vec<u8>) {
    let mut nonce = [0u8; 16];
    crate::tenancy::ids::fill_random(&mut nonce);
    let nonce = B64.encode(nonce);
    let version = vault.current_version();
    let message = format!("{version}.{tenant_id}.{session_id}.{nonce}");
    // The current version is always configured.
    let mac = vault
        .purpose_mac(version, STATE_PURPOSE, message.as_bytes())
        .unwrap_or([0; 32]);
    let hash = sha2::Sha256::digest(nonce.as_bytes()).to_vec();
    (format!("{message}.{}", B64.encode(mac)), hash)
}

/// The claims of a state this host signed (under any configured master-key version), or `None`.
pub fn verify_state(vault: &Vault, state: &str) -> Option<StateClaims> {
    if state.len() > 512 {
        return None;
    }
    let (message, mac) = state.rsplit_once('.')?;
    let mut parts = message.split('.');
    let (version, tenant, session, nonce) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let version: u32 = version.parse().ok()?;
    let expected = vault.purpose_mac(version, STATE_PURPOSE, message.as_bytes())?;
    let given = B64.decode(mac).ok()?;
    if !bool::from(given.as_slice().ct_eq(expected.as_slice())) {
        return None;
    }
    Some(StateClaims {
        tenant_id: tenant.to_string(),
        session_id: session.to_string(),
        nonce_hash: sha2::Sha256::digest(nonce.as_bytes()).to_vec(),
    })
}

/// A stored nonce hash equals the claimed one (constant time).
pub fn same_hash(stored: Option<&[u8]>, claimed: &[u8]) -> bool {
    stored.is_some_and(|s| bool::from(s.ct_eq(claimed)))
}

/// A uniformly random six-digit two-step verification PIN.
pub fn new_pin() -> Secret {
    // 4_294_000_000 is the largest multiple of 10^6 below 2^32: no modulo bias.
    loop {
        let mut b = [0u8; 4];
        crate::tenancy::ids::fill_random(&mut b);
        let n = u32::from_le_bytes(b);
        if n < 4_294_000_000 {
            return Secret::new(format!("{:06}", n % 1_000_000).into_bytes());
        }
    }
}

/// When a Graph call failed, in which step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Code exchange or `fb_exchange_token`.
    Exchange,
    /// `debug_token`, `/me/businesses`, `/{waba}/phone_numbers`.
    Discovery,
    /// `subscribed_apps`.
    Subscribe,
    /// `/register`.
    Register,
}

/// The stable error code (documented in docs/operating.md) of a Graph failure in `step`.
pub fn error_code(step: Step, e: &meta::GraphError) -> &'static str {
    if e.transient() {
        return "provider_unavailable";
    }
    if step == Step::Exchange {
        return "token_exchange_failed";
    }
    match e.code {
        0 if e.status == 401 => "token_invalid",
        190 => "token_invalid",
        10 | 200..=299 => "permission_missing",
        131031 | 368 => "business_not_verified",
        133005 => "two_step_pin_mismatch",
        133016 => "registration_rate_limited",
        _ => match step {
            Step::Exchange => "token_exchange_failed",
            Step::Discovery => "discovery_failed",
            Step::Subscribe => "subscription_failed",
            Step::Register => "registration_failed",
        },
    }
}

/// What the user can do about `code`, for error messages.
pub fn hint(code: &str) -> &'static str {
    match code {
        "token_exchange_failed" => "Meta did not accept the authorization code; start again",
        "token_invalid" => "the token Meta gave is no longer valid; start again",
        "permission_missing" => {
            "grant every permission the dialog asks for (whatsapp_business_management, whatsapp_business_messaging, business_management)"
        }
        "business_not_verified" => {
            "the business is not verified or is restricted by Meta; resolve it in Meta Business Suite"
        }
        "two_step_pin_mismatch" => {
            "the number already has a two-step verification PIN; reset it in WhatsApp Manager (Phone numbers → Two-step verification) and connect again"
        }
        "registration_rate_limited" => {
            "Meta refuses more registration attempts for this number for now; wait before trying again"
        }
        "provider_unavailable" => "Meta did not answer; try again shortly",
        _ => "see the message from Meta",
    }
}

/// Shred the sealed tokens of the scope's tenant's expired onboarding sessions and fail those
/// still open (`state_expired`); how many were shredded. Runs when the tenant next starts or
/// picks, and from the periodic sweep for every tenant.
pub async fn expire_sessions(
    tx: &mut crate::store::Tx,
    vault: &crate::vault::Vault,
) -> Result<usize, crate::vault::VaultError> {
    let ids = tx
        .expired_onboarding_with_secrets(crate::store::now_ms())
        .await?;
    for id in &ids {
        vault.shred_onboarding(tx, id).await?;
        if let Some(s) = tx.onboarding(id).await?
            && matches!(s.status.as_str(), "started" | "picking")
        {
            tx.update_onboarding(
                id,
                &crate::store::OnboardingUpdate {
                    status: "failed",
                    error_code: Some("state_expired"),
                    ..Default::default()
                },
            )
            .await?;
        }
    }
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::crypto::MasterKeys;

    #[test]
    fn state_round_trips_and_rejects_tampering() {
        let vault = Vault::new(MasterKeys::generate());
        let (state, hash) = sign_state(&vault, "ten_1", "onb_1");
        let claims = verify_state(&vault, &state).expect("valid");
        assert_eq!(claims.tenant_id, "ten_1");
        assert_eq!(claims.session_id, "onb_1");
        assert!(same_hash(Some(&hash), &claims.nonce_hash));
        let tampered = state.replacen("ten_1", "ten_2", 1);
        assert!(verify_state(&vault, &tampered).is_none());
        let other = Vault::new(MasterKeys::generate());
        assert!(verify_state(&other, &state).is_none(), "another host's key");
        assert!(verify_state(&vault, "garbage").is_none());
        assert!(!same_hash(None, &claims.nonce_hash));
    }

    #[test]
    fn pins_are_six_digits() {
        for _ in 0..100 {
            let pin = new_pin();
            assert_eq!(pin.expose().len(), 6);
            assert!(pin.expose().iter().all(u8::is_ascii_digit));
        }
    }

    #[test]
    fn graph_errors_map_to_codes() {
        let e = |status, code| meta::GraphError {
            status,
            code,
            ..Default::default()
        };
        assert_eq!(
            error_code(Step::Exchange, &e(400, 100)),
            "token_exchange_failed"
        );
        assert_eq!(
            error_code(Step::Register, &e(400, 133005)),
            "two_step_pin_mismatch"
        );
        assert_eq!(
            error_code(Step::Register, &e(400, 133016)),
            "registration_rate_limited"
        );
        assert_eq!(
            error_code(Step::Subscribe, &e(403, 200)),
            "permission_missing"
        );
        assert_eq!(
            error_code(Step::Register, &e(403, 368)),
            "business_not_verified"
        );
        assert_eq!(error_code(Step::Discovery, &e(401, 190)), "token_invalid");
        assert_eq!(
            error_code(Step::Register, &e(503, 0)),
            "provider_unavailable"
        );
    }
}
