//! One payment's life: statuses, inputs, outcomes and effects (docs/spec.md §2).
//!
//! The transition rules live in `transition.rs`, as one function (`decide`); this module holds the state,
//! the event-id memory, and the bookkeeping that makes "the snapshot changes if and only if the
//! outcome is `applied`" true by construction.

use core::fmt;

use crate::money::{Currency, Money};
use crate::time::Timestamp;

pub mod diagram;
pub mod input;
pub(crate) mod transition;

use input::{EventId, Input, InputKind, RefundId};
use transition::{Change, Decision, EffectKind, State};

/// Where a payment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Status {
    /// Created; nothing sent to the customer's wallet yet.
    Pending,
    /// The trade exists at the provider; the customer may be paying.
    Processing,
    /// Funds captured (`paid` > 0), not all refunded.
    Succeeded,
    /// The attempt failed; no funds are owed to the merchant.
    Failed,
    /// Closed before capture (by the merchant, the customer, the deadline or the provider).
    Cancelled,
    /// Funds were captured and have all been returned.
    Refunded,
}

impl Status {
    /// Every status, in rank order.
    pub const ALL: [Status; 6] = [
        Status::Pending,
        Status::Processing,
        Status::Succeeded,
        Status::Failed,
        Status::Cancelled,
        Status::Refunded,
    ];

    /// The rank of docs/spec.md §2: 0 pending, 1 processing, 2 succeeded/failed/cancelled,
    /// 3 refunded. A payment's rank never decreases.
    pub const fn rank(self) -> u8 {
        match self {
            Status::Pending => 0,
            Status::Processing => 1,
            Status::Succeeded | Status::Failed | Status::Cancelled => 2,
            Status::Refunded => 3,
        }
    }

    /// The lower-case name used in the driver and the docs (`"succeeded"`).
    pub const fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processing => "processing",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Refunded => "refunded",
        }
    }

    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) const fn to_u8(self) -> u8 {
        match self {
            Status::Pending => 0,
            Status::Processing => 1,
            Status::Succeeded => 2,
            Status::Failed => 3,
            Status::Cancelled => 4,
            Status::Refunded => 5,
        }
    }

    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) const fn from_u8(b: u8) -> Option<Status> {
        match b {
            0 => Some(Status::Pending),
            1 => Some(Status::Processing),
            2 => Some(Status::Succeeded),
            3 => Some(Status::Failed),
            4 => Some(Status::Cancelled),
            5 => Some(Status::Refunded),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to do with a capture confirmed after the payment `failed` (docs/spec.md §2.4).
///
/// A capture on a `cancelled` payment is always answered with
/// [`Effect::RefundRequired`], whatever the policy: a cancelled order must not ship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LateSuccess {
    /// Record the capture, keep the status, and ask the host to refund it. The default.
    #[default]
    Refund,
    /// Move the payment to `succeeded`: the order is fulfilled after all.
    Accept,
}

impl LateSuccess {
    /// `"refund"` or `"accept"`.
    pub const fn name(self) -> &'static str {
        match self {
            LateSuccess::Refund => "refund",
            LateSuccess::Accept => "accept",
        }
    }
}

/// Something the host must carry out: returned once by the `applied` outcome that caused it,
/// and held as an obligation in the payment (and its snapshot) until the provider confirms it,
/// so [`Payment::pending_effects`] returns it again after a crash (docs/spec.md §2.6).
///
/// The list is exhaustive on purpose: a host's `match` names every obligation, so a new one
/// would be a compile error there rather than something silently ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Effect {
    /// The payment was cancelled or expired while the trade may exist at the provider: close or
    /// cancel it there (Alipay `alipay.trade.close` / `alipay.trade.cancel`), so the customer
    /// can no longer pay. Closing is idempotent at every provider ("trade does not exist" and
    /// "already closed" count as closed); feed the confirmation back as [`Input::close`],
    /// which discharges it. A capture confirmed meanwhile discharges it too (a paid trade
    /// cannot be closed; it is refunded instead).
    CloseTrade,
    /// Funds were captured for a payment that must not be fulfilled: return `amount` to the
    /// customer with a provider refund whose request number is `refund_id` (Alipay
    /// `out_request_no`; prefixed with the order id where the provider wants it unique per
    /// merchant, as WeChat Pay's `out_refund_no`), then feed the confirmed refund back as
    /// [`Input::refund`]. Sending it twice is harmless: the provider pays one refund per
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

    fn derive(
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
    fn push(&mut self, effect: Effect) {
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
            other => f.write_str(other.code()),
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
            _ => &[],
        }
    }

    /// Whether the host should acknowledge the input to its sender (reply `success` to a
    /// provider): `true` for applied, duplicate and ignored.
    pub const fn should_acknowledge(&self) -> bool {
        !matches!(self, Outcome::Rejected(_))
    }
}

