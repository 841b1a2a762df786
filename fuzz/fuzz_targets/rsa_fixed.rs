//! The heap-free RSA2 verifier (`FixedRsa2PublicKey`) against the `rsa` crate and `ring`, on
//! arbitrary input.
//!
//! The key comes from a fixed pool (the OpenSSL test keys of `tests/data/keys`: 2048 bits with
//! e = 65537 and with e = 3, 2050, 3072 and 4096 bits), so the fuzzer spends its time on
//! signatures, not key generation. The signature is either arbitrary bytes over an
//! arbitrary message, or one of the pool's genuine signatures with arbitrary edits (bit flips,
//! byte sets, truncation, extension, `s + n`, the modulus itself) over its message, possibly
//! edited too. Checked:
//! - every backend (`rsa`, `ring`, `FixedRsa4096`, and `FixedRsa3072`/`FixedRsa2048` where
//!   the key fits) gives exactly the same result, `Ok` or the same error;
//! - a signature of the wrong length is `WrongLength` with the right numbers;
//! - an unedited genuine signature verifies; an edited one or an edited message never does;
//! - the heap-free verifier never allocates.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use paystate::signature::{
    FixedRsa2048, FixedRsa3072, FixedRsa4096, RingRsa2PublicKey, Rsa2PublicKey, Rsa2Verifier,
    SignatureError,
};
use paystate_fuzz::no_alloc;
use rsa::Pkcs1v15Sign;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};

/// Messages every pool key has a genuine signature of.
const MESSAGES: [&[u8]; 4] = [
    b"",
    b"app_id=2021000000000000&out_trade_no=o-1&total_amount=88.88&trade_status=TRADE_SUCCESS",
    b"1554208460\n593BEC0C930BF1AFEB40B4A08C8FB242\n{\"id\":\"EV-2018022511223320873\"}\n",
    b"\x00\xff",
];

struct PoolKey {
    modulus: Vec<u8>,
    rsa: Rsa2PublicKey,
    ring: RingRsa2PublicKey,
    fixed4096: FixedRsa4096,
    fixed3072: Option<FixedRsa3072>,
    fixed2048: Option<FixedRsa2048>,
    signatures: Vec<Vec<u8>>,
}

fn pool() -> &'static [PoolKey] {
    static POOL: OnceLock<Vec<PoolKey>> = OnceLock::new();
    POOL.get_or_init(|| {
        // Committed keys: generating RSA keys under the fuzzer's instrumentation takes longer
        // than its timeout.
        let keys = [
            include_str!("../../tests/data/keys/app2048.pkcs8.pem"),
            include_str!("../../tests/data/keys/e3-2048.pkcs8.pem"),
            include_str!("../../tests/data/keys/odd2050.pkcs8.pem"),
            include_str!("../../tests/data/keys/app3072.pkcs8.pem"),
            include_str!("../../tests/data/keys/app4096.pkcs8.pem"),
        ]
        .map(|pem| rsa::PrivateKey::from_pkcs8_pem(pem).expect("a PKCS#8 key"));
        keys.into_iter()
            .map(|private| {
                let der = private
                    .to_public_key()
                    .to_public_key_der()
                    .expect("encodes")
                    .into_vec();
                let k = private.size();
                let n = private.n().to_be_bytes();
                PoolKey {
                    modulus: n[n.len() - k..].to_vec(),
                    rsa: Rsa2PublicKey::from_der(&der).expect("loads"),
                    ring: RingRsa2PublicKey::from_der(&der).expect("loads"),
                    fixed4096: FixedRsa4096::from_der(&der).expect("loads"),
                    fixed3072: FixedRsa3072::from_der(&der).ok(),
                    fixed2048: FixedRsa2048::from_der(&der).ok(),
                    signatures: MESSAGES
                        .iter()
                        .map(|m| {
                            private
                                .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(m))
                                .expect("signs")
                        })
                        .collect(),
                }
            })
            .collect()
    })
}

