//! The payment table against a model: a plain `Vec` of (order id, payment) with the same
//! capacity. Every operation must answer as the model says and leave the same contents.

use paystate::table::{PaymentTable, TableError};
use paystate::{Currency, EventId, Input, Money, Outcome, Payment, RefundId, Timestamp};
use proptest::prelude::*;

const CAPACITY: usize = 4;
const IDS: [&[u8]; 6] = [b"o-1", b"o-2", b"o-3", b"o-4", b"o-5", b"o-6"];

fn cny(minor: u64) -> Money {
    Money::from_minor(minor, Currency::CNY)
}

#[derive(Debug, Clone)]
enum Op {
    Insert {
        id: usize,
        amount: u64,
        deadline: Option<u64>,
    },
    Remove {
        id: usize,
    },
    Apply {
        id: usize,
        input: u8,
        event: u8,
        now: u64,
    },
    TickDue {
        now: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..IDS.len(), 1u64..500, proptest::option::of(0u64..20)).prop_map(
            |(id, amount, deadline)| Op::Insert {
                id,
                amount,
                deadline
            }
        ),
        (0..IDS.len()).prop_map(|id| Op::Remove { id }),
        (0..IDS.len(), 0u8..5, 0u8..4, 0u64..24).prop_map(|(id, input, event, now)| Op::Apply {
            id,
            input,
            event,
            now
        }),
        (0u64..24).prop_map(|now| Op::TickDue { now }),
    ]
}

/// A small set of inputs; which payment they reach decides the outcome.
fn input(kind: u8, event: u8, amount: u64) -> Input {
    let event_id = EventId::new(&[b'e', event]).expect("2-byte id");
    match kind {
        0 => Input::initiate(event_id),
        1 => Input::succeed(event_id, cny(amount)),
        2 => Input::cancel(event_id),
        3 => Input::refund(event_id, RefundId::new(&[event]).expect("id"), cny(1)),
        _ => Input::close(event_id),
    }
}

type Model = Vec<(Vec<u8>, Payment)>;

fn assert_same(table: &PaymentTable<CAPACITY>, model: &Model) -> Result<(), TestCaseError> {
    let got: Vec<(Vec<u8>, Payment)> = table
        .iter()
        .map(|(id, p)| (id.as_bytes().to_vec(), p.clone()))
        .collect();
    prop_assert_eq!(&got, model);
    prop_assert_eq!(table.len(), model.len());
    prop_assert_eq!(table.is_full(), model.len() == CAPACITY);
    let earliest = model.iter().filter_map(|(_, p)| p.next_deadline()).min();
    prop_assert_eq!(table.next_deadline(), earliest);
    Ok(())
}

proptest! {
    #[test]
    fn table_behaves_like_a_bounded_list(ops in proptest::collection::vec(op(), 1..60)) {
        let mut table: PaymentTable<CAPACITY> = PaymentTable::new();
        let mut model: Model = Vec::new();
        for op in ops {
            match op {
                Op::Insert { id, amount, deadline } => {
                    let key = IDS[id];
                    let mut p = Payment::new(cny(amount), Timestamp::from_secs(0)).expect("amount > 0");
                    if let Some(d) = deadline {
                        p = p.with_deadline(Timestamp::from_secs(d));
                    }
                    let got = table.insert(key, p.clone()).map(|p| p.clone());
                    let expected = if model.iter().any(|(k, _)| k == key) {
                        Err(TableError::DuplicateOrder)
                    } else if model.len() == CAPACITY {
                        Err(TableError::Full { capacity: CAPACITY })
                    } else {
                        model.push((key.to_vec(), p.clone()));
                        Ok(p)
                    };
                    prop_assert_eq!(got, expected);
                }
                Op::Remove { id } => {
                    let key = IDS[id];
                    let got = table.remove(key).map(|(k, p)| (k.as_bytes().to_vec(), p));
                    let expected = match model.iter().position(|(k, _)| k == key) {
                        Some(at) => Ok(model.remove(at)),
                        None => Err(TableError::UnknownOrder),
                    };
                    prop_assert_eq!(got, expected);
                }
                Op::Apply { id, input: kind, event, now } => {
                    let key = IDS[id];
                    let now = Timestamp::from_secs(now);
                    let entry = model.iter_mut().find(|(k, _)| k == key);
                    // A succeed carries the payment's own amount, so captures do happen.
                    let amount = entry.as_ref().map_or(1, |(_, p)| p.amount().minor_units());
                    let input = input(kind, event, amount);
                    let expected = match entry {
                        Some((_, p)) => Ok(p.apply(&input, now)),
                        None => Err(TableError::UnknownOrder),
                    };
                    prop_assert_eq!(table.apply(key, &input, now), expected);
                }
                Op::TickDue { now } => {
                    let now = Timestamp::from_secs(now);
                    let mut reported = Vec::new();
                    let n = table.tick_due(now, |id, p, outcome| {
                        reported.push((id.as_bytes().to_vec(), p.clone(), outcome));
                    });
                    let mut expected = Vec::new();
                    for (k, p) in model.iter_mut() {
                        let outcome = p.tick(now);
                        if matches!(outcome, Outcome::Applied(_)) {
                            expected.push((k.clone(), p.clone(), outcome));
                        }
                    }
                    prop_assert_eq!(n, expected.len());
                    prop_assert_eq!(reported, expected);
                }
            }
            assert_same(&table, &model)?;
        }
    }
}
