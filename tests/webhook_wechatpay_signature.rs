//! WeChat Pay v3 signatures: the official SDK's callback, a notification signed by an
//! independent implementation with a fresh key, platform certificates, the replay guard's
//! order, and every tampered variant.
#![cfg(feature = "wechatpay")]

use paystate::guard::{ReplayError, ReplayGuard};
use paystate::signature::x509::{Certificate, CertificateError};
use paystate::signature::{Rsa2PrivateKey, Rsa2PublicKey, SignatureError};
use paystate::webhook::TimestampError;
use paystate::webhook::wechatpay::{
    self, ApiV3Key, Headers, KeyIdError, PlatformKey, Resource, TradeState, WechatError,
};
use paystate::{Currency, EventId, Money, Outcome, Payment, Status, Timestamp};

const T: fn(u64) -> Timestamp = Timestamp::from_secs;

const SDK_CERT: &str = include_str!("data/wechatpay_v3_notify/platform_cert.pem");
const SDK_BODY: &str = include_str!("data/wechatpay_v3_notify/body.json");
const SDK_TS: u64 = 1_624_523_846;
const FRESH_CERT_PEM: &str = include_str!("data/wechatpay_fresh/platform_cert.pem");
const FRESH_CERT_DER: &[u8] = include_bytes!("data/wechatpay_fresh/platform_cert.der");
const FRESH_PUBLIC_KEY: &[u8] = include_bytes!("data/wechatpay_fresh/platform_public_key.pem");
const FRESH_PRIVATE_KEY: &[u8] = include_bytes!("data/wechatpay_fresh/platform_private_key.pem");

struct Request {
    timestamp: String,
    nonce: String,
    serial: String,
    signature: String,
    body: Vec<u8>,
}

impl Request {
    fn headers(&self) -> Headers<'_> {
        Headers {
            timestamp: &self.timestamp,
            nonce: &self.nonce,
            serial: &self.serial,
            signature: &self.signature,
        }
    }
}

fn sdk_request() -> Request {
    let h: serde_json::Value =
        serde_json::from_str(include_str!("data/wechatpay_v3_notify/headers.json")).unwrap();
    let s = |k: &str| h[k].as_str().unwrap().to_owned();
    Request {
        timestamp: s("Wechatpay-Timestamp"),
        nonce: s("Wechatpay-Nonce"),
        serial: s("Wechatpay-Serial"),
        signature: s("Wechatpay-Signature"),
        body: SDK_BODY.as_bytes().to_vec(),
    }
}

fn fresh_request() -> (Request, u64) {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("data/wechatpay_fresh/notification.json")).unwrap();
    let h = &v["headers"];
    let s = |k: &str| h[k].as_str().unwrap().to_owned();
    let ts = s("Wechatpay-Timestamp").parse().unwrap();
    let r = Request {
        timestamp: s("Wechatpay-Timestamp"),
        nonce: s("Wechatpay-Nonce"),
        serial: s("Wechatpay-Serial"),
        signature: s("Wechatpay-Signature"),
        body: v["body"].as_str().unwrap().as_bytes().to_vec(),
    };
    (r, ts)
}

fn sdk_keys() -> Vec<PlatformKey> {
    let cert = Certificate::from_pem(SDK_CERT).unwrap();
    vec![PlatformKey::from_certificate(&cert).unwrap()]
}

fn fresh_keys() -> Vec<PlatformKey> {
    let cert = Certificate::parse(FRESH_CERT_DER).unwrap();
    vec![PlatformKey::from_certificate(&cert).unwrap()]
}

fn check(r: &Request, keys: &[PlatformKey], now: u64) -> Result<wechatpay::Verified, WechatError> {
    let mut guard = ReplayGuard::<8>::new();
    wechatpay::verify(&r.headers(), &r.body, keys, &mut guard, T(now))
}

fn mismatch() -> WechatError {
    WechatError::Signature(SignatureError::Mismatch)
}

