//! The `Payment` itself: its fields, its construction, `apply` and `tick` (which ask
//! `transition::decide` and commit what it decided), its obligations and its accessors.

use core::fmt;

use super::events::{EventEntry, EventRing};
use super::input::{EventId, Input, RefundId};
use super::outcome::{Effect, Effects, Outcome, RefundRequestId};
use super::status::{LateSuccess, Status};
use super::transition::{self, Change, Decision, EffectKind, State};
use crate::money::{Currency, Money};
use crate::time::Timestamp;

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
    pub(super) amount: u64,
    pub(super) created_at: Timestamp,
    pub(super) expires_at: Option<Timestamp>,
    pub(super) paid: u64,
    pub(super) refunded: u64,
    pub(super) version: u32,
    pub(super) currency: Currency,
    pub(super) policy: LateSuccess,
    pub(super) status: Status,
    /// The remembered applied events (docs/spec.md §2.3, step 1).
    pub(super) events: EventRing<EVENTS>,
    /// Recorded refunds in order: fingerprint and amount.
    pub(super) refunds: [([u8; 8], u64); REFUNDS],
    pub(super) refunds_len: u8,
    /// A `close_trade` obligation is outstanding (docs/spec.md §2.6). The refund obligation
    /// needs no flag: it is outstanding exactly while the payment is late with money held.
    pub(super) close_pending: bool,
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
            events: EventRing::new(),
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
        let decision = transition::decide(&self.state(), input);
        self.settle(decision)
    }

    /// Time passed: at or after the deadline, a `pending` or `processing` payment is cancelled
    /// with [`Effect::CloseTrade`]. Otherwise `Ignored`; calling it early or twice is harmless.
    pub fn tick(&mut self, now: Timestamp) -> Outcome {
        let decision = transition::decide_tick(&self.state(), now);
        self.settle(decision)
    }

    /// When the host should next call [`tick`](Self::tick): the deadline while the payment is
    /// still open, else `None`.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        match self.status {
            Status::Pending | Status::Processing => self.expires_at,
            Status::Succeeded | Status::Failed | Status::Cancelled | Status::Refunded => None,
        }
    }

    /// What [`transition::decide`] looks at.
    fn state(&self) -> State<'_> {
        State {
            status: self.status,
            amount: self.amount,
            currency: self.currency,
            paid: self.paid,
            refunded: self.refunded,
            policy: self.policy,
            version: self.version,
            expires_at: self.expires_at,
            events: self.events.as_unordered_slice(),
            refunds: self.recorded_refunds(),
            refunds_full: usize::from(self.refunds_len) >= REFUNDS,
            close_pending: self.close_pending,
        }
    }

    /// The outcome of a decision: an applied change is committed, anything else leaves the
    /// payment untouched.
    fn settle(&mut self, decision: Decision) -> Outcome {
        match decision {
            Decision::Apply(change) => Outcome::Applied(self.commit(change)),
            Decision::Duplicate => Outcome::Duplicate,
            Decision::Ignore => Outcome::Ignored,
            Decision::Reject(rejection) => Outcome::Rejected(rejection),
        }
    }

    /// Writes a change [`transition::decide`] made, and returns its effect. Nothing is checked
    /// or refused here: the version, the room for a refund and the effect were all decided
    /// there.
    fn commit(&mut self, change: Change) -> Effects {
        if let Some((id, amount)) = change.record_refund {
            // `decide` refuses a refund when the list is full, so the slot exists.
            let next = usize::from(self.refunds_len);
            if let Some(slot) = self.refunds.get_mut(next) {
                *slot = (id.fingerprint(), amount);
                self.refunds_len = self.refunds_len.saturating_add(1);
            }
        }
        if let Some((id, digest)) = change.remember {
            self.events.remember(id, digest);
        }
        self.status = change.status;
        self.paid = change.paid;
        self.refunded = change.refunded;
        self.close_pending = change.close_pending;
        self.version = change.version;
        let effect = change.effect.map(|kind| match kind {
            EffectKind::CloseTrade => Effect::CloseTrade,
            EffectKind::RefundRequired => Effect::RefundRequired {
                amount: self.balance(),
                refund_id: self.refund_request_id(),
            },
        });
        effect.map_or_else(Effects::new, |effect| Effects::from([effect]))
    }

    /// The outstanding refund obligation: the payment is late (`failed` or `cancelled`) and
    /// holds money (`paid` > `refunded`).
    fn refund_obligation(&self) -> Option<Effect> {
        let late = match self.status {
            Status::Failed | Status::Cancelled => true,
            Status::Pending | Status::Processing | Status::Succeeded | Status::Refunded => false,
        };
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

    /// The remembered events, oldest first.
    pub(crate) fn applied_events(&self) -> impl Iterator<Item = EventEntry> + '_ {
        self.events.oldest_first()
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
            && self.events == other.events
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
            .field("events", &self.events.len())
            .field("refunds", &self.refunds_len)
            .field("close_pending", &self.close_pending)
            .finish()
    }
}
