//! Webhook headers and their verification (docs/spec.md §4): the `Stripe-Signature` header, the
//! generic HMAC scheme's timestamp and signature, and WeChat Pay v3's four headers.
//!
//! Headers are built from elements that may be genuine (the real vectors of `tests/data`: the
//! Stripe-scheme vector, WeChat Pay's official notification and a fresh one), correctly signed
//! for the body at hand, or arbitrary text, with arbitrary spacing, order and case. Checked:
//! - `SignatureHeader::parse` agrees with a reference parser written from its documented
//!   grammar (and refuses only for a fault the header has); parsing and verifying never
//!   allocate;
//! - Stripe and HMAC verification accept exactly when the header is well formed, the timestamp
//!   is within the two-sided window and a signature equals an independently computed
//!   HMAC-SHA256 over the documented layout; errors carry the right data; a body streamed in
//!   arbitrary chunks gives the same answer;
//! - `Headers::from_pairs` picks the four WeChat headers exactly as documented; WeChat
//!   verification follows §3.1's order, accepts only the genuine signed message of the key that
//!   matched, never accepts a `WECHATPAY/SIGNTEST/` signature, leaves the replay guard unchanged
//!   when it refuses, and refuses the same request the second time.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use paystate::Timestamp;
use paystate::guard::{MAX_NONCE_LEN, ReplayError, ReplayGuard};
use paystate::signature::x509::Certificate;
use paystate::webhook::hmac::{self as generic, HmacError, HmacKey};
use paystate::webhook::stripe::{self, SignatureHeader, SignatureHeaderError, StripeError};
use paystate::webhook::wechatpay::{
    self, Header, HeaderError as WechatHeaderError, Headers, PlatformKey, SIGNTEST_PREFIX,
    WechatError,
};
use paystate::webhook::{Duration, HexError, TimestampError, WindowError};
use paystate_fuzz::no_alloc;
use serde_json::Value;
use sha2::Sha256;

const STRIPE_SECRET: &[u8] = b"whsec_test_secret";
const STRIPE_T: &str = "1614264600";
const STRIPE_BODY: &[u8] =
    br#"{"id":"evt_test_webhook","object":"event","type":"payment_intent.succeeded"}"#;
const STRIPE_V1: &str = "562b3f1fff088096a6ced058286d36883179bbfa1426f58d028a3ad3cd59fa55";
const HMAC_SECRET: &[u8] = b"shared secret";

/// One WeChat Pay notification of the test data: its four headers and body.
struct Notification {
    timestamp: String,
    nonce: String,
    serial: String,
    signature: String,
    body: Vec<u8>,
}

struct Vectors {
    wechat: [Notification; 2],
    keys: Vec<PlatformKey>,
}

fn vectors() -> &'static Vectors {
    static V: OnceLock<Vectors> = OnceLock::new();
    V.get_or_init(|| {
        let notification = |headers: &Value, body: &[u8]| Notification {
            timestamp: headers["Wechatpay-Timestamp"].as_str().unwrap().into(),
            nonce: headers["Wechatpay-Nonce"].as_str().unwrap().into(),
            serial: headers["Wechatpay-Serial"].as_str().unwrap().into(),
            signature: headers["Wechatpay-Signature"].as_str().unwrap().into(),
            body: body.to_vec(),
        };
        let official: Value = serde_json::from_str(include_str!(
            "../../tests/data/wechatpay_v3_notify/headers.json"
        ))
        .unwrap();
        let fresh: Value = serde_json::from_str(include_str!(
            "../../tests/data/wechatpay_fresh/notification.json"
        ))
        .unwrap();
        let key = |pem: &str| {
            PlatformKey::from_certificate(&Certificate::from_pem(pem).unwrap()).unwrap()
        };
        Vectors {
            wechat: [
                notification(
                    &official,
                    include_bytes!("../../tests/data/wechatpay_v3_notify/body.json"),
                ),
                notification(
                    &fresh["headers"],
                    fresh["body"].as_str().unwrap().as_bytes(),
                ),
            ],
            keys: vec![
                key(include_str!(
                    "../../tests/data/wechatpay_v3_notify/platform_cert.pem"
                )),
                key(include_str!(
                    "../../tests/data/wechatpay_fresh/platform_cert.pem"
                )),
            ],
        }
    })
}

