//! Alipay notifications from arbitrary bodies (docs/spec.md §4): form decoding, signed content,
//! signature decoding and the notification → input mapping.
//!
//! The input is the raw body, so the seeds are real notification bodies. For each body:
//! - `Form::decode` never panics or allocates, agrees with a plain reference decoder written
//!   from §4 (`+` and `%XX` once, strictly; no empty pair, no pair without `=`, no empty key,
//!   no duplicate key, UTF-8 keys, UTF-8 values unless `charset` is GBK or GB2312), and when
//!   it refuses, the error is one the body really has;
//!   a decoded form re-encodes (`encode_pairs`) to a body that decodes to the same fields;
//! - the signed content under V1 and V2 is exactly the reference content (sorted, blank pairs,
//!   `sign` and, under V1, `sign_type` dropped), and its digest is SHA-256 of it;
//! - `verify_with` hands the host exactly that digest and the strictly base64-decoded `sign`;
//! - with the real Alipay keys, `verify` succeeds only for the genuine signed content and
//!   signature (a mutated body that still verifies would be a forgery or an ambiguity);
//! - `to_input`, for payments in every money state and matching or foreign merchants, maps the
//!   notification exactly as §4 says or refuses it for a reason it really has; the input
//!   applied to the payment keeps every invariant, and the reply is `success` exactly when
//!   the outcome is acknowledged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paystate::alipay::content::{SignRule, SignedContent};
use paystate::alipay::form::{Field, Form, FormError, encode_pairs};
use paystate::alipay::notify::{MerchantConfig, Notification, NotifyError, Reply, TradeStatus};
use paystate::signature::{MAX_SIGNATURE_BASE64_LEN, Rsa2PublicKey, SignatureError};
use paystate::{Currency, EventId, Input, Money, Payment, RefundId, Timestamp};
use paystate_fuzz::{check_step, no_alloc};
use sha2::{Digest, Sha256};

const TRADE_BODY: &[u8] = include_bytes!("../../tests/data/alipay/trade_notify_v1.form_body.txt");
const TRADE_CONTENT: &str =
    include_str!("../../tests/data/alipay/trade_notify_v1.sign_content.txt");
const TRADE_KEY: &str =
    include_str!("../../tests/data/alipay/alipay-public-key-trade-notify-v1.pem");
/// The gateway notification's parameters form-encoded (the seed of the same name).
const GATEWAY_BODY: &[u8] = include_bytes!("../corpus/alipay_notify/gateway-notify-v2-genuine");
const GATEWAY_CONTENT: &str =
    include_str!("../../tests/data/alipay/servicemarket_notify_v2.sign_content.txt");
const GATEWAY_KEY: &str =
    include_str!("../../tests/data/alipay/alipay-notify-sign-public-key-v2.pem");

/// The genuine vectors: key, rule, signed content. The signature is the `sign` of the body.
fn genuine() -> &'static [(Rsa2PublicKey, SignRule, &'static str)] {
    static KEYS: std::sync::OnceLock<Vec<(Rsa2PublicKey, SignRule, &'static str)>> =
        std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        vec![
            (
                Rsa2PublicKey::from_pem(TRADE_KEY).expect("the trade key loads"),
                SignRule::V1,
                TRADE_CONTENT,
            ),
            (
                Rsa2PublicKey::from_pem(GATEWAY_KEY).expect("the gateway key loads"),
                SignRule::V2,
                GATEWAY_CONTENT,
            ),
        ]
    })
}

