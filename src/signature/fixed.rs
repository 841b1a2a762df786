//! RSA2 verification without a heap: the public-key operation in `crypto-bigint`'s fixed-size
//! integers, and a comparison with the one encoding a genuine signature can have.
//!
//! Verification follows RFC 8017 §8.2.2 with the encoding of §9.2, and never parses the
//! padding: from the digest it builds the whole expected encoded message
//! `00 01 FF…FF 00 ‖ DigestInfo(SHA-256) ‖ hash`, as long as the modulus, and compares it with
//! `s^e mod n` in constant time. A parser of the padding is where RSA verifiers have gone
//! wrong (Bleichenbacher's 2006 forgery against lax parsers, BER lengths, garbage after the
//! hash); a comparison has no such corners.
//!
//! `s^e mod n` runs in Montgomery form ([`FixedMontyForm`]) by square-and-multiply over the
//! bits of the public exponent: 16 squarings and one multiplication for 65537, one of each for
//! 3. Only public values (the key, the signature) enter it, so nothing here needs to be
//! constant-time; the final comparison is anyway.

use core::cmp::Ordering;
use core::fmt;

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{CtEq, Limb, Odd, U2048, U3072, U4096, Uint, Word};

use super::keyfile::{self, MAX_KEY_DER_LEN, PublicComponents};
use super::verifier::{Rsa2Verifier, SHA256_DIGEST_INFO_PREFIX, SignedMessage, sha256_of};
use super::{KeyError, MAX_SIGNATURE_LEN, MIN_KEY_BITS, SignatureError};

/// A provider's RSA public key for SHA256withRSA (PKCS#1 v1.5) verification, held in
/// fixed-size integers of `LIMBS` machine words: no heap, no `alloc`, `Copy`.
///
/// The capacity is in the type: a key whose modulus needs more than `LIMBS` words is refused
/// with [`KeyError::ExceedsCapacity`]; a smaller key fits but costs what the capacity costs
/// (the arithmetic always runs over all `LIMBS` words). Pick the alias of the provider's key
/// size — [`FixedRsa2048`] for Alipay's and WeChat Pay's keys, [`FixedRsa3072`],
/// [`FixedRsa4096`] — or [`FixedRsa4096`] to take any accepted key.
///
/// Load it once at start-up (from DER, PEM, bare base64 or the two numbers) and keep it; it
/// holds the modulus with its Montgomery constants, `3 × LIMBS` words plus a few more
/// (about 800 bytes for [`FixedRsa2048`]). The same policy as every backend applies: 2048 to
/// 4096 bits, an odd modulus, an odd public exponent from 3 to 2³³−1.
///
/// **How it verifies** (RFC 8017 §8.2.2 with the encoding of §9.2): the signature must be
/// exactly as long as the modulus and below it; `s^e mod n` is computed in Montgomery form by
/// square-and-multiply over the public exponent's bits (16 squarings and one multiplication
/// for 65537); then the whole expected encoded message, `00 01 FF…FF 00 ‖ DigestInfo(SHA-256)
/// ‖ hash` as long as the modulus, is built from the digest and compared with the result in
/// constant time. The padding is never parsed, so the lax-parser forgeries (Bleichenbacher
/// 2006, BER lengths, garbage after the hash) have nothing to exploit. The stack holds a few
/// copies of the key's numbers during a verification and no heap is used.
///
/// ```
/// use paystate::signature::{FixedRsa2048, KeyError, Rsa2Verifier, SignatureError};
///
/// let alipay_key = "
///     MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAk6DCsBIUhWriFohzRV8F
///     ic6oQWNnLKKILNk97VU5qcHEuxYzCujKoyva5gy1170mFJw4IcgJF8AyS7iDUwzA
///     wF4Pp9CpWxDhUhe7mdQJhjBmvTcPLGFFrzlj6unO5lAcbdwaxPUtSxOaNxPJGrTK
///     /wnKQSbjTMMltp1J68q2Tfgrsn/NdZ6lrxO9rvmky8kowqaH5NjntyHO59jCGabM
///     j5sI14z8N61wB/QuIJrDuzIPMPrSNbq0cOWcSCDG09oUHTp9fk7suDB8UiFcmVTX
///     OvK3d4HbeX8V9YsEMxrwxEoYgRRj6K2qrC6oxw480cqf2ueumCmHg6xrcgkyXK81
///     hwIDAQAB
/// ";
/// let key = FixedRsa2048::from_base64(alipay_key)?;
/// assert_eq!((key.bits(), key.exponent(), key.signature_len()), (2048, 65537, 256));
/// assert_eq!(
///     key.verify_message("a=1", &[0u8; 255]),
///     Err(SignatureError::WrongLength { expected: 256, got: 255 })
/// );
/// assert_eq!(key.verify_message("a=1", &[1u8; 256]), Err(SignatureError::Mismatch));
/// # Ok::<(), KeyError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FixedRsa2PublicKey<const LIMBS: usize> {
    params: FixedMontyParams<LIMBS>,
    exponent: u64,
    len: usize,
    bits: u32,
}

