//! The reference model of one payment, written from the text of docs/spec.md §2 (§2.3 the
//! order of checks, §2.4 late success, §2.6 obligations) and nothing else: plain `Vec`s, ids
//! kept in full, every check in the order the spec lists it. It shares no code with the
//! engine's fingerprints, digests and ring buffers; it speaks paystate's public value types
//! (`Money`, `Status`, `Effect`, `Rejection`) so its answers compare with the engine's directly.
//!
//! Two harnesses drive it: the property tests (`proptests/engine.rs`) and the `engine` fuzz
//! target (`fuzz/fuzz_targets/engine.rs`). Each builds a [`Model`] beside every engine
//! [`Payment`], feeds both the same [`Command`]s and ticks, and after every step compares the
//! engine's outcome with the model's [`Want`] and the engine's state with the model's
//! ([`Model::agrees_with`], [`Model::agrees_deeply_with`]). [`driver`] writes the same steps
//! as the JSON-lines driver's input and the answers the model expects from it.
//!
//! One thing the model takes from the engine instead of deriving it: the payment's refund
//! request number (§2.6), passed to [`Model::new`] when the payment is created. Its
//! derivation is a hash the spec leaves to snapshot-format.md; what the model checks is that
//! it never changes and that every `refund_required` carries it.

pub mod driver;

use paystate::{
    CreateError, Effect, EventId, IdError, Input, LateSuccess, MAX_ID_LEN, Money, Outcome, Payment,
    RefundId, RefundRequestId, Rejection, Status,
};

/// What a payment is created with (§2): amount and currency, the optional deadline, the
/// late-success policy, and how many events and refunds it keeps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Terms {
    pub amount: Money,
    /// `expires_at`, in seconds.
    pub expires_at: Option<u64>,
    pub policy: LateSuccess,
    /// `EVENTS`: how many applied event ids the payment remembers.
    pub events: usize,
    /// `REFUNDS`: how many refunds it can record.
    pub refunds: usize,
}

impl Terms {
    /// `Payment::new(amount, now)`: no deadline, policy `refund`, 8 events, 16 refunds.
    pub fn new(amount: Money) -> Self {
        Terms {
            amount,
            expires_at: None,
            policy: LateSuccess::Refund,
            events: 8,
            refunds: 16,
        }
    }

    pub fn with_deadline(self, expires_at: Option<u64>) -> Self {
        Terms { expires_at, ..self }
    }

    pub fn with_late_success(self, policy: LateSuccess) -> Self {
        Terms { policy, ..self }
    }

    /// `Payment::<EVENTS, REFUNDS>`.
    pub fn with_capacity(self, events: usize, refunds: usize) -> Self {
        Terms {
            events,
            refunds,
            ..self
        }
    }

    /// §2: whether a payment can be created with these terms.
    pub fn check(&self) -> Result<(), CreateError> {
        if self.amount.minor_units() == 0 {
            Err(CreateError::InvalidAmount)
        } else {
            Ok(())
        }
    }
}

/// An input as the model sees it (§2.1): its kind and every field, ids in full. Event ids
/// travel beside it, as text.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Initiate,
    Succeed(Money),
    /// The failure reason.
    Fail(String),
    Cancel,
    Close,
    /// The refund id and amount.
    Refund(String, Money),
}

/// §2.1: an event id, refund id or failure reason is 1..=64 bytes.
pub fn check_id(text: &str) -> Result<(), IdError> {
    if text.is_empty() || text.len() > MAX_ID_LEN {
        Err(IdError { len: text.len() })
    } else {
        Ok(())
    }
}

