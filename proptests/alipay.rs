//! Properties of the Alipay parsers (docs/spec.md §4): the form decoder agrees with a plain
//! reference decoder on any bytes, decoding inverts encoding, the signed content is the sorted
//! join, and the response scan returns exactly the text of the response value.

use std::collections::BTreeMap;

use paystate::alipay::content::{SignRule, SignedContent};
use paystate::alipay::form::{Form, FormError, encode_pairs};
use paystate::alipay::response::signed_response;
use proptest::prelude::*;

/// The strict decoding of docs/spec.md §4, written plainly with a map: `Err(())` wherever the
/// crate must refuse the body.
fn reference_decode(body: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, ()> {
    fn component(raw: &[u8]) -> Result<Vec<u8>, ()> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            match raw[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = raw.get(i + 1..i + 3).ok_or(())?;
                    let hex = std::str::from_utf8(hex).map_err(|_| ())?;
                    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        return Err(());
                    }
                    out.push(u8::from_str_radix(hex, 16).map_err(|_| ())?);
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        Ok(out)
    }
    if body.is_empty() {
        return Err(());
    }
    let mut map = BTreeMap::new();
    for pair in body.split(|&b| b == b'&') {
        let eq = pair.iter().position(|&b| b == b'=').ok_or(())?;
        let key = component(&pair[..eq])?;
        let value = component(&pair[eq + 1..])?;
        if key.is_empty() || map.insert(key, value).is_some() {
            return Err(());
        }
    }
    // UTF-8 unless the form declares GBK (or GB2312); any other charset is refused.
    let gbk = match map.get(b"charset".as_slice()) {
        None => false,
        Some(c) if c.eq_ignore_ascii_case(b"utf-8") || c.eq_ignore_ascii_case(b"utf8") => false,
        Some(c) if c.eq_ignore_ascii_case(b"gbk") || c.eq_ignore_ascii_case(b"gb2312") => true,
        Some(_) => return Err(()),
    };
    for (k, v) in &map {
        std::str::from_utf8(k).map_err(|_| ())?;
        if !gbk {
            std::str::from_utf8(v).map_err(|_| ())?;
        }
    }
    if map.len() > paystate::alipay::form::MAX_FIELDS {
        return Err(());
    }
    Ok(map)
}

fn decoded(body: &[u8]) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, FormError> {
    let mut buf = vec![0u8; body.len()];
    let form = Form::decode(body, &mut buf)?;
    let keys: Vec<&str> = form.fields().iter().map(|f| f.key).collect();
    assert!(
        keys.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()),
        "sorted, unique"
    );
    Ok(form
        .fields()
        .iter()
        .map(|f| (f.key.as_bytes().to_vec(), f.value.to_vec()))
        .collect())
}

/// Bytes that hit every branch of the decoder often: mostly well-shaped pairs of a small
/// alphabet (so that duplicates, escapes and charsets are frequent), sometimes anything.
fn form_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = |min: usize| {
        prop::collection::vec(
            prop_oneof![
                24 => prop::sample::select(vec![
                    &b"a"[..], b"b", b"+", b"%2F", b"%e8%af%ad", b"%61", b"0", b"f",
                ])
                .prop_map(<[u8]>::to_vec),
                1 => prop::sample::select(vec![&b"%"[..], b"%E8", b"%g0", b"=", b"&"])
                    .prop_map(<[u8]>::to_vec),
                1 => any::<u8>().prop_map(|b| vec![b]),
            ],
            min..6,
        )
        .prop_map(|tokens| tokens.concat())
    };
    let pair = prop_oneof![
        4 => (piece(1), piece(0)).prop_map(|(k, v)| [k, b"=".to_vec(), v].concat()),
        1 => Just(b"charset=utf-8".to_vec()),
        1 => Just(b"charset=GBK".to_vec()),
        1 => Just(b"charset=gb2312".to_vec()),
        1 => Just(b"a=1".to_vec()),
    ];
    prop_oneof![
        4 => prop::collection::vec(pair, 1..4).prop_map(|pairs| pairs.join(&b'&')),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_]{1,12}",
        ".{0,12}",
        prop::sample::select(vec![
            "+".to_owned(),
            "%".to_owned(),
            "&=".to_owned(),
            " ".to_owned(),
            "\u{3000}\t".to_owned(),
            "\u{a0}".to_owned(),
        ]),
    ]
}

