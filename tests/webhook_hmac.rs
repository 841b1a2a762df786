//! The generic HMAC-SHA256 webhook scheme: RFC 4231 vectors, tampering, window edges.

use paystate::Timestamp;
use paystate::webhook::hmac::{self, EmptySecret, HmacError, HmacKey, Verifier};
use paystate::webhook::{Duration, HexError, TimestampError, WindowError, encode_hex};

const T: fn(u64) -> Timestamp = Timestamp::from_secs;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(sig: [u8; 32]) -> String {
    let mut buf = [0u8; 64];
    encode_hex(&sig, &mut buf).unwrap().to_owned()
}

fn key() -> HmacKey {
    HmacKey::new(b"webhook secret").unwrap()
}

#[test]
fn rfc4231_vectors() {
    let cases: serde_json::Value =
        serde_json::from_str(include_str!("data/hmac_sha256/rfc4231_hmac_sha256.json")).unwrap();
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let key = HmacKey::new(&unhex(case["key_hex"].as_str().unwrap())).unwrap();
        let data = unhex(case["data_hex"].as_str().unwrap());
        let expected = case["hmac_sha256_hex"].as_str().unwrap();
        assert_eq!(hex(key.tag(&data)), expected, "{}", case["name"]);
    }
}

#[test]
fn the_scheme_signs_timestamp_bar_body() {
    // RFC 4231 case 2's key, over the scheme's layout.
    let key = HmacKey::new(b"Jefe").unwrap();
    assert_eq!(
        hmac::sign(&key, T(1_700_000_000), b"what do ya want for nothing?"),
        key.tag(b"1700000000|what do ya want for nothing?")
    );
    assert_eq!(hmac::sign(&key, T(0), b""), key.tag(b"0|"));
    assert_eq!(
        hmac::sign(&key, T(u64::MAX), b"x"),
        key.tag(b"18446744073709551615|x")
    );
}

#[test]
fn verifies_lower_and_upper_hex() {
    let sig = hex(hmac::sign(&key(), T(1_000), b"body"));
    let v = hmac::verify(
        &key(),
        "1000",
        &sig,
        b"body",
        T(1_000),
        Duration::DEFAULT_TOLERANCE,
    )
    .unwrap();
    assert_eq!(v.timestamp(), T(1_000));
    assert_eq!(hex(*v.signature()), sig);
    let upper = sig.to_uppercase();
    assert!(
        hmac::verify(
            &key(),
            "1000",
            &upper,
            b"body",
            T(1_000),
            Duration::DEFAULT_TOLERANCE
        )
        .is_ok()
    );
}

#[test]
fn a_streamed_body_verifies_like_a_whole_one() {
    let body = br#"{"a":1,"b":[1,2,3]}"#;
    let sig = hex(hmac::sign(&key(), T(5_000), body));
    for split in 0..=body.len() {
        let (a, b) = body.split_at(split);
        let mut v =
            Verifier::begin(&key(), "5000", &sig, T(5_000), Duration::DEFAULT_TOLERANCE).unwrap();
        v.update(a);
        v.update(b);
        assert!(v.finish().is_ok(), "split at {split}");
    }
    // And a streamed tampered body fails.
    let mut v =
        Verifier::begin(&key(), "5000", &sig, T(5_000), Duration::DEFAULT_TOLERANCE).unwrap();
    v.update(&body[..5]);
    v.update(b"2");
    v.update(&body[6..]);
    assert_eq!(v.finish(), Err(HmacError::Mismatch));
}

