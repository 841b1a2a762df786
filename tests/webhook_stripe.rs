//! Stripe webhooks: the `Stripe-Signature` header, rotation, malformed headers, window edges,
//! and `payment_intent.*` events driving a payment.

use paystate::webhook::hmac::HmacKey;
use paystate::webhook::stripe::{
    self, PaymentIntentEvent, SignatureHeader, SignatureHeaderError, StripeError, Verifier,
};
use paystate::webhook::{Duration, HexError, TimestampError, WindowError, encode_hex};
use paystate::{Currency, EventId, Money, Outcome, Payment, Status, Timestamp};

const T: fn(u64) -> Timestamp = Timestamp::from_secs;

struct Vector {
    key: HmacKey,
    t: u64,
    body: Vec<u8>,
    v1: String,
    header_single: String,
    header_rotation: String,
}

fn vector() -> Vector {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("data/hmac_sha256/stripe_scheme_selfgen.json")).unwrap();
    Vector {
        key: HmacKey::new(v["secret"].as_str().unwrap().as_bytes()).unwrap(),
        t: v["timestamp"].as_u64().unwrap(),
        body: v["raw_body"].as_str().unwrap().as_bytes().to_vec(),
        v1: v["v1_hex"].as_str().unwrap().to_owned(),
        header_single: v["header_single"].as_str().unwrap().to_owned(),
        header_rotation: v["header_rotation"].as_str().unwrap().to_owned(),
    }
}

fn hex(sig: [u8; 32]) -> String {
    let mut buf = [0u8; 64];
    encode_hex(&sig, &mut buf).unwrap().to_owned()
}

fn check(v: &Vector, header: &str, body: &[u8], now: u64) -> Result<stripe::Verified, StripeError> {
    stripe::verify(&v.key, header, body, T(now), Duration::DEFAULT_TOLERANCE)
}

#[test]
fn the_vector_signs_as_stripes_library_does() {
    let v = vector();
    assert_eq!(hex(stripe::sign(&v.key, T(v.t), &v.body)), v.v1);
    let signed = format!("{}.{}", v.t, String::from_utf8(v.body.clone()).unwrap());
    assert_eq!(hex(v.key.tag(signed.as_bytes())), v.v1);
}

#[test]
fn single_and_rotation_headers_verify() {
    let v = vector();
    let ok = check(&v, &v.header_single, &v.body, v.t).unwrap();
    assert_eq!((ok.timestamp(), ok.matched()), (T(v.t), 0));
    // Rotation: the first v1 is from another secret, the second matches; v0 is ignored.
    let ok = check(&v, &v.header_rotation, &v.body, v.t).unwrap();
    assert_eq!(ok.matched(), 1);
    assert_eq!(
        SignatureHeader::parse(&v.header_rotation)
            .unwrap()
            .v1_count(),
        2
    );
}

#[test]
fn several_v1_any_position_matches() {
    let v = vector();
    let other = hex(stripe::sign(
        &HmacKey::new(b"whsec_other").unwrap(),
        T(v.t),
        &v.body,
    ));
    let third = "ab".repeat(32);
    for (header, matched) in [
        (
            format!("t={},v1={},v1={},v1={}", v.t, v.v1, other, third),
            0,
        ),
        (
            format!("t={},v1={},v1={},v1={}", v.t, other, v.v1, third),
            1,
        ),
        (
            format!("t={},v1={},v1={},v1={}", v.t, other, third, v.v1),
            2,
        ),
    ] {
        assert_eq!(
            check(&v, &header, &v.body, v.t).unwrap().matched(),
            matched,
            "{header}"
        );
    }
    // None of several matches.
    let header = format!("t={},v1={},v1={}", v.t, other, third);
    assert_eq!(check(&v, &header, &v.body, v.t), Err(StripeError::Mismatch));
}

