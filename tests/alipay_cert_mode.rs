//! docs/spec.md §4.2, certificate mode: every SN of the SDK's vectors (root bundle included), and
//! responses verified with the certificate their `alipay_cert_sn` names.
#![cfg(feature = "x509")]

use paystate::alipay::cert::{AlipayCertificate, CertSn, cert_sn, root_cert_sn};
use paystate::alipay::response::{ResponseError, ResponseKind, verify_response_with_certificates};
use paystate::signature::x509::{Certificate, CertificateError};
use paystate::signature::{Rsa2PrivateKey, SignatureError};
use serde_json::Value;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/alipay_cert_sn/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn expected() -> Value {
    serde_json::from_slice(&data("expected_sn.json")).unwrap()
}

#[test]
fn the_sdk_sn_of_each_certificate() {
    let expected = expected();
    for name in [
        "appCertPublicKey_2021001161683774.crt",
        "alipayCertPublicKey_RSA2.crt",
    ] {
        let cert = Certificate::parse(&data(name)).unwrap();
        let want = &expected[name];
        assert_eq!(cert.issuer_rfc2253(), want["issuer_string"], "{name}");
        assert_eq!(cert.serial_decimal(), want["serial_decimal"], "{name}");
        assert_eq!(cert_sn(&cert).to_string(), want["sn"], "{name}");
        assert_eq!(
            want["sn"], expected["expected_from_official_test"][name],
            "{name}"
        );
    }
    // An issuer with an escaped comma and an attribute RFC 2253 writes as an OID (checked
    // against Java's X500Principal.getName()).
    let selfgen: Value = serde_json::from_slice(&data("selfgen_expected.json")).unwrap();
    let want = &selfgen["selfgen_alipay_cert.pem"];
    let cert = Certificate::parse(&data("selfgen_alipay_cert.pem")).unwrap();
    assert_eq!(cert.issuer_rfc2253(), want["issuer_string"]);
    assert_eq!(cert.serial_decimal(), want["serial_decimal"]);
    assert_eq!(cert_sn(&cert).to_string(), want["sn"]);
}

/// The PEM blocks of the root bundle, in file order.
fn root_blocks() -> Vec<String> {
    let text = String::from_utf8(data("alipayRootCert.crt")).unwrap();
    text.split_inclusive("-----END CERTIFICATE-----")
        .filter(|b| b.contains("BEGIN"))
        .map(|b| b.trim().to_owned() + "\n")
        .collect()
}

#[test]
fn the_root_sn_joins_the_rsa_roots_in_file_order() {
    let expected = expected();
    let root = &expected["alipayRootCert.crt"];
    assert_eq!(
        root_cert_sn(&data("alipayRootCert.crt")).unwrap(),
        root["root_sn"].as_str().unwrap()
    );
    assert_eq!(
        root["root_sn"],
        expected["expected_from_official_test"]["alipayRootCert.crt"]
    );
    // Each root on its own: the SN, and whether it counts (signed with RSA).
    let blocks = root_blocks();
    let certs = root["certs"].as_array().unwrap();
    assert_eq!(blocks.len(), certs.len());
    for (block, want) in blocks.iter().zip(certs) {
        if let Ok(cert) = Certificate::from_pem(block) {
            assert_eq!(cert_sn(&cert).to_string(), want["sn"]);
            assert_eq!(cert.issuer_rfc2253(), want["issuer_string"]);
            assert_eq!(cert.is_signed_with_rsa(), want["included"] == true);
        } else {
            // A root the parser refuses must be one the root SN leaves out.
            assert_eq!(want["included"], false, "{}", want["sig_oid"]);
        }
    }
}

#[test]
fn the_root_sn_skips_what_it_cannot_read() {
    let blocks = root_blocks();
    let want = expected()["alipayRootCert.crt"]["root_sn"]
        .as_str()
        .unwrap()
        .to_owned();
    // A block that is not a certificate, and one whose base64 is broken, between the roots.
    let bogus = "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n";
    let broken = "-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n";
    let bundle = [
        blocks[0].as_str(),
        bogus,
        blocks[1].as_str(),
        broken,
        blocks[2].as_str(),
        blocks[3].as_str(),
    ]
    .concat();
    assert_eq!(root_cert_sn(bundle.as_bytes()).unwrap(), want);
    // File order matters.
    let reversed: String = blocks.iter().rev().map(String::as_str).collect();
    let mut parts: Vec<&str> = want.split('_').collect();
    parts.reverse();
    assert_eq!(root_cert_sn(reversed.as_bytes()).unwrap(), parts.join("_"));

    // Only the SM2 and ECDSA roots: nothing to join.
    let non_rsa = [blocks[0].as_str(), blocks[2].as_str()].concat();
    assert_eq!(
        root_cert_sn(non_rsa.as_bytes()),
        Err(CertificateError::NoRsaCertificate)
    );
    assert_eq!(root_cert_sn(b" \n"), Err(CertificateError::Empty));
    assert_eq!(
        root_cert_sn(b"MIIB no PEM here"),
        Err(CertificateError::InvalidPem)
    );
}