// ---- the input ------------------------------------------------------------------------------

#[derive(Arbitrary, Debug)]
enum Case {
    Stripe {
        header: StripeHeader,
        body: Body,
        now: Clock,
        tolerance: Tol,
        chunks: Vec<u16>,
    },
    Hmac {
        timestamp: TsText,
        signature: SigText,
        body: Body,
        now: Clock,
        tolerance: Tol,
        chunks: Vec<u16>,
    },
    Wechat {
        /// Which real notification the genuine values come from.
        fresh: bool,
        headers: Vec<(Name, HeaderValue)>,
        body: Body,
        now: Clock,
        twice: bool,
    },
}

#[derive(Arbitrary, Debug)]
enum Body {
    Genuine,
    Bytes(Vec<u8>),
}

/// `now`: near the vector's timestamp, or anything.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Clock {
    Near(i16),
    Any(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Tol {
    Default,
    Secs(u16),
    Any(u64),
}

#[derive(Arbitrary, Debug)]
enum StripeHeader {
    Raw(String),
    Built { elements: Vec<Elem>, pad: Vec<Pad> },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Pad {
    None,
    Space,
    Tab,
    Both,
}

#[derive(Arbitrary, Debug)]
enum Elem {
    T(TsText),
    /// The correct signature for the body at the header's first `t`.
    V1Good {
        upper: bool,
    },
    V1Genuine,
    V1Bytes([u8; 32]),
    V1Text(String),
    V0([u8; 32]),
    Other {
        key: String,
        value: String,
    },
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum TsText {
    Genuine,
    /// `now` plus this many seconds.
    Offset(i32),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum SigText {
    Good { upper: bool },
    Bytes([u8; 32]),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Name {
    Timestamp,
    Nonce,
    Serial,
    Signature,
    SignatureType,
    Other(String),
    /// One of the four, in a mangled case and with spaces around.
    Mangled {
        which: u8,
        case: u64,
        pad: bool,
    },
}

#[derive(Arbitrary, Debug)]
enum HeaderValue {
    /// The vector's value for this header.
    Genuine,
    /// The vector's value with spaces and tabs around.
    Padded,
    /// The genuine signature behind the probe prefix.
    SignTest,
    /// The vector's serial with leading zeros and in lower case.
    SerialVariant,
    Text(String),
}

// ---- references -------------------------------------------------------------------------------

fn hmac_ref(secret: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8], upper: bool) -> String {
    bytes
        .iter()
        .map(|b| {
            if upper {
                format!("{b:02X}")
            } else {
                format!("{b:02x}")
            }
        })
        .collect()
}

/// Every fault of a timestamp text (any may be the one reported), or its value.
fn timestamp_ref(text: &str) -> Result<u64, Vec<TimestampError>> {
    if text.is_empty() {
        return Err(vec![TimestampError::Empty]);
    }
    let mut errors = Vec::new();
    if let Some(index) = text.bytes().position(|b| !b.is_ascii_digit()) {
        errors.push(TimestampError::NotDecimal { index });
    }
    let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
    let value = digits
        .parse::<u128>()
        .ok()
        .filter(|v| *v <= u128::from(u64::MAX));
    if value.is_none() && !digits.is_empty() {
        errors.push(TimestampError::Overflow);
    }
    if text.len() > 1 && text.starts_with('0') {
        errors.push(TimestampError::LeadingZero);
    }
    match (errors.is_empty(), value) {
        (true, Some(v)) => Ok(v as u64),
        _ => Err(errors),
    }
}

fn hex_ref(text: &str) -> Result<[u8; 32], HexError> {
    let b = text.as_bytes();
    if b.len() != 64 {
        return Err(HexError::Length { len: b.len() });
    }
    if let Some(index) = b.iter().position(|c| !c.is_ascii_hexdigit()) {
        return Err(HexError::NotHex { index });
    }
    let mut out = [0u8; 32];
    for (o, pair) in out.iter_mut().zip(b.chunks(2)) {
        *o = u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap();
    }
    Ok(out)
}

fn window_ref(t: u64, now: u64, tolerance: u64) -> Result<(), WindowError> {
    if now > t && now - t > tolerance {
        return Err(WindowError::Stale {
            age: now - t,
            tolerance,
        });
    }
    if t > now && t - now > tolerance {
        return Err(WindowError::FromFuture {
            ahead: t - now,
            tolerance,
        });
    }
    Ok(())
}

/// The `Stripe-Signature` grammar: comma-separated `key=value` elements, spaces and tabs
/// around each ignored, keys non-empty and alphanumeric, exactly one `t` (strict decimal), at
/// least one `v1`, every `v1` 64 hex digits, other keys ignored.
struct ParsedRef {
    t_text: String,
    t: u64,
    v1: Vec<[u8; 32]>,
}

fn stripe_ref(header: &str) -> Result<ParsedRef, Vec<SignatureHeaderError>> {
    if header.trim_matches([' ', '\t']).is_empty() {
        return Err(vec![SignatureHeaderError::Empty]);
    }
    let mut errors = Vec::new();
    let mut ts: Vec<(String, Result<u64, Vec<TimestampError>>)> = Vec::new();
    let mut v1 = Vec::new();
    for (index, element) in header.split(',').enumerate() {
        let element = element.trim_matches([' ', '\t']);
        let Some((key, value)) = element.split_once('=') else {
            errors.push(SignatureHeaderError::Malformed { index });
            continue;
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            errors.push(SignatureHeaderError::Malformed { index });
            continue;
        }
        match key {
            "t" => ts.push((value.to_owned(), timestamp_ref(value))),
            "v1" => match hex_ref(value) {
                Ok(sig) => v1.push(sig),
                Err(error) => errors.push(SignatureHeaderError::Signature { index, error }),
            },
            _ => {}
        }
    }
    if ts.len() > 1 {
        errors.push(SignatureHeaderError::RepeatedTimestamp);
    }
    for (_, parsed) in &ts {
        if let Err(es) = parsed {
            errors.extend(es.iter().map(|e| SignatureHeaderError::Timestamp(*e)));
        }
    }
    if ts.is_empty() {
        errors.push(SignatureHeaderError::MissingTimestamp);
    }
    if v1.is_empty() {
        errors.push(SignatureHeaderError::NoV1Signature);
    }
    match (errors.is_empty(), ts.first()) {
        (true, Some((text, Ok(t)))) => Ok(ParsedRef {
            t_text: text.clone(),
            t: *t,
            v1,
        }),
        _ => Err(errors),
    }
}

// ---- building the inputs ----------------------------------------------------------------------

fn clock(c: Clock, base: u64) -> u64 {
    match c {
        Clock::Near(d) => base.saturating_add_signed(i64::from(d)),
        Clock::Any(t) => t,
    }
}

fn tolerance(t: Tol) -> u64 {
    match t {
        Tol::Default => 300,
        Tol::Secs(s) => u64::from(s),
        Tol::Any(s) => s,
    }
}

fn ts_text(t: &TsText, now: u64, genuine: &str) -> String {
    match t {
        TsText::Genuine => genuine.to_owned(),
        TsText::Offset(d) => now.saturating_add_signed(i64::from(*d)).to_string(),
        TsText::Text(s) => s.clone(),
    }
}

fn pad(p: Pad) -> &'static str {
    match p {
        Pad::None => "",
        Pad::Space => " ",
        Pad::Tab => "\t",
        Pad::Both => " \t ",
    }
}

fn stripe_header(h: &StripeHeader, body: &[u8], now: u64) -> String {
    let (elements, pads) = match h {
        StripeHeader::Raw(s) => return s.clone(),
        StripeHeader::Built { elements, pad } => (elements, pad),
    };
    let first_t = elements
        .iter()
        .find_map(|e| match e {
            Elem::T(t) => Some(ts_text(t, now, STRIPE_T)),
            _ => None,
        })
        .unwrap_or_else(|| now.to_string());
    let parts: Vec<String> = elements
        .iter()
        .map(|e| match e {
            Elem::T(t) => format!("t={}", ts_text(t, now, STRIPE_T)),
            Elem::V1Good { upper } => format!(
                "v1={}",
                hex(
                    &hmac_ref(STRIPE_SECRET, &[first_t.as_bytes(), b".", body]),
                    *upper
                )
            ),
            Elem::V1Genuine => format!("v1={STRIPE_V1}"),
            Elem::V1Bytes(b) => format!("v1={}", hex(b, false)),
            Elem::V1Text(s) => format!("v1={s}"),
            Elem::V0(b) => format!("v0={}", hex(b, false)),
            Elem::Other { key, value } => format!("{key}={value}"),
            Elem::Raw(s) => s.clone(),
        })
        .collect();
    let mut out = String::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let p = pads.get(i).copied().unwrap_or(Pad::None);
        out.push_str(pad(p));
        out.push_str(part);
        out.push_str(pad(p));
    }
    out
}

/// Splits `body` at the given offsets.
fn chunks<'b>(body: &'b [u8], cuts: &[u16]) -> Vec<&'b [u8]> {
    let mut cuts: Vec<usize> = cuts
        .iter()
        .map(|&c| usize::from(c) % (body.len() + 1))
        .collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for c in cuts {
        out.push(&body[start..c]);
        start = c;
    }
    out.push(&body[start..]);
    out
}

