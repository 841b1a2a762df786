//! The prepared states and inputs every engine benchmark uses, in all four
//! implementations.

use paystate::{Currency, EventId, Input, Money, Outcome, Payment, RefundId, Timestamp};

use super::machines::{Bare, Event, rust_fsm_machine, statig_machine};

pub const AMOUNT: u64 = 9_999;
pub const CREATED: u64 = 1_000;
pub const EXPIRES: u64 = 2_800;
pub const NOW: u64 = 1_500;

pub fn t(secs: u64) -> Timestamp {
    Timestamp::from_secs(secs)
}

pub fn price() -> Money {
    Money::from_minor(AMOUNT, Currency::CNY)
}

pub fn id(s: &str) -> EventId {
    EventId::new(s.as_bytes()).expect("a valid event id")
}

/// One input to the engine: `apply` or `tick`.
#[derive(Clone, Copy)]
pub enum Step {
    Apply(Input),
    Tick(Timestamp),
}

pub fn engine(p: &mut Payment, step: &Step) -> Outcome {
    match step {
        Step::Apply(input) => p.apply(input, t(NOW)),
        Step::Tick(now) => p.tick(*now),
    }
}

/// A prepared state in all four representations.
#[derive(Clone)]
pub struct Start {
    pub ours: Payment,
    pub bare: Bare,
    pub statig: statig_machine::Running,
    pub fsm: rust_fsm_machine::Running,
}

impl Start {
    pub fn pending() -> Start {
        Start {
            ours: Payment::new(price(), t(CREATED))
                .expect("a positive amount")
                .with_deadline(t(EXPIRES)),
            bare: Bare::new(AMOUNT, EXPIRES),
            statig: statig_machine::new(AMOUNT, EXPIRES),
            fsm: rust_fsm_machine::new(AMOUNT, EXPIRES),
        }
    }

    pub fn then(mut self, step: Step, event: Event) -> Start {
        assert!(matches!(engine(&mut self.ours, &step), Outcome::Applied(_)));
        assert!(matches!(
            self.bare.apply(&event),
            super::machines::Reply::Applied(_)
        ));
        let _ = statig_machine::apply(&mut self.statig, &event);
        let _ = rust_fsm_machine::apply(&mut self.fsm, &event);
        self
    }
}

pub struct Inputs {
    pub initiate: Input,
    pub succeed: Input,
    pub fail: Input,
    pub cancel: Input,
    pub close: Input,
    pub refund_full: Input,
    pub refund_part: Input,
    pub refund_rest: Input,
}

pub fn inputs() -> Inputs {
    let refund = |amount| Money::from_minor(amount, Currency::CNY);
    Inputs {
        initiate: Input::initiate(id("cmd-create-trade-20261127-000042")),
        succeed: Input::succeed(id("ac05099524730693a8b330c5ecf72da9786"), price()),
        fail: Input::fail(id("ac05099524730693a8b330c5ecf72da9787"), "PAYERROR")
            .expect("a valid reason"),
        cancel: Input::cancel(id("cmd-cancel-20261127-000042")),
        close: Input::close(id("ac05099524730693a8b330c5ecf72da9788")),
        refund_full: Input::refund(
            id("ac05099524730693a8b330c5ecf72da9789"),
            RefundId::new(b"refund-000042-1").expect("a valid refund id"),
            price(),
        ),
        refund_part: Input::refund(
            id("ac05099524730693a8b330c5ecf72da9790"),
            RefundId::new(b"refund-000042-1").expect("a valid refund id"),
            refund(3_000),
        ),
        refund_rest: Input::refund(
            id("ac05099524730693a8b330c5ecf72da9791"),
            RefundId::new(b"refund-000042-2").expect("a valid refund id"),
            refund(AMOUNT - 3_000),
        ),
    }
}

/// One (state, input) pair, in all four implementations.
pub struct Case {
    /// The benchmark group: `apply/<kind>`.
    pub name: &'static str,
    pub start: Start,
    pub step: Step,
    pub event: Event,
}

/// The main path of each input kind: the transition a production payment takes with it, from
/// the state it usually meets it in. Plus the redelivered success notification, which only
/// duplicate detection answers (the baselines, which have none, answer it as ignored from
/// the status).
pub fn per_kind() -> Vec<Case> {
    let i = inputs();
    let pending = Start::pending();
    let processing = pending
        .clone()
        .then(Step::Apply(i.initiate), Event::Initiate);
    let succeeded = processing
        .clone()
        .then(Step::Apply(i.succeed), Event::Succeed { amount: AMOUNT });
    let case = |name, start: &Start, step, event| Case {
        name,
        start: start.clone(),
        step,
        event,
    };
    let succeed = Event::Succeed { amount: AMOUNT };
    vec![
        case(
            "apply/initiate",
            &pending,
            Step::Apply(i.initiate),
            Event::Initiate,
        ),
        case(
            "apply/succeed",
            &processing,
            Step::Apply(i.succeed),
            succeed,
        ),
        case("apply/fail", &processing, Step::Apply(i.fail), Event::Fail),
        case(
            "apply/cancel",
            &processing,
            Step::Apply(i.cancel),
            Event::Cancel,
        ),
        case(
            "apply/close",
            &processing,
            Step::Apply(i.close),
            Event::Close,
        ),
        case(
            "apply/refund",
            &succeeded,
            Step::Apply(i.refund_full),
            Event::Refund { amount: AMOUNT },
        ),
        case(
            "apply/tick",
            &processing,
            Step::Tick(t(3_000)),
            Event::Tick { now: 3_000 },
        ),
        case(
            "apply/succeed-redelivered",
            &succeeded,
            Step::Apply(i.succeed),
            succeed,
        ),
    ]
}

/// The six inputs of one Alipay payment's life: WAIT_BUYER_PAY, TRADE_SUCCESS, TRADE_SUCCESS
/// redelivered, a partial refund, the rest refunded, and the TRADE_CLOSED Alipay sends after a
/// full refund: applied, applied, duplicate, applied, applied, ignored. Checked on the way.
pub fn lifecycle() -> (Start, [Step; 6], [Event; 6]) {
    let i = inputs();
    let steps = [
        Step::Apply(i.initiate),
        Step::Apply(i.succeed),
        Step::Apply(i.succeed),
        Step::Apply(i.refund_part),
        Step::Apply(i.refund_rest),
        Step::Apply(i.close),
    ];
    let events = [
        Event::Initiate,
        Event::Succeed { amount: AMOUNT },
        Event::Succeed { amount: AMOUNT },
        Event::Refund { amount: 3_000 },
        Event::Refund {
            amount: AMOUNT - 3_000,
        },
        Event::Close,
    ];
    let start = Start::pending();
    let mut p = start.ours.clone();
    let names: Vec<&str> = steps.iter().map(|s| engine(&mut p, s).name()).collect();
    assert_eq!(
        names,
        [
            "applied",
            "applied",
            "duplicate",
            "applied",
            "applied",
            "ignored"
        ]
    );
    assert_eq!(p.status(), paystate::Status::Refunded);
    (start, steps, events)
}
