//! Instruction counts for the benchmarks, for `valgrind --tool=callgrind`: exact and
//! reproducible where wall-clock time on a shared machine is not.
//!
//! `icount run CASE ITERS` runs one case ITERS times; only the calls inside [`measured`] count
//! (`--toggle-collect='*measured*'`), so resetting the state between calls is left out, as in
//! the criterion benchmarks. `benches/icount.sh` runs every case under callgrind and prints the
//! instructions per call and the ratios. Run plainly (as `cargo bench` does) it runs every
//! case once, as a smoke test.

use std::hint::black_box;

use paystate::{Payment, snapshot};
use sha2::{Digest, Sha256};

mod common;
use common::cases::{self, Step, engine};
use common::guards::{GuardLoad, SetLoad, nonces};
use common::machines::{Event, rust_fsm_machine, statig_machine};
use common::signatures::{Alipay, HmacWebhook};
use common::snapshots;

/// The code being counted. Never inlined, so callgrind can tell it from the harness.
#[inline(never)]
fn measured<S, O>(state: &mut S, f: &impl Fn(&mut S) -> O) -> O {
    f(black_box(state))
}

/// One case: runs its operation `iters` times, each on a fresh copy of its start state.
type Runner = Box<dyn Fn(u64)>;

fn from<S: Clone + 'static, O>(start: S, f: impl Fn(&mut S) -> O + 'static) -> Runner {
    Box::new(move |iters| {
        let mut s = start.clone();
        for _ in 0..iters {
            s.clone_from(&start);
            black_box(measured(&mut s, &f));
        }
    })
}

/// A case whose state carries on from call to call (a load at its steady state).
fn steady<S: 'static, O>(
    start: impl Fn() -> S + 'static,
    f: impl Fn(&mut S) -> O + 'static,
) -> Runner {
    Box::new(move |iters| {
        let mut s = start();
        for _ in 0..iters {
            black_box(measured(&mut s, &f));
        }
    })
}

fn guard_cases(out: &mut Vec<(String, Runner)>) {
    fn at<const N: usize>(out: &mut Vec<(String, Runner)>) {
        out.push((
            format!("replay-guard/{N}/paystate"),
            steady(GuardLoad::<N>::warmed, |g| g.step()),
        ));
        out.push((
            format!("replay-guard/{N}/hashset"),
            steady(|| SetLoad::warmed(N), |s| s.step()),
        ));
        let nonce = nonces(1)[0];
        out.push((
            format!("replay-guard/{N}/sha256-of-nonce"),
            from((), move |_| {
                Sha256::new()
                    .chain_update(b"paystate/nonce/v1\0")
                    .chain_update(black_box(nonce))
                    .finalize()
            }),
        ));
    }
    at::<8>(out);
    at::<64>(out);
    at::<1024>(out);
}

fn engine_cases(out: &mut Vec<(String, Runner)>) {
    for case in cases::per_kind() {
        let (step, event) = (case.step, case.event);
        let start = case.start;
        out.push((
            format!("{}/paystate", case.name),
            from(start.ours, move |p: &mut Payment| engine(p, &step)),
        ));
        out.push((
            format!("{}/match", case.name),
            from(start.bare, move |m| m.apply(&event)),
        ));
        out.push((
            format!("{}/statig", case.name),
            from(start.statig, move |m| statig_machine::apply(m, &event)),
        ));
        out.push((
            format!("{}/rust-fsm", case.name),
            from(start.fsm, move |m| rust_fsm_machine::apply(m, &event)),
        ));
    }

    let (start, steps, events) = cases::lifecycle();
    out.push((
        "lifecycle/paystate".into(),
        from(start.ours, move |p: &mut Payment| {
            for s in &steps {
                let _ = black_box(engine(p, s));
            }
        }),
    ));
    out.push((
        "lifecycle/match".into(),
        from(start.bare, move |m| {
            for e in &events {
                black_box(m.apply(e));
            }
        }),
    ));
    out.push((
        "lifecycle/statig".into(),
        from(start.statig, move |m| {
            for e in &events {
                black_box(statig_machine::apply(m, e));
            }
        }),
    ));
    out.push((
        "lifecycle/rust-fsm".into(),
        from(start.fsm, move |m| {
            for e in &events {
                black_box(rust_fsm_machine::apply(m, e));
            }
        }),
    ));

    let notify_id = b"ac05099524730693a8b330c5ecf72da9786";
    out.push((
        "construct/EventId::new".into(),
        from((), move |_| paystate::EventId::new(black_box(notify_id))),
    ));
    let event_id = cases::id("ac05099524730693a8b330c5ecf72da9786");
    out.push((
        "construct/Input::succeed".into(),
        from((), move |_| {
            paystate::Input::succeed(black_box(event_id), black_box(cases::price()))
        }),
    ));
    let processing =
        cases::Start::pending().then(Step::Apply(cases::inputs().initiate), Event::Initiate);
    out.push((
        "construct+apply/succeed/paystate".into(),
        from(processing.ours, move |p: &mut Payment| {
            let event_id = paystate::EventId::new(black_box(notify_id)).ok()?;
            let input = paystate::Input::succeed(event_id, black_box(cases::price()));
            Some(p.apply(&input, cases::t(cases::NOW)))
        }),
    ));
}

