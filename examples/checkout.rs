//! One order's story, end to end, in readable output.
//!
//! ```text
//! cargo run --example checkout
//! ```
//!
//! Order A: created → the customer starts paying → the provider's success notification is
//! applied → the same notification is redelivered (duplicate) → a partial refund → a refund of
//! the rest. Order B: its deadline passes before the customer pays, so it is cancelled and the
//! trade closed; the payment arrives anyway, late, and must be refunded.

use paystate::{
    Currency, Effect, EventId, Input, Money, Outcome, Payment, RefundId, Timestamp, snapshot,
};

type Error = Box<dyn std::error::Error>;

fn show(step: &str, p: &Payment, outcome: &Outcome) {
    let what = match outcome {
        Outcome::Rejected(r) => format!("rejected ({r})"),
        other => other.name().to_owned(),
    };
    println!(
        "  {step:<44} → {what:<9} status={:<10} v{} paid={} refunded={}",
        p.status(),
        p.version(),
        p.paid(),
        p.refunded()
    );
    for effect in outcome.effects() {
        match effect {
            Effect::CloseTrade => println!("      effect: close the trade at the provider"),
            Effect::RefundRequired(m) => {
                println!("      effect: refund {m} {} to the customer", m.currency())
            }
            other => println!("      effect: {other:?}"),
        }
    }
}

/// What the host persists after every applied outcome (compare-and-swap on the version).
fn persist(p: &Payment) -> Result<Vec<u8>, Error> {
    let mut buf = [0u8; snapshot::MAX_SIZE];
    Ok(snapshot::encode(p, &mut buf)?.to_vec())
}

fn main() -> Result<(), Error> {
    let t = Timestamp::from_secs;
    let price = Money::parse("99.99", Currency::CNY)?;

    println!("Order A: ¥{price}, paid, redelivered, refunded in two steps");
    let mut a: Payment = Payment::new(price, t(1_000))?.with_deadline(t(2_800));
    let deadline = a.next_deadline().ok_or("order A has a deadline")?;
    println!("  created: status={} deadline={deadline}", a.status());

    let o = a.apply(&Input::initiate(EventId::new(b"cmd-start-A")?), t(1_001));
    show("customer starts paying (initiate)", &a, &o);

    let paid = Input::succeed(EventId::new(b"notify-2026112700001")?, price);
    let o = a.apply(&paid, t(1_030));
    show("provider notifies TRADE_SUCCESS", &a, &o);
    let stored = persist(&a)?;
    println!("      persisted snapshot: {} bytes", stored.len());

    let o = a.apply(&paid, t(1_090));
    show("the same notification, redelivered", &a, &o);

    let part = Money::parse("30.00", Currency::CNY)?;
    let o = a.apply(
        &Input::refund(
            EventId::new(b"refund-notify-1")?,
            RefundId::new(b"RF-A-1")?,
            part,
        ),
        t(5_000),
    );
    show("partial refund of 30.00 confirmed", &a, &o);

    let rest = a.balance();
    let o = a.apply(
        &Input::refund(
            EventId::new(b"refund-notify-2")?,
            RefundId::new(b"RF-A-2")?,
            rest,
        ),
        t(6_000),
    );
    show("refund of the rest confirmed", &a, &o);

    let restored: Payment = snapshot::decode(&persist(&a)?)?;
    assert_eq!(restored, a);
    println!(
        "  final: {} after {} applied inputs; snapshot round-trips\n",
        a.status(),
        a.version()
    );

    println!("Order B: ¥{price}, expired unpaid, then paid late");
    let mut b: Payment = Payment::new(price, t(1_000))?.with_deadline(t(2_800));
    let o = b.apply(&Input::initiate(EventId::new(b"cmd-start-B")?), t(1_005));
    show("customer starts paying (initiate)", &b, &o);
    let deadline = b.next_deadline().ok_or("order B has a deadline")?;
    let o = b.tick(t(2_799));
    show("tick one second before the deadline", &b, &o);
    let o = b.tick(deadline);
    show("tick at the deadline", &b, &o);
    let late = Input::succeed(EventId::new(b"notify-2026112700002")?, price);
    let o = b.apply(&late, t(6_400));
    show("TRADE_SUCCESS arrives an hour later", &b, &o);
    let o = b.apply(
        &Input::refund(
            EventId::new(b"refund-notify-3")?,
            RefundId::new(b"RF-B-1")?,
            price,
        ),
        t(6_500),
    );
    show("the required refund is confirmed", &b, &o);
    println!(
        "  final: {}; the money went back, the order never shipped",
        b.status()
    );
    Ok(())
}