const METHOD: &str = "alipay.trade.query";

/// The test key plays Alipay: `selfgen_alipay_cert.pem` certifies its public half.
fn signer() -> Rsa2PrivateKey {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/keys/app2048.pkcs8.pem"
    );
    Rsa2PrivateKey::parse(&std::fs::read(path).unwrap()).unwrap()
}

fn held() -> Vec<AlipayCertificate> {
    ["alipayCertPublicKey_RSA2.crt", "selfgen_alipay_cert.pem"]
        .iter()
        .map(|name| AlipayCertificate::new(&Certificate::parse(&data(name)).unwrap()).unwrap())
        .collect()
}

fn response(sn: Option<&str>, signed: bool) -> String {
    let content = r#"{"code":"10000","msg":"Success","out_trade_no":"order-42","trade_status":"TRADE_SUCCESS"}"#;
    let sign = if signed {
        signer().sign_base64(content.as_bytes()).unwrap()
    } else {
        String::new()
    };
    let sn = sn.map_or(String::new(), |sn| format!(r#""alipay_cert_sn":"{sn}","#));
    format!(r#"{{"alipay_trade_query_response":{content},{sn}"sign":"{sign}"}}"#)
}

#[test]
fn the_response_names_the_certificate_that_verifies_it() {
    let held = held();
    let selfgen = "3e1b32f91b24396d2c3d3ec61b1f24ff";
    assert_eq!(held[1].sn().to_string(), selfgen);
    let raw = response(Some(selfgen), true);
    let verified = verify_response_with_certificates(&raw, METHOD, &held).unwrap();
    assert_eq!(
        (verified.kind, verified.alipay_cert_sn),
        (ResponseKind::Method, Some(selfgen))
    );
    // Upper-case hex names the same certificate.
    let upper = response(Some(&selfgen.to_uppercase()), true);
    assert!(verify_response_with_certificates(&upper, METHOD, &held).is_ok());

    // Named as the real Alipay certificate, which the host also holds: that key does not
    // verify it.
    let raw = response(Some("7513daaaa48aa3ba2e4018d84402479c"), true);
    assert_eq!(
        verify_response_with_certificates(&raw, METHOD, &held).err(),
        Some(ResponseError::Signature(SignatureError::Mismatch))
    );
    // Tampered after signing.
    let raw = response(Some(selfgen), true).replace("order-42", "order-43");
    assert_eq!(
        verify_response_with_certificates(&raw, METHOD, &held).err(),
        Some(ResponseError::Signature(SignatureError::Mismatch))
    );
}

#[test]
fn an_sn_the_host_does_not_hold_is_its_own_error() {
    let held = held();
    let rotated = "0123456789abcdef0123456789abcdef";
    let raw = response(Some(rotated), true);
    let err = verify_response_with_certificates(&raw, METHOD, &held).unwrap_err();
    assert_eq!(
        err,
        ResponseError::UnknownCertSn {
            sn: CertSn::parse(rotated).unwrap()
        }
    );
    assert_eq!(err.code(), "unknown_cert_sn");
    assert!(err.to_string().contains(rotated));
    // Holding nothing at all is the same answer.
    assert_eq!(
        verify_response_with_certificates(&raw, METHOD, &[]).err(),
        Some(err)
    );

    for sn in [
        None,
        Some(""),
        Some("not-an-sn"),
        Some("3e1b32f91b24396d2c3d3ec61b1f24f"),
    ] {
        let raw = response(sn, true);
        let err = verify_response_with_certificates(&raw, METHOD, &held);
        assert_eq!(err.err(), Some(ResponseError::MissingCertSn), "{sn:?}");
    }
    assert_eq!(ResponseError::MissingCertSn.code(), "missing_cert_sn");
    // Unsigned comes first: an unsigned response names no key worth fetching.
    assert_eq!(
        verify_response_with_certificates(&response(Some(rotated), false), METHOD, &held).err(),
        Some(ResponseError::Unsigned {
            kind: ResponseKind::Method
        })
    );
}

#[test]
fn certificates_carry_their_validity() {
    let held = held();
    // The real Alipay certificate: 2020-05-14 .. 2022-05-14 (two years; rotation is routine).
    assert_eq!(held[0].sn().to_string(), "7513daaaa48aa3ba2e4018d84402479c");
    let years = (held[0].not_after().as_secs() - held[0].not_before().as_secs()) / 86_400 / 365;
    assert_eq!(years, 2);
    assert_eq!(held[0].public_key().bits(), 2048);
}