/// Why a payment could not be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum CreateError {
    /// The amount is zero.
    InvalidAmount,
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CreateError::InvalidAmount => f.write_str("a payment's amount must be above zero"),
        }
    }
}

impl core::error::Error for CreateError {}

/// One remembered applied event: the event id's fingerprint and the input's digest.
pub(crate) type EventEntry = ([u8; 16], [u8; 8]);

/// The life of one payment (docs/spec.md §2).
///
/// `EVENTS` is how many recently applied event ids it remembers (≥ 8), `REFUNDS` how many
/// refunds it can record (≥ 16). With the defaults a `Payment` is 512 bytes and never
/// allocates.
///
/// ```
/// use paystate::{Currency, EventId, Input, Money, Outcome, Payment, Status, Timestamp};
///
/// let t = Timestamp::from_secs;
/// let price = Money::parse("99.99", Currency::CNY)?;
/// let mut p: Payment = Payment::new(price, t(1_000))?.with_deadline(t(2_800));
/// assert_eq!(p.next_deadline(), Some(t(2_800)));
///
/// let paid = Input::succeed(EventId::new(b"notify-1")?, price);
/// assert!(matches!(p.apply(&paid, t(1_010)), Outcome::Applied(_)));
/// assert_eq!(p.apply(&paid, t(1_020)), Outcome::Duplicate);
/// assert_eq!((p.status(), p.version(), p.paid()), (Status::Succeeded, 1, price));
/// assert_eq!(p.next_deadline(), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Payment<const EVENTS: usize = 8, const REFUNDS: usize = 16> {
    amount: u64,
    created_at: Timestamp,
    expires_at: Option<Timestamp>,
    paid: u64,
    refunded: u64,
    version: u32,
    currency: Currency,
    policy: LateSuccess,
    status: Status,
    /// Ring of applied events; `events_len` are valid, the newest at `events_next − 1`.
    events: [EventEntry; EVENTS],
    events_next: u8,
    events_len: u8,
    /// Recorded refunds in order: fingerprint and amount.
    refunds: [([u8; 8], u64); REFUNDS],
    refunds_len: u8,
    /// A `close_trade` obligation is outstanding (docs/spec.md §2.6). The refund obligation
    /// needs no flag: it is outstanding exactly while the payment is late with money held.
    close_pending: bool,
}

impl Payment {
    /// A `pending` payment of `amount` (minor units in its currency), created at `now`
    /// (seconds since the Unix epoch, from the host's clock), with no deadline, the default
    /// late-success policy (`refund`) and the default capacities (8 remembered events, 16
    /// refunds; see [`Payment::with_capacity`] for others).
    ///
    /// Errors: [`CreateError::InvalidAmount`] for a zero amount.
    pub fn new(amount: Money, now: Timestamp) -> Result<Payment, CreateError> {
        Payment::with_capacity(amount, now)
    }
}

impl<const EVENTS: usize, const REFUNDS: usize> Payment<EVENTS, REFUNDS> {
    const CAPACITY_OK: () = assert!(
        EVENTS >= 8 && EVENTS <= 255 && REFUNDS >= 16 && REFUNDS <= 255,
        "a Payment remembers 8..=255 events and 16..=255 refunds"
    );

    /// [`Payment::new`] for a payment that remembers `EVENTS` events and `REFUNDS` refunds
    /// instead of the default 8 and 16: `Payment::<16, 32>::with_capacity(amount, now)`.
    ///
    /// Errors: [`CreateError::InvalidAmount`] for a zero amount.
    pub fn with_capacity(amount: Money, now: Timestamp) -> Result<Self, CreateError> {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_OK;
        if amount.is_zero() {
            return Err(CreateError::InvalidAmount);
        }
        Ok(Payment {
            amount: amount.minor_units(),
            created_at: now,
            expires_at: None,
            paid: 0,
            refunded: 0,
            version: 0,
            currency: amount.currency(),
            policy: LateSuccess::Refund,
            status: Status::Pending,
            events: [([0; 16], [0; 8]); EVENTS],
            events_next: 0,
            events_len: 0,
            refunds: [([0; 8], 0); REFUNDS],
            refunds_len: 0,
            close_pending: false,
        })
    }

