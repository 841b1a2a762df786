//! Stripe in the provider shape: events signed here with the endpoint secret, verified, checked
//! against the payment's facts and mapped; the reply; and the redelivery property.

use paystate::provider::stripe::{self, Error, EventKind, Merchant, Reply};
use paystate::provider::{Facts, MapError, Verified};
use paystate::webhook::hmac::HmacKey;
use paystate::webhook::stripe::{PaymentIntentEvent, StripeError};
use paystate::webhook::{Duration, encode_hex};
use paystate::{
    Currency, EventId, Input, LateSuccess, Money, Outcome, Payment, RefundId, Status, Timestamp,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const T: fn(u64) -> Timestamp = Timestamp::from_secs;
const SECRET: &[u8] = b"whsec_provider_tests_0123456789";
const NOW: u64 = 1_760_000_000;
const ORDER: &str = "order-2024001";
const PRICE: u64 = 2_000;

fn key() -> HmacKey {
    HmacKey::new(SECRET).unwrap()
}

/// A `Stripe-Signature` header for `body` signed at `t`.
fn header(body: &[u8], t: u64) -> String {
    let mut buf = [0u8; 64];
    let sig = paystate::webhook::stripe::sign(&key(), T(t), body);
    format!("t={t},v1={}", encode_hex(&sig, &mut buf).unwrap())
}

/// A payment intent as Stripe sends it, with fields the mapping does not read: nulls, nested
/// objects, escaped strings.
fn payment_intent(amount: u64, received: u64, currency: &str, order: &str) -> Value {
    json!({
        "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_received": received,
        "automatic_payment_methods": {"enabled": true},
        "canceled_at": null,
        "client_secret": "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH",
        "currency": currency,
        "description": "Order \"42\" for caf\u{e9} / tea",
        "last_payment_error": null,
        "livemode": false,
        "metadata": {"note": "gift\nwrap", "order_id": order},
        "payment_method_types": ["card", "link"],
        "status": "succeeded"
    })
}

fn charge(
    amount: u64,
    refunded: u64,
    currency: &str,
    order: &str,
    refunds: Option<Value>,
) -> Value {
    let mut c = json!({
        "id": "ch_3MtwBwLkdIwHu7ix2ldKDaQ1",
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": refunded,
        "billing_details": {"address": {"city": null, "line1": "1 Main St"}, "email": null},
        "currency": currency,
        "metadata": {"order_id": order},
        "payment_intent": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "receipt_url": "https://pay.example/receipts/acct_1/ch_3/rcpt_x",
        "refunded": refunded == amount
    });
    if let Some(list) = refunds {
        c["refunds"] = json!({"object": "list", "data": list, "has_more": false});
    }
    c
}

fn refund_object(id: &str, amount: u64, status: &str) -> Value {
    json!({"id": id, "object": "refund", "amount": amount, "currency": "usd",
           "metadata": {}, "reason": null, "status": status})
}

/// An event envelope; `type` comes last, as Stripe writes it.
fn event(id: &str, ty: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": NOW,
        "data": {"object": object, "previous_attributes": {"status": "processing"}},
        "livemode": false,
        "pending_webhooks": 1,
        "request": {"id": "req_1", "idempotency_key": "a\\b"},
        "type": ty
    }))
    .unwrap()
}

fn verify(body: &[u8]) -> Result<Verified<stripe::Event<'_>>, Error> {
    stripe::verify(
        &key(),
        &header(body, NOW),
        body,
        T(NOW),
        Duration::DEFAULT_TOLERANCE,
    )
}

fn payment() -> Payment {
    Payment::new(Money::from_minor(PRICE, Currency::USD), T(NOW - 100)).unwrap()
}

fn map(body: &[u8], p: &Payment) -> Result<Input, MapError> {
    verify(body)
        .unwrap()
        .to_input(&Merchant::DEFAULT, &Facts::of(ORDER, p))
}

fn usd(minor: u64) -> Money {
    Money::from_minor(minor, Currency::USD)
}