#[test]
fn fields_in_any_order_with_optional_whitespace() {
    let v = vector();
    let (t, s) = (v.t, &v.v1);
    let v0 = "6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39";
    for header in [
        format!("v1={s},t={t}"),
        format!("v0={v0},v1={s},t={t}"),
        format!("v1={s},v0={v0},t={t}"),
        format!("t={t}, v1={s}"),
        format!("t={t} ,\tv1={s} "),
        format!("  t={t},v1={s}\t"),
        format!("t={t},v1={s},v2=future-scheme,scheme9=x=y"),
        format!("t={t},v1={s},v0="),
    ] {
        assert!(check(&v, &header, &v.body, t).is_ok(), "{header:?}");
    }
}

#[test]
fn every_tampered_variant_is_rejected() {
    let v = vector();
    let t = v.t;
    let mut body = v.body.clone();
    body.push(b' ');
    assert_eq!(
        check(&v, &v.header_single, &body, t),
        Err(StripeError::Mismatch)
    );
    assert_eq!(
        check(&v, &v.header_single, &v.body[1..], t),
        Err(StripeError::Mismatch)
    );
    assert_eq!(
        check(&v, &v.header_single, b"", t),
        Err(StripeError::Mismatch)
    );
    for i in 0..v.body.len() {
        let mut body = v.body.clone();
        body[i] ^= 0x01;
        assert_eq!(
            check(&v, &v.header_single, &body, t),
            Err(StripeError::Mismatch),
            "byte {i}"
        );
    }
    // Timestamp moved by one second (inside the window): the MAC covers it.
    let moved = v
        .header_single
        .replace(&format!("t={t}"), &format!("t={}", t + 1));
    assert_eq!(check(&v, &moved, &v.body, t), Err(StripeError::Mismatch));
    // Signature bits flipped.
    let raw = stripe::sign(&v.key, T(t), &v.body);
    for bit in 0..256 {
        let mut bad = raw;
        bad[bit / 8] ^= 1 << (bit % 8);
        let header = format!("t={t},v1={}", hex(bad));
        assert_eq!(
            check(&v, &header, &v.body, t),
            Err(StripeError::Mismatch),
            "bit {bit}"
        );
    }
    // The right signature under a scheme we do not check.
    let header = format!("t={t},v0={}", v.v1);
    assert_eq!(
        check(&v, &header, &v.body, t),
        Err(StripeError::Header(SignatureHeaderError::NoV1Signature))
    );
    // The wrong secret.
    let key = HmacKey::new(b"whsec_test_secreT").unwrap();
    assert_eq!(
        stripe::verify(
            &key,
            &v.header_single,
            &v.body,
            T(t),
            Duration::DEFAULT_TOLERANCE
        ),
        Err(StripeError::Mismatch)
    );
}

