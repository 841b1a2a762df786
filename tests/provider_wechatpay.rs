//! WeChat Pay in the provider shape: the SDK's real callback, a notification signed by an
//! independent implementation, and notifications and answers built, encrypted and signed here
//! with the test platform key; every business check, forgeries, malformed bodies, the reply,
//! and the redelivery property.
#![cfg(feature = "wechatpay")]

use aes_gcm::aead::Nonce;
use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit};
use base64ct::{Base64, Encoding};
use paystate::guard::ReplayGuard;
use paystate::provider::wechatpay::{
    self, CloseAnswer, Error, Keys, Merchant, Notification, NotificationResource, QueryAnswer,
    RefundAnswer, Reply,
};
use paystate::provider::{Facts, MapError, Verified};
use paystate::signature::x509::Certificate;
use paystate::signature::{Rsa2PrivateKey, SignatureError};
use paystate::webhook::WindowError;
use paystate::webhook::wechatpay::{ApiV3Key, DecryptError, Headers, PlatformKey, WechatError};
use paystate::{
    Currency, EventId, Input, LateSuccess, Money, Outcome, Payment, RefundId, Status, Timestamp,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const T: fn(u64) -> Timestamp = Timestamp::from_secs;
const NOW: u64 = 1_795_790_460;
const ORDER: &str = "1217752501201407033233368018";
const PRICE: u64 = 100;
const MCHID: &str = "1230000109";
const APPID: &str = "wxd678efh567hg6787";
const MERCHANT: Merchant<'static> = Merchant {
    mchid: MCHID,
    appid: APPID,
};
const SERIAL: &str = "0A1B2C3D4E5F60718293A4B5C6D7E8F901234567";
const AES_KEY: &[u8; 32] = b"J2PKguiqOpHxV9IjuelJjyE7aWfDCp8R";

fn platform() -> Vec<PlatformKey> {
    let cert =
        Certificate::from_pem(include_str!("data/wechatpay_fresh/platform_cert.pem")).unwrap();
    vec![PlatformKey::from_certificate(&cert).unwrap()]
}

fn signer() -> Rsa2PrivateKey {
    Rsa2PrivateKey::from_pem(include_str!(
        "data/wechatpay_fresh/platform_private_key.pem"
    ))
    .unwrap()
}

fn api_key() -> ApiV3Key {
    ApiV3Key::new(*AES_KEY)
}

/// A request or answer as it arrives: headers and body.
struct Signed {
    timestamp: String,
    nonce: String,
    serial: String,
    signature: String,
    body: Vec<u8>,
}

impl Signed {
    fn new(body: Vec<u8>, t: u64, nonce: &str) -> Signed {
        let message = [
            t.to_string().as_bytes(),
            b"\n",
            nonce.as_bytes(),
            b"\n",
            &body,
            b"\n",
        ]
        .concat();
        Signed {
            timestamp: t.to_string(),
            nonce: nonce.to_owned(),
            serial: SERIAL.to_owned(),
            signature: signer().sign_base64(&message).unwrap(),
            body,
        }
    }

    fn headers(&self) -> Headers<'_> {
        Headers {
            timestamp: &self.timestamp,
            nonce: &self.nonce,
            serial: &self.serial,
            signature: &self.signature,
        }
    }
}

/// AEAD_AES_256_GCM under the APIv3 key, base64 of ciphertext ‖ tag.
fn seal(plaintext: &[u8], nonce: &[u8; 12], associated_data: &[u8]) -> String {
    let cipher = Aes256Gcm::new(&(*AES_KEY).into());
    let mut buf = plaintext.to_vec();
    let nonce = <&Nonce<Aes256Gcm>>::try_from(&nonce[..]).unwrap();
    let tag = cipher
        .encrypt_inout_detached(nonce, associated_data, buf.as_mut_slice().into())
        .unwrap();
    buf.extend_from_slice(&tag);
    Base64::encode_string(&buf)
}

fn transaction(
    state: &str,
    total: u64,
    currency: &str,
    order: &str,
    mchid: &str,
    appid: &str,
) -> Value {
    json!({
        "mchid": mchid,
        "appid": appid,
        "out_trade_no": order,
        "transaction_id": "4200000000201407033233368018",
        "trade_type": "JSAPI",
        "trade_state": state,
        "trade_state_desc": "支付成功",
        "bank_type": "CMC",
        "attach": "",
        "success_time": "2018-06-08T10:34:56+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": total, "payer_total": total, "currency": currency, "payer_currency": currency}
    })
}

fn tx(state: &str) -> Value {
    transaction(state, PRICE, "CNY", ORDER, MCHID, APPID)
}

/// A refund notification's resource (no `appid`, no currency: WeChat Pay's shape).
fn refund_resource(status: &str, out_refund_no: &str, refund: u64) -> Value {
    json!({
        "mchid": MCHID,
        "transaction_id": "1008450740201411110005820873",
        "out_trade_no": ORDER,
        "refund_id": "50200207182018070300011301001",
        "out_refund_no": out_refund_no,
        "refund_status": status,
        "success_time": "2018-06-08T10:34:56+08:00",
        "user_received_account": "招商银行信用卡0403",
        "amount": {"total": PRICE, "refund": refund, "payer_total": PRICE, "payer_refund": refund}
    })
}

/// A refund answer (no `mchid`, no `appid`; `status` and `amount.currency`).
fn refund_answer_body(status: &str, out_refund_no: &str, refund: u64) -> Value {
    json!({
        "refund_id": "50000000382019052709732678859",
        "out_refund_no": out_refund_no,
        "transaction_id": "1217752501201407033233368018",
        "out_trade_no": ORDER,
        "channel": "ORIGINAL",
        "user_received_account": "招商银行信用卡0403",
        "create_time": "2020-12-01T16:18:12+08:00",
        "status": status,
        "funds_account": "UNSETTLED",
        "amount": {"total": PRICE, "refund": refund, "payer_total": PRICE, "payer_refund": refund,
                   "settlement_refund": refund, "settlement_total": PRICE, "discount_refund": 0,
                   "currency": "CNY", "from": []},
        "promotion_detail": []
    })
}