    /// Sets the deadline: a [`tick`](Self::tick) at or after it cancels a payment that is
    /// still `pending` or `processing`.
    pub fn with_deadline(mut self, expires_at: Timestamp) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Sets what a capture after `failed` does (docs/spec.md §2.4).
    pub fn with_late_success(mut self, policy: LateSuccess) -> Self {
        self.policy = policy;
        self
    }

    /// Feeds one input at time `now` (docs/spec.md §2.3). The payment changes, and its version
    /// goes up by one, if and only if the outcome is [`Outcome::Applied`].
    pub fn apply(&mut self, input: &Input, now: Timestamp) -> Outcome {
        // `now` is part of the host's record; no input but `tick` looks at the deadline.
        let _ = now;
        // Membership only: the valid entries are the first `events_len` slots, whatever the
        // ring's order, so a plain slice scan does.
        let remembered = self
            .events
            .get(..usize::from(self.events_len))
            .unwrap_or(&[]);
        if let Some((_, digest)) = remembered
            .iter()
            .find(|(id, _)| *id == input.event_id().fingerprint())
        {
            return if *digest == input.digest() {
                Outcome::Duplicate
            } else {
                Outcome::Rejected(Rejection::IdempotencyConflict)
            };
        }
        let decision = transition::decide(&self.state(), &input.command());
        self.commit(decision, Some(input))
    }

    /// Time passed: at or after the deadline, a `pending` or `processing` payment is cancelled
    /// with [`Effect::CloseTrade`]. Otherwise `Ignored`; calling it early or twice is harmless.
    pub fn tick(&mut self, now: Timestamp) -> Outcome {
        let expired = self.expires_at.is_some_and(|deadline| deadline <= now);
        let decision = transition::decide_tick(&self.state(), expired);
        self.commit(decision, None)
    }