fn snapshot_cases(out: &mut Vec<(String, Runner)>) {
    for (name, p) in [
        ("typical", snapshots::typical()),
        ("full", snapshots::full()),
    ] {
        let plain = snapshots::Plain::of(&p);
        let mut buf = [0u8; snapshot::MAX_SIZE];
        let bytes = snapshot::encode(&p, &mut buf).expect("fits").to_vec();
        let plain_bytes = postcard::to_slice(&plain, &mut [0u8; snapshot::MAX_SIZE])
            .expect("encodes")
            .to_vec();
        out.push((
            format!("snapshot/{name}/encode/paystate"),
            from(p.clone(), |p: &mut Payment| {
                let mut buf = [0u8; snapshot::MAX_SIZE];
                snapshot::encode(p, &mut buf).map(|s| s.len())
            }),
        ));
        out.push((
            format!("snapshot/{name}/encode/postcard-plain"),
            from(plain.clone(), |p| {
                let mut buf = [0u8; snapshot::MAX_SIZE];
                postcard::to_slice(p, &mut buf).map(|s| s.len())
            }),
        ));
        out.push((
            format!("snapshot/{name}/decode/paystate"),
            from(bytes, |b| snapshot::decode(b)),
        ));
        out.push((
            format!("snapshot/{name}/decode/postcard-plain"),
            from(plain_bytes, |b| postcard::from_bytes::<snapshots::Plain>(b)),
        ));
        out.push((
            format!("snapshot/{name}/encode+decode/paystate"),
            from(p, |p: &mut Payment| {
                let mut buf = [0u8; snapshot::MAX_SIZE];
                let bytes = snapshot::encode(p, &mut buf).ok()?;
                snapshot::decode(bytes).ok()
            }),
        ));
        out.push((
            format!("snapshot/{name}/encode+decode/postcard-plain"),
            from(plain, |p| {
                let mut buf = [0u8; snapshot::MAX_SIZE];
                let bytes = postcard::to_slice(p, &mut buf).ok()?;
                postcard::from_bytes::<snapshots::Plain>(bytes).ok()
            }),
        ));
    }
}

fn signature_cases(out: &mut Vec<(String, Runner)>) {
    // Built lazily: only the case that runs pays for parsing keys.
    out.push((
        "alipay-notify-v1/paystate".into(),
        steady(Alipay::new, |a| a.notification()),
    ));
    out.push((
        "alipay-notify-v1/rsa2-verify-alone".into(),
        steady(Alipay::new, |a| a.rsa2_verify()),
    ));
    out.push((
        "alipay-notify-v1/decode+content-digest".into(),
        steady(Alipay::new, |a| a.content_digest()),
    ));
    out.push((
        "rsa2-verify/paystate".into(),
        steady(Alipay::new, |a| a.rsa2_verify()),
    ));
    out.push((
        "rsa2-verify/ring".into(),
        steady(Alipay::new, |a| a.ring_verify()),
    ));
    #[cfg(feature = "ring")]
    {
        out.push((
            "rsa2-verify-ring-backend/paystate".into(),
            steady(Alipay::new, |a| a.ring_backend_verify()),
        ));
        out.push((
            "rsa2-verify-ring-backend/ring".into(),
            steady(Alipay::new, |a| a.ring_verify()),
        ));
        out.push((
            "alipay-notify-v1-ring-backend/paystate".into(),
            steady(Alipay::new, |a| a.notification_ring_backend()),
        ));
        out.push((
            "alipay-notify-v1-ring-backend/ring-verify-alone".into(),
            steady(Alipay::new, |a| a.ring_verify()),
        ));
    }
    #[cfg(feature = "rsa-fixed")]
    {
        out.push((
            "rsa2-verify-fixed-backend/paystate".into(),
            steady(Alipay::new, |a| a.fixed_verify()),
        ));
        out.push((
            "rsa2-verify-fixed-backend/ring".into(),
            steady(Alipay::new, |a| a.ring_verify()),
        ));
    }
    out.push((
        "hmac-webhook-1KiB/paystate".into(),
        steady(HmacWebhook::new, |w| w.verify()),
    ));
    out.push((
        "hmac-webhook-1KiB/sha256".into(),
        steady(HmacWebhook::new, |w| w.sha256()),
    ));
}

fn all_cases() -> Vec<(String, Runner)> {
    let mut out = Vec::new();
    engine_cases(&mut out);
    guard_cases(&mut out);
    snapshot_cases(&mut out);
    signature_cases(&mut out);
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cases = all_cases();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["list"] => {
            for (name, _) in &cases {
                println!("{name}");
            }
        }
        ["run", name, iters] => {
            let iters: u64 = iters.parse().expect("ITERS is a number");
            let Some((_, run)) = cases.iter().find(|(n, _)| n == name) else {
                eprintln!("no case {name:?}; `icount list` lists them");
                std::process::exit(2);
            };
            run(iters);
        }
        _ => {
            // As `cargo bench` runs it: every case once, so a broken case shows up.
            common::machines::check_agreement();
            for (_, run) in &cases {
                run(1);
            }
            println!(
                "icount: {} cases ran once; count instructions with benches/icount.sh",
                cases.len()
            );
        }
    }
}