fn notification_body(id: &str, event_type: &str, resource: &Value) -> Vec<u8> {
    let plaintext = serde_json::to_vec(resource).unwrap();
    let (original_type, ad) = if event_type.starts_with("REFUND.") {
        ("refund", "refund")
    } else {
        ("transaction", "transaction")
    };
    serde_json::to_vec(&json!({
        "id": id,
        "create_time": "2026-11-27T22:41:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": seal(&plaintext, b"rFsc3XqHl7Fp", ad.as_bytes()),
            "associated_data": ad,
            "nonce": "rFsc3XqHl7Fp"
        }
    }))
    .unwrap()
}

fn payment() -> Payment {
    Payment::new(Money::from_minor(PRICE, Currency::CNY), T(NOW - 600)).unwrap()
}

fn cny(minor: u64) -> Money {
    Money::from_minor(minor, Currency::CNY)
}

fn ev(id: &str) -> EventId {
    EventId::new(id.as_bytes()).unwrap()
}

fn rid(id: &str) -> RefundId {
    RefundId::new(id.as_bytes()).unwrap()
}

/// What verifying and then mapping gave.
type Mapped = Result<Result<Input, MapError>, Error>;

/// Verifies a signed notification (fresh guard) and maps it.
fn notify(s: &Signed, facts: &Facts<'_>) -> Mapped {
    let mut guard = ReplayGuard::<8>::new();
    let mut buf = [0u8; 2048];
    let keys = platform();
    let api = api_key();
    let keys = Keys {
        platform: &keys,
        api_v3: &api,
    };
    let n =
        wechatpay::verify_notification(&s.headers(), &s.body, &keys, &mut guard, T(NOW), &mut buf)?;
    Ok(n.to_input(&MERCHANT, facts))
}

fn signed_notification(id: &str, event_type: &str, resource: &Value) -> Signed {
    Signed::new(
        notification_body(id, event_type, resource),
        NOW,
        &format!("nonce-{id}"),
    )
}

fn query(s: &Signed, status: u16, facts: &Facts<'_>) -> Mapped {
    let a = wechatpay::verify_query(&s.headers(), status, &s.body, &platform(), T(NOW))?;
    Ok(a.to_input(&MERCHANT, facts))
}

fn close(s: &Signed, status: u16, asked: &str, facts: &Facts<'_>) -> Mapped {
    let a = wechatpay::verify_close(&s.headers(), status, &s.body, &platform(), T(NOW), asked)?;
    Ok(a.to_input(&MERCHANT, facts))
}

fn refund(s: &Signed, status: u16, facts: &Facts<'_>) -> Mapped {
    let a = wechatpay::verify_refund(&s.headers(), status, &s.body, &platform(), T(NOW))?;
    Ok(a.to_input(&MERCHANT, facts))
}

fn answer(body: &Value) -> Signed {
    Signed::new(serde_json::to_vec(body).unwrap(), NOW, "answer-nonce")
}

fn derived(parts: &[&str]) -> EventId {
    let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
    EventId::derived(&parts).unwrap()
}

fn state_input(state: &str, id: EventId) -> Result<Input, MapError> {
    Ok(match state {
        "SUCCESS" => Input::succeed(id, cny(PRICE)),
        "NOTPAY" | "USERPAYING" | "ACCEPT" => Input::initiate(id),
        "CLOSED" | "REVOKED" => Input::close(id),
        "PAYERROR" => Input::fail(id, "PAYERROR").unwrap(),
        "REFUND" => return Err(MapError::NothingToApply),
        _ => return Err(MapError::UnknownStatus),
    })
}

const STATES: [&str; 8] = [
    "SUCCESS",
    "NOTPAY",
    "USERPAYING",
    "ACCEPT",
    "CLOSED",
    "REVOKED",
    "PAYERROR",
    "REFUND",
];

// ---------------------------------------------------------------------------------------------
// Real vectors.

#[test]
#[cfg(feature = "sdk-test-vectors")] // the SDK's vector uses a 16-byte key
fn the_sdk_callback_verifies_decrypts_and_is_not_a_payment() {
    // The official SDK's callback: a PayScore event, signed by the SDK's test platform key and
    // encrypted with its 16-byte test APIv3 key (AES-128-GCM; see the data README).
    let h: Value =
        serde_json::from_str(include_str!("data/wechatpay_v3_notify/headers.json")).unwrap();
    let s = |k: &str| h[k].as_str().unwrap();
    let headers = Headers {
        timestamp: s("Wechatpay-Timestamp"),
        nonce: s("Wechatpay-Nonce"),
        serial: s("Wechatpay-Serial"),
        signature: s("Wechatpay-Signature"),
    };
    let body = include_bytes!("data/wechatpay_v3_notify/body.json");
    let cert =
        Certificate::from_pem(include_str!("data/wechatpay_v3_notify/platform_cert.pem")).unwrap();
    let platform = [PlatformKey::from_certificate(&cert).unwrap()];
    let api = ApiV3Key::aes128_for_sdk_test_vectors(*b"testMchAPIv3Key0");
    let keys = Keys {
        platform: &platform,
        api_v3: &api,
    };
    let mut guard = ReplayGuard::<8>::new();
    let mut buf = [0u8; 512];
    let n = wechatpay::verify_notification(
        &headers,
        body,
        &keys,
        &mut guard,
        T(1_624_523_846),
        &mut buf,
    )
    .unwrap();
    assert_eq!(n.id(), Some("3119dfba-e649-5eec-ab1e-3412bc4d2e17"));
    assert_eq!(n.event_type(), "PAYSCORE.USER_OPEN_SERVICE");
    assert_eq!(
        n.plaintext(),
        include_bytes!("data/wechatpay_v3_notify/expected_plaintext.json")
    );
    assert_eq!(n.resource(), NotificationResource::Other);
    let p = payment();
    let err = n.to_input(&MERCHANT, &Facts::of(ORDER, &p)).unwrap_err();
    assert_eq!(err, MapError::UnknownStatus);
    assert_eq!(Reply::for_map_error(&err).status(), 500);

    // The same callback again: the replay guard refuses it.
    let mut buf = [0u8; 512];
    let again = wechatpay::verify_notification(
        &headers,
        body,
        &keys,
        &mut guard,
        T(1_624_523_846),
        &mut buf,
    );
    assert_eq!(again.unwrap_err().code(), "replayed");
}

