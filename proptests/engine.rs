//! Model-based test of the payment engine (docs/spec.md §2.3, §2.5).
//!
//! The model is written from the spec text with plain `Vec`s and full ids, independently of
//! the engine's fingerprints and ring buffers. Every step asserts agreement with the model and
//! every invariant; `Snapshot` steps round-trip the payment through its snapshot mid-sequence
//! (a crash and restart: the obligations must come back exactly as the model says), and
//! `Settle` steps play the host's loop: carry out `pending_effects()` and confirm each.

use paystate::{
    Currency, Effect, EventId, Input, LateSuccess, Money, Outcome, Payment, RefundId,
    RefundRequestId, Status, Timestamp,
};
use proptest::prelude::*;

const PAYMENTS: usize = 3;

#[derive(Debug, Clone, PartialEq)]
enum Cmd {
    Initiate,
    Succeed {
        amount: u64,
        usd: bool,
    },
    Fail {
        reason: u8,
    },
    Cancel,
    Close,
    Refund {
        refund_id: u8,
        amount: u64,
        usd: bool,
    },
}

#[derive(Debug, Clone)]
enum Op {
    Apply {
        payment: usize,
        event: u8,
        cmd: Cmd,
        now: u64,
        twice: bool,
    },
    Tick {
        payment: usize,
        now: u64,
    },
    Snapshot {
        payment: usize,
    },
    Settle {
        payment: usize,
        now: u64,
    },
}

/// The refund id a `Settle` step confirms a required refund under (the payment's own
/// request number); the generated refunds use 0..20.
const LATE_REFUND: u8 = u8::MAX;

fn cmd(amount: u64) -> impl Strategy<Value = Cmd> {
    // Amounts near the payment's own, so captures and refunds often pass their checks.
    let near = prop_oneof![
        Just(amount),
        Just(0u64),
        1..=amount,
        Just(amount + 1),
        any::<u64>()
    ];
    prop_oneof![
        Just(Cmd::Initiate),
        (near.clone(), prop::bool::weighted(0.1))
            .prop_map(|(amount, usd)| Cmd::Succeed { amount, usd }),
        (0u8..2).prop_map(|reason| Cmd::Fail { reason }),
        Just(Cmd::Cancel),
        Just(Cmd::Close),
        (0u8..20, near, prop::bool::weighted(0.05)).prop_map(|(refund_id, amount, usd)| {
            Cmd::Refund {
                refund_id,
                amount,
                usd,
            }
        }),
    ]
}

const AMOUNTS: [u64; PAYMENTS] = [100, 1, 9_999];

fn op() -> impl Strategy<Value = Op> {
    let apply = (0..PAYMENTS).prop_flat_map(|payment| {
        (
            Just(payment),
            0u8..24,
            cmd(AMOUNTS[payment]),
            0u64..3_000,
            prop::bool::weighted(0.2),
        )
            .prop_map(|(payment, event, cmd, now, twice)| Op::Apply {
                payment,
                event,
                cmd,
                now,
                twice,
            })
    });
    prop_oneof![
        8 => apply,
        1 => (0..PAYMENTS, 0u64..3_000).prop_map(|(payment, now)| Op::Tick { payment, now }),
        1 => (0..PAYMENTS).prop_map(|payment| Op::Snapshot { payment }),
        1 => (0..PAYMENTS, 0u64..3_000).prop_map(|(payment, now)| Op::Settle { payment, now }),
    ]
}

/// The reference model of one payment.
#[derive(Debug, Clone)]
struct Model {
    amount: u64,
    deadline: u64,
    policy: LateSuccess,
    status: Status,
    paid: u64,
    refunded: u64,
    version: u32,
    /// The last 8 applied (event, command) pairs, oldest first.
    events: Vec<(u8, Cmd)>,
    refunds: Vec<(u8, u64)>,
    /// Whether a refund_required effect was emitted when `paid` became > 0.
    refund_required_emitted: bool,
    /// A close_trade obligation is outstanding (§2.6).
    close_pending: bool,
    /// The payment's refund request number, as the engine derives it (checked for stability
    /// against a fresh payment with the same creation data).
    late_refund: RefundRequestId,
}