// ---- the checks --------------------------------------------------------------------------------

fn check_stripe(header: &str, body: &[u8], now: u64, tol: u64, cuts: &[u16]) {
    let parsed = no_alloc("SignatureHeader::parse", || SignatureHeader::parse(header));
    let want = stripe_ref(header);
    let reference = match (&parsed, want) {
        (Ok(p), Ok(r)) => {
            assert_eq!(p.timestamp().as_secs(), r.t, "{header:?}");
            assert_eq!(p.v1_count(), r.v1.len(), "{header:?}");
            assert_eq!(p.v1_signatures().collect::<Vec<_>>(), r.v1, "{header:?}");
            Some(r)
        }
        (Err(e), Err(faults)) => {
            assert!(
                faults.contains(e),
                "{header:?}: {e:?} is not one of {faults:?}"
            );
            None
        }
        (got, Err(faults)) => panic!("{header:?}: parsed {got:?}, reference {faults:?}"),
        (got, Ok(r)) => panic!("{header:?}: {got:?}, reference t={} v1={:?}", r.t, r.v1),
    };

    let key = HmacKey::new(STRIPE_SECRET).unwrap();
    let (n, tolerance) = (Timestamp::from_secs(now), Duration::from_secs(tol));
    let got = no_alloc("stripe::verify", || {
        stripe::verify(&key, header, body, n, tolerance)
    });
    let want = match (&parsed, &reference) {
        (Err(e), _) => Err(StripeError::Header(*e)),
        (Ok(_), Some(r)) => match window_ref(r.t, now, tol) {
            Err(w) => Err(StripeError::Window(w)),
            Ok(()) => {
                let mac = hmac_ref(STRIPE_SECRET, &[r.t_text.as_bytes(), b".", body]);
                match r.v1.iter().position(|s| *s == mac) {
                    Some(i) => Ok((r.t, i)),
                    None => Err(StripeError::Mismatch),
                }
            }
        },
        (Ok(_), None) => unreachable!(),
    };
    assert_eq!(
        got.map(|v| (v.timestamp().as_secs(), v.matched())),
        want,
        "stripe {header:?} at {now}, tolerance {tol}"
    );
    if let Some(r) = &reference {
        assert_eq!(
            stripe::sign(&key, Timestamp::from_secs(r.t), body),
            hmac_ref(STRIPE_SECRET, &[r.t.to_string().as_bytes(), b".", body])
        );
    }
    // Streamed in pieces: the same answer.
    let streamed = stripe::Verifier::begin(&key, header, n, tolerance).and_then(|mut v| {
        for piece in chunks(body, cuts) {
            v.update(piece);
        }
        v.finish()
    });
    assert_eq!(streamed, got, "streamed in {} pieces", cuts.len() + 1);
}