#[test]
fn the_independently_signed_notification_pays_the_order() {
    let v: Value =
        serde_json::from_str(include_str!("data/wechatpay_fresh/notification.json")).unwrap();
    let h = &v["headers"];
    let s = |k: &str| h[k].as_str().unwrap();
    let headers = Headers::from_pairs([
        ("Wechatpay-Timestamp", s("Wechatpay-Timestamp")),
        ("wechatpay-nonce", s("Wechatpay-Nonce")),
        ("Wechatpay-Serial", s("Wechatpay-Serial")),
        ("Wechatpay-Signature", s("Wechatpay-Signature")),
    ])
    .unwrap();
    let body = v["body"].as_str().unwrap().as_bytes();
    let mut p = payment();
    let input = {
        let facts = Facts::of(ORDER, &p);
        let keys = platform();
        let api = api_key();
        let keys = Keys {
            platform: &keys,
            api_v3: &api,
        };
        let mut guard = ReplayGuard::<8>::new();
        let mut buf = [0u8; 1024];
        let n = wechatpay::verify_notification(&headers, body, &keys, &mut guard, T(NOW), &mut buf)
            .unwrap();
        let NotificationResource::Transaction(tx) = n.resource() else {
            panic!("a transaction")
        };
        assert_eq!(tx.out_trade_no(), Some(ORDER));
        assert_eq!(tx.transaction_id(), Some("4200000000201407033233368018"));
        assert_eq!((tx.trade_state(), tx.total()), (Some("SUCCESS"), Some(100)));
        n.to_input(&MERCHANT, &facts).unwrap()
    };
    assert_eq!(
        input,
        Input::succeed(ev("EV-2018022511223320873"), cny(100))
    );
    let out = p.apply(&input, T(NOW));
    assert!(matches!(out, Outcome::Applied(_)));
    assert_eq!(p.status(), Status::Succeeded);
    let reply = Reply::for_outcome(&out);
    assert_eq!(
        (reply.status(), reply.body().to_string()),
        (204, String::new())
    );
}

// ---------------------------------------------------------------------------------------------
// Mappings.

#[test]
fn every_trade_state_maps_alike_in_notifications_and_queries() {
    let p = payment();
    let facts = Facts::of(ORDER, &p);
    for state in STATES {
        let id = format!("EV-{state}");
        let n = signed_notification(&id, "TRANSACTION.SUCCESS", &tx(state));
        assert_eq!(
            notify(&n, &facts).unwrap(),
            state_input(state, ev(&id)),
            "{state}"
        );
        let q = answer(&tx(state));
        let qid = derived(&["wechatpay.query", ORDER, state]);
        assert_eq!(
            query(&q, 200, &facts).unwrap(),
            state_input(state, qid),
            "{state}"
        );
    }
    let unknown = answer(&tx("PAID"));
    assert_eq!(
        query(&unknown, 200, &facts).unwrap(),
        Err(MapError::UnknownStatus)
    );
}

#[test]
fn the_same_query_answer_is_the_same_event() {
    let mut p = payment();
    let paid = answer(&tx("SUCCESS"));
    let i = query(&paid, 200, &Facts::of(ORDER, &p)).unwrap().unwrap();
    assert!(matches!(p.apply(&i, T(NOW)), Outcome::Applied(_)));
    // Asked again: same event, a duplicate.
    let again = Signed::new(paid.body.clone(), NOW + 30, "another-nonce");
    let i2 = query(&again, 200, &Facts::of(ORDER, &p)).unwrap().unwrap();
    assert_eq!(i2, i);
    assert_eq!(p.apply(&i2, T(NOW + 30)), Outcome::Duplicate);
    // The notification of the same payment is another event: already true.
    let n = signed_notification("EV-1", "TRANSACTION.SUCCESS", &tx("SUCCESS"));
    let i3 = notify(&n, &Facts::of(ORDER, &p)).unwrap().unwrap();
    assert_ne!(i3.event_id(), i.event_id());
    assert_eq!(p.apply(&i3, T(NOW)), Outcome::Ignored);

    // An order WeChat Pay does not know: nothing to apply yet. Other errors: provider error.
    let missing = answer(&json!({"code": "ORDER_NOT_EXIST", "message": "订单不存在"}));
    assert_eq!(
        query(&missing, 404, &Facts::of(ORDER, &p)).unwrap(),
        Err(MapError::NothingToApply)
    );
    let other = answer(&json!({"code": "SYSTEM_ERROR", "message": "系统错误"}));
    assert_eq!(
        query(&other, 500, &Facts::of(ORDER, &p)).unwrap(),
        Err(MapError::ProviderError)
    );
    let a = QueryAnswer::parse(404, &missing.body).unwrap();
    let QueryAnswer::Failed(f) = a else {
        panic!("a failure")
    };
    assert_eq!(
        (f.status(), f.code(), f.message()),
        (404, Some("ORDER_NOT_EXIST"), Some("订单不存在"))
    );
}

