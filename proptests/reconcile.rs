//! Reconciliation (docs/spec.md §6) against a plain model built on ordered maps.

use std::collections::BTreeMap;

use paystate::reconcile::{Discrepancy, Entry, ReconcileError, Side, reconcile};
use paystate::{Currency, Money, Status};
use proptest::prelude::*;

type Row = (Status, u64, u64);

fn row() -> impl Strategy<Value = Row> {
    (prop::sample::select(Status::ALL.to_vec()), 0u64..3, 0u64..2)
}

fn entries(side: &BTreeMap<Vec<u8>, Row>) -> Vec<Entry<'_>> {
    let cny = |m| Money::from_minor(m, Currency::CNY);
    side.iter()
        .map(|(id, (s, p, r))| Entry::new(id, *s, cny(*p), cny(*r)))
        .collect()
}

/// What the spec text asks for, written with maps: per order id in order, missing on either
/// side, then money, then status.
fn model(
    local: &BTreeMap<Vec<u8>, Row>,
    bill: &BTreeMap<Vec<u8>, Row>,
) -> Vec<(Vec<u8>, &'static str)> {
    let mut ids: Vec<&Vec<u8>> = local.keys().chain(bill.keys()).collect();
    ids.sort();
    ids.dedup();
    let mut out = vec![];
    for id in ids {
        match (local.get(id), bill.get(id)) {
            (Some(_), None) => out.push((id.clone(), "missing_at_provider")),
            (None, Some(_)) => out.push((id.clone(), "missing_locally")),
            (Some(l), Some(b)) => {
                if (l.1, l.2) != (b.1, b.2) {
                    out.push((id.clone(), "amount_mismatch"));
                }
                if l.0 != b.0 {
                    out.push((id.clone(), "status_mismatch"));
                }
            }
            (None, None) => unreachable!(),
        }
    }
    out
}

fn label(d: &Discrepancy<'_>) -> (Vec<u8>, &'static str) {
    match d {
        Discrepancy::MissingLocally(e) => (e.order_id.to_vec(), "missing_locally"),
        Discrepancy::MissingAtProvider(e) => (e.order_id.to_vec(), "missing_at_provider"),
        Discrepancy::AmountMismatch { local, provider } => {
            assert_eq!(local.order_id, provider.order_id);
            (local.order_id.to_vec(), "amount_mismatch")
        }
        Discrepancy::StatusMismatch { local, provider } => {
            assert_eq!(local.order_id, provider.order_id);
            (local.order_id.to_vec(), "status_mismatch")
        }
        _ => unreachable!("no other discrepancy exists"),
    }
}

proptest! {
    #[test]
    fn finds_exactly_what_the_model_finds(
        local in prop::collection::btree_map(prop::collection::vec(0u8..4, 1..3), row(), 0..12),
        bill in prop::collection::btree_map(prop::collection::vec(0u8..4, 1..3), row(), 0..12),
    ) {
        let got: Vec<_> = reconcile(entries(&local), entries(&bill))
            .map(|d| d.map(|d| label(&d)))
            .collect::<Result<_, _>>()
            .unwrap();
        prop_assert_eq!(got, model(&local, &bill));
    }

    #[test]
    fn unsorted_or_repeated_ids_are_an_error_never_a_wrong_report(
        local in prop::collection::vec((prop::collection::vec(0u8..3, 1..2), row()), 2..8),
    ) {
        let cny = |m| Money::from_minor(m, Currency::CNY);
        let sorted = local.windows(2).all(|w| w[0].0 < w[1].0);
        let lines: Vec<Entry<'_>> = local.iter().map(|(id, (s, p, r))| Entry::new(id, *s, cny(*p), cny(*r))).collect();
        let results: Vec<_> = reconcile(lines.clone(), core::iter::empty()).collect();
        let failed = results.iter().any(|r| r.is_err());
        prop_assert_eq!(failed, !sorted);
        if failed {
            prop_assert_eq!(results.last(), Some(&Err(ReconcileError::OutOfOrder { side: Side::Local })));
        }
        // The same lines as the bill report on the provider's side.
        let results: Vec<_> = reconcile(core::iter::empty(), lines).collect();
        prop_assert_eq!(results.iter().any(|r| r == &Err(ReconcileError::OutOfOrder { side: Side::Provider })), !sorted);
    }
}

#[test]
fn a_ledger_of_payments_against_a_bill() {
    use paystate::{EventId, Input, Payment, Timestamp};
    let cny = |m| Money::from_minor(m, Currency::CNY);
    let mut paid: Payment = Payment::new(cny(500), Timestamp::from_secs(0)).unwrap();
    let _ = paid.apply(
        &Input::succeed(EventId::new(b"n").unwrap(), cny(500)),
        Timestamp::from_secs(1),
    );
    let ledger = [Entry::of(b"A-1", &paid)];
    let bill = [Entry::new(b"A-1", Status::Succeeded, cny(500), cny(0))];
    assert_eq!(
        reconcile(ledger, bill).count(),
        0,
        "agreeing sides report nothing"
    );
}
