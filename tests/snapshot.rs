//! Snapshot format: golden bytes pin versions 1 and 2, version 1 is upgraded, and every
//! corruption is a typed error.
#![cfg(feature = "serde")]

use paystate::snapshot::{self, SnapshotError};
use paystate::{
    Currency, Effect, EventId, Input, InvariantError, LateSuccess, Money, Outcome, Payment,
    RefundId, Timestamp,
};
use proptest::prelude::*;

fn cny(minor: u64) -> Money {
    Money::from_minor(minor, Currency::CNY)
}

fn t(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn apply(p: &mut Payment, input: Input) {
    assert!(matches!(
        p.apply(&input, t(1_700_000_100)),
        Outcome::Applied(_)
    ));
}

fn fresh() -> Payment {
    Payment::new(cny(9_999), t(1_700_000_000))
        .unwrap()
        .with_deadline(t(1_700_001_800))
}

fn succeeded() -> Payment {
    let mut p = fresh();
    apply(&mut p, Input::initiate(EventId::new(b"e1").unwrap()));
    apply(
        &mut p,
        Input::succeed(EventId::new(b"n1").unwrap(), cny(9_999)),
    );
    p
}

fn three_refunds() -> Payment {
    let mut p = succeeded();
    for (i, amount) in [1_000, 2_000, 3_000].into_iter().enumerate() {
        let e = format!("rn{i}");
        let r = format!("r{i}");
        apply(
            &mut p,
            Input::refund(
                EventId::new(e.as_bytes()).unwrap(),
                RefundId::new(r.as_bytes()).unwrap(),
                cny(amount),
            ),
        );
    }
    p
}

fn encode(p: &Payment) -> Vec<u8> {
    let mut buf = [0u8; snapshot::MAX_SIZE];
    snapshot::encode(p, &mut buf).unwrap().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Version-1 snapshots written by the previous release (golden bytes of `fresh`,
/// `succeeded` and `three_refunds`, before obligations existed).
const V1_FRESH: &str = "018f4e9c0180e2cfaa060188f0cfaa0600000000000000";
const V1_SUCCEEDED: &str = "018f4e9c0180e2cfaa060188f0cfaa068f4e000200020204c410804797efcb9b61f0912c1b380651ed97e21d0b18e5570b31e3ffebb5ed786311b871bd2313bd24f3577a3e30b500";
const V1_THREE_REFUNDS: &str = "018f4e9c0180e2cfaa060188f0cfaa068f4ef02e0500020504c410804797efcb9b61f0912c1b380651ed97e21d0b18e5570b31e3ffebb5ed786311b871bd2313bd24f3577a3e30b5fdd46fce626f2a2dd78b4efab1fc2a5dbef23a5cc5d231052ebd63a377746284b2d7d00137839eca89893e83011150f709a6d2296e5c8169077ea2a1e6310fffed5b28b4f1e6502d036a7a428c50f5a864e807146b82e627e4bfcad00f921a5bf2829e141db817";
/// A version-1 `cancelled` payment with nothing paid (cancelled by the merchant): the fields
/// of `cancelled()` in the version-1 layout the three above pin.
const V1_CANCELLED: &str = "018f4e9c0180e2cfaa060188f0cfaa06000001000401dc4cbdfdda0f9a7b537a1f4eb9b0959b3da3a6c8fbbc38c700";

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn cancelled() -> Payment {
    let mut p = fresh();
    apply(&mut p, Input::cancel(EventId::new(b"c1").unwrap()));
    p
}

/// Golden bytes: an accidental change of the wire format fails here. A deliberate change
/// needs a new FORMAT_VERSION. Version 2 is version 1's fields, then the obligations byte.
#[test]
fn golden_bytes_pin_format_version_2() {
    assert_eq!(snapshot::FORMAT_VERSION, 2);
    let v2 = |v1: &str, obligations: &str| format!("02{}{obligations}", &v1[2..]);
    assert_eq!(hex(&encode(&fresh())), v2(V1_FRESH, "00"));
    assert_eq!(hex(&encode(&succeeded())), v2(V1_SUCCEEDED, "00"));
    assert_eq!(hex(&encode(&three_refunds())), v2(V1_THREE_REFUNDS, "00"));
    // The close the cancel asked for is owed: bit 0.
    assert_eq!(hex(&encode(&cancelled())), v2(V1_CANCELLED, "01"));
    assert_eq!(
        hex(&encode(&cancelled())),
        "028f4e9c0180e2cfaa060188f0cfaa06000001000401dc4cbdfdda0f9a7b537a1f4eb9b0959b3da3a6c8fbbc38c70001"
    );
}

/// docs/spec.md §5: every earlier version still decodes, upgraded.
#[test]
fn version_1_snapshots_decode_and_upgrade() {
    for (v1, now) in [
        (V1_FRESH, fresh()),
        (V1_SUCCEEDED, succeeded()),
        (V1_THREE_REFUNDS, three_refunds()),
    ] {
        let old: Payment = snapshot::decode(&unhex(v1)).unwrap();
        assert_eq!(old, now);
        assert!(old.pending_effects().is_empty());
    }
    // A version-1 cancelled payment with nothing paid upgrades with its close outstanding:
    // closing a closed trade is harmless, forgetting an open one is not.
    let old: Payment = snapshot::decode(&unhex(V1_CANCELLED)).unwrap();
    assert_eq!(old, cancelled());
    assert_eq!(old.pending_effects().as_slice(), &[Effect::CloseTrade]);
    // A version-1 cancelled payment with a late capture owes the refund, not the close.
    let mut late = cancelled();
    apply(
        &mut late,
        Input::succeed(EventId::new(b"late").unwrap(), cny(9_999)),
    );
    let mut v1 = encode(&late);
    v1[0] = 1;
    assert_eq!(v1.pop(), Some(0), "a late capture discharged the close");
    let old: Payment = snapshot::decode(&v1).unwrap();
    assert_eq!(old, late);
    assert_eq!(
        old.pending_effects().as_slice(),
        &[Effect::RefundRequired {
            amount: cny(9_999),
            refund_id: late.refund_request_id()
        }]
    );
}

#[test]
fn refuses_obligations_a_payment_cannot_owe() {
    // Unknown obligation bits.
    let mut bytes = encode(&cancelled());
    *bytes.last_mut().unwrap() = 0x03;
    assert_eq!(snapshot::decode(&bytes), Err(SnapshotError::Malformed));
    // A close owed by a succeeded payment.
    let mut bytes = encode(&succeeded());
    *bytes.last_mut().unwrap() = 0x01;
    assert_eq!(
        snapshot::decode(&bytes),
        Err(SnapshotError::Invariant(InvariantError::CloseObligation))
    );
    // A version-2 snapshot without its obligations byte is truncated, not version 1.
    let mut bytes = encode(&cancelled());
    bytes.pop();
    assert_eq!(snapshot::decode(&bytes), Err(SnapshotError::Malformed));
}

#[test]
fn round_trips_and_sizes() {
    for p in [fresh(), succeeded(), three_refunds()] {
        let bytes = encode(&p);
        let back: Payment = snapshot::decode(&bytes).unwrap();
        assert_eq!(back, p);
        assert!(bytes.len() <= snapshot::MAX_SIZE);
    }
}

#[test]
fn refuses_unknown_versions_trailing_bytes_and_truncation() {
    let mut bytes = encode(&succeeded());
    assert_eq!(snapshot::decode(&[]), Err(SnapshotError::Empty));
    for unknown in [0, 3, 0xff] {
        let mut other = bytes.clone();
        other[0] = unknown;
        assert_eq!(
            snapshot::decode(&other),
            Err(SnapshotError::UnknownVersion(unknown))
        );
    }
    for cut in 1..bytes.len() {
        assert!(
            snapshot::decode(&bytes[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
    bytes.push(0);
    assert_eq!(snapshot::decode(&bytes), Err(SnapshotError::TrailingBytes));
}

#[test]
fn refuses_a_forged_snapshot_that_breaks_an_invariant() {
    // Forge by hand: fresh() fields, then set paid/refunded. Layout: see the module docs.
    let forge = |paid: u8, refunded: u8, status: u8| -> Vec<u8> {
        let mut b = vec![1]; // version 1: no obligations byte
        b.push(0x0f); // amount 15 (varint)
        b.extend([0x9c, 0x01]); // currency 156 (CNY)
        b.push(0x01); // created_at 1
        b.push(0x00); // expires_at None
        b.push(paid);
        b.push(refunded);
        b.push(0x03); // version 3
        b.push(0x00); // policy refund
        b.push(status);
        b.push(0x00); // no events
        b.push(0x00); // no refunds
        b
    };
    assert_eq!(
        snapshot::decode(&forge(15, 0, 2)).map(|p| p.version()),
        Ok(3),
        "the honest one decodes"
    );
    let err = |b: Vec<u8>| snapshot::decode(&b).unwrap_err();
    assert_eq!(
        err(forge(15, 16, 2)),
        SnapshotError::Invariant(InvariantError::RefundedAbovePaid)
    );
    assert_eq!(
        err(forge(7, 0, 2)),
        SnapshotError::Invariant(InvariantError::PaidNotAmount)
    );
    assert_eq!(
        err(forge(0, 0, 2)),
        SnapshotError::Invariant(InvariantError::SucceededUnpaid)
    );
    assert_eq!(
        err(forge(15, 15, 2)),
        SnapshotError::Invariant(InvariantError::RefundedStatus)
    );
    assert_eq!(
        err(forge(15, 0, 0)),
        SnapshotError::Invariant(InvariantError::OpenButPaid)
    );
    // refunded 15 without refund records
    assert_eq!(
        err(forge(15, 15, 5)),
        SnapshotError::Invariant(InvariantError::RefundBook)
    );
    assert_eq!(err(forge(0, 0, 9)), SnapshotError::Malformed);
    let mut zero_amount = forge(0, 0, 0);
    zero_amount[1] = 0; // amount 0
    assert_eq!(
        snapshot::decode(&zero_amount).unwrap_err(),
        SnapshotError::Invariant(InvariantError::ZeroAmount)
    );
}

#[test]
fn refuses_more_entries_than_capacity_and_small_buffers() {
    let p = three_refunds();
    let bytes = encode(&p);
    assert!(snapshot::decode(&bytes).is_ok());
    let mut tiny = [0u8; 8];
    assert_eq!(
        snapshot::encode(&p, &mut tiny).unwrap_err(),
        SnapshotError::BufferTooSmall
    );
    assert_eq!(
        snapshot::encode(&p, &mut []).unwrap_err(),
        SnapshotError::BufferTooSmall
    );
}

#[test]
fn a_restored_payment_behaves_like_the_original() {
    let mut original = three_refunds().with_late_success(LateSuccess::Accept);
    let mut restored: Payment = snapshot::decode(&encode(&original)).unwrap();
    // The restored one still recognises the remembered event ids and refund ids.
    let redelivered = Input::refund(
        EventId::new(b"rn2").unwrap(),
        RefundId::new(b"r2").unwrap(),
        cny(3_000),
    );
    assert_eq!(restored.apply(&redelivered, t(0)), Outcome::Duplicate);
    let next = Input::refund(
        EventId::new(b"rn9").unwrap(),
        RefundId::new(b"r9").unwrap(),
        cny(3_999),
    );
    assert_eq!(restored.apply(&next, t(0)), original.apply(&next, t(0)));
    assert_eq!(restored, original);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_never_yield_a_broken_payment(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(p) = snapshot::decode(&bytes) {
            prop_assert!(p.check_invariants().is_ok());
            if bytes[0] == snapshot::FORMAT_VERSION {
                prop_assert_eq!(encode(&p), bytes);
            } else {
                // An upgraded version 1: the same fields, then the obligations byte.
                let again = encode(&p);
                prop_assert_eq!(&again[1..bytes.len()], &bytes[1..]);
            }
        }
    }

    #[test]
    fn mutated_snapshots_are_errors_or_valid_payments(flip in 0usize..200, bit in 0u8..8) {
        let mut bytes = encode(&three_refunds());
        let i = flip % bytes.len();
        bytes[i] ^= 1 << bit;
        if let Ok(p) = snapshot::decode(&bytes) {
            prop_assert!(p.check_invariants().is_ok());
        }
    }
}
