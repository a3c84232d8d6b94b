//! Prefixed, time-ordered ids (`ten_…`, `con_…`) and random secrets for API keys.

use base64::Engine as _;

/// A new id: `<prefix>_` + 12 hex digits of Unix milliseconds + 20 random hex digits, so ids
/// sort by creation time (the pagination cursor relies on it) and never collide in practice.
pub fn new_id(prefix: &str) -> String {
    // Milliseconds, then a per-process sequence (ids made in one millisecond by one process
    // sort in the order they were made), then 64 random bits.
    static SEQUENCE: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let ms = crate::store::now_ms().max(0) as u64 & 0xffff_ffff_ffff;
    let seq = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut random = [0u8; 8];
    fill_random(&mut random);
    format!("{prefix}_{ms:012x}{seq:04x}{}", hex::encode(random))
}

/// Fill `buf` from the operating system's RNG.
pub fn fill_random(buf: &mut [u8]) {
    // The OS RNG failing is not recoverable: no key or id may be made without it.
    if let Err(e) = getrandom::fill(buf) {
        panic!("the operating system's random number generator failed: {e}");
    }
}

/// 32 random bytes, base64url without padding (an API key's secret part).
pub fn new_secret() -> zeroize::Zeroizing<String> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    fill_random(bytes.as_mut());
    zeroize::Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_unique_and_ordered() {
        let a = new_id("ten");
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id("ten");
        assert!(a.starts_with("ten_") && a.len() == 4 + 32);
        assert!(a < b);
        let many: std::collections::HashSet<_> = (0..10_000).map(|_| new_id("x")).collect();
        assert_eq!(many.len(), 10_000);
        // Made one after another (mostly within the same millisecond), they sort that way,
        // except where the 16-bit sequence wraps.
        let run: Vec<String> = (0..1000).map(|_| new_id("x")).collect();
        let out_of_order = run.windows(2).filter(|w| w[0] >= w[1]).count();
        assert!(out_of_order <= 1, "{out_of_order}");
    }
}
