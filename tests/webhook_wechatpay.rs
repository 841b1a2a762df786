//! WeChat Pay v3: the official SDK's callback vector, resource decryption with 16- and 32-byte
//! keys, tampering, headers, and `trade_state` driving a payment.
#![cfg(feature = "sdk-test-vectors")] // the SDK vectors use 16-byte keys

use base64ct::{Base64, Encoding};
use paystate::webhook::wechatpay::{
    self, ApiV3Key, DecryptError, Header, HeaderError, Headers, KeyLengthError, Resource,
    TradeState, UnknownTradeState,
};
use paystate::{Currency, EventId, Input, Money, Outcome, Payment, Status, Timestamp};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

const BODY: &str = include_str!("data/wechatpay_v3_notify/body.json");
const SIGNED_MESSAGE: &[u8] = include_bytes!("data/wechatpay_v3_notify/signed_message.bin");
const EXPECTED_PLAINTEXT: &str = include_str!("data/wechatpay_v3_notify/expected_plaintext.json");
const SDK_KEY: &[u8] = include_bytes!("data/wechatpay_v3_notify/apiv3_key.txt");

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

fn headers_json() -> serde_json::Value {
    json(include_str!("data/wechatpay_v3_notify/headers.json"))
}

fn sdk_key() -> ApiV3Key {
    ApiV3Key::aes128_for_sdk_test_vectors(SDK_KEY.try_into().unwrap())
}

/// The notification's resource fields, owned.
struct Res {
    algorithm: String,
    ciphertext: String,
    associated_data: String,
    nonce: String,
}

