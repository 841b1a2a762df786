//! What the engine answers: the [`Outcome`] of one input, the [`Rejection`] reasons, and the
//! [`Effect`]s (obligations) the host carries out (docs/spec.md §2.2, §2.6).

use core::fmt;

use super::input::RefundId;
use super::status::LateSuccess;
use super::transition::EffectKind;
use crate::money::{Currency, Money};
use crate::time::Timestamp;

/// Something the host must carry out: returned once by the `applied` outcome that caused it,
/// and held as an obligation in the payment (and its snapshot) until the provider confirms it,
/// so [`Payment::pending_effects`](crate::Payment::pending_effects) returns it again after a crash (docs/spec.md §2.6).
///
/// The list is exhaustive on purpose: a host's `match` names every obligation, so a new one
/// would be a compile error there rather than something silently ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Effect {
    /// The payment was cancelled or expired while the trade may exist at the provider: close or
    /// cancel it there (Alipay `alipay.trade.close` / `alipay.trade.cancel`), so the customer
    /// can no longer pay. Closing is idempotent at every provider ("trade does not exist" and
    /// "already closed" count as closed); feed the confirmation back as [`Input::close`](crate::Input::close),
    /// which discharges it. A capture confirmed meanwhile discharges it too (a paid trade
    /// cannot be closed; it is refunded instead).
    CloseTrade,
    /// Funds were captured for a payment that must not be fulfilled: return `amount` to the
    /// customer with a provider refund whose request number is `refund_id` (Alipay
    /// `out_request_no`; prefixed with the order id where the provider wants it unique per
    /// merchant, as WeChat Pay's `out_refund_no`), then feed the confirmed refund back as
    /// [`Input::refund`](crate::Input::refund). Sending it twice is harmless: the provider pays one refund per
    /// request number. Discharged when `refunded == paid`.
    RefundRequired {
        /// What is still to be returned, `paid − refunded`.
        amount: Money,
        /// The refund request number to send: the same on every call, across snapshots and
        /// restarts.
        refund_id: RefundRequestId,
    },
}

impl Effect {
    /// `"close_trade"` or `"refund_required"`: the names of docs/spec.md §2.2.
    pub const fn name(&self) -> &'static str {
        match self {
            Effect::CloseTrade => EffectKind::CloseTrade.name(),
            Effect::RefundRequired { .. } => EffectKind::RefundRequired.name(),
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::CloseTrade => f.write_str(self.name()),
            Effect::RefundRequired { amount, refund_id } => {
                write!(f, "{} {amount} as {refund_id}", self.name())
            }
        }
    }
}

/// The request number of a required refund (docs/spec.md §2.6): 24 bytes of `[0-9a-z]`,
/// `lr` followed by 22 lowercase hex digits, accepted by every provider as its refund request
/// number (Alipay `out_request_no` takes 64, WeChat Pay `out_refund_no` 64, of
/// `[A-Za-z0-9_-|*@]`).
///
/// It is derived from what never changes about the payment (creation time, amount, currency,
/// deadline and policy), so it is the same on every call, in every snapshot and after every
/// restart; a payment owes at most one late refund, so one id per payment is enough. Two
/// payments created in the same second for the same amount share it: where the provider wants
/// refund numbers unique per merchant, prefix it with the order id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct RefundRequestId([u8; RefundRequestId::LEN]);

impl RefundRequestId {
    /// Its length in bytes.
    pub const LEN: usize = 24;

    pub(super) fn derive(
        created_at: Timestamp,
        amount: Money,
        expires_at: Option<Timestamp>,
        policy: LateSuccess,
    ) -> RefundRequestId {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"paystate/late-refund/v1\0");
        h.update(created_at.as_secs().to_le_bytes());
        h.update(amount.minor_units().to_le_bytes());
        h.update(amount.currency().numeric().to_le_bytes());
        match expires_at {
            Some(t) => {
                h.update([1]);
                h.update(t.as_secs().to_le_bytes());
            }
            None => h.update([0]),
        }
        h.update([policy as u8]);
        let digest = h.finalize();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; Self::LEN];
        let (prefix, rest) = out.split_at_mut(2);
        prefix.copy_from_slice(b"lr");
        for (pair, byte) in rest.chunks_mut(2).zip(digest.iter()) {
            for (o, nibble) in pair.iter_mut().zip([byte >> 4, byte & 0xf]) {
                *o = HEX.get(usize::from(nibble)).copied().unwrap_or(b'0');
            }
        }
        RefundRequestId(out)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Built from ASCII only.
        core::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The id as the engine records it once the refund is confirmed under this number.
    pub fn refund_id(&self) -> RefundId {
        // 24 bytes is within 1..=64: never an error.
        RefundId::new(&self.0).unwrap_or(RefundId::from_fingerprint([0; 8]))
    }
}

impl fmt::Display for RefundRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for RefundRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RefundRequestId({})", self.as_str())
    }
}

/// The effects of one outcome, or the obligations outstanding: at most two, in a fixed list
/// that never allocates. Read it as a slice (`Deref<Target = [Effect]>`, [`Effects::as_slice`])
/// or iterate it, by reference or by value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Effects(heapless::Vec<Effect, 2>);

impl Effects {
    /// No effects.
    pub const fn new() -> Effects {
        Effects(heapless::Vec::new())
    }

    /// The effects as a slice.
    pub fn as_slice(&self) -> &[Effect] {
        &self.0
    }