#[test]
fn malformed_headers_are_typed_errors() {
    let v = vector();
    let (t, s) = (v.t, v.v1.as_str());
    let e = |header: &str| check(&v, header, &v.body, t).unwrap_err();
    use SignatureHeaderError::*;
    use StripeError::Header;
    assert_eq!(e(""), Header(Empty));
    assert_eq!(e("  "), Header(Empty));
    assert_eq!(e(&format!("v1={s}")), Header(MissingTimestamp));
    assert_eq!(e(&format!("t={t}")), Header(NoV1Signature));
    assert_eq!(e(&format!("t={t},t={t},v1={s}")), Header(RepeatedTimestamp));
    assert_eq!(
        e(&format!("t={t},v1={s},t={}", t + 1)),
        Header(RepeatedTimestamp)
    );
    assert_eq!(e(&format!("t={t},v1={s},")), Header(Malformed { index: 2 }));
    assert_eq!(e(&format!("t={t},,v1={s}")), Header(Malformed { index: 1 }));
    assert_eq!(
        e(&format!("t={t};v1={s}")),
        Header(Timestamp(TimestampError::NotDecimal { index: 10 }))
    );
    assert_eq!(e(&format!("t={t},v1{s}")), Header(Malformed { index: 1 }));
    assert_eq!(e(&format!("t={t},={s}")), Header(Malformed { index: 1 }));
    assert_eq!(e(&format!("t={t},v 1={s}")), Header(Malformed { index: 1 }));
    assert_eq!(
        e(&format!("t = {t},v1={s}")),
        Header(Malformed { index: 0 })
    );
    assert_eq!(
        e(&format!("t=,v1={s}")),
        Header(Timestamp(TimestampError::Empty))
    );
    assert_eq!(
        e(&format!("t=abc,v1={s}")),
        Header(Timestamp(TimestampError::NotDecimal { index: 0 }))
    );
    assert_eq!(
        e(&format!("t=-{t},v1={s}")),
        Header(Timestamp(TimestampError::NotDecimal { index: 0 }))
    );
    assert_eq!(
        e(&format!("t={t}.5,v1={s}")),
        Header(Timestamp(TimestampError::NotDecimal { index: 10 }))
    );
    assert_eq!(
        e(&format!("t=0{t},v1={s}")),
        Header(Timestamp(TimestampError::LeadingZero))
    );
    assert_eq!(
        e(&format!("t=123456789012345678901234567890,v1={s}")),
        Header(Timestamp(TimestampError::Overflow))
    );
    assert_eq!(
        e(&format!("t={t},v1={}", &s[..62])),
        Header(Signature {
            index: 1,
            error: HexError::Length { len: 62 }
        })
    );
    assert_eq!(
        e(&format!("t={t},v1=")),
        Header(Signature {
            index: 1,
            error: HexError::Length { len: 0 }
        })
    );
    assert_eq!(
        e(&format!("t={t},v1={s},v1=xyz{}", &s[3..])),
        Header(Signature {
            index: 2,
            error: HexError::NotHex { index: 0 }
        })
    );
    assert_eq!(
        e(&format!("t={t},v1={s}=")),
        Header(Signature {
            index: 1,
            error: HexError::Length { len: 65 }
        })
    );
    // Codes for logs and the tool.
    assert_eq!(e("").code(), "missing_header");
    assert_eq!(
        e(&format!("t={t},t={t},v1={s}")).code(),
        "repeated_timestamp"
    );
}

#[test]
fn every_window_boundary_on_both_sides() {
    let v = vector();
    let t = v.t;
    let at = |now: u64, tol: u64| {
        stripe::verify(
            &v.key,
            &v.header_single,
            &v.body,
            T(now),
            Duration::from_secs(tol),
        )
    };
    assert!(at(t + 300, 300).is_ok());
    assert_eq!(
        at(t + 301, 300),
        Err(StripeError::Window(WindowError::Stale {
            age: 301,
            tolerance: 300
        }))
    );
    assert!(at(t - 300, 300).is_ok());
    assert_eq!(
        at(t - 301, 300),
        Err(StripeError::Window(WindowError::FromFuture {
            ahead: 301,
            tolerance: 300
        }))
    );
    assert!(at(t + 600, 600).is_ok() && at(t - 600, 600).is_ok());
    assert!(at(t + 601, 600).is_err() && at(t - 601, 600).is_err());
    assert!(at(t, 0).is_ok());
    assert!(at(t + 1, 0).is_err() && at(t - 1, 0).is_err());
    // Defaults to 300 s.
    assert_eq!(paystate::Duration::DEFAULT_TOLERANCE.as_secs(), 300);
    // A stale request with a forged signature is reported as stale.
    let forged = format!("t={t},v1={}", "0".repeat(64));
    assert_eq!(
        check(&v, &forged, &v.body, t + 301).map_err(|e| e.code()),
        Err("stale")
    );
}