#[derive(Arbitrary, Debug)]
enum Edit {
    Flip {
        at: u16,
        bit: u8,
    },
    Set {
        at: u16,
        byte: u8,
    },
    Truncate {
        by: u16,
    },
    Prepend(u8),
    Append(u8),
    /// `s + n` over the signature's own length (the carry dropped): the same residue when it
    /// does not carry, out of range either way.
    AddModulus,
    /// The modulus itself.
    Modulus,
}

#[derive(Arbitrary, Debug)]
enum Case<'a> {
    /// A genuine signature, edited; its message, possibly edited too.
    Mutated {
        key: u8,
        message: u8,
        edits: Vec<Edit>,
        message_edit: Option<(u16, u8)>,
    },
    /// Arbitrary bytes, as a signature of arbitrary bytes (split: the message is the rest).
    Arbitrary {
        key: u8,
        signature: Vec<u8>,
        message: &'a [u8],
    },
}

fn edit(sig: &mut Vec<u8>, e: &Edit, modulus: &[u8]) {
    match *e {
        Edit::Flip { at, bit } if !sig.is_empty() => {
            let at = usize::from(at) % sig.len();
            sig[at] ^= 1 << (bit % 8);
        }
        Edit::Set { at, byte } if !sig.is_empty() => {
            let at = usize::from(at) % sig.len();
            sig[at] = byte;
        }
        Edit::Truncate { by } => sig.truncate(sig.len().saturating_sub(usize::from(by))),
        Edit::Prepend(b) => sig.insert(0, b),
        Edit::Append(b) => sig.push(b),
        Edit::AddModulus => {
            let mut carry = 0u16;
            for (s, &n) in sig.iter_mut().rev().zip(modulus.iter().rev()) {
                let sum = u16::from(*s) + u16::from(n) + carry;
                *s = sum as u8;
                carry = sum >> 8;
            }
        }
        Edit::Modulus => *sig = modulus.to_vec(),
        _ => {}
    }
}

fn verdicts(key: &PoolKey, message: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
    let fixed = no_alloc("FixedRsa4096::verify", || {
        key.fixed4096.verify(message, sig)
    });
    let all = [
        Some(key.rsa.verify_message(message, sig)),
        Some(key.ring.verify_message(message, sig)),
        Some(fixed),
        key.fixed3072
            .as_ref()
            .map(|k| no_alloc("FixedRsa3072::verify", || k.verify(message, sig))),
        key.fixed2048
            .as_ref()
            .map(|k| no_alloc("FixedRsa2048::verify", || k.verify(message, sig))),
    ];
    let rsa = key.rsa.verify_message(message, sig);
    for (backend, verdict) in ["rsa", "ring", "fixed4096", "fixed3072", "fixed2048"]
        .iter()
        .zip(all)
    {
        if let Some(verdict) = verdict {
            assert_eq!(verdict, rsa, "{backend} disagrees with rsa");
        }
    }
    rsa
}

fuzz_target!(|case: Case<'_>| {
    let pool = pool();
    match case {
        Case::Mutated {
            key,
            message,
            edits,
            message_edit,
        } => {
            let key = &pool[usize::from(key) % pool.len()];
            let index = usize::from(message) % MESSAGES.len();
            let genuine = &key.signatures[index];
            let mut sig = genuine.clone();
            for e in &edits {
                edit(&mut sig, e, &key.modulus);
            }
            let mut msg = MESSAGES[index].to_vec();
            if let Some((at, byte)) = message_edit {
                if msg.is_empty() {
                    msg.push(byte);
                } else {
                    let at = usize::from(at) % msg.len();
                    msg[at] ^= byte.max(1);
                }
            }
            let verdict = verdicts(key, &msg, &sig);
            if sig == *genuine && msg == MESSAGES[index] {
                assert_eq!(verdict, Ok(()), "a genuine signature");
            } else {
                assert_ne!(verdict, Ok(()), "an edited signature or message");
            }
        }
        Case::Arbitrary {
            key,
            signature,
            message,
        } => {
            let key = &pool[usize::from(key) % pool.len()];
            let verdict = verdicts(key, message, &signature);
            let expected = key.rsa.signature_len();
            if signature.len() != expected {
                assert_eq!(
                    verdict,
                    Err(SignatureError::WrongLength {
                        expected,
                        got: signature.len()
                    })
                );
            }
        }
    }
});
