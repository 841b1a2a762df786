//! Signature checks, each against its baseline in the same run:
//!
//! - an Alipay notification end to end (form decoding, the V1 signed content, SHA-256, RSA2
//!   verify) on Alipay's real V1 vector, against RSA2 verify alone over the same content;
//! - RSA2 verify (SHA256withRSA, PKCS#1 v1.5, 2048-bit) against `ring`'s verify of the same
//!   signature, once per backend: the default (`rsa` crate), and with their features the
//!   `ring` backend and the heap-free `rsa-fixed` one (`cargo bench --all-features`); each
//!   group measures `ring` again, so every ratio comes from one run;
//! - the Alipay notification end to end through the `ring` backend, against `ring`'s verify
//!   alone;
//! - an HMAC-SHA256 webhook over a 1 KiB body, against SHA-256 of the same body.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};

mod common;
use common::signatures::{Alipay, HmacWebhook};

fn alipay(c: &mut Criterion) {
    let mut a = Alipay::new();
    let mut g = c.benchmark_group("alipay-notify-v1");
    g.bench_function("paystate", |b| b.iter(|| black_box(a.notification())));
    g.bench_function("rsa2-verify-alone", |b| {
        b.iter(|| black_box(a.rsa2_verify()))
    });
    g.bench_function("decode+content-digest", |b| {
        b.iter(|| black_box(a.content_digest()))
    });
    g.finish();

    let mut g = c.benchmark_group("rsa2-verify");
    g.bench_function("paystate", |b| b.iter(|| black_box(a.rsa2_verify())));
    g.bench_function("ring", |b| b.iter(|| black_box(a.ring_verify())));
    g.finish();

    #[cfg(feature = "ring")]
    {
        let mut g = c.benchmark_group("rsa2-verify-ring-backend");
        g.bench_function("paystate", |b| {
            b.iter(|| black_box(a.ring_backend_verify()))
        });
        g.bench_function("ring", |b| b.iter(|| black_box(a.ring_verify())));
        g.finish();

        let mut g = c.benchmark_group("alipay-notify-v1-ring-backend");
        g.bench_function("paystate", |b| {
            b.iter(|| black_box(a.notification_ring_backend()))
        });
        g.bench_function("ring-verify-alone", |b| {
            b.iter(|| black_box(a.ring_verify()))
        });
        g.finish();
    }

    #[cfg(feature = "rsa-fixed")]
    {
        let mut g = c.benchmark_group("rsa2-verify-fixed-backend");
        g.bench_function("paystate", |b| b.iter(|| black_box(a.fixed_verify())));
        g.bench_function("ring", |b| b.iter(|| black_box(a.ring_verify())));
        g.finish();
    }
}

fn hmac_webhook(c: &mut Criterion) {
    let w = HmacWebhook::new();
    let mut g = c.benchmark_group("hmac-webhook-1KiB");
    g.bench_function("paystate", |b| b.iter(|| black_box(w.verify())));
    g.bench_function("sha256", |b| b.iter(|| black_box(w.sha256())));
    g.finish();
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
    targets = alipay, hmac_webhook
}
criterion_main!(benches);
