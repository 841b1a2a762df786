//! The baselines `Payment::apply` is measured against: the same six statuses and the same
//! transitions (docs/spec.md §2.3) written three ways a team would write them without this crate:
//!
//! - [`Bare`]: a hand-written `match` on (status, event);
//! - [`statig_machine`]: a hierarchical machine with the `statig` framework;
//! - [`rust_fsm_machine`]: `rust-fsm`'s `StateMachineImpl` (its DSL cannot carry amounts).
//!
//! They do what a state machine does — pick the next status, record the capture and the
//! refunded sum, emit `close_trade` / `refund_required` — and deliberately skip what the engine
//! adds on top: amount and currency checks, refund bookkeeping per refund id, and duplicate
//! detection by event id. [`check_agreement`] runs once before measuring and proves the
//! three baselines and the engine take the same transitions.

/// The six statuses of docs/spec.md §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Processing,
    Succeeded,
    Failed,
    Cancelled,
    Refunded,
}

/// The same input kinds as `paystate::Input` (and `tick`), with the fields a state machine
/// needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Initiate,
    Succeed { amount: u64 },
    Fail,
    Cancel,
    Close,
    Refund { amount: u64 },
    Tick { now: u64 },
}

/// The two effects of docs/spec.md §2.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    CloseTrade,
    RefundRequired(u64),
}

/// What a baseline answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Applied(Option<Effect>),
    Ignored,
    Rejected,
}

/// The data every baseline keeps: the status and the money a transition depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub status: Status,
    pub amount: u64,
    pub paid: u64,
    pub refunded: u64,
    pub expires_at: u64,
}

impl Money {
    pub const fn new(amount: u64, expires_at: u64) -> Money {
        Money {
            status: Status::Pending,
            amount,
            paid: 0,
            refunded: 0,
            expires_at,
        }
    }
}

/// The hand-written `match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bare(pub Money);

impl Bare {
    pub const fn new(amount: u64, expires_at: u64) -> Bare {
        Bare(Money::new(amount, expires_at))
    }

    pub fn status(&self) -> Status {
        self.0.status
    }

    pub fn apply(&mut self, event: &Event) -> Reply {
        use Status::*;
        let m = &mut self.0;
        let (status, effect) = match (m.status, *event) {
            (Pending, Event::Initiate) => (Processing, None),
            (Pending | Processing, Event::Succeed { .. }) => {
                m.paid = m.amount;
                (Succeeded, None)
            }
            (Failed | Cancelled, Event::Succeed { .. }) if m.paid == 0 => {
                m.paid = m.amount;
                (m.status, Some(Effect::RefundRequired(m.amount)))
            }
            (Pending | Processing, Event::Fail) => (Failed, None),
            (Pending | Processing, Event::Cancel) => (Cancelled, Some(Effect::CloseTrade)),
            (Pending | Processing, Event::Close) => (Cancelled, None),
            (Succeeded, Event::Cancel | Event::Close) => return Reply::Rejected,
            (Succeeded | Failed | Cancelled, Event::Refund { amount }) if m.paid > 0 => {
                m.refunded = m.refunded.saturating_add(amount);
                let next = if m.refunded >= m.paid {
                    Refunded
                } else {
                    m.status
                };
                (next, None)
            }
            (_, Event::Refund { .. }) => return Reply::Rejected,
            (Pending | Processing, Event::Tick { now }) if now >= m.expires_at => {
                (Cancelled, Some(Effect::CloseTrade))
            }
            _ => return Reply::Ignored,
        };
        m.status = status;
        Reply::Applied(effect)
    }
}

/// The machine with `statig`: `open` (pending, processing) and `late` (failed, cancelled)
/// are superstates, as a statig user would factor it.
pub mod statig_machine {
    use super::{Effect, Event, Reply};
    use statig::prelude::*;

    /// Shared storage: the money and the last reply.
    #[derive(Debug, Clone)]
    pub struct Machine {
        pub amount: u64,
        pub paid: u64,
        pub refunded: u64,
        pub expires_at: u64,
        pub reply: Reply,
    }