    /// When the host should next call [`tick`](Self::tick): the deadline while the payment is
    /// still open, else `None`.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        match self.status {
            Status::Pending | Status::Processing => self.expires_at,
            _ => None,
        }
    }

    fn state(&self) -> State<'_> {
        State {
            status: self.status,
            amount: self.amount,
            currency: self.currency,
            paid: self.paid,
            refunded: self.refunded,
            policy: self.policy,
            refunds: self
                .refunds
                .get(..usize::from(self.refunds_len))
                .unwrap_or(&[]),
            refunds_full: usize::from(self.refunds_len) >= REFUNDS,
            close_pending: self.close_pending,
        }
    }

    fn commit(&mut self, decision: Decision, input: Option<&Input>) -> Outcome {
        let change: Change = match decision {
            Decision::Apply(change) => change,
            Decision::Duplicate => return Outcome::Duplicate,
            Decision::Ignore => return Outcome::Ignored,
            Decision::Reject(r) => return Outcome::Rejected(r),
        };
        // Check everything that could fail before touching anything, so a refused change
        // leaves the payment bit-for-bit as it was.
        let Some(version) = self.version.checked_add(1) else {
            return Outcome::Rejected(Rejection::InvalidTransition);
        };
        let refund_slot = match change.record_refund {
            Some(_) => match self.refunds.get_mut(usize::from(self.refunds_len)) {
                Some(slot) => Some(slot),
                None => return Outcome::Rejected(Rejection::TooManyRefunds),
            },
            None => None,
        };
        if let (Some(slot), Some((id, amount))) = (refund_slot, change.record_refund) {
            *slot = (id.fingerprint(), amount);
            self.refunds_len = self.refunds_len.saturating_add(1);
        }
        self.status = change.status;
        self.paid = change.paid;
        self.refunded = change.refunded;
        self.close_pending = change.close_pending;
        self.version = version;
        if let Some(input) = input {
            self.remember(input.event_id().fingerprint(), input.digest());
        }
        let mut effects = Effects::new();
        let effect = match change.effect {
            Some(EffectKind::CloseTrade) => Some(Effect::CloseTrade),
            Some(EffectKind::RefundRequired) => self.refund_obligation(),
            None => None,
        };
        if let Some(effect) = effect {
            effects.push(effect);
        }
        Outcome::Applied(effects)
    }

    /// The outstanding refund obligation: the payment is late (`failed` or `cancelled`) and
    /// holds money (`paid` > `refunded`).
    fn refund_obligation(&self) -> Option<Effect> {
        let late = matches!(self.status, Status::Failed | Status::Cancelled);
        let held = self.paid.saturating_sub(self.refunded);
        (late && held > 0).then(|| Effect::RefundRequired {
            amount: Money::from_minor(held, self.currency),
            refund_id: self.refund_request_id(),
        })
    }

    /// The request number under which this payment's required refund is sent (the same for
    /// the payment's whole life; see [`RefundRequestId`]).
    pub fn refund_request_id(&self) -> RefundRequestId {
        RefundRequestId::derive(self.created_at, self.amount(), self.expires_at, self.policy)
    }

    /// The obligations still outstanding (docs/spec.md §2.6): every effect an `applied` outcome
    /// returned that the provider has not confirmed yet, with its amount as it stands now.
    ///
    /// A host that restarts, or firmware after a power cut, carries these out again for every
    /// payment it holds: closing a closed trade and re-sending a refund under the same
    /// `refund_id` are harmless. At most one is outstanding at a time (a paid trade owes no
    /// close, an unpaid one no refund), so the list never needs more than its capacity.
    ///
    /// - [`Effect::CloseTrade`] from the `cancel` or `tick` that emitted it until a `close` or a
    ///   `succeed` is applied;
    /// - [`Effect::RefundRequired`] while the payment is `failed` or `cancelled` with
    ///   `paid` > `refunded`, for `paid − refunded`.
    ///
    /// ```
    /// use paystate::{Currency, Effect, EventId, Input, Money, Payment, Timestamp};
    ///
    /// let t = Timestamp::from_secs;
    /// let price = Money::parse("99.99", Currency::CNY)?;
    /// let mut p: Payment = Payment::new(price, t(1_000))?;
    /// let _ = p.apply(&Input::cancel(EventId::new(b"cancel-1")?), t(1_001));
    /// assert_eq!(p.pending_effects().as_slice(), &[Effect::CloseTrade]);
    ///
    /// // The provider confirms the close: nothing is outstanding any more.
    /// let _ = p.apply(&Input::close(EventId::new(b"close-1")?), t(1_002));
    /// assert!(p.pending_effects().is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pending_effects(&self) -> Effects {
        let mut effects = Effects::new();
        let close = self.close_pending.then_some(Effect::CloseTrade);
        for effect in close.into_iter().chain(self.refund_obligation()) {
            effects.push(effect);
        }
        effects
    }

    fn remember(&mut self, id: [u8; 16], digest: [u8; 8]) {
        let next = usize::from(self.events_next);
        if let Some(slot) = self.events.get_mut(next) {
            *slot = (id, digest);
        }
        // EVENTS ≤ 255 (checked at compile time), so these fit in a u8.
        self.events_next = u8::try_from((next + 1) % EVENTS).unwrap_or(0);
        self.events_len = u8::try_from((usize::from(self.events_len) + 1).min(EVENTS)).unwrap_or(0);
    }

    /// The remembered events, oldest first.
    pub(crate) fn applied_events(&self) -> impl Iterator<Item = EventEntry> + '_ {
        let len = usize::from(self.events_len);
        let start = (usize::from(self.events_next) + EVENTS - len) % EVENTS;
        (0..len).filter_map(move |i| self.events.get((start + i) % EVENTS).copied())
    }

    /// The recorded refunds, in the order they were applied: fingerprint and amount.
    pub(crate) fn recorded_refunds(&self) -> &[([u8; 8], u64)] {
        self.refunds
            .get(..usize::from(self.refunds_len))
            .unwrap_or(&[])
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// How many inputs have been applied to this payment.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The amount to be paid.
    pub fn amount(&self) -> Money {
        Money::from_minor(self.amount, self.currency)
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// The captured amount: zero until a capture is recorded, then the full amount.
    pub fn paid(&self) -> Money {
        Money::from_minor(self.paid, self.currency)
    }

    /// The sum of confirmed refunds.
    pub fn refunded(&self) -> Money {
        Money::from_minor(self.refunded, self.currency)
    }

    /// `paid − refunded`: what can still be refunded.
    pub fn balance(&self) -> Money {
        Money::from_minor(self.paid.saturating_sub(self.refunded), self.currency)
    }

    /// When the payment was created.
    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// The deadline, if any.
    pub fn expires_at(&self) -> Option<Timestamp> {
        self.expires_at
    }

    /// The late-success policy.
    pub fn late_success(&self) -> LateSuccess {
        self.policy
    }

    /// How many refunds are recorded.
    pub fn refund_count(&self) -> usize {
        usize::from(self.refunds_len)
    }

    /// Whether a `close_trade` obligation is outstanding.
    pub fn close_pending(&self) -> bool {
        self.close_pending
    }

    /// Whether the refund `id` is recorded, and for how much.
    pub fn recorded_refund(&self, id: RefundId) -> Option<Money> {
        self.recorded_refunds()
            .iter()
            .find(|(fp, _)| *fp == id.fingerprint())
            .map(|(_, amount)| Money::from_minor(*amount, self.currency))
    }

    /// Whether `id` is among the remembered applied events.
    pub fn remembers(&self, id: EventId) -> bool {
        self.applied_events().any(|(fp, _)| fp == id.fingerprint())
    }

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
            _ => {}
        }
        // A close is owed only by a cancelled payment that holds no money (§2.5, 8).
        if self.close_pending && (self.status != Status::Cancelled || self.paid != 0) {
            return Err(E::CloseObligation);
        }
        let refunds = self.recorded_refunds();
        let mut sum: u64 = 0;
        for (i, (fp, amount)) in refunds.iter().enumerate() {
            if *amount == 0 {
                return Err(E::RefundBook);
            }
            sum = sum.checked_add(*amount).ok_or(E::RefundBook)?;
            if refunds.iter().skip(i + 1).any(|(other, _)| other == fp) {
                return Err(E::RefundBook);
            }
        }
        if sum != self.refunded {
            return Err(E::RefundBook);
        }
        let events = usize::from(self.events_len);
        if events > EVENTS || usize::from(self.events_next) >= EVENTS {
            return Err(E::EventBook);
        }
        if u32::try_from(events).map_or(true, |n| n > self.version)
            || u32::try_from(refunds.len()).map_or(true, |n| n > self.version)
        {
            return Err(E::EventBook);
        }
        Ok(())
    }

    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
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
            p.remember(*id, *digest);
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