#[test]
fn refunds_map_from_the_notification_and_the_answer_to_one_refund() {
    let mut p = payment();
    let paid = signed_notification("EV-pay", "TRANSACTION.SUCCESS", &tx("SUCCESS"));
    let _ = p.apply(
        &notify(&paid, &Facts::of(ORDER, &p)).unwrap().unwrap(),
        T(NOW),
    );

    let ans = answer(&refund_answer_body("SUCCESS", "R2024001", 30));
    let from_answer = refund(&ans, 200, &Facts::of(ORDER, &p)).unwrap().unwrap();
    assert_eq!(
        from_answer,
        Input::refund(
            derived(&["wechatpay.refund", "R2024001", "SUCCESS"]),
            rid("R2024001"),
            cny(30)
        )
    );
    assert!(matches!(p.apply(&from_answer, T(NOW)), Outcome::Applied(_)));
    let n = signed_notification(
        "EV-refund",
        "REFUND.SUCCESS",
        &refund_resource("SUCCESS", "R2024001", 30),
    );
    let from_notification = notify(&n, &Facts::of(ORDER, &p)).unwrap().unwrap();
    assert_eq!(
        from_notification,
        Input::refund(ev("EV-refund"), rid("R2024001"), cny(30))
    );
    // The same refund, already recorded: a duplicate, not a second refund.
    assert_eq!(p.apply(&from_notification, T(NOW)), Outcome::Duplicate);
    assert_eq!(p.refunded(), cny(30));

    // The rest of the statuses.
    for (status, want) in [
        ("PROCESSING", MapError::NothingToApply),
        ("CLOSED", MapError::RefundFailed),
        ("ABNORMAL", MapError::RefundFailed),
        ("WHATEVER", MapError::UnknownStatus),
    ] {
        let ans = answer(&refund_answer_body(status, "R2", 10));
        assert_eq!(
            refund(&ans, 200, &Facts::of(ORDER, &p)).unwrap(),
            Err(want),
            "{status}"
        );
        let event_type = if status == "PROCESSING" {
            "REFUND.SUCCESS"
        } else {
            "REFUND.ABNORMAL"
        };
        let n = signed_notification("EV-r2", event_type, &refund_resource(status, "R2", 10));
        assert_eq!(
            notify(&n, &Facts::of(ORDER, &p)).unwrap(),
            Err(want),
            "{status}"
        );
    }
    // A final refund failure is acknowledged; WeChat Pay retrying it would say the same.
    assert_eq!(
        Reply::for_map_error(&MapError::RefundFailed),
        Reply::Success
    );
    assert_eq!(
        Reply::for_map_error(&MapError::NothingToApply),
        Reply::Success
    );
    // An error answer to the request.
    let refused = answer(&json!({"code": "NOT_ENOUGH", "message": "余额不足"}));
    assert_eq!(
        refund(&refused, 403, &Facts::of(ORDER, &p)).unwrap(),
        Err(MapError::ProviderError)
    );
    let body = ans_body("SUCCESS");
    let a = RefundAnswer::parse(200, &body).unwrap();
    let RefundAnswer::Refund(r) = a else {
        panic!("a refund")
    };
    assert_eq!(
        (r.out_refund_no(), r.refund_id(), r.refund_amount()),
        (Some("R9"), Some("50000000382019052709732678859"), Some(7))
    );
}

fn ans_body(status: &str) -> Vec<u8> {
    serde_json::to_vec(&refund_answer_body(status, "R9", 7)).unwrap()
}

#[test]
fn a_close_answer_closes_and_discharges_whatever_it_names() {
    let mut p = payment().with_deadline(T(NOW - 10));
    // The deadline passed: cancelled, close the trade at WeChat Pay.
    assert!(matches!(p.tick(T(NOW)), Outcome::Applied(_)));
    let closed = Signed::new(Vec::new(), NOW, "close-nonce");
    let want = Input::close(derived(&["wechatpay.close", ORDER]));
    assert_eq!(
        close(&closed, 204, ORDER, &Facts::of(ORDER, &p)).unwrap(),
        Ok(want)
    );
    assert!(p.apply(&want, T(NOW)).should_acknowledge());
    // "Does not exist" and "closed already" count as closed: the same input.
    for code in ["ORDER_NOT_EXIST", "ORDERNOTEXIST", "ORDER_CLOSED"] {
        let a = answer(&json!({"code": code, "message": "..."}));
        assert_eq!(
            close(&a, 404, ORDER, &Facts::of(ORDER, &p)).unwrap(),
            Ok(want),
            "{code}"
        );
    }
    // Paid meanwhile: not closed; query it.
    let paid = answer(&json!({"code": "ORDERPAID", "message": "订单已支付"}));
    assert_eq!(
        close(&paid, 400, ORDER, &Facts::of(ORDER, &p)).unwrap(),
        Err(MapError::ProviderError)
    );
    // The answer to closing another order.
    assert_eq!(
        close(&closed, 204, "other-order", &Facts::of(ORDER, &p)).unwrap(),
        Err(MapError::WrongOrder)
    );
    // A close is answered 204, never 200, and with no body.
    assert_eq!(
        close(&closed, 200, ORDER, &Facts::of(ORDER, &p)).unwrap_err(),
        Error::Status(200)
    );
    let with_body = Signed::new(b"{}".to_vec(), NOW, "close-nonce-2");
    assert!(matches!(
        close(&with_body, 204, ORDER, &Facts::of(ORDER, &p)).unwrap_err(),
        Error::Json(_)
    ));
    let a = CloseAnswer::parse(204, b"", ORDER).unwrap();
    assert_eq!((a.out_trade_no(), a.failure()), (ORDER, None));
}

// ---------------------------------------------------------------------------------------------
// Business checks, currencies.

/// Every message kind that carries the field, built with one field changed.
fn kinds_with(
    total: u64,
    currency: &str,
    order: &str,
    mchid: &str,
    appid: &str,
) -> Vec<(&'static str, Mapped)> {
    let p = payment();
    let facts = Facts::of(ORDER, &p);
    let t = transaction("SUCCESS", total, currency, order, mchid, appid);
    let mut r = refund_resource("SUCCESS", "R1", 10);
    r["mchid"] = json!(mchid);
    r["out_trade_no"] = json!(order);
    r["amount"]["total"] = json!(total);
    let mut ra = refund_answer_body("SUCCESS", "R1", 10);
    ra["out_trade_no"] = json!(order);
    ra["amount"]["total"] = json!(total);
    ra["amount"]["currency"] = json!(currency);
    vec![
        (
            "payment notification",
            notify(
                &signed_notification("EV-c", "TRANSACTION.SUCCESS", &t),
                &facts,
            ),
        ),
        ("query answer", query(&answer(&t), 200, &facts)),
        (
            "refund notification",
            notify(&signed_notification("EV-r", "REFUND.SUCCESS", &r), &facts),
        ),
        ("refund answer", refund(&answer(&ra), 200, &facts)),
        (
            "close answer",
            close(&Signed::new(Vec::new(), NOW, "n-close"), 204, order, &facts),
        ),
    ]
}

