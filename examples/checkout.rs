//! One order's story, end to end, in readable output.
//!
//! ```text
//! cargo run --example checkout
//! ```
//!
//! Order A: created → the customer starts paying → Alipay's signed `TRADE_SUCCESS`
//! notification (a form body signed with a freshly generated RSA2 key) is verified, passes the
//! four business checks and is applied → the same notification is redelivered (duplicate) → a
//! forged copy is refused → a partial refund → a refund of the rest. Order B: its deadline passes before the customer pays, so it is cancelled and the
//! trade closed; the payment arrives anyway, late, and must be refunded.

use paystate::alipay::content::{SignRule, SignedContent};
use paystate::alipay::form::{Form, encode_pairs};
use paystate::alipay::notify::{MerchantConfig, Notification, NotifyError, Reply};
use paystate::signature::{Rsa2PrivateKey, Rsa2PublicKey};
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
            Effect::RefundRequired { amount, refund_id } => println!(
                "      effect: refund {amount} {} to the customer (out_request_no {refund_id})",
                amount.currency()
            ),
        }
    }
}

const MERCHANT: MerchantConfig<'static> = MerchantConfig {
    app_id: "2021000000000001",
    seller_id: "2088000000000001",
};

/// Plays Alipay: the notification form body for `out_trade_no`, signed under rule V1.
fn alipay_notification(
    key: &Rsa2PrivateKey,
    out_trade_no: &str,
    amount: Money,
) -> Result<String, Error> {
    let amount = amount.to_string();
    let fields = [
        ("app_id", MERCHANT.app_id),
        ("charset", "utf-8"),
        ("gmt_payment", "2026-11-27 14:30:00"),
        ("notify_id", "2026112700222143000051234567890"),
        ("notify_time", "2026-11-27 14:30:01"),
        ("notify_type", "trade_status_sync"),
        ("out_trade_no", out_trade_no),
        ("seller_id", MERCHANT.seller_id),
        ("subject", "Coffee beans 1 kg"),
        ("total_amount", amount.as_str()),
        ("trade_no", "2026112722001400000000000001"),
        ("trade_status", "TRADE_SUCCESS"),
        ("version", "1.0"),
    ];
    let mut unsigned = String::new();
    encode_pairs(fields, &mut unsigned)?;
    let mut buf = vec![0; unsigned.len()];
    let form: Form = Form::decode(unsigned.as_bytes(), &mut buf)?;
    let signature = key.sign_digest(&SignedContent::new(&form, SignRule::V1).digest())?;
    let sign = <base64ct::Base64 as base64ct::Encoding>::encode_string(&signature);
    let mut body = unsigned.clone();
    body.push('&');
    encode_pairs([("sign", sign.as_str()), ("sign_type", "RSA2")], &mut body)?;
    Ok(body)
}

/// The host's `notify_url` handler: decode once, verify RSA2 with the pinned key, run the four
/// business checks, apply. Answers the exact reply Alipay expects.
fn on_alipay_notify(
    body: &[u8],
    key: &Rsa2PublicKey,
    order_id: &str,
    p: &mut Payment,
    now: Timestamp,
) -> (Reply, Result<Outcome, NotifyError>) {
    let handled = (|| {
        let mut buf = vec![0; body.len()];
        let form: Form = Form::decode(body, &mut buf)?;
        let note = Notification::verify(&form, SignRule::V1, key)?;
        let input = note.to_input(&MERCHANT, &paystate::provider::Facts::of(order_id, p))?;
        Ok(p.apply(&input, now))
    })();
    let reply = match &handled {
        Ok(outcome) => Reply::for_outcome(outcome),
        Err(_) => Reply::Fail,
    };
    (reply, handled)
}

fn show_notify(step: &str, p: &Payment, handled: &(Reply, Result<Outcome, NotifyError>)) {
    match &handled.1 {
        Ok(outcome) => show(step, p, outcome),
        Err(e) => println!("  {step:<44} → refused: {e}"),
    }
    println!("      reply to Alipay: {}", handled.0.as_str());
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

    // Alipay's key pair, generated fresh; the host pins only the public half.
    use rsa::pkcs8::EncodePrivateKey;
    let generated = rsa::PrivateKey::new(&mut rand::rng(), 2048)?;
    let alipay = Rsa2PrivateKey::from_der(generated.to_pkcs8_der()?.as_bytes())?;
    let alipay_public = alipay.public_key();
    let body = alipay_notification(&alipay, "order-A", price)?;
    println!(
        "      Alipay posts {} bytes: {}…",
        body.len(),
        body.get(..72).unwrap_or(&body)
    );

    let handled = on_alipay_notify(body.as_bytes(), &alipay_public, "order-A", &mut a, t(1_030));
    show_notify("verified TRADE_SUCCESS notification", &a, &handled);
    let stored = persist(&a)?;
    println!("      persisted snapshot: {} bytes", stored.len());

    let handled = on_alipay_notify(body.as_bytes(), &alipay_public, "order-A", &mut a, t(1_090));
    show_notify("the same notification, redelivered", &a, &handled);

    let forged = body.replace("total_amount=99.99", "total_amount=0.01");
    let handled = on_alipay_notify(
        forged.as_bytes(),
        &alipay_public,
        "order-A",
        &mut a,
        t(1_100),
    );
    show_notify("a copy with total_amount edited to 0.01", &a, &handled);

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