fn ev(id: &str) -> EventId {
    EventId::new(id.as_bytes()).unwrap()
}

const PI_TYPES: [&str; 6] = [
    "payment_intent.created",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
];

/// Every mapped kind, as (type, data.object) with the payment's amount, currency and order.
fn every_kind(amount: u64, currency: &str, order: &str) -> Vec<(&'static str, Value)> {
    let mut kinds: Vec<_> = PI_TYPES
        .iter()
        .map(|ty| (*ty, payment_intent(amount, amount, currency, order)))
        .collect();
    kinds.push((
        "charge.refunded",
        charge(
            amount,
            500,
            currency,
            order,
            Some(json!([refund_object("re_1", 500, "succeeded")])),
        ),
    ));
    kinds.push((
        "charge.refunded",
        charge(amount, 500, currency, order, None),
    ));
    kinds
}

#[test]
fn every_payment_intent_event_maps_to_its_input() {
    let p = payment();
    let want = |ty: &str, id: &str| match ty {
        "payment_intent.succeeded" => Input::succeed(ev(id), usd(PRICE)),
        "payment_intent.payment_failed" => Input::fail(ev(id), "payment_failed").unwrap(),
        "payment_intent.canceled" => Input::close(ev(id)),
        _ => Input::initiate(ev(id)),
    };
    for (i, ty) in PI_TYPES.iter().enumerate() {
        let id = format!("evt_1Nv0{i}");
        let body = event(&id, ty, payment_intent(PRICE, PRICE, "usd", ORDER));
        let verified = verify(&body).unwrap();
        assert_eq!(verified.id(), Some(id.as_str()));
        assert_eq!(verified.object_id(), Some("pi_3MtwBwLkdIwHu7ix28a3tqPa"));
        assert_eq!(verified.kind(), EventKind::from_type(ty));
        assert_eq!(verified.kind().event_type(), *ty);
        let input = verified
            .to_input(&Merchant::DEFAULT, &Facts::of(ORDER, &p))
            .unwrap();
        assert_eq!(input, want(ty, &id), "{ty}");
        // The four types the webhook module knows map to exactly its inputs.
        if let Some(e) = PaymentIntentEvent::from_type(ty) {
            assert_eq!(input, e.input(ev(&id), usd(PRICE)), "{ty}");
        }
    }
}

#[test]
fn a_payment_intent_drives_the_payment_and_redeliveries_are_duplicates() {
    let mut p = payment();
    let created = event(
        "evt_a",
        "payment_intent.created",
        payment_intent(PRICE, 0, "usd", ORDER),
    );
    let paid = event(
        "evt_b",
        "payment_intent.succeeded",
        payment_intent(PRICE, PRICE, "usd", ORDER),
    );
    let i = map(&created, &p).unwrap();
    assert!(matches!(p.apply(&i, T(NOW)), Outcome::Applied(_)));
    assert_eq!(p.status(), Status::Processing);
    let i = map(&paid, &p).unwrap();
    assert!(matches!(p.apply(&i, T(NOW)), Outcome::Applied(_)));
    assert_eq!((p.status(), p.paid()), (Status::Succeeded, usd(PRICE)));
    let again = map(&paid, &p).unwrap();
    assert_eq!(p.apply(&again, T(NOW)), Outcome::Duplicate);
    let late_created = map(&created, &p).unwrap();
    assert_eq!(p.apply(&late_created, T(NOW)), Outcome::Duplicate);
    assert_eq!(Reply::for_outcome(&Outcome::Duplicate), Reply::Received);
}