    pub type Running = InitializedStateMachine<Machine>;

    pub fn new(amount: u64, expires_at: u64) -> Running {
        Machine {
            amount,
            paid: 0,
            refunded: 0,
            expires_at,
            reply: Reply::Ignored,
        }
        .uninitialized_state_machine()
        .init()
    }

    pub fn apply(sm: &mut Running, event: &Event) -> Reply {
        sm.handle(event);
        sm.inner().reply
    }

    pub fn status(sm: &Running) -> super::Status {
        match sm.state() {
            State::Pending {} => super::Status::Pending,
            State::Processing {} => super::Status::Processing,
            State::Succeeded {} => super::Status::Succeeded,
            State::Failed {} => super::Status::Failed,
            State::Cancelled {} => super::Status::Cancelled,
            State::Refunded {} => super::Status::Refunded,
        }
    }

    impl Machine {
        fn to(&mut self, next: State, effect: Option<Effect>) -> Outcome<State> {
            self.reply = Reply::Applied(effect);
            Transition(next)
        }

        fn stay(&mut self, reply: Reply) -> Outcome<State> {
            self.reply = reply;
            Handled
        }

        fn refund(&mut self, amount: u64) -> Outcome<State> {
            self.refunded = self.refunded.saturating_add(amount);
            if self.refunded >= self.paid {
                self.to(State::refunded(), None)
            } else {
                // A partial refund keeps the status: applied, no transition.
                self.stay(Reply::Applied(None))
            }
        }
    }

    #[state_machine(
        initial = "State::pending()",
        state(derive(Debug, Clone, PartialEq, Eq))
    )]
    impl Machine {
        #[state(superstate = "open")]
        fn pending(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Initiate => self.to(State::processing(), None),
                _ => Super,
            }
        }

        #[state(superstate = "open")]
        fn processing(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Initiate => self.stay(Reply::Ignored),
                _ => Super,
            }
        }

        #[superstate]
        fn open(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Succeed { .. } => {
                    self.paid = self.amount;
                    self.to(State::succeeded(), None)
                }
                Event::Fail => self.to(State::failed(), None),
                Event::Cancel => self.to(State::cancelled(), Some(Effect::CloseTrade)),
                Event::Close => self.to(State::cancelled(), None),
                Event::Refund { .. } => self.stay(Reply::Rejected),
                Event::Tick { now } if *now >= self.expires_at => {
                    self.to(State::cancelled(), Some(Effect::CloseTrade))
                }
                _ => self.stay(Reply::Ignored),
            }
        }

        #[state]
        fn succeeded(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Cancel | Event::Close => self.stay(Reply::Rejected),
                Event::Refund { amount } => self.refund(*amount),
                _ => self.stay(Reply::Ignored),
            }
        }

        #[state(superstate = "late")]
        fn failed(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Refund { amount } if self.paid > 0 => self.refund(*amount),
                _ => Super,
            }
        }

        #[state(superstate = "late")]
        fn cancelled(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Refund { amount } if self.paid > 0 => self.refund(*amount),
                _ => Super,
            }
        }

        #[superstate]
        fn late(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Succeed { .. } if self.paid == 0 => {
                    self.paid = self.amount;
                    self.stay(Reply::Applied(Some(Effect::RefundRequired(self.amount))))
                }
                Event::Refund { .. } => self.stay(Reply::Rejected),
                _ => self.stay(Reply::Ignored),
            }
        }

        #[state]
        fn refunded(&mut self, event: &Event) -> Outcome<State> {
            match event {
                Event::Refund { .. } => self.stay(Reply::Rejected),
                _ => self.stay(Reply::Ignored),
            }
        }
    }
}

/// The machine with `rust-fsm`: a transition function and an output function over a state
/// that carries the money (the DSL's states cannot). `consume` answers
/// `TransitionImpossibleError` for an input that changes nothing; the wrapper tells ignored
/// from rejected only on that path.
pub mod rust_fsm_machine {
    use super::{Bare, Effect, Event, Money, Reply, Status};
    use rust_fsm::{StateMachine, StateMachineImpl};

