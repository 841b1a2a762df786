//! docs/spec.md §4.2, encrypted responses: `<method>_response` is a base64 AES-CBC string, signed
//! as the string token (quotes included), verified first and then decrypted.
#![cfg(all(feature = "rsa", feature = "alipay-aes"))]

use paystate::alipay::encryption::{AesError, AesKey};
use paystate::alipay::response::{ResponseError, signed_response, verify_response};
use paystate::signature::{Rsa2PrivateKey, Rsa2PublicKey, SignatureError};

const METHOD: &str = "alipay.trade.query";
const AES_KEY: &str = "aGVsbG8gd29ybGQgMTIzNA=="; // "hello world 1234": 16 bytes, AES-128
const OBJECT: &str = r#"{"code":"10000","msg":"Success","out_trade_no":"order-42","trade_status":"TRADE_SUCCESS","total_amount":"99.90","subject":"绿茶"}"#;

/// Plays Alipay: the test key pair stands in for Alipay's.
fn alipay_key() -> Rsa2PrivateKey {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/keys/app2048.pkcs8.pem"
    );
    Rsa2PrivateKey::parse(&std::fs::read(path).unwrap()).unwrap()
}

fn public() -> Rsa2PublicKey {
    alipay_key().public_key()
}

fn encrypt(key: &AesKey, plain: &[u8]) -> String {
    let mut out = vec![0u8; plain.len() * 3 + 64];
    key.encrypt_base64(plain, &mut out).unwrap().to_owned()
}