#[test]
#[cfg(feature = "sdk-test-vectors")] // the SDK's vector uses a 16-byte key
fn the_sdk_callback_verifies_at_its_own_timestamp_and_decrypts() {
    let r = sdk_request();
    let v = check(&r, &sdk_keys(), SDK_TS).unwrap();
    assert_eq!((v.timestamp(), v.key_index()), (T(SDK_TS), 0));

    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let res = &body["resource"];
    let resource = Resource {
        algorithm: res["algorithm"].as_str().unwrap(),
        ciphertext: res["ciphertext"].as_str().unwrap(),
        associated_data: res["associated_data"].as_str().unwrap(),
        nonce: res["nonce"].as_str().unwrap(),
    };
    let key = ApiV3Key::aes128_for_sdk_test_vectors(*b"testMchAPIv3Key0");
    let mut out = [0u8; 512];
    let plain = resource.decrypt(&key, &mut out).unwrap();
    assert_eq!(
        plain,
        include_bytes!("data/wechatpay_v3_notify/expected_plaintext.json")
    );
}

#[test]
fn a_fresh_notification_verifies_decrypts_and_pays() {
    let (r, ts) = fresh_request();
    // By the certificate (PEM or DER), or by the bare public key and its id.
    assert!(check(&r, &fresh_keys(), ts).is_ok());
    let pem_key =
        PlatformKey::from_certificate(&Certificate::from_pem(FRESH_CERT_PEM).unwrap()).unwrap();
    assert_eq!(pem_key, fresh_keys()[0]);
    let bare = Rsa2PublicKey::parse(FRESH_PUBLIC_KEY).unwrap();
    let by_id =
        PlatformKey::from_public_key("PUB_KEY_ID_0114232134912410000000000000", bare).unwrap();
    let mut r_id = fresh_request().0;
    r_id.serial = "PUB_KEY_ID_0114232134912410000000000000".into();
    assert!(check(&r_id, std::slice::from_ref(&by_id), ts).is_ok());
    // Public key ids are compared exactly.
    r_id.serial = "pub_key_id_0114232134912410000000000000".into();
    assert_eq!(
        check(&r_id, &[by_id], ts).unwrap_err(),
        WechatError::UnknownSerial
    );

    // The resource, with a 32-byte APIv3 key, then the engine.
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let res = &body["resource"];
    let resource = Resource {
        algorithm: res["algorithm"].as_str().unwrap(),
        ciphertext: res["ciphertext"].as_str().unwrap(),
        associated_data: res["associated_data"].as_str().unwrap(),
        nonce: res["nonce"].as_str().unwrap(),
    };
    let aes: serde_json::Value = serde_json::from_str(include_str!(
        "data/wechatpay_v3_notify/aes256_gcm_selfgen.json"
    ))
    .unwrap();
    let key = ApiV3Key::from_slice(aes["key"].as_str().unwrap().as_bytes()).unwrap();
    let mut out = vec![0u8; wechatpay::decoded_len(resource.ciphertext.as_bytes()).unwrap()];
    let tx: serde_json::Value =
        serde_json::from_slice(resource.decrypt(&key, &mut out).unwrap()).unwrap();
    let total = Money::from_minor(
        tx["amount"]["total"].as_u64().unwrap(),
        Currency::from_code(tx["amount"]["currency"].as_str().unwrap()).unwrap(),
    );
    let mut p: Payment =
        Payment::new(Money::parse("1.00", Currency::CNY).unwrap(), T(ts - 60)).unwrap();
    let event = EventId::new(body["id"].as_str().unwrap().as_bytes()).unwrap();
    let input = TradeState::parse(tx["trade_state"].as_str().unwrap())
        .unwrap()
        .input(event, total)
        .unwrap();
    assert!(matches!(p.apply(&input, T(ts)), Outcome::Applied(_)));
    assert_eq!(p.status(), Status::Succeeded);
}

#[test]
fn every_window_boundary_on_both_sides() {
    let r = sdk_request();
    let keys = sdk_keys();
    assert!(check(&r, &keys, SDK_TS + 300).is_ok());
    assert_eq!(
        check(&r, &keys, SDK_TS + 301).unwrap_err(),
        WechatError::Replay(ReplayError::Stale)
    );
    assert!(check(&r, &keys, SDK_TS - 300).is_ok());
    assert_eq!(
        check(&r, &keys, SDK_TS - 301).unwrap_err(),
        WechatError::Replay(ReplayError::FromFuture)
    );
    // A guard with another tolerance moves both edges.
    let mut guard = ReplayGuard::<8>::with_tolerance(paystate::Duration::from_secs(60));
    let out = wechatpay::verify(&r.headers(), &r.body, &keys, &mut guard, T(SDK_TS + 61));
    assert_eq!(out.unwrap_err().code(), "stale");
}