impl Command {
    /// The engine's `Input` for this command under `event`, asserting on the way that each
    /// id constructor accepts exactly the ids §2.1 allows. `None`: an id the engine refused,
    /// as it must. Never allocates.
    pub fn input(&self, event: &str) -> Option<Input> {
        let id = EventId::new(event.as_bytes());
        assert_eq!(id.map(|_| ()), check_id(event), "event id {event:?}");
        let id = id.ok()?;
        Some(match self {
            Command::Initiate => Input::initiate(id),
            Command::Succeed(m) => Input::succeed(id, *m),
            Command::Fail(reason) => {
                let input = Input::fail(id, reason);
                assert_eq!(input.map(|_| ()), check_id(reason), "reason {reason:?}");
                input.ok()?
            }
            Command::Cancel => Input::cancel(id),
            Command::Close => Input::close(id),
            Command::Refund(refund_id, m) => {
                let r = RefundId::new(refund_id.as_bytes());
                assert_eq!(
                    r.map(|_| ()),
                    check_id(refund_id),
                    "refund id {refund_id:?}"
                );
                Input::refund(id, r.ok()?, *m)
            }
        })
    }
}

/// The outcome the model expects (§2.2), rejection details and effects included.
#[derive(Debug, Clone, PartialEq)]
pub enum Want {
    Applied(Vec<Effect>),
    Duplicate,
    Ignored,
    Rejected(Rejection),
}

impl Want {
    /// The engine's outcome, in the model's terms.
    pub fn of(outcome: &Outcome) -> Want {
        match outcome {
            Outcome::Applied(effects) => Want::Applied(effects.to_vec()),
            Outcome::Duplicate => Want::Duplicate,
            Outcome::Ignored => Want::Ignored,
            Outcome::Rejected(r) => Want::Rejected(*r),
        }
    }
}

/// One payment as docs/spec.md §2 describes it.
#[derive(Debug, Clone)]
pub struct Model {
    terms: Terms,
    status: Status,
    paid: u64,
    refunded: u64,
    version: u32,
    /// The last `terms.events` applied inputs, oldest first.
    events: Vec<(String, Command)>,
    /// Every recorded refund, in order.
    refunds: Vec<(String, Money)>,
    /// Whether `refund_required` was answered when `paid` became > 0.
    refund_required_emitted: bool,
    /// A `close_trade` obligation is outstanding (§2.6).
    close_pending: bool,
    /// The payment's refund request number, taken from the engine when it was created.
    late_refund: RefundRequestId,
}

impl Model {
    /// A payment just created with `terms` (which [`Terms::check`] accepts), whose refund
    /// request number the engine gave as `late_refund`.
    pub fn new(terms: Terms, late_refund: RefundRequestId) -> Self {
        Model {
            terms,
            status: Status::Pending,
            paid: 0,
            refunded: 0,
            version: 0,
            events: Vec::new(),
            refunds: Vec::new(),
            refund_required_emitted: false,
            close_pending: false,
            late_refund,
        }
    }

    pub fn terms(&self) -> &Terms {
        &self.terms
    }

    pub fn amount(&self) -> Money {
        self.terms.amount
    }

    pub fn status(&self) -> Status {
        self.status
    }

    /// Captured, in minor units.
    pub fn paid(&self) -> u64 {
        self.paid
    }

    /// Refunded, in minor units.
    pub fn refunded(&self) -> u64 {
        self.refunded
    }

    /// `paid − refunded`.
    pub fn balance(&self) -> u64 {
        self.paid - self.refunded
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// The remembered events, oldest first.
    pub fn events(&self) -> &[(String, Command)] {
        &self.events
    }

    /// The recorded refunds, in order.
    pub fn refunds(&self) -> &[(String, Money)] {
        &self.refunds
    }

    pub fn close_pending(&self) -> bool {
        self.close_pending
    }

    /// Whether the step that made `paid` > 0 answered `refund_required`.
    pub fn refund_required_emitted(&self) -> bool {
        self.refund_required_emitted
    }

    pub fn refund_request_id(&self) -> RefundRequestId {
        self.late_refund
    }

    /// `money` in the payment's currency.
    pub fn money(&self, minor: u64) -> Money {
        Money::from_minor(minor, self.terms.amount.currency())
    }

    fn open(&self) -> bool {
        matches!(self.status, Status::Pending | Status::Processing)
    }

    fn late(&self) -> bool {
        matches!(self.status, Status::Failed | Status::Cancelled)
    }

    fn refund_required(&self, minor: u64) -> Effect {
        Effect::RefundRequired {
            amount: self.money(minor),
            refund_id: self.late_refund,
        }
    }

    /// §2.5 item 8, §2.6: the obligations outstanding now, `close_trade` first.
    pub fn outstanding(&self) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.close_pending {
            out.push(Effect::CloseTrade);
        }
        if self.late() && self.balance() > 0 {
            out.push(self.refund_required(self.balance()));
        }
        out
    }

