//! Alipay's own signatures (tests/data/alipay/README.md): valid as given, invalid when one
//! byte, the rule or the key changes.
#![cfg(feature = "rsa")]

use paystate::alipay::content::{SignRule, SignedContent};
use paystate::alipay::form::{Form, FormError, encode_pairs};
use paystate::alipay::notify::Notification;
use paystate::alipay::response::{
    ResponseError, ResponseKind, SignedResponse, signed_response, verify_response,
};
use paystate::signature::{Rsa2PublicKey, SignatureError};

fn data(name: &str) -> String {
    let path = format!("{}/tests/data/alipay/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn key(name: &str) -> Rsa2PublicKey {
    Rsa2PublicKey::parse(data(name).as_bytes()).unwrap()
}

fn v1_key() -> Rsa2PublicKey {
    key("alipay-public-key-trade-notify-v1.pem")
}

fn v2_key() -> Rsa2PublicKey {
    key("alipay-notify-sign-public-key-v2.pem")
}

/// The parameters of a vector, in file order.
fn params(name: &str) -> Vec<(String, String)> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&data(name)).unwrap();
    map.into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap().to_owned()))
        .collect()
}

fn body_of(params: &[(String, String)]) -> String {
    let mut body = String::new();
    encode_pairs(
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &mut body,
    )
    .unwrap();
    body
}

/// Decodes `body` and checks it under `rule`; the signed content comes back too.
fn verify(body: &str, rule: SignRule, key: &Rsa2PublicKey) -> (Result<(), SignatureError>, String) {
    let mut buf = vec![0u8; body.len()];
    let form = Form::decode(body.as_bytes(), &mut buf).unwrap();
    let content = SignedContent::new(&form, rule).to_string();
    (Notification::verify(&form, rule, key).map(|_| ()), content)
}

#[test]
fn trade_notification_v1_verifies_as_given() {
    let body = data("trade_notify_v1.form_body.txt");
    let (verdict, content) = verify(&body, SignRule::V1, &v1_key());
    assert_eq!(content, data("trade_notify_v1.sign_content.txt"));
    assert_eq!(verdict, Ok(()));
    // The body re-encoded by our encoder from the SDK's decoded parameters verifies too (it
    // leaves '*' as it is, like Java's URLEncoder, where the committed body has "%2A").
    let ours = body_of(&params("trade_notify_v1.params.json"));
    assert_eq!(ours, body.replace("%2A", "*"));
    assert_eq!(verify(&ours, SignRule::V1, &v1_key()).0, Ok(()));
}