// ---- the reference form decoder ---------------------------------------------------------

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Decodes one component; `Err(offset)` of each malformed `%` (relative to the component).
fn unescape(raw: &[u8]) -> Result<Vec<u8>, Vec<usize>> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => match (
                raw.get(i + 1).and_then(|&b| hex(b)),
                raw.get(i + 2).and_then(|&b| hex(b)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 3;
                }
                _ => {
                    bad.push(i);
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    if bad.is_empty() { Ok(out) } else { Err(bad) }
}

/// The decoded fields, sorted by key, or every error the body has (any of them may be the
/// one reported: the decoder stops at the first it meets).
fn reference_decode(body: &[u8], max: usize) -> Result<Vec<(String, Vec<u8>)>, Vec<FormError>> {
    if body.is_empty() {
        return Err(vec![FormError::Empty]);
    }
    let mut errors = Vec::new();
    let mut pairs: Vec<(Vec<u8>, Vec<u8>, usize)> = Vec::new();
    let mut at = 0;
    let mut count = 0;
    for pair in body.split(|&b| b == b'&') {
        count += 1;
        let start = at;
        at += pair.len() + 1;
        if pair.is_empty() {
            errors.push(FormError::EmptyPair { at: start });
            continue;
        }
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            errors.push(FormError::MissingEquals { at: start });
            continue;
        };
        let key = unescape(&pair[..eq]);
        let value = unescape(&pair[eq + 1..]);
        match (key, value) {
            (Ok(k), _) if k.is_empty() => errors.push(FormError::EmptyKey { at: start }),
            (Ok(k), Ok(v)) => pairs.push((k, v, start)),
            (k, v) => {
                for i in k.err().unwrap_or_default() {
                    errors.push(FormError::MalformedEscape { at: start + i });
                }
                for i in v.err().unwrap_or_default() {
                    errors.push(FormError::MalformedEscape {
                        at: start + eq + 1 + i,
                    });
                }
            }
        }
    }
    if count > max {
        errors.push(FormError::TooManyFields { max });
    }
    for (i, (k, _, at)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(other, _, _)| other == k) {
            errors.push(FormError::DuplicateKey { at: *at });
        }
    }
    let gbk = pairs.iter().any(|(k, v, _)| {
        k == b"charset" && matches!(&v.to_ascii_lowercase()[..], b"gbk" | b"gb2312")
    });
    let mut fields = Vec::new();
    for (k, v, at) in &pairs {
        match (
            String::from_utf8(k.clone()),
            gbk || std::str::from_utf8(v).is_ok(),
        ) {
            (Ok(k), true) => fields.push((k, v.clone())),
            _ => errors.push(FormError::InvalidUtf8 { at: *at }),
        }
    }
    if let Some((_, v, _)) = pairs.iter().find(|(k, _, _)| k == b"charset") {
        let name = v.to_ascii_lowercase();
        if !matches!(&name[..], b"utf-8" | b"utf8" | b"gbk" | b"gb2312") {
            let shown: String = v
                .iter()
                .take(16)
                .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
                .collect();
            errors.push(FormError::UnsupportedCharset {
                charset: heapless::String::try_from(shown.as_str()).expect("16 ASCII bytes"),
            });
        }
    }
    if errors.is_empty() {
        fields.sort();
        Ok(fields)
    } else {
        Err(errors)
    }
}

/// Empty or only Java whitespace (`Character.isWhitespace`), in UTF-8 or, for bytes that are
/// not UTF-8, in GBK (where the only non-ASCII whitespace is U+3000, `A1 A1`).
fn reference_blank(value: &[u8]) -> bool {
    let ws = |c: u32| {
        matches!(c, 9..=13 | 28..=32 | 0x1680 | 0x2000..=0x2006 | 0x2008..=0x200A
            | 0x2028 | 0x2029 | 0x205F | 0x3000)
    };
    match std::str::from_utf8(value) {
        Ok(text) => text.chars().all(|c| ws(c as u32)),
        Err(_) => {
            let mut i = 0;
            while i < value.len() {
                if ws(u32::from(value[i])) {
                    i += 1;
                } else if value[i..].starts_with(&[0xA1, 0xA1]) {
                    i += 2;
                } else {
                    return false;
                }
            }
            true
        }
    }
}

