//! Bill lines grouped per order, in a `BTreeMap` (feature `alloc`).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{BillError, BillErrorKind, BillLine, BillLineKind, BillReader};
use crate::money::Money;
use crate::payment::Status;
use crate::reconcile::Entry;

/// One order's sums over the bill lines added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct OrderTotals {
    /// The sum of its trade lines.
    pub paid: Money,
    /// The sum of its refund lines.
    pub refunded: Money,
}

impl OrderTotals {
    /// The status a bill shows: `Refunded` when something was refunded and the refunds reach
    /// what was paid (an order whose only line is a refund, its trade in an earlier day's bill,
    /// too), `Succeeded` otherwise. A day's bill lists captures and refunds only, so nothing
    /// else can be told from it.
    pub fn status(&self) -> Status {
        if !self.refunded.is_zero() && self.refunded.minor_units() >= self.paid.minor_units() {
            Status::Refunded
        } else {
            Status::Succeeded
        }
    }
}

/// Bill lines summed per order, sorted by order id: the provider's side of
/// [`reconcile`](crate::reconcile::reconcile), which needs one entry per order in order-id
/// order while a bill lists trades and refunds in time order. Lines of several bills (several
/// days, or both providers) can be added to the same totals.
///
/// ```
/// use paystate::reconcile::bill::{AlipayBill, BillTotals};
/// use paystate::reconcile::{Discrepancy, Entry, reconcile};
/// use paystate::{Currency, Money, Status};
///
/// let file = "#支付宝业务明细查询\n\
///             商户订单号,业务类型,订单金额（元）\n\
///             o-2,交易,5.00\n\
///             o-1,交易,99.90\n\
///             o-1,退款,-99.90\n\
///             #-----------------------------------------业务明细列表结束------------------------------------\n";
/// let mut totals = BillTotals::new();
/// totals.read(&mut AlipayBill::new(), file.as_bytes().split(|&b| b == b'\n'))?;
///
/// let cny = |m| Money::from_minor(m, Currency::CNY);
/// let ledger = [
///     Entry::new(b"o-1", Status::Refunded, cny(9_990), cny(9_990)),
///     Entry::new(b"o-2", Status::Succeeded, cny(500), cny(0)),
/// ];
/// assert_eq!(reconcile(ledger, totals.entries()).count(), 0);
/// # Ok::<(), paystate::reconcile::bill::BillError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillTotals {
    orders: BTreeMap<Vec<u8>, OrderTotals>,
}

impl BillTotals {
    /// No orders.
    pub const fn new() -> BillTotals {
        BillTotals {
            orders: BTreeMap::new(),
        }
    }

    /// Adds a line to its order's sums. [`BillErrorKind::CurrencyMismatch`] when the order's
    /// earlier lines were in another currency, [`BillErrorKind::Overflow`] when a sum would not
    /// fit; both name the line, and leave the totals as they were.
    pub fn add(&mut self, line: &BillLine<'_>) -> Result<(), BillError> {
        let fail = |kind| BillError::new(line.line, kind);
        let zero = Money::zero(line.amount.currency());
        let empty = OrderTotals {
            paid: zero,
            refunded: zero,
        };
        let current = self.orders.get(line.order_id).copied().unwrap_or(empty);
        if current.paid.currency() != line.amount.currency() {
            return Err(fail(BillErrorKind::CurrencyMismatch));
        }
        let mut next = current;
        let sum = match line.kind {
            BillLineKind::Trade => &mut next.paid,
            BillLineKind::Refund => &mut next.refunded,
        };
        *sum = sum
            .checked_add(line.amount)
            .ok_or(fail(BillErrorKind::Overflow))?;
        match self.orders.get_mut(line.order_id) {
            Some(totals) => *totals = next,
            None => {
                self.orders.insert(line.order_id.to_vec(), next);
            }
        }
        Ok(())
    }

    /// Reads a whole bill with `reader` from `lines` (the file split on `\n`), adds every line,
    /// and checks the bill was complete ([`BillReader::finish`]). Stops at the first error.
    pub fn read<R, I>(&mut self, reader: &mut R, lines: I) -> Result<(), BillError>
    where
        R: BillReader + ?Sized,
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        for line in lines {
            if let Some(found) = reader.line(line.as_ref())? {
                self.add(&found)?;
            }
        }
        reader.finish()
    }

    /// One order's sums.
    pub fn get(&self, order_id: &[u8]) -> Option<OrderTotals> {
        self.orders.get(order_id).copied()
    }

    /// How many orders.
    pub fn len(&self) -> usize {
        self.orders.len()
    }

    /// Whether no line was added.
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }

    /// Every order and its sums, by order id.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], OrderTotals)> {
        self.orders.iter().map(|(id, t)| (id.as_slice(), *t))
    }

    /// The provider's side for [`reconcile`](crate::reconcile::reconcile): one entry per order,
    /// sorted by order id, with the sums and [`OrderTotals::status`].
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        self.iter()
            .map(|(id, t)| Entry::new(id, t.status(), t.paid, t.refunded))
    }
}