#[test]
fn a_replay_is_refused_and_a_forgery_leaves_the_guard_untouched() {
    let r = sdk_request();
    let keys = sdk_keys();
    let mut guard = ReplayGuard::<8>::new();
    let mut run =
        |r: &Request, now: u64| wechatpay::verify(&r.headers(), &r.body, &keys, &mut guard, T(now));
    assert!(run(&r, SDK_TS).is_ok());
    assert_eq!(
        run(&r, SDK_TS + 10).unwrap_err(),
        WechatError::Replay(ReplayError::Replayed)
    );

    let mut guard = ReplayGuard::<8>::new();
    let before = guard.clone();
    let mut forged = sdk_request();
    forged.body.push(b' ');
    let out = wechatpay::verify(
        &forged.headers(),
        &forged.body,
        &keys,
        &mut guard,
        T(SDK_TS),
    );
    assert_eq!(out.unwrap_err(), mismatch());
    assert_eq!(guard, before, "a failed signature changed the guard");
    // ... so the genuine request with the same nonce still gets through.
    assert!(wechatpay::verify(&r.headers(), &r.body, &keys, &mut guard, T(SDK_TS)).is_ok());
    // The window comes before the signature: a stale forgery is reported stale.
    let mut guard = ReplayGuard::<8>::new();
    let out = wechatpay::verify(
        &forged.headers(),
        &forged.body,
        &keys,
        &mut guard,
        T(SDK_TS + 301),
    );
    assert_eq!(out.unwrap_err(), WechatError::Replay(ReplayError::Stale));
}

#[test]
fn every_tampered_variant_is_rejected() {
    let keys = sdk_keys();
    let r = sdk_request();
    for i in (0..r.body.len()).step_by(7) {
        let mut t = sdk_request();
        t.body[i] ^= 0x01;
        assert_eq!(
            check(&t, &keys, SDK_TS).unwrap_err(),
            mismatch(),
            "body byte {i}"
        );
    }
    let mut t = sdk_request();
    t.body.pop();
    assert_eq!(check(&t, &keys, SDK_TS).unwrap_err(), mismatch());
    let mut t = sdk_request();
    t.timestamp = (SDK_TS + 1).to_string();
    assert_eq!(check(&t, &keys, SDK_TS).unwrap_err(), mismatch());
    let mut t = sdk_request();
    t.nonce.replace_range(0..1, "F");
    assert_eq!(check(&t, &keys, SDK_TS).unwrap_err(), mismatch());
    // Another valid signature (from the fresh key) on the SDK's request.
    let (fresh, _) = fresh_request();
    let mut t = sdk_request();
    t.signature = fresh.signature.clone();
    assert_eq!(check(&t, &keys, SDK_TS).unwrap_err(), mismatch());
    // The SDK's request checked against the wrong key under the right serial.
    let wrong = PlatformKey::from_public_key(
        "D7CE59D1F522D701",
        Rsa2PublicKey::parse(FRESH_PUBLIC_KEY).unwrap(),
    )
    .unwrap();
    assert_eq!(check(&r, &[wrong], SDK_TS).unwrap_err(), mismatch());
    // A signature made by us with the fresh key over the SDK's message, under the SDK's serial.
    let signer = Rsa2PrivateKey::parse(FRESH_PRIVATE_KEY).unwrap();
    let mut t = sdk_request();
    t.signature = signer
        .sign_base64(include_bytes!(
            "data/wechatpay_v3_notify/signed_message.bin"
        ))
        .unwrap();
    assert_eq!(check(&t, &keys, SDK_TS).unwrap_err(), mismatch());
}