    /// §2.3: the event-id check, then the input's own rules. Only applied inputs are
    /// remembered; the oldest is forgotten when the memory is full.
    pub fn apply(&mut self, event: &str, cmd: &Command) -> Want {
        if let Some((_, seen)) = self.events.iter().find(|(e, _)| e == event) {
            return if seen == cmd {
                Want::Duplicate
            } else {
                Want::Rejected(Rejection::IdempotencyConflict)
            };
        }
        let want = self.decide(cmd);
        if matches!(want, Want::Applied(_)) {
            self.version += 1;
            self.events.push((event.to_owned(), cmd.clone()));
            if self.events.len() > self.terms.events {
                self.events.remove(0);
            }
        }
        want
    }

    /// §2.3 step 2, table by table.
    fn decide(&mut self, cmd: &Command) -> Want {
        use Status::*;
        let amount = self.terms.amount;
        match cmd {
            Command::Initiate => {
                if self.status == Pending {
                    self.status = Processing;
                    Want::Applied(vec![])
                } else {
                    Want::Ignored
                }
            }
            Command::Succeed(m) => {
                if m.currency() != amount.currency() {
                    return Want::Rejected(Rejection::CurrencyMismatch {
                        expected: amount.currency(),
                        got: m.currency(),
                    });
                }
                if m.minor_units() != amount.minor_units() {
                    return Want::Rejected(Rejection::AmountMismatch {
                        expected: amount.minor_units(),
                        got: m.minor_units(),
                    });
                }
                if self.paid > 0 {
                    return Want::Ignored;
                }
                if self.open()
                    || (self.status == Failed && self.terms.policy == LateSuccess::Accept)
                {
                    self.status = Succeeded;
                    self.paid = amount.minor_units();
                    return Want::Applied(vec![]);
                }
                if self.late() {
                    // §2.4: recorded, status unchanged, the money goes back.
                    self.paid = amount.minor_units();
                    self.refund_required_emitted = true;
                    // A paid trade cannot be closed: the capture discharges the close.
                    self.close_pending = false;
                    return Want::Applied(vec![self.refund_required(self.paid)]);
                }
                // succeeded and refunded have paid > 0: answered above.
                unreachable!("status {:?} with nothing paid", self.status)
            }
            Command::Fail(_) => {
                if self.open() {
                    self.status = Failed;
                    Want::Applied(vec![])
                } else {
                    Want::Ignored
                }
            }
            Command::Cancel => match self.status {
                Pending | Processing => {
                    self.status = Cancelled;
                    self.close_pending = true;
                    Want::Applied(vec![Effect::CloseTrade])
                }
                Succeeded => Want::Rejected(Rejection::InvalidTransition),
                Failed | Cancelled | Refunded => Want::Ignored,
            },
            Command::Close => match self.status {
                Pending | Processing => {
                    self.status = Cancelled;
                    Want::Applied(vec![])
                }
                Cancelled if self.close_pending => {
                    self.close_pending = false;
                    Want::Applied(vec![])
                }
                Succeeded => Want::Rejected(Rejection::InvalidTransition),
                Failed | Cancelled | Refunded => Want::Ignored,
            },
            Command::Refund(refund_id, m) => {
                if let Some((_, recorded)) = self.refunds.iter().find(|(r, _)| r == refund_id) {
                    // Equal amount and currency: the same money.
                    return if recorded == m {
                        Want::Duplicate
                    } else {
                        Want::Rejected(Rejection::IdempotencyConflict)
                    };
                }
                if self.paid == 0 {
                    return Want::Rejected(Rejection::InvalidTransition);
                }
                if m.currency() != amount.currency() {
                    return Want::Rejected(Rejection::CurrencyMismatch {
                        expected: amount.currency(),
                        got: m.currency(),
                    });
                }
                if m.minor_units() == 0 {
                    return Want::Rejected(Rejection::InvalidAmount);
                }
                if m.minor_units() > self.balance() {
                    return Want::Rejected(Rejection::RefundExceedsBalance {
                        balance: self.balance(),
                        requested: m.minor_units(),
                    });
                }
                if self.refunds.len() >= self.terms.refunds {
                    return Want::Rejected(Rejection::TooManyRefunds);
                }
                self.refunds.push((refund_id.clone(), *m));
                self.refunded += m.minor_units();
                if self.refunded == self.paid {
                    self.status = Refunded;
                }
                Want::Applied(vec![])
            }
        }
    }

