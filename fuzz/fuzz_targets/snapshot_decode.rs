//! Snapshots from arbitrary bytes (docs/spec.md §5, §2.5).
//!
//! The input is the snapshot itself, so the seed corpus holds real snapshots. Decoding never
//! panics or allocates; what decodes satisfies every invariant, re-encodes to an equal payment
//! in no more bytes, decodes the same with larger capacities, and stays within the invariants
//! under every kind of input applied to it (each twice, to check idempotence).
#![no_main]

use libfuzzer_sys::fuzz_target;
use paystate::snapshot::{self, FORMAT_VERSION, SnapshotError};
use paystate::{Currency, EventId, Input, Money, Payment, RefundId, Timestamp};
use paystate_fuzz::{check_state, check_step, check_twice, no_alloc, round_trip};

/// Inputs of every kind, relative to the payment, fed in order to a decoded payment.
fn battery(p: &Payment) -> Vec<Input> {
    let id = |s: &str| EventId::new(s.as_bytes()).expect("a valid event id");
    let refund = |s: &str| RefundId::new(s.as_bytes()).expect("a valid refund id");
    let amount = p.amount();
    let c = p.currency();
    let other = if c == Currency::USD {
        Currency::EUR
    } else {
        Currency::USD
    };
    let plus_one = Money::from_minor(amount.minor_units().saturating_add(1), c);
    vec![
        Input::initiate(id("fz-initiate")),
        Input::succeed(id("fz-wrong-amount"), plus_one),
        Input::succeed(
            id("fz-wrong-currency"),
            Money::from_minor(amount.minor_units(), other),
        ),
        Input::refund(
            id("fz-refund-early"),
            refund("fz-r0"),
            Money::from_minor(1, c),
        ),
        Input::fail(id("fz-fail"), "PAYERROR").expect("a valid reason"),
        Input::succeed(id("fz-succeed"), amount),
        Input::cancel(id("fz-cancel")),
        Input::close(id("fz-close")),
        Input::refund(id("fz-refund-1"), refund("fz-r1"), Money::from_minor(1, c)),
        Input::refund(id("fz-refund-zero"), refund("fz-r2"), Money::zero(c)),
        Input::refund(id("fz-refund-too-much"), refund("fz-r3"), plus_one),
        Input::refund(
            id("fz-refund-1-again"),
            refund("fz-r1"),
            Money::from_minor(2, c),
        ),
        Input::refund(id("fz-refund-rest"), refund("fz-r4"), p.balance()),
    ]
}

fn check(decoded: &Payment, data: &[u8]) -> Result<(), String> {
    check_state(decoded)?;
    let (restored, bytes) = round_trip(decoded)?;
    // A version-1 snapshot is upgraded: the same fields and one obligations byte more.
    let upgrade = usize::from(data.first() == Some(&1));
    if bytes.len() > data.len() + upgrade {
        return Err(format!(
            "re-encoded in {} bytes, more than the {} it was decoded from",
            bytes.len(),
            data.len()
        ));
    }
    // Capacities are not part of the format: larger ones read the same payment.
    let wide: Payment<11, 19> = snapshot::decode_with_capacity(data)
        .map_err(|e| format!("decodes with capacities 8/16 but not 11/19: {e}"))?;
    let mut buf = [0u8; paystate_fuzz::SNAPSHOT_BUF];
    let wide_bytes = snapshot::encode(&wide, &mut buf).map_err(|e| e.to_string())?;
    if *wide_bytes != *bytes {
        return Err("capacities 11/19 re-encode differently".into());
    }

    let mut p = restored;
    let inputs = battery(&p);
    let far = p
        .expires_at()
        .unwrap_or(Timestamp::from_secs(u64::MAX))
        .saturating_add(1);
    let mut now = p.created_at();
    for (i, input) in inputs.iter().enumerate() {
        now = now.saturating_add(1);
        let before = p.clone();
        let first = no_alloc("Payment::apply", || p.apply(input, now));
        check_step(&before, &p, &first).map_err(|e| format!("input {i} {input:?}: {e}"))?;
        let after_first = p.clone();
        let second = no_alloc("Payment::apply", || p.apply(input, now));
        check_step(&after_first, &p, &second)
            .and_then(|()| check_twice(&first, &second))
            .map_err(|e| format!("input {i} {input:?} again: {e}"))?;
        if i == 2 {
            let before = p.clone();
            let tick = no_alloc("Payment::tick", || p.tick(far));
            check_step(&before, &p, &tick).map_err(|e| format!("tick: {e}"))?;
        }
    }
    round_trip(&p).map(|_| ())
}

fuzz_target!(|data: &[u8]| {
    let narrow = no_alloc("snapshot::decode", || snapshot::decode(data));
    match narrow {
        Ok(p) => {
            if let Err(e) = check(&p, data) {
                panic!("{e}\ndecoded: {p:?}");
            }
        }
        Err(SnapshotError::Empty) => assert!(data.is_empty()),
        Err(SnapshotError::UnknownVersion(v)) => {
            assert_eq!(data.first(), Some(&v));
            assert!(v != FORMAT_VERSION && v != 1, "version {v} is readable");
        }
        Err(e) => {
            // Versions 1 (upgraded) and FORMAT_VERSION are read.
            assert!(
                matches!(data.first(), Some(&1)) || data.first() == Some(&FORMAT_VERSION),
                "{e:?}"
            );
            // Larger capacities accept only what is too big for the defaults.
            if let Ok(wide) = snapshot::decode_with_capacity::<11, 19>(data) {
                assert_eq!(e, SnapshotError::Malformed, "{wide:?}");
            }
        }
    }
});