/// Every field of a payment, borrowed: what snapshots read and write.
#[cfg_attr(not(feature = "serde"), allow(dead_code))]
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

/// Equal payments hold the same data and answer every input alike: the same fields, the same
/// remembered events oldest first, the same recorded refunds. Where the newest event sits in
/// the ring buffer is not part of it (a snapshot does not record it, so a derived comparison
/// would call a restored payment unequal once it has forgotten an event).
impl<const E: usize, const R: usize> PartialEq for Payment<E, R> {
    fn eq(&self, other: &Self) -> bool {
        self.amount == other.amount
            && self.created_at == other.created_at
            && self.expires_at == other.expires_at
            && self.paid == other.paid
            && self.refunded == other.refunded
            && self.version == other.version
            && self.currency == other.currency
            && self.policy == other.policy
            && self.status == other.status
            && self.events_len == other.events_len
            && self.applied_events().eq(other.applied_events())
            && self.recorded_refunds() == other.recorded_refunds()
            && self.close_pending == other.close_pending
    }
}

impl<const E: usize, const R: usize> Eq for Payment<E, R> {}

impl<const E: usize, const R: usize> fmt::Debug for Payment<E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Payment")
            .field("status", &self.status)
            .field("version", &self.version)
            .field("amount", &self.amount())
            .field("paid", &self.paid)
            .field("refunded", &self.refunded)
            .field("expires_at", &self.expires_at)
            .field("policy", &self.policy)
            .field("events", &self.events_len)
            .field("refunds", &self.refunds_len)
            .field("close_pending", &self.close_pending)
            .finish()
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

impl InputKind {
    /// Every kind, in the order of docs/spec.md §2.1.
    pub const ALL: [InputKind; 7] = [
        InputKind::Initiate,
        InputKind::Succeed,
        InputKind::Fail,
        InputKind::Cancel,
        InputKind::Close,
        InputKind::Refund,
        InputKind::Tick,
    ];
}
