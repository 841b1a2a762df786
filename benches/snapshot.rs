//! Snapshot encode and decode (docs/spec.md §5) against postcard of a plain struct with the same
//! fields, in the same run.
//!
//! The plain struct is what a host would write without this crate: the same field types,
//! derived serde, `postcard::to_slice` / `postcard::from_bytes`. The snapshot adds a version
//! byte, puts the event ring in order, refuses trailing bytes, maps currency and status codes
//! back, and re-checks every invariant of §2.5 on decode.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use paystate::{Payment, snapshot};

mod common;
use common::snapshots::{Plain, full, typical};

fn group(c: &mut Criterion, name: &str, p: &Payment) {
    let plain = Plain::of(p);
    let mut buf = [0u8; snapshot::MAX_SIZE];
    let ours_len = snapshot::encode(p, &mut buf).expect("fits").len();
    let ours_bytes = buf[..ours_len].to_vec();
    let mut plain_buf = [0u8; snapshot::MAX_SIZE];
    let plain_bytes = postcard::to_slice(&plain, &mut plain_buf)
        .expect("fits")
        .to_vec();
    // The same fields, so the same bytes but for the version byte.
    assert_eq!(ours_bytes[1..], plain_bytes[..]);
    let back: Payment = snapshot::decode(&ours_bytes).expect("decodes");
    let mut again = [0u8; snapshot::MAX_SIZE];
    assert_eq!(
        snapshot::encode(&back, &mut again).expect("fits"),
        &ours_bytes[..]
    );

    let mut g = c.benchmark_group(format!("snapshot/{name}/encode"));
    g.bench_function("paystate", |b| {
        b.iter(|| snapshot::encode(black_box(p), &mut buf).map(|s| s.len()))
    });
    g.bench_function("postcard-plain", |b| {
        b.iter(|| postcard::to_slice(black_box(&plain), &mut plain_buf).map(|s| s.len()))
    });
    g.finish();

    let mut g = c.benchmark_group(format!("snapshot/{name}/decode"));
    g.bench_function("paystate", |b| {
        b.iter(|| snapshot::decode(black_box(&ours_bytes)))
    });
    g.bench_function("postcard-plain", |b| {
        b.iter(|| postcard::from_bytes::<Plain>(black_box(&plain_bytes)))
    });
    g.finish();

    let mut g = c.benchmark_group(format!("snapshot/{name}/encode+decode"));
    g.bench_function("paystate", |b| {
        b.iter(|| {
            let bytes = snapshot::encode(black_box(p), &mut buf).ok()?;
            snapshot::decode(bytes).ok()
        })
    });
    g.bench_function("postcard-plain", |b| {
        b.iter(|| {
            let bytes = postcard::to_slice(black_box(&plain), &mut plain_buf).ok()?;
            postcard::from_bytes::<Plain>(bytes).ok()
        })
    });
    g.finish();
}

fn snapshots(c: &mut Criterion) {
    group(c, "typical", &typical());
    group(c, "full", &full());
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
    targets = snapshots
}
criterion_main!(benches);
