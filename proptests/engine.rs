//! Model-based test of the payment engine (docs/spec.md §2.3, §2.5).
//!
//! The model is the shared reference model (`paystate-model`, in model/), written from the
//! spec text with plain `Vec`s and full ids, independently of the engine's fingerprints and
//! ring buffers; the engine fuzz target drives the same one. Every step asserts agreement
//! with the model (outcome with rejection details and effects, state, obligations) and every
//! invariant; `Snapshot` steps round-trip the payment through its snapshot mid-sequence
//! (a crash and restart: the obligations must come back exactly as the model says), and
//! `Settle` steps play the host's loop: carry out `pending_effects()` and confirm each.

use paystate::{
    Currency, Effect, LateSuccess, Money, Outcome, Payment, RefundRequestId, Status, Timestamp,
};
use paystate_model::{Command, Model, Terms, Want};
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

fn event_id(event: u8) -> String {
    format!("evt-{event}")
}

/// A generated command in the model's terms: full ids, money with its currency.
fn command(cmd: &Cmd, late_refund: RefundRequestId) -> Command {
    let money = |amount: u64, usd: bool| {
        Money::from_minor(amount, if usd { Currency::USD } else { Currency::CNY })
    };
    match cmd {
        Cmd::Initiate => Command::Initiate,
        Cmd::Succeed { amount, usd } => Command::Succeed(money(*amount, *usd)),
        Cmd::Fail { reason } => Command::Fail(["PAYERROR", "EXPIRED"][usize::from(*reason)].into()),
        Cmd::Cancel => Command::Cancel,
        Cmd::Close => Command::Close,
        Cmd::Refund {
            refund_id,
            amount,
            usd,
        } => Command::Refund(
            if *refund_id == LATE_REFUND {
                late_refund.as_str().into()
            } else {
                format!("refund-{refund_id}")
            },
            money(*amount, *usd),
        ),
    }
}

/// Every invariant of docs/spec.md §2.5 that one state and its model can show.
fn check(p: &Payment, m: &Model, before_rank: u8) {
    p.check_invariants().unwrap();
    let (paid, refunded) = (p.paid().minor_units(), p.refunded().minor_units());
    assert!(refunded <= paid);
    assert!(paid == 0 || paid == m.amount().minor_units());
    assert_eq!(p.status() == Status::Refunded, paid > 0 && refunded == paid);
    assert!(p.status() != Status::Succeeded || paid > 0);
    assert!(p.status().rank() >= before_rank, "rank decreased");
    assert_eq!(p.version(), m.version(), "version counts applied outcomes");
    // Engine and model agree: status, money, version, close_pending, the obligations are
    // exactly what the model says is outstanding (invariant 8), and funds are never lost
    // (captured money on a dead payment was answered with refund_required).
    if let Err(e) = m.agrees_with(p) {
        panic!("{e}");
    }
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
        let terms = |i: usize| {
            Terms::new(Money::from_minor(AMOUNTS[i], Currency::CNY))
                .with_deadline(Some(deadlines[i]))
                .with_late_success(policies[i])
        };
        let fresh = |i: usize| -> Payment {
            Payment::new(terms(i).amount, Timestamp::from_secs(0))
                .unwrap()
                .with_deadline(Timestamp::from_secs(deadlines[i]))
                .with_late_success(policies[i])
        };
        for i in 0..PAYMENTS {
            payments.push(fresh(i));
            // The refund request number of another payment made alike: the model checks
            // it is derived only from the creation data and never changes.
            models.push(Model::new(terms(i), fresh(i).refund_request_id()));
        }
        let mut settles = 0u32;
        for op in ops {
            match op {
                Op::Apply { payment, event, cmd, now, twice } => {
                    let (p, m) = (&mut payments[payment], &mut models[payment]);
                    let before = p.clone();
                    let (event, command) = (event_id(event), command(&cmd, m.refund_request_id()));
                    let input = command.input(&event).unwrap();
                    let outcome = p.apply(&input, Timestamp::from_secs(now));
                    let want = m.apply(&event, &command);
                    prop_assert_eq!(Want::of(&outcome), want, "{:?} on {:?}", cmd, before);
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
                        let model_second = m.apply(&event, &command);
                        prop_assert_eq!(Want::of(&second), model_second);
                    }
                }
                Op::Tick { payment, now } => {
                    let (p, m) = (&mut payments[payment], &mut models[payment]);
                    let before = p.clone();
                    let outcome = p.tick(Timestamp::from_secs(now));
                    prop_assert_eq!(Want::of(&outcome), m.tick(now));
                    prop_assert_eq!(*p != before, matches!(outcome, Outcome::Applied(_)));
                    check(p, m, before.status().rank());
                }
                Op::Snapshot { payment } => {
                    // A crash and restart: the restored payment owes exactly what the model
                    // says, remembers the same events and refunds, and its refund request
                    // number has not changed.
                    let (p, m) = (&mut payments[payment], &models[payment]);
                    let before_rank = p.status().rank();
                    *p = round_trip(p);
                    check(p, m, before_rank);
                    prop_assert_eq!(p.refund_request_id(), m.refund_request_id());
                    if let Err(e) = m.agrees_deeply_with(p) {
                        prop_assert!(false, "after a snapshot round trip: {}", e);
                    }
                }
                Op::Settle { payment, now } => {
                    // The host's loop: carry out every obligation and confirm it.
                    let (p, m) = (&mut payments[payment], &mut models[payment]);
                    for effect in p.pending_effects() {
                        settles += 1;
                        // Event ids the generated inputs (0..24) never use, each used once.
                        let event = event_id(u8::try_from(24 + settles % 200).unwrap());
                        let cmd = match effect {
                            Effect::CloseTrade => Cmd::Close,
                            Effect::RefundRequired { amount, refund_id } => {
                                prop_assert_eq!(refund_id, m.refund_request_id());
                                Cmd::Refund { refund_id: LATE_REFUND, amount: amount.minor_units(), usd: false }
                            }
                        };
                        let command = command(&cmd, m.refund_request_id());
                        let before = p.clone();
                        let outcome = p.apply(&command.input(&event).unwrap(), Timestamp::from_secs(now));
                        prop_assert_eq!(Want::of(&outcome), m.apply(&event, &command));
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
        for (p, m) in payments.iter().zip(&models) {
            if let Err(e) = m.agrees_deeply_with(p) {
                prop_assert!(false, "at the end: {}", e);
            }
        }
    }
}