#[derive(Debug, PartialEq)]
enum Want {
    Applied(Vec<Effect>),
    Duplicate,
    Ignored,
    Rejected(&'static str),
}

impl Model {
    fn open(&self) -> bool {
        matches!(self.status, Status::Pending | Status::Processing)
    }

    fn money(&self, minor: u64) -> Money {
        Money::from_minor(minor, Currency::CNY)
    }

    /// docs/spec.md §2.5, invariant 8, written out: what must be outstanding now.
    fn outstanding(&self) -> Vec<Effect> {
        let mut out = vec![];
        if self.close_pending {
            out.push(Effect::CloseTrade);
        }
        let late = matches!(self.status, Status::Failed | Status::Cancelled);
        if late && self.paid > self.refunded {
            out.push(Effect::RefundRequired {
                amount: self.money(self.paid - self.refunded),
                refund_id: self.late_refund,
            });
        }
        out
    }

    fn apply(&mut self, event: u8, cmd: &Cmd) -> Want {
        if let Some((_, seen)) = self.events.iter().find(|(e, _)| *e == event) {
            return if seen == cmd {
                Want::Duplicate
            } else {
                Want::Rejected("idempotency_conflict")
            };
        }
        let want = self.decide(cmd);
        if matches!(want, Want::Applied(_)) {
            self.version += 1;
            self.events.push((event, cmd.clone()));
            if self.events.len() > 8 {
                self.events.remove(0);
            }
        }
        want
    }

    fn decide(&mut self, cmd: &Cmd) -> Want {
        use Status::*;
        match cmd {
            Cmd::Initiate if self.status == Pending => {
                self.status = Processing;
                Want::Applied(vec![])
            }
            Cmd::Initiate => Want::Ignored,
            Cmd::Succeed { amount, usd } => {
                if *usd {
                    return Want::Rejected("currency_mismatch");
                }
                if *amount != self.amount {
                    return Want::Rejected("amount_mismatch");
                }
                if self.paid > 0 {
                    return Want::Ignored;
                }
                self.paid = self.amount;
                // A paid trade cannot be closed: the capture discharges the close.
                self.close_pending = false;
                if self.open() || (self.status == Failed && self.policy == LateSuccess::Accept) {
                    self.status = Succeeded;
                    Want::Applied(vec![])
                } else {
                    self.refund_required_emitted = true;
                    Want::Applied(vec![Effect::RefundRequired {
                        amount: self.money(self.amount),
                        refund_id: self.late_refund,
                    }])
                }
            }
            Cmd::Fail { .. } if self.open() => {
                self.status = Failed;
                Want::Applied(vec![])
            }
            Cmd::Fail { .. } => Want::Ignored,
            Cmd::Cancel if self.open() => {
                self.status = Cancelled;
                self.close_pending = true;
                Want::Applied(vec![Effect::CloseTrade])
            }
            Cmd::Close if self.open() => {
                self.status = Cancelled;
                Want::Applied(vec![])
            }
            Cmd::Close if self.status == Cancelled && self.close_pending => {
                self.close_pending = false;
                Want::Applied(vec![])
            }
            Cmd::Cancel | Cmd::Close if self.status == Succeeded => {
                Want::Rejected("invalid_transition")
            }
            Cmd::Cancel | Cmd::Close => Want::Ignored,
            Cmd::Refund {
                refund_id,
                amount,
                usd,
            } => {
                if let Some((_, recorded)) = self.refunds.iter().find(|(r, _)| r == refund_id) {
                    return if recorded == amount && !usd {
                        Want::Duplicate
                    } else {
                        Want::Rejected("idempotency_conflict")
                    };
                }
                if self.paid == 0 {
                    return Want::Rejected("invalid_transition");
                }
                if *usd {
                    return Want::Rejected("currency_mismatch");
                }
                if *amount == 0 {
                    return Want::Rejected("invalid_amount");
                }
                if *amount > self.paid - self.refunded {
                    return Want::Rejected("refund_exceeds_balance");
                }
                if self.refunds.len() >= 16 {
                    return Want::Rejected("too_many_refunds");
                }
                self.refunds.push((*refund_id, *amount));
                self.refunded += amount;
                if self.refunded == self.paid {
                    self.status = Refunded;
                }
                Want::Applied(vec![])
            }
        }
    }

