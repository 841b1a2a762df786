//! The three RSA2 backends against each other: `Rsa2PublicKey` (the `rsa` crate),
//! `RingRsa2PublicKey` (`ring`) and `FixedRsa2PublicKey` (no heap), on a pool of keys of
//! 2048, 2050, 3072 and 4096 bits with exponents 3 and 65537, with valid signatures, corrupted
//! ones, and signatures of deliberately malformed encodings.
//!
//! Every check compares the exact results (`Ok`, `WrongLength { .. }`, `Mismatch`): a backend
//! that answered differently from the others on any input fails the test.
//!
//! Generating RSA keys is slow, so the pool is made once per test binary and the properties
//! vary messages, signatures and corruptions. The generated keys are new on every run (over
//! many runs, many keys); a failure names its key with the seed that made it, and
//! `RSA_POOL_SEED=<seed>` makes the same pool again.
#![cfg(all(feature = "rsa", feature = "ring", feature = "rsa-fixed"))]

use std::sync::OnceLock;

use paystate::signature::{
    FixedRsa2048, FixedRsa3072, FixedRsa4096, KeyError, RingRsa2PublicKey, Rsa2PublicKey,
    Rsa2Verifier, SHA256_DIGEST_INFO_PREFIX, SignatureError, SignedMessage,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, Pkcs1v15Sign};
use sha2::{Digest, Sha256};

type Verdict = Result<(), SignatureError>;

/// One key of the pool, loaded into every backend that can hold it.
struct PoolKey {
    label: String,
    private: rsa::PrivateKey,
    rsa: Rsa2PublicKey,
    ring: RingRsa2PublicKey,
    fixed4096: FixedRsa4096,
    fixed3072: Option<FixedRsa3072>,
    fixed2048: Option<FixedRsa2048>,
}

impl PoolKey {
    fn new(label: String, private: rsa::PrivateKey) -> PoolKey {
        let der = private
            .to_public_key()
            .to_public_key_der()
            .expect("encodes")
            .into_vec();
        let bits = private.n().bit_width_vartime();
        let fixed3072 = FixedRsa3072::from_der(&der);
        let fixed2048 = FixedRsa2048::from_der(&der);
        // A key loads into a fixed type exactly when it fits.
        assert_eq!(fixed3072.is_ok(), bits <= 3072, "{label}");
        assert_eq!(fixed2048.is_ok(), bits <= 2048, "{label}");
        if bits > 2048 {
            assert_eq!(
                fixed2048.err(),
                Some(KeyError::ExceedsCapacity {
                    bits,
                    capacity_bits: 2048
                })
            );
        }
        PoolKey {
            rsa: Rsa2PublicKey::from_der(&der).expect("rsa loads"),
            ring: RingRsa2PublicKey::from_der(&der).expect("ring loads"),
            fixed4096: FixedRsa4096::from_der(&der).expect("fixed loads"),
            fixed3072: fixed3072.ok(),
            fixed2048: fixed2048.ok(),
            label,
            private,
        }
    }

