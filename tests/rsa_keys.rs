//! Loading RSA keys in every format the providers and tools hand out, refusing the wrong ones,
//! and checking signatures made by OpenSSL with those keys.
#![cfg(feature = "rsa")]

use paystate::signature::{KeyError, Rsa2PrivateKey, Rsa2PublicKey, SignatureError};

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text(name: &str) -> String {
    String::from_utf8(data(name)).unwrap()
}

fn b64(bytes: &[u8]) -> String {
    use base64ct::Encoding;
    base64ct::Base64::encode_string(bytes)
}

const MESSAGE: &[u8] = b"app_id=2021000000000000&method=alipay.trade.query";

#[test]
fn every_public_key_format_loads_the_same_key() {
    let reference = Rsa2PublicKey::from_pem(&text("app2048.spki.pem")).unwrap();
    assert_eq!(reference.bits(), 2048);
    assert_eq!(reference.signature_len(), 256);
    let loaded = [
        Rsa2PublicKey::from_pem(&text("app2048.pkcs1-public.pem")),
        Rsa2PublicKey::from_der(&data("app2048.spki.der")),
        Rsa2PublicKey::from_der(&data("app2048.pkcs1-public.der")),
        Rsa2PublicKey::from_base64(&text("app2048.spki.b64")),
        Rsa2PublicKey::from_base64(&b64(&data("app2048.pkcs1-public.der"))),
        // A pasted key broken over lines with CRLF and indentation.
        Rsa2PublicKey::from_base64(
            &text("app2048.spki.b64")
                .as_bytes()
                .chunks(50)
                .fold(String::new(), |s, c| {
                    s + "  " + std::str::from_utf8(c).unwrap() + "\r\n"
                }),
        ),
        Rsa2PublicKey::from_pem(&text("app2048.spki.pem").replace('\n', "\r\n")),
        Rsa2PrivateKey::from_pem(&text("app2048.pkcs8.pem")).map(|k| k.public_key()),
    ];
    for (i, key) in loaded.into_iter().enumerate() {
        assert_eq!(key.as_ref(), Ok(&reference), "form {i}");
    }
    for file in [
        "app2048.spki.pem",
        "app2048.pkcs1-public.pem",
        "app2048.spki.der",
        "app2048.pkcs1-public.der",
        "app2048.spki.b64",
    ] {
        assert_eq!(
            Rsa2PublicKey::parse(&data(file)).as_ref(),
            Ok(&reference),
            "{file}"
        );
    }
    // The DER round trip gives back Alipay's bare base64.
    assert_eq!(
        b64(&reference.to_spki_der().unwrap()),
        text("app2048.spki.b64")
    );
}

#[test]
fn every_private_key_format_loads_the_same_key() {
    let reference = Rsa2PrivateKey::from_pem(&text("app2048.pkcs8.pem")).unwrap();
    let sig = reference.sign(MESSAGE).unwrap();
    for key in [
        Rsa2PrivateKey::from_pem(&text("app2048.pkcs1.pem")),
        Rsa2PrivateKey::from_der(&data("app2048.pkcs8.der")),
        Rsa2PrivateKey::from_base64(&text("app2048.pkcs8.b64")),
        Rsa2PrivateKey::parse(&data("app2048.pkcs1.pem")),
        Rsa2PrivateKey::parse(&data("app2048.pkcs8.der")),
        Rsa2PrivateKey::parse(&data("app2048.pkcs8.b64")),
    ] {
        let key = key.unwrap();
        assert_eq!(key.bits(), 2048);
        assert_eq!(key.sign(MESSAGE).unwrap(), sig);
    }
    assert!(
        !format!("{reference:?}").contains("MII"),
        "Debug must not print key material"
    );
}

#[test]
fn signatures_match_openssl_byte_for_byte() {
    // PKCS#1 v1.5 is deterministic: ours must equal the one OpenSSL made with the same key.
    for bits in [2048, 4096] {
        let private = Rsa2PrivateKey::parse(&data(&format!("app{bits}.pkcs8.pem"))).unwrap();
        let expected = text(&format!("message.app{bits}.sig.b64"));
        assert_eq!(private.sign_base64(MESSAGE).unwrap(), expected.trim());
        let public = private.public_key();
        assert_eq!(public.bits(), bits);
        assert_eq!(public.verify_base64(MESSAGE, expected.trim()), Ok(()));
        assert_eq!(
            public.verify_base64(
                b"app_id=2021000000000001&method=alipay.trade.query",
                expected.trim()
            ),
            Err(SignatureError::Mismatch)
        );
    }
}