/// A key of up to 2048 bits: Alipay's and WeChat Pay's.
pub type FixedRsa2048 = FixedRsa2PublicKey<{ U2048::LIMBS }>;
/// A key of up to 3072 bits.
pub type FixedRsa3072 = FixedRsa2PublicKey<{ U3072::LIMBS }>;
/// A key of up to 4096 bits: any key the crate accepts.
pub type FixedRsa4096 = FixedRsa2PublicKey<{ U4096::LIMBS }>;

impl<const LIMBS: usize> fmt::Debug for FixedRsa2PublicKey<LIMBS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FixedRsa2PublicKey({} bits, e = {})",
            self.bits, self.exponent
        )
    }
}

/// A big-endian integer as a `Uint`, or `None` if it does not fit.
fn uint_from_be<const LIMBS: usize>(be: &[u8]) -> Option<Uint<LIMBS>> {
    let mut words: [Word; LIMBS] = [0; LIMBS];
    let mut chunks = be.rchunks(Limb::BYTES);
    for word in &mut words {
        match chunks.next() {
            Some(chunk) => {
                *word = chunk.iter().fold(0, |w: Word, &b| (w << 8) | Word::from(b));
            }
            None => break,
        }
    }
    if chunks.any(|rest| rest.iter().any(|&b| b != 0)) {
        return None;
    }
    Some(Uint::from_words(words))
}

/// EMSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §9.2): `00 01 PS 00 T`, where `T` is the
/// `DigestInfo` of the hash and `PS` is `em_len − len(T) − 3` bytes of `FF`, at least 8.
/// `None` if `em_len` is too short for that (§9.2 step 3) or longer than the buffer.
fn emsa_pkcs1_v1_5_sha256<'b>(
    digest: &[u8; 32],
    em_len: usize,
    buf: &'b mut [u8; MAX_SIGNATURE_LEN],
) -> Option<&'b [u8]> {
    const T_LEN: usize = SHA256_DIGEST_INFO_PREFIX.len() + 32;
    let ps_len = em_len.checked_sub(T_LEN + 3).filter(|&ps| ps >= 8)?;
    let em = buf.get_mut(..em_len)?;
    let bytes = [0x00u8, 0x01]
        .iter()
        .chain(core::iter::repeat_n(&0xffu8, ps_len))
        .chain(core::iter::once(&0x00u8))
        .chain(SHA256_DIGEST_INFO_PREFIX.iter())
        .chain(digest.iter());
    for (slot, &b) in em.iter_mut().zip(bytes) {
        *slot = b;
    }
    Some(em)
}

