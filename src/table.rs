//! A fixed-capacity table of open payments, keyed by order id, for hosts without a heap.
//!
//! A POS terminal or a gateway on a microcontroller keeps every payment of its shift in RAM:
//! [`PaymentTable`] holds up to `N` of them, each under the merchant's order id (Alipay
//! `out_trade_no`, 1..=64 bytes, stored exactly so the host can print and resend it). The
//! capacity is in the type; a full table, a duplicate or an unknown order id is an ordinary
//! [`TableError`], never a panic or an allocation.
//!
//! Lookups scan the entries in insertion order: a table holds tens of payments, where a scan
//! of a few kilobytes beats hashing and keeps the iteration order (and so a firmware's log)
//! deterministic.
//!
//! ```
//! use paystate::table::{PaymentTable, TableError};
//! use paystate::{Currency, Effect, EventId, Input, Money, Outcome, Payment, Status, Timestamp};
//!
//! let t = Timestamp::from_secs;
//! let price = Money::parse("12.50", Currency::CNY)?;
//! let mut shift: PaymentTable<4> = PaymentTable::new();
//! shift.insert(b"order-1", Payment::new(price, t(100))?.with_deadline(t(400)))?;
//! shift.insert(b"order-2", Payment::new(price, t(110))?.with_deadline(t(300)))?;
//!
//! let paid = Input::succeed(EventId::new(b"pay-1")?, price);
//! assert!(matches!(shift.apply(b"order-1", &paid, t(120))?, Outcome::Applied(_)));
//! assert_eq!(shift.apply(b"order-9", &paid, t(120)), Err(TableError::UnknownOrder));
//!
//! // Sleep until the earliest deadline, then tick every payment that is due.
//! assert_eq!(shift.next_deadline(), Some(t(300)));
//! let mut closed = 0;
//! shift.tick_due(t(300), |order_id, payment, outcome| {
//!     assert_eq!(order_id.as_bytes(), b"order-2");
//!     assert_eq!(payment.status(), Status::Cancelled);
//!     assert_eq!(outcome.effects(), &[Effect::CloseTrade]);
//!     closed += 1;
//! });
//! assert_eq!((closed, shift.next_deadline()), (1, None));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use crate::payment::input::{IdError, Input, MAX_ID_LEN};
use crate::payment::{Outcome, Payment};
use crate::time::Timestamp;

/// A merchant's order id (Alipay `out_trade_no`): 1..=64 bytes, kept exactly as given.
///
/// `Display` prints it with non-printable bytes escaped (`\xff`), so a log line can never be
/// broken by an id; [`as_bytes`](Self::as_bytes) gives the exact bytes to send to a provider.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(heapless::Vec<u8, MAX_ID_LEN>);

impl OrderId {
    /// Copies `id`; an empty id or one over 64 bytes is an error.
    pub fn new(id: &[u8]) -> Result<OrderId, IdError> {
        if id.is_empty() {
            return Err(IdError { len: 0 });
        }
        heapless::Vec::from_slice(id)
            .map(OrderId)
            .map_err(|_| IdError { len: id.len() })
    }

    /// The exact bytes of the id.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The id as text, when it is UTF-8 (order ids almost always are).
    pub fn as_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.0).ok()
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.escape_ascii())
    }
}

impl fmt::Debug for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrderId(\"{}\")", self.0.escape_ascii())
    }
}

/// Why a table operation was refused. The table is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TableError {
    /// Every slot is taken: finish or [`remove`](PaymentTable::remove) a payment (after
    /// persisting it) before opening another, or refuse the new order.
    Full {
        /// How many payments the table holds.
        capacity: usize,
    },
    /// A payment with this order id is already in the table: order ids must be unique.
    DuplicateOrder,
    /// No payment with this order id is in the table.
    UnknownOrder,
    /// The order id is empty or longer than 64 bytes.
    InvalidOrderId(IdError),
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::Full { capacity } => write!(f, "payment table full ({capacity} payments)"),
            TableError::DuplicateOrder => f.write_str("order id already in the table"),
            TableError::UnknownOrder => f.write_str("no payment with this order id"),
            TableError::InvalidOrderId(e) => write!(f, "invalid order id: {e}"),
        }
    }
}