    /// Adds one; at most two fit, and every caller in the crate pushes at most two.
    pub(super) fn push(&mut self, effect: Effect) {
        // Capacity 2: a third is impossible by construction (see the callers).
        let _ = self.0.push(effect);
    }
}

impl core::ops::Deref for Effects {
    type Target = [Effect];
    fn deref(&self) -> &[Effect] {
        &self.0
    }
}

impl From<[Effect; 0]> for Effects {
    fn from(_: [Effect; 0]) -> Effects {
        Effects::new()
    }
}

impl From<[Effect; 1]> for Effects {
    fn from([one]: [Effect; 1]) -> Effects {
        let mut e = Effects::new();
        e.push(one);
        e
    }
}

impl From<[Effect; 2]> for Effects {
    fn from([one, two]: [Effect; 2]) -> Effects {
        let mut e = Effects::new();
        e.push(one);
        e.push(two);
        e
    }
}

impl<'a> IntoIterator for &'a Effects {
    type Item = &'a Effect;
    type IntoIter = core::slice::Iter<'a, Effect>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl IntoIterator for Effects {
    type Item = Effect;
    type IntoIter = EffectsIntoIter;
    fn into_iter(self) -> EffectsIntoIter {
        EffectsIntoIter {
            effects: self,
            next: 0,
        }
    }
}

/// The effects of an [`Effects`], by value.
#[derive(Debug, Clone)]
pub struct EffectsIntoIter {
    effects: Effects,
    next: usize,
}

impl Iterator for EffectsIntoIter {
    type Item = Effect;
    fn next(&mut self) -> Option<Effect> {
        let effect = self.effects.0.get(self.next).copied()?;
        self.next = self.next.saturating_add(1);
        Some(effect)
    }
}

/// Why an input was refused. The payment is unchanged; the host must not acknowledge the input
/// as processed, and should log or alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Rejection {
    /// The input is impossible in the payment's status (cancel after capture, close of a
    /// paid trade, refund of an unpaid payment).
    InvalidTransition,
    /// A capture for a different amount than the payment's.
    AmountMismatch {
        /// The payment's amount, in minor units.
        expected: u64,
        /// The amount in the input, in minor units.
        got: u64,
    },
    /// A capture or refund in another currency.
    CurrencyMismatch {
        /// The payment's currency.
        expected: Currency,
        /// The currency in the input.
        got: Currency,
    },
    /// A refund of zero.
    InvalidAmount,
    /// A refund larger than what is left to refund.
    RefundExceedsBalance {
        /// `paid − refunded`, in minor units.
        balance: u64,
        /// The refund asked for, in minor units.
        requested: u64,
    },
    /// The event id (or the refund id) was applied before with different content.
    IdempotencyConflict,
    /// The payment already holds as many refunds as its capacity.
    TooManyRefunds,
}

impl Rejection {
    /// The reason code of docs/spec.md §2.2 (`"amount_mismatch"`).
    pub const fn code(&self) -> &'static str {
        match self {
            Rejection::InvalidTransition => "invalid_transition",
            Rejection::AmountMismatch { .. } => "amount_mismatch",
            Rejection::CurrencyMismatch { .. } => "currency_mismatch",
            Rejection::InvalidAmount => "invalid_amount",
            Rejection::RefundExceedsBalance { .. } => "refund_exceeds_balance",
            Rejection::IdempotencyConflict => "idempotency_conflict",
            Rejection::TooManyRefunds => "too_many_refunds",
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::AmountMismatch { expected, got } => {
                write!(
                    f,
                    "amount_mismatch: expected {expected}, got {got} minor units"
                )
            }
            Rejection::CurrencyMismatch { expected, got } => {
                write!(f, "currency_mismatch: expected {expected}, got {got}")
            }
            Rejection::RefundExceedsBalance { balance, requested } => write!(
                f,
                "refund_exceeds_balance: {requested} requested, {balance} minor units left"
            ),
            Rejection::InvalidTransition
            | Rejection::InvalidAmount
            | Rejection::IdempotencyConflict
            | Rejection::TooManyRefunds => f.write_str(self.code()),
        }
    }
}

impl core::error::Error for Rejection {}

/// The answer to one input. Act on it: persist and carry out effects on `Applied`,
/// acknowledge on `Duplicate` and `Ignored`, refuse and alert on `Rejected`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use = "an applied outcome carries effects the host must carry out"]
pub enum Outcome {
    /// The payment changed and its version went up by one: persist the new snapshot
    /// (compare-and-swap on the old version), carry out the effects, acknowledge.
    Applied(Effects),
    /// This input was applied before: acknowledge it, change nothing.
    Duplicate,
    /// Stale or already true: acknowledge it, nothing to do.
    Ignored,
    /// Refused: do not acknowledge it as processed; log or alert.
    Rejected(Rejection),
}

impl Outcome {
    /// `"applied"`, `"duplicate"`, `"ignored"` or `"rejected"`.
    pub const fn name(&self) -> &'static str {
        match self {
            Outcome::Applied(_) => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::Rejected(_) => "rejected",
        }
    }

    /// The effects to carry out (empty unless `Applied`).
    pub fn effects(&self) -> &[Effect] {
        match self {
            Outcome::Applied(effects) => effects,
            Outcome::Duplicate | Outcome::Ignored | Outcome::Rejected(_) => &[],
        }
    }

    /// Whether the host should acknowledge the input to its sender (reply `success` to a
    /// provider): `true` for applied, duplicate and ignored.
    pub const fn should_acknowledge(&self) -> bool {
        !matches!(self, Outcome::Rejected(_))
    }
}
