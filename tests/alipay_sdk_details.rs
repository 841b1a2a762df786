//! docs/spec.md §4.2, the details Alipay's SDKs know: whitespace-only values are left out of the
//! signed content, and `charset=GBK` notifications verify over their GBK bytes.
#![cfg(feature = "rsa")]

use paystate::alipay::content::{SignRule, SignedContent};
use paystate::alipay::form::{Charset, Form, FormError, encode_pairs};
use paystate::alipay::notify::{MerchantConfig, Notification, NotifyError};
use paystate::signature::{Rsa2PrivateKey, Rsa2PublicKey, SignatureError};
use paystate::{Currency, EventId, Input, Money, Outcome, Payment, Timestamp};

const MERCHANT: MerchantConfig<'static> = MerchantConfig {
    app_id: "2021000000000001",
    seller_id: "2088000000000002",
};

fn key() -> Rsa2PrivateKey {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/keys/app2048.pkcs8.pem"
    );
    Rsa2PrivateKey::parse(&std::fs::read(path).unwrap()).unwrap()
}

/// A trade notification's parameters as bytes; `subject` and `body` are the caller's.
fn params<'a>(charset: &'a [u8], subject: &'a [u8], body: &'a [u8]) -> Vec<(&'a str, &'a [u8])> {
    vec![
        ("app_id", b"2021000000000001"),
        ("seller_id", b"2088000000000002"),
        ("out_trade_no", b"order-42"),
        ("total_amount", b"99.90"),
        ("notify_id", b"notify-1"),
        ("trade_status", b"TRADE_SUCCESS"),
        ("charset", charset),
        ("subject", subject),
        ("body", body),
        ("sign_type", b"RSA2"),
    ]
}

/// The bytes Alipay signs (rule V1), built here without the crate, with the pairs in `drop`
/// left out as well as `sign_type`.
fn content(params: &[(&str, &[u8])], drop: &[&str]) -> Vec<u8> {
    let mut kept: Vec<_> = params
        .iter()
        .filter(|(k, _)| *k != "sign_type" && !drop.contains(k))
        .collect();
    kept.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::new();
    for (i, (k, v)) in kept.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v);
    }
    out
}

fn signed_body(params: &[(&str, &[u8])], signed: &[u8]) -> String {
    let sign = key().sign_base64(signed).unwrap();
    let mut body = String::new();
    encode_pairs(
        params.iter().copied().chain([("sign", sign.as_bytes())]),
        &mut body,
    )
    .unwrap();
    body
}

fn public() -> Rsa2PublicKey {
    key().public_key()
}

fn verify(body: &str) -> Result<(), SignatureError> {
    let mut buf = vec![0u8; body.len()];
    let form = Form::decode(body.as_bytes(), &mut buf).unwrap();
    Notification::verify(&form, SignRule::V1, &public()).map(|_| ())
}

#[test]
fn whitespace_only_values_are_not_signed() {
    // Alipay sends `body=+` (one space) and signs the content without `body`: genuine.
    for blank in [
        &b" "[..],
        b"\t",
        b"\r\n",
        "\u{3000}".as_bytes(),
        " \u{2003}\u{2028}".as_bytes(),
    ] {
        let p = params(b"utf-8", b"tea", blank);
        let body = signed_body(&p, &content(&p, &["body"]));
        assert_eq!(verify(&body), Ok(()), "{blank:?}");
        // Signed with the blank value in the content, as a naive verifier builds it: refused.
        let naive = signed_body(&p, &content(&p, &[]));
        assert_eq!(verify(&naive), Err(SignatureError::Mismatch), "{blank:?}");
    }
    // No-break spaces are not whitespace to Alipay's SDKs (Java's isWhitespace): signed.
    for kept in ["\u{a0}", "\u{2007}", "\u{202f}", " x "] {
        let p = params(b"utf-8", b"tea", kept.as_bytes());
        assert_eq!(
            verify(&signed_body(&p, &content(&p, &[]))),
            Ok(()),
            "{kept:?}"
        );
        assert_eq!(
            verify(&signed_body(&p, &content(&p, &["body"]))),
            Err(SignatureError::Mismatch),
            "{kept:?}"
        );
    }
}

#[test]
fn a_blank_value_is_never_read_from_a_notification() {
    // A blank pair is outside the signature, so anyone could add one: the verified
    // notification does not show it, and a blank mapped field counts as missing.
    let p = params(b"utf-8", b"tea", b" ");
    let mut with_blank = p.clone();
    with_blank.push(("out_biz_no", b"  "));
    let body = signed_body(&with_blank, &content(&p, &["body"]));
    let mut buf = vec![0u8; body.len()];
    let form = Form::decode(body.as_bytes(), &mut buf).unwrap();
    let note = Notification::verify(&form, SignRule::V1, &public()).unwrap();
    assert_eq!(form.get("out_biz_no"), Some("  "));
    assert_eq!(
        (
            note.get("out_biz_no"),
            note.get("body"),
            note.get_bytes("body")
        ),
        (None, None, None)
    );
    assert_eq!(note.get("subject"), Some("tea"));

    let mut blank_id = params(b"utf-8", b"tea", b"x");
    blank_id[4].1 = b" ";
    let body = signed_body(&blank_id, &content(&blank_id, &["notify_id"]));
    let mut buf = vec![0u8; body.len()];
    let form = Form::decode(body.as_bytes(), &mut buf).unwrap();
    let note = Notification::verify(&form, SignRule::V1, &public()).unwrap();
    let payment: Payment = Payment::new(
        Money::parse("99.90", Currency::CNY).unwrap(),
        Timestamp::from_secs(1_000),
    )
    .unwrap();
    assert_eq!(
        note.to_input(
            &MERCHANT,
            &paystate::provider::Facts::of("order-42", &payment)
        ),
        Err(NotifyError::MissingField { field: "notify_id" })
    );
}

