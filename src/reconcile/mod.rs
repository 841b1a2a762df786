//! Reconciliation (docs/spec.md §6): the host's ledger against the provider's bill, streaming.
//!
//! Both sides are iterators of [`Entry`] sorted by order id (bytewise, strictly increasing —
//! the order a database `ORDER BY order_id` on a binary column and Alipay's downloaded bill,
//! once sorted, give). [`reconcile`] walks them together like a merge join and yields every
//! [`Discrepancy`]: O(n + m) time, constant memory, no allocation. An unsorted or repeated id
//! on either side is an error, not a silently wrong report.
//!
//! The provider's side comes from its bill file: [`bill`] reads Alipay's trade detail CSV and
//! WeChat Pay's trade bill line by line into trades and refunds per order.
//!
//! ```
//! use paystate::reconcile::{Discrepancy, Entry, reconcile};
//! use paystate::{Currency, Money, Status};
//!
//! let cny = |m| Money::from_minor(m, Currency::CNY);
//! let ours = [
//!     Entry::new(b"o1", Status::Succeeded, cny(9_999), cny(0)),
//!     Entry::new(b"o2", Status::Cancelled, cny(0), cny(0)),
//! ];
//! let bill = [
//!     Entry::new(b"o1", Status::Succeeded, cny(9_999), cny(0)),
//!     Entry::new(b"o2", Status::Succeeded, cny(500), cny(0)), // paid after we cancelled
//!     Entry::new(b"o3", Status::Succeeded, cny(100), cny(0)), // we never heard of it
//! ];
//! let found: Vec<_> = reconcile(ours, bill).collect::<Result<_, _>>()?;
//! assert!(matches!(found[0], Discrepancy::AmountMismatch { .. }));
//! assert!(matches!(found[1], Discrepancy::StatusMismatch { .. }));
//! assert!(matches!(found[2], Discrepancy::MissingLocally(e) if e.order_id == b"o3"));
//! # Ok::<(), paystate::reconcile::ReconcileError>(())
//! ```

pub mod bill;

use core::cmp::Ordering;
use core::fmt;

use crate::money::Money;
use crate::payment::Status;

/// One order on one side: its id, status, captured amount and refunded amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Entry<'a> {
    /// The order id (Alipay `out_trade_no`).
    pub order_id: &'a [u8],
    /// The status, on the provider's side as the host maps its bill's trade state.
    pub status: Status,
    /// The captured amount.
    pub paid: Money,
    /// The refunded amount.
    pub refunded: Money,
}

impl<'a> Entry<'a> {
    /// An entry.
    pub const fn new(order_id: &'a [u8], status: Status, paid: Money, refunded: Money) -> Self {
        Entry {
            order_id,
            status,
            paid,
            refunded,
        }
    }

    /// A payment's entry in the host's ledger.
    pub fn of<const E: usize, const R: usize>(
        order_id: &'a [u8],
        payment: &crate::Payment<E, R>,
    ) -> Self {
        Entry::new(
            order_id,
            payment.status(),
            payment.paid(),
            payment.refunded(),
        )
    }
}

/// A difference between the ledger and the bill. The host investigates each one: feed the
/// provider's facts in as inputs (a missed notification), or escalate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Discrepancy<'a> {
    /// The provider has the order; the ledger does not.
    MissingLocally(Entry<'a>),
    /// The ledger has the order; the provider's bill does not (expected for orders that never
    /// reached the provider, such as `pending` ones: the host filters as it sees fit).
    MissingAtProvider(Entry<'a>),
    /// Both have it, with different money (`paid`, `refunded` or the currency). Reported
    /// before a status mismatch of the same order.
    AmountMismatch {
        /// The ledger's entry.
        local: Entry<'a>,
        /// The bill's entry.
        provider: Entry<'a>,
    },
    /// Both have it, with different statuses.
    StatusMismatch {
        /// The ledger's entry.
        local: Entry<'a>,
        /// The bill's entry.
        provider: Entry<'a>,
    },
}

/// Which input of [`reconcile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Side {
    /// The host's ledger.
    Local,
    /// The provider's bill.
    Provider,
}