#[test]
fn a_streamed_body_verifies_like_a_whole_one() {
    let v = vector();
    for split in 0..=v.body.len() {
        let mut ver = Verifier::begin(
            &v.key,
            &v.header_rotation,
            T(v.t),
            Duration::DEFAULT_TOLERANCE,
        )
        .unwrap();
        ver.update(&v.body[..split]);
        ver.update(&v.body[split..]);
        assert_eq!(ver.finish().unwrap().matched(), 1);
    }
}

#[test]
fn payment_intent_events_drive_the_payment() {
    let price = Money::from_minor(2_000, Currency::USD);
    let ev = |id: &str| EventId::new(id.as_bytes()).unwrap();
    let input = |ty: &str, id: &str| {
        PaymentIntentEvent::from_type(ty)
            .unwrap()
            .input(ev(id), price)
    };

    let mut p: Payment = Payment::new(price, T(0)).unwrap();
    assert!(matches!(
        p.apply(&input("payment_intent.processing", "evt_1"), T(1)),
        Outcome::Applied(_)
    ));
    assert_eq!(p.status(), Status::Processing);
    assert!(matches!(
        p.apply(&input("payment_intent.succeeded", "evt_2"), T(2)),
        Outcome::Applied(_)
    ));
    assert_eq!((p.status(), p.paid()), (Status::Succeeded, price));
    // Stripe redelivers the same event: a duplicate.
    assert_eq!(
        p.apply(&input("payment_intent.succeeded", "evt_2"), T(3)),
        Outcome::Duplicate
    );

    let mut p: Payment = Payment::new(price, T(0)).unwrap();
    assert!(matches!(
        p.apply(&input("payment_intent.payment_failed", "evt_3"), T(1)),
        Outcome::Applied(_)
    ));
    assert_eq!(p.status(), Status::Failed);

    let mut p: Payment = Payment::new(price, T(0)).unwrap();
    let out = p.apply(&input("payment_intent.canceled", "evt_4"), T(1));
    // Stripe already cancelled it: no close_trade effect.
    assert!(
        matches!(&out, Outcome::Applied(e) if e.is_empty()),
        "{out:?}"
    );
    assert_eq!(p.status(), Status::Cancelled);

    for ty in [
        "payment_intent.created",
        "payment_intent.requires_action",
        "payment_intent.amount_capturable_updated",
        "payment_intent.partially_funded",
        "charge.succeeded",
        "charge.refunded",
        "refund.updated",
        "payment_intent.Succeeded",
        "payment_intent.succeeded ",
        "",
    ] {
        assert_eq!(PaymentIntentEvent::from_type(ty), None, "{ty}");
    }
    for e in [
        PaymentIntentEvent::Succeeded,
        PaymentIntentEvent::Processing,
        PaymentIntentEvent::PaymentFailed,
        PaymentIntentEvent::Canceled,
    ] {
        assert_eq!(PaymentIntentEvent::from_type(e.event_type()), Some(e));
    }
}

mod properties {
    use super::*;
    use paystate::webhook::parse_timestamp;
    use proptest::prelude::*;

