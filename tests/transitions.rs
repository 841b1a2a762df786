//! The exhaustive table test: every input × every status × both late-success policies,
//! against the table of docs/spec.md §2.3 written out by hand (independently of the code's
//! table), asserting outcome, status, money and effects.

use paystate::{
    Currency, Effect, EventId, Input, LateSuccess, Money, Outcome, Payment, RefundId, Rejection,
    Status, Timestamp,
};

const AMOUNT: u64 = 100;
const DEADLINE: u64 = 2_000;

fn cny(minor: u64) -> Money {
    Money::from_minor(minor, Currency::CNY)
}

fn t(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn id(s: &str) -> EventId {
    EventId::new(s.as_bytes()).unwrap()
}

fn applied(p: &mut Payment, input: Input) {
    let outcome = p.apply(&input, t(1_100));
    assert!(
        matches!(outcome, Outcome::Applied(_)),
        "setup step {input:?}: {outcome:?}"
    );
}

/// The starting states: each status, plus the two "late" states holding captured money.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Setup {
    Pending,
    Processing,
    Succeeded,
    Failed,
    Cancelled,
    /// Cancelled, and the provider confirmed the close.
    CancelledClosed,
    FailedPaid,
    CancelledPaid,
    Refunded,
}

const SETUPS: [Setup; 9] = [
    Setup::Pending,
    Setup::Processing,
    Setup::Succeeded,
    Setup::Failed,
    Setup::Cancelled,
    Setup::CancelledClosed,
    Setup::FailedPaid,
    Setup::CancelledPaid,
    Setup::Refunded,
];

fn fresh(policy: LateSuccess) -> Payment {
    Payment::new(cny(AMOUNT), t(1_000))
        .unwrap()
        .with_deadline(t(DEADLINE))
        .with_late_success(policy)
}

