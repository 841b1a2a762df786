//! The transition table: docs/spec.md §2.3, the order of checks, in one place.
//!
//! [`decide`] is a pure function from what the payment holds ([`State`]) and one input to what
//! should happen: step 1 (the event id), step 2 (the input), and the version number the change
//! will carry. [`decide_tick`] does the same for the passing of time. Every outcome — every
//! status, every field check, every rejection, every effect — is decided here and nowhere
//! else: [`Payment`] only commits a [`Change`] these functions hand it, which cannot fail.
//!
//! [`Payment`]: crate::Payment

use super::events::EventEntry;
use super::input::{Command, Input, RefundId};
use super::outcome::Rejection;
use super::status::{LateSuccess, Status};
use crate::money::Currency;
use crate::time::Timestamp;

/// What [`decide`] looks at: the parts of a payment a transition depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct State<'a> {
    /// The status.
    pub status: Status,
    /// The amount to be paid, in minor units of `currency`.
    pub amount: u64,
    /// The payment's currency.
    pub currency: Currency,
    /// Captured minor units: 0 or `amount`.
    pub paid: u64,
    /// Sum of the recorded refunds, in minor units.
    pub refunded: u64,
    /// The late-success policy (docs/spec.md §2.4).
    pub policy: LateSuccess,
    /// How many changes have been applied; a change is refused once it reaches `u32::MAX`.
    pub version: u32,
    /// The deadline, which only [`decide_tick`] consults.
    pub expires_at: Option<Timestamp>,
    /// The remembered events, in any order (membership is all step 1 needs).
    pub events: &'a [EventEntry],
    /// Recorded refunds: fingerprint and amount.
    pub refunds: &'a [([u8; 8], u64)],
    /// Whether the refund list is full, so that another refund has no room.
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

/// A change of state and up to one effect: everything [`Payment`](crate::Payment) writes when
/// it commits, decided and checked, so committing it cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    /// The version after the change: one above the payment's (checked by [`decide`]).
    pub version: u32,
    /// The status after the change.
    pub status: Status,
    /// Captured minor units after the change.
    pub paid: u64,
    /// Refunded minor units after the change.
    pub refunded: u64,
    /// A refund to append to the recorded ones; [`decide`] has checked there is room.
    pub record_refund: Option<(RefundId, u64)>,
    /// The event to remember (every applied input but a tick).
    pub remember: Option<EventEntry>,
    /// Whether a `close_trade` obligation is outstanding afterwards.
    pub close_pending: bool,
    /// The effect the outcome carries, if any.
    pub effect: Option<EffectKind>,
}

/// Which effect a change emits. [`Payment`](crate::Payment) fills in the refund's amount (the
/// change's `paid − refunded`) and its request number.
///
/// [`Effect::CloseTrade`]: crate::Effect::CloseTrade
/// [`Effect::RefundRequired`]: crate::Effect::RefundRequired
/// [`Effect::name`]: crate::Effect::name
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EffectKind {
    /// [`Effect::CloseTrade`](crate::Effect::CloseTrade).
    CloseTrade,
    /// [`Effect::RefundRequired`](crate::Effect::RefundRequired) of the outstanding balance.
    RefundRequired,
}

impl EffectKind {
    /// The name of docs/spec.md §2.2, as [`Effect::name`](crate::Effect::name) gives it.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            EffectKind::CloseTrade => "close_trade",
            EffectKind::RefundRequired => "refund_required",
        }
    }
}

impl State<'_> {
    /// The payment as it is, moved to `status`: the starting point of every change. Its
    /// `version` is still the current one; [`State::numbered`] sets the next.
    fn change(&self, status: Status) -> Change {
        Change {
            version: self.version,
            status,
            paid: self.paid,
            refunded: self.refunded,
            record_refund: None,
            remember: None,
            close_pending: self.close_pending,
            effect: None,
        }
    }

    /// Whether the payment is still open: `pending` or `processing`.
    const fn open(&self) -> bool {
        match self.status {
            Status::Pending | Status::Processing => true,
            Status::Succeeded | Status::Failed | Status::Cancelled | Status::Refunded => false,
        }
    }

    /// Gives an applied change its version, one above the current; a payment whose version is
    /// already `u32::MAX` takes no more changes (docs/spec.md §2.2, `invalid_transition`).
    /// Any other decision passes unchanged.
    fn numbered(&self, decision: Decision) -> Decision {
        match decision {
            Decision::Apply(change) => match self.version.checked_add(1) {
                Some(version) => Decision::Apply(Change { version, ..change }),
                None => Decision::Reject(Rejection::InvalidTransition),
            },
            other @ (Decision::Duplicate | Decision::Ignore | Decision::Reject(_)) => other,
        }
    }
}

