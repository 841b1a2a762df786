//! Alipay in the provider shape (docs/spec.md §4.1, §4.2): refund notifications map to the refund
//! they report, the synchronous answers to the host's requests map to inputs, and every
//! message redelivered after anything else is a `duplicate` or `ignored`.
#![cfg(feature = "rsa")]

use std::sync::OnceLock;

use paystate::alipay::content::SignRule;
use paystate::alipay::form::{Form, encode_pairs};
use paystate::alipay::response::ResponseKind;
use paystate::provider::alipay::{
    Answer, AnswerError, MerchantConfig, Notification, NotifyError, Request, return_to_input,
    verify_answer,
};
use paystate::provider::{Facts, MapError, Verified};
use paystate::signature::{Rsa2PrivateKey, SignatureError};
use paystate::{
    Currency, Effect, EventId, Input, Money, Outcome, Payment, RefundId, Status, Timestamp,
};
use proptest::prelude::*;

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

fn cny(text: &str) -> Money {
    Money::parse(text, Currency::CNY).unwrap()
}

fn t(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn payment() -> Payment {
    Payment::new(cny("99.90"), t(1_000)).unwrap()
}

fn paid() -> Payment {
    let mut p = payment();
    let _ = p.apply(
        &Input::succeed(EventId::new(b"n-paid").unwrap(), cny("99.90")),
        t(1_001),
    );
    assert_eq!(p.status(), Status::Succeeded);
    p
}

/// A raw gateway response to `method`, signed over the exact content text like Alipay signs.
fn signed_answer(method: &str, content: &str) -> String {
    let sign = key().sign_base64(content.as_bytes()).unwrap();
    let field = method.replace('.', "_") + "_response";
    format!(r#"{{"{field}":{content},"sign":"{sign}"}}"#)
}

fn verified<'a>(
    raw: &'a str,
    request: Request<'a>,
) -> Result<Verified<Answer<'a, 'a>>, AnswerError> {
    verify_answer(raw, request, &key().public_key())
}

/// Signs, verifies and maps one answer against the payment's facts.
fn map_answer(request: Request<'_>, content: &str, p: &Payment) -> Result<Input, MapError> {
    let raw = signed_answer(request.method(), content);
    verified(&raw, request)
        .unwrap()
        .to_input(&Facts::of(ORDER, p))
}

fn derived(parts: &[&str]) -> EventId {
    let parts: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
    EventId::derived(&parts).unwrap()
}

#[test]
fn a_query_answer_maps_its_trade_status() {
    let p = payment();
    let q = |status: &str, amount: &str| {
        map_answer(
            Request::Query,
            &format!(
                r#"{{"code":"10000","msg":"Success","out_trade_no":"{ORDER}","trade_no":"2026","trade_status":"{status}","total_amount":"{amount}","buyer_logon_id":"a**@b.com"}}"#
            ),
            &p,
        )
    };
    let ev = |status| derived(&["alipay.trade.query", ORDER, status]);
    assert_eq!(
        q("WAIT_BUYER_PAY", "99.90"),
        Ok(Input::initiate(ev("WAIT_BUYER_PAY")))
    );
    assert_eq!(
        q("TRADE_SUCCESS", "99.90"),
        Ok(Input::succeed(ev("TRADE_SUCCESS"), cny("99.90")))
    );
    assert_eq!(
        q("TRADE_FINISHED", "99.90"),
        Ok(Input::succeed(ev("TRADE_FINISHED"), cny("99.90")))
    );
    assert_eq!(
        q("TRADE_CLOSED", "99.90"),
        Ok(Input::close(ev("TRADE_CLOSED")))
    );
    assert_eq!(
        q("TRADE_SUCCESS", "9.99"),
        Err(MapError::AmountMismatch {
            expected: 9990,
            got: 999
        })
    );
    assert_eq!(q("TRADE_PAID_MAYBE", "99.90"), Err(MapError::UnknownStatus));
    // Another order's answer.
    assert_eq!(
        map_answer(
            Request::Query,
            r#"{"code":"10000","out_trade_no":"order-43","trade_status":"TRADE_SUCCESS","total_amount":"99.90"}"#,
            &p
        ),
        Err(MapError::WrongOrder)
    );
    // Before the customer scans the code, Alipay does not know the trade: nothing to apply.
    assert_eq!(
        map_answer(
            Request::Query,
            r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}"#,
            &p
        ),
        Err(MapError::NothingToApply)
    );
    assert_eq!(
        map_answer(
            Request::Query,
            r#"{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error"}"#,
            &p
        ),
        Err(MapError::ProviderError)
    );
}

