//! The payments whose snapshots are measured, and the plain struct postcard encodes as the
//! baseline.

use paystate::{Currency, EventId, Input, LateSuccess, Money, Payment, RefundId, Timestamp};
use serde::{Deserialize, Serialize};

/// The snapshot's fields (docs/spec.md §5, docs/snapshot-format.md format 2), as a host would
/// declare them for postcard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plain {
    pub amount: u64,
    pub currency: u16,
    pub created_at: u64,
    pub expires_at: Option<u64>,
    pub paid: u64,
    pub refunded: u64,
    pub version: u32,
    pub policy: u8,
    pub status: u8,
    pub events: heapless::Vec<([u8; 16], [u8; 8]), 8>,
    pub refunds: heapless::Vec<([u8; 8], u64), 16>,
    /// Bit 0: a `close_trade` is outstanding.
    pub obligations: u8,
}

impl Plain {
    /// The same fields as `p`'s snapshot, read back from its bytes (the event ring and the
    /// refund list are private to the engine).
    pub fn of(p: &Payment) -> Plain {
        let mut buf = [0u8; paystate::snapshot::MAX_SIZE];
        let bytes = paystate::snapshot::encode(p, &mut buf).expect("fits");
        let plain: Plain = postcard::from_bytes(&bytes[1..]).expect("the same layout");
        assert_eq!(plain.amount, p.amount().minor_units());
        assert_eq!(plain.version, p.version());
        assert_eq!(
            plain.policy,
            match p.late_success() {
                LateSuccess::Refund => 0,
                LateSuccess::Accept => 1,
            }
        );
        plain
    }
}

fn id(s: &str) -> EventId {
    EventId::new(s.as_bytes()).expect("a valid id")
}

fn cny(minor: u64) -> Money {
    Money::from_minor(minor, Currency::CNY)
}

/// A paid order with one partial refund: three events, one refund, a deadline.
pub fn typical() -> Payment {
    let t = Timestamp::from_secs;
    let mut p: Payment = Payment::new(cny(9_999), t(1_764_000_000))
        .expect("a positive amount")
        .with_deadline(t(1_764_001_800));
    let inputs = [
        Input::initiate(id("cmd-create-trade-20261127-000042")),
        Input::succeed(id("ac05099524730693a8b330c5ecf72da9786"), cny(9_999)),
        Input::refund(
            id("ac05099524730693a8b330c5ecf72da9790"),
            RefundId::new(b"refund-000042-1").expect("a valid id"),
            cny(3_000),
        ),
    ];
    for (i, input) in inputs.iter().enumerate() {
        let outcome = p.apply(input, t(1_764_000_100 + i as u64));
        assert_eq!(outcome.name(), "applied");
    }
    p
}

/// The largest payment of the default capacities: 8 remembered events, 16 refunds.
pub fn full() -> Payment {
    let t = Timestamp::from_secs;
    let mut p: Payment = Payment::new(cny(9_999), t(1_764_000_000))
        .expect("a positive amount")
        .with_deadline(t(1_764_001_800));
    let paid = Input::succeed(id("ac05099524730693a8b330c5ecf72da9786"), cny(9_999));
    assert_eq!(p.apply(&paid, t(1_764_000_100)).name(), "applied");
    for i in 0..16u64 {
        let refund = Input::refund(
            id(&format!("ac05099524730693a8b330c5ecf7{i:08}")),
            RefundId::new(format!("refund-000042-{i}").as_bytes()).expect("a valid id"),
            cny(100 + i),
        );
        assert_eq!(p.apply(&refund, t(1_764_000_200 + i)).name(), "applied");
    }
    assert_eq!(p.refund_count(), 16);
    p
}
