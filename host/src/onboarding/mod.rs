//! Connecting numbers through Meta (the redirect flow and Embedded Signup): the signed,
//! single-use tokens of the redirect flow (the browser ticket, the OAuth `state`, the
//! confirmation), the browser nonce, the two-step PIN, and the Graph API calls ([`meta`]), all
//! host code so no token passes through a plugin (A2). The HTTP flow lives in `http::onboarding`; sessions
//! are stored through `store` and their tokens sealed in the vault.

pub mod meta;
pub mod twilio;

use base64::Engine as _;
use sha2::Digest as _;
use subtle::ConstantTimeEq as _;

use crate::vault::{Secret, Vault};

/// A Meta app endpoint's text setting `key`, trimmed; `None` when absent or empty.
pub fn endpoint_setting(settings: &serde_json::Value, key: &str) -> Option<String> {
    settings
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// How long a state (and a pending pick) stays usable.
pub const SESSION_TTL_MS: i64 = 10 * 60 * 1000;

/// What a signed onboarding token is for; each purpose signs under its own key, so a token of
/// one kind is never accepted as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The OAuth `state` that goes to Facebook's dialog and comes back to the callback.
    State,
    /// The one-time ticket in the browser URL the API hands out (`GET /connect/meta/start`).
    Ticket,
    /// The one-time token of the confirmation page (`POST /connect/meta/confirm`).
    Confirm,
}

impl Purpose {
    /// The HKDF purpose label of its key (distinct from every vault owner label).
    fn label(self) -> &'static str {
        match self {
            Purpose::State => "meta-onboarding-state",
            Purpose::Ticket => "meta-onboarding-ticket",
            Purpose::Confirm => "meta-onboarding-confirm",
        }
    }
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The cookie that binds a redirect flow to the browser that started it (its value is a random
/// nonce; the session keeps the nonce's SHA-256).
pub const BROWSER_COOKIE: &str = "switchyard_meta_flow";

/// What a verified token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateClaims {
    /// The tenant that started the session.
    pub tenant_id: String,
    /// The session (`onb_…`).
    pub session_id: String,
    /// SHA-256 of the nonce, compared with the stored hash.
    pub nonce_hash: Vec<u8>,
}

/// A new token for `(tenant, session)`: `v.tenant.session.nonce.mac`, the MAC an HMAC-SHA256
/// under the purpose's key derived from the current master key. Returns the token and its
/// nonce's hash (what the session row keeps).
pub fn sign(
    vault: &Vault,
    purpose: Purpose,
    tenant_id: &str,
    session_id: &str,
) -> (String, Vec<u8>) {
    let (nonce, hash) = new_nonce();
    let version = vault.current_version();
    let message = format!("{version}.{tenant_id}.{session_id}.{nonce}");
    // The current version is always configured.
    let mac = vault
        .purpose_mac(version, purpose.label(), message.as_bytes())
        .unwrap_or([0; 32]);
    (format!("{message}.{}", B64.encode(mac)), hash)
}

/// The claims of a `purpose` token this host signed (under any configured master-key
/// version), or `None`.
pub fn verify(vault: &Vault, purpose: Purpose, token: &str) -> Option<StateClaims> {
    if token.len() > 512 {
        return None;
    }
    let (message, mac) = token.rsplit_once('.')?;
    let mut parts = message.split('.');
    let (version, tenant, session, nonce) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let version: u32 = version.parse().ok()?;
    let expected = vault.purpose_mac(version, purpose.label(), message.as_bytes())?;
    let given = B64.decode(mac).ok()?;
    if !bool::from(given.as_slice().ct_eq(expected.as_slice())) {
        return None;
    }
    Some(StateClaims {
        tenant_id: tenant.to_string(),
        session_id: session.to_string(),
        nonce_hash: nonce_hash(nonce),
    })
}

/// A random 128-bit nonce (base64url) and its SHA-256.
pub fn new_nonce() -> (String, Vec<u8>) {
    let mut nonce = [0u8; 16];
    crate::tenancy::ids::fill_random(&mut nonce);
    let nonce = B64.encode(nonce);
    let hash = nonce_hash(&nonce);
    (nonce, hash)
}

/// The SHA-256 of a nonce (what sessions keep instead of it).
pub fn nonce_hash(nonce: &str) -> Vec<u8> {
    sha2::Sha256::digest(nonce.as_bytes()).to_vec()
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
        let (state, hash) = sign(&vault, Purpose::State, "ten_1", "onb_1");
        let claims = verify(&vault, Purpose::State, &state).expect("valid");
        assert_eq!(claims.tenant_id, "ten_1");
        assert_eq!(claims.session_id, "onb_1");
        assert!(same_hash(Some(&hash), &claims.nonce_hash));
        let tampered = state.replacen("ten_1", "ten_2", 1);
        assert!(verify(&vault, Purpose::State, &tampered).is_none());
        let other = Vault::new(MasterKeys::generate());
        assert!(
            verify(&other, Purpose::State, &state).is_none(),
            "another host's key"
        );
        assert!(verify(&vault, Purpose::State, "garbage").is_none());
        // A state is not a ticket or a confirmation token, nor the other way round.
        assert!(verify(&vault, Purpose::Ticket, &state).is_none());
        assert!(verify(&vault, Purpose::Confirm, &state).is_none());
        let (ticket, _) = sign(&vault, Purpose::Ticket, "ten_1", "onb_1");
        assert!(verify(&vault, Purpose::State, &ticket).is_none());
        assert!(verify(&vault, Purpose::Ticket, &ticket).is_some());
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