#[test]
fn every_tampered_variant_is_rejected() {
    let body = br#"{"order":"o1"}"#;
    let raw = hmac::sign(&key(), T(1_000), body);
    let good = hex(raw);
    let (now, tol) = (T(1_010), Duration::DEFAULT_TOLERANCE);
    let check = |ts: &str, sig: &str, body: &[u8], key: &HmacKey| {
        hmac::verify(key, ts, sig, body, now, tol)
    };
    assert!(check("1000", &good, body, &key()).is_ok());
    for tampered in [
        &br#"{"order":"o2"}"#[..],
        br#"{"order":"o1"} "#,
        br#"{"order":"o1""#,
        b"",
    ] {
        assert_eq!(
            check("1000", &good, tampered, &key()),
            Err(HmacError::Mismatch)
        );
    }
    assert_eq!(check("1001", &good, body, &key()), Err(HmacError::Mismatch));
    assert_eq!(check("999", &good, body, &key()), Err(HmacError::Mismatch));
    let other = HmacKey::new(b"webhook secreT").unwrap();
    assert_eq!(check("1000", &good, body, &other), Err(HmacError::Mismatch));
    for bit in 0..256 {
        let mut bad = raw;
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            check("1000", &hex(bad), body, &key()),
            Err(HmacError::Mismatch),
            "bit {bit}"
        );
    }
}

#[test]
fn malformed_headers_are_typed_errors() {
    let good = hex(hmac::sign(&key(), T(1_000), b"x"));
    let check = |ts: &str, sig: &str| {
        hmac::verify(&key(), ts, sig, b"x", T(1_000), Duration::DEFAULT_TOLERANCE)
    };
    assert_eq!(
        check("01000", &good),
        Err(HmacError::Timestamp(TimestampError::LeadingZero))
    );
    assert_eq!(
        check("1000.0", &good),
        Err(HmacError::Timestamp(TimestampError::NotDecimal {
            index: 4
        }))
    );
    assert_eq!(
        check("-1000", &good),
        Err(HmacError::Timestamp(TimestampError::NotDecimal {
            index: 0
        }))
    );
    assert_eq!(
        check("", &good),
        Err(HmacError::Timestamp(TimestampError::Empty))
    );
    assert_eq!(
        check("99999999999999999999", &good),
        Err(HmacError::Timestamp(TimestampError::Overflow))
    );
    assert_eq!(
        check("1000", &good[..63]),
        Err(HmacError::Signature(HexError::Length { len: 63 }))
    );
    assert_eq!(
        check("1000", &good[..32]),
        Err(HmacError::Signature(HexError::Length { len: 32 }))
    );
    assert_eq!(
        check("1000", ""),
        Err(HmacError::Signature(HexError::Length { len: 0 }))
    );
    assert_eq!(
        check("1000", &format!("{good}00")),
        Err(HmacError::Signature(HexError::Length { len: 66 }))
    );
    let nonhex = format!("z{}", &good[1..]);
    assert_eq!(
        check("1000", &nonhex),
        Err(HmacError::Signature(HexError::NotHex { index: 0 }))
    );
    assert_eq!(HmacKey::new(b"").err(), Some(EmptySecret));
}

#[test]
fn every_window_boundary_on_both_sides() {
    let sig = hex(hmac::sign(&key(), T(10_000), b"x"));
    let at = |now: u64, tol: u64| {
        hmac::verify(
            &key(),
            "10000",
            &sig,
            b"x",
            T(now),
            Duration::from_secs(tol),
        )
    };
    assert!(at(10_300, 300).is_ok());
    assert_eq!(
        at(10_301, 300),
        Err(HmacError::Window(WindowError::Stale {
            age: 301,
            tolerance: 300
        }))
    );
    assert!(at(9_700, 300).is_ok());
    assert_eq!(
        at(9_699, 300),
        Err(HmacError::Window(WindowError::FromFuture {
            ahead: 301,
            tolerance: 300
        }))
    );
    assert!(at(10_010, 10).is_ok() && at(9_990, 10).is_ok());
    assert!(at(10_011, 10).is_err() && at(9_989, 10).is_err());
    assert!(at(10_000, 0).is_ok());
    assert!(at(10_001, 0).is_err() && at(9_999, 0).is_err());
}

#[test]
fn the_window_is_checked_before_the_mac() {
    // A forged signature on a stale request is reported as stale: no MAC is computed for it.
    let zero = "0".repeat(64);
    let e = hmac::verify(
        &key(),
        "1",
        &zero,
        b"x",
        T(1_000),
        Duration::DEFAULT_TOLERANCE,
    )
    .unwrap_err();
    assert_eq!(e.code(), "stale");
}

#[test]
fn the_key_is_not_printed() {
    assert_eq!(format!("{:?}", key()), "HmacKey(..)");
}