#[test]
fn charge_refunded_names_the_newest_listed_refund() {
    let mut p = payment();
    let paid = event(
        "evt_p",
        "payment_intent.succeeded",
        payment_intent(PRICE, PRICE, "usd", ORDER),
    );
    let _ = p.apply(&map(&paid, &p).unwrap(), T(NOW));
    // Newest first: re_2 is this event's refund.
    let list = json!([
        refund_object("re_2", 300, "succeeded"),
        refund_object("re_1", 500, "succeeded")
    ]);
    let body = event(
        "evt_r2",
        "charge.refunded",
        charge(PRICE, 800, "usd", ORDER, Some(list)),
    );
    let input = map(&body, &p).unwrap();
    let re2 = RefundId::new(b"re_2").unwrap();
    assert_eq!(input, Input::refund(ev("evt_r2"), re2, usd(300)));
    assert!(matches!(p.apply(&input, T(NOW)), Outcome::Applied(_)));
    assert_eq!(p.recorded_refund(re2), Some(usd(300)));
    assert_eq!(
        p.apply(&map(&body, &p).unwrap(), T(NOW)),
        Outcome::Duplicate
    );

    // A pending refund is nothing yet; a failed one is final. Both are acknowledged.
    for (status, want) in [
        ("pending", MapError::NothingToApply),
        ("requires_action", MapError::NothingToApply),
        ("failed", MapError::RefundFailed),
        ("canceled", MapError::RefundFailed),
        ("weird", MapError::UnknownStatus),
    ] {
        let list = json!([refund_object("re_3", 100, status)]);
        let body = event(
            "evt_r3",
            "charge.refunded",
            charge(PRICE, 900, "usd", ORDER, Some(list)),
        );
        assert_eq!(map(&body, &p), Err(want), "{status}");
    }
    assert_eq!(
        Reply::for_map_error(&MapError::RefundFailed),
        Reply::Received
    );
    assert_eq!(Reply::for_map_error(&MapError::UnknownStatus).status(), 500);
}

#[test]
fn charge_refunded_without_a_list_is_the_cumulative_total_named_by_the_event() {
    let mut p = payment();
    let paid = event(
        "evt_p",
        "payment_intent.succeeded",
        payment_intent(PRICE, PRICE, "usd", ORDER),
    );
    let _ = p.apply(&map(&paid, &p).unwrap(), T(NOW));
    let first = event(
        "evt_c1",
        "charge.refunded",
        charge(PRICE, 500, "usd", ORDER, None),
    );
    let second = event(
        "evt_c2",
        "charge.refunded",
        charge(PRICE, 1_200, "usd", ORDER, None),
    );
    let r1 = RefundId::new(b"evt_c1").unwrap();
    let r2 = RefundId::new(b"evt_c2").unwrap();

    // The second refund's notification first: it covers both, but only 1200 is known.
    let out_of_order = map(&second, &p).unwrap();
    assert_eq!(out_of_order, Input::refund(ev("evt_c2"), r2, usd(1_200)));
    // In order instead:
    let i1 = map(&first, &p).unwrap();
    assert_eq!(i1, Input::refund(ev("evt_c1"), r1, usd(500)));
    assert!(matches!(p.apply(&i1, T(NOW)), Outcome::Applied(_)));
    let i2 = map(&second, &p).unwrap();
    assert_eq!(i2, Input::refund(ev("evt_c2"), r2, usd(700)));
    assert!(matches!(p.apply(&i2, T(NOW)), Outcome::Applied(_)));
    // Redelivered after both: each maps to what it mapped to the first time.
    assert_eq!(map(&first, &p), Ok(i1));
    assert_eq!(map(&second, &p), Ok(i2));
    assert_eq!(p.apply(&i1, T(NOW)), Outcome::Duplicate);
    assert_eq!(p.apply(&i2, T(NOW)), Outcome::Duplicate);
    assert_eq!(p.refunded(), usd(1_200));

    // A total the recorded refunds already account for is nothing to apply; so is a smaller
    // one (an earlier event delivered after a later one: its refund is inside the later total).
    let same_total = event(
        "evt_c3",
        "charge.refunded",
        charge(PRICE, 1_200, "usd", ORDER, None),
    );
    assert_eq!(map(&same_total, &p), Err(MapError::NothingToApply));
    let less = event(
        "evt_c4",
        "charge.refunded",
        charge(PRICE, 1_000, "usd", ORDER, None),
    );
    assert_eq!(map(&less, &p), Err(MapError::NothingToApply));
}