// 测试 ("test") in GBK: B2 E2 CA D4; 支付宝 in GBK: D6 A7 B8 B6 B1 A6 (from Python's codec).
const GBK_SUBJECT: &[u8] = &[0xB2, 0xE2, 0xCA, 0xD4];
const GBK_BODY: &[u8] = &[0xD6, 0xA7, 0xB8, 0xB6, 0xB1, 0xA6];

#[test]
fn gbk_notification_verifies_over_its_bytes_and_maps() {
    let p = params(b"GBK", GBK_SUBJECT, GBK_BODY);
    let body = signed_body(&p, &content(&p, &[]));
    assert!(body.contains("subject=%B2%E2%CA%D4"), "{body}");
    let mut buf = vec![0u8; body.len()];
    let form = Form::decode(body.as_bytes(), &mut buf).unwrap();
    assert_eq!(form.charset(), Charset::Gbk);
    let note = Notification::verify(&form, SignRule::V1, &public()).unwrap();
    assert_eq!(SignedContent::new(&form, SignRule::V1).digest(), {
        use sha2::Digest;
        <[u8; 32]>::from(sha2::Sha256::digest(content(&p, &[])))
    });
    assert_eq!(
        (note.get("subject"), note.get_bytes("subject")),
        (None, Some(GBK_SUBJECT))
    );

    let mut payment: Payment = Payment::new(
        Money::parse("99.90", Currency::CNY).unwrap(),
        Timestamp::from_secs(1_000),
    )
    .unwrap();
    let input = note
        .to_input(
            &MERCHANT,
            &paystate::provider::Facts::of("order-42", &payment),
        )
        .unwrap();
    assert_eq!(
        input,
        Input::succeed(
            EventId::new(b"notify-1").unwrap(),
            Money::parse("99.90", Currency::CNY).unwrap()
        )
    );
    assert!(matches!(
        payment.apply(&input, Timestamp::from_secs(2_000)),
        Outcome::Applied(_)
    ));

    // The same bytes re-encoded as UTF-8 are another content: the GBK signature fails.
    let utf8 = params(b"GBK", "测试".as_bytes(), "支付宝".as_bytes());
    let sign = key().sign_base64(&content(&p, &[])).unwrap();
    let mut transcoded = String::new();
    encode_pairs(
        utf8.iter().copied().chain([("sign", sign.as_bytes())]),
        &mut transcoded,
    )
    .unwrap();
    assert_eq!(verify(&transcoded), Err(SignatureError::Mismatch));
    // One GBK byte changed.
    let tampered = body.replace("%B2%E2%CA%D4", "%B2%E2%CA%D5");
    assert_eq!(verify(&tampered), Err(SignatureError::Mismatch));
}

#[test]
fn gbk_ids_that_are_not_ascii_are_not_text() {
    let mut p = params(b"gbk", GBK_SUBJECT, b"x");
    p[2].1 = GBK_SUBJECT; // out_trade_no
    let body = signed_body(&p, &content(&p, &[]));
    let mut buf = vec![0u8; body.len()];
    let form = Form::decode(body.as_bytes(), &mut buf).unwrap();
    let note = Notification::verify(&form, SignRule::V1, &public()).unwrap();
    assert_eq!(
        note.out_trade_no(),
        Err(NotifyError::NotText {
            field: "out_trade_no"
        })
    );
    assert_eq!(note.out_trade_no().unwrap_err().code(), "field_not_text");
}

#[test]
fn gbk_stays_strict() {
    for (body, err) in [
        (
            &b"charset=GBK&subject=%B2%E2&subject=%CA%D4"[..],
            FormError::DuplicateKey { at: 27 },
        ),
        (
            b"charset=GBK&subject=%B2%E",
            FormError::MalformedEscape { at: 23 },
        ),
        // Without a declared GBK charset, the same bytes are not UTF-8.
        (b"subject=%B2%E2%CA%D4", FormError::InvalidUtf8 { at: 0 }),
        (
            b"charset=utf-8&subject=%B2%E2",
            FormError::InvalidUtf8 { at: 14 },
        ),
        (
            b"charset=big5&subject=%B2%E2",
            FormError::UnsupportedCharset {
                charset: "big5".try_into().unwrap(),
            },
        ),
    ] {
        let mut buf = vec![0u8; body.len()];
        assert_eq!(Form::decode(body, &mut buf).err(), Some(err), "{body:?}");
    }
}