#[test]
fn every_kind_passes_with_the_right_fields_and_fails_each_business_check() {
    for (kind, got) in kinds_with(PRICE, "CNY", ORDER, MCHID, APPID) {
        assert!(got.unwrap().is_ok(), "{kind}");
    }
    let expect = |changed: &str, want: MapError, applies_to: &[&str], rows: Vec<(&str, Mapped)>| {
        for (kind, got) in rows {
            if applies_to.contains(&kind) {
                assert_eq!(got.unwrap(), Err(want), "{kind} with {changed}");
            } else {
                // A field this kind does not carry (refunds name no appid, a 204 names nothing).
                assert!(got.unwrap().is_ok(), "{kind} ignores {changed}");
            }
        }
    };
    let all = [
        "payment notification",
        "query answer",
        "refund notification",
        "refund answer",
        "close answer",
    ];
    expect(
        "mchid",
        MapError::WrongMerchant("mchid"),
        &[
            "payment notification",
            "query answer",
            "refund notification",
        ],
        kinds_with(PRICE, "CNY", ORDER, "1900000100", APPID),
    );
    expect(
        "appid",
        MapError::WrongMerchant("appid"),
        &["payment notification", "query answer"],
        kinds_with(PRICE, "CNY", ORDER, MCHID, "wx0000000000000000"),
    );
    expect(
        "order",
        MapError::WrongOrder,
        &all,
        kinds_with(PRICE, "CNY", "1217752501201407033233368019", MCHID, APPID),
    );
    expect(
        "amount",
        MapError::AmountMismatch {
            expected: PRICE,
            got: PRICE + 1,
        },
        &[
            "payment notification",
            "query answer",
            "refund notification",
            "refund answer",
        ],
        kinds_with(PRICE + 1, "CNY", ORDER, MCHID, APPID),
    );
    expect(
        "currency",
        MapError::CurrencyMismatch {
            expected: Currency::CNY,
            got: Currency::USD,
        },
        &["payment notification", "query answer", "refund answer"],
        kinds_with(PRICE, "USD", ORDER, MCHID, APPID),
    );
    expect(
        "unknown currency",
        MapError::UnknownCurrency,
        &["payment notification", "query answer", "refund answer"],
        kinds_with(PRICE, "XYZ", ORDER, MCHID, APPID),
    );
    expect(
        "empty currency",
        MapError::UnknownCurrency,
        &["payment notification", "query answer", "refund answer"],
        kinds_with(PRICE, "", ORDER, MCHID, APPID),
    );
    // A lower-case code is the same currency.
    for (kind, got) in kinds_with(PRICE, "cny", ORDER, MCHID, APPID) {
        assert!(got.unwrap().is_ok(), "{kind} with cny");
    }
}

#[test]
fn missing_fields_are_named() {
    let p = payment();
    let facts = Facts::of(ORDER, &p);
    for field in ["mchid", "appid", "out_trade_no", "trade_state"] {
        let mut t = tx("SUCCESS");
        t.as_object_mut().unwrap().remove(field);
        assert_eq!(
            query(&answer(&t), 200, &facts).unwrap(),
            Err(MapError::MissingField(field))
        );
    }
    let mut t = tx("SUCCESS");
    t.as_object_mut().unwrap().remove("amount");
    assert_eq!(
        query(&answer(&t), 200, &facts).unwrap(),
        Err(MapError::MissingField("amount.total"))
    );
    // Unpaid states do not need the amount (it is checked when it is sent).
    let mut t = tx("NOTPAY");
    t.as_object_mut().unwrap().remove("amount");
    assert!(query(&answer(&t), 200, &facts).unwrap().is_ok());
    let mut n = refund_resource("SUCCESS", "R1", 10);
    n.as_object_mut().unwrap().remove("out_refund_no");
    let s = signed_notification("EV-m", "REFUND.SUCCESS", &n);
    assert_eq!(
        notify(&s, &facts).unwrap(),
        Err(MapError::MissingField("out_refund_no"))
    );
    // No notification id: no event id.
    let mut body: Value = serde_json::from_slice(&notification_body(
        "EV-x",
        "TRANSACTION.SUCCESS",
        &tx("SUCCESS"),
    ))
    .unwrap();
    body.as_object_mut().unwrap().remove("id");
    let s = Signed::new(serde_json::to_vec(&body).unwrap(), NOW, "n-noid");
    assert_eq!(
        notify(&s, &facts).unwrap(),
        Err(MapError::MissingField("id"))
    );
}

// ---------------------------------------------------------------------------------------------
// Forgeries and malformed bodies.

#[test]
fn a_forged_message_of_every_kind_is_refused_and_nothing_is_mapped() {
    let p = payment();
    let facts = Facts::of(ORDER, &p);
    let forge = |mut s: Signed, at: usize| {
        let i = at.min(s.body.len().saturating_sub(1));
        if s.body.is_empty() {
            s.nonce.push('x');
        } else {
            s.body[i] ^= 0x01;
        }
        s
    };
    let mismatch = Error::Signature(WechatError::Signature(SignatureError::Mismatch));
    for at in [0, 40, 10_000] {
        let n = forge(
            signed_notification("EV-f", "TRANSACTION.SUCCESS", &tx("SUCCESS")),
            at,
        );
        assert_eq!(notify(&n, &facts).unwrap_err(), mismatch);
        let q = forge(answer(&tx("SUCCESS")), at);
        assert_eq!(query(&q, 200, &facts).unwrap_err(), mismatch);
        let r = forge(answer(&refund_answer_body("SUCCESS", "R1", 10)), at);
        assert_eq!(refund(&r, 200, &facts).unwrap_err(), mismatch);
        let c = forge(Signed::new(Vec::new(), NOW, "n-c"), at);
        assert_eq!(close(&c, 204, ORDER, &facts).unwrap_err(), mismatch);
    }
    // One byte of the signature itself.
    let mut q = answer(&tx("SUCCESS"));
    let mut sig = Base64::decode_vec(&q.signature).unwrap();
    sig[7] ^= 0x80;
    q.signature = Base64::encode_string(&sig);
    assert_eq!(query(&q, 200, &facts).unwrap_err(), mismatch);
    assert_eq!(
        Reply::for_error(&mismatch),
        Reply::Fail {
            status: 401,
            message: "signature_mismatch"
        }
    );
    assert_eq!(
        Reply::for_error(&mismatch).body().to_string(),
        r#"{"code":"FAIL","message":"signature_mismatch"}"#
    );
}

