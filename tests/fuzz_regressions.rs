//! Bugs the fuzz targets found (fuzz/), each pinned by the smallest input that showed it.
#![cfg(feature = "serde")]

use paystate::{Currency, EventId, Input, Money, Outcome, Payment, RefundId, Timestamp, snapshot};

fn t(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn round_trip(p: &Payment) -> Payment {
    let mut buf = [0u8; snapshot::MAX_SIZE];
    let bytes = snapshot::encode(p, &mut buf).unwrap();
    snapshot::decode(bytes).unwrap()
}

/// Found by `engine`: once a payment had applied more inputs than it remembers (8), its
/// restored snapshot compared unequal to it, although both hold the same events and answer
/// every input alike. Equality looked at where the newest event sat in the ring buffer, which
/// a snapshot (oldest first) does not record. docs/spec.md §2.5 item 7: restoring a snapshot
/// yields an equal payment.
#[test]
fn a_payment_that_forgot_events_equals_its_restored_snapshot() {
    let price = Money::from_minor(2_560, Currency::JPY);
    let mut p: Payment = Payment::new(price, t(1_000)).unwrap();
    let succeed = Input::succeed(EventId::new(b"n1").unwrap(), price);
    assert!(matches!(p.apply(&succeed, t(1_001)), Outcome::Applied(_)));
    for i in 0..9u64 {
        let refund = Input::refund(
            EventId::new(format!("rn{i}").as_bytes()).unwrap(),
            RefundId::new(format!("r{i}").as_bytes()).unwrap(),
            Money::from_minor(10, Currency::JPY),
        );
        assert!(matches!(
            p.apply(&refund, t(1_002 + i)),
            Outcome::Applied(_)
        ));
    }
    let restored = round_trip(&p);
    assert_eq!(restored, p);
    // Equal means alike in every answer, too: the oldest remembered event is still a
    // duplicate, the forgotten one is not remembered.
    assert!(!restored.remembers(EventId::new(b"n1").unwrap()));
    assert!(restored.remembers(EventId::new(b"rn1").unwrap()));
    let mut q = restored.clone();
    let redelivered = Input::refund(
        EventId::new(b"rn1").unwrap(),
        RefundId::new(b"r1").unwrap(),
        Money::from_minor(10, Currency::JPY),
    );
    assert_eq!(q.apply(&redelivered, t(2_000)), Outcome::Duplicate);
    assert_eq!(p.clone().apply(&redelivered, t(2_000)), Outcome::Duplicate);
}