#[test]
fn every_kind_fails_each_business_check() {
    let p = payment();
    let facts = Facts::of(ORDER, &p);
    let check = |ty: &str, object: Value| {
        verify(&event("evt_x", ty, object))
            .unwrap()
            .to_input(&Merchant::DEFAULT, &facts)
    };
    for (ty, _) in every_kind(PRICE, "usd", ORDER) {
        let cases: Vec<(Vec<(&str, Value)>, MapError)> = vec![
            (
                every_kind(PRICE, "usd", "order-other"),
                MapError::WrongOrder,
            ),
            (
                every_kind(PRICE + 1, "usd", ORDER),
                MapError::AmountMismatch {
                    expected: PRICE,
                    got: PRICE + 1,
                },
            ),
            (
                every_kind(PRICE, "eur", ORDER),
                MapError::CurrencyMismatch {
                    expected: Currency::USD,
                    got: Currency::EUR,
                },
            ),
            (every_kind(PRICE, "xyz", ORDER), MapError::UnknownCurrency),
            (every_kind(PRICE, "usdc", ORDER), MapError::UnknownCurrency),
            (every_kind(PRICE, "", ORDER), MapError::UnknownCurrency),
        ];
        for (kinds, want) in cases {
            for (kty, object) in kinds.into_iter().filter(|(k, _)| *k == ty) {
                assert_eq!(check(kty, object), Err(want), "{kty} → {want:?}");
            }
        }
        // The order key must be there.
        for (kty, mut object) in every_kind(PRICE, "usd", ORDER)
            .into_iter()
            .filter(|(k, _)| *k == ty)
        {
            object["metadata"] = json!({"cart": ORDER});
            assert_eq!(
                check(kty, object.clone()),
                Err(MapError::MissingField("data.object.metadata")),
                "{kty}"
            );
            object.as_object_mut().unwrap().remove("metadata");
            assert_eq!(
                check(kty, object),
                Err(MapError::MissingField("data.object.metadata")),
                "{kty}"
            );
        }
    }
    // Upper- and lower-case codes are the same currency.
    for (ty, object) in every_kind(PRICE, "USD", ORDER) {
        assert!(check(ty, object).is_ok(), "{ty}");
    }
}

#[test]
fn succeeded_checks_the_amount_received_too() {
    let p = payment();
    let partial = event(
        "evt_s",
        "payment_intent.succeeded",
        payment_intent(PRICE, PRICE - 1, "usd", ORDER),
    );
    assert_eq!(
        map(&partial, &p),
        Err(MapError::AmountMismatch {
            expected: PRICE,
            got: PRICE - 1
        })
    );
    let mut no_received = payment_intent(PRICE, PRICE, "usd", ORDER);
    no_received
        .as_object_mut()
        .unwrap()
        .remove("amount_received");
    let body = event("evt_s", "payment_intent.succeeded", no_received);
    assert_eq!(
        map(&body, &p),
        Err(MapError::MissingField("data.object.amount_received"))
    );
    // A payment intent's event carrying a charge is not what it says.
    let body = event(
        "evt_s",
        "payment_intent.succeeded",
        charge(PRICE, 0, "usd", ORDER, None),
    );
    assert_eq!(
        map(&body, &p),
        Err(MapError::BadField("data.object.object"))
    );
}

