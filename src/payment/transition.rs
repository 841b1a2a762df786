//! The transition table: docs/spec.md §2.3, the order of checks, in one place.
//!
//! [`decide`] is a pure function from the payment's money state and one command to what should
//! happen. Idempotency by event id is checked before it (in [`Payment::apply`]); everything
//! else — every status, every field check, every effect — is decided here and nowhere else.
//!
//! [`Payment::apply`]: crate::Payment::apply

use super::{LateSuccess, Rejection, Status};
use crate::money::Currency;
use crate::payment::input::{Command, RefundId};

/// What [`decide`] looks at: the parts of a payment a transition depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct State<'a> {
    pub status: Status,
    pub amount: u64,
    pub currency: Currency,
    pub paid: u64,
    pub refunded: u64,
    pub policy: LateSuccess,
    /// Recorded refunds: fingerprint and amount.
    pub refunds: &'a [([u8; 8], u64)],
    /// Whether another refund fits.
    pub refunds_full: bool,
    /// Whether a `close_trade` obligation is outstanding (docs/spec.md §2.6).
    pub close_pending: bool,
}

/// The decision for one command (or a tick).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Change the payment.
    Apply(Change),
    /// Already applied (a refund id seen before with the same amount).
    Duplicate,
    /// Stale or already true.
    Ignore,
    /// Refused.
    Reject(Rejection),
}

/// A change of state and up to one effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    pub status: Status,
    pub paid: u64,
    pub refunded: u64,
    pub record_refund: Option<(RefundId, u64)>,
    /// Whether a `close_trade` obligation is outstanding afterwards.
    pub close_pending: bool,
    pub effect: Option<EffectKind>,
}

/// Which effect a change emits; [`Payment`](crate::Payment) fills in its amount and id.
///
/// [`Effect::CloseTrade`]: crate::Effect::CloseTrade
/// [`Effect::RefundRequired`]: crate::Effect::RefundRequired
/// [`Effect::name`]: crate::Effect::name
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EffectKind {
    /// [`Effect::CloseTrade`].
    CloseTrade,
    /// [`Effect::RefundRequired`] of the outstanding balance.
    RefundRequired,
}

impl EffectKind {
    /// The name of docs/spec.md §2.2, as [`Effect::name`] gives it.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            EffectKind::CloseTrade => "close_trade",
            EffectKind::RefundRequired => "refund_required",
        }
    }
}

impl State<'_> {
    fn change(&self, status: Status) -> Change {
        Change {
            status,
            paid: self.paid,
            refunded: self.refunded,
            record_refund: None,
            close_pending: self.close_pending,
            effect: None,
        }
    }

    fn open(&self) -> bool {
        matches!(self.status, Status::Pending | Status::Processing)
    }
}

/// docs/spec.md §2.3 after the event-id check, input by input.
#[inline]
pub(crate) fn decide(s: &State<'_>, cmd: &Command) -> Decision {
    use Decision::*;
    use Status::*;
    match *cmd {
        Command::Initiate => match s.status {
            Pending => Apply(s.change(Processing)),
            _ => Ignore,
        },

        Command::Succeed { amount } => {
            if amount.currency() != s.currency {
                return Reject(Rejection::CurrencyMismatch {
                    expected: s.currency,
                    got: amount.currency(),
                });
            }
            if amount.minor_units() != s.amount {
                return Reject(Rejection::AmountMismatch {
                    expected: s.amount,
                    got: amount.minor_units(),
                });
            }
            if s.paid > 0 {
                // A redelivery, or Alipay's TRADE_FINISHED after TRADE_SUCCESS.
                return Ignore;
            }
            let captured = Change {
                paid: s.amount,
                ..s.change(s.status)
            };
            // A paid trade cannot be closed: the capture discharges an outstanding
            // `close_trade`, and is returned with a refund instead (§2.6).
            let refund_it = Change {
                effect: Some(EffectKind::RefundRequired),
                close_pending: false,
                ..captured
            };
            match (s.status, s.policy) {
                (Pending | Processing, _) => Apply(Change {
                    status: Succeeded,
                    ..captured
                }),
                // A cancelled order must not ship, whatever the policy.
                (Cancelled, _) | (Failed, LateSuccess::Refund) => Apply(refund_it),
                (Failed, LateSuccess::Accept) => Apply(Change {
                    status: Succeeded,
                    ..captured
                }),
                // Unreachable with paid == 0 (succeeded and refunded imply paid > 0); answered
                // as stale rather than trusted.
                (Succeeded | Refunded, _) => Ignore,
            }
        }

        Command::Fail => match s.status {
            Pending | Processing => Apply(s.change(Failed)),
            // A failure never overrides a success.
            _ => Ignore,
        },

        Command::Cancel => match s.status {
            Pending | Processing => Apply(Change {
                effect: Some(EffectKind::CloseTrade),
                close_pending: true,
                ..s.change(Cancelled)
            }),
            // Captured funds are returned with a refund, not a cancel.
            Succeeded => Reject(Rejection::InvalidTransition),
            Failed | Cancelled | Refunded => Ignore,
        },

        Command::Close => match s.status {
            // The provider closed it already: nothing to close there.
            Pending | Processing => Apply(s.change(Cancelled)),
            // The provider confirms the close we asked for: the obligation is discharged.
            Cancelled if s.close_pending => Apply(Change {
                close_pending: false,
                ..s.change(Cancelled)
            }),
            // The provider says closed, we say paid: reconcile.
            Succeeded => Reject(Rejection::InvalidTransition),
            Failed | Cancelled | Refunded => Ignore,
        },

        Command::Refund { refund_id, amount } => {
            if let Some((_, recorded)) = s
                .refunds
                .iter()
                .find(|(fp, _)| *fp == refund_id.fingerprint())
            {
                return if *recorded == amount.minor_units() && amount.currency() == s.currency {
                    Duplicate
                } else {
                    Reject(Rejection::IdempotencyConflict)
                };
            }
            if s.paid == 0 {
                return Reject(Rejection::InvalidTransition);
            }
            if amount.currency() != s.currency {
                return Reject(Rejection::CurrencyMismatch {
                    expected: s.currency,
                    got: amount.currency(),
                });
            }
            if amount.is_zero() {
                return Reject(Rejection::InvalidAmount);
            }
            let balance = s.paid.saturating_sub(s.refunded);
            if amount.minor_units() > balance {
                return Reject(Rejection::RefundExceedsBalance {
                    balance,
                    requested: amount.minor_units(),
                });
            }
            if s.refunds_full {
                return Reject(Rejection::TooManyRefunds);
            }
            let Some(refunded) = s.refunded.checked_add(amount.minor_units()) else {
                return Reject(Rejection::RefundExceedsBalance {
                    balance,
                    requested: amount.minor_units(),
                });
            };
            let status = if refunded == s.paid {
                Refunded
            } else {
                s.status
            };
            Apply(Change {
                refunded,
                record_refund: Some((refund_id, amount.minor_units())),
                ..s.change(status)
            })
        }
    }
}

/// docs/spec.md §2.3, `tick`: the deadline closes an open payment.
pub(crate) fn decide_tick(s: &State<'_>, expired: bool) -> Decision {
    if s.open() && expired {
        Decision::Apply(Change {
            effect: Some(EffectKind::CloseTrade),
            close_pending: true,
            ..s.change(Status::Cancelled)
        })
    } else {
        Decision::Ignore
    }
}