    fn k(&self) -> usize {
        self.rsa.signature_len()
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.private
            .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message))
            .expect("signs")
    }

    /// The RSA private operation on an arbitrary encoded message: a "signature" whose public
    /// operation gives back exactly `em` (as the `rsa` crate's signing does for a well-formed
    /// one). `em` must be below the modulus.
    fn sign_raw(&self, em: &[u8]) -> Vec<u8> {
        let n = self.private.n();
        let c = BoxedUint::from_be_slice(em, n.bits_precision()).expect("fits");
        let s = rsa::hazmat::rsa_decrypt_and_check(&self.private, None::<&mut StdRng>, &c)
            .expect("private operation");
        let bytes = s.to_be_bytes();
        bytes[bytes.len() - self.k()..].to_vec()
    }

    /// Every backend's verdict, in a fixed order, over a message given as `pieces`.
    fn verdicts<M: SignedMessage + ?Sized>(&self, message: &M, signature: &[u8]) -> Vec<Verdict> {
        let mut v = vec![
            self.rsa.verify_message(message, signature),
            self.ring.verify_message(message, signature),
            self.fixed4096.verify_message(message, signature),
        ];
        if let Some(k) = &self.fixed3072 {
            v.push(k.verify_message(message, signature));
        }
        if let Some(k) = &self.fixed2048 {
            v.push(k.verify_message(message, signature));
        }
        v
    }

    /// Asserts that every backend gives the same verdict, and returns it.
    fn agreed(&self, message: &[u8], signature: &[u8]) -> Verdict {
        let verdicts = self.verdicts(message, signature);
        assert!(
            verdicts.iter().all(|v| *v == verdicts[0]),
            "{}: backends disagree (rsa, ring, fixed4096, fixed3072?, fixed2048?): {verdicts:?}",
            self.label
        );
        // The same message in pieces (ring joins them, the others stream them) changes nothing.
        let (a, b) = message.split_at(message.len() / 2);
        let pieces: [&[u8]; 3] = [a, b"", b];
        assert_eq!(
            self.verdicts(&pieces, signature),
            verdicts,
            "{}: pieces",
            self.label
        );
        verdicts[0]
    }
}

fn key_file(name: &str) -> rsa::PrivateKey {
    let path = format!("{}/tests/data/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    let pem = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    rsa::PrivateKey::from_pkcs8_pem(&pem).expect("a PKCS#8 key")
}

fn pool() -> &'static [PoolKey] {
    static POOL: OnceLock<Vec<PoolKey>> = OnceLock::new();
    POOL.get_or_init(|| {
        let seed = std::env::var("RSA_POOL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(rand::random);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut generate = |bits: usize, e: u64| {
            let key = rsa::PrivateKey::new_with_exp(&mut rng, bits, BoxedUint::from(e))
                .expect("generates");
            PoolKey::new(
                format!("generated {bits}-bit e={e}, RSA_POOL_SEED={seed}"),
                key,
            )
        };
        vec![
            generate(2048, 65537),
            generate(2048, 65537),
            generate(2048, 65537),
            generate(2048, 3),
            generate(2048, 3),
            // Not a whole number of 64-bit words: 257-byte signatures.
            generate(2050, 65537),
            generate(3072, 3),
            PoolKey::new("app2048 (OpenSSL)".into(), key_file("app2048.pkcs8.pem")),
            PoolKey::new("app4096 (OpenSSL)".into(), key_file("app4096.pkcs8.pem")),
        ]
    })
}

fn key(index: usize) -> &'static PoolKey {
    let pool = pool();
    &pool[index % pool.len()]
}

/// How a valid signature is damaged.
#[derive(Debug, Clone)]
enum Corruption {
    FlipBit {
        at: usize,
        bit: u8,
    },
    SetByte {
        at: usize,
        byte: u8,
    },
    Truncate {
        by: usize,
    },
    PrependZero,
    AppendByte(u8),
    /// Random bytes of the right length.
    Replace(Vec<u8>),
    /// `s + n`: the same residue, out of range.
    AddModulus,
    /// `n - 1`, and `n` itself.
    ModulusMinusOne,
    Modulus,
    Zero,
    One,
    AllFf,
}

fn corruption() -> impl Strategy<Value = Corruption> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Corruption::FlipBit { at, bit }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Corruption::SetByte { at, byte }),
        1 => (1usize..4).prop_map(|by| Corruption::Truncate { by }),
        1 => Just(Corruption::PrependZero),
        1 => any::<u8>().prop_map(Corruption::AppendByte),
        2 => proptest::collection::vec(any::<u8>(), 512).prop_map(Corruption::Replace),
        1 => Just(Corruption::AddModulus),
        1 => Just(Corruption::ModulusMinusOne),
        1 => Just(Corruption::Modulus),
        1 => Just(Corruption::Zero),
        1 => Just(Corruption::One),
        1 => Just(Corruption::AllFf),
    ]
}

fn modulus_be(key: &PoolKey) -> Vec<u8> {
    let bytes = key.private.n().to_be_bytes();
    bytes[bytes.len() - key.k()..].to_vec()
}