impl core::error::Error for TableError {}

impl From<IdError> for TableError {
    fn from(e: IdError) -> Self {
        TableError::InvalidOrderId(e)
    }
}

/// Up to `N` payments, each under its order id, in insertion order. `E` and `R` are the
/// payments' event and refund capacities (see [`Payment`]).
///
/// It takes `N × (≈ 580)` bytes with the default capacities and never allocates. The host
/// persists each payment's snapshot after every applied outcome, as for a lone payment, and
/// calls [`tick_due`](Self::tick_due) when the clock reaches [`next_deadline`](Self::next_deadline).
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PaymentTable<const N: usize, const E: usize = 8, const R: usize = 16> {
    entries: heapless::Vec<(OrderId, Payment<E, R>), N>,
}

impl<const N: usize, const E: usize, const R: usize> Default for PaymentTable<N, E, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const E: usize, const R: usize> PaymentTable<N, E, R> {
    /// An empty table. `const`, so it can live in a `static`.
    pub const fn new() -> Self {
        PaymentTable {
            entries: heapless::Vec::new(),
        }
    }

    /// Adds `payment` under `order_id` and returns it. Refused, leaving the table unchanged,
    /// when the id is invalid, already present, or the table is full.
    pub fn insert(
        &mut self,
        order_id: &[u8],
        payment: Payment<E, R>,
    ) -> Result<&mut Payment<E, R>, TableError> {
        let id = OrderId::new(order_id)?;
        if self.position(order_id).is_some() {
            return Err(TableError::DuplicateOrder);
        }
        self.entries
            .push((id, payment))
            .map_err(|_| TableError::Full { capacity: N })?;
        self.entries
            .last_mut()
            .map(|(_, p)| p)
            .ok_or(TableError::Full { capacity: N })
    }

    /// The payment of `order_id`.
    pub fn get(&self, order_id: &[u8]) -> Result<&Payment<E, R>, TableError> {
        self.entries
            .iter()
            .find(|(id, _)| id.as_bytes() == order_id)
            .map(|(_, p)| p)
            .ok_or(TableError::UnknownOrder)
    }

    /// The payment of `order_id`, to [`apply`](Payment::apply) inputs to.
    pub fn get_mut(&mut self, order_id: &[u8]) -> Result<&mut Payment<E, R>, TableError> {
        self.entries
            .iter_mut()
            .find(|(id, _)| id.as_bytes() == order_id)
            .map(|(_, p)| p)
            .ok_or(TableError::UnknownOrder)
    }

    /// Whether a payment with `order_id` is in the table.
    pub fn contains(&self, order_id: &[u8]) -> bool {
        self.position(order_id).is_some()
    }

    /// Feeds `input` to the payment of `order_id` (see [`Payment::apply`]). On
    /// [`Outcome::Applied`] the host persists that payment's new snapshot and carries out the
    /// effects.
    pub fn apply(
        &mut self,
        order_id: &[u8],
        input: &Input,
        now: Timestamp,
    ) -> Result<Outcome, TableError> {
        self.get_mut(order_id).map(|p| p.apply(input, now))
    }

    /// Takes the payment of `order_id` out of the table, freeing its slot. The others keep
    /// their order. Remove a payment only once it is finished and persisted.
    pub fn remove(&mut self, order_id: &[u8]) -> Result<(OrderId, Payment<E, R>), TableError> {
        let at = self.position(order_id).ok_or(TableError::UnknownOrder)?;
        // Move the entry to the end and pop it: the others keep their order, and nothing here
        // can index out of bounds.
        let tail = self
            .entries
            .get_mut(at..)
            .filter(|tail| !tail.is_empty())
            .ok_or(TableError::UnknownOrder)?;
        tail.rotate_left(1);
        self.entries.pop().ok_or(TableError::UnknownOrder)
    }