impl<const LIMBS: usize> FixedRsa2PublicKey<LIMBS> {
    /// Loads a DER key: an X.509 `SubjectPublicKeyInfo` (what Alipay's base64 and a
    /// `PUBLIC KEY` PEM hold, and what a certificate carries) or a PKCS#1 `RSAPublicKey`.
    ///
    /// # Errors
    ///
    /// The same [`KeyError`]s as `Rsa2PublicKey::from_der` for the same input, and
    /// [`KeyError::ExceedsCapacity`] for a key larger than this type holds.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        Self::from_components(keyfile::public_from_der(der, MIN_KEY_BITS)?)
    }

    /// Loads a PEM key: `-----BEGIN PUBLIC KEY-----` (SPKI) or `-----BEGIN RSA PUBLIC
    /// KEY-----` (PKCS#1). Line width, CRLF and surrounding whitespace do not matter. The
    /// base64 is decoded into a buffer on the stack (2.5 KiB, for this call only).
    ///
    /// # Errors
    ///
    /// As [`FixedRsa2PublicKey::from_der`], plus the PEM errors ([`KeyError::InvalidPem`],
    /// [`KeyError::UnsupportedPemLabel`], [`KeyError::Certificate`],
    /// [`KeyError::PrivateKeyGiven`] for a private key's label).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let mut buf = [0u8; MAX_KEY_DER_LEN];
        Self::from_der(keyfile::pem_public_der(pem, &mut buf)?)
    }

    /// Loads the bare base64 that Alipay's console shows (a base64 SPKI, no PEM lines);
    /// whitespace and line breaks anywhere are ignored, and a PKCS#1 body loads too.
    ///
    /// # Errors
    ///
    /// As [`FixedRsa2PublicKey::from_der`], plus [`KeyError::InvalidBase64`].
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let mut buf = [0u8; MAX_KEY_DER_LEN];
        Self::from_der(keyfile::decode_base64_lax(text.as_bytes(), &mut buf)?)
    }

    /// Loads a key file in any of the forms above: PEM (it holds `-----BEGIN`), DER (it
    /// starts with a SEQUENCE byte) or bare base64. Certificates are not read here: pass the
    /// certificate's `SubjectPublicKeyInfo` DER to [`FixedRsa2PublicKey::from_der`].
    ///
    /// # Errors
    ///
    /// As the loader of the form found.
    pub fn parse(bytes: &[u8]) -> Result<Self, KeyError> {
        let mut buf = [0u8; MAX_KEY_DER_LEN];
        Self::from_der(keyfile::key_file_der(bytes, &mut buf)?)
    }

    /// A key from its two numbers, as a host that stores `(n, e)` in its own configuration
    /// keeps them: the modulus big-endian (leading zero bytes allowed), the exponent
    /// big-endian (`[1, 0, 1]` for 65537).
    ///
    /// # Errors
    ///
    /// [`KeyError::TooSmall`], [`KeyError::TooLarge`], [`KeyError::ExceedsCapacity`], or
    /// [`KeyError::InvalidKey`] for an even modulus or an exponent that is even or outside
    /// 3..=2³³−1.
    pub fn from_modulus_and_exponent(modulus: &[u8], exponent: &[u8]) -> Result<Self, KeyError> {
        Self::from_components(keyfile::check_components(modulus, exponent, MIN_KEY_BITS)?)
    }

    /// From numbers the key policy accepted (with whatever smallest size the caller chose).
    pub(crate) fn from_components(key: PublicComponents<'_>) -> Result<Self, KeyError> {
        let capacity_bits = Uint::<LIMBS>::BITS;
        let too_large = KeyError::ExceedsCapacity {
            bits: key.bits,
            capacity_bits,
        };
        if key.bits > capacity_bits {
            return Err(too_large);
        }
        let modulus = uint_from_be::<LIMBS>(key.modulus).ok_or(too_large)?;
        let modulus = Odd::new(modulus)
            .into_option()
            .ok_or(KeyError::InvalidKey)?;
        Ok(FixedRsa2PublicKey {
            // The modulus is public: computing its constants in variable time leaks nothing.
            params: FixedMontyParams::new_vartime(modulus),
            exponent: key.exponent,
            len: key.modulus.len(),
            bits: key.bits,
        })
    }

    /// The modulus size in bits (2048..=4096).
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The public exponent (odd, 3..=2³³−1; almost always 65537).
    pub fn exponent(&self) -> u64 {
        self.exponent
    }

    /// The length of every valid signature under this key, in bytes: the modulus's (256 for
    /// 2048 bits).
    pub fn signature_len(&self) -> usize {
        self.len
    }

    /// Writes the modulus, big-endian and [`signature_len`](Self::signature_len) bytes long,
    /// into `out` and returns it: with [`exponent`](Self::exponent), what a host stores to
    /// rebuild the key with [`from_modulus_and_exponent`](Self::from_modulus_and_exponent).
    pub fn modulus_be<'o>(&self, out: &'o mut [u8; MAX_SIGNATURE_LEN]) -> &'o [u8] {
        let words = self.params.modulus().as_ref().as_words();
        let mut bytes = words.iter().flat_map(|w| w.to_le_bytes());
        let start = MAX_SIGNATURE_LEN.saturating_sub(self.len);
        let (_, modulus) = out.split_at_mut(start);
        for slot in modulus.iter_mut().rev() {
            *slot = bytes.next().unwrap_or(0);
        }
        modulus
    }

    /// RSAVP1 (RFC 8017 §5.2.2): `s^e mod n` for a representative already checked `< n`.
    fn rsavp1(&self, s: &Uint<LIMBS>) -> Uint<LIMBS> {
        let base = FixedMontyForm::new(s, &self.params);
        let mut acc = base;
        // Left to right over the exponent's bits below the top one (e ≥ 3 has at least two).
        let top = self.exponent.checked_ilog2().unwrap_or(0);
        for bit in (0..top).rev() {
            acc = acc.square();
            if (self.exponent >> bit) & 1 == 1 {
                acc = acc.mul(&base);
            }
        }
        acc.retrieve()
    }

    /// Checks a PKCS#1 v1.5 signature over a SHA-256 digest the host computed (for example by
    /// streaming a provider's signed content into a `Sha256`): RFC 8017 §8.2.2, with the
    /// whole expected encoding compared, never the padding parsed.
    ///
    /// # Errors
    ///
    /// [`SignatureError::WrongLength`] if `signature` is not [`signature_len`](Self::signature_len)
    /// bytes; [`SignatureError::Mismatch`] if it is not below the modulus or is not this
    /// key's signature of the digest.
    pub fn verify_digest(
        &self,
        sha256_digest: &[u8; 32],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        // §8.2.2 step 1: the signature is exactly k bytes.
        if signature.len() != self.len {
            return Err(SignatureError::WrongLength {
                expected: self.len,
                got: signature.len(),
            });
        }
        // Step 2a-b: OS2IP, and the representative must be below n (RSAVP1 step 1).
        let s = uint_from_be::<LIMBS>(signature).ok_or(SignatureError::Mismatch)?;
        if s.cmp_vartime(self.params.modulus().as_ref()) != Ordering::Less {
            return Err(SignatureError::Mismatch);
        }
        let m = self.rsavp1(&s);
        // Steps 3-4: the expected encoding, as an integer; I2OSP(m, k) equals EM exactly when
        // the integers are equal, as both are below 2^(8k).
        let mut em_buf = [0u8; MAX_SIGNATURE_LEN];
        let expected = emsa_pkcs1_v1_5_sha256(sha256_digest, self.len, &mut em_buf)
            .and_then(uint_from_be::<LIMBS>)
            .ok_or(SignatureError::Mismatch)?;
        if m.ct_eq(&expected).to_bool() {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// Checks a SHA256withRSA signature over `message`.
    ///
    /// # Errors
    ///
    /// As [`verify_digest`](Self::verify_digest).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        self.verify_digest(&sha256_of(message), signature)
    }
}