fn check_hmac(timestamp: &str, signature: &str, body: &[u8], now: u64, tol: u64, cuts: &[u16]) {
    let key = HmacKey::new(HMAC_SECRET).unwrap();
    let (n, tolerance) = (Timestamp::from_secs(now), Duration::from_secs(tol));
    let got = no_alloc("hmac::verify", || {
        generic::verify(&key, timestamp, signature, body, n, tolerance)
    });
    // The documented order: timestamp syntax, signature syntax, window, MAC.
    match timestamp_ref(timestamp) {
        Err(faults) => match got {
            Err(HmacError::Timestamp(e)) => assert!(faults.contains(&e), "{timestamp:?}: {e:?}"),
            other => panic!("timestamp {timestamp:?}: {other:?}, faults {faults:?}"),
        },
        Ok(t) => {
            let want = hex_ref(signature)
                .map_err(HmacError::Signature)
                .and_then(|sig| {
                    window_ref(t, now, tol).map_err(HmacError::Window)?;
                    let mac = hmac_ref(HMAC_SECRET, &[timestamp.as_bytes(), b"|", body]);
                    if sig == mac {
                        Ok((t, sig))
                    } else {
                        Err(HmacError::Mismatch)
                    }
                });
            assert_eq!(
                got.map(|v| (v.timestamp().as_secs(), *v.signature())),
                want,
                "hmac t={timestamp:?} sig={signature:?} at {now}, tolerance {tol}"
            );
            assert_eq!(
                generic::sign(&key, Timestamp::from_secs(t), body),
                hmac_ref(HMAC_SECRET, &[t.to_string().as_bytes(), b"|", body])
            );
        }
    }
    let streamed =
        generic::Verifier::begin(&key, timestamp, signature, n, tolerance).and_then(|mut v| {
            for piece in chunks(body, cuts) {
                v.update(piece);
            }
            v.finish()
        });
    assert_eq!(streamed, got, "streamed in {} pieces", cuts.len() + 1);
}