#[test]
fn a_forged_notification_leaves_the_guard_ready_for_the_genuine_one() {
    let genuine = signed_notification("EV-g", "TRANSACTION.SUCCESS", &tx("SUCCESS"));
    let mut forged = Signed::new(genuine.body.clone(), NOW, &genuine.nonce);
    forged.signature = genuine.signature.clone();
    forged.body[5] ^= 1;
    let keys = platform();
    let api = api_key();
    let keys = Keys {
        platform: &keys,
        api_v3: &api,
    };
    let mut guard = ReplayGuard::<8>::new();
    let mut buf = [0u8; 1024];
    assert!(
        wechatpay::verify_notification(
            &forged.headers(),
            &forged.body,
            &keys,
            &mut guard,
            T(NOW),
            &mut buf
        )
        .is_err()
    );
    let mut buf = [0u8; 1024];
    assert!(
        wechatpay::verify_notification(
            &genuine.headers(),
            &genuine.body,
            &keys,
            &mut guard,
            T(NOW),
            &mut buf
        )
        .is_ok()
    );
}

#[test]
fn answers_outside_the_window_and_unknown_keys_are_refused() {
    let p = payment();
    let facts = Facts::of(ORDER, &p);
    let old = Signed::new(
        serde_json::to_vec(&tx("SUCCESS")).unwrap(),
        NOW - 301,
        "n-old",
    );
    assert_eq!(
        query(&old, 200, &facts).unwrap_err(),
        Error::Window(WindowError::Stale {
            age: 301,
            tolerance: 300
        })
    );
    let ahead = Signed::new(Vec::new(), NOW + 301, "n-new");
    assert_eq!(
        close(&ahead, 204, ORDER, &facts).unwrap_err().code(),
        "from_future"
    );
    let mut other = answer(&tx("SUCCESS"));
    other.serial = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1".into();
    assert_eq!(
        query(&other, 200, &facts).unwrap_err(),
        Error::Signature(WechatError::UnknownSerial)
    );
    let mut probe = answer(&tx("SUCCESS"));
    probe.signature = format!("WECHATPAY/SIGNTEST/{}", probe.signature);
    assert_eq!(
        query(&probe, 200, &facts).unwrap_err(),
        Error::Signature(WechatError::SignTest)
    );
}