/// docs/spec.md §2.3 for one input: step 1, the event id (a remembered id is a `duplicate` if
/// the content is the same, else an `idempotency_conflict`), then step 2, the input itself.
/// An applied input is remembered under its event id.
#[inline]
pub(crate) fn decide(s: &State<'_>, input: &Input) -> Decision {
    let id = input.event_id().fingerprint();
    if let Some((_, digest)) = s.events.iter().find(|(fp, _)| *fp == id) {
        return if *digest == input.digest() {
            Decision::Duplicate
        } else {
            Decision::Reject(Rejection::IdempotencyConflict)
        };
    }
    match decide_command(s, &input.command()) {
        Decision::Apply(change) => Decision::Apply(Change {
            remember: Some((id, input.digest())),
            ..change
        }),
        other @ (Decision::Duplicate | Decision::Ignore | Decision::Reject(_)) => other,
    }
}

/// docs/spec.md §2.3, step 2 alone: what a command does to a payment that has not seen its
/// event id. (The diagram draws this.)
#[inline]
pub(crate) fn decide_command(s: &State<'_>, cmd: &Command) -> Decision {
    s.numbered(rules(s, cmd))
}

/// The rules of step 2, input by input; [`decide_command`] numbers what they apply.
#[inline]
fn rules(s: &State<'_>, cmd: &Command) -> Decision {
    use Decision::*;
    use Status::*;
    match *cmd {
        Command::Initiate => match s.status {
            Pending => Apply(s.change(Processing)),
            Processing | Succeeded | Failed | Cancelled | Refunded => Ignore,
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
            // A failure never overrides a success, a closure or a refund.
            Succeeded | Failed | Cancelled | Refunded => Ignore,
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

/// docs/spec.md §2.3, `tick` at `now`: a deadline at or before `now` cancels an open payment.
/// A tick has no event id and is not remembered.
pub(crate) fn decide_tick(s: &State<'_>, now: Timestamp) -> Decision {
    let expired = s.expires_at.is_some_and(|deadline| deadline <= now);
    let decision = if s.open() && expired {
        Decision::Apply(Change {
            effect: Some(EffectKind::CloseTrade),
            close_pending: true,
            ..s.change(Status::Cancelled)
        })
    } else {
        Decision::Ignore
    };
    s.numbered(decision)
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use crate::money::Money;
    use crate::payment::input::EventId;

    fn state(version: u32) -> State<'static> {
        State {
            status: Status::Pending,
            amount: 100,
            currency: Currency::CNY,
            paid: 0,
            refunded: 0,
            policy: LateSuccess::Refund,
            version,
            expires_at: Some(Timestamp::from_secs(10)),
            events: &[],
            refunds: &[],
            refunds_full: false,
            close_pending: false,
        }
    }

    fn input() -> Input {
        let id = EventId::new(b"evt").unwrap_or_else(|_| unreachable!());
        Input::initiate(id)
    }

    #[test]
    fn an_applied_change_carries_the_next_version_and_its_event() {
        let Decision::Apply(change) = decide(&state(41), &input()) else {
            panic!("initiate on pending applies");
        };
        assert_eq!(change.version, 42);
        assert_eq!(
            change.remember,
            Some((input().event_id().fingerprint(), input().digest()))
        );
    }

    #[test]
    fn the_last_version_refuses_every_change_as_invalid_transition() {
        let s = state(u32::MAX);
        assert_eq!(
            decide(&s, &input()),
            Decision::Reject(Rejection::InvalidTransition)
        );
        assert_eq!(
            decide_tick(&s, Timestamp::from_secs(10)),
            Decision::Reject(Rejection::InvalidTransition)
        );
        // What would not change the payment is answered as before.
        assert_eq!(decide_tick(&s, Timestamp::from_secs(9)), Decision::Ignore);
        let wrong = Command::Succeed {
            amount: Money::from_minor(1, Currency::CNY),
        };
        assert_eq!(
            decide_command(&s, &wrong),
            Decision::Reject(Rejection::AmountMismatch {
                expected: 100,
                got: 1
            })
        );
    }

    #[test]
    fn a_tick_is_not_remembered() {
        let Decision::Apply(change) = decide_tick(&state(0), Timestamp::from_secs(10)) else {
            panic!("the deadline passed");
        };
        assert_eq!(change.remember, None);
        assert_eq!(change.version, 1);
    }
}