fn apply(key: &PoolKey, mut sig: Vec<u8>, c: &Corruption) -> Vec<u8> {
    let k = key.k();
    match c {
        Corruption::FlipBit { at, bit } => sig[at % k] ^= 1 << bit,
        Corruption::SetByte { at, byte } => sig[at % k] = *byte,
        Corruption::Truncate { by } => sig.truncate(k - by),
        Corruption::PrependZero => sig.insert(0, 0),
        Corruption::AppendByte(b) => sig.push(*b),
        Corruption::Replace(bytes) => sig = bytes[..k].to_vec(),
        Corruption::AddModulus => {
            let n = modulus_be(key);
            let mut carry = 0u16;
            for i in (0..k).rev() {
                let sum = u16::from(sig[i]) + u16::from(n[i]) + carry;
                sig[i] = sum as u8;
                carry = sum >> 8;
            }
            if carry != 0 {
                sig.insert(0, 1);
            }
        }
        Corruption::ModulusMinusOne => {
            sig = modulus_be(key);
            sig[k - 1] -= 1; // n is odd
        }
        Corruption::Modulus => sig = modulus_be(key),
        Corruption::Zero => sig = vec![0; k],
        Corruption::One => {
            sig = vec![0; k];
            sig[k - 1] = 1;
        }
        Corruption::AllFf => sig = vec![0xff; k],
    }
    sig
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// A genuine signature verifies with every backend, whole or in pieces.
    #[test]
    fn genuine_signatures_verify_everywhere(
        index in 0usize..64,
        message in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let key = key(index);
        let sig = key.sign(&message);
        prop_assert_eq!(key.agreed(&message, &sig), Ok(()), "{}", key.label);
    }

    /// A corrupted signature gets the same verdict from every backend, and never `Ok`
    /// (except for the corruptions that cannot change the value).
    #[test]
    fn corrupted_signatures_get_one_verdict(
        index in 0usize..64,
        message in proptest::collection::vec(any::<u8>(), 0..200),
        corruption in corruption(),
    ) {
        let key = key(index);
        let genuine = key.sign(&message);
        let sig = apply(key, genuine.clone(), &corruption);
        let verdict = key.agreed(&message, &sig);
        if sig != genuine {
            prop_assert_ne!(verdict, Ok(()), "{}: {:?}", key.label, corruption);
        }
        if sig.len() != key.k() {
            prop_assert_eq!(
                verdict,
                Err(SignatureError::WrongLength { expected: key.k(), got: sig.len() })
            );
        }
    }

    /// A genuine signature of another message fails everywhere.
    #[test]
    fn another_messages_signature_fails_everywhere(
        index in 0usize..64,
        message in proptest::collection::vec(any::<u8>(), 1..200),
        flip in any::<usize>(),
    ) {
        let key = key(index);
        let sig = key.sign(&message);
        let mut other = message.clone();
        let at = flip % other.len();
        other[at] ^= 1;
        prop_assert_eq!(key.agreed(&other, &sig), Err(SignatureError::Mismatch));
    }

    /// Signatures of encodings that are almost right (RFC 8017 §9.2 with one thing off):
    /// every backend refuses every one. The well-formed encoding made the same way verifies,
    /// so the construction itself is sound.
    #[test]
    fn malformed_encodings_are_refused_everywhere(
        index in 0usize..64,
        message in proptest::collection::vec(any::<u8>(), 0..100),
        flaw in 0usize..FLAWS,
        junk in any::<u8>(),
    ) {
        let key = key(index);
        let digest: [u8; 32] = Sha256::digest(&message).into();
        let good = encoding(key.k(), &digest, None, junk);
        prop_assert_eq!(key.agreed(&message, &key.sign_raw(&good)), Ok(()));
        prop_assert_eq!(key.sign_raw(&good), key.sign(&message));
        let bad = encoding(key.k(), &digest, Some(flaw), junk);
        prop_assert_ne!(&bad, &good);
        prop_assert_eq!(
            key.agreed(&message, &key.sign_raw(&bad)),
            Err(SignatureError::Mismatch),
            "{}: flaw {}", key.label, flaw
        );
    }
}

