//! The route self-test: the host calls an endpoint's webhook URL at its own public URL with a
//! signed `Switchyard-Self-Test` header, and ingress (this host or another on the same master
//! key) answers it before any connector runs. Whatever else answers (a proxy's 404, a redirect,
//! a TLS or DNS failure) is reported in words, so an operator learns whether providers' webhooks
//! can reach ingress without waiting for a real one.

use base64::Engine as _;
use serde::Serialize;
use subtle::ConstantTimeEq as _;

use crate::vault::Vault;

/// The header a self-test request carries its token in.
pub const HEADER: &str = "switchyard-self-test";
/// What ingress answers a valid self-test with (in the JSON body's `self_test`).
pub const ANSWER: &str = "reached";
/// How long a token is accepted after it was made (ms).
const TOKEN_TTL_MS: i64 = 60_000;
/// The signing purpose (its own key from the master key).
const PURPOSE: &str = "ingress-self-test";
/// How long the probe waits for an answer.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A token for a self-test of `endpoint_id` at `now_ms`: `v.at.nonce.mac`, the MAC binding the
/// endpoint.
pub fn token(vault: &Vault, endpoint_id: &str, now_ms: i64) -> String {
    let (nonce, _) = crate::onboarding::new_nonce();
    let version = vault.current_version();
    let message = format!("{version}.{now_ms}.{nonce}");
    let mac = vault
        .purpose_mac(
            version,
            PURPOSE,
            format!("{endpoint_id}.{message}").as_bytes(),
        )
        .unwrap_or([0; 32]);
    format!("{message}.{}", B64.encode(mac))
}

/// Whether `token` is a self-test token for `endpoint_id` made within the last minute by a host
/// with this master key.
pub fn valid(vault: &Vault, endpoint_id: &str, token: &str, now_ms: i64) -> bool {
    if token.len() > 200 {
        return false;
    }
    let Some((message, mac)) = token.rsplit_once('.') else {
        return false;
    };
    let mut parts = message.split('.');
    let (Some(version), Some(at), Some(_nonce), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(version), Ok(at)) = (version.parse::<u32>(), at.parse::<i64>()) else {
        return false;
    };
    if !(now_ms - TOKEN_TTL_MS..=now_ms + 5_000).contains(&at) {
        return false;
    }
    let Some(expected) = vault.purpose_mac(
        version,
        PURPOSE,
        format!("{endpoint_id}.{message}").as_bytes(),
    ) else {
        return false;
    };
    B64.decode(mac)
        .is_ok_and(|given| bool::from(given.as_slice().ct_eq(expected.as_slice())))
}

/// What a self-test found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SelfTest {
    /// The webhook URL called (what providers are given).
    pub url: String,
    /// Whether the request reached a Switchyard ingress for this endpoint.
    pub reached: bool,
    /// The HTTP status that came back, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What is wrong and what to change, when it did not reach ingress (or the public URL is
    /// one providers cannot use).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// How long the round trip took, in ms.
    pub elapsed_ms: u64,
}

/// Call `endpoint_id`'s webhook URL at `public_url` with a fresh self-test token and say what
/// answered.
pub async fn probe(vault: &Vault, public_url: &str, endpoint_id: &str) -> SelfTest {
    let url = crate::connector::webhook_url(public_url, endpoint_id);
    let mut problems: Vec<String> = crate::connector::public_url_warning(public_url)
        .into_iter()
        .collect();
    let started = std::time::Instant::now();
    let client = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("switchyard-self-test/", env!("CARGO_PKG_VERSION")))
        .build();
    let answer = match client {
        Ok(c) => c
            .get(&url)
            .header(HEADER, token(vault, endpoint_id, crate::store::now_ms()))
            .send()
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let (reached, status) = match answer {
        Err(e) => {
            problems.push(format!(
                "{url} could not be called from this host ({e}): check that SWITCHYARD_PUBLIC_URL resolves and its TLS certificate is valid"
            ));
            (false, None)
        }
        Ok(resp) => {
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(|l| l.chars().take(200).collect::<String>());
            let server = resp
                .headers()
                .get(reqwest::header::SERVER)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.chars().take(60).collect::<String>());
            let bytes = resp.bytes().await.unwrap_or_default();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let ours = body["self_test"] == ANSWER && body["endpoint"] == endpoint_id;
            if status == 200 && ours {
                (true, Some(status))
            } else {
                let by = server
                    .map(|s| format!(" (server: {s})"))
                    .unwrap_or_default();
                problems.push(match status {
                    301 | 302 | 303 | 307 | 308 => format!(
                        "{url} answered a redirect to {}{by}: providers do not follow redirects; set SWITCHYARD_PUBLIC_URL to the address that answers directly",
                        location.as_deref().unwrap_or("nowhere")
                    ),
                    404 => format!(
                        "{url} answered 404 from something other than Switchyard{by}: the proxy in front does not forward /hooks/ to this host"
                    ),
                    _ => format!(
                        "{url} answered {status}{by}, not Switchyard's self-test answer: something in front of this host (or another service at that address) takes the request"
                    ),
                });
                (false, Some(status))
            }
        }
    };
    SelfTest {
        url,
        reached,
        status,
        problems,
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vault::crypto::MasterKeys;

    #[test]
    fn a_token_is_bound_to_its_endpoint_and_expires() {
        let v = Vault::new(MasterKeys::generate());
        let now = 1_800_000_000_000;
        let t = token(&v, "end_1", now);
        assert!(valid(&v, "end_1", &t, now));
        assert!(valid(&v, "end_1", &t, now + 59_000));
        assert!(!valid(&v, "end_1", &t, now + 61_000), "expired");
        assert!(!valid(&v, "end_2", &t, now), "another endpoint");
        let other = Vault::new(MasterKeys::generate());
        assert!(!valid(&other, "end_1", &t, now), "another master key");
        let mut forged = t.clone();
        forged.pop();
        forged.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(!valid(&v, "end_1", &forged, now));
        for junk in ["", "1.2.3", "x.y.z.w", "1.1.1.1.1", &"a".repeat(300)] {
            assert!(!valid(&v, "end_1", junk, now), "{junk}");
        }
    }
}