#[test]
fn the_order_key_is_configurable_and_compared_decoded() {
    let p = payment();
    let facts = Facts::of(ORDER, &p);
    let mut pi = payment_intent(PRICE, PRICE, "usd", "not-this-one");
    pi["metadata"]["shop_order"] = json!(ORDER);
    let body = event("evt_k", "payment_intent.processing", pi);
    let v = verify(&body).unwrap();
    assert_eq!(
        v.to_input(&Merchant::DEFAULT, &facts),
        Err(MapError::WrongOrder)
    );
    let shop = Merchant {
        order_key: "shop_order",
    };
    assert_eq!(v.to_input(&shop, &facts), Ok(Input::initiate(ev("evt_k"))));

    // JSON escapes in the order id decode before the comparison ("order-2024001").
    let text = String::from_utf8(event(
        "evt_e",
        "payment_intent.processing",
        payment_intent(PRICE, PRICE, "usd", ORDER),
    ))
    .unwrap();
    let escaped = text.replace(
        r#""order_id":"order-2024001""#,
        r#""order_id":"order\u002d2024\u0030\u00301""#,
    );
    assert_ne!(escaped, text);
    assert_eq!(
        map(escaped.as_bytes(), &p),
        Ok(Input::initiate(ev("evt_e")))
    );
    // An escaped event id would be a different id than the one Stripe means: refused.
    let escaped_id = text.replace(r#""id":"evt_e""#, r#""id":"evt\u005fe""#);
    assert_ne!(escaped_id, text);
    assert_eq!(
        map(escaped_id.as_bytes(), &p),
        Err(MapError::BadField("id"))
    );
    // The same key twice is ambiguous.
    let twice = text.replace(
        r#""order_id":"order-2024001""#,
        r#""order_id":"order-2024001","order_id":"x""#,
    );
    assert_eq!(
        map(twice.as_bytes(), &p),
        Err(MapError::BadField("data.object.metadata"))
    );
}

#[test]
fn isk_is_counted_in_hundredths_by_stripe() {
    let p: Payment = Payment::new(
        Money::from_minor(5, Currency::from_code("ISK").unwrap()),
        T(NOW),
    )
    .unwrap();
    let body = event(
        "evt_i",
        "payment_intent.succeeded",
        payment_intent(500, 500, "isk", ORDER),
    );
    let isk = Currency::from_code("ISK").unwrap();
    assert_eq!(
        map(&body, &p),
        Ok(Input::succeed(ev("evt_i"), Money::from_minor(5, isk)))
    );
    let odd = event(
        "evt_i",
        "payment_intent.succeeded",
        payment_intent(550, 550, "isk", ORDER),
    );
    assert_eq!(map(&odd, &p), Err(MapError::BadField("data.object.amount")));
    // JPY is zero-decimal at Stripe and in ISO 4217 alike.
    let jpy: Payment = Payment::new(Money::from_minor(500, Currency::JPY), T(NOW)).unwrap();
    let body = event(
        "evt_j",
        "payment_intent.succeeded",
        payment_intent(500, 500, "jpy", ORDER),
    );
    assert_eq!(
        map(&body, &jpy),
        Ok(Input::succeed(
            ev("evt_j"),
            Money::from_minor(500, Currency::JPY)
        ))
    );
}

#[test]
fn other_event_types_are_acknowledged_and_change_nothing() {
    let p = payment();
    for ty in [
        "payment_intent.amount_capturable_updated",
        "charge.succeeded",
        "customer.created",
        "Payment_intent.succeeded",
    ] {
        let body = event("evt_o", ty, json!({"object": "customer", "id": "cus_1"}));
        let err = map(&body, &p).unwrap_err();
        assert_eq!(err, MapError::NothingToApply, "{ty}");
        assert_eq!(Reply::for_map_error(&err), Reply::Received);
        assert_eq!(Reply::for_map_error(&err).status(), 200);
    }
}

#[test]
fn bad_json_is_an_error_and_nothing_is_mapped() {
    let good = event(
        "evt_j",
        "payment_intent.succeeded",
        payment_intent(PRICE, PRICE, "usd", ORDER),
    );
    let text = String::from_utf8(good).unwrap();
    let bad = [
        "not json".to_owned(),
        String::new(),
        format!("{text}}}"),
        format!("{text} trailing"),
        text[..text.len() - 1].to_owned(),
        text.replace(r#""amount":2000"#, r#""amount":"2000""#),
        text.replace(r#""amount":2000"#, r#""amount":-2000"#),
        text.replace(r#""amount":2000"#, r#""amount":99999999999999999999999"#),
        text.replace(r#""id":"evt_j""#, r#""id":"evt_j","id":"evt_k""#),
        text.replace(r#""metadata":{"#, r#""metadata":{"n":1,"#),
        text.replace(r#""metadata":{"#, r#""metadata":["#),
    ];
    for body in &bad {
        let err = verify(body.as_bytes()).unwrap_err();
        assert!(matches!(err, Error::Json(_)), "{body}: {err:?}");
        assert_eq!(
            Reply::for_error(&err),
            Reply::Fail {
                status: 400,
                code: "bad_json"
            }
        );
    }
    // Whitespace around the object is fine.
    assert!(verify(format!("\n {text} \n").as_bytes()).is_ok());
}

#[test]
fn a_forged_event_is_refused_and_nothing_is_mapped() {
    let body = event(
        "evt_f",
        "payment_intent.succeeded",
        payment_intent(PRICE, PRICE, "usd", ORDER),
    );
    let good_header = header(&body, NOW);
    for i in [0, body.len() / 2, body.len() - 1] {
        let mut forged = body.clone();
        forged[i] ^= 0x01;
        let err = stripe::verify(
            &key(),
            &good_header,
            &forged,
            T(NOW),
            Duration::DEFAULT_TOLERANCE,
        )
        .unwrap_err();
        assert_eq!(err, Error::Signature(StripeError::Mismatch));
        assert_eq!(Reply::for_error(&err).status(), 400);
    }
    // One hex digit of the signature changed.
    let mut h = good_header.clone().into_bytes();
    let last = h.len() - 1;
    h[last] = if h[last] == b'0' { b'1' } else { b'0' };
    let h = String::from_utf8(h).unwrap();
    assert_eq!(
        stripe::verify(&key(), &h, &body, T(NOW), Duration::DEFAULT_TOLERANCE).unwrap_err(),
        Error::Signature(StripeError::Mismatch)
    );
    // Another endpoint's secret.
    let other = HmacKey::new(b"whsec_other").unwrap();
    assert!(
        stripe::verify(
            &other,
            &good_header,
            &body,
            T(NOW),
            Duration::DEFAULT_TOLERANCE
        )
        .is_err()
    );
    // Stale.
    assert_eq!(
        stripe::verify(
            &key(),
            &good_header,
            &body,
            T(NOW + 301),
            Duration::DEFAULT_TOLERANCE
        )
        .unwrap_err()
        .code(),
        "stale"
    );
}

#[test]
fn a_trusted_event_maps_like_a_verified_one() {
    let p = payment();
    let body = event(
        "evt_t",
        "payment_intent.canceled",
        payment_intent(PRICE, 0, "usd", ORDER),
    );
    let trusted = Verified::trust_unverified(stripe::Event::parse(&body).unwrap());
    assert_eq!(
        trusted.to_input(&Merchant::default(), &Facts::of(ORDER, &p)),
        map(&body, &p)
    );
}

#[test]
fn replies_follow_the_outcome() {
    let mut p = payment();
    let canceled = event(
        "evt_c",
        "payment_intent.canceled",
        payment_intent(PRICE, 0, "usd", ORDER),
    );
    let out = p.apply(&map(&canceled, &p).unwrap(), T(NOW));
    assert_eq!(Reply::for_outcome(&out), Reply::Received);
    assert_eq!(
        (Reply::Received.status(), Reply::Received.body()),
        (200, "received")
    );
    // The same event id with other content is a conflict: not acknowledged, Stripe retries.
    let conflict = p.apply(&Input::initiate(ev("evt_c")), T(NOW));
    let reply = Reply::for_outcome(&conflict);
    assert_eq!(
        reply,
        Reply::Fail {
            status: 500,
            code: "idempotency_conflict"
        }
    );
    assert_eq!(reply.body(), "idempotency_conflict");
}

// ---------------------------------------------------------------------------------------------
// Redelivery: applying a message, anything, and the message again.

#[derive(Debug, Clone)]
enum Msg {
    /// One of `PI_TYPES`.
    PaymentIntent(usize),
    /// `charge.refunded` listing a succeeded refund `re_{n}` of `amount`.
    Listed(u8, u64),
    /// `charge.refunded` with only the cumulative `amount_refunded`.
    Cumulative(u64),
}

#[derive(Debug, Clone)]
enum Other {
    /// A Stripe event, with its own event id.
    Event(Msg),
    /// The host cancels.
    Cancel,
    /// Time passes beyond the deadline.
    Tick,
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        3 => (0..PI_TYPES.len()).prop_map(Msg::PaymentIntent),
        1 => (0u8..4, 1..=PRICE).prop_map(|(n, a)| Msg::Listed(n, a)),
        1 => (1..=PRICE).prop_map(Msg::Cumulative),
    ]
}

fn other() -> impl Strategy<Value = Other> {
    prop_oneof![
        6 => msg().prop_map(Other::Event),
        1 => Just(Other::Cancel),
        1 => Just(Other::Tick),
    ]
}

fn body_of(m: &Msg, id: &str) -> Vec<u8> {
    match m {
        Msg::PaymentIntent(k) => {
            event(id, PI_TYPES[*k], payment_intent(PRICE, PRICE, "usd", ORDER))
        }
        Msg::Listed(n, a) => {
            // Refund ids are Stripe's: one refund id, one amount.
            let list = json!([refund_object(&format!("re_{id}_{n}"), *a, "succeeded")]);
            event(
                id,
                "charge.refunded",
                charge(PRICE, *a, "usd", ORDER, Some(list)),
            )
        }
        Msg::Cumulative(c) => event(id, "charge.refunded", charge(PRICE, *c, "usd", ORDER, None)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_redelivered_event_is_a_duplicate_or_ignored(
        accept in any::<bool>(),
        start_paid in any::<bool>(),
        before in proptest::collection::vec(other(), 0..6),
        m in msg(),
        between in proptest::collection::vec(other(), 0..12),
    ) {
        let policy = if accept { LateSuccess::Accept } else { LateSuccess::Refund };
        let mut p: Payment = payment().with_deadline(T(NOW + 1_000)).with_late_success(policy);
        let mut n = 0u32;
        let run = |p: &mut Payment, o: &Other, n: &mut u32| {
            *n += 1;
            match o {
                Other::Event(m) => {
                    let body = body_of(m, &format!("evt_other_{n}"));
                    if let Ok(i) = map(&body, p) {
                        let _ = p.apply(&i, T(NOW));
                    }
                }
                Other::Cancel => {
                    let _ = p.apply(&Input::cancel(ev(&format!("cmd_{n}"))), T(NOW));
                }
                Other::Tick => {
                    let _ = p.tick(T(NOW + 2_000));
                }
            }
        };
        // Half the runs start from a paid payment, so refunds apply as often as payments.
        let start = if start_paid { vec![Other::Event(Msg::PaymentIntent(3))] } else { Vec::new() };
        for o in start.iter().chain(&before) {
            run(&mut p, o, &mut n);
        }
        let body = body_of(&m, "evt_under_test");
        let Ok(first) = map(&body, &p) else { return Ok(()) };
        if !matches!(p.apply(&first, T(NOW)), Outcome::Applied(_)) {
            return Ok(());
        }
        for o in &between {
            run(&mut p, o, &mut n);
        }
        let before_again = p.clone();
        let second = map(&body, &p);
        prop_assert_eq!(second, Ok(first), "a redelivery maps to the same input");
        let outcome = p.apply(&first, T(NOW + 5));
        prop_assert!(
            matches!(outcome, Outcome::Duplicate | Outcome::Ignored),
            "second outcome {:?}", outcome
        );
        prop_assert!(outcome.effects().is_empty());
        prop_assert_eq!(p.version(), before_again.version());
    }
}

#[test]
fn the_redelivery_property_reaches_applied_first_deliveries() {
    // The property above skips messages that do not apply the first time; check that the
    // common ones do, so it cannot pass by skipping everything.
    for m in [
        Msg::PaymentIntent(1),
        Msg::PaymentIntent(3),
        Msg::PaymentIntent(5),
    ] {
        let mut p = payment();
        let i = map(&body_of(&m, "evt_m"), &p).unwrap();
        assert!(matches!(p.apply(&i, T(NOW)), Outcome::Applied(_)), "{m:?}");
    }
    let mut p = payment();
    let _ = p.apply(
        &map(&body_of(&Msg::PaymentIntent(3), "evt_p"), &p).unwrap(),
        T(NOW),
    );
    for m in [Msg::Listed(1, 10), Msg::Cumulative(PRICE)] {
        let i = map(&body_of(&m, "evt_m2"), &p).unwrap();
        let mut q = p.clone();
        assert!(matches!(q.apply(&i, T(NOW)), Outcome::Applied(_)), "{m:?}");
    }
}

proptest! {
    #[test]
    fn any_bytes_parse_or_fail_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let p = payment();
        if let Ok(e) = stripe::Event::parse(&body) {
            let _ = Verified::trust_unverified(e).to_input(&Merchant::DEFAULT, &Facts::of(ORDER, &p));
        }
    }

    #[test]
    fn damaged_events_parse_or_fail_without_panicking(
        m in msg(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let p = payment();
        let mut body = body_of(&m, "evt_d");
        let i = flip.index(body.len());
        body[i] = byte;
        body.truncate(cut.index(body.len() + 1));
        if let Ok(e) = stripe::Event::parse(&body) {
            let _ = Verified::trust_unverified(e).to_input(&Merchant::DEFAULT, &Facts::of(ORDER, &p));
        }
    }
}

#[test]
fn a_declined_card_then_a_success_on_the_same_intent_follows_the_late_success_policy() {
    let failed = event(
        "evt_f1",
        "payment_intent.payment_failed",
        payment_intent(PRICE, 0, "usd", ORDER),
    );
    let paid = event(
        "evt_s1",
        "payment_intent.succeeded",
        payment_intent(PRICE, PRICE, "usd", ORDER),
    );
    // Default policy: the capture after a failed attempt is refunded.
    let mut p = payment();
    let _ = p.apply(&map(&failed, &p).unwrap(), T(NOW));
    let out = p.apply(&map(&paid, &p).unwrap(), T(NOW));
    assert_eq!(p.status(), Status::Failed);
    assert_eq!(out.effects().len(), 1, "a refund is required: {out:?}");
    // With LateSuccess::Accept, as the module docs advise for Stripe, it is kept.
    let mut p = payment().with_late_success(LateSuccess::Accept);
    let _ = p.apply(&map(&failed, &p).unwrap(), T(NOW));
    let out = p.apply(&map(&paid, &p).unwrap(), T(NOW));
    assert_eq!((p.status(), out.effects().len()), (Status::Succeeded, 0));
}

#[test]
fn the_order_id_is_read_from_the_metadata_before_the_payment_is_loaded() {
    let body = event(
        "evt_o",
        "payment_intent.succeeded",
        payment_intent(PRICE, PRICE, "usd", ORDER),
    );
    assert_eq!(
        verify(&body)
            .unwrap()
            .message()
            .order_id(&Merchant::DEFAULT),
        Ok(ORDER)
    );
    let other_key = Merchant { order_key: "cart" };
    assert_eq!(
        verify(&body).unwrap().message().order_id(&other_key),
        Err(MapError::MissingField("data.object.metadata"))
    );
    let mut object = payment_intent(PRICE, PRICE, "usd", ORDER);
    object["metadata"] = json!({"order_id": "a\"b"});
    let body = event("evt_e", "payment_intent.succeeded", object);
    assert_eq!(
        verify(&body)
            .unwrap()
            .message()
            .order_id(&Merchant::DEFAULT),
        Err(MapError::BadField("data.object.metadata"))
    );
    let mut object = payment_intent(PRICE, PRICE, "usd", ORDER);
    object.as_object_mut().unwrap().remove("metadata");
    let body = event("evt_n", "payment_intent.succeeded", object);
    assert_eq!(
        verify(&body)
            .unwrap()
            .message()
            .order_id(&Merchant::DEFAULT),
        Err(MapError::MissingField("data.object.metadata"))
    );
}
