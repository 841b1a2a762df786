//! The state and accounting of every invariant (docs/spec.md §2.5): the checker that every
//! payment passes and that snapshot decoding re-runs, and the error it answers.

use core::fmt;

use super::machine::Payment;
use super::status::{LateSuccess, Status};

impl<const EVENTS: usize, const REFUNDS: usize> Payment<EVENTS, REFUNDS> {
    /// Checks the invariants of docs/spec.md §2.5 that a single state can show, and the
    /// bookkeeping behind them. Every payment built by this crate passes; snapshots are
    /// refused if they do not.
    pub fn check_invariants(&self) -> Result<(), InvariantError> {
        use InvariantError as E;
        if self.amount == 0 {
            return Err(E::ZeroAmount);
        }
        if self.refunded > self.paid {
            return Err(E::RefundedAbovePaid);
        }
        if self.paid != 0 && self.paid != self.amount {
            return Err(E::PaidNotAmount);
        }
        let fully_refunded = self.paid > 0 && self.refunded == self.paid;
        if (self.status == Status::Refunded) != fully_refunded {
            return Err(E::RefundedStatus);
        }
        match self.status {
            Status::Succeeded if self.paid == 0 => return Err(E::SucceededUnpaid),
            Status::Pending | Status::Processing if self.paid != 0 => return Err(E::OpenButPaid),
            Status::Failed if self.paid != 0 && self.policy == LateSuccess::Accept => {
                return Err(E::OpenButPaid);
            }
            // What else a status may hold is checked above (`refunded`) or allowed (a late
            // capture being returned on `failed` or `cancelled`).
            Status::Pending
            | Status::Processing
            | Status::Succeeded
            | Status::Failed
            | Status::Cancelled
            | Status::Refunded => {}
        }
        // A close is owed only by a cancelled payment that holds no money (§2.5, 8).
        if self.close_pending && (self.status != Status::Cancelled || self.paid != 0) {
            return Err(E::CloseObligation);
        }
        let refunds = self.recorded_refunds();
        let mut sum: u64 = 0;
        let mut rest = refunds;
        while let [(fp, amount), later @ ..] = rest {
            if *amount == 0 {
                return Err(E::RefundBook);
            }
            sum = sum.checked_add(*amount).ok_or(E::RefundBook)?;
            if later.iter().any(|(other, _)| other == fp) {
                return Err(E::RefundBook);
            }
            rest = later;
        }
        if sum != self.refunded {
            return Err(E::RefundBook);
        }
        let events = self.events.len();
        if events > EVENTS || !self.events.is_well_formed() {
            return Err(E::EventBook);
        }
        if u32::try_from(events).map_or(true, |n| n > self.version)
            || u32::try_from(refunds.len()).map_or(true, |n| n > self.version)
        {
            return Err(E::EventBook);
        }
        Ok(())
    }
}

/// A state no sequence of inputs can reach: found in a forged or corrupted snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum InvariantError {
    /// The amount is zero.
    ZeroAmount,
    /// `refunded` > `paid`.
    RefundedAbovePaid,
    /// `paid` is neither zero nor the amount.
    PaidNotAmount,
    /// Status `refunded` without `refunded == paid > 0`, or the reverse.
    RefundedStatus,
    /// Status `succeeded` with nothing paid.
    SucceededUnpaid,
    /// Money captured in a status that cannot hold it.
    OpenButPaid,
    /// Refund records that do not add up to `refunded`, repeat an id, or hold a zero.
    RefundBook,
    /// More remembered events or refunds than applied inputs, or than capacity.
    EventBook,
    /// A `close_trade` obligation on a payment that is not cancelled, or holds money.
    CloseObligation,
}

impl fmt::Display for InvariantError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvariantError::ZeroAmount => "amount is zero",
            InvariantError::RefundedAbovePaid => "refunded exceeds paid",
            InvariantError::PaidNotAmount => "paid is neither zero nor the amount",
            InvariantError::RefundedStatus => "status refunded disagrees with the money",
            InvariantError::SucceededUnpaid => "succeeded with nothing paid",
            InvariantError::OpenButPaid => "money captured in a status that cannot hold it",
            InvariantError::RefundBook => "refund records do not add up",
            InvariantError::EventBook => "more remembered events than applied inputs",
            InvariantError::CloseObligation => {
                "close_trade outstanding on a payment that cannot owe it"
            }
        })
    }
}

impl core::error::Error for InvariantError {}
