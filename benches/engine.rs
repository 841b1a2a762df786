//! `Payment::apply` for each input kind and over a six-step lifecycle, measured in the same run
//! as the same machine written as a bare `match`, with `statig` and with `rust-fsm`
//! (`benches/common/machines.rs`).
//!
//! `apply` mutates, so every measured call starts from a fresh copy of a prepared state. The
//! copies are made outside the timed section, for the engine and the baselines alike
//! ([`run_from`]): the figures are the transition alone, not a 500-byte `clone` of a payment
//! against a 40-byte one.
//!
//! The inputs are built once: `EventId::new` and the `Input` constructors hash (SHA-256) when
//! they are made, so `apply` does none. The `construct` group measures that hashing separately,
//! and `construct+apply` the whole cost of one notification, so the split is visible.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Bencher, Criterion, criterion_group, criterion_main};
use paystate::{EventId, Input};

mod common;
use common::cases::{self, NOW, Start, Step, engine, id, inputs, price, t};
use common::machines::{Event, rust_fsm_machine, statig_machine};

/// States under measurement are reset in pools of this many, untimed, between timed runs.
/// 64 default payments are 32 KiB: they stay in the L1/L2 cache, as one payment being
/// worked on does.
const POOL: usize = 64;

/// Times `step` applied to fresh copies of `start`; only the steps are timed.
fn run_from<S: Clone, O>(b: &mut Bencher<'_>, start: &S, mut step: impl FnMut(&mut S) -> O) {
    b.iter_custom(|iters| {
        let mut pool: Vec<S> = vec![start.clone(); POOL];
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = usize::try_from(left.min(POOL as u64)).unwrap_or(POOL);
            for s in &mut pool[..n] {
                s.clone_from(start);
            }
            let t = Instant::now();
            for s in &mut pool[..n] {
                black_box(step(black_box(s)));
            }
            total += t.elapsed();
            left -= n as u64;
        }
        total
    });
}

/// Benchmarks one (state, input) pair in all four implementations, in one group.
fn compare(c: &mut Criterion, group: &str, start: &Start, step: Step, event: Event) {
    let mut g = c.benchmark_group(group);
    g.bench_function("paystate", |b| {
        run_from(b, &start.ours, |p| engine(p, black_box(&step)))
    });
    g.bench_function("match", |b| {
        run_from(b, &start.bare, |m| m.apply(black_box(&event)))
    });
    g.bench_function("statig", |b| {
        run_from(b, &start.statig, |m| {
            statig_machine::apply(m, black_box(&event))
        })
    });
    g.bench_function("rust-fsm", |b| {
        run_from(b, &start.fsm, |m| {
            rust_fsm_machine::apply(m, black_box(&event))
        })
    });
    g.finish();
}

fn per_kind(c: &mut Criterion) {
    common::machines::check_agreement();
    for case in cases::per_kind() {
        compare(c, case.name, &case.start, case.step, case.event);
    }
}

/// The six-step lifecycle of [`cases::lifecycle`], one payment from creation to full refund.
fn lifecycle(c: &mut Criterion) {
    let (start, steps, events) = cases::lifecycle();
    let mut g = c.benchmark_group("lifecycle");
    g.bench_function("paystate", |b| {
        run_from(b, &start.ours, |p| {
            for s in black_box(&steps) {
                let _ = black_box(engine(p, s));
            }
        })
    });
    g.bench_function("match", |b| {
        run_from(b, &start.bare, |m| {
            for e in black_box(&events) {
                black_box(m.apply(e));
            }
        })
    });
    g.bench_function("statig", |b| {
        run_from(b, &start.statig, |m| {
            for e in black_box(&events) {
                black_box(statig_machine::apply(m, e));
            }
        })
    });
    g.bench_function("rust-fsm", |b| {
        run_from(b, &start.fsm, |m| {
            for e in black_box(&events) {
                black_box(rust_fsm_machine::apply(m, e));
            }
        })
    });
    g.finish();
}

/// Where the hashing is: making an event id and an input, and one notification end to end
/// (make its id and input, apply it) against the prebuilt-input `apply` above.
fn construct(c: &mut Criterion) {
    let notify_id = b"ac05099524730693a8b330c5ecf72da9786";
    let mut g = c.benchmark_group("construct");
    g.bench_function("EventId::new", |b| {
        b.iter(|| EventId::new(black_box(notify_id)))
    });
    let event_id = id("ac05099524730693a8b330c5ecf72da9786");
    g.bench_function("Input::succeed", |b| {
        b.iter(|| Input::succeed(black_box(event_id), black_box(price())))
    });
    g.finish();

    let processing = Start::pending().then(Step::Apply(inputs().initiate), Event::Initiate);
    let mut g = c.benchmark_group("construct+apply/succeed");
    g.bench_function("paystate", |b| {
        run_from(b, &processing.ours, |p| {
            let Ok(event_id) = EventId::new(black_box(notify_id)) else {
                return None;
            };
            let input = Input::succeed(event_id, black_box(price()));
            Some(p.apply(&input, t(NOW)))
        })
    });
    g.bench_function("match", |b| {
        run_from(b, &processing.bare, |m| {
            m.apply(black_box(&Event::Succeed {
                amount: cases::AMOUNT,
            }))
        })
    });
    g.finish();
}

fn config() -> Criterion {
    // Short by default so a full `cargo bench` stays within minutes on a small machine;
    // command-line options (`--measurement-time`, `--warm-up-time`) override these.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = per_kind, lifecycle, construct
}
criterion_main!(benches);