    #[derive(Debug, Clone)]
    pub struct Payment;

    pub type Running = StateMachine<Payment>;

    pub fn new(amount: u64, expires_at: u64) -> Running {
        StateMachine::from_state(Money::new(amount, expires_at))
    }

    pub fn apply(sm: &mut Running, event: &Event) -> Reply {
        match sm.consume(event) {
            Ok(effect) => Reply::Applied(effect),
            Err(_) => rejected_or_ignored(sm.state(), event),
        }
    }

    pub fn status(sm: &Running) -> Status {
        sm.state().status
    }

    #[cold]
    fn rejected_or_ignored(state: &Money, event: &Event) -> Reply {
        let mut probe = Bare(*state);
        probe.apply(event)
    }

    impl StateMachineImpl for Payment {
        type Input = Event;
        type State = Money;
        type Output = Effect;
        const INITIAL_STATE: Money = Money::new(1, u64::MAX);

        fn transition(m: &Money, event: &Event) -> Option<Money> {
            use Status::*;
            let mut next = *m;
            next.status = match (m.status, *event) {
                (Pending, Event::Initiate) => Processing,
                (Pending | Processing, Event::Succeed { .. }) => {
                    next.paid = m.amount;
                    Succeeded
                }
                (Failed | Cancelled, Event::Succeed { .. }) if m.paid == 0 => {
                    next.paid = m.amount;
                    m.status
                }
                (Pending | Processing, Event::Fail) => Failed,
                (Pending | Processing, Event::Cancel | Event::Close) => Cancelled,
                (Succeeded | Failed | Cancelled, Event::Refund { amount }) if m.paid > 0 => {
                    next.refunded = m.refunded.saturating_add(amount);
                    if next.refunded >= m.paid {
                        Refunded
                    } else {
                        m.status
                    }
                }
                (Pending | Processing, Event::Tick { now }) if now >= m.expires_at => Cancelled,
                _ => return None,
            };
            Some(next)
        }

        fn output(m: &Money, event: &Event) -> Option<Effect> {
            use Status::*;
            match (m.status, *event) {
                (Pending | Processing, Event::Cancel | Event::Tick { .. }) => {
                    Some(Effect::CloseTrade)
                }
                (Failed | Cancelled, Event::Succeed { .. }) => {
                    Some(Effect::RefundRequired(m.amount))
                }
                _ => None,
            }
        }
    }
}