    fn tick(&mut self, now: u64) -> Want {
        if self.open() && self.deadline <= now {
            self.status = Status::Cancelled;
            self.close_pending = true;
            self.version += 1;
            Want::Applied(vec![Effect::CloseTrade])
        } else {
            Want::Ignored
        }
    }
}

fn input(event: u8, cmd: &Cmd, late_refund: RefundRequestId) -> Input {
    let id = EventId::new(format!("evt-{event}").as_bytes()).unwrap();
    let money = |amount: u64, usd: bool| {
        Money::from_minor(amount, if usd { Currency::USD } else { Currency::CNY })
    };
    match cmd {
        Cmd::Initiate => Input::initiate(id),
        Cmd::Succeed { amount, usd } => Input::succeed(id, money(*amount, *usd)),
        Cmd::Fail { reason } => {
            Input::fail(id, ["PAYERROR", "EXPIRED"][usize::from(*reason)]).unwrap()
        }
        Cmd::Cancel => Input::cancel(id),
        Cmd::Close => Input::close(id),
        Cmd::Refund {
            refund_id,
            amount,
            usd,
        } => Input::refund(
            id,
            if *refund_id == LATE_REFUND {
                late_refund.refund_id()
            } else {
                RefundId::new(format!("refund-{refund_id}").as_bytes()).unwrap()
            },
            money(*amount, *usd),
        ),
    }
}

fn got(outcome: &Outcome) -> Want {
    match outcome {
        Outcome::Applied(effects) => Want::Applied(effects.to_vec()),
        Outcome::Duplicate => Want::Duplicate,
        Outcome::Ignored => Want::Ignored,
        Outcome::Rejected(r) => Want::Rejected(r.code()),
    }
}

/// Every invariant of docs/spec.md §2.5 that one state and its model can show.
fn check(p: &Payment, m: &Model, before_rank: u8) {
    p.check_invariants().unwrap();
    let (paid, refunded) = (p.paid().minor_units(), p.refunded().minor_units());
    assert!(refunded <= paid);
    assert!(paid == 0 || paid == m.amount);
    assert_eq!(p.status() == Status::Refunded, paid > 0 && refunded == paid);
    assert!(p.status() != Status::Succeeded || paid > 0);
    assert!(p.status().rank() >= before_rank, "rank decreased");
    assert_eq!(p.version(), m.version, "version counts applied outcomes");
    // Funds are never lost.
    if matches!(p.status(), Status::Failed | Status::Cancelled) && paid > refunded {
        assert!(
            m.refund_required_emitted,
            "captured money on a dead payment without refund_required"
        );
    }
    assert_eq!(
        (p.status(), paid, refunded),
        (m.status, m.paid, m.refunded),
        "engine and model agree"
    );
    // Invariant 8: the obligations are exactly what the model says is outstanding.
    assert_eq!(p.pending_effects().to_vec(), m.outstanding(), "obligations");
    assert_eq!(p.close_pending(), m.close_pending);
}

#[cfg(feature = "serde")]
fn round_trip(p: &Payment) -> Payment {
    use paystate::snapshot;
    let mut buf = [0u8; snapshot::MAX_SIZE];
    let bytes = snapshot::encode(p, &mut buf).unwrap();
    let back: Payment = snapshot::decode(bytes).unwrap();
    assert_eq!(&back, p, "restoring a snapshot yields an equal payment");
    back
}

/// Without snapshots, a restore is a plain copy.
#[cfg(not(feature = "serde"))]
fn round_trip(p: &Payment) -> Payment {
    p.clone()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_the_model_and_keeps_every_invariant(
        ops in prop::collection::vec(op(), 1..120),
        policies in prop::array::uniform3(prop_oneof![Just(LateSuccess::Refund), Just(LateSuccess::Accept)]),
        deadlines in prop::array::uniform3(500u64..2_500),
    ) {
        let mut payments: Vec<Payment> = Vec::new();
        let mut models: Vec<Model> = Vec::new();
        let fresh = |i: usize| -> Payment {
            Payment::new(Money::from_minor(AMOUNTS[i], Currency::CNY), Timestamp::from_secs(0))
                .unwrap()
                .with_deadline(Timestamp::from_secs(deadlines[i]))
                .with_late_success(policies[i])
        };
        for i in 0..PAYMENTS {
            payments.push(fresh(i));
            models.push(Model {
                amount: AMOUNTS[i], deadline: deadlines[i], policy: policies[i], status: Status::Pending,
                paid: 0, refunded: 0, version: 0, events: vec![], refunds: vec![],
                refund_required_emitted: false, close_pending: false,
                late_refund: fresh(i).refund_request_id(),
            });
        }
        let mut settles = 0u32;
        for op in ops {
            match op {
                Op::Apply { payment, event, cmd, now, twice } => {
                    let (p, m) = (&mut payments[payment], &mut models[payment]);
                    let before = p.clone();
                    let input = input(event, &cmd, m.late_refund);
                    let outcome = p.apply(&input, Timestamp::from_secs(now));
                    let want = m.apply(event, &cmd);
                    prop_assert_eq!(got(&outcome), want, "{:?} on {:?}", cmd, before);
                    prop_assert_eq!(*p != before, matches!(outcome, Outcome::Applied(_)),
                        "snapshot changes iff applied");
                    check(p, m, before.status().rank());
                    if twice {
                        let after_first = p.clone();
                        let second = p.apply(&input, Timestamp::from_secs(now));
                        let idempotent = match (&outcome, &second) {
                            (_, Outcome::Duplicate | Outcome::Ignored) => true,
                            (Outcome::Rejected(a), Outcome::Rejected(b)) => a == b,
                            _ => false,
                        };
                        prop_assert!(idempotent, "second {:?} after {:?}", second, outcome);
                        prop_assert_eq!(&*p, &after_first);
                        let model_second = m.apply(event, &cmd);
                        prop_assert_eq!(got(&second), model_second);
                    }
                }
                Op::Tick { payment, now } => {
                    let (p, m) = (&mut payments[payment], &mut models[payment]);
                    let before = p.clone();
                    let outcome = p.tick(Timestamp::from_secs(now));
                    prop_assert_eq!(got(&outcome), m.tick(now));
                    prop_assert_eq!(*p != before, matches!(outcome, Outcome::Applied(_)));
                    check(p, m, before.status().rank());
                }
                Op::Snapshot { payment } => {
                    // A crash and restart: the restored payment owes exactly what the model
                    // says, and its refund request number has not changed.
                    let (p, m) = (&mut payments[payment], &models[payment]);
                    let before_rank = p.status().rank();
                    *p = round_trip(p);
                    check(p, m, before_rank);
                    prop_assert_eq!(p.refund_request_id(), m.late_refund);
                }
                Op::Settle { payment, now } => {
                    // The host's loop: carry out every obligation and confirm it.
                    let (p, m) = (&mut payments[payment], &mut models[payment]);
                    for effect in p.pending_effects() {
                        settles += 1;
                        // Event ids the generated inputs (0..24) never use, each used once.
                        let event = u8::try_from(24 + settles % 200).unwrap();
                        let cmd = match effect {
                            Effect::CloseTrade => Cmd::Close,
                            Effect::RefundRequired { amount, refund_id } => {
                                prop_assert_eq!(refund_id, m.late_refund);
                                Cmd::Refund { refund_id: LATE_REFUND, amount: amount.minor_units(), usd: false }
                            }
                        };
                        let before = p.clone();
                        let outcome = p.apply(&input(event, &cmd, m.late_refund), Timestamp::from_secs(now));
                        prop_assert_eq!(got(&outcome), m.apply(event, &cmd));
                        check(p, m, before.status().rank());
                    }
                    // Each confirmation discharged its obligation (a refund only if the
                    // payment's refund list had room for it).
                    if p.refund_count() < 16 {
                        prop_assert!(p.pending_effects().is_empty(), "{:?}", p.pending_effects());
                    } else {
                        prop_assert!(!p.close_pending());
                    }
                }
            }
        }
    }
}