#[test]
fn a_pay_answer_maps_its_code() {
    let mut p = payment();
    let pay = |code: &str, amount: &str, p: &Payment| {
        map_answer(
            Request::Pay,
            &format!(
                r#"{{"code":"{code}","msg":"Success","buyer_logon_id":"159****5620","fund_bill_list":[{{"amount":"{amount}","fund_channel":"ALIPAYACCOUNT"}}],"out_trade_no":"{ORDER}","total_amount":"{amount}","trade_no":"2026"}}"#
            ),
            p,
        )
    };
    let ev = |status| derived(&["alipay.trade.pay", ORDER, status]);
    // 10003: the customer confirms on the phone.
    let waiting = pay("10003", "99.90", &p);
    assert_eq!(waiting, Ok(Input::initiate(ev("WAIT_BUYER_PAY"))));
    assert!(matches!(
        p.apply(&waiting.unwrap(), t(1_010)),
        Outcome::Applied(_)
    ));
    // 10000: paid; the same answer again is the same event.
    let paid = pay("10000", "99.90", &p);
    assert_eq!(paid, Ok(Input::succeed(ev("TRADE_SUCCESS"), cny("99.90"))));
    assert!(matches!(
        p.apply(&paid.unwrap(), t(1_020)),
        Outcome::Applied(_)
    ));
    assert_eq!(
        p.apply(&pay("10000", "99.90", &p).unwrap(), t(1_030)),
        Outcome::Duplicate
    );
    // The query that confirms the same capture changes nothing.
    let query = map_answer(
        Request::Query,
        &format!(
            r#"{{"code":"10000","out_trade_no":"{ORDER}","trade_status":"TRADE_SUCCESS","total_amount":"99.90"}}"#
        ),
        &p,
    );
    assert_eq!(p.apply(&query.unwrap(), t(1_040)), Outcome::Ignored);
    assert_eq!(
        pay("10000", "9.99", &p),
        Err(MapError::AmountMismatch {
            expected: 9990,
            got: 999
        })
    );
    // Unknown (20000) or failed (40004): nothing to apply; the host queries or cancels.
    for answer in [
        r#"{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error"}"#,
        r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.PAYMENT_AUTH_CODE_INVALID"}"#,
        r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST"}"#,
    ] {
        assert_eq!(
            map_answer(Request::Pay, answer, &p),
            Err(MapError::ProviderError)
        );
    }
    assert_eq!(
        map_answer(
            Request::Pay,
            r#"{"code":"10000","out_trade_no":"order-43","total_amount":"99.90"}"#,
            &p
        ),
        Err(MapError::WrongOrder)
    );
}

#[test]
fn the_same_query_answer_twice_is_one_event() {
    let mut p = payment();
    let content = format!(
        r#"{{"code":"10000","out_trade_no":"{ORDER}","trade_status":"TRADE_SUCCESS","total_amount":"99.90"}}"#
    );
    let input = map_answer(Request::Query, &content, &p).unwrap();
    assert!(matches!(p.apply(&input, t(2_000)), Outcome::Applied(_)));
    let again = map_answer(Request::Query, &content, &p).unwrap();
    assert_eq!(p.apply(&again, t(2_060)), Outcome::Duplicate);
    // The notification of the same capture is another event, and changes nothing.
    let finished = content.replace("TRADE_SUCCESS", "TRADE_FINISHED");
    let later = map_answer(Request::Query, &finished, &p).unwrap();
    assert_eq!(p.apply(&later, t(2_100)), Outcome::Ignored);
}

#[test]
fn close_and_cancel_answers_discharge_close_trade() {
    let mut p = payment();
    let _ = p.apply(&Input::cancel(EventId::new(b"cancel-1").unwrap()), t(1_100));
    assert_eq!(p.pending_effects().as_slice(), &[Effect::CloseTrade]);
    let close_ev = derived(&["alipay.trade.close", ORDER]);
    let closed = map_answer(
        Request::Close,
        &format!(
            r#"{{"code":"10000","msg":"Success","trade_no":"2026","out_trade_no":"{ORDER}"}}"#
        ),
        &p,
    );
    assert_eq!(closed, Ok(Input::close(close_ev)));
    // "Trade does not exist" counts as closed, and is the same event as a success.
    let not_exist = map_answer(
        Request::Close,
        r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_NOT_EXIST","sub_msg":"交易不存在"}"#,
        &p,
    );
    assert_eq!(not_exist, Ok(Input::close(close_ev)));
    assert!(matches!(p.apply(&not_exist.unwrap(), t(1_200)), Outcome::Applied(e) if e.is_empty()));
    assert!(p.pending_effects().is_empty());
    assert_eq!(p.apply(&closed.unwrap(), t(1_300)), Outcome::Duplicate);
    // A trade that was paid cannot be closed: not a confirmation.
    assert_eq!(
        map_answer(
            Request::Close,
            r#"{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_STATUS_ERROR"}"#,
            &p
        ),
        Err(MapError::ProviderError)
    );
    // trade.cancel: `action` says what Alipay did.
    let cancel = |action: &str| {
        map_answer(
            Request::Cancel,
            &format!(
                r#"{{"code":"10000","out_trade_no":"{ORDER}","retry_flag":"N","action":"{action}"}}"#
            ),
            &p,
        )
    };
    let cancel_ev = derived(&["alipay.trade.cancel", ORDER]);
    assert_eq!(cancel("close"), Ok(Input::close(cancel_ev)));
    assert_eq!(cancel("refund"), Err(MapError::NothingToApply));
    assert_eq!(cancel("explode"), Err(MapError::UnknownStatus));
}

