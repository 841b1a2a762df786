//! The replay guard's check + record at capacity 8, 64 and 1 024 (docs/spec.md §3.1), against a
//! `std::collections::HashSet` insert under the same load, in the same run.
//!
//! Both run the steady load of `benches/common/guards.rs`: a full guard, a fresh nonce per
//! request. The guard also does what the set does not — the two-sided window, the floor,
//! eviction of the oldest — and hashes each nonce with SHA-256 into a 16-byte fingerprint
//! (fixed memory, collision resistant). `sha256-of-nonce` measures that hash alone, so the
//! table's own cost is the difference.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use sha2::{Digest, Sha256};

mod common;
use common::guards::{GuardLoad, SetLoad, nonces};

fn at<const N: usize>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("replay-guard/{N}"));
    let mut guard = GuardLoad::<N>::warmed();
    g.bench_function("paystate", |b| b.iter(|| black_box(guard.step())));
    // Still the steady state: every request was accepted.
    for _ in 0..1_000 {
        assert_eq!(guard.step(), Ok(()));
    }
    assert!(guard.at_capacity());

    let mut set = SetLoad::warmed(N);
    g.bench_function("hashset", |b| b.iter(|| black_box(set.step())));
    assert!(set.step());

    let nonce = nonces(1)[0];
    g.bench_function("sha256-of-nonce", |b| {
        b.iter(|| {
            Sha256::new()
                .chain_update(b"paystate/nonce/v1\0")
                .chain_update(black_box(nonce))
                .finalize()
        })
    });
    g.finish();
}

fn guards(c: &mut Criterion) {
    at::<8>(c);
    at::<64>(c);
    at::<1024>(c);
}

fn config() -> Criterion {
    // Short by default; `--measurement-time` / `--warm-up-time` on the command line override.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = guards
}
criterion_main!(benches);