    /// Every payment with its order id, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&OrderId, &Payment<E, R>)> + '_ {
        self.entries.iter().map(|(id, p)| (id, p))
    }

    /// Every payment with its order id, mutably, in insertion order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&OrderId, &mut Payment<E, R>)> + '_ {
        self.entries.iter_mut().map(|(id, p)| (&*id, p))
    }

    /// The earliest [`next_deadline`](Payment::next_deadline) over all payments: when the
    /// host should next call [`tick_due`](Self::tick_due). `None` when no payment is waiting
    /// for a deadline.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.entries
            .iter()
            .filter_map(|(_, p)| p.next_deadline())
            .min()
    }

    /// Ticks every payment whose deadline is at or before `now` (see [`Payment::tick`]) and
    /// calls `on_applied` for each one that changed, with its order id, its new state and the
    /// outcome (whose effects — [`Effect::CloseTrade`](crate::Effect::CloseTrade) — the host
    /// must carry out after persisting the payment). Returns how many changed. Calling it
    /// early or twice is harmless.
    pub fn tick_due<F>(&mut self, now: Timestamp, mut on_applied: F) -> usize
    where
        F: FnMut(&OrderId, &Payment<E, R>, Outcome),
    {
        let mut applied = 0usize;
        for (id, payment) in self.entries.iter_mut() {
            if payment
                .next_deadline()
                .is_none_or(|deadline| deadline > now)
            {
                continue;
            }
            let outcome = payment.tick(now);
            if matches!(outcome, Outcome::Applied(_)) {
                applied = applied.saturating_add(1);
                on_applied(id, payment, outcome);
            }
        }
        applied
    }

    /// How many payments the table holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table holds no payment.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether every slot is taken (the next [`insert`](Self::insert) would fail).
    pub fn is_full(&self) -> bool {
        self.entries.is_full()
    }

    /// The capacity, `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    fn position(&self, order_id: &[u8]) -> Option<usize> {
        self.entries
            .iter()
            .position(|(id, _)| id.as_bytes() == order_id)
    }
}

