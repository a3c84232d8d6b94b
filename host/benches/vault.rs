//! The vault's envelope cryptography: seal + open of a 64-byte secret, opening a sealed data
//! key (HKDF + AES-GCM), and one run of 1,000,000 seals checked for a repeated nonce.
//!
//! Run: `cargo bench -p switchyard --bench vault`

#![allow(missing_docs)]

use std::collections::HashSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use switchyard::vault::crypto::{DataKey, MasterKeys};

const OWNER: &str = "tenant:ten_123";
const HOLDER: &str = "connection:con_1";
const SEALS: usize = 1_000_000;

fn keys() -> MasterKeys {
    let b64 = base64::engine::general_purpose::STANDARD;
    MasterKeys::parse(
        &format!("2:{}", b64.encode([2u8; 32])),
        &format!("1:{}", b64.encode([1u8; 32])),
    )
    .expect("keys")
}

/// 1,000,000 seals under one data key; panics on a repeated nonce. Returns the time spent sealing.
fn million_seals(key: &DataKey) -> Duration {
    let mut nonces = HashSet::with_capacity(SEALS);
    let mut sealing = Duration::ZERO;
    let start = Instant::now();
    for _ in 0..SEALS {
        let t = Instant::now();
        let sealed = key.seal(OWNER, HOLDER, "access_token", b"v");
        sealing += t.elapsed();
        let mut n = [0u8; 16];
        n[..12].copy_from_slice(&sealed.nonce);
        assert!(nonces.insert(u128::from_le_bytes(n)), "repeated nonce");
    }
    eprintln!(
        "vault/nonce_1M: {SEALS} seals, no repeated nonce; {:.2?} in all, {:.2?} sealing ({:.0} ns/seal)",
        start.elapsed(),
        sealing,
        sealing.as_nanos() as f64 / SEALS as f64
    );
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let keys = keys();
    let key = DataKey::generate();
    let secret = [0x42u8; 64];

    let mut group = c.benchmark_group("vault");
    group.bench_function("seal_open_64B", |b| {
        b.iter(|| {
            let sealed = key.seal(OWNER, HOLDER, "access_token", black_box(&secret));
            key.open(OWNER, HOLDER, "access_token", &sealed)
                .expect("open")
        })
    });
    let sealed_key = keys.seal_data_key(OWNER, HOLDER, &key);
    group.bench_function("open_data_key", |b| {
        b.iter(|| {
            keys.open_data_key(OWNER, HOLDER, black_box(&sealed_key))
                .expect("open")
        })
    });
    group.finish();

    // Run once, outside criterion's sampling loop (criterion needs at least 10 samples).
    million_seals(&key);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