#[test]
fn bad_json_is_an_error_and_nothing_is_mapped() {
    let p = payment();
    let facts = Facts::of(ORDER, &p);
    let good = String::from_utf8(serde_json::to_vec(&tx("SUCCESS")).unwrap()).unwrap();
    let bad_bodies = [
        "not json".to_owned(),
        String::new(),
        format!("{good}x"),
        good[..good.len() - 2].to_owned(),
        good.replace(r#""total":100"#, r#""total":"100""#),
        good.replace(r#""total":100"#, r#""total":-100"#),
        good.replace(r#""total":100"#, r#""total":1e2"#),
        good.replace(
            r#""mchid":"1230000109""#,
            r#""mchid":"1230000109","mchid":"1230000109""#,
        ),
        good.replace(r#""trade_state":"SUCCESS""#, r#""trade_state":7"#),
    ];
    for body in &bad_bodies {
        let s = Signed::new(body.as_bytes().to_vec(), NOW, "n-bad");
        let err = query(&s, 200, &facts).unwrap_err();
        assert_eq!(
            err,
            Error::Json(paystate::provider::JsonError { part: "answer" }),
            "{body}"
        );
        // A refund has no `trade_state`: that field is skipped there.
        if !body.contains(r#""trade_state":7"#) {
            let err = refund(&s, 200, &facts).unwrap_err();
            assert!(matches!(err, Error::Json(_)), "{body}");
        }
        // As a notification's body.
        let err = notify(&s, &facts).unwrap_err();
        assert!(matches!(err, Error::Json(_)), "{body}");
        assert_eq!(
            Reply::for_error(&err),
            Reply::Fail {
                status: 400,
                message: "bad_json"
            }
        );
    }
    // A notification whose decrypted resource is not a transaction's JSON.
    let mut body: Value = serde_json::from_slice(&notification_body(
        "EV-j",
        "TRANSACTION.SUCCESS",
        &tx("SUCCESS"),
    ))
    .unwrap();
    body["resource"]["ciphertext"] = json!(seal(
        b"{\"amount\":{\"total\":\"x\"}}",
        b"rFsc3XqHl7Fp",
        b"transaction"
    ));
    let s = Signed::new(serde_json::to_vec(&body).unwrap(), NOW, "n-res");
    assert_eq!(
        notify(&s, &facts).unwrap_err(),
        Error::Json(paystate::provider::JsonError { part: "resource" })
    );
    // A notification without a resource.
    body.as_object_mut().unwrap().remove("resource");
    let s = Signed::new(serde_json::to_vec(&body).unwrap(), NOW, "n-nores");
    assert!(matches!(notify(&s, &facts).unwrap_err(), Error::Json(_)));
    // An unexpected HTTP status for an answer.
    let s = answer(&tx("SUCCESS"));
    assert_eq!(query(&s, 302, &facts).unwrap_err(), Error::Status(302));
    assert_eq!(refund(&s, 201, &facts).unwrap_err(), Error::Status(201));
}

#[test]
fn a_wrong_api_v3_key_or_a_small_buffer_is_a_decryption_error() {
    let n = signed_notification("EV-k", "TRANSACTION.SUCCESS", &tx("SUCCESS"));
    let keys = platform();
    let wrong = ApiV3Key::new([7u8; 32]);
    let keys_wrong = Keys {
        platform: &keys,
        api_v3: &wrong,
    };
    let mut guard = ReplayGuard::<8>::new();
    let mut buf = [0xAAu8; 1024];
    let err = wechatpay::verify_notification(
        &n.headers(),
        &n.body,
        &keys_wrong,
        &mut guard,
        T(NOW),
        &mut buf,
    )
    .unwrap_err();
    assert_eq!(err, Error::Decrypt(DecryptError::Authentication));
    assert!(
        buf.iter().all(|b| *b == 0),
        "no unauthenticated plaintext is left"
    );
    let api = api_key();
    let mut small = [0u8; 16];
    let err = Notification::open(&n.body, &api, &mut small).unwrap_err();
    assert!(matches!(
        err,
        Error::Decrypt(DecryptError::BufferTooSmall { .. })
    ));
}

#[test]
fn trusted_messages_map_like_verified_ones() {
    let p = payment();
    let facts = Facts::of(ORDER, &p);
    let n = signed_notification("EV-t", "TRANSACTION.SUCCESS", &tx("SUCCESS"));
    let mut buf = [0u8; 1024];
    let trusted =
        Verified::trust_unverified(Notification::open(&n.body, &api_key(), &mut buf).unwrap());
    assert_eq!(Ok(trusted.to_input(&MERCHANT, &facts)), notify(&n, &facts));
    let q = answer(&tx("CLOSED"));
    let trusted = Verified::trust_unverified(QueryAnswer::parse(200, &q.body).unwrap());
    assert_eq!(
        Ok(trusted.to_input(&MERCHANT, &facts)),
        query(&q, 200, &facts)
    );
}

#[test]
fn replies_follow_the_outcome() {
    let mut p = payment();
    let n = signed_notification("EV-o", "TRANSACTION.SUCCESS", &tx("PAYERROR"));
    let i = notify(&n, &Facts::of(ORDER, &p)).unwrap().unwrap();
    assert_eq!(Reply::for_outcome(&p.apply(&i, T(NOW))), Reply::Success);
    let conflict = p.apply(&Input::initiate(ev("EV-o")), T(NOW));
    let reply = Reply::for_outcome(&conflict);
    assert_eq!(reply.status(), 500);
    assert_eq!(
        reply.body().to_string(),
        r#"{"code":"FAIL","message":"idempotency_conflict"}"#
    );
    let wrong = Reply::for_map_error(&MapError::WrongOrder);
    assert_eq!(
        (wrong.status(), wrong.body().to_string()),
        (500, r#"{"code":"FAIL","message":"wrong_order"}"#.to_owned())
    );
}

// ---------------------------------------------------------------------------------------------
// Redelivery: applying a message, anything, and the message again.

#[derive(Debug, Clone)]
enum Msg {
    /// A `TRANSACTION.SUCCESS` notification with one of `STATES`.
    Notify(usize),
    /// A query answer with one of `STATES`.
    Query(usize),
    /// A close answer: 204, or one of the error codes.
    Close(Option<&'static str>),
    /// A refund notification or answer (`true` = notification) with a refund status.
    Refund(bool, &'static str, u64),
}

#[derive(Debug, Clone)]
enum Other {
    Message(Msg),
    Cancel,
    Tick,
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        2 => (0..STATES.len()).prop_map(Msg::Notify),
        2 => (0..STATES.len()).prop_map(Msg::Query),
        1 => prop::sample::select(vec![None, Some("ORDER_NOT_EXIST"), Some("ORDERPAID")]).prop_map(Msg::Close),
        3 => (any::<bool>(), prop::sample::select(vec!["SUCCESS", "SUCCESS", "PROCESSING", "CLOSED"]), 1..=PRICE)
            .prop_map(|(n, s, a)| Msg::Refund(n, s, a)),
    ]
}

fn other() -> impl Strategy<Value = Other> {
    prop_oneof![
        6 => msg().prop_map(Other::Message),
        1 => Just(Other::Cancel),
        1 => Just(Other::Tick),
    ]
}

/// Signs (and for notifications encrypts) `m`; `tag` makes its ids its own.
fn signed(m: &Msg, tag: &str) -> (Signed, u16) {
    match m {
        Msg::Notify(k) => (
            signed_notification(&format!("EV-{tag}"), "TRANSACTION.SUCCESS", &tx(STATES[*k])),
            0,
        ),
        Msg::Query(k) => (answer(&tx(STATES[*k])), 200),
        Msg::Close(None) => (Signed::new(Vec::new(), NOW, &format!("n-{tag}")), 204),
        Msg::Close(Some(code)) => (answer(&json!({"code": code, "message": "..."})), 404),
        // One refund number, one amount: the number is the message's own.
        Msg::Refund(true, status, a) => (
            signed_notification(
                &format!("EV-{tag}"),
                "REFUND.SUCCESS",
                &refund_resource(status, &format!("R-{tag}"), *a),
            ),
            0,
        ),
        Msg::Refund(false, status, a) => (
            answer(&refund_answer_body(status, &format!("R-{tag}"), *a)),
            200,
        ),
    }
}

fn map_msg(m: &Msg, s: &Signed, status: u16, p: &Payment) -> Result<Input, MapError> {
    let facts = Facts::of(ORDER, p);
    let r = match m {
        Msg::Notify(_) | Msg::Refund(true, ..) => notify(s, &facts),
        Msg::Query(_) => query(s, status, &facts),
        Msg::Close(_) => close(s, status, ORDER, &facts),
        Msg::Refund(false, ..) => refund(s, status, &facts),
    };
    r.expect("signed here, so it verifies")
}

proptest! {
    // RSA signing dominates; 96 cases of up to 19 signed messages each.
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn a_redelivered_message_is_a_duplicate_or_ignored(
        accept in any::<bool>(),
        start_paid in any::<bool>(),
        before in proptest::collection::vec(other(), 0..6),
        m in msg(),
        between in proptest::collection::vec(other(), 0..12),
    ) {
        let policy = if accept { LateSuccess::Accept } else { LateSuccess::Refund };
        let mut p = payment().with_deadline(T(NOW + 1_000)).with_late_success(policy);
        let mut n = 0u32;
        let run = |p: &mut Payment, o: &Other, n: &mut u32| {
            *n += 1;
            match o {
                Other::Message(m) => {
                    let (s, status) = signed(m, &format!("other-{n}"));
                    if let Ok(i) = map_msg(m, &s, status, p) {
                        let _ = p.apply(&i, T(NOW));
                    }
                }
                Other::Cancel => {
                    let _ = p.apply(&Input::cancel(ev(&format!("cmd-{n}"))), T(NOW));
                }
                Other::Tick => {
                    let _ = p.tick(T(NOW + 2_000));
                }
            }
        };
        // Half the runs start from a paid payment, so refunds apply as often as payments.
        let start = if start_paid { vec![Other::Message(Msg::Notify(0))] } else { Vec::new() };
        for o in start.iter().chain(&before) {
            run(&mut p, o, &mut n);
        }
        let (s, status) = signed(&m, "under-test");
        let Ok(first) = map_msg(&m, &s, status, &p) else { return Ok(()) };
        if !matches!(p.apply(&first, T(NOW)), Outcome::Applied(_)) {
            return Ok(());
        }
        for o in &between {
            run(&mut p, o, &mut n);
        }
        let version = p.version();
        // Redelivered: the same bytes, signed again with a new nonce.
        let again = Signed::new(s.body.clone(), NOW, &format!("{}-again", s.nonce));
        let second = map_msg(&m, &again, status, &p);
        prop_assert_eq!(second, Ok(first), "a redelivery maps to the same input");
        let outcome = p.apply(&first, T(NOW + 5));
        prop_assert!(
            matches!(outcome, Outcome::Duplicate | Outcome::Ignored),
            "second outcome {:?}", outcome
        );
        prop_assert!(outcome.effects().is_empty());
        prop_assert_eq!(p.version(), version);
    }
}

#[test]
fn the_redelivery_property_reaches_applied_first_deliveries() {
    // The property above skips messages that do not apply the first time; check that each
    // kind does apply on a fitting payment, so it cannot pass by skipping everything.
    let unpaid = [
        Msg::Notify(0),
        Msg::Notify(1),
        Msg::Query(0),
        Msg::Query(4),
        Msg::Query(6),
        Msg::Close(None),
    ];
    for m in unpaid {
        let mut p = payment();
        let (s, status) = signed(&m, "m");
        let i = map_msg(&m, &s, status, &p).unwrap();
        assert!(matches!(p.apply(&i, T(NOW)), Outcome::Applied(_)), "{m:?}");
    }
    let mut paid = payment();
    let (s, status) = signed(&Msg::Query(0), "pay");
    let _ = paid.apply(&map_msg(&Msg::Query(0), &s, status, &paid).unwrap(), T(NOW));
    for m in [
        Msg::Refund(true, "SUCCESS", 10),
        Msg::Refund(false, "SUCCESS", PRICE),
    ] {
        let mut p = paid.clone();
        let (s, status) = signed(&m, "r");
        let i = map_msg(&m, &s, status, &p).unwrap();
        assert!(matches!(p.apply(&i, T(NOW)), Outcome::Applied(_)), "{m:?}");
    }
}

proptest! {
    #[test]
    fn any_bytes_parse_or_fail_without_panicking(
        body in proptest::collection::vec(any::<u8>(), 0..400),
        status in prop::sample::select(vec![200u16, 204, 404, 500]),
    ) {
        let p = payment();
        let facts = Facts::of(ORDER, &p);
        if let Ok(a) = QueryAnswer::parse(status, &body) {
            let _ = Verified::trust_unverified(a).to_input(&MERCHANT, &facts);
        }
        if let Ok(a) = RefundAnswer::parse(status, &body) {
            let _ = Verified::trust_unverified(a).to_input(&MERCHANT, &facts);
        }
        if let Ok(a) = CloseAnswer::parse(status, &body, ORDER) {
            let _ = Verified::trust_unverified(a).to_input(&MERCHANT, &facts);
        }
        let mut buf = [0u8; 512];
        let _ = Notification::open(&body, &api_key(), &mut buf);
    }

    #[test]
    fn damaged_answers_parse_or_fail_without_panicking(
        refund_kind in any::<bool>(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let p = payment();
        let facts = Facts::of(ORDER, &p);
        let mut body = if refund_kind {
            serde_json::to_vec(&refund_answer_body("SUCCESS", "R1", 10)).unwrap()
        } else {
            serde_json::to_vec(&tx("SUCCESS")).unwrap()
        };
        let i = flip.index(body.len());
        body[i] = byte;
        body.truncate(cut.index(body.len() + 1));
        if let Ok(a) = QueryAnswer::parse(200, &body) {
            let _ = Verified::trust_unverified(a).to_input(&MERCHANT, &facts);
        }
        if let Ok(a) = RefundAnswer::parse(200, &body) {
            let _ = Verified::trust_unverified(a).to_input(&MERCHANT, &facts);
        }
    }
}

#[test]
fn a_refund_notification_names_the_order_the_host_looks_up() {
    let s = signed_notification(
        "EV-order",
        "REFUND.SUCCESS",
        &refund_resource("SUCCESS", "R9", 10),
    );
    let mut guard = ReplayGuard::<8>::new();
    let mut buf = [0u8; 2048];
    let keys = platform();
    let api = api_key();
    let keys = Keys {
        platform: &keys,
        api_v3: &api,
    };
    let n =
        wechatpay::verify_notification(&s.headers(), &s.body, &keys, &mut guard, T(NOW), &mut buf)
            .unwrap();
    match n.message().resource() {
        wechatpay::NotificationResource::Refund(r) => {
            assert_eq!(r.out_trade_no(), Some(ORDER));
            assert_eq!(r.out_refund_no(), Some("R9"));
        }
        other => panic!("not a refund: {other:?}"),
    }
}
