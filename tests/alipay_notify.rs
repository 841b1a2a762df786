//! A notification from body to engine input and reply: the business checks, the
//! `trade_status` table, signing round trips, and hostile bodies.
#![cfg(feature = "rsa")]

use std::sync::OnceLock;

use paystate::alipay::content::SignRule;
use paystate::alipay::form::{Form, FormError, encode_pairs};
use paystate::alipay::notify::{MerchantConfig, Notification, NotifyError, Reply};
use paystate::provider::Facts;
use paystate::signature::{Rsa2PrivateKey, Rsa2PublicKey, SignatureError};
use paystate::{
    Currency, Effect, EventId, Input, Money, Outcome, Payment, RefundId, Status, Timestamp,
};

const APP_ID: &str = "2021000000000001";
const SELLER_ID: &str = "2088000000000002";
const ORDER: &str = "order-42";
const MERCHANT: MerchantConfig<'static> = MerchantConfig {
    app_id: APP_ID,
    seller_id: SELLER_ID,
};

fn key() -> &'static Rsa2PrivateKey {
    static KEY: OnceLock<Rsa2PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/keys/app2048.pkcs8.pem"
        );
        Rsa2PrivateKey::parse(&std::fs::read(path).unwrap()).unwrap()
    })
}

/// The signed content, built independently of the crate: sorted, empty values and `sign`
/// dropped, `sign_type` dropped under V1.
fn content(params: &[(&str, &str)], rule: SignRule) -> String {
    let mut kept: Vec<_> = params
        .iter()
        .filter(|(k, v)| {
            !v.is_empty() && *k != "sign" && !(rule == SignRule::V1 && *k == "sign_type")
        })
        .collect();
    kept.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    kept.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A form body signed like Alipay signs a trade notification.
fn signed_body(params: &[(&str, &str)], rule: SignRule, key: &Rsa2PrivateKey) -> String {
    let sign = key.sign_base64(content(params, rule).as_bytes()).unwrap();
    let mut body = String::new();
    encode_pairs(
        params.iter().copied().chain([("sign", sign.as_str())]),
        &mut body,
    )
    .unwrap();
    body
}

fn notification(
    trade_status: &str,
    extra: &[(&'static str, &'static str)],
) -> Vec<(&'static str, String)> {
    let mut p: Vec<(&'static str, String)> = vec![
        ("app_id", APP_ID.into()),
        ("seller_id", SELLER_ID.into()),
        ("out_trade_no", ORDER.into()),
        ("total_amount", "99.90".into()),
        ("notify_id", format!("notify-{trade_status}")),
        ("notify_type", "trade_status_sync".into()),
        ("notify_time", "2026-11-27 10:00:00".into()),
        ("trade_no", "2026112722001400000000000001".into()),
        ("trade_status", trade_status.into()),
        ("subject", "绿茶 500 g & more".into()),
        ("charset", "utf-8".into()),
        ("sign_type", "RSA2".into()),
        ("version", "1.0".into()),
    ];
    for (k, v) in extra {
        match p.iter_mut().find(|(key, _)| key == k) {
            Some(slot) => slot.1 = (*v).into(),
            None => p.push((k, (*v).into())),
        }
    }
    p
}

fn body(params: &[(&'static str, String)]) -> String {
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    signed_body(&p, SignRule::V1, key())
}

fn price() -> Money {
    Money::parse("99.90", Currency::CNY).unwrap()
}

fn payment() -> Payment {
    Payment::new(price(), Timestamp::from_secs(1_000)).unwrap()
}

/// What a host does with a body: decode, verify, check, map, apply, reply.
fn handle(
    body: &str,
    payment: &mut Payment,
    public: &Rsa2PublicKey,
) -> (Reply, Result<Outcome, NotifyError>) {
    let result = (|| {
        let mut buf = vec![0u8; body.len()];
        let form = Form::decode(body.as_bytes(), &mut buf)?;
        let note = Notification::verify(&form, SignRule::V1, public)?;
        let input = note.to_input(&MERCHANT, &Facts::of(ORDER, payment))?;
        Ok(payment.apply(&input, Timestamp::from_secs(2_000)))
    })();
    let reply = match &result {
        Ok(outcome) => Reply::for_outcome(outcome),
        Err(_) => Reply::Fail,
    };
    (reply, result)
}

fn input_of(params: &[(&'static str, String)], payment: &Payment) -> Result<Input, NotifyError> {
    let body = body(params);
    let mut buf = vec![0u8; body.len()];
    let form = Form::decode(body.as_bytes(), &mut buf)?;
    Notification::verify(&form, SignRule::V1, &key().public_key())?
        .to_input(&MERCHANT, &Facts::of(ORDER, payment))
}

fn event(id: &str) -> EventId {
    EventId::new(id.as_bytes()).unwrap()
}

#[test]
fn trade_success_is_a_capture_and_its_redelivery_a_duplicate() {
    let public = key().public_key();
    let mut p = payment();
    let body = body(&notification("TRADE_SUCCESS", &[]));
    let (reply, outcome) = handle(&body, &mut p, &public);
    assert_eq!((reply, reply.as_str()), (Reply::Success, "success"));
    assert!(matches!(outcome, Ok(Outcome::Applied(_))));
    assert_eq!((p.status(), p.paid()), (Status::Succeeded, price()));
    assert_eq!(
        handle(&body, &mut p, &public),
        (Reply::Success, Ok(Outcome::Duplicate))
    );
    assert_eq!(p.version(), 1);
}

#[test]
fn the_trade_status_table() {
    let mut unpaid = payment();
    let ok = |status: &str, p: &Payment| input_of(&notification(status, &[]), p).unwrap();
    assert_eq!(
        ok("WAIT_BUYER_PAY", &unpaid),
        Input::initiate(event("notify-WAIT_BUYER_PAY"))
    );
    assert_eq!(
        ok("TRADE_SUCCESS", &unpaid),
        Input::succeed(event("notify-TRADE_SUCCESS"), price())
    );
    assert_eq!(
        ok("TRADE_FINISHED", &unpaid),
        Input::succeed(event("notify-TRADE_FINISHED"), price())
    );
    // TRADE_CLOSED on an unpaid payment: closed unpaid.
    assert_eq!(
        ok("TRADE_CLOSED", &unpaid),
        Input::close(event("notify-TRADE_CLOSED"))
    );
    let closed = ok("TRADE_CLOSED", &unpaid);
    assert!(matches!(
        unpaid.apply(&closed, Timestamp::from_secs(2_000)),
        Outcome::Applied(_)
    ));
    assert_eq!(unpaid.status(), Status::Cancelled);

    // On a paid payment, TRADE_FINISHED changes nothing and is acknowledged.
    let public = key().public_key();
    let mut paid = payment();
    assert_eq!(
        handle(
            &body(&notification("TRADE_SUCCESS", &[])),
            &mut paid,
            &public
        )
        .0,
        Reply::Success
    );
    let (reply, outcome) = handle(
        &body(&notification("TRADE_FINISHED", &[])),
        &mut paid,
        &public,
    );
    assert_eq!((reply, outcome), (Reply::Success, Ok(Outcome::Ignored)));

    // TRADE_CLOSED on a paid payment: the full refund, under the refund's id.
    let closed = notification(
        "TRADE_CLOSED",
        &[("out_biz_no", "refund-1"), ("refund_fee", "99.90")],
    );
    assert_eq!(
        input_of(&closed, &paid),
        Ok(Input::refund(
            event("notify-TRADE_CLOSED"),
            RefundId::new(b"refund-1").unwrap(),
            price()
        ))
    );
    let (reply, outcome) = handle(&body(&closed), &mut paid, &public);
    assert_eq!(reply, Reply::Success);
    assert!(matches!(outcome, Ok(Outcome::Applied(_))));
    assert_eq!(
        (paid.status(), paid.refunded()),
        (Status::Refunded, price())
    );
    // Without out_biz_no the notify_id is the refund id; on a refunded payment it is ignored.
    assert_eq!(
        handle(
            &body(&notification("TRADE_CLOSED", &[("notify_id", "n-9")])),
            &mut paid,
            &public
        ),
        (Reply::Success, Ok(Outcome::Ignored))
    );
}

#[test]
fn trade_closed_after_a_partial_refund_refunds_the_balance() {
    let mut p = payment();
    let paid = Input::succeed(event("n-1"), price());
    let part = Money::parse("10.00", Currency::CNY).unwrap();
    assert!(matches!(
        p.apply(&paid, Timestamp::from_secs(1_100)),
        Outcome::Applied(_)
    ));
    let first = Input::refund(event("r-1"), RefundId::new(b"refund-1").unwrap(), part);
    assert!(matches!(
        p.apply(&first, Timestamp::from_secs(1_200)),
        Outcome::Applied(_)
    ));
    let closed = notification(
        "TRADE_CLOSED",
        &[("out_biz_no", "refund-2"), ("refund_fee", "99.90")],
    );
    assert_eq!(
        input_of(&closed, &p),
        Ok(Input::refund(
            event("notify-TRADE_CLOSED"),
            RefundId::new(b"refund-2").unwrap(),
            Money::parse("89.90", Currency::CNY).unwrap()
        ))
    );
    // A refund_fee that only restates the recorded refunds reports no new refund: it is read
    // as the close it says (which the engine refuses on a paid payment: reconcile).
    let restated = notification("TRADE_CLOSED", &[("refund_fee", "10.00")]);
    assert_eq!(
        input_of(&restated, &p),
        Ok(Input::close(event("notify-TRADE_CLOSED")))
    );
    // A refund_fee at or below the recorded refunds adds nothing to them (a refund's
    // notification arriving after a later one's): read as the status it carries, which the
    // engine answers `ignored`, so Alipay is answered `success`.
    let behind = notification(
        "TRADE_SUCCESS",
        &[("out_biz_no", "refund-3"), ("refund_fee", "5.00")],
    );
    let input = input_of(&behind, &p).unwrap();
    assert_eq!(
        input,
        Input::succeed(event("notify-TRADE_SUCCESS"), price())
    );
    assert_eq!(
        p.apply(&input, Timestamp::from_secs(1_300)),
        Outcome::Ignored
    );
}

#[test]
fn late_success_on_a_cancelled_order_asks_for_a_refund_and_acknowledges() {
    let public = key().public_key();
    let mut p = payment().with_deadline(Timestamp::from_secs(1_500));
    let _ = p.tick(Timestamp::from_secs(1_500));
    assert_eq!(p.status(), Status::Cancelled);
    let (reply, outcome) = handle(&body(&notification("TRADE_SUCCESS", &[])), &mut p, &public);
    assert_eq!(reply, Reply::Success);
    assert_eq!(
        outcome.unwrap().effects(),
        &[Effect::RefundRequired {
            amount: price(),
            refund_id: p.refund_request_id()
        }]
    );
}

#[test]
fn the_four_business_checks() {
    let p = payment();
    let check = |extra: &[(&'static str, &'static str)]| {
        input_of(&notification("TRADE_SUCCESS", extra), &p)
    };
    assert_eq!(
        check(&[("app_id", "2021000000000009")]),
        Err(NotifyError::AppIdMismatch)
    );
    assert_eq!(
        check(&[("seller_id", "2088000000000009")]),
        Err(NotifyError::SellerIdMismatch)
    );
    assert_eq!(
        check(&[("out_trade_no", "order-43")]),
        Err(NotifyError::OrderMismatch)
    );
    assert_eq!(
        check(&[("total_amount", "0.01")]),
        Err(NotifyError::AmountMismatch {
            expected: 9990,
            got: 1
        })
    );
    assert!(matches!(
        check(&[("total_amount", "99.9000")]),
        Err(NotifyError::InvalidAmount {
            field: "total_amount",
            ..
        })
    ));
    assert_eq!(
        check(&[("total_amount", "99.9")]).map(|i| i.kind()),
        Ok(paystate::InputKind::Succeed)
    );
    assert_eq!(
        check(&[("trade_status", "TRADE_PENDING")]),
        Err(NotifyError::UnknownTradeStatus)
    );
    assert!(matches!(
        check(&[("notify_id", "n-".repeat(40).leak())]),
        Err(NotifyError::InvalidNotifyId(_))
    ));
    assert_eq!(
        check(&[("seller_id", "")]),
        Err(NotifyError::MissingField { field: "seller_id" })
    );
    // A business failure is answered "fail" and changes nothing.
    let public = key().public_key();
    let mut fresh = payment();
    let (reply, err) = handle(
        &body(&notification("TRADE_SUCCESS", &[("app_id", "x")])),
        &mut fresh,
        &public,
    );
    assert_eq!((reply, err), (Reply::Fail, Err(NotifyError::AppIdMismatch)));
    assert_eq!(fresh.version(), 0);
}

#[test]
fn a_rejected_outcome_is_answered_fail() {
    let public = key().public_key();
    let mut p = payment();
    assert_eq!(
        handle(&body(&notification("TRADE_SUCCESS", &[])), &mut p, &public).0,
        Reply::Success
    );
    // The same notify_id with another trade_status: an idempotency conflict.
    let conflicting = notification("WAIT_BUYER_PAY", &[("notify_id", "notify-TRADE_SUCCESS")]);
    let (reply, outcome) = handle(&body(&conflicting), &mut p, &public);
    assert_eq!(reply, Reply::Fail);
    assert!(matches!(outcome, Ok(Outcome::Rejected(_))));
}

#[test]
fn wrong_key_or_rule_is_a_signature_error() {
    let params = notification("TRADE_SUCCESS", &[]);
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let other = Rsa2PrivateKey::parse(
        &std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/keys/app4096.pkcs8.pem"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut payment = payment();
    let public = key().public_key();
    let by_other = signed_body(&p, SignRule::V1, &other);
    assert_eq!(
        handle(&by_other, &mut payment, &public),
        (
            Reply::Fail,
            Err(NotifyError::Signature(SignatureError::WrongLength {
                expected: 256,
                got: 512
            }))
        )
    );
    let under_v2 = signed_body(&p, SignRule::V2, key());
    assert_eq!(
        handle(&under_v2, &mut payment, &public),
        (
            Reply::Fail,
            Err(NotifyError::Signature(SignatureError::Mismatch))
        )
    );
    assert_eq!(payment.version(), 0);
}

#[test]
fn round_trip_with_a_freshly_generated_key() {
    use rsa::pkcs8::EncodePrivateKey;
    let generated = rsa::PrivateKey::new(&mut rand::rng(), 2048).unwrap();
    let der = generated.to_pkcs8_der().unwrap();
    let private = Rsa2PrivateKey::from_der(der.as_bytes()).unwrap();
    let params = notification("TRADE_SUCCESS", &[]);
    let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let body = signed_body(&p, SignRule::V1, &private);
    let mut payment = payment();
    let (reply, outcome) = handle(&body, &mut payment, &private.public_key());
    assert_eq!(reply, Reply::Success);
    assert!(matches!(outcome, Ok(Outcome::Applied(_))));
    // And not with the committed key.
    assert_eq!(
        handle(&body, &mut payment, &key().public_key()).0,
        Reply::Fail
    );
}

#[test]
fn hostile_bodies_get_a_verdict_not_a_panic() {
    let public = key().public_key();
    let mut p = payment();
    let verdict = |body: &[u8], p: &mut Payment| {
        let mut buf = vec![0u8; body.len()];
        match Form::decode(body, &mut buf) {
            Err(e) => Err(NotifyError::Form(e)),
            Ok(form) => Notification::verify(&form, SignRule::V1, &public)
                .map_err(NotifyError::from)
                .and_then(|n| n.to_input(&MERCHANT, &Facts::of(ORDER, p)))
                .map(|_| ()),
        }
    };
    assert_eq!(
        verdict(b"", &mut p),
        Err(NotifyError::Form(FormError::Empty))
    );
    // 1 MiB in one value: decoded, then refused for want of a signature.
    let mut big = b"subject=".to_vec();
    big.resize(1 << 20, b'a');
    assert_eq!(
        verdict(&big, &mut p),
        Err(NotifyError::Signature(SignatureError::Missing))
    );
    // 1 MiB of fields: refused at the capacity.
    let many = "a=1&".repeat(1 << 18);
    assert!(matches!(
        verdict(many.as_bytes(), &mut p),
        Err(NotifyError::Form(FormError::TooManyFields { .. }))
    ));
    // 1 MiB of escapes, a signature of 1 MiB.
    let escapes = format!("sign={}", "%41".repeat(350_000));
    assert!(matches!(
        verdict(escapes.as_bytes(), &mut p),
        Err(NotifyError::Signature(SignatureError::TooLong { .. }))
    ));
    // Binary noise.
    let noise: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert!(verdict(&noise, &mut p).is_err());
    assert_eq!(p.version(), 0);
}