const FIELDS: [Header; 4] = [
    Header::Timestamp,
    Header::Nonce,
    Header::Serial,
    Header::Signature,
];

fn check_wechat(fresh: bool, pairs: &[(Name, HeaderValue)], body: &Body, now: Clock, twice: bool) {
    let v = vectors();
    let genuine = &v.wechat[usize::from(fresh)];
    let genuine_value = |f: Header| -> &str {
        match f {
            Header::Timestamp => &genuine.timestamp,
            Header::Nonce => &genuine.nonce,
            Header::Serial => &genuine.serial,
            Header::Signature => &genuine.signature,
        }
    };
    let built: Vec<(String, String)> = pairs
        .iter()
        .map(|(name, value)| {
            let (name, field) = match name {
                Name::Timestamp => (
                    Header::Timestamp.header_name().to_owned(),
                    Some(Header::Timestamp),
                ),
                Name::Nonce => (Header::Nonce.header_name().to_owned(), Some(Header::Nonce)),
                Name::Serial => (
                    Header::Serial.header_name().to_owned(),
                    Some(Header::Serial),
                ),
                Name::Signature => (
                    Header::Signature.header_name().to_owned(),
                    Some(Header::Signature),
                ),
                Name::SignatureType => ("Wechatpay-Signature-Type".to_owned(), None),
                Name::Other(s) => (s.clone(), None),
                Name::Mangled { which, case, pad } => {
                    let f = FIELDS[usize::from(*which) % 4];
                    let mangled: String = f
                        .header_name()
                        .chars()
                        .enumerate()
                        .map(|(i, c)| {
                            if (case >> (i % 64)) & 1 == 1 {
                                c.to_ascii_uppercase()
                            } else {
                                c.to_ascii_lowercase()
                            }
                        })
                        .collect();
                    (
                        if *pad {
                            format!(" {mangled}\t")
                        } else {
                            mangled
                        },
                        Some(f),
                    )
                }
            };
            let value = match (value, field) {
                (HeaderValue::Genuine, Some(f)) => genuine_value(f).to_owned(),
                (HeaderValue::Padded, Some(f)) => format!(" \t{} ", genuine_value(f)),
                (HeaderValue::SignTest, _) => format!("{SIGNTEST_PREFIX}{}", genuine.signature),
                (HeaderValue::SerialVariant, _) => format!("00{}", genuine.serial.to_lowercase()),
                (HeaderValue::Text(s), _) => s.clone(),
                (_, None) => "RSA2".to_owned(),
            };
            (name, value)
        })
        .collect();

    let got = no_alloc("Headers::from_pairs", || {
        Headers::from_pairs(built.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    });
    // The reference: names case-insensitive (surrounding whitespace ignored), each of the four
    // exactly once and non-empty after trimming spaces and tabs; other headers ignored.
    let mut seen: [Vec<&str>; 4] = Default::default();
    for (name, value) in &built {
        if let Some(i) = FIELDS
            .iter()
            .position(|f| f.header_name().eq_ignore_ascii_case(name.trim()))
        {
            seen[i].push(value.trim_matches([' ', '\t']));
        }
    }
    let mut faults = Vec::new();
    for (i, values) in seen.iter().enumerate() {
        if values.len() > 1 {
            faults.push(WechatHeaderError::Repeated(FIELDS[i]));
        }
        if values.first().is_none_or(|v| v.is_empty()) {
            faults.push(WechatHeaderError::Missing(FIELDS[i]));
        }
    }
    let headers = match got {
        Ok(h) => {
            assert!(faults.is_empty(), "{built:?}: accepted, faults {faults:?}");
            assert_eq!(
                [h.timestamp, h.nonce, h.serial, h.signature],
                [seen[0][0], seen[1][0], seen[2][0], seen[3][0]]
            );
            h
        }
        Err(e) => {
            assert!(
                faults.contains(&e),
                "{built:?}: {e:?} is not one of {faults:?}"
            );
            return;
        }
    };

    let body: &[u8] = match body {
        Body::Genuine => &genuine.body,
        Body::Bytes(b) => b,
    };
    let now = clock(now, genuine.timestamp.parse().unwrap());
    let mut guard: ReplayGuard<8> = ReplayGuard::new();
    let before = guard.clone();
    let got = wechatpay::verify(
        &headers,
        body,
        &v.keys,
        &mut guard,
        Timestamp::from_secs(now),
    );

    // §3.1's order: timestamp syntax; nonce, window (floor: the guard is new); signature; replay.
    let signed = [
        headers.timestamp.as_bytes(),
        b"\n",
        headers.nonce.as_bytes(),
        b"\n",
        body,
        b"\n",
    ]
    .concat();
    let expect_syntax = match timestamp_ref(headers.timestamp) {
        Err(faults) => {
            match got {
                Err(WechatError::Timestamp(e)) => assert!(faults.contains(&e)),
                other => panic!("{:?}: {other:?}", headers.timestamp),
            }
            None
        }
        Ok(t) => Some(t),
    };
    if let Some(t) = expect_syntax {
        let nonce = headers.nonce.as_bytes();
        let window = window_ref(t, now, 300);
        if nonce.len() > MAX_NONCE_LEN {
            assert_eq!(
                got,
                Err(WechatError::Replay(ReplayError::InvalidNonce {
                    len: nonce.len()
                }))
            );
        } else if let Err(w) = window {
            let e = match w {
                WindowError::Stale { .. } => ReplayError::Stale,
                _ => ReplayError::FromFuture,
            };
            assert_eq!(got, Err(WechatError::Replay(e)), "t={t} now={now}");
        } else if headers.signature.starts_with(SIGNTEST_PREFIX) {
            assert_eq!(got, Err(WechatError::SignTest));
        } else {
            let key = v.keys.iter().position(|k| {
                let id = k.id();
                id.eq_ignore_ascii_case(headers.serial.trim_start_matches('0'))
            });
            match (key, got) {
                (None, got) => {
                    assert_eq!(got, Err(WechatError::UnknownSerial), "{:?}", headers.serial)
                }
                (Some(i), Ok(verified)) => {
                    assert_eq!(verified.key_index(), i);
                    assert_eq!(verified.timestamp().as_secs(), t);
                    let w = &v.wechat[i];
                    let genuine_signed = [
                        w.timestamp.as_bytes(),
                        b"\n",
                        w.nonce.as_bytes(),
                        b"\n",
                        &w.body,
                        b"\n",
                    ]
                    .concat();
                    assert_eq!(
                        signed, genuine_signed,
                        "verified a message the key never signed"
                    );
                    assert_eq!(headers.signature, w.signature);
                }
                (Some(_), Err(WechatError::Signature(_))) => {}
                (Some(_), other) => panic!("signature stage: {other:?}"),
            }
        }
    }
    match got {
        Ok(_) => {
            assert_eq!(guard.len(), 1);
            if twice {
                let again = guard.clone();
                let second = wechatpay::verify(
                    &headers,
                    body,
                    &v.keys,
                    &mut guard,
                    Timestamp::from_secs(now),
                );
                assert_eq!(second, Err(WechatError::Replay(ReplayError::Replayed)));
                assert_eq!(guard, again);
            }
        }
        Err(_) => assert_eq!(guard, before, "a refusal changed the replay guard"),
    }
}

fuzz_target!(|case: Case| {
    match case {
        Case::Stripe {
            header,
            body,
            now,
            tolerance: tol,
            chunks: cuts,
        } => {
            let body: &[u8] = match &body {
                Body::Genuine => STRIPE_BODY,
                Body::Bytes(b) => b,
            };
            let now = clock(now, 1_614_264_600);
            let header = stripe_header(&header, body, now);
            check_stripe(&header, body, now, tolerance(tol), &cuts);
        }
        Case::Hmac {
            timestamp,
            signature,
            body,
            now,
            tolerance: tol,
            chunks: cuts,
        } => {
            let body: &[u8] = match &body {
                Body::Genuine => STRIPE_BODY,
                Body::Bytes(b) => b,
            };
            let now = clock(now, 1_700_000_000);
            let t = ts_text(&timestamp, now, "1700000000");
            let signature = match signature {
                SigText::Good { upper } => {
                    hex(&hmac_ref(HMAC_SECRET, &[t.as_bytes(), b"|", body]), upper)
                }
                SigText::Bytes(b) => hex(&b, false),
                SigText::Text(s) => s,
            };
            check_hmac(&t, &signature, body, now, tolerance(tol), &cuts);
        }
        Case::Wechat {
            fresh,
            headers,
            body,
            now,
            twice,
        } => check_wechat(fresh, &headers, &body, now, twice),
    }
});