fn reference_content(fields: &[(String, Vec<u8>)], rule: SignRule) -> Vec<u8> {
    let kept: Vec<Vec<u8>> = fields
        .iter()
        .filter(|(k, v)| {
            !reference_blank(v)
                && !reference_blank(k.as_bytes())
                && k != "sign"
                && !(rule == SignRule::V1 && k == "sign_type")
        })
        .map(|(k, v)| [k.as_bytes(), b"=", v].concat())
        .collect();
    kept.join(&b'&')
}

/// Strict standard base64: padding required, canonical trailing bits. `None` if not.
fn reference_base64(b: &[u8]) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if b.is_empty() || !b.len().is_multiple_of(4) {
        return None;
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        return None;
    }
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = Vec::new();
    for &c in &b[..b.len() - pad] {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    // Leftover bits must be zero, and the padding must be exactly what the length needs.
    if bits != 0 || (b.len() - pad) % 4 == 1 || (pad > 0 && (b.len() - pad) % 4 + pad != 4) {
        return None;
    }
    Some(out)
}

// ---- the reference mapping ----------------------------------------------------------------

fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// §4's business checks and mapping: the input, or every reason to refuse.
fn reference_input(
    fields: &[(String, String)],
    merchant: &MerchantConfig<'_>,
    order_id: &str,
    payment: &Payment,
) -> Result<Input, Vec<NotifyError>> {
    let mut errors = Vec::new();
    let missing = |f: &'static str| NotifyError::MissingField { field: f };
    match field(fields, "app_id") {
        None => errors.push(missing("app_id")),
        Some(v) if v != merchant.app_id => errors.push(NotifyError::AppIdMismatch),
        _ => {}
    }
    match field(fields, "seller_id") {
        None => errors.push(missing("seller_id")),
        Some(v) if v != merchant.seller_id => errors.push(NotifyError::SellerIdMismatch),
        _ => {}
    }
    match field(fields, "out_trade_no") {
        None => errors.push(missing("out_trade_no")),
        Some(v) if v != order_id => errors.push(NotifyError::OrderMismatch),
        _ => {}
    }
    let currency = payment.currency();
    let amount = |f: &'static str, errors: &mut Vec<NotifyError>| match field(fields, f) {
        None => {
            errors.push(missing(f));
            None
        }
        Some(v) => match Money::parse(v, currency) {
            Ok(m) => Some(m),
            Err(error) => {
                errors.push(NotifyError::InvalidAmount { field: f, error });
                None
            }
        },
    };
    // Priced in CNY, or in trans_currency (cross-border); the payments here are CNY.
    if let Some(code) = field(fields, "trans_currency") {
        match Currency::from_code(code) {
            Err(_) => errors.push(NotifyError::Map(
                paystate::provider::MapError::UnknownCurrency,
            )),
            Ok(c) if c != Currency::CNY => errors.push(NotifyError::Map(
                paystate::provider::MapError::CurrencyMismatch {
                    expected: Currency::CNY,
                    got: c,
                },
            )),
            Ok(_) => {}
        }
    }
    let total = amount("total_amount", &mut errors);
    if let Some(t) = total
        && t != payment.amount()
    {
        errors.push(NotifyError::AmountMismatch {
            expected: payment.amount().minor_units(),
            got: t.minor_units(),
        });
    }
    let notify_id = field(fields, "notify_id");
    let event = match notify_id {
        None => {
            errors.push(missing("notify_id"));
            None
        }
        Some(id) => match EventId::new(id.as_bytes()) {
            Ok(e) => Some(e),
            Err(e) => {
                errors.push(NotifyError::InvalidNotifyId(e));
                None
            }
        },
    };
    let status = match field(fields, "trade_status") {
        None => {
            errors.push(missing("trade_status"));
            None
        }
        Some(s) => {
            let parsed = match s {
                "WAIT_BUYER_PAY" => Some(TradeStatus::WaitBuyerPay),
                "TRADE_SUCCESS" => Some(TradeStatus::TradeSuccess),
                "TRADE_FINISHED" => Some(TradeStatus::TradeFinished),
                "TRADE_CLOSED" => Some(TradeStatus::TradeClosed),
                _ => None,
            };
            if parsed.is_none() {
                errors.push(NotifyError::UnknownTradeStatus);
            }
            parsed
        }
    };
    // A refund notification (out_biz_no with refund_fee, or TRADE_CLOSED with refund_fee)
    // reports the refund that takes the cumulative refund_fee past the other recorded
    // refunds; one already recorded keeps its recorded amount (docs/spec.md §4.1: Facts only).
    let mut refund = None;
    let out_biz_no = field(fields, "out_biz_no");
    let is_refund = field(fields, "refund_fee").is_some()
        && (out_biz_no.is_some() || status == Some(TradeStatus::TradeClosed));
    if is_refund && status.is_some() {
        let id = out_biz_no.or(notify_id).unwrap_or("");
        let rid = match RefundId::new(id.as_bytes()) {
            Ok(r) => Some(r),
            Err(e) => {
                errors.push(NotifyError::InvalidRefundId(e));
                None
            }
        };
        if let (Some(fee), Some(rid)) = (amount("refund_fee", &mut errors), rid) {
            let recorded = payment.recorded_refund(rid);
            let others = payment.refunded().minor_units() - recorded.map_or(0, |m| m.minor_units());
            match recorded {
                Some(m) => refund = Some((rid, m)),
                None if fee.minor_units() > others => {
                    refund = Some((
                        rid,
                        Money::from_minor(fee.minor_units() - others, fee.currency()),
                    ))
                }
                // Nothing beyond the recorded refunds: read as the status it carries.
                None => {}
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let (Some(event), Some(status), Some(total)) = (event, status, total) else {
        unreachable!("no error, so every field was read");
    };
    if let Some((r, amount)) = refund {
        return Ok(Input::refund(event, r, amount));
    }
    Ok(match status {
        TradeStatus::WaitBuyerPay => Input::initiate(event),
        TradeStatus::TradeSuccess | TradeStatus::TradeFinished => Input::succeed(event, total),
        TradeStatus::TradeClosed => Input::close(event),
    })
}

/// Payments in every money state, for an amount taken from the body when it is one.
fn payments(fields: &[(String, String)]) -> Vec<Payment> {
    let amount = field(fields, "total_amount")
        .and_then(|v| Money::parse(v, Currency::CNY).ok())
        .filter(|m| !m.is_zero())
        .unwrap_or(Money::from_minor(10, Currency::CNY));
    let t = Timestamp::from_secs(1_565_855_782);
    let pending: Payment = Payment::new(amount, t).expect("a non-zero amount");
    let mut paid = pending.clone();
    let _ = paid.apply(
        &Input::succeed(EventId::new(b"fz-paid").unwrap(), amount),
        t,
    );
    let mut partly = paid.clone();
    let one = Money::from_minor(1, Currency::CNY);
    let _ = partly.apply(
        &Input::refund(
            EventId::new(b"fz-r1").unwrap(),
            RefundId::new(b"fz-r1").unwrap(),
            one,
        ),
        t,
    );
    let mut refunded = partly.clone();
    let _ = refunded.apply(
        &Input::refund(
            EventId::new(b"fz-r2").unwrap(),
            RefundId::new(b"fz-r2").unwrap(),
            refunded.balance(),
        ),
        t,
    );
    vec![pending, paid, partly, refunded]
}

fn check_form<const N: usize>(body: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let mut buf = vec![0u8; body.len()];
    let decoded = no_alloc("Form::decode", || {
        Form::<N>::decode_with_capacity(body, &mut buf)
    });
    let want = reference_decode(body, N);
    match (&decoded, &want) {
        (Ok(form), Ok(fields)) => {
            let got: Vec<(String, Vec<u8>)> = form
                .fields()
                .iter()
                .map(|f| (f.key.to_owned(), f.value.to_vec()))
                .collect();
            assert_eq!(&got, fields, "decoded fields (capacity {N})");
            for (k, v) in fields {
                assert_eq!(form.get_bytes(k), Some(v.as_slice()), "get_bytes({k:?})");
                assert_eq!(form.get(k), std::str::from_utf8(v).ok(), "get({k:?})");
            }
        }
        (Err(e), Err(errors)) => {
            assert!(
                errors.contains(e),
                "refused with {e:?}, not one of {errors:?}"
            );
        }
        _ => panic!("capacity {N}: decoder {decoded:?}, reference {want:?}"),
    }
    if !body.is_empty() {
        let mut short = vec![0u8; body.len() - 1];
        assert_eq!(
            Form::<N>::decode_with_capacity(body, &mut short).err(),
            Some(FormError::BufferTooSmall { needed: body.len() })
        );
    }
    want.ok()
}

fuzz_target!(|body: &[u8]| {
    let narrow = check_form::<4>(body);
    let Some(raw_fields) = check_form::<64>(body) else {
        assert!(narrow.is_none());
        return;
    };
    // What the mapping reads: blank values are never read (they are not signed), and values
    // that are not UTF-8 (GBK) are not text.
    let not_text: Vec<String> = raw_fields
        .iter()
        .filter(|(_, v)| !reference_blank(v) && std::str::from_utf8(v).is_err())
        .map(|(k, _)| k.clone())
        .collect();
    let fields: Vec<(String, String)> = raw_fields
        .iter()
        .map(|(k, v)| {
            // `Notification::get` shows neither a blank value nor one that is not text.
            let text = match std::str::from_utf8(v) {
                Ok(t) if !reference_blank(v) => t.to_owned(),
                _ => String::new(),
            };
            (k.clone(), text)
        })
        .collect();
    let mut buf = vec![0u8; body.len()];
    let form = Form::decode(body, &mut buf).expect("checked above");

    // Encoding the fields gives a body that decodes to them again.
    let mut again = String::new();
    encode_pairs(form.fields().iter().map(|f| (f.key, f.value)), &mut again).expect("a String");
    let mut buf2 = vec![0u8; again.len()];
    let re = Form::decode(again.as_bytes(), &mut buf2).expect("a re-encoded form decodes");
    assert_eq!(re.fields(), form.fields(), "re-encoded as {again:?}");

    let sign = raw_fields
        .iter()
        .find(|(k, _)| k == "sign")
        .map(|(_, v)| v.as_slice())
        .filter(|v| !v.is_empty());
    for rule in [SignRule::V1, SignRule::V2] {
        let content = reference_content(&raw_fields, rule);
        let signed = SignedContent::new(&form, rule);
        assert_eq!(
            signed.pieces().collect::<Vec<_>>().concat(),
            content,
            "{rule:?}"
        );
        assert_eq!(signed.len(), content.len());
        assert_eq!(signed.is_empty(), content.is_empty());
        let digest: [u8; 32] = Sha256::digest(&content).into();
        assert_eq!(
            no_alloc("SignedContent::digest", || signed.digest()),
            digest
        );
        let included: Vec<&Field<'_>> = signed.fields().collect();
        assert!(included.iter().all(|f| rule.includes(f.key, f.value)));

        // What the host's check is handed.
        let mut seen: Option<([u8; 32], Vec<u8>)> = None;
        let verified = Notification::verify_with(&form, rule, |d, s| {
            seen = Some((*d, s.to_vec()));
            Ok(())
        });
        match sign {
            None => assert_eq!(verified.err(), Some(SignatureError::Missing)),
            Some(text) if text.len() > MAX_SIGNATURE_BASE64_LEN => {
                assert_eq!(
                    verified.err(),
                    Some(SignatureError::TooLong { len: text.len() })
                );
            }
            Some(text) => match reference_base64(text) {
                None => match verified.err() {
                    Some(SignatureError::InvalidBase64) => {}
                    Some(SignatureError::InvalidBase64Char { at, byte }) => {
                        assert_eq!(text.get(at), Some(&byte), "{text:?}");
                        let padding = byte == b'=' && at + 2 >= text.len();
                        assert!(
                            !(byte.is_ascii_alphanumeric()
                                || byte == b'+'
                                || byte == b'/'
                                || padding),
                            "{text:?}: {byte:?} at {at} is base64"
                        );
                    }
                    other => panic!("{text:?} is not strict base64, but: {other:?}"),
                },
                Some(bytes) => {
                    assert!(verified.is_ok(), "{text:?}: {verified:?}");
                    assert_eq!(
                        seen,
                        Some((digest, bytes)),
                        "what the host's check was given"
                    );
                }
            },
        }

        // The real keys accept only the genuine content.
        for (key, key_rule, genuine_content) in genuine() {
            if let Ok(note) = Notification::verify(&form, rule, key) {
                assert_eq!(rule, *key_rule, "verified under the other rule");
                assert_eq!(
                    content,
                    genuine_content.as_bytes(),
                    "verified content that is not genuine"
                );
                assert_eq!(note.rule(), rule);
            }
        }
    }
    for (i, genuine_body) in [TRADE_BODY, GATEWAY_BODY].into_iter().enumerate() {
        if body == genuine_body {
            let (key, rule, _) = &genuine()[i];
            assert!(
                Notification::verify(&form, *rule, key).is_ok(),
                "the genuine body verifies"
            );
        }
    }

    // The mapping, on a notification taken as verified.
    let note = Notification::verify_with(&form, SignRule::V1, |_, _| Ok(()));
    let Ok(note) = note else {
        return;
    };
    let own = MerchantConfig {
        app_id: field(&fields, "app_id").unwrap_or("2019073166072302"),
        seller_id: field(&fields, "seller_id").unwrap_or("2088531891668739"),
    };
    let foreign = MerchantConfig {
        app_id: "2019073166072302",
        seller_id: "2088531891668739",
    };
    let order = field(&fields, "out_trade_no").unwrap_or("20190815155618536-564-57");
    for payment in payments(&fields) {
        for merchant in [&own, &foreign] {
            for order_id in [order, "another-order"] {
                let got = no_alloc("Notification::to_input", || {
                    note.to_input(merchant, &paystate::provider::Facts::of(order_id, &payment))
                });
                match (got, reference_input(&fields, merchant, order_id, &payment)) {
                    (Ok(input), Ok(want)) => {
                        assert_eq!(input, want, "mapped input");
                        let mut p = payment.clone();
                        let outcome = p.apply(&input, Timestamp::from_secs(1_565_855_785));
                        if let Err(e) = check_step(&payment, &p, &outcome) {
                            panic!("{input:?} on {payment:?}: {e}");
                        }
                        let reply = Reply::for_outcome(&outcome);
                        assert_eq!(reply == Reply::Success, outcome.should_acknowledge());
                        assert_eq!(
                            reply.as_str(),
                            if outcome.should_acknowledge() {
                                "success"
                            } else {
                                "fail"
                            }
                        );
                    }
                    // A GBK value where the mapping needs text: refused as such.
                    (Err(NotifyError::NotText { field }), _)
                        if not_text.iter().any(|k| k == field) => {}
                    (Err(e), Err(reasons)) => {
                        assert!(
                            reasons.contains(&e),
                            "refused with {e:?}, not one of {reasons:?}"
                        );
                    }
                    (got, want) => panic!(
                        "on {payment:?}, merchant {merchant:?}, order {order_id:?}: \
                         to_input {got:?}, reference {want:?}"
                    ),
                }
            }
        }
    }
});