/// Every (status, event) pair through the three baselines and the engine: they must agree on
/// the reply class, the next status and the effect. Panics (before anything is measured) if a
/// baseline drifts from docs/spec.md §2.3, so the comparison stays like for like. Money checks
/// and duplicates aside, and obligations: the baselines keep none, so a `close` confirming an
/// outstanding `close_trade` (§2.6), which the engine applies, is for them `ignored`.
pub fn check_agreement() {
    use paystate::{Currency, EventId, Input, Payment, RefundId, Timestamp};

    const AMOUNT: u64 = 9_999;
    const EXPIRES: u64 = 2_800;
    let price = paystate::Money::from_minor(AMOUNT, Currency::CNY);
    let events = [
        Event::Initiate,
        Event::Succeed { amount: AMOUNT },
        Event::Fail,
        Event::Cancel,
        Event::Close,
        Event::Refund { amount: 1_000 },
        Event::Refund { amount: AMOUNT },
        Event::Tick { now: 3_000 },
        Event::Tick { now: 1_500 },
    ];
    // Paths to every status (and a late capture), from a fresh payment.
    let paths: &[&[Event]] = &[
        &[],
        &[Event::Initiate],
        &[Event::Initiate, Event::Succeed { amount: AMOUNT }],
        &[Event::Initiate, Event::Fail],
        &[Event::Initiate, Event::Cancel],
        &[Event::Close],
        &[
            Event::Succeed { amount: AMOUNT },
            Event::Refund { amount: AMOUNT },
        ],
        &[
            Event::Succeed { amount: AMOUNT },
            Event::Refund { amount: 1 },
        ],
        &[Event::Cancel, Event::Succeed { amount: AMOUNT }],
        &[Event::Fail, Event::Succeed { amount: AMOUNT }],
        &[
            Event::Fail,
            Event::Succeed { amount: AMOUNT },
            Event::Refund { amount: 5 },
        ],
    ];
    let mut n = 0u32;
    let mut engine_input = |e: &Event| -> Option<Input> {
        n += 1;
        let id = EventId::new(&n.to_le_bytes()).ok()?;
        Some(match *e {
            Event::Initiate => Input::initiate(id),
            Event::Succeed { amount } => {
                Input::succeed(id, paystate::Money::from_minor(amount, Currency::CNY))
            }
            Event::Fail => Input::fail(id, "PAYERROR").ok()?,
            Event::Cancel => Input::cancel(id),
            Event::Close => Input::close(id),
            Event::Refund { amount } => Input::refund(
                id,
                RefundId::new(&n.to_le_bytes()).ok()?,
                paystate::Money::from_minor(amount, Currency::CNY),
            ),
            Event::Tick { .. } => return None,
        })
    };
    for path in paths {
        for last in &events {
            let mut bare = Bare::new(AMOUNT, EXPIRES);
            let mut st = statig_machine::new(AMOUNT, EXPIRES);
            let mut fsm = rust_fsm_machine::new(AMOUNT, EXPIRES);
            let mut ours: Payment = Payment::new(price, Timestamp::from_secs(1_000))
                .expect("a positive amount")
                .with_deadline(Timestamp::from_secs(EXPIRES));
            for e in path.iter().chain(core::iter::once(last)) {
                let confirms_close = matches!(e, Event::Close)
                    && ours
                        .pending_effects()
                        .into_iter()
                        .any(|p| matches!(p, paystate::Effect::CloseTrade));
                let a = bare.apply(e);
                let b = statig_machine::apply(&mut st, e);
                let c = rust_fsm_machine::apply(&mut fsm, e);
                let d = match (engine_input(e), *e) {
                    (Some(input), _) => ours.apply(&input, Timestamp::from_secs(2_000)),
                    (None, Event::Tick { now }) => ours.tick(Timestamp::from_secs(now)),
                    (None, _) => unreachable!("every input kind but tick builds"),
                };
                if let paystate::Outcome::Rejected(r) = d
                    && r != paystate::Rejection::InvalidTransition
                {
                    // A money check the baselines deliberately skip.
                    break;
                }
                let d = match d {
                    paystate::Outcome::Applied(effects) => {
                        Reply::Applied(effects.first().map(|effect| match effect {
                            paystate::Effect::CloseTrade => Effect::CloseTrade,
                            paystate::Effect::RefundRequired { amount, .. } => {
                                Effect::RefundRequired(amount.minor_units())
                            }
                        }))
                    }
                    paystate::Outcome::Ignored | paystate::Outcome::Duplicate => Reply::Ignored,
                    paystate::Outcome::Rejected(_) => Reply::Rejected,
                };
                let ctx = || format!("after {path:?} then {last:?}, at {e:?}");
                let d = if confirms_close {
                    assert_eq!(d, Reply::Applied(None), "the close confirms {}", ctx());
                    Reply::Ignored
                } else {
                    d
                };
                assert_eq!(a, b, "match vs statig {}", ctx());
                assert_eq!(a, c, "match vs rust-fsm {}", ctx());
                assert_eq!(a, d, "match vs paystate {}", ctx());
                let status = bare.status();
                assert_eq!(status, statig_machine::status(&st), "{}", ctx());
                assert_eq!(status, rust_fsm_machine::status(&fsm), "{}", ctx());
                assert_eq!(
                    format!("{status:?}"),
                    format!("{:?}", ours.status()),
                    "{}",
                    ctx()
                );
            }
        }
    }
}
