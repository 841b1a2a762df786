//! Snapshot format: golden bytes pin version 1, and every corruption is a typed error.
#![cfg(feature = "serde")]

use paystate::snapshot::{self, SnapshotError};
use paystate::{
    Currency, EventId, Input, InvariantError, LateSuccess, Money, Outcome, Payment, RefundId,
    Timestamp,
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

/// Golden bytes: an accidental change of the wire format fails here. A deliberate change
/// needs a new FORMAT_VERSION.
#[test]
fn golden_bytes_pin_format_version_1() {
    assert_eq!(snapshot::FORMAT_VERSION, 1);
    assert_eq!(
        hex(&encode(&fresh())),
        "018f4e9c0180e2cfaa060188f0cfaa0600000000000000"
    );
    assert_eq!(
        hex(&encode(&succeeded())),
        "018f4e9c0180e2cfaa060188f0cfaa068f4e000200020204c410804797efcb9b61f0912c1b380651ed97e21d0b18e5570b31e3ffebb5ed786311b871bd2313bd24f3577a3e30b500"
    );
    assert_eq!(
        hex(&encode(&three_refunds())),
        "018f4e9c0180e2cfaa060188f0cfaa068f4ef02e0500020504c410804797efcb9b61f0912c1b380651ed97e21d0b18e5570b31e3ffebb5ed786311b871bd2313bd24f3577a3e30b5fdd46fce626f2a2dd78b4efab1fc2a5dbef23a5cc5d231052ebd63a377746284b2d7d00137839eca89893e83011150f709a6d2296e5c8169077ea2a1e6310fffed5b28b4f1e6502d036a7a428c50f5a864e807146b82e627e4bfcad00f921a5bf2829e141db817"
    );
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
    assert_eq!(snapshot::decode::<8, 16>(&[]), Err(SnapshotError::Empty));
    let mut v2 = bytes.clone();
    v2[0] = 2;
    assert_eq!(
        snapshot::decode::<8, 16>(&v2),
        Err(SnapshotError::UnknownVersion(2))
    );
    for cut in 1..bytes.len() {
        assert!(
            snapshot::decode::<8, 16>(&bytes[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
    bytes.push(0);
    assert_eq!(
        snapshot::decode::<8, 16>(&bytes),
        Err(SnapshotError::TrailingBytes)
    );
}

#[test]
fn refuses_a_forged_snapshot_that_breaks_an_invariant() {
    // Forge by hand: fresh() fields, then set paid/refunded. Layout: see the module docs.
    let forge = |paid: u8, refunded: u8, status: u8| -> Vec<u8> {
        let mut b = vec![1];
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
        snapshot::decode::<8, 16>(&forge(15, 0, 2)).map(|p| p.version()),
        Ok(3),
        "the honest one decodes"
    );
    let err = |b: Vec<u8>| snapshot::decode::<8, 16>(&b).unwrap_err();
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
        snapshot::decode::<8, 16>(&zero_amount).unwrap_err(),
        SnapshotError::Invariant(InvariantError::ZeroAmount)
    );
}

#[test]
fn refuses_more_entries_than_capacity_and_small_buffers() {
    let p = three_refunds();
    let bytes = encode(&p);
    assert!(snapshot::decode::<8, 16>(&bytes).is_ok());
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
        if let Ok(p) = snapshot::decode::<8, 16>(&bytes) {
            prop_assert!(p.check_invariants().is_ok());
            prop_assert_eq!(encode(&p), bytes);
        }
    }

    #[test]
    fn mutated_snapshots_are_errors_or_valid_payments(flip in 0usize..200, bit in 0u8..8) {
        let mut bytes = encode(&three_refunds());
        let i = flip % bytes.len();
        bytes[i] ^= 1 << bit;
        if let Ok(p) = snapshot::decode::<8, 16>(&bytes) {
            prop_assert!(p.check_invariants().is_ok());
        }
    }
}
