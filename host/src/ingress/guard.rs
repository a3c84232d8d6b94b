//! What stands between an unauthenticated caller and the database at `/hooks/…`: rate limits
//! per client address and per endpoint (governor's GCRA, keyed), the sample that decides which
//! refused requests leave a receipt (a few per endpoint per minute, headers capped), in-memory
//! counters of every outcome, and the redaction of secrets from what a receipt stores. It never
//! touches the database itself.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Limits of webhook ingress.
#[derive(Debug, Clone)]
pub struct IngressLimits {
    /// Requests per second one endpoint accepts (0: no limit); bursts of twice that.
    pub endpoint_rate: u32,
    /// Requests per second one client address (an IPv6 /64) may send (0: no limit); bursts of
    /// twice that.
    pub client_rate: u32,
    /// Refused requests per endpoint per minute that leave a receipt (the rest are counted).
    pub refused_sample: u32,
    /// Unfinished jobs past which webhooks are answered 503 (0: no bound).
    pub max_backlog: u64,
    /// How often the job queue is counted for that bound.
    pub backlog_count_every: std::time::Duration,
}

/// Why a request was turned away before any work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Limited {
    /// Its client address sends too fast.
    #[error("too many requests from this address")]
    Client,
    /// Its endpoint receives too fast.
    #[error("too many requests for this endpoint")]
    Endpoint,
}

/// Outcomes counted by [`Guard`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Authentic and stored.
    Accepted,
    /// Answered by the connector (a handshake).
    Responded,
    /// Refused by the connector (bad or missing signature).
    Rejected,
    /// Body over the cap.
    TooLarge,
    /// The database or the plugin could not do its part (503).
    Failed,
    /// Turned away by a rate limit (429).
    RateLimited,
    /// Turned away because the job queue is at its bound (503).
    Backlogged,
}

const OUTCOMES: [(Outcome, &str); 7] = [
    (Outcome::Accepted, "accepted"),
    (Outcome::Responded, "responded"),
    (Outcome::Rejected, "rejected"),
    (Outcome::TooLarge, "too_large"),
    (Outcome::Failed, "failed"),
    (Outcome::RateLimited, "rate_limited"),
    (Outcome::Backlogged, "backlogged"),
];

