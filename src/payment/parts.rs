//! A payment taken apart and put back together: what snapshots (docs/spec.md §5) read and
//! write. Putting it back re-checks every invariant.

use super::events::EventEntry;
use super::invariants::InvariantError;
use super::machine::Payment;
use super::status::{LateSuccess, Status};
use crate::money::{Currency, Money};
use crate::time::Timestamp;

/// Every field of a payment, borrowed: what snapshots read and write.
pub(crate) struct Parts<'a> {
    pub amount: u64,
    pub currency: Currency,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub paid: u64,
    pub refunded: u64,
    pub version: u32,
    pub policy: LateSuccess,
    pub status: Status,
    pub events: &'a [EventEntry],
    pub refunds: &'a [([u8; 8], u64)],
    pub close_pending: bool,
}

impl<const EVENTS: usize, const REFUNDS: usize> Payment<EVENTS, REFUNDS> {
    pub(crate) fn from_parts(parts: Parts<'_>) -> Result<Self, InvariantError> {
        let mut p = Payment::with_capacity(
            Money::from_minor(parts.amount, parts.currency),
            parts.created_at,
        )
        .map_err(|_| InvariantError::ZeroAmount)?;
        p.expires_at = parts.expires_at;
        p.paid = parts.paid;
        p.refunded = parts.refunded;
        p.version = parts.version;
        p.policy = parts.policy;
        p.status = parts.status;
        p.close_pending = parts.close_pending;
        if parts.events.len() > EVENTS || parts.refunds.len() > REFUNDS {
            return Err(InvariantError::EventBook);
        }
        for (id, digest) in parts.events {
            p.events.remember(*id, *digest);
        }
        for (slot, refund) in p.refunds.iter_mut().zip(parts.refunds) {
            *slot = *refund;
        }
        p.refunds_len =
            u8::try_from(parts.refunds.len()).map_err(|_| InvariantError::RefundBook)?;
        p.check_invariants()?;
        Ok(p)
    }
}