#[test]
fn malformed_headers_are_typed_errors() {
    let keys = sdk_keys();
    let with = |f: &dyn Fn(&mut Request)| {
        let mut r = sdk_request();
        f(&mut r);
        check(&r, &keys, SDK_TS).unwrap_err()
    };
    assert_eq!(
        with(&|r| r.timestamp = "".into()),
        WechatError::Timestamp(TimestampError::Empty)
    );
    assert_eq!(
        with(&|r| r.timestamp = "1624523846.0".into()),
        WechatError::Timestamp(TimestampError::NotDecimal { index: 10 })
    );
    assert_eq!(
        with(&|r| r.timestamp = "-1624523846".into()),
        WechatError::Timestamp(TimestampError::NotDecimal { index: 0 })
    );
    assert_eq!(
        with(&|r| r.timestamp = "162452384600000000000000".into()),
        WechatError::Timestamp(TimestampError::Overflow)
    );
    assert_eq!(
        with(&|r| r.timestamp = "99999999999".into()),
        WechatError::Replay(ReplayError::FromFuture)
    );
    assert_eq!(
        with(&|r| r.nonce = "".into()),
        WechatError::Replay(ReplayError::InvalidNonce { len: 0 })
    );
    assert_eq!(
        with(&|r| r.nonce = "n".repeat(65)),
        WechatError::Replay(ReplayError::InvalidNonce { len: 65 })
    );
    assert_eq!(
        with(&|r| r.serial = "D7CE59D1F522D702".into()),
        WechatError::UnknownSerial
    );
    assert_eq!(with(&|r| r.serial = "".into()), WechatError::UnknownSerial);
    assert_eq!(
        with(&|r| r.signature = "".into()),
        WechatError::Signature(SignatureError::Missing)
    );
    assert_eq!(
        with(&|r| r.signature = format!("WECHATPAY/SIGNTEST/{}", r.signature)),
        WechatError::SignTest
    );
    assert_eq!(
        with(&|r| r.signature = "WECHATPAY/SIGNTEST/".into()).code(),
        "signtest"
    );
    let e = with(&|r| r.signature.truncate(340));
    assert_eq!(
        e,
        WechatError::Signature(SignatureError::WrongLength {
            expected: 256,
            got: 255
        })
    );
    let e = with(&|r| r.signature.truncate(343));
    assert_eq!(e, WechatError::Signature(SignatureError::InvalidBase64));
    let e = with(&|r| r.signature = r.signature.replace('+', " "));
    assert!(
        matches!(
            e,
            WechatError::Signature(SignatureError::InvalidBase64Char { byte: b' ', .. })
        ),
        "{e:?}"
    );
    let e = with(&|r| r.signature = "A".repeat(1000));
    assert!(
        matches!(
            e,
            WechatError::Signature(SignatureError::TooLong { len: 1000 })
        ),
        "{e:?}"
    );
    // Every refusal has a code for logs.
    assert_eq!(with(&|r| r.serial = "X".into()).code(), "unknown_serial");
}

#[test]
fn serials_match_as_numbers_and_certificates_carry_their_validity() {
    // The fresh certificate's serial starts with a zero digit: SDKs write it with or without.
    let keys = fresh_keys();
    assert_eq!(keys[0].id(), "A1B2C3D4E5F60718293A4B5C6D7E8F901234567");
    for serial in [
        "0A1B2C3D4E5F60718293A4B5C6D7E8F901234567",
        "A1B2C3D4E5F60718293A4B5C6D7E8F901234567",
        "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
    ] {
        assert!(keys[0].matches(serial), "{serial}");
    }
    assert!(!keys[0].matches("0A1B2C3D4E5F60718293A4B5C6D7E8F90123456"));
    assert!(!keys[0].matches("0A1B2C3D4E5F60718293A4B5C6D7E8F9012345670"));

    let cert = Certificate::from_pem(FRESH_CERT_PEM).unwrap();
    assert_eq!(
        cert.serial_hex().as_str(),
        "0A1B2C3D4E5F60718293A4B5C6D7E8F901234567"
    );
    assert_eq!(cert.serial_number().len(), 20);
    // notBefore 2026-11-27T14:40:44Z, notAfter 2036-11-24T14:40:44Z.
    assert_eq!(
        (cert.not_before(), cert.not_after()),
        (T(1_795_790_444), T(2_111_150_444))
    );
    assert!(cert.is_valid_at(T(1_795_790_444)) && cert.is_valid_at(T(2_111_150_444)));
    assert!(!cert.is_valid_at(T(1_795_790_443)) && !cert.is_valid_at(T(2_111_150_445)));
    assert_eq!(
        keys[0].validity(),
        Some((T(1_795_790_444), T(2_111_150_444)))
    );
    // The pinned certificate's validity is for the host to watch; the signature decides. A
    // notification signed by the key after the certificate's notAfter still verifies.
    let signer = Rsa2PrivateKey::parse(FRESH_PRIVATE_KEY).unwrap();
    let late_ts = 2_111_150_445u64;
    let mut late = fresh_request().0;
    late.timestamp = late_ts.to_string();
    let message = format!("{}\n{}\n", late.timestamp, late.nonce).into_bytes();
    let message = [&message[..], &late.body, b"\n"].concat();
    late.signature = signer.sign_base64(&message).unwrap();
    assert_eq!(
        check(&late, &keys, late_ts).unwrap().timestamp(),
        T(late_ts)
    );
    let (r, _) = fresh_request();

    // Several keys: the one the serial names is used.
    let mut both = sdk_keys();
    both.extend(fresh_keys());
    assert_eq!(check(&r, &both, 1_795_790_460).unwrap().key_index(), 1);
    assert_eq!(check(&sdk_request(), &both, SDK_TS).unwrap().key_index(), 0);
}