impl<const N: usize, const E: usize, const R: usize> fmt::Debug for PaymentTable<N, E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Currency, Effect, EventId, Money, Status};
    use std::format;

    fn t(s: u64) -> Timestamp {
        Timestamp::from_secs(s)
    }

    fn cny(minor: u64) -> Money {
        Money::from_minor(minor, Currency::CNY)
    }

    fn payment(deadline: Option<u64>) -> Payment {
        let p = Payment::new(cny(1250), t(100)).expect("non-zero amount");
        match deadline {
            Some(d) => p.with_deadline(t(d)),
            None => p,
        }
    }

    #[test]
    fn full_table_refuses_and_keeps_its_payments() {
        let mut table: PaymentTable<2> = PaymentTable::new();
        table.insert(b"a", payment(None)).expect("room");
        table.insert(b"b", payment(None)).expect("room");
        assert!(table.is_full());
        let before = table.clone();
        assert_eq!(
            table.insert(b"c", payment(None)).err(),
            Some(TableError::Full { capacity: 2 })
        );
        assert_eq!(table, before);
        // A removed payment frees its slot.
        let (id, _) = table.remove(b"a").expect("present");
        assert_eq!(id.as_bytes(), b"a");
        table.insert(b"c", payment(None)).expect("a slot was freed");
        let order: std::vec::Vec<&[u8]> = table.iter().map(|(id, _)| id.as_bytes()).collect();
        assert_eq!(order, [b"b".as_slice(), b"c".as_slice()]);
    }

    #[test]
    fn duplicate_unknown_and_invalid_ids_are_typed_errors() {
        let mut table: PaymentTable<4> = PaymentTable::new();
        table.insert(b"o-1", payment(None)).expect("room");
        assert_eq!(
            table.insert(b"o-1", payment(None)).err(),
            Some(TableError::DuplicateOrder)
        );
        assert_eq!(table.get(b"o-2").err(), Some(TableError::UnknownOrder));
        assert_eq!(table.remove(b"o-2").err(), Some(TableError::UnknownOrder));
        let init = Input::initiate(EventId::new(b"e").expect("id"));
        assert_eq!(
            table.apply(b"o-2", &init, t(1)),
            Err(TableError::UnknownOrder)
        );
        assert_eq!(
            table.insert(b"", payment(None)).err(),
            Some(TableError::InvalidOrderId(IdError { len: 0 }))
        );
        assert_eq!(
            table.insert(&[b'x'; 65], payment(None)).err(),
            Some(TableError::InvalidOrderId(IdError { len: 65 }))
        );
        table
            .insert(&[b'x'; 64], payment(None))
            .expect("64 bytes is allowed");
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn order_ids_are_kept_exactly_and_printed_safely() {
        let id = OrderId::new(b"T-2024\n\xff").expect("valid length");
        assert_eq!(id.as_bytes(), b"T-2024\n\xff");
        assert_eq!(id.as_str(), None);
        assert_eq!(format!("{id}"), "T-2024\\n\\xff");
        assert_eq!(
            OrderId::new(b"shift-7").expect("id").as_str(),
            Some("shift-7")
        );
    }

    #[test]
    fn apply_reaches_only_the_named_payment() {
        let mut table: PaymentTable<4> = PaymentTable::new();
        table.insert(b"a", payment(None)).expect("room");
        table.insert(b"b", payment(None)).expect("room");
        let paid = Input::succeed(EventId::new(b"n-1").expect("id"), cny(1250));
        assert!(matches!(
            table.apply(b"b", &paid, t(5)),
            Ok(Outcome::Applied(_))
        ));
        assert_eq!(table.apply(b"b", &paid, t(6)), Ok(Outcome::Duplicate));
        assert_eq!(table.get(b"b").map(Payment::status), Ok(Status::Succeeded));
        assert_eq!(table.get(b"a").map(Payment::version), Ok(0));
    }

    #[test]
    fn next_deadline_is_the_earliest_open_one() {
        let mut table: PaymentTable<4> = PaymentTable::new();
        assert_eq!(table.next_deadline(), None);
        table.insert(b"late", payment(Some(900))).expect("room");
        table.insert(b"none", payment(None)).expect("room");
        table.insert(b"soon", payment(Some(300))).expect("room");
        assert_eq!(table.next_deadline(), Some(t(300)));
        // A paid payment no longer waits for its deadline.
        let paid = Input::succeed(EventId::new(b"n").expect("id"), cny(1250));
        let _ = table.apply(b"soon", &paid, t(200));
        assert_eq!(table.next_deadline(), Some(t(900)));
    }

    #[test]
    fn tick_due_cancels_exactly_the_expired_payments() {
        let mut table: PaymentTable<4> = PaymentTable::new();
        table.insert(b"a", payment(Some(300))).expect("room");
        table.insert(b"b", payment(Some(500))).expect("room");
        table.insert(b"c", payment(Some(300))).expect("room");
        let mut seen = std::vec::Vec::new();
        let n = table.tick_due(t(300), |id, p, outcome| {
            seen.push((id.clone(), p.status(), outcome));
        });
        assert_eq!(n, 2);
        let close = Outcome::Applied(crate::Effects::from([Effect::CloseTrade]));
        assert_eq!(
            seen,
            [
                (
                    OrderId::new(b"a").expect("id"),
                    Status::Cancelled,
                    close.clone()
                ),
                (OrderId::new(b"c").expect("id"), Status::Cancelled, close),
            ]
        );
        assert_eq!(table.get(b"b").map(Payment::status), Ok(Status::Pending));
        // Ticking again at the same time changes nothing.
        assert_eq!(table.tick_due(t(300), |_, _, _| unreachable!()), 0);
        assert_eq!(table.next_deadline(), Some(t(500)));
    }
}