const FLAWS: usize = 9;

/// `00 01 FF..FF 00 DigestInfo hash`, `k` bytes, with one flaw (or none):
fn encoding(k: usize, digest: &[u8; 32], flaw: Option<usize>, junk: u8) -> Vec<u8> {
    let mut prefix = SHA256_DIGEST_INFO_PREFIX.to_vec();
    let mut hash = digest.to_vec();
    let mut block_type = 0x01;
    let mut separator = 0x00;
    let mut trailer = Vec::new();
    match flaw {
        None => {}
        // Block type 2 (encryption padding).
        Some(0) => block_type = 0x02,
        // The separator is not zero.
        Some(1) => separator = 0x01,
        // DigestInfo without the NULL parameters (a lax encoding some signers made).
        Some(2) => {
            prefix = vec![
                0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
                0x01, 0x04, 0x20,
            ];
        }
        // Another hash's OID (SHA-512/256, the same length of hash).
        Some(3) => prefix[14] = 0x06,
        // BER long-form length for the outer SEQUENCE.
        Some(4) => {
            prefix.splice(1..2, [0x81, 0x31]);
        }
        // Garbage after the hash, taken out of the padding (Bleichenbacher 2006).
        Some(5) => {
            trailer = vec![junk; 8];
        }
        // A wrong hash.
        Some(6) => hash[31] ^= 0x01,
        // A zero byte inside the padding.
        Some(7) => {}
        // A truncated hash, and one more padding byte.
        Some(_) => {
            hash.pop();
            prefix[18] = 0x1f;
            prefix[1] -= 1;
        }
    }
    // The padding takes whatever the rest leaves, so every variant is exactly k bytes.
    let ps_len = k - prefix.len() - hash.len() - trailer.len() - 3;
    let mut em = vec![0x00, block_type];
    em.extend(std::iter::repeat_n(0xff, ps_len));
    if flaw == Some(7) {
        em[2 + ps_len / 2] = 0x00;
    }
    em.push(separator);
    em.extend(prefix);
    em.extend(hash);
    em.extend(trailer);
    assert_eq!(em.len(), k);
    em
}

/// A signature whose integer is small enough to start with zero bytes is still `k` bytes
/// long and verifies; stripped of its leading zero it is the wrong length everywhere.
#[test]
fn leading_zero_bytes_in_a_signature() {
    for key in pool() {
        let (message, sig) = (0u32..)
            .map(|i| {
                let m = format!("out_trade_no={i}").into_bytes();
                let s = key.sign(&m);
                (m, s)
            })
            .find(|(_, s)| s[0] == 0)
            .expect("one signature in 256 starts with a zero byte");
        assert_eq!(key.agreed(&message, &sig), Ok(()), "{}", key.label);
        assert_eq!(
            key.agreed(&message, &sig[1..]),
            Err(SignatureError::WrongLength {
                expected: key.k(),
                got: key.k() - 1
            }),
            "{}",
            key.label
        );
    }
}

/// The edges of the signature's range and length, on every key.
#[test]
fn signature_range_and_length_edges() {
    for key in pool() {
        let message = b"total_amount=88.88";
        let sig = key.sign(message);
        // s + n: out of range, or (when it carries) one byte too long.
        let above = apply(key, sig.clone(), &Corruption::AddModulus);
        let expected = if above.len() == key.k() {
            Err(SignatureError::Mismatch)
        } else {
            Err(SignatureError::WrongLength {
                expected: key.k(),
                got: above.len(),
            })
        };
        assert_eq!(key.agreed(message, &above), expected, "{}", key.label);
        for c in [
            Corruption::Modulus,
            Corruption::ModulusMinusOne,
            Corruption::Zero,
            Corruption::One,
            Corruption::AllFf,
        ] {
            assert_eq!(
                key.agreed(message, &apply(key, sig.clone(), &c)),
                Err(SignatureError::Mismatch),
                "{}: {c:?}",
                key.label
            );
        }
        for c in [
            Corruption::Truncate { by: 1 },
            Corruption::PrependZero,
            Corruption::AppendByte(0),
        ] {
            let bad = apply(key, sig.clone(), &c);
            assert_eq!(
                key.agreed(message, &bad),
                Err(SignatureError::WrongLength {
                    expected: key.k(),
                    got: bad.len()
                }),
                "{}: {c:?}",
                key.label
            );
        }
        assert_eq!(
            key.agreed(message, &[]),
            Err(SignatureError::WrongLength {
                expected: key.k(),
                got: 0
            })
        );
    }
}