/// A response whose `<method>_response` is the JSON string `token` (without quotes), signed
/// over `signed`.
fn response(token: &str, signed: &str) -> String {
    let sign = alipay_key().sign_base64(signed.as_bytes()).unwrap();
    format!(r#"{{"alipay_trade_query_response":"{token}","sign":"{sign}"}}"#)
}

fn genuine(token: &str) -> String {
    response(token, &format!("\"{token}\""))
}

#[test]
fn an_encrypted_response_verifies_then_decrypts() {
    for key_text in [
        AES_KEY,
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX", // 24 bytes: AES-192
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", // 32 bytes: AES-256
    ] {
        let key = AesKey::from_base64(key_text).unwrap();
        let token = encrypt(&key, OBJECT.as_bytes());
        let raw = genuine(&token);
        let verified = verify_response(&raw, METHOD, &public()).unwrap();
        assert!(verified.is_encrypted());
        assert_eq!(verified.content, format!("\"{token}\""));
        let mut out = vec![0u8; verified.content.len()];
        assert_eq!(
            verified.decrypt(&key, &mut out),
            Ok(OBJECT),
            "AES-{}",
            key.bits()
        );
        let parsed: serde_json::Value =
            serde_json::from_str(verified.decrypt(&key, &mut out).unwrap()).unwrap();
        assert_eq!(parsed["trade_status"], "TRADE_SUCCESS");
    }
}

#[test]
fn the_signed_content_is_the_token_with_its_quotes() {
    let key = AesKey::from_base64(AES_KEY).unwrap();
    let token = encrypt(&key, OBJECT.as_bytes());
    // Signed without the quotes: not what Alipay signs.
    let raw = response(&token, &token);
    assert_eq!(
        verify_response(&raw, METHOD, &public()).err(),
        Some(ResponseError::Signature(SignatureError::Mismatch))
    );
    // One ciphertext character changed after signing.
    let raw = genuine(&token);
    let flipped = if token.starts_with('A') { "B" } else { "A" };
    let tampered = raw.replacen(&format!(":\"{}", &token[..1]), &format!(":\"{flipped}"), 1);
    assert_ne!(tampered, raw);
    assert_eq!(
        verify_response(&tampered, METHOD, &public()).err(),
        Some(ResponseError::Signature(SignatureError::Mismatch))
    );
}

#[test]
fn an_escaped_slash_in_the_ciphertext_is_decoded() {
    let key = AesKey::from_base64(AES_KEY).unwrap();
    let (plain, token) = (0..200)
        .map(|i| format!(r#"{{"code":"10000","n":"{i}"}}"#))
        .map(|p| {
            let t = encrypt(&key, p.as_bytes());
            (p, t)
        })
        .find(|(_, t)| t.contains('/'))
        .unwrap();
    let escaped = token.replace('/', "\\/");
    let raw = genuine(&escaped);
    let verified = verify_response(&raw, METHOD, &public()).unwrap();
    let mut out = vec![0u8; verified.content.len()];
    assert_eq!(verified.decrypt(&key, &mut out), Ok(plain.as_str()));
}

#[test]
fn decryption_failures_are_typed() {
    let key = AesKey::from_base64(AES_KEY).unwrap();
    let mut block = [0u8; 32];
    // One block of 'a' without its padding block: the last byte 0x61 is no PKCS#7 padding.
    let one_block = {
        let cipher = key.encrypt(&[b'a'; 16], &mut block).unwrap();
        base64(&cipher[..16])
    };
    let not_object = encrypt(&key, b"[\"10000\"]");
    let wrong_key = AesKey::from_base64("AAECAwQFBgcICQoLDA0ODw==").unwrap();
    for (token, key, err) in [
        (
            one_block.as_str(),
            &key,
            ResponseError::Decryption(AesError::BadPadding),
        ),
        (
            "QUJDREVGR0hJSktMTU5P", // 15 bytes
            &key,
            ResponseError::Decryption(AesError::CiphertextLength { len: 15 }),
        ),
        (
            "QUJD@A==",
            &key,
            ResponseError::Decryption(AesError::CiphertextNotBase64),
        ),
        (
            "QUJD\\nA==",
            &key,
            ResponseError::Decryption(AesError::CiphertextNotBase64),
        ),
        (not_object.as_str(), &key, ResponseError::DecryptedNotObject),
    ] {
        let raw = genuine(token);
        let verified = verify_response(&raw, METHOD, &public()).unwrap();
        let mut out = vec![0u8; verified.content.len()];
        assert_eq!(verified.decrypt(key, &mut out), Err(err), "{token}");
        assert_eq!(
            ResponseError::from(AesError::BadPadding).code(),
            "bad_padding"
        );
    }
    // The wrong AES key: never the object.
    let raw = genuine(&encrypt(&key, OBJECT.as_bytes()));
    let verified = verify_response(&raw, METHOD, &public()).unwrap();
    let mut out = vec![0u8; verified.content.len()];
    assert!(matches!(
        verified.decrypt(&wrong_key, &mut out),
        Err(ResponseError::Decryption(AesError::BadPadding) | ResponseError::DecryptedNotObject)
    ));
    // A buffer shorter than the content.
    let mut short = vec![0u8; verified.content.len() - 1];
    assert_eq!(
        verified.decrypt(&key, &mut short),
        Err(ResponseError::Decryption(AesError::BufferTooSmall {
            needed: verified.content.len()
        }))
    );
}

#[test]
fn keys_are_checked() {
    assert_eq!(
        AesKey::from_base64("not base64!").err(),
        Some(AesError::KeyNotBase64)
    );
    assert_eq!(
        AesKey::from_base64("AAECAwQFBgcICQoLDA0O").err(),
        Some(AesError::KeyLength { len: 15 })
    );
    assert_eq!(
        AesKey::from_base64(&"A".repeat(88)).err(),
        Some(AesError::KeyLength { len: 66 })
    );
    assert_eq!(
        AesKey::from_bytes(&[0; 20]).err(),
        Some(AesError::KeyLength { len: 20 })
    );
    assert_eq!(AesError::KeyLength { len: 20 }.code(), "aes_key_length");
    assert_eq!(AesError::KeyNotBase64.code(), "aes_key_not_base64");
}

#[test]
fn unencrypted_responses_are_unchanged() {
    let raw = r#"{"alipay_trade_query_response":{"code":"10000"},"sign":"c2ln"}"#;
    let found = signed_response(raw, METHOD).unwrap();
    assert!(!found.is_encrypted());
    let key = AesKey::from_base64(AES_KEY).unwrap();
    let mut out = [0u8; 64];
    assert_eq!(found.decrypt(&key, &mut out), Ok(r#"{"code":"10000"}"#));
    // Only `<method>_response` may be a string.
    assert_eq!(
        signed_response(r#"{"error_response":"QUJD","sign":"c2ln"}"#, METHOD).err(),
        Some(ResponseError::ResponseNotObject)
    );
}

/// Standard base64, padded (what Alipay's SDKs write).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
