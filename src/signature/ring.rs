//! RSA2 verification with `ring`, for std hosts (the server side) where its assembly-backed
//! arithmetic is the fastest option.
//!
//! `ring` hashes the message itself and cannot take a digest computed elsewhere, which is why
//! the [`Rsa2Verifier`] seam hands over the message: a message that is already one slice is
//! passed as it is, one in pieces (Alipay's sorted form fields, WeChat Pay's
//! `timestamp\nnonce\nbody\n`) is joined into one buffer first.

use alloc::vec::Vec;
use core::fmt;

use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};

use super::keyfile::{self, MAX_KEY_DER_LEN, PublicComponents};
use super::verifier::{Rsa2Verifier, SignedMessage};
use super::{KeyError, MIN_KEY_BITS, SignatureError};

/// A provider's RSA public key, verified through `ring` (RSASSA-PKCS1-v1_5 with SHA-256,
/// RFC 8017 §8.2.2).
///
/// Loads from the same forms, under the same policy (2048..=4096 bits, odd modulus, odd
/// exponent from 3 to 2³³−1) and with the same [`KeyError`]s as `Rsa2PublicKey`, and gives
/// the same verdicts, typically several times faster.
///
/// ```
/// use paystate::signature::{KeyError, RingRsa2PublicKey, Rsa2Verifier, SignatureError};
///
/// let key = RingRsa2PublicKey::from_base64(
///     "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAk6DCsBIUhWriFohzRV8F
///      ic6oQWNnLKKILNk97VU5qcHEuxYzCujKoyva5gy1170mFJw4IcgJF8AyS7iDUwzA
///      wF4Pp9CpWxDhUhe7mdQJhjBmvTcPLGFFrzlj6unO5lAcbdwaxPUtSxOaNxPJGrTK
///      /wnKQSbjTMMltp1J68q2Tfgrsn/NdZ6lrxO9rvmky8kowqaH5NjntyHO59jCGabM
///      j5sI14z8N61wB/QuIJrDuzIPMPrSNbq0cOWcSCDG09oUHTp9fk7suDB8UiFcmVTX
///      OvK3d4HbeX8V9YsEMxrwxEoYgRRj6K2qrC6oxw480cqf2ueumCmHg6xrcgkyXK81
///      hwIDAQAB",
/// )?;
/// assert_eq!((key.bits(), key.signature_len()), (2048, 256));
/// assert_eq!(key.verify_message("a=1", &[1u8; 256]), Err(SignatureError::Mismatch));
/// # Ok::<(), KeyError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct RingRsa2PublicKey {
    /// Big-endian, no leading zero bytes (as `ring` requires).
    modulus: Vec<u8>,
    /// Big-endian exponent bytes, right-aligned; `exponent_len` of them are used.
    exponent: [u8; 8],
    exponent_len: usize,
    bits: u32,
}

impl fmt::Debug for RingRsa2PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RingRsa2PublicKey({} bits)", self.bits)
    }
}

impl RingRsa2PublicKey {
    /// Loads a DER key: an X.509 `SubjectPublicKeyInfo` or a PKCS#1 `RSAPublicKey`.
    ///
    /// # Errors
    ///
    /// The same [`KeyError`]s as `Rsa2PublicKey::from_der` for the same input.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        Ok(Self::from_components(keyfile::public_from_der(
            der,
            MIN_KEY_BITS,
        )?))
    }

    /// Loads a PEM key: `-----BEGIN PUBLIC KEY-----` (SPKI) or `-----BEGIN RSA PUBLIC
    /// KEY-----` (PKCS#1).
    ///
    /// # Errors
    ///
    /// As [`RingRsa2PublicKey::from_der`], plus the PEM errors.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let mut buf = [0u8; MAX_KEY_DER_LEN];
        Self::from_der(keyfile::pem_public_der(pem, &mut buf)?)
    }

    /// Loads the bare base64 that Alipay's console shows; whitespace is ignored.
    ///
    /// # Errors
    ///
    /// As [`RingRsa2PublicKey::from_der`], plus [`KeyError::InvalidBase64`].
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let mut buf = [0u8; MAX_KEY_DER_LEN];
        Self::from_der(keyfile::decode_base64_lax(text.as_bytes(), &mut buf)?)
    }

    /// Loads a key file in any of the forms above (PEM, DER or bare base64).
    ///
    /// # Errors
    ///
    /// As the loader of the form found.
    pub fn parse(bytes: &[u8]) -> Result<Self, KeyError> {
        let mut buf = [0u8; MAX_KEY_DER_LEN];
        Self::from_der(keyfile::key_file_der(bytes, &mut buf)?)
    }

    pub(crate) fn from_components(key: PublicComponents<'_>) -> Self {
        let exponent = key.exponent.to_be_bytes();
        let exponent_len = exponent
            .iter()
            .position(|&b| b != 0)
            .map_or(0, |first| exponent.len().saturating_sub(first));
        RingRsa2PublicKey {
            modulus: key.modulus.to_vec(),
            exponent,
            exponent_len,
            bits: key.bits,
        }
    }

    /// The modulus size in bits (2048..=4096).
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The length of every valid signature under this key, in bytes.
    pub fn signature_len(&self) -> usize {
        self.modulus.len()
    }

    /// Checks a SHA256withRSA signature over `message`.
    ///
    /// # Errors
    ///
    /// [`SignatureError::WrongLength`] if `signature` is not
    /// [`signature_len`](Self::signature_len) bytes, [`SignatureError::Mismatch`] otherwise.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        let expected = self.signature_len();
        if signature.len() != expected {
            return Err(SignatureError::WrongLength {
                expected,
                got: signature.len(),
            });
        }
        let exponent = self
            .exponent
            .get(self.exponent.len().saturating_sub(self.exponent_len)..)
            .unwrap_or_default();
        RsaPublicKeyComponents {
            n: self.modulus.as_slice(),
            e: exponent,
        }
        .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
        .map_err(|_| SignatureError::Mismatch)
    }
}

impl Rsa2Verifier for RingRsa2PublicKey {
    fn verify_message<M: SignedMessage + ?Sized>(
        &self,
        message: &M,
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        if let Some(contiguous) = message.as_contiguous() {
            return self.verify(contiguous, signature);
        }
        let mut joined = Vec::new();
        message.for_each_piece(&mut |piece| joined.extend_from_slice(piece));
        self.verify(&joined, signature)
    }
}