#[test]
fn trade_notification_v1_fails_under_v2_or_another_key() {
    let body = data("trade_notify_v1.form_body.txt");
    assert_eq!(
        verify(&body, SignRule::V2, &v1_key()).0,
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify(&body, SignRule::V1, &v2_key()).0,
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify(&body, SignRule::V1, &key("alipay-public-key.pem")).0,
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn every_changed_value_fails() {
    let original = params("trade_notify_v1.params.json");
    for i in 0..original.len() {
        let mut p = original.clone();
        let (k, v) = &mut p[i];
        // (A changed charset is refused by the decoder: tested with the form.)
        if k == "sign" || k == "sign_type" || k == "charset" {
            continue;
        }
        // Change one byte of the value: its last character becomes another ASCII one.
        let last = v.pop().unwrap();
        v.push(if last == '1' { '2' } else { '1' });
        let k = k.clone();
        let (verdict, _) = verify(&body_of(&p), SignRule::V1, &v1_key());
        assert_eq!(verdict, Err(SignatureError::Mismatch), "{k} changed");
    }
    // Under V1, sign_type is not covered: changing it changes nothing (the algorithm is the
    // host's, never the message's).
    let mut p = original.clone();
    p.iter_mut().find(|(k, _)| k == "sign_type").unwrap().1 = "RSA".into();
    assert_eq!(verify(&body_of(&p), SignRule::V1, &v1_key()).0, Ok(()));
    // Dropping a field, or adding one, fails.
    let mut p = original.clone();
    p.retain(|(k, _)| k != "buyer_id");
    assert_eq!(
        verify(&body_of(&p), SignRule::V1, &v1_key()).0,
        Err(SignatureError::Mismatch)
    );
    let mut p = original.clone();
    p.push(("passback_params".into(), "x".into()));
    assert_eq!(
        verify(&body_of(&p), SignRule::V1, &v1_key()).0,
        Err(SignatureError::Mismatch)
    );
    // An added field with an empty value is not signed content: still valid.
    let mut p = original;
    p.push(("passback_params".into(), String::new()));
    assert_eq!(verify(&body_of(&p), SignRule::V1, &v1_key()).0, Ok(()));
}

#[test]
fn every_changed_signature_byte_fails() {
    let original = params("trade_notify_v1.params.json");
    let sign = &original.iter().find(|(k, _)| k == "sign").unwrap().1;
    for at in (0..sign.len() - 2).step_by(7) {
        let mut bad = sign.clone().into_bytes();
        bad[at] = if bad[at] == b'A' { b'B' } else { b'A' };
        let mut p = original.clone();
        p.iter_mut().find(|(k, _)| k == "sign").unwrap().1 = String::from_utf8(bad).unwrap();
        let (verdict, _) = verify(&body_of(&p), SignRule::V1, &v1_key());
        assert!(
            matches!(
                verdict,
                Err(SignatureError::Mismatch | SignatureError::InvalidBase64)
            ),
            "sign byte {at}: {verdict:?}"
        );
    }
}

#[test]
fn wire_mistakes_are_named() {
    let body = data("trade_notify_v1.form_body.txt");
    // The signature's '+' sent unencoded: it decodes to a space.
    let plus_raw = body.replace("%2B", "+");
    let (verdict, _) = verify(&plus_raw, SignRule::V1, &v1_key());
    assert!(
        matches!(
            verdict,
            Err(SignatureError::InvalidBase64Char { byte: b' ', .. })
        ),
        "{verdict:?}"
    );
    // Decoded twice: a host that decoded the body and then encoded it again would have
    // double-encoded values; decoded once they keep a literal "%3A".
    let double = body.replace("%3A", "%253A");
    assert_eq!(
        verify(&double, SignRule::V1, &v1_key()).0,
        Err(SignatureError::Mismatch)
    );
    // Pairs in another order: the signed content is sorted, the verdict is the same.
    let mut pairs: Vec<&str> = body.split('&').collect();
    pairs.reverse();
    assert_eq!(verify(&pairs.join("&"), SignRule::V1, &v1_key()).0, Ok(()));
    // A repeated key is refused before any signature check.
    let dup = format!("{body}&total_amount=100.00");
    let mut buf = vec![0u8; dup.len()];
    assert!(matches!(
        Form::decode(dup.as_bytes(), &mut buf),
        Err(FormError::DuplicateKey { .. })
    ));
    // No sign at all.
    let unsigned: Vec<&str> = body
        .split('&')
        .filter(|p| !p.starts_with("sign="))
        .collect();
    assert_eq!(
        verify(&unsigned.join("&"), SignRule::V1, &v1_key()).0,
        Err(SignatureError::Missing)
    );
}

#[test]
fn gateway_notification_v2_verifies_only_under_v2() {
    let p = params("servicemarket_notify_v2.params.json");
    let body = body_of(&p);
    let (verdict, content) = verify(&body, SignRule::V2, &v2_key());
    assert_eq!(content, data("servicemarket_notify_v2.sign_content.txt"));
    assert_eq!(verdict, Ok(()));
    assert_eq!(
        verify(&body, SignRule::V1, &v2_key()).0,
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify(&body, SignRule::V2, &v1_key()).0,
        Err(SignatureError::Mismatch)
    );
    // Under V2 sign_type is covered: changing it fails.
    let mut changed = p.clone();
    changed
        .iter_mut()
        .find(|(k, _)| k == "sign_type")
        .unwrap()
        .1 = "RSA".into();
    assert_eq!(
        verify(&body_of(&changed), SignRule::V2, &v2_key()).0,
        Err(SignatureError::Mismatch)
    );
    // One changed byte in a Chinese value.
    let mut changed = p;
    changed.iter_mut().find(|(k, _)| k == "title").unwrap().1 = "麦禾商城模板".into();
    assert_eq!(
        verify(&body_of(&changed), SignRule::V2, &v2_key()).0,
        Err(SignatureError::Mismatch)
    );
}

const UPLOAD: &str = "alipay.open.file.upload";

#[test]
fn sync_response_verifies_over_the_raw_text() {
    let raw = data("sync_response_file_upload.raw.json");
    let key = key("alipay-public-key.pem");
    let verified = verify_response(&raw, UPLOAD, &key).unwrap();
    assert_eq!(
        verified.content,
        data("sync_response_file_upload.sign_content.txt")
    );
    assert_eq!(verified.kind, ResponseKind::Method);

    // With the sign first and whitespace around it: the same content, still valid.
    let sign = signed_response(&raw, UPLOAD).unwrap().sign.unwrap();
    let moved = format!(
        "{{ \"sign\" : \"{sign}\" ,\n \"alipay_open_file_upload_response\" :{} }}\n",
        verified.content
    );
    assert_eq!(
        verify_response(&moved, UPLOAD, &key).map(|r| r.content),
        Ok(verified.content)
    );
    // The same JSON re-serialised (here: one space after each colon) is other bytes.
    let reserialised = raw.replacen("\"code\":", "\"code\": ", 1);
    assert_eq!(
        verify_response(&reserialised, UPLOAD, &key),
        Err(ResponseError::Signature(SignatureError::Mismatch))
    );
    // One changed byte of the content.
    let tampered = raw.replace("CAxAToWB1Js", "CAxAToWB1Jt");
    assert_eq!(
        verify_response(&tampered, UPLOAD, &key),
        Err(ResponseError::Signature(SignatureError::Mismatch))
    );
    // Another key, another method.
    assert_eq!(
        verify_response(&raw, UPLOAD, &v1_key()),
        Err(ResponseError::Signature(SignatureError::Mismatch))
    );
    assert_eq!(
        verify_response(&raw, "alipay.trade.query", &key),
        Err(ResponseError::MissingResponse)
    );
    // The signature as JSON may escape '/' as "\/": the same signature.
    let escaped = raw.replace(
        &format!("\"{sign}\""),
        &format!("\"{}\"", sign.replace('/', "\\/")),
    );
    assert_ne!(escaped, raw);
    assert_eq!(
        verify_response(&escaped, UPLOAD, &key).map(|r| r.content),
        Ok(verified.content)
    );
}

#[test]
fn extraction_cases() {
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&data("sync_response_extraction_cases.json")).unwrap();
    assert_eq!(cases.len(), 5);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let raw = case["raw"].as_str().unwrap();
        let method = case["response_key"]
            .as_str()
            .unwrap()
            .strip_suffix("_response")
            .unwrap()
            .replace('_', ".");
        let found = signed_response(raw, &method);
        match case["expected"].as_str() {
            Some(expected) => {
                let found = found.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(found.content, expected, "{name}");
                assert_eq!(found.kind, ResponseKind::Method, "{name}");
                assert!(found.sign.is_some(), "{name}");
            }
            None => {
                // The unsigned error_response: found, marked as an error, and never verified.
                let found: SignedResponse<'_> = found.unwrap();
                assert_eq!(
                    (found.kind, found.sign),
                    (ResponseKind::Error, None),
                    "{name}"
                );
                assert!(found.content.contains("\"code\":\"40002\""));
                assert_eq!(
                    found.verify_with(|_, _| Ok(())),
                    Err(ResponseError::Unsigned {
                        kind: ResponseKind::Error
                    })
                );
            }
        }
    }
}