/// Rate limits, refusal sampling and counters of webhook ingress (one per process).
pub struct Guard {
    endpoint: Option<DefaultKeyedRateLimiter<String>>,
    client: Option<DefaultKeyedRateLimiter<IpAddr>>,
    refused_sample: u32,
    /// `endpoint → (minute, refusals stored in it)`.
    sampled: Mutex<HashMap<String, (u64, u32)>>,
    counts: [AtomicU64; OUTCOMES.len()],
    /// Refusals counted but not stored.
    unsampled: AtomicU64,
    /// Counts at the last [`Guard::report`].
    reported: Mutex<[u64; OUTCOMES.len() + 1]>,
    /// The bound on queued work.
    backlog: std::sync::Arc<super::backlog::Backlog>,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(rate: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(rate)?;
    let burst = rate.saturating_mul(NonZeroU32::MIN.saturating_add(1));
    Some(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

/// The key a client address is limited under: IPv4 as is, IPv6 by its /64 (one host owns a
/// whole /64, so per-address keys would let it rotate freely).
pub(crate) fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

fn minute_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

impl Guard {
    /// A guard with these limits.
    pub fn new(limits: &IngressLimits) -> Self {
        Guard {
            endpoint: limiter(limits.endpoint_rate),
            client: limiter(limits.client_rate),
            refused_sample: limits.refused_sample,
            sampled: Mutex::default(),
            counts: Default::default(),
            unsampled: AtomicU64::new(0),
            reported: Mutex::default(),
            backlog: std::sync::Arc::new(super::backlog::Backlog::new(limits.max_backlog)),
        }
    }

    /// The bound on queued work this process admits by.
    pub fn backlog(&self) -> &std::sync::Arc<super::backlog::Backlog> {
        &self.backlog
    }

    /// Whether the job queue has room for one more webhook.
    pub fn admit_backlog(&self) -> bool {
        let room = self.backlog.admit();
        if !room {
            self.count(Outcome::Backlogged);
        }
        room
    }

    /// Whether a request from `client` may go on to look its endpoint up.
    pub fn admit_client(&self, client: IpAddr) -> Result<(), Limited> {
        match &self.client {
            Some(l) if l.check_key(&client_key(client)).is_err() => {
                self.count(Outcome::RateLimited);
                Err(Limited::Client)
            }
            _ => Ok(()),
        }
    }

    /// Whether a request for the (existing) endpoint `endpoint` may be read and verified.
    pub fn admit_endpoint(&self, endpoint: &str) -> Result<(), Limited> {
        match &self.endpoint {
            Some(l) if l.check_key(&endpoint.to_string()).is_err() => {
                self.count(Outcome::RateLimited);
                Err(Limited::Endpoint)
            }
            _ => Ok(()),
        }
    }

    /// Count one outcome.
    pub fn count(&self, outcome: Outcome) {
        if let Some(i) = OUTCOMES.iter().position(|(o, _)| *o == outcome) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether this refusal for `endpoint` leaves a receipt: the first few of each minute do.
    pub fn sample_refusal(&self, endpoint: &str) -> bool {
        let minute = minute_now();
        let mut sampled = self.sampled.lock().unwrap_or_else(|p| p.into_inner());
        let entry = sampled.entry(endpoint.to_string()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        if entry.1 < self.refused_sample {
            entry.1 += 1;
            true
        } else {
            drop(sampled);
            self.unsampled.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// `(outcome, count)` since start, plus `unsampled` (refusals not stored).
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let mut out: Vec<_> = OUTCOMES
            .iter()
            .zip(&self.counts)
            .map(|((_, name), c)| (*name, c.load(Ordering::Relaxed)))
            .collect();
        out.push(("unsampled", self.unsampled.load(Ordering::Relaxed)));
        out
    }

    /// Forget idle limiter and sample state, and log one line with the counts since the last
    /// report when anything was refused (the operator's view until a metrics endpoint exists).
    pub fn report(&self) {
        if let Some(l) = &self.endpoint {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.client {
            l.retain_recent();
            l.shrink_to_fit();
        }
        let minute = minute_now();
        self.sampled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (m, _)| *m == minute);
        let now: Vec<u64> = self.counters().iter().map(|(_, c)| *c).collect();
        let mut last = self.reported.lock().unwrap_or_else(|p| p.into_inner());
        let delta: Vec<u64> = now.iter().zip(last.iter()).map(|(n, l)| n - l).collect();
        if delta[2..].iter().any(|d| *d > 0) {
            tracing::warn!(
                accepted = delta[0],
                responded = delta[1],
                rejected = delta[2],
                too_large = delta[3],
                failed = delta[4],
                rate_limited = delta[5],
                not_stored = delta[6],
                "webhook ingress refusals since the last report"
            );
        }
        for (l, n) in last.iter_mut().zip(now) {
            *l = n;
        }
    }
}

/// Most headers a refused request's receipt keeps.
const REFUSED_HEADERS: usize = 32;
/// Longest header name or value a refused request's receipt keeps, in bytes.
const REFUSED_HEADER_LEN: usize = 256;
/// Most header bytes (names and values) a refused request's receipt keeps.
const REFUSED_HEADER_BYTES: usize = 4096;

/// The headers a refused request's receipt keeps: the first [`REFUSED_HEADERS`], each cut to
/// [`REFUSED_HEADER_LEN`] bytes, at most [`REFUSED_HEADER_BYTES`] in all.
pub fn cap_headers(pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let cut = |s: &str| -> String {
        let mut end = s.len().min(REFUSED_HEADER_LEN);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_string()
    };
    let mut total = 0;
    let mut out = Vec::new();
    for (k, v) in pairs.into_iter().take(REFUSED_HEADERS) {
        let (k, v) = (cut(&k), cut(&v));
        total += k.len() + v.len();
        if total > REFUSED_HEADER_BYTES {
            break;
        }
        out.push((k, v));
    }
    out
}

/// Stands in for a secret a receipt does not keep.
pub const REDACTED: &str = "[redacted]";

/// Whether a query parameter or header of this name carries a secret (a token, password, key or
/// session). Signatures are not secrets: they prove one body and are kept.
fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "set-cookie" | "code" | "key"
    ) || [
        "token",
        "secret",
        "password",
        "passwd",
        "apikey",
        "api_key",
        "api-key",
        "credential",
        "session",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// `url` with the value of every secret-named query parameter (`hub.verify_token`, …) replaced
/// by [`REDACTED`]; everything else byte for byte.
pub fn redact_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            let decoded: String = url::form_urlencoded::parse(key.as_bytes())
                .map(|(k, _)| k.into_owned())
                .next()
                .unwrap_or_default();
            if is_secret_name(&decoded) {
                format!("{key}={REDACTED}")
            } else {
                pair.to_string()
            }
        })
        .collect();
    let mut out = format!("{base}?{}", parts.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// `pairs` with the value of every secret-named header (authorization, cookies, tokens)
/// replaced by [`REDACTED`].
pub fn redact_headers(pairs: &[(String, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| {
            if is_secret_name(k) {
                (k.clone(), REDACTED.to_string())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_leave_urls_and_headers_and_signatures_stay() {
        let u = "https://h.example/hooks/end_1?hub.mode=subscribe&hub.verify_token=s3cret&hub.challenge=42";
        let r = redact_url(u);
        assert!(!r.contains("s3cret"), "{r}");
        assert_eq!(
            r,
            "https://h.example/hooks/end_1?hub.mode=subscribe&hub.verify_token=[redacted]&hub.challenge=42"
        );
        // Percent-encoded names are recognised too.
        assert!(!redact_url("https://h/x?hub%2Everify%5Ftoken=zz").contains("zz"));
        assert_eq!(redact_url("https://h/x"), "https://h/x");
        let h = redact_headers(&[
            ("authorization".into(), "Bearer abc".into()),
            ("cookie".into(), "sid=abc".into()),
            ("x-hub-signature-256".into(), "sha256=00".into()),
            ("x-twilio-signature".into(), "c2ln".into()),
        ]);
        assert_eq!(h[0].1, REDACTED);
        assert_eq!(h[1].1, REDACTED);
        assert_eq!(h[2].1, "sha256=00");
        assert_eq!(h[3].1, "c2ln");
    }

    #[test]
    fn refused_headers_are_capped_in_count_and_size() {
        let many: Vec<(String, String)> = (0..500)
            .map(|i| (format!("x-h{i}"), "é".repeat(1000)))
            .collect();
        let capped = cap_headers(many);
        assert!(capped.len() <= REFUSED_HEADERS);
        let bytes: usize = capped.iter().map(|(k, v)| k.len() + v.len()).sum();
        assert!(bytes <= REFUSED_HEADER_BYTES, "{bytes}");
        assert!(capped.iter().all(|(_, v)| v.len() <= REFUSED_HEADER_LEN));
    }

    #[test]
    fn refusals_are_sampled_per_endpoint_and_limits_are_per_key() {
        let g = Guard::new(&IngressLimits {
            endpoint_rate: 5,
            client_rate: 3,
            refused_sample: 4,
            max_backlog: 0,
            backlog_count_every: std::time::Duration::from_secs(1),
        });
        let kept = (0..100).filter(|_| g.sample_refusal("end_a")).count();
        assert_eq!(kept, 4);
        assert!(
            g.sample_refusal("end_b"),
            "another endpoint has its own sample"
        );
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let admitted = (0..100).filter(|_| g.admit_client(a).is_ok()).count();
        assert_eq!(admitted, 6, "burst of twice the rate");
        assert!(g.admit_client(b).is_ok(), "another address is not limited");
        // One IPv6 /64 is one client.
        let v6 = |s: &str| s.parse::<IpAddr>().expect("ip");
        let n = (0..100)
            .filter(|i| g.admit_client(v6(&format!("2001:db8::{i:x}"))).is_ok())
            .count();
        assert_eq!(n, 6);
        let e = (0..100)
            .filter(|_| g.admit_endpoint("end_a").is_ok())
            .count();
        assert_eq!(e, 10);
        let counters: HashMap<_, _> = g.counters().into_iter().collect();
        assert_eq!(counters["rate_limited"], 94 + 94 + 90);
        assert_eq!(counters["unsampled"], 96);
    }
}