impl<const LIMBS: usize> Rsa2Verifier for FixedRsa2PublicKey<LIMBS> {
    fn verify_message<M: SignedMessage + ?Sized>(
        &self,
        message: &M,
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        self.verify_digest(&sha256_of(message), signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1024-bit keys are refused by the policy ([`KeyError::TooSmall`]), but the arithmetic
    /// and the encoding are the same at any size: check them against the `rsa` crate and
    /// (with the `ring` feature, as in `cargo test --all-features`) `ring`'s legacy 1024-bit
    /// verifier below the policy too, with both usual exponents.
    #[test]
    fn small_keys_below_the_policy_verify_like_rsa_and_ring() {
        use ::rsa::pkcs1v15::Pkcs1v15Sign;
        use ::rsa::traits::PublicKeyParts;
        use rand::SeedableRng;
        use sha2::{Digest, Sha256};

        let mut rng = rand::rngs::StdRng::seed_from_u64(1024);
        for e in [3u64, 65537] {
            let private =
                ::rsa::PrivateKey::new_with_exp(&mut rng, 1024, ::rsa::BoxedUint::from(e)).unwrap();
            let n = private.n().to_be_bytes_trimmed_vartime();
            let e_be = private.e().to_be_bytes_trimmed_vartime();
            assert_eq!(
                FixedRsa2048::from_modulus_and_exponent(&n, &e_be),
                Err(KeyError::TooSmall { bits: 1024 })
            );
            let components = keyfile::check_components(&n, &e_be, 1024).unwrap();
            let fixed = FixedRsa2048::from_components(components).unwrap();
            assert_eq!(
                (fixed.bits(), fixed.exponent(), fixed.signature_len()),
                (1024, e, 128)
            );
            #[cfg(feature = "ring")]
            let ring_key = ring::signature::RsaPublicKeyComponents {
                n: &n[..],
                e: &e_be[..],
            };
            for i in 0..64u32 {
                let message = std::format!("notify_id={i}");
                let digest = Sha256::digest(message.as_bytes());
                let mut sig = private
                    .sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
                    .unwrap();
                if i % 2 == 1 {
                    let at = usize::try_from(i).unwrap() % sig.len();
                    sig[at] ^= 0x10;
                }
                let ours = fixed.verify(message.as_bytes(), &sig);
                let theirs = private
                    .to_public_key()
                    .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &sig)
                    .map_err(|_| SignatureError::Mismatch);
                assert_eq!(ours, theirs, "e={e} message {i}");
                #[cfg(feature = "ring")]
                {
                    let rings = ring_key
                        .verify(
                            &ring::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
                            message.as_bytes(),
                            &sig,
                        )
                        .map_err(|_| SignatureError::Mismatch);
                    assert_eq!(ours, rings, "e={e} message {i}");
                }
                assert_eq!(ours.is_ok(), i % 2 == 0, "e={e} message {i}");
            }
        }
    }

    #[test]
    fn big_endian_integers_of_any_length() {
        let one = uint_from_be::<{ U2048::LIMBS }>(&[0, 0, 1]);
        assert_eq!(one, Some(Uint::ONE));
        let max = uint_from_be::<{ U2048::LIMBS }>(&[0xff; 256]);
        assert_eq!(max, Some(Uint::MAX));
        // A 257th byte fits only if it is zero.
        let mut long = [0xffu8; 257];
        assert_eq!(uint_from_be::<{ U2048::LIMBS }>(&long), None);
        long[0] = 0;
        assert_eq!(uint_from_be::<{ U2048::LIMBS }>(&long), Some(Uint::MAX));
        assert_eq!(uint_from_be::<{ U2048::LIMBS }>(&[]), Some(Uint::ZERO));
    }

    #[test]
    fn the_expected_encoding_is_rfc_8017_9_2() {
        let mut buf = [0u8; MAX_SIGNATURE_LEN];
        let digest = [0xabu8; 32];
        let em = emsa_pkcs1_v1_5_sha256(&digest, 256, &mut buf).map(<[u8]>::to_vec);
        let em = em.unwrap_or_default();
        assert_eq!(em.len(), 256);
        assert_eq!(&em[..2], &[0x00, 0x01]);
        assert!(em[2..256 - 52].iter().all(|&b| b == 0xff));
        assert_eq!(em[256 - 52], 0x00);
        assert_eq!(&em[256 - 51..256 - 32], &SHA256_DIGEST_INFO_PREFIX);
        assert_eq!(&em[256 - 32..], &digest);
        // Eight bytes of padding at least (§9.2 step 3): 62 bytes is the shortest.
        assert!(emsa_pkcs1_v1_5_sha256(&digest, 62, &mut buf).is_some());
        assert!(emsa_pkcs1_v1_5_sha256(&digest, 61, &mut buf).is_none());
        assert!(emsa_pkcs1_v1_5_sha256(&digest, MAX_SIGNATURE_LEN + 1, &mut buf).is_none());
    }
}