#[test]
fn a_precreate_answer_is_initiate_and_an_error_response_is_nothing() {
    let p = payment();
    assert_eq!(
        map_answer(
            Request::Precreate,
            &format!(
                r#"{{"code":"10000","msg":"Success","out_trade_no":"{ORDER}","qr_code":"https:\/\/qr.alipay.com\/bax0"}}"#
            ),
            &p
        ),
        Ok(Input::initiate(derived(&["alipay.trade.precreate", ORDER])))
    );
    // A signed error_response is a failure, never a result.
    let content = r#"{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id"}"#;
    let sign = key().sign_base64(content.as_bytes()).unwrap();
    let raw = format!(r#"{{"error_response":{content},"sign":"{sign}"}}"#);
    let answer = verified(&raw, Request::Precreate).unwrap();
    assert_eq!(
        answer.to_input(&Facts::of(ORDER, &p)),
        Err(MapError::ProviderError)
    );
}

#[test]
fn a_refund_answer_confirms_the_requested_refund_once() {
    // A late capture owes a refund under the payment's own request number.
    let mut p = payment();
    let _ = p.tick(t(1_000));
    let _ = p.apply(&Input::cancel(EventId::new(b"c").unwrap()), t(1_001));
    let mut p = {
        let mut q = payment().with_deadline(t(1_500));
        let _ = q.tick(t(1_500));
        let _ = q.apply(
            &Input::succeed(EventId::new(b"late").unwrap(), cny("99.90")),
            t(1_600),
        );
        q
    };
    let [Effect::RefundRequired { amount, refund_id }] = p.pending_effects().as_slice()[..] else {
        panic!("a refund is owed: {:?}", p.pending_effects());
    };
    let request = Request::Refund {
        out_request_no: refund_id.as_str(),
    };
    let content = format!(
        r#"{{"code":"10000","msg":"Success","trade_no":"2026","out_trade_no":"{ORDER}","buyer_logon_id":"a**@b.com","fund_change":"Y","refund_fee":"99.90"}}"#
    );
    let requested = [(refund_id.refund_id(), amount)];
    let map = |p: &Payment, content: &str| {
        let raw = signed_answer(request.method(), content);
        verified(&raw, request)
            .unwrap()
            .to_input(&Facts::of(ORDER, p).with_requested_refunds(&requested))
    };
    let input = map(&p, &content).unwrap();
    assert_eq!(
        input,
        Input::refund(
            derived(&["alipay.trade.refund", ORDER, refund_id.as_str()]),
            refund_id.refund_id(),
            amount
        )
    );
    assert!(matches!(p.apply(&input, t(1_700)), Outcome::Applied(_)));
    assert!(p.pending_effects().is_empty());
    assert_eq!(p.status(), Status::Refunded);
    // The outbox retried after a crash: Alipay answers the same refund (fund_change N).
    let retried = content.replace(r#""fund_change":"Y""#, r#""fund_change":"N""#);
    assert_eq!(
        p.apply(&map(&p, &retried).unwrap(), t(1_800)),
        Outcome::Duplicate
    );
    // fastpay.refund.query for the same request number: the same refund, a duplicate.
    let query = Request::RefundQuery {
        out_request_no: refund_id.as_str(),
    };
    let found = format!(
        r#"{{"code":"10000","msg":"Success","out_request_no":"{}","out_trade_no":"{ORDER}","refund_amount":"99.90","total_amount":"99.90","refund_status":"REFUND_SUCCESS"}}"#,
        refund_id.as_str()
    );
    let raw = signed_answer(query.method(), &found);
    let by_query = verified(&raw, query)
        .unwrap()
        .to_input(&Facts::of(ORDER, &p))
        .unwrap();
    assert_eq!(p.apply(&by_query, t(1_900)), Outcome::Duplicate);
    // A query that finds nothing (yet) has nothing to apply.
    let raw = signed_answer(query.method(), r#"{"code":"10000","msg":"Success"}"#);
    assert_eq!(
        verified(&raw, query)
            .unwrap()
            .to_input(&Facts::of(ORDER, &p)),
        Err(MapError::NothingToApply)
    );
}

#[test]
fn a_forged_or_encrypted_answer_is_not_mapped() {
    let content = format!(
        r#"{{"code":"10000","out_trade_no":"{ORDER}","trade_status":"TRADE_SUCCESS","total_amount":"99.90"}}"#
    );
    let raw = signed_answer("alipay.trade.query", &content);
    let forged = raw.replace("99.90", "99.91");
    assert_eq!(
        verified(&forged, Request::Query).unwrap_err(),
        AnswerError::Response(paystate::alipay::response::ResponseError::Signature(
            SignatureError::Mismatch
        ))
    );
    // Signed for another method: not the answer to this question.
    assert!(verified(&raw, Request::Close).is_err());
    // Content encryption on: the signed content is a string token; decrypt it first.
    let token = r#""QUJDREVGR0hJSktMTU5PUA==""#;
    let raw = signed_answer("alipay.trade.query", token);
    assert_eq!(
        verified(&raw, Request::Query).unwrap_err(),
        AnswerError::Encrypted
    );
    // A verified content that is not an answer's JSON.
    assert!(Answer::parse("[1,2]", ResponseKind::Method, Request::Query).is_err());
}

// ---- Refund notifications (§4.2) ------------------------------------------------------------

fn notification_params(
    status: &str,
    notify_id: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = [
        ("app_id", APP_ID),
        ("seller_id", SELLER_ID),
        ("out_trade_no", ORDER),
        ("total_amount", "99.90"),
        ("notify_id", notify_id),
        ("notify_type", "trade_status_sync"),
        ("trade_no", "2026112722001400000000000001"),
        ("trade_status", status),
        ("charset", "utf-8"),
        ("sign_type", "RSA2"),
        ("version", "1.0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in extra {
        p.push((k.to_string(), v.to_string()));
    }
    p
}

/// Maps a notification with these parameters, trusting its signature (the mapping is under
/// test here; signatures are covered by tests/alipay_notify.rs).
fn map_note(params: &[(String, String)], p: &Payment) -> Result<Input, NotifyError> {
    let mut body = String::new();
    encode_pairs(
        params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain([("sign", "c2ln")]),
        &mut body,
    )
    .unwrap();
    let mut buf = vec![0u8; body.len()];
    let form = Form::decode(body.as_bytes(), &mut buf).unwrap();
    let note = Notification::verify_with(&form, SignRule::V1, |_, _| Ok(())).unwrap();
    note.to_input(&MERCHANT, &Facts::of(ORDER, p))
}

#[test]
fn refund_notifications_map_to_the_refund_they_report() {
    let mut p = paid();
    // Partial refund: TRADE_SUCCESS with out_biz_no and the cumulative refund_fee.
    let first = notification_params(
        "TRADE_SUCCESS",
        "nr-1",
        &[
            ("out_biz_no", "rf-1"),
            ("refund_fee", "30.00"),
            ("gmt_refund", "2026-11-27 11:00:00.000"),
        ],
    );
    let input = map_note(&first, &p).unwrap();
    assert_eq!(
        input,
        Input::refund(
            EventId::new(b"nr-1").unwrap(),
            RefundId::new(b"rf-1").unwrap(),
            cny("30.00")
        )
    );
    assert!(matches!(p.apply(&input, t(2_000)), Outcome::Applied(_)));
    // Full refund of the rest: TRADE_CLOSED, refund_fee now the whole amount.
    let full = notification_params(
        "TRADE_CLOSED",
        "nr-2",
        &[
            ("out_biz_no", "rf-2"),
            ("refund_fee", "99.90"),
            ("gmt_refund", "2026-11-27 12:00:00.000"),
        ],
    );
    let input = map_note(&full, &p).unwrap();
    assert_eq!(
        input,
        Input::refund(
            EventId::new(b"nr-2").unwrap(),
            RefundId::new(b"rf-2").unwrap(),
            cny("69.90")
        )
    );
    assert!(matches!(p.apply(&input, t(2_100)), Outcome::Applied(_)));
    assert_eq!(p.status(), Status::Refunded);
    // The issue's counter-example: Alipay redelivers the TRADE_CLOSED (a lost
    // acknowledgement) after the balance reached 0. It maps to the same refund: success.
    let again = map_note(&full, &p).unwrap();
    assert_eq!(again, input);
    assert_eq!(p.apply(&again, t(2_200)), Outcome::Duplicate);
    // And so does the first one.
    assert_eq!(
        p.apply(&map_note(&first, &p).unwrap(), t(2_300)),
        Outcome::Duplicate
    );
    // A TRADE_CLOSED without refund fields on this refunded payment is ignored.
    let bare = notification_params("TRADE_CLOSED", "nr-3", &[]);
    assert_eq!(
        p.apply(&map_note(&bare, &p).unwrap(), t(2_400)),
        Outcome::Ignored
    );
}

#[test]
fn a_return_from_the_cashier_never_marks_a_payment_paid() {
    let mut p = payment();
    let params: Vec<(String, String)> = [
        ("app_id", APP_ID),
        ("seller_id", SELLER_ID),
        ("out_trade_no", ORDER),
        ("total_amount", "99.90"),
        ("trade_no", "2026112722001400000000000001"),
        ("method", "alipay.trade.page.pay.return"),
        ("timestamp", "2026-11-27 10:00:01"),
        ("charset", "utf-8"),
        ("version", "1.0"),
        ("auth_app_id", APP_ID),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let refs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut content: Vec<_> = refs.clone();
    content.sort_by(|a, b| a.0.cmp(b.0));
    let signed = content
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let sign = key().sign_base64(signed.as_bytes()).unwrap();
    let mut query = String::new();
    encode_pairs(
        refs.iter()
            .copied()
            .chain([("sign", sign.as_str()), ("sign_type", "RSA2")]),
        &mut query,
    )
    .unwrap();
    let mut buf = vec![0u8; query.len()];
    let form = Form::decode(query.as_bytes(), &mut buf).unwrap();
    let note = Notification::verify(&form, SignRule::V1, &key().public_key()).unwrap();
    let input = return_to_input(&note, &MERCHANT, &Facts::of(ORDER, &p)).unwrap();
    assert_eq!(
        input,
        Input::initiate(derived(&[
            "alipay.trade.page.pay.return",
            "2026112722001400000000000001"
        ]))
    );
    assert!(matches!(p.apply(&input, t(2_000)), Outcome::Applied(_)));
    assert_eq!(p.status(), Status::Processing);
    let other = MerchantConfig {
        app_id: APP_ID,
        seller_id: "2088000000000009",
    };
    assert_eq!(
        return_to_input(&note, &other, &Facts::of(ORDER, &p)),
        Err(NotifyError::SellerIdMismatch)
    );
}

// ---- The redelivery property (§4.1) ---------------------------------------------------------

/// One Alipay message: a notification, or an answer to a request.
#[derive(Debug, Clone)]
enum Msg {
    Note {
        status: &'static str,
        notify: u8,
        refund: Option<(u8, &'static str)>,
    },
    Query(&'static str),
    Close {
        not_exist: bool,
    },
    Cancel,
    Precreate,
    Refund {
        id: u8,
        cumulative: &'static str,
    },
    RefundQuery {
        id: u8,
        amount: &'static str,
    },
}

fn msg() -> impl Strategy<Value = Msg> {
    let status = prop_oneof![
        Just("WAIT_BUYER_PAY"),
        Just("TRADE_SUCCESS"),
        Just("TRADE_FINISHED"),
        Just("TRADE_CLOSED")
    ];
    let fee = prop_oneof![Just("10.00"), Just("30.00"), Just("60.00"), Just("99.90")];
    prop_oneof![
        (
            status.clone(),
            0u8..6,
            prop::option::of((0u8..3, fee.clone()))
        )
            .prop_map(|(status, notify, refund)| Msg::Note {
                status,
                notify,
                refund
            }),
        status.prop_map(Msg::Query),
        any::<bool>().prop_map(|not_exist| Msg::Close { not_exist }),
        Just(Msg::Cancel),
        Just(Msg::Precreate),
        (0u8..3, fee.clone()).prop_map(|(id, cumulative)| Msg::Refund { id, cumulative }),
        (0u8..3, fee).prop_map(|(id, amount)| Msg::RefundQuery { id, amount }),
    ]
}

/// Another input the host applies between two deliveries.
#[derive(Debug, Clone)]
enum Other {
    Message(Msg),
    Cancel(u8),
    Tick,
}

fn other() -> impl Strategy<Value = Other> {
    prop_oneof![
        6 => msg().prop_map(Other::Message),
        1 => (0u8..3).prop_map(Other::Cancel),
        1 => Just(Other::Tick),
    ]
}

fn map_msg(m: &Msg, p: &Payment) -> Option<Input> {
    let facts = Facts::of(ORDER, p);
    let answer = |request: Request<'_>, content: String| -> Option<Input> {
        let parsed = Answer::parse(&content, ResponseKind::Method, request).ok()?;
        Verified::trust_unverified(parsed).to_input(&facts).ok()
    };
    let rid = |id: u8| format!("rf-{id}");
    match m {
        Msg::Note {
            status,
            notify,
            refund,
        } => {
            let mut extra = vec![];
            let id;
            if let Some((r, fee)) = refund {
                id = rid(*r);
                extra.push(("out_biz_no", id.as_str()));
                extra.push(("refund_fee", *fee));
            }
            // Alipay never sends two different notifications under one notify_id: the id
            // names the content.
            let notify_id = match refund {
                Some((r, fee)) => format!("n-{notify}-{status}-rf-{r}-{fee}"),
                None => format!("n-{notify}-{status}"),
            };
            map_note(&notification_params(status, &notify_id, &extra), p).ok()
        }
        Msg::Query(status) => answer(
            Request::Query,
            format!(
                r#"{{"code":"10000","out_trade_no":"{ORDER}","trade_status":"{status}","total_amount":"99.90"}}"#
            ),
        ),
        Msg::Close { not_exist: true } => answer(
            Request::Close,
            r#"{"code":"40004","sub_code":"ACQ.TRADE_NOT_EXIST"}"#.into(),
        ),
        Msg::Close { not_exist: false } => answer(
            Request::Close,
            format!(r#"{{"code":"10000","out_trade_no":"{ORDER}"}}"#),
        ),
        Msg::Cancel => answer(
            Request::Cancel,
            format!(r#"{{"code":"10000","out_trade_no":"{ORDER}","action":"close"}}"#),
        ),
        Msg::Precreate => answer(
            Request::Precreate,
            format!(r#"{{"code":"10000","out_trade_no":"{ORDER}"}}"#),
        ),
        Msg::Refund { id, cumulative } => {
            let id = rid(*id);
            answer(
                Request::Refund {
                    out_request_no: &id,
                },
                format!(
                    r#"{{"code":"10000","out_trade_no":"{ORDER}","refund_fee":"{cumulative}","fund_change":"Y"}}"#
                ),
            )
        }
        Msg::RefundQuery { id, amount } => {
            let id = rid(*id);
            answer(
                Request::RefundQuery {
                    out_request_no: &id,
                },
                format!(
                    r#"{{"code":"10000","out_trade_no":"{ORDER}","out_request_no":"{id}","refund_amount":"{amount}","refund_status":"REFUND_SUCCESS"}}"#
                ),
            )
        }
    }
}

fn apply_other(o: &Other, p: &mut Payment, n: usize) {
    let _ = match o {
        Other::Message(m) => match map_msg(m, p) {
            Some(input) => p.apply(&input, t(3_000)),
            None => return,
        },
        Other::Cancel(k) => p.apply(
            &Input::cancel(EventId::new(format!("cmd-cancel-{k}-{n}").as_bytes()).unwrap()),
            t(3_000),
        ),
        Other::Tick => p.tick(t(10_000)),
    };
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// docs/spec.md §4.1, 2: applying a message, then anything, then the same message again is
    /// `duplicate` or `ignored` the second time: never a rejection, never a second effect.
    #[test]
    fn a_redelivered_alipay_message_is_duplicate_or_ignored(
        before in prop::collection::vec(other(), 0..6),
        message in msg(),
        between in prop::collection::vec(other(), 0..10),
        deadline in prop::bool::ANY,
    ) {
        let mut p = payment();
        if deadline {
            p = p.with_deadline(t(5_000));
        }
        for (n, o) in before.iter().enumerate() {
            apply_other(o, &mut p, n);
        }
        let Some(first_input) = map_msg(&message, &p) else { return Ok(()) };
        let first = p.apply(&first_input, t(4_000));
        if !first.should_acknowledge() {
            return Ok(());
        }
        for (n, o) in between.iter().enumerate() {
            apply_other(o, &mut p, 100 + n);
        }
        let again = map_msg(&message, &p);
        prop_assert_eq!(again, Some(first_input), "a redelivery maps to the same input");
        let before_second = p.clone();
        let second = p.apply(&first_input, t(6_000));
        prop_assert!(
            matches!(second, Outcome::Duplicate | Outcome::Ignored),
            "{:?} after {:?}: second delivery {:?}", message, first, second
        );
        prop_assert_eq!(&p, &before_second);
    }
}

#[cfg(feature = "alipay-aes")]
#[test]
fn an_encrypted_answer_verifies_decrypts_and_maps() {
    use paystate::alipay::encryption::AesKey;
    use paystate::provider::alipay::verify_encrypted_answer;
    let aes = AesKey::from_base64("aa4BtZ4tspm2wnXLb1ThQA==").unwrap();
    let plain = format!(
        r#"{{"code":"10000","msg":"Success","out_trade_no":"{ORDER}","trade_status":"TRADE_SUCCESS","total_amount":"99.90"}}"#
    );
    let mut out = vec![0u8; plain.len() * 3 + 64];
    let token = format!(
        "\"{}\"",
        aes.encrypt_base64(plain.as_bytes(), &mut out).unwrap()
    );
    let raw = signed_answer("alipay.trade.query", &token);
    let mut buf = vec![0u8; raw.len()];
    let answer =
        verify_encrypted_answer(&raw, Request::Query, &key().public_key(), &aes, &mut buf).unwrap();
    assert_eq!(
        answer.to_input(&Facts::of(ORDER, &payment())),
        Ok(Input::succeed(
            derived(&["alipay.trade.query", ORDER, "TRADE_SUCCESS"]),
            cny("99.90")
        ))
    );
    // The wrong content key: verified, but not an answer.
    let wrong = AesKey::from_base64("bb4BtZ4tspm2wnXLb1ThQA==").unwrap();
    let mut buf = vec![0u8; raw.len()];
    assert!(matches!(
        verify_encrypted_answer(&raw, Request::Query, &key().public_key(), &wrong, &mut buf),
        Err(AnswerError::Response(_))
    ));
}

#[cfg(feature = "x509")]
#[test]
fn a_certificate_mode_answer_is_verified_by_the_certificate_it_names() {
    use paystate::alipay::response::ResponseError;
    use x509_cert_for_tests::load;
    let held = [
        load("alipayCertPublicKey_RSA2.crt"),
        load("selfgen_alipay_cert.pem"),
    ];
    let content = format!(
        r#"{{"code":"10000","out_trade_no":"{ORDER}","trade_status":"WAIT_BUYER_PAY","total_amount":"99.90"}}"#
    );
    let sign = key().sign_base64(content.as_bytes()).unwrap();
    let with_sn = |sn: &str| {
        format!(
            r#"{{"alipay_trade_query_response":{content},"alipay_cert_sn":"{sn}","sign":"{sign}"}}"#
        )
    };
    // selfgen_alipay_cert.pem certifies the test key's public half.
    let raw = with_sn(&held[1].sn().to_string());
    let answer = verify_answer(&raw, Request::Query, &held[..]).unwrap();
    assert_eq!(
        answer.to_input(&Facts::of(ORDER, &payment())),
        Ok(Input::initiate(derived(&[
            "alipay.trade.query",
            ORDER,
            "WAIT_BUYER_PAY"
        ])))
    );
    // Named by the other certificate: the signature does not verify.
    let raw = with_sn(&held[0].sn().to_string());
    assert!(verify_answer(&raw, Request::Query, &held[..]).is_err());
    // An SN the host does not hold: its own error, so the host fetches the certificate.
    let raw = with_sn("0123456789abcdef0123456789abcdef");
    assert!(matches!(
        verify_answer(&raw, Request::Query, &held[..]),
        Err(AnswerError::Response(ResponseError::UnknownCertSn { .. }))
    ));
}

#[cfg(feature = "x509")]
mod x509_cert_for_tests {
    use paystate::alipay::cert::AlipayCertificate;
    use paystate::signature::x509::Certificate;

    pub fn load(name: &str) -> AlipayCertificate {
        let path = format!(
            "{}/tests/data/alipay_cert_sn/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        AlipayCertificate::new(&Certificate::parse(&std::fs::read(path).unwrap()).unwrap()).unwrap()
    }
}

/// Every RSA2 backend behind the seam verifies the same answer: the heap-free one a terminal
/// links, and `ring` on a server.
#[cfg(all(feature = "rsa-fixed", feature = "ring"))]
#[test]
fn an_answer_verifies_with_every_rsa2_backend() {
    use paystate::provider::alipay::verify_answer_with_key;
    use paystate::signature::{FixedRsa2048, RingRsa2PublicKey};
    let spki = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/keys/app2048.spki.der"
    ))
    .unwrap();
    let fixed = FixedRsa2048::from_der(&spki).unwrap();
    let ring = RingRsa2PublicKey::from_der(&spki).unwrap();
    let content = format!(
        r#"{{"code":"10000","out_trade_no":"{ORDER}","trade_status":"TRADE_SUCCESS","total_amount":"99.90"}}"#
    );
    let raw = signed_answer("alipay.trade.query", &content);
    let facts_payment = payment();
    let want = Ok(Input::succeed(
        derived(&["alipay.trade.query", ORDER, "TRADE_SUCCESS"]),
        cny("99.90"),
    ));
    let by_fixed = verify_answer_with_key(&raw, Request::Query, &fixed).unwrap();
    assert_eq!(by_fixed.to_input(&Facts::of(ORDER, &facts_payment)), want);
    let by_ring = verify_answer_with_key(&raw, Request::Query, &ring).unwrap();
    assert_eq!(by_ring.to_input(&Facts::of(ORDER, &facts_payment)), want);
    let forged = raw.replace("99.90", "99.91");
    assert!(verify_answer_with_key(&forged, Request::Query, &fixed).is_err());
}

/// Two refunds' notifications delivered out of order (the later cumulative total first):
/// with or without the host's requested refunds, both are acknowledged and the recorded
/// refunds add up to what Alipay refunded.
#[test]
fn refund_notifications_out_of_order_are_acknowledged_and_add_up() {
    let r1 = notification_params(
        "TRADE_SUCCESS",
        "nr-r1",
        &[("out_biz_no", "R1"), ("refund_fee", "30.00")],
    );
    let r2 = notification_params(
        "TRADE_SUCCESS",
        "nr-r2",
        &[("out_biz_no", "R2"), ("refund_fee", "50.00")],
    );
    // Without the requested refunds: R2's total is recorded first, R1 is already inside it.
    let mut p = paid();
    assert!(matches!(
        p.apply(&map_note(&r2, &p).unwrap(), t(2_000)),
        Outcome::Applied(_)
    ));
    let late = map_note(&r1, &p).unwrap();
    assert!(p.apply(&late, t(2_100)).should_acknowledge());
    assert_eq!(p.refunded(), cny("50.00"));
    // With them, each refund is recorded at its own amount.
    let requested = [
        (RefundId::new(b"R1").unwrap(), cny("30.00")),
        (RefundId::new(b"R2").unwrap(), cny("20.00")),
    ];
    let map = |params: &[(String, String)], p: &Payment| {
        let mut body = String::new();
        encode_pairs(
            params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .chain([("sign", "c2ln")]),
            &mut body,
        )
        .unwrap();
        let mut buf = vec![0u8; body.len()];
        let form = Form::decode(body.as_bytes(), &mut buf).unwrap();
        let note = Notification::verify_with(&form, SignRule::V1, |_, _| Ok(())).unwrap();
        note.to_input(
            &MERCHANT,
            &Facts::of(ORDER, p).with_requested_refunds(&requested),
        )
    };
    let mut q = paid();
    let second = map(&r2, &q).unwrap();
    assert!(matches!(q.apply(&second, t(2_000)), Outcome::Applied(_)));
    let first = map(&r1, &q).unwrap();
    assert!(matches!(q.apply(&first, t(2_100)), Outcome::Applied(_)));
    assert_eq!(
        q.recorded_refund(RefundId::new(b"R1").unwrap()),
        Some(cny("30.00"))
    );
    assert_eq!(
        q.recorded_refund(RefundId::new(b"R2").unwrap()),
        Some(cny("20.00"))
    );
    assert_eq!(q.refunded(), cny("50.00"));
    // Redelivered, both are duplicates.
    assert_eq!(
        q.apply(&map(&r1, &q).unwrap(), t(2_200)),
        Outcome::Duplicate
    );
    assert_eq!(
        q.apply(&map(&r2, &q).unwrap(), t(2_300)),
        Outcome::Duplicate
    );
}

/// One refund confirmed twice under two ids (a TRADE_CLOSED without `out_biz_no`, recorded
/// under its notify_id, then the host's own trade.refund answer): the second adds nothing and
/// is acknowledged, never a rejection.
#[test]
fn a_refund_confirmed_twice_under_two_ids_is_nothing_to_apply() {
    let mut p = paid();
    let closed = notification_params("TRADE_CLOSED", "nc-1", &[("refund_fee", "99.90")]);
    assert!(matches!(
        p.apply(&map_note(&closed, &p).unwrap(), t(2_000)),
        Outcome::Applied(_)
    ));
    assert_eq!(p.status(), Status::Refunded);
    let requested = [(RefundId::new(b"R9").unwrap(), cny("99.90"))];
    let request = Request::Refund {
        out_request_no: "R9",
    };
    let content = format!(
        r#"{{"code":"10000","out_trade_no":"{ORDER}","refund_fee":"99.90","fund_change":"N"}}"#
    );
    let raw = signed_answer(request.method(), &content);
    let answer = verified(&raw, request).unwrap();
    assert_eq!(
        answer.to_input(&Facts::of(ORDER, &p).with_requested_refunds(&requested)),
        Err(MapError::NothingToApply)
    );
}

/// Alipay prices a trade in CNY, or in `trans_currency` for a cross-border one: a notification
/// priced in another currency than the payment's is refused, whatever its digits.
#[test]
fn a_notification_priced_in_another_currency_is_refused() {
    let p = paid();
    let usd = notification_params("TRADE_SUCCESS", "n-usd", &[("trans_currency", "USD")]);
    assert_eq!(
        map_note(&usd, &p),
        Err(NotifyError::Map(MapError::CurrencyMismatch {
            expected: Currency::CNY,
            got: Currency::USD
        }))
    );
    let bogus = notification_params("TRADE_SUCCESS", "n-xxx", &[("trans_currency", "XYZ")]);
    assert_eq!(
        map_note(&bogus, &p),
        Err(NotifyError::Map(MapError::UnknownCurrency))
    );
    let cny = notification_params("TRADE_SUCCESS", "n-cny", &[("trans_currency", "CNY")]);
    assert!(map_note(&cny, &p).is_ok());
    // A USD payment cannot be paid by a notification without trans_currency (CNY).
    let dollars: Payment =
        Payment::new(Money::parse("99.90", Currency::USD).unwrap(), t(1_000)).unwrap();
    let plain = notification_params("TRADE_SUCCESS", "n-plain", &[]);
    assert_eq!(
        map_note(&plain, &dollars),
        Err(NotifyError::Map(MapError::CurrencyMismatch {
            expected: Currency::USD,
            got: Currency::CNY
        }))
    );
}