    /// §2.3 `tick`: only the deadline, only while open.
    pub fn tick(&mut self, now: u64) -> Want {
        if self.open() && self.terms.expires_at.is_some_and(|t| t <= now) {
            self.status = Status::Cancelled;
            self.close_pending = true;
            self.version += 1;
            Want::Applied(vec![Effect::CloseTrade])
        } else {
            Want::Ignored
        }
    }

    /// Agreement of the engine's payment with the model, by its public accessors: status,
    /// money, version, recorded-refund count, the obligations (§2.5 item 8), the refund
    /// request number, and funds never lost (§2.5 item 5).
    pub fn agrees_with<const E: usize, const R: usize>(
        &self,
        p: &Payment<E, R>,
    ) -> Result<(), String> {
        let engine = (
            p.status(),
            p.paid().minor_units(),
            p.refunded().minor_units(),
            p.version(),
            p.refund_count(),
            p.close_pending(),
        );
        let model = (
            self.status,
            self.paid,
            self.refunded,
            self.version,
            self.refunds.len(),
            self.close_pending,
        );
        if engine != model {
            return Err(format!(
                "engine (status, paid, refunded, version, refunds, close_pending) {engine:?} \
                 != model {model:?}"
            ));
        }
        if p.paid().currency() != self.terms.amount.currency() {
            return Err(format!("engine holds {:?}", p.paid()));
        }
        if matches!(p.status(), Status::Failed | Status::Cancelled)
            && p.paid() != p.refunded()
            && !self.refund_required_emitted
        {
            return Err("funds lost: captured on a dead payment, no refund_required".into());
        }
        let pending = p.pending_effects();
        if pending.as_slice() != self.outstanding().as_slice() {
            return Err(format!(
                "pending_effects {pending:?}, model outstanding {:?}",
                self.outstanding()
            ));
        }
        if p.refund_request_id() != self.late_refund {
            return Err("the refund request number changed".into());
        }
        Ok(())
    }

    /// The remembered event ids and recorded refunds, asked of the engine id by id (a SHA-256
    /// per id: for snapshots and the end of a run rather than every step).
    pub fn agrees_deeply_with<const E: usize, const R: usize>(
        &self,
        p: &Payment<E, R>,
    ) -> Result<(), String> {
        for (id, _) in &self.events {
            let Ok(event) = EventId::new(id.as_bytes()) else {
                return Err(format!("model remembers an invalid id {id:?}"));
            };
            if !p.remembers(event) {
                return Err(format!("engine forgot event {id:?}, one of the last {E}"));
            }
        }
        for (id, amount) in &self.refunds {
            let Ok(refund) = RefundId::new(id.as_bytes()) else {
                return Err(format!("model recorded an invalid refund id {id:?}"));
            };
            if p.recorded_refund(refund) != Some(*amount) {
                return Err(format!(
                    "refund {id:?}: engine {:?}, model {amount:?}",
                    p.recorded_refund(refund)
                ));
            }
        }
        Ok(())
    }
}