impl Res {
    fn of_body(body: &str) -> Res {
        let r = &json(body)["resource"];
        Res {
            algorithm: r["algorithm"].as_str().unwrap().into(),
            ciphertext: r["ciphertext"].as_str().unwrap().into(),
            associated_data: r["associated_data"].as_str().unwrap().into(),
            nonce: r["nonce"].as_str().unwrap().into(),
        }
    }
    fn get(&self) -> Resource<'_> {
        Resource {
            algorithm: &self.algorithm,
            ciphertext: &self.ciphertext,
            associated_data: &self.associated_data,
            nonce: &self.nonce,
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    let mut buf = vec![0u8; bytes.len().div_ceil(3) * 4];
    Base64::encode(bytes, &mut buf).unwrap().to_owned()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn the_signed_message_is_timestamp_nonce_body_lines() {
    let h = headers_json();
    let ts = h["Wechatpay-Timestamp"].as_str().unwrap();
    let nonce = h["Wechatpay-Nonce"].as_str().unwrap();
    assert_eq!(
        SIGNED_MESSAGE,
        format!("{ts}\n{nonce}\n{BODY}\n").as_bytes()
    );
    let digest: [u8; 32] = Sha256::digest(SIGNED_MESSAGE).into();
    assert_eq!(
        wechatpay::message_digest(ts, nonce, BODY.as_bytes()),
        digest
    );
    assert_ne!(
        wechatpay::message_digest(ts, nonce, format!("{BODY} ").as_bytes()),
        digest
    );
}

#[test]
fn the_sdk_notification_resource_decrypts() {
    let res = Res::of_body(BODY);
    let mut out = [0u8; 512];
    let plain = res.get().decrypt(&sdk_key(), &mut out).unwrap();
    assert_eq!(plain, EXPECTED_PLAINTEXT.as_bytes());
    // The buffer needs the ciphertext and its tag; the plaintext is 16 bytes shorter.
    let needed = wechatpay::decoded_len(res.ciphertext.as_bytes()).unwrap();
    assert_eq!(needed, EXPECTED_PLAINTEXT.len() + 16);
    let mut exact = vec![0u8; needed];
    assert_eq!(
        res.get().decrypt(&sdk_key(), &mut exact).unwrap(),
        EXPECTED_PLAINTEXT.as_bytes()
    );
    let mut short = vec![0u8; needed - 1];
    assert_eq!(
        res.get().decrypt(&sdk_key(), &mut short),
        Err(DecryptError::BufferTooSmall {
            needed,
            got: needed - 1
        })
    );
}

#[test]
fn the_sdk_small_aead_vector_decrypts() {
    let v = json(include_str!(
        "data/wechatpay_v3_notify/aes_gcm_small_vector.json"
    ));
    let key = ApiV3Key::aes128_for_sdk_test_vectors(
        v["key"].as_str().unwrap().as_bytes().try_into().unwrap(),
    );
    let mut out = [0u8; 64];
    let plain = key
        .decrypt(
            v["nonce"].as_str().unwrap().as_bytes(),
            v["associated_data"].as_str().unwrap().as_bytes(),
            v["ciphertext_b64"].as_str().unwrap().as_bytes(),
            &mut out,
        )
        .unwrap();
    assert_eq!(plain, v["plaintext"].as_str().unwrap().as_bytes());
}

#[test]
fn a_32_byte_key_decrypts_with_aes_256_gcm() {
    // GCM specification test case 16 (AES-256): binary nonce and associated data.
    let v = json(include_str!(
        "data/wechatpay_v3_notify/gcm_spec_test_case_16.json"
    ));
    let hexf = |k: &str| unhex(v[k].as_str().unwrap());
    let key = ApiV3Key::from_slice(&hexf("key_hex")).unwrap();
    let sealed = [hexf("ciphertext_hex"), hexf("tag_hex")].concat();
    let mut out = [0u8; 128];
    let plain = key
        .decrypt(
            &hexf("iv_hex"),
            &hexf("aad_hex"),
            b64(&sealed).as_bytes(),
            &mut out,
        )
        .unwrap();
    assert_eq!(plain, hexf("plaintext_hex"));

    // A WeChat-shaped resource under a 32-character key, sealed by an independent implementation.
    let v = json(include_str!(
        "data/wechatpay_v3_notify/aes256_gcm_selfgen.json"
    ));
    let key = ApiV3Key::from_slice(v["key"].as_str().unwrap().as_bytes()).unwrap();
    let resource = Resource {
        algorithm: "AEAD_AES_256_GCM",
        ciphertext: v["ciphertext_b64"].as_str().unwrap(),
        associated_data: v["associated_data"].as_str().unwrap(),
        nonce: v["nonce"].as_str().unwrap(),
    };
    let mut out = [0u8; 1024];
    let plain = resource.decrypt(&key, &mut out).unwrap();
    assert_eq!(plain, v["plaintext"].as_str().unwrap().as_bytes());
    let tx = json(std::str::from_utf8(plain).unwrap());
    assert_eq!(tx["trade_state"], "SUCCESS");

    // The 16-byte SDK key is refused as a production key, and the 32-byte key cannot open the
    // SDK's AES-128 vector.
    assert_eq!(
        ApiV3Key::from_slice(SDK_KEY).err(),
        Some(KeyLengthError { len: 16 })
    );
    assert_eq!(
        ApiV3Key::from_slice(&[0; 33]).err(),
        Some(KeyLengthError { len: 33 })
    );
    let mut out = [0u8; 512];
    assert_eq!(
        Res::of_body(BODY).get().decrypt(&key, &mut out),
        Err(DecryptError::Authentication)
    );
}

#[test]
fn every_tampered_resource_fails_and_leaves_no_plaintext() {
    let res = Res::of_body(BODY);
    let mut buf = [0u8; 512];
    let sealed = Base64::decode(&res.ciphertext, &mut buf).unwrap().to_vec();
    let key = sdk_key();
    let mut out = [0xAAu8; 512];
    let mut expect_fail = |nonce: &str, aad: &str, ct: &str, key: &ApiV3Key, what: &str| {
        out.fill(0xAA);
        assert_eq!(
            key.decrypt(nonce.as_bytes(), aad.as_bytes(), ct.as_bytes(), &mut out),
            Err(DecryptError::Authentication),
            "{what}"
        );
        assert!(out.iter().all(|&b| b == 0), "{what}: buffer not wiped");
    };
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x80;
        expect_fail(
            &res.nonce,
            &res.associated_data,
            &b64(&bad),
            &key,
            &format!("byte {i}"),
        );
    }
    expect_fail(
        &res.nonce,
        "payscorE",
        &res.ciphertext,
        &key,
        "associated data",
    );
    expect_fail(&res.nonce, "", &res.ciphertext, &key, "no associated data");
    expect_fail(
        "Kj7QIyUiYx1Q",
        &res.associated_data,
        &res.ciphertext,
        &key,
        "nonce",
    );
    let wrong = ApiV3Key::aes128_for_sdk_test_vectors(*b"testMchAPIv3Key1");
    expect_fail(
        &res.nonce,
        &res.associated_data,
        &res.ciphertext,
        &wrong,
        "key",
    );
    // Ciphertext cut short by whole blocks, tag intact or not.
    for cut in [1, 16, 17, sealed.len() - 17] {
        let bad = &sealed[..sealed.len() - cut];
        expect_fail(
            &res.nonce,
            &res.associated_data,
            &b64(bad),
            &key,
            &format!("cut {cut}"),
        );
    }
}

#[test]
fn malformed_resources_are_typed_errors() {
    let res = Res::of_body(BODY);
    let key = sdk_key();
    let mut out = [0u8; 512];
    let mut dec = |nonce: &str, ct: &str| {
        key.decrypt(nonce.as_bytes(), b"payscore", ct.as_bytes(), &mut out)
            .map(<[u8]>::to_vec)
    };
    assert_eq!(
        dec("Kj7QIyUiYx1", &res.ciphertext),
        Err(DecryptError::NonceLength { len: 11 })
    );
    assert_eq!(
        dec("Kj7QIyUiYx1qq", &res.ciphertext),
        Err(DecryptError::NonceLength { len: 13 })
    );
    assert_eq!(
        dec("", &res.ciphertext),
        Err(DecryptError::NonceLength { len: 0 })
    );
    assert_eq!(dec(&res.nonce, ""), Err(DecryptError::Truncated { len: 0 }));
    assert_eq!(
        dec(&res.nonce, &b64(&[1; 15])),
        Err(DecryptError::Truncated { len: 15 })
    );
    assert_eq!(
        dec(&res.nonce, &res.ciphertext[..res.ciphertext.len() - 1]),
        Err(DecryptError::InvalidBase64)
    );
    let spaced = format!("{} {}", &res.ciphertext[..8], &res.ciphertext[9..]);
    assert_eq!(dec(&res.nonce, &spaced), Err(DecryptError::InvalidBase64));
    let urlsafe = res.ciphertext.replace('+', "-").replace('/', "_");
    assert_ne!(urlsafe, res.ciphertext);
    assert_eq!(dec(&res.nonce, &urlsafe), Err(DecryptError::InvalidBase64));
    let mut r = res.get();
    r.algorithm = "AEAD_AES_128_GCM";
    assert_eq!(
        r.decrypt(&key, &mut out),
        Err(DecryptError::UnsupportedAlgorithm)
    );
    assert_eq!(format!("{key:?}"), "ApiV3Key(AES-128, ..)");
}

proptest! {
    #[test]
    fn arbitrary_ciphertext_never_opens_and_never_panics(ct in "[A-Za-z0-9+/=]{0,120}", nonce in ".{0,16}") {
        let mut out = [0x55u8; 128];
        match sdk_key().decrypt(nonce.as_bytes(), b"payscore", ct.as_bytes(), &mut out) {
            Ok(_) => prop_assert!(false, "forged ciphertext opened"),
            Err(DecryptError::Authentication) => prop_assert!(out.iter().all(|&b| b == 0)),
            Err(_) => {}
        }
    }
}

#[test]
fn headers_are_picked_out_exactly_once() {
    let h = headers_json();
    let pairs: Vec<(String, String)> = h
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.to_lowercase(), v.as_str().unwrap().to_owned()))
        .collect();
    let borrowed = || pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let parsed = Headers::from_pairs(borrowed()).unwrap();
    assert_eq!(parsed.timestamp, "1624523846");
    assert_eq!(parsed.serial, "D7CE59D1F522D701");
    assert_eq!(parsed.nonce, "EcZ9Cmy4Xyx1i6RlJQzLcCyEqDa26NBz");
    assert!(parsed.signature.starts_with("tJHIiIS9"));

    let without = |name: &str| Headers::from_pairs(borrowed().filter(|(k, _)| *k != name));
    assert_eq!(
        without("wechatpay-timestamp"),
        Err(HeaderError::Missing(Header::Timestamp))
    );
    assert_eq!(
        without("wechatpay-nonce"),
        Err(HeaderError::Missing(Header::Nonce))
    );
    assert_eq!(
        without("wechatpay-serial"),
        Err(HeaderError::Missing(Header::Serial))
    );
    assert_eq!(
        without("wechatpay-signature"),
        Err(HeaderError::Missing(Header::Signature))
    );
    let twice = Headers::from_pairs(borrowed().chain([("Wechatpay-Nonce", "other")]));
    assert_eq!(twice, Err(HeaderError::Repeated(Header::Nonce)));
    let empty = Headers::from_pairs(borrowed().map(|(k, v)| {
        if k == "wechatpay-serial" {
            (k, " ")
        } else {
            (k, v)
        }
    }));
    assert_eq!(empty, Err(HeaderError::Missing(Header::Serial)));
    // The signature type header is not read: the algorithm is the host's configuration.
    let typed = Headers::from_pairs(
        borrowed().chain([("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA2048")]),
    );
    assert_eq!(typed, Ok(parsed));
}