/// A JSON value as Alipay might send it.
fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        ".{0,8}".prop_map(serde_json::Value::String),
        prop::sample::select(vec!["a}b{c", "\"}\\", "]", "\\u0000"])
            .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn form_decoder_agrees_with_the_reference(body in form_bytes()) {
        let ours = decoded(&body);
        let reference = reference_decode(&body);
        prop_assert_eq!(ours.is_ok(), reference.is_ok(), "{:?} vs {:?}", ours, reference);
        if let (Ok(ours), Ok(reference)) = (ours, reference) {
            prop_assert_eq!(ours, reference);
        }
    }

    #[test]
    fn form_decoder_never_panics(body in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decoded(&body);
    }

    #[test]
    fn decoding_inverts_encoding(map in prop::collection::btree_map(text(), text(), 1..20)) {
        let map: BTreeMap<String, String> =
            map.into_iter().filter(|(k, _)| !k.is_empty() && k != "charset").collect();
        prop_assume!(!map.is_empty());
        let mut body = String::new();
        encode_pairs(map.iter().map(|(k, v)| (k.as_str(), v.as_str())), &mut body).unwrap();
        let mut buf = vec![0u8; body.len()];
        let form = Form::decode(body.as_bytes(), &mut buf).unwrap();
        let back: BTreeMap<String, String> =
            form.fields().iter().map(|f| (f.key.to_owned(), f.value_str().unwrap().to_owned())).collect();
        prop_assert_eq!(&back, &map);

        // The signed content is the sorted join of the non-blank pairs (Java's whitespace:
        // ASCII controls 9..=13 and 28..=31, space separators but the no-break ones, line and
        // paragraph separators), minus sign (and sign_type under V1); its digest is the
        // SHA-256 of that string.
        let blank = |t: &str| {
            t.chars().all(|c| {
                matches!(c as u32, 9..=13 | 28..=32 | 0x1680 | 0x2000..=0x2006 | 0x2008..=0x200A
                    | 0x2028 | 0x2029 | 0x205F | 0x3000)
            })
        };
        for rule in [SignRule::V1, SignRule::V2] {
            let expected: Vec<String> = map
                .iter()
                .filter(|(k, v)| !(blank(v) || blank(k) || *k == "sign" || (rule == SignRule::V1 && *k == "sign_type")))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let content = SignedContent::new(&form, rule);
            prop_assert_eq!(content.to_string(), expected.join("&"));
            use sha2::Digest;
            prop_assert_eq!(content.digest(), <[u8; 32]>::from(sha2::Sha256::digest(expected.join("&"))));
        }
    }

    #[test]
    fn response_scan_returns_the_value_text(
        fields in prop::collection::btree_map("[a-z]{1,4}", json(), 0..5),
        others in prop::collection::vec(json(), 0..3),
        pretty in any::<bool>(),
        sign_first in any::<bool>(),
    ) {
        let value = serde_json::Value::Object(fields.into_iter().collect());
        let text = if pretty {
            serde_json::to_string_pretty(&value).unwrap()
        } else {
            serde_json::to_string(&value).unwrap()
        };
        let mut members = vec![format!("\"alipay_trade_query_response\" :\n {text}")];
        for (i, other) in others.iter().enumerate() {
            members.push(format!("\"other_{i}\":{}", serde_json::to_string(other).unwrap()));
        }
        let sign = "\"sign\":\"c2ln\"".to_owned();
        if sign_first { members.insert(0, sign) } else { members.push(sign) }
        let raw = format!("{{{}}}", members.join(" , "));
        let found = signed_response(&raw, "alipay.trade.query").unwrap();
        prop_assert_eq!(found.content, text.as_str());
        prop_assert_eq!(found.sign, Some("c2ln"));
        let parsed: serde_json::Value = serde_json::from_str(found.content).unwrap();
        prop_assert_eq!(parsed, value);
    }

    #[test]
    fn response_scan_never_panics(raw in ".{0,200}", cut in any::<prop::sample::Index>()) {
        let _ = signed_response(&raw, "m");
        let valid = r#"{"m_response":{"a":[1,"}"],"b":{"c":null}},"sign":"QQ=="}"#;
        let at = cut.index(valid.len() + 1);
        // Every strict prefix of a valid response is refused.
        if at < valid.len() {
            prop_assert!(signed_response(&valid[..at], "m").is_err());
        }
    }
}

#[test]
fn the_form_generator_reaches_both_verdicts() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut ok, mut err) = (0, 0);
    for _ in 0..500 {
        let body = form_bytes().new_tree(&mut runner).unwrap().current();
        if decoded(&body).is_ok() {
            ok += 1
        } else {
            err += 1
        }
    }
    assert!(ok > 100 && err > 100, "ok {ok}, err {err}");
}
