//! Project Wycheproof's RSASSA-PKCS1-v1_5 SHA-256 vectors (2048, 3072 and 4096 bits) through
//! every RSA2 backend: each must give the vector's verdict, and all must give the same error.
//!
//! The vectors include signatures of encodings with a missing NULL, BER lengths, garbage
//! after the hash, short padding, the wrong hash, and signatures at or above the modulus.
#![cfg(all(feature = "rsa", feature = "ring", feature = "rsa-fixed"))]

use paystate::signature::{
    FixedRsa2048, FixedRsa3072, FixedRsa4096, RingRsa2PublicKey, Rsa2PublicKey, Rsa2Verifier,
    SignatureError,
};
use wycheproof::TestResult;
use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};

fn verdicts(der: &[u8], message: &[u8], sig: &[u8]) -> Vec<Result<(), SignatureError>> {
    let mut v = vec![
        Rsa2PublicKey::from_der(der)
            .expect("rsa loads")
            .verify_message(message, sig),
        RingRsa2PublicKey::from_der(der)
            .expect("ring loads")
            .verify_message(message, sig),
        FixedRsa4096::from_der(der)
            .expect("fixed loads")
            .verify_message(message, sig),
    ];
    if let Ok(k) = FixedRsa3072::from_der(der) {
        v.push(k.verify_message(message, sig));
    }
    if let Ok(k) = FixedRsa2048::from_der(der) {
        v.push(k.verify_message(message, sig));
    }
    v
}

#[test]
fn wycheproof_pkcs1_v1_5_sha256_vectors() {
    for name in [
        TestName::Rsa2048Sha256,
        TestName::Rsa3072Sha256,
        TestName::Rsa4096Sha256,
    ] {
        let set = TestSet::load(name).expect("the vectors load");
        let (mut valid, mut invalid) = (0, 0);
        for group in &set.test_groups {
            assert_eq!(group.hash, wycheproof::HashFunction::Sha2_256);
            for test in &group.tests {
                let v = verdicts(&group.der, &test.msg, &test.sig);
                let id = format!("{name:?} #{} ({})", test.tc_id, test.comment);
                assert!(
                    v.iter().all(|x| *x == v[0]),
                    "{id}: backends disagree: {v:?}"
                );
                match test.result {
                    TestResult::Valid => {
                        assert_eq!(v[0], Ok(()), "{id}");
                        valid += 1;
                    }
                    TestResult::Invalid => {
                        assert_ne!(v[0], Ok(()), "{id}");
                        invalid += 1;
                    }
                    // Allowed either way; the backends still agree (checked above).
                    TestResult::Acceptable => {}
                }
            }
        }
        println!("{name:?}: {valid} valid, {invalid} invalid");
        assert!(
            valid >= 5 && invalid >= 50,
            "{name:?}: {valid} valid, {invalid} invalid"
        );
    }
}