#[test]
fn certificates_load_from_pem_and_der_and_refuse_everything_else() {
    let from_pem = Certificate::from_pem(SDK_CERT).unwrap();
    assert_eq!(from_pem.serial_hex().as_str(), "D7CE59D1F522D701");
    assert_eq!(from_pem.public_key().unwrap().bits(), 2048);
    assert_eq!(Certificate::parse(SDK_CERT.as_bytes()).unwrap(), from_pem);
    // CRLF line ends, surrounding whitespace, a second certificate after the first.
    let crlf = SDK_CERT.replace('\n', "\r\n");
    assert_eq!(Certificate::from_pem(&crlf).unwrap(), from_pem);
    assert_eq!(
        Certificate::from_pem(&format!("\n  {SDK_CERT}\n\n")).unwrap(),
        from_pem
    );
    assert_eq!(
        Certificate::from_pem(&format!("{SDK_CERT}{FRESH_CERT_PEM}")).unwrap(),
        from_pem
    );
    // DER and PEM of one certificate agree; the SPKI is the public key file's.
    let der = Certificate::parse(FRESH_CERT_DER).unwrap();
    assert_eq!(der, Certificate::parse(FRESH_CERT_PEM.as_bytes()).unwrap());
    assert_eq!(
        der.public_key().unwrap(),
        Rsa2PublicKey::parse(FRESH_PUBLIC_KEY).unwrap()
    );
    assert_eq!(
        Rsa2PublicKey::from_der(der.subject_public_key_info_der()).unwrap(),
        Rsa2PublicKey::parse(FRESH_PUBLIC_KEY).unwrap()
    );

    assert_eq!(Certificate::parse(b""), Err(CertificateError::Empty));
    assert_eq!(Certificate::parse(b"  \n"), Err(CertificateError::Empty));
    assert_eq!(
        Certificate::parse(FRESH_PUBLIC_KEY),
        Err(CertificateError::NotACertificate)
    );
    assert_eq!(
        Certificate::parse(FRESH_PRIVATE_KEY),
        Err(CertificateError::NotACertificate)
    );
    assert_eq!(
        Certificate::parse(b"\x30\x03\x02\x01\x01"),
        Err(CertificateError::InvalidDer)
    );
    assert_eq!(
        Certificate::parse(b"hello"),
        Err(CertificateError::InvalidDer)
    );
    for cut in [1, 10, 100, FRESH_CERT_DER.len() - 1] {
        assert_eq!(
            Certificate::parse(&FRESH_CERT_DER[..cut]),
            Err(CertificateError::InvalidDer),
            "cut {cut}"
        );
    }
    let no_end = SDK_CERT.replace("-----END CERTIFICATE-----", "");
    assert_eq!(
        Certificate::from_pem(&no_end),
        Err(CertificateError::InvalidPem)
    );
    let bad_base64 = SDK_CERT.replace("MIIDVzCC", "MIID!zCC");
    assert_eq!(
        Certificate::from_pem(&bad_base64),
        Err(CertificateError::InvalidPem)
    );
    // A key file that holds a certificate loads as the key it certifies (x509 feature);
    // a bare key is not a certificate.
    assert_eq!(
        Rsa2PublicKey::parse(SDK_CERT.as_bytes()).unwrap(),
        Certificate::from_pem(SDK_CERT)
            .unwrap()
            .public_key()
            .unwrap()
    );
    assert_eq!(
        PlatformKey::from_public_key("", Rsa2PublicKey::parse(FRESH_PUBLIC_KEY).unwrap())
            .unwrap_err(),
        KeyIdError { len: 0 }
    );
    assert_eq!(
        PlatformKey::from_public_key(
            &"K".repeat(65),
            Rsa2PublicKey::parse(FRESH_PUBLIC_KEY).unwrap()
        )
        .unwrap_err(),
        KeyIdError { len: 65 }
    );
}