/// An input that is not sorted by order id, or repeats one. Reconciliation stops: a report
/// from unsorted input would be wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReconcileError {
    /// An order id not strictly greater than the one before it on that side.
    OutOfOrder {
        /// The side it came from.
        side: Side,
    },
}

impl fmt::Display for ReconcileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReconcileError::OutOfOrder { side: Side::Local } => {
                f.write_str("the ledger is not sorted by order id, or repeats one")
            }
            ReconcileError::OutOfOrder {
                side: Side::Provider,
            } => f.write_str("the provider's bill is not sorted by order id, or repeats one"),
        }
    }
}

impl core::error::Error for ReconcileError {}

/// One side, with its next entry looked at and the previous id kept for the order check.
struct Cursor<'a, I> {
    iter: I,
    next: Option<Entry<'a>>,
    last: Option<&'a [u8]>,
    side: Side,
}

impl<'a, I: Iterator<Item = Entry<'a>>> Cursor<'a, I> {
    fn new(mut iter: I, side: Side) -> Self {
        let next = iter.next();
        Cursor {
            iter,
            next,
            last: None,
            side,
        }
    }

    fn take(&mut self) -> Result<Option<Entry<'a>>, ReconcileError> {
        let Some(entry) = self.next else {
            return Ok(None);
        };
        if self.last.is_some_and(|last| last >= entry.order_id) {
            return Err(ReconcileError::OutOfOrder { side: self.side });
        }
        self.last = Some(entry.order_id);
        self.next = self.iter.next();
        Ok(Some(entry))
    }
}

/// The discrepancies between `local` and `provider`, in order-id order. See the module docs.
pub struct Reconcile<'a, L, P> {
    local: Cursor<'a, L>,
    provider: Cursor<'a, P>,
    /// A status mismatch found together with an amount mismatch, reported next.
    pending: Option<Discrepancy<'a>>,
    failed: bool,
}

/// Compares the host's ledger with the provider's bill, both sorted by order id.
pub fn reconcile<'a, L, P>(local: L, provider: P) -> Reconcile<'a, L::IntoIter, P::IntoIter>
where
    L: IntoIterator<Item = Entry<'a>>,
    P: IntoIterator<Item = Entry<'a>>,
{
    Reconcile {
        local: Cursor::new(local.into_iter(), Side::Local),
        provider: Cursor::new(provider.into_iter(), Side::Provider),
        pending: None,
        failed: false,
    }
}

impl<'a, L, P> Reconcile<'a, L, P>
where
    L: Iterator<Item = Entry<'a>>,
    P: Iterator<Item = Entry<'a>>,
{
    fn step(&mut self) -> Result<Option<Discrepancy<'a>>, ReconcileError> {
        if let Some(d) = self.pending.take() {
            return Ok(Some(d));
        }
        loop {
            let order = match (&self.local.next, &self.provider.next) {
                (None, None) => return Ok(None),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(l), Some(p)) => l.order_id.cmp(p.order_id),
            };
            match order {
                Ordering::Less => {
                    return Ok(self.local.take()?.map(Discrepancy::MissingAtProvider));
                }
                Ordering::Greater => {
                    return Ok(self.provider.take()?.map(Discrepancy::MissingLocally));
                }
                Ordering::Equal => {
                    let (Some(local), Some(provider)) = (self.local.take()?, self.provider.take()?)
                    else {
                        return Ok(None);
                    };
                    let money = local.paid != provider.paid || local.refunded != provider.refunded;
                    let status = local.status != provider.status;
                    let status_mismatch = Discrepancy::StatusMismatch { local, provider };
                    match (money, status) {
                        (true, true) => {
                            self.pending = Some(status_mismatch);
                            return Ok(Some(Discrepancy::AmountMismatch { local, provider }));
                        }
                        (true, false) => {
                            return Ok(Some(Discrepancy::AmountMismatch { local, provider }));
                        }
                        (false, true) => return Ok(Some(status_mismatch)),
                        (false, false) => continue,
                    }
                }
            }
        }
    }
}

impl<'a, L, P> Iterator for Reconcile<'a, L, P>
where
    L: Iterator<Item = Entry<'a>>,
    P: Iterator<Item = Entry<'a>>,
{
    type Item = Result<Discrepancy<'a>, ReconcileError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(found) => found.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