#[test]
fn trade_state_drives_the_payment() {
    let total = Money::parse("0.01", Currency::CNY).unwrap();
    let ev = |id: &str| EventId::new(id.as_bytes()).unwrap();
    let input = |state: &str, id: &str| TradeState::parse(state).unwrap().input(ev(id), total);

    let mut p: Payment = Payment::new(total, Timestamp::from_secs(0)).unwrap();
    let now = Timestamp::from_secs(10);
    for (state, status) in [
        ("NOTPAY", Status::Processing),
        ("USERPAYING", Status::Processing),
        ("ACCEPT", Status::Processing),
        ("SUCCESS", Status::Succeeded),
    ] {
        let out = p.apply(&input(state, state).unwrap(), now);
        assert!(out.should_acknowledge(), "{state}: {out:?}");
        assert_eq!(p.status(), status, "{state}");
    }
    assert_eq!(p.paid(), total);
    // A close after success is a disagreement with the provider, not silently applied.
    assert!(matches!(
        p.apply(&input("CLOSED", "n9").unwrap(), now),
        Outcome::Rejected(_)
    ));
    assert_eq!(
        TradeState::parse("REFUND").unwrap().input(ev("r"), total),
        None
    );

    for state in ["CLOSED", "REVOKED"] {
        let mut p: Payment = Payment::new(total, Timestamp::from_secs(0)).unwrap();
        assert!(matches!(
            p.apply(&input(state, "n1").unwrap(), now),
            Outcome::Applied(_)
        ));
        assert_eq!(p.status(), Status::Cancelled);
    }
    let mut p: Payment = Payment::new(total, Timestamp::from_secs(0)).unwrap();
    let fail = input("PAYERROR", "n1").unwrap();
    assert_eq!(fail, Input::fail(ev("n1"), "PAYERROR").unwrap());
    assert!(matches!(p.apply(&fail, now), Outcome::Applied(_)));
    assert_eq!(p.status(), Status::Failed);

    for bad in ["success", "SUCCESS ", "", "PAYING", "REFUNDED"] {
        assert_eq!(TradeState::parse(bad), Err(UnknownTradeState), "{bad}");
    }
    for s in [
        "SUCCESS",
        "REFUND",
        "NOTPAY",
        "CLOSED",
        "REVOKED",
        "USERPAYING",
        "PAYERROR",
        "ACCEPT",
    ] {
        assert_eq!(TradeState::parse(s).unwrap().code(), s);
    }
}