/// The pool covers what the backends must agree on: 2048 to 4096 bits, both usual
/// exponents, a modulus that is not a whole number of words.
#[test]
fn the_pool_covers_the_edges() {
    let shapes: Vec<(u32, u64)> = pool()
        .iter()
        .map(|k| (k.rsa.bits(), k.fixed4096.exponent()))
        .collect();
    for shape in [
        (2048, 3),
        (2048, 65537),
        (2050, 65537),
        (3072, 3),
        (4096, 65537),
    ] {
        assert!(shapes.contains(&shape), "{shape:?} missing from {shapes:?}");
    }
    for key in pool() {
        assert_eq!(key.ring.bits(), key.rsa.bits());
        assert_eq!(key.fixed4096.bits(), key.rsa.bits());
        assert_eq!(key.fixed4096.signature_len(), key.k());
        assert_eq!(key.ring.signature_len(), key.k());
        let mut out = [0u8; 512];
        assert_eq!(
            key.fixed4096.modulus_be(&mut out),
            modulus_be(key).as_slice()
        );
    }
}

/// Every backend loads the same key files and refuses the others with the same error:
/// swapping backends never changes which configuration is valid.
#[test]
fn every_backend_loads_and_refuses_the_same_key_files() {
    let dir = format!("{}/tests/data/keys", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the key directory")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|x| x != "md" && x != "txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "{files:?}");
    let mut loaded = 0;
    for path in files {
        let bytes = std::fs::read(&path).expect("readable");
        let rsa = Rsa2PublicKey::parse(&bytes).map(|k| (k.bits(), k.signature_len()));
        let ring = RingRsa2PublicKey::parse(&bytes).map(|k| (k.bits(), k.signature_len()));
        let fixed = FixedRsa4096::parse(&bytes).map(|k| (k.bits(), k.signature_len()));
        assert_eq!(ring, rsa, "{}", path.display());
        assert_eq!(fixed, rsa, "{}", path.display());
        loaded += usize::from(rsa.is_ok());
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let rsa = Rsa2PublicKey::from_pem(text).map(|k| k.bits());
            assert_eq!(RingRsa2PublicKey::from_pem(text).map(|k| k.bits()), rsa);
            assert_eq!(FixedRsa4096::from_pem(text).map(|k| k.bits()), rsa);
            let rsa = Rsa2PublicKey::from_base64(text).map(|k| k.bits());
            assert_eq!(RingRsa2PublicKey::from_base64(text).map(|k| k.bits()), rsa);
            assert_eq!(FixedRsa4096::from_base64(text).map(|k| k.bits()), rsa);
        } else {
            let rsa = Rsa2PublicKey::from_der(&bytes).map(|k| k.bits());
            assert_eq!(RingRsa2PublicKey::from_der(&bytes).map(|k| k.bits()), rsa);
            assert_eq!(FixedRsa4096::from_der(&bytes).map(|k| k.bits()), rsa);
        }
    }
    // The 2048-bit public key as SPKI PEM, DER and base64 and as PKCS#1 PEM and DER loads;
    // the private keys, the EC, 1024- and 8192-bit keys and the signatures do not.
    assert_eq!(loaded, 5);
    assert_eq!(
        FixedRsa4096::parse(b"  \n"),
        Err(KeyError::Empty),
        "whitespace only"
    );
}