    fn ows() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec!["", " ", "\t", "  "])
    }

    proptest! {
        /// Whatever the order of the elements, the spaces around them, and the other
        /// signatures beside it, the genuine v1 is found, and any other body fails.
        #[test]
        fn the_genuine_v1_is_found_in_any_arrangement(
            body in prop::collection::vec(any::<u8>(), 0..200),
            t in 0u64..4_000_000_000,
            decoys in prop::collection::vec(any::<[u8; 32]>(), 0..4),
            v0 in any::<[u8; 32]>(),
            perm in any::<prop::sample::Index>(),
            spaces in prop::collection::vec(ows(), 16),
            flip in any::<prop::sample::Index>(),
        ) {
            let key = HmacKey::new(b"whsec_property").unwrap();
            let good = stripe::sign(&key, T(t), &body);
            let mut elements: Vec<String> = decoys.iter().map(|d| format!("v1={}", hex(*d))).collect();
            elements.push(format!("v1={}", hex(good)));
            elements.push(format!("v0={}", hex(v0)));
            elements.push(format!("t={t}"));
            // A rotation of the elements by a random amount, then a random swap.
            let n = elements.len();
            elements.rotate_left(perm.index(n));
            elements.swap(0, perm.index(n.max(2) - 1) % n);
            let header = elements
                .iter()
                .enumerate()
                .map(|(i, e)| format!("{}{e}{}", spaces[2 * i % 16], spaces[(2 * i + 1) % 16]))
                .collect::<Vec<_>>()
                .join(",");
            let v1s: Vec<&String> = elements.iter().filter(|e| e.starts_with("v1=")).collect();
            let expect = v1s.iter().position(|e| **e == format!("v1={}", hex(good)));
            let verified = stripe::verify(&key, &header, &body, T(t), Duration::DEFAULT_TOLERANCE);
            prop_assert_eq!(verified.map(|v| v.matched()).ok(), expect);

            let mut other = body.clone();
            if other.is_empty() { other.push(0) } else { let i = flip.index(other.len()); other[i] ^= 0x20; }
            let forged = stripe::verify(&key, &header, &other, T(t), Duration::DEFAULT_TOLERANCE);
            // A decoy could only match by an HMAC collision.
            prop_assert_eq!(forged, Err(StripeError::Mismatch));
        }

        /// A timestamp is accepted exactly when it is the canonical decimal form of a u64.
        #[test]
        fn timestamps_are_exactly_canonical_u64s(text in "[-+ 0-9a]{0,22}") {
            let canonical = text.parse::<u64>().ok().filter(|n| n.to_string() == text);
            prop_assert_eq!(parse_timestamp(&text).ok().map(|t| t.as_secs()), canonical);
        }

        /// The parser agrees with a plain model of the header grammar on headers built from
        /// valid, broken and foreign elements.
        #[test]
        fn the_header_parser_agrees_with_a_plain_model(
            elements in prop::collection::vec(prop::sample::select(vec![
                "t=1614264600", " t=1614264600 ", "t=0", "t=01", "t=", "t=x", "t=99999999999999999999",
                "v1=562b3f1fff088096a6ced058286d36883179bbfa1426f58d028a3ad3cd59fa55",
                "\tv1=562B3F1FFF088096A6CED058286D36883179BBFA1426F58D028A3AD3CD59FA55",
                "v1=562b3f", "v1=", "v1=zz2b3f1fff088096a6ced058286d36883179bbfa1426f58d028a3ad3cd59fa55",
                "v0=abc", "v2=", "tv1=562b3f1fff088096a6ced058286d36883179bbfa1426f58d028a3ad3cd59fa55",
                "x", "", "=1", "t 1=2", "v1 =ab",
            ]), 0..6),
        ) {
            let header = elements.join(",");
            let model = || -> Option<(u64, usize)> {
                if header.trim_matches([' ', '\t']).is_empty() {
                    return None;
                }
                let (mut t, mut v1) = (None, 0);
                for e in header.split(',') {
                    let (k, v) = e.trim_matches([' ', '\t']).split_once('=')?;
                    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
                        return None;
                    }
                    match k {
                        "t" if t.is_some() => return None,
                        "t" => t = Some(v.parse::<u64>().ok().filter(|n| n.to_string() == v)?),
                        "v1" if v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()) => v1 += 1,
                        "v1" => return None,
                        _ => {}
                    }
                }
                Some((t?, v1)).filter(|&(_, n)| n > 0)
            };
            let parsed = SignatureHeader::parse(&header)
                .ok()
                .map(|h| (h.timestamp().as_secs(), h.v1_count()));
            prop_assert_eq!(parsed, model(), "{:?}", header);
            if let Ok(h) = SignatureHeader::parse(&header) {
                prop_assert_eq!(h.v1_signatures().count(), h.v1_count());
            }
        }
    }
}