fn build(setup: Setup, policy: LateSuccess) -> Option<Payment> {
    let mut p = fresh(policy);
    let pay = || Input::succeed(id("setup-pay"), cny(AMOUNT));
    match setup {
        Setup::Pending => {}
        Setup::Processing => applied(&mut p, Input::initiate(id("setup-init"))),
        Setup::Succeeded => applied(&mut p, pay()),
        Setup::Failed => applied(&mut p, Input::fail(id("setup-fail"), "PAYERROR").unwrap()),
        Setup::Cancelled => applied(&mut p, Input::cancel(id("setup-cancel"))),
        Setup::CancelledClosed => {
            applied(&mut p, Input::cancel(id("setup-cancel")));
            applied(&mut p, Input::close(id("setup-closed")));
        }
        Setup::FailedPaid => {
            if policy == LateSuccess::Accept {
                return None; // under `accept` a late capture makes it succeeded instead
            }
            applied(&mut p, Input::fail(id("setup-fail"), "PAYERROR").unwrap());
            applied(&mut p, pay());
        }
        Setup::CancelledPaid => {
            applied(&mut p, Input::cancel(id("setup-cancel")));
            applied(&mut p, pay());
        }
        Setup::Refunded => {
            applied(&mut p, pay());
            applied(
                &mut p,
                Input::refund(
                    id("setup-refund"),
                    RefundId::new(b"r0").unwrap(),
                    cny(AMOUNT),
                ),
            );
        }
    }
    Some(p)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum In {
    Initiate,
    Succeed,
    Fail,
    Cancel,
    Close,
    RefundPart,
    RefundAll,
    Tick,
}

const INPUTS: [In; 8] = [
    In::Initiate,
    In::Succeed,
    In::Fail,
    In::Cancel,
    In::Close,
    In::RefundPart,
    In::RefundAll,
    In::Tick,
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// applied: status, paid, refunded, effect
    Applied(Status, u64, u64, Option<Effect>),
    Ignored,
    Rejected(Rejection),
}

/// docs/spec.md §2.3, written out row by row.
fn expected(setup: Setup, policy: LateSuccess, input: In) -> Want {
    use In::*;
    use Status as S;
    use Want::*;
    let refund_required = Some(Effect::RefundRequired {
        amount: cny(AMOUNT),
        refund_id: fresh(policy).refund_request_id(),
    });
    let close_trade = Some(Effect::CloseTrade);
    let invalid = Rejected(Rejection::InvalidTransition);
    match setup {
        Setup::Pending | Setup::Processing => match input {
            Initiate if setup == Setup::Pending => Applied(S::Processing, 0, 0, None),
            Initiate => Ignored,
            Succeed => Applied(S::Succeeded, AMOUNT, 0, None),
            Fail => Applied(S::Failed, 0, 0, None),
            Cancel => Applied(S::Cancelled, 0, 0, close_trade),
            Close => Applied(S::Cancelled, 0, 0, None),
            RefundPart | RefundAll => invalid,
            Tick => Applied(S::Cancelled, 0, 0, close_trade),
        },
        Setup::Succeeded => match input {
            Cancel | Close => invalid,
            RefundPart => Applied(S::Succeeded, AMOUNT, 30, None),
            RefundAll => Applied(S::Refunded, AMOUNT, AMOUNT, None),
            _ => Ignored,
        },
        Setup::Failed => match (input, policy) {
            (Succeed, LateSuccess::Refund) => Applied(S::Failed, AMOUNT, 0, refund_required),
            (Succeed, LateSuccess::Accept) => Applied(S::Succeeded, AMOUNT, 0, None),
            (RefundPart | RefundAll, _) => invalid,
            _ => Ignored,
        },
        Setup::Cancelled => match input {
            Succeed => Applied(S::Cancelled, AMOUNT, 0, refund_required),
            // The provider confirms the close the cancel asked for (§2.6).
            Close => Applied(S::Cancelled, 0, 0, None),
            RefundPart | RefundAll => invalid,
            _ => Ignored,
        },
        Setup::CancelledClosed => match input {
            Succeed => Applied(S::Cancelled, AMOUNT, 0, refund_required),
            RefundPart | RefundAll => invalid,
            _ => Ignored,
        },
        Setup::FailedPaid | Setup::CancelledPaid => {
            let status = if setup == Setup::FailedPaid {
                S::Failed
            } else {
                S::Cancelled
            };
            match input {
                RefundPart => Applied(status, AMOUNT, 30, None),
                RefundAll => Applied(S::Refunded, AMOUNT, AMOUNT, None),
                _ => Ignored,
            }
        }
        Setup::Refunded => match input {
            RefundPart | RefundAll => {
                let requested = if input == RefundPart { 30 } else { AMOUNT };
                Rejected(Rejection::RefundExceedsBalance {
                    balance: 0,
                    requested,
                })
            }
            _ => Ignored,
        },
    }
}

fn run(p: &mut Payment, input: In) -> Outcome {
    let rid = RefundId::new(b"table-refund").unwrap();
    let now = t(DEADLINE); // at the deadline: `tick` expires an open payment
    let balance = p.balance().minor_units();
    match input {
        In::Initiate => p.apply(&Input::initiate(id("x-init")), now),
        In::Succeed => p.apply(&Input::succeed(id("x-pay"), cny(AMOUNT)), now),
        In::Fail => p.apply(&Input::fail(id("x-fail"), "PAYERROR").unwrap(), now),
        In::Cancel => p.apply(&Input::cancel(id("x-cancel")), now),
        In::Close => p.apply(&Input::close(id("x-close")), now),
        In::RefundPart => p.apply(&Input::refund(id("x-refund"), rid, cny(30)), now),
        In::RefundAll => {
            let amount = if balance == 0 { AMOUNT } else { balance };
            p.apply(&Input::refund(id("x-refund"), rid, cny(amount)), now)
        }
        In::Tick => p.tick(now),
    }
}

#[test]
fn every_input_in_every_status_under_both_policies() {
    let mut rows = 0;
    for setup in SETUPS {
        for policy in [LateSuccess::Refund, LateSuccess::Accept] {
            for input in INPUTS {
                let Some(mut p) = build(setup, policy) else {
                    continue;
                };
                let before = p.clone();
                let outcome = run(&mut p, input);
                let want = expected(setup, policy, input);
                let ctx = format!("{setup:?} × {input:?} under {policy:?}");
                match want {
                    Want::Applied(status, paid, refunded, effect) => {
                        let effects: Vec<Effect> = effect.into_iter().collect();
                        assert_eq!(outcome.name(), "applied", "{ctx}: {outcome:?}");
                        assert_eq!(outcome.effects(), effects.as_slice(), "{ctx}");
                        assert_eq!(p.status(), status, "{ctx}");
                        assert_eq!(p.paid(), cny(paid), "{ctx}");
                        assert_eq!(p.refunded(), cny(refunded), "{ctx}");
                        assert_eq!(p.version(), before.version() + 1, "{ctx}");
                        assert!(
                            p.status().rank() >= before.status().rank(),
                            "{ctx}: rank fell"
                        );
                    }
                    Want::Ignored => {
                        assert_eq!(outcome, Outcome::Ignored, "{ctx}");
                        assert_eq!(p, before, "{ctx}: an ignored input changed the payment");
                    }
                    Want::Rejected(r) => {
                        assert_eq!(outcome, Outcome::Rejected(r), "{ctx}");
                        assert_eq!(p, before, "{ctx}: a rejected input changed the payment");
                    }
                }
                p.check_invariants().unwrap();
                assert_eq!(
                    p.pending_effects().as_slice(),
                    expected_pending(&p).as_slice(),
                    "{ctx}: obligations"
                );
                rows += 1;
            }
        }
    }
    // 9 setups × 2 policies × 8 inputs, less "failed with money" under `accept` (unreachable).
    assert_eq!(rows, 9 * 2 * 8 - 8, "every combination ran");
}

/// docs/spec.md §2.6 by hand for the table's end states: a close is owed from the cancel or tick
/// that asked for it until a close or a capture; a refund while late with money held.
fn expected_pending(p: &Payment) -> Vec<Effect> {
    let held = p.paid().minor_units() - p.refunded().minor_units();
    match p.status() {
        Status::Cancelled | Status::Failed if held > 0 => vec![Effect::RefundRequired {
            amount: cny(held),
            refund_id: fresh(p.late_success()).refund_request_id(),
        }],
        Status::Cancelled if p.close_pending() => vec![Effect::CloseTrade],
        _ => vec![],
    }
}

#[test]
fn close_trade_is_owed_until_the_provider_closes_or_the_trade_is_paid() {
    let mut p = fresh(LateSuccess::Refund);
    let _ = p.tick(t(DEADLINE));
    assert_eq!(p.pending_effects().as_slice(), &[Effect::CloseTrade]);
    // Anything else applied in between leaves it outstanding.
    assert_eq!(
        p.apply(&Input::cancel(id("c1")), t(DEADLINE)),
        Outcome::Ignored
    );
    assert_eq!(
        p.apply(&Input::fail(id("f1"), "PAYERROR").unwrap(), t(DEADLINE)),
        Outcome::Ignored
    );
    assert_eq!(p.pending_effects().as_slice(), &[Effect::CloseTrade]);
    // The provider's "trade does not exist" / close answer discharges it, once.
    let v = p.version();
    assert!(
        matches!(p.apply(&Input::close(id("closed")), t(DEADLINE)), Outcome::Applied(e) if e.is_empty())
    );
    assert_eq!(p.version(), v + 1);
    assert!(p.pending_effects().is_empty());
    assert_eq!(
        p.apply(&Input::close(id("closed-again")), t(DEADLINE)),
        Outcome::Ignored
    );

    // A capture instead: the close is discharged and a refund is owed.
    let mut q = fresh(LateSuccess::Refund);
    let _ = q.apply(&Input::cancel(id("c1")), t(1_001));
    let _ = q.apply(&Input::succeed(id("late"), cny(AMOUNT)), t(1_002));
    let owed = Effect::RefundRequired {
        amount: cny(AMOUNT),
        refund_id: q.refund_request_id(),
    };
    assert_eq!(q.pending_effects().as_slice(), &[owed]);
    // A partial refund under another id reduces what is owed; the id stays.
    let _ = q.apply(
        &Input::refund(id("r1"), RefundId::new(b"merchant-1").unwrap(), cny(30)),
        t(1_003),
    );
    assert_eq!(
        q.pending_effects().as_slice(),
        &[Effect::RefundRequired {
            amount: cny(70),
            refund_id: q.refund_request_id(),
        }]
    );
    // The rest, confirmed under the obligation's own request number, discharges it.
    let rid = q.refund_request_id().refund_id();
    let _ = q.apply(&Input::refund(id("r2"), rid, cny(70)), t(1_004));
    assert!(q.pending_effects().is_empty());
    assert_eq!(q.status(), Status::Refunded);
}

#[test]
fn the_refund_request_number_is_stable_and_provider_safe() {
    let p = fresh(LateSuccess::Refund);
    let id = p.refund_request_id();
    assert_eq!(id, fresh(LateSuccess::Refund).refund_request_id());
    assert_eq!(id.as_str().len(), 24);
    assert!(id.as_str().starts_with("lr"));
    assert!(
        id.as_str()
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    );
    // Another payment (another creation time or amount) gets another number.
    let other: Payment = Payment::new(cny(AMOUNT), t(1_001))
        .unwrap()
        .with_deadline(t(DEADLINE));
    assert_ne!(id, other.refund_request_id());
    let dearer: Payment = Payment::new(cny(AMOUNT + 1), t(1_000))
        .unwrap()
        .with_deadline(t(DEADLINE));
    assert_ne!(id, dearer.refund_request_id());
}

fn paid_payment() -> Payment {
    build(Setup::Succeeded, LateSuccess::Refund).unwrap()
}

#[test]
fn succeed_checks_currency_before_amount() {
    let mut p = build(Setup::Processing, LateSuccess::Refund).unwrap();
    let before = p.clone();
    let usd = Input::succeed(id("n1"), Money::from_minor(1, Currency::USD));
    assert_eq!(
        p.apply(&usd, t(1)),
        Outcome::Rejected(Rejection::CurrencyMismatch {
            expected: Currency::CNY,
            got: Currency::USD
        })
    );
    let wrong = Input::succeed(id("n1"), cny(AMOUNT - 1));
    assert_eq!(
        p.apply(&wrong, t(1)),
        Outcome::Rejected(Rejection::AmountMismatch {
            expected: AMOUNT,
            got: AMOUNT - 1
        })
    );
    assert_eq!(p, before);
    // Amount is checked even when the payment is already paid.
    let mut paid = paid_payment();
    let over = Input::succeed(id("n9"), cny(AMOUNT + 1));
    assert_eq!(
        paid.apply(&over, t(1)),
        Outcome::Rejected(Rejection::AmountMismatch {
            expected: AMOUNT,
            got: AMOUNT + 1
        })
    );
}

#[test]
fn refund_checks_in_order() {
    let rid = |s: &str| RefundId::new(s.as_bytes()).unwrap();
    let mut p = paid_payment();
    // currency before amount
    let r = Input::refund(id("e1"), rid("r1"), Money::from_minor(0, Currency::USD));
    assert!(matches!(
        p.apply(&r, t(1)),
        Outcome::Rejected(Rejection::CurrencyMismatch { .. })
    ));
    assert_eq!(
        p.apply(&Input::refund(id("e1"), rid("r1"), cny(0)), t(1)),
        Outcome::Rejected(Rejection::InvalidAmount)
    );
    assert_eq!(
        p.apply(&Input::refund(id("e1"), rid("r1"), cny(AMOUNT + 1)), t(1)),
        Outcome::Rejected(Rejection::RefundExceedsBalance {
            balance: AMOUNT,
            requested: AMOUNT + 1
        })
    );
    assert!(matches!(
        p.apply(&Input::refund(id("e1"), rid("r1"), cny(10)), t(1)),
        Outcome::Applied(_)
    ));
    // same refund id, another notification: duplicate if the amount is equal, else conflict
    assert_eq!(
        p.apply(&Input::refund(id("e2"), rid("r1"), cny(10)), t(1)),
        Outcome::Duplicate
    );
    assert_eq!(
        p.apply(&Input::refund(id("e2"), rid("r1"), cny(11)), t(1)),
        Outcome::Rejected(Rejection::IdempotencyConflict)
    );
    // the refund-id check comes before the balance check
    assert_eq!(
        p.apply(&Input::refund(id("e3"), rid("r1"), cny(10)), t(1)),
        Outcome::Duplicate
    );
    assert_eq!((p.refunded(), p.version()), (cny(10), 2));
}

#[test]
fn refund_capacity_is_a_typed_rejection() {
    let mut p: Payment = Payment::new(cny(1_000), t(0)).unwrap();
    applied(&mut p, Input::succeed(id("pay"), cny(1_000)));
    for i in 0..16 {
        let input = Input::refund(
            id(&format!("e{i}")),
            RefundId::new(format!("r{i}").as_bytes()).unwrap(),
            cny(1),
        );
        assert!(
            matches!(p.apply(&input, t(1)), Outcome::Applied(_)),
            "refund {i}"
        );
    }
    let before = p.clone();
    let input = Input::refund(id("e16"), RefundId::new(b"r16").unwrap(), cny(1));
    assert_eq!(
        p.apply(&input, t(1)),
        Outcome::Rejected(Rejection::TooManyRefunds)
    );
    assert_eq!(p, before);
    // a larger capacity takes more
    let mut big: Payment<8, 32> = Payment::with_capacity(cny(1_000), t(0)).unwrap();
    assert!(matches!(
        big.apply(&Input::succeed(id("pay"), cny(1_000)), t(0)),
        Outcome::Applied(_)
    ));
    for i in 0..32 {
        let input = Input::refund(
            id(&format!("e{i}")),
            RefundId::new(format!("r{i}").as_bytes()).unwrap(),
            cny(1),
        );
        assert!(
            matches!(big.apply(&input, t(1)), Outcome::Applied(_)),
            "refund {i}"
        );
    }
}

#[test]
fn event_ids_duplicate_or_conflict_and_are_remembered_for_at_least_eight() {
    let mut p: Payment = Payment::new(cny(AMOUNT), t(0)).unwrap();
    let init = Input::initiate(id("e0"));
    applied(&mut p, init);
    assert_eq!(p.apply(&init, t(5)), Outcome::Duplicate);
    // same id, different input: conflict, even where the input would be ignored
    assert_eq!(
        p.apply(&Input::cancel(id("e0")), t(5)),
        Outcome::Rejected(Rejection::IdempotencyConflict)
    );
    let fail_a = Input::fail(id("f"), "PAYERROR").unwrap();
    let fail_b = Input::fail(id("f"), "EXPIRED").unwrap();
    applied(&mut p, fail_a);
    assert_eq!(p.apply(&fail_a, t(5)), Outcome::Duplicate);
    assert_eq!(
        p.apply(&fail_b, t(5)),
        Outcome::Rejected(Rejection::IdempotencyConflict)
    );
    // ignored and rejected inputs are not remembered
    let late_init = Input::initiate(id("ignored-once"));
    assert_eq!(p.apply(&late_init, t(5)), Outcome::Ignored);
    assert!(!p.remembers(id("ignored-once")));
    // eight more applied events: the first ones are still among the last eight or forgotten
    let mut q: Payment = Payment::new(cny(10_000), t(0)).unwrap();
    applied(&mut q, Input::succeed(id("pay"), cny(10_000)));
    for i in 0..7 {
        applied(
            &mut q,
            Input::refund(
                id(&format!("r{i}")),
                RefundId::new(format!("r{i}").as_bytes()).unwrap(),
                cny(1),
            ),
        );
    }
    assert!(
        q.remembers(id("pay")),
        "the last eight applied ids are remembered"
    );
    assert_eq!(
        q.apply(&Input::succeed(id("pay"), cny(10_000)), t(1)),
        Outcome::Duplicate
    );
    applied(
        &mut q,
        Input::refund(id("r7"), RefundId::new(b"r7").unwrap(), cny(1)),
    );
    assert!(!q.remembers(id("pay")), "the ninth-newest is forgotten");
    // forgotten, yet a redelivered capture is still only ignored: the payment is paid
    assert_eq!(
        q.apply(&Input::succeed(id("pay"), cny(10_000)), t(1)),
        Outcome::Ignored
    );
}

#[test]
fn tick_respects_the_deadline_exactly() {
    let mut p = build(Setup::Processing, LateSuccess::Refund).unwrap();
    assert_eq!(p.next_deadline(), Some(t(DEADLINE)));
    assert_eq!(p.tick(t(DEADLINE - 1)), Outcome::Ignored);
    assert_eq!(
        p.tick(t(DEADLINE)),
        Outcome::Applied(paystate::Effects::from([Effect::CloseTrade]))
    );
    assert_eq!(p.next_deadline(), None);
    assert_eq!(p.tick(t(DEADLINE + 1)), Outcome::Ignored);
    // no deadline: never expires
    let mut q: Payment = Payment::new(cny(1), t(0)).unwrap();
    assert_eq!(q.next_deadline(), None);
    assert_eq!(q.tick(t(u64::MAX)), Outcome::Ignored);
    // a success after the deadline but before a tick is a real success
    let mut r = build(Setup::Processing, LateSuccess::Refund).unwrap();
    applied(&mut r, Input::succeed(id("late-but-real"), cny(AMOUNT)));
    assert_eq!(r.status(), Status::Succeeded);
}

#[test]
fn creation_refuses_zero() {
    assert_eq!(
        Payment::<8, 16>::new(cny(0), t(0)).unwrap_err(),
        paystate::CreateError::InvalidAmount
    );
}

#[test]
fn a_default_payment_fits_in_512_bytes() {
    let size = core::mem::size_of::<Payment>();
    assert!(size <= 512, "Payment is {size} bytes");
}