#[test]
fn a_changed_byte_or_another_key_fails() {
    let public = Rsa2PublicKey::parse(&data("app2048.spki.pem")).unwrap();
    let other = Rsa2PrivateKey::parse(&data("app4096.pkcs8.pem")).unwrap();
    let sig = Rsa2PrivateKey::parse(&data("app2048.pkcs8.pem"))
        .unwrap()
        .sign(MESSAGE)
        .unwrap();
    assert_eq!(public.verify(MESSAGE, &sig), Ok(()));
    for i in [0, 100, 255] {
        let mut bad = sig.clone();
        bad[i] ^= 1;
        assert_eq!(public.verify(MESSAGE, &bad), Err(SignatureError::Mismatch));
    }
    assert_eq!(
        public.verify(MESSAGE, &sig[1..]),
        Err(SignatureError::WrongLength {
            expected: 256,
            got: 255
        })
    );
    assert_eq!(
        public.verify(MESSAGE, &[]),
        Err(SignatureError::WrongLength {
            expected: 256,
            got: 0
        })
    );
    assert_eq!(
        public.verify(MESSAGE, &[0xff; 256]),
        Err(SignatureError::Mismatch)
    );
    // A valid signature under another key.
    assert_eq!(
        other.public_key().verify(MESSAGE, &sig),
        Err(SignatureError::WrongLength {
            expected: 512,
            got: 256
        })
    );
    assert_eq!(
        public.verify_base64(MESSAGE, &b64(&sig).replace('+', " ")),
        if b64(&sig).contains('+') {
            Err(SignatureError::InvalidBase64Char {
                at: b64(&sig).find('+').unwrap(),
                byte: b' ',
            })
        } else {
            Ok(())
        }
    );
}

#[test]
fn wrong_keys_are_typed_errors() {
    assert_eq!(
        Rsa2PublicKey::parse(&data("weak1024.spki.pem")),
        Err(KeyError::TooSmall { bits: 1024 })
    );
    assert_eq!(
        Rsa2PublicKey::parse(&data("huge8192.spki.pem")),
        Err(KeyError::TooLarge { bits: 8192 })
    );
    assert_eq!(
        Rsa2PublicKey::parse(&data("ec-p256.spki.pem")),
        Err(KeyError::NotRsa)
    );
    for private in [
        "app2048.pkcs8.pem",
        "app2048.pkcs1.pem",
        "app2048.pkcs8.der",
        "app2048.pkcs8.b64",
    ] {
        assert_eq!(
            Rsa2PublicKey::parse(&data(private)),
            Err(KeyError::PrivateKeyGiven),
            "{private}"
        );
    }
    for public in [
        "app2048.spki.pem",
        "app2048.pkcs1-public.pem",
        "app2048.spki.der",
        "app2048.spki.b64",
    ] {
        assert_eq!(
            Rsa2PrivateKey::parse(&data(public)).err(),
            Some(KeyError::PublicKeyGiven),
            "{public}"
        );
    }
    assert_eq!(Rsa2PublicKey::parse(b""), Err(KeyError::Empty));
    assert_eq!(Rsa2PublicKey::parse(b" \n\t"), Err(KeyError::Empty));
    assert_eq!(
        Rsa2PublicKey::parse(b"MIIB!!"),
        Err(KeyError::InvalidBase64)
    );
    assert_eq!(Rsa2PublicKey::parse(b"AAAA"), Err(KeyError::InvalidDer));
    assert_eq!(
        Rsa2PublicKey::parse(&[0x30, 0x03, 0x02, 0x01, 0x05]),
        Err(KeyError::InvalidDer)
    );
    assert_eq!(
        Rsa2PublicKey::parse(&[0xff; 600]),
        Err(KeyError::InvalidBase64)
    );
    assert_eq!(
        Rsa2PublicKey::parse(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        Err(KeyError::Certificate)
    );
    assert_eq!(
        Rsa2PublicKey::parse(b"-----BEGIN PUBLIC KEY-----\nAAAA\n"),
        Err(KeyError::InvalidPem)
    );
    // Truncated keys in every form.
    let der = data("app2048.spki.der");
    for cut in [1, 10, 100, der.len() - 1] {
        assert!(Rsa2PublicKey::from_der(&der[..cut]).is_err());
    }
    let pem = text("app2048.spki.pem");
    assert!(Rsa2PublicKey::from_pem(&pem[..200]).is_err());
}

/// With the `x509` feature a certificate file loads as the key it certifies, in PEM and DER,
/// so `verify alipay --public-key alipayCertPublicKey_RSA2.crt` works in certificate mode.
#[cfg(feature = "x509")]
#[test]
fn a_certificate_loads_as_its_public_key() {
    let pem = include_bytes!("data/wechatpay_fresh/platform_cert.pem");
    let der = include_bytes!("data/wechatpay_fresh/platform_cert.der");
    let key = include_str!("data/wechatpay_fresh/platform_public_key.pem");
    let want = Rsa2PublicKey::from_pem(key).unwrap();
    assert_eq!(Rsa2PublicKey::parse(pem).unwrap(), want);
    assert_eq!(Rsa2PublicKey::parse(der).unwrap(), want);
    // A broken certificate is still reported as a certificate problem.
    assert_eq!(
        Rsa2PublicKey::parse(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        Err(KeyError::Certificate)
    );
}
