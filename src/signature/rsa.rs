//! RSA2: SHA256withRSA, PKCS#1 v1.5 (RFC 8017 §8.2), with keys of 2048 to 4096 bits.
//!
//! Keys are read as the providers and tools hand them out: DER, PEM, or the bare base64 that
//! Alipay's console shows. The arithmetic is RustCrypto's `rsa` crate.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use base64ct::{Base64, Encoding};
use rsa::pkcs1::der::Decode;
use rsa::pkcs1::der::asn1::AnyRef;
use rsa::pkcs1::{self, RsaPrivateKeyRef, RsaPublicKeyRef};
use rsa::pkcs8::{PrivateKeyInfoRef, SubjectPublicKeyInfoRef};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, PrivateKey, PublicKey};
use sha2::{Digest, Sha256};

use super::{KeyError, MAX_KEY_BITS, MIN_KEY_BITS, SignatureError};

/// A provider's RSA public key, pinned by the host, for SHA256withRSA (PKCS#1 v1.5)
/// signatures: Alipay's "支付宝公钥", a WeChat Pay platform key.
///
/// Load it once at start-up from the host's configuration and keep it; a key that does not
/// load is a configuration error. Keys below 2048 or above 4096 bits are refused.
///
/// ```
/// use paystate::signature::{KeyError, Rsa2PublicKey};
///
/// // Alipay's console shows the key as bare base64 (an SPKI); PEM and DER load too.
/// // Line breaks and indentation in a pasted key are ignored.
/// let alipay_key = "
///     MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAk6DCsBIUhWriFohzRV8F
///     ic6oQWNnLKKILNk97VU5qcHEuxYzCujKoyva5gy1170mFJw4IcgJF8AyS7iDUwzA
///     wF4Pp9CpWxDhUhe7mdQJhjBmvTcPLGFFrzlj6unO5lAcbdwaxPUtSxOaNxPJGrTK
///     /wnKQSbjTMMltp1J68q2Tfgrsn/NdZ6lrxO9rvmky8kowqaH5NjntyHO59jCGabM
///     j5sI14z8N61wB/QuIJrDuzIPMPrSNbq0cOWcSCDG09oUHTp9fk7suDB8UiFcmVTX
///     OvK3d4HbeX8V9YsEMxrwxEoYgRRj6K2qrC6oxw480cqf2ueumCmHg6xrcgkyXK81
///     hwIDAQAB
/// ";
/// let key = Rsa2PublicKey::from_base64(alipay_key)?;
/// assert_eq!(key.bits(), 2048);
/// assert_eq!(Rsa2PublicKey::parse(b"not a key"), Err(KeyError::InvalidBase64));
/// # Ok::<(), KeyError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Rsa2PublicKey {
    key: PublicKey,
    bits: u32,
}

impl fmt::Debug for Rsa2PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rsa2PublicKey({} bits)", self.bits)
    }
}

/// Size in bits of a big-endian unsigned integer.
fn bit_len(be: &[u8]) -> u32 {
    let mut bytes = be.iter().skip_while(|&&b| b == 0);
    match bytes.next() {
        None => 0,
        Some(first) => {
            let rest = u32::try_from(bytes.count()).unwrap_or(u32::MAX / 16);
            rest.saturating_mul(8)
                .saturating_add(8u32.saturating_sub(first.leading_zeros()))
        }
    }
}

fn check_bits(bits: u32) -> Result<u32, KeyError> {
    if bits < MIN_KEY_BITS {
        Err(KeyError::TooSmall { bits })
    } else if bits > MAX_KEY_BITS {
        Err(KeyError::TooLarge { bits })
    } else {
        Ok(bits)
    }
}

/// `rsaEncryption` with NULL (or, from lax encoders, absent) parameters.
fn check_rsa_algorithm(
    spki_algorithm: &rsa::pkcs8::AlgorithmIdentifierRef<'_>,
) -> Result<(), KeyError> {
    if spki_algorithm.oid != pkcs1::ALGORITHM_OID {
        return Err(KeyError::NotRsa);
    }
    match spki_algorithm.parameters {
        None => Ok(()),
        Some(p) if p == AnyRef::from(rsa::pkcs1::der::asn1::Null) => Ok(()),
        Some(_) => Err(KeyError::InvalidDer),
    }
}

fn public_from_pkcs1(der: &[u8]) -> Result<Rsa2PublicKey, KeyError> {
    let parsed = RsaPublicKeyRef::from_der(der).map_err(|_| KeyError::InvalidDer)?;
    let bits = check_bits(bit_len(parsed.modulus.as_bytes()))?;
    let key = PublicKey::try_from(parsed).map_err(|_| KeyError::InvalidKey)?;
    Ok(Rsa2PublicKey { key, bits })
}

/// Strips all ASCII whitespace (line breaks of pasted keys) and decodes strict base64.
fn decode_base64_lax_whitespace(text: &str) -> Result<Vec<u8>, KeyError> {
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if compact.is_empty() {
        return Err(KeyError::Empty);
    }
    let mut out = alloc::vec![0u8; (compact.len() / 4).saturating_mul(3).saturating_add(3)];
    let len = Base64::decode(&compact, &mut out)
        .map_err(|_| KeyError::InvalidBase64)?
        .len();
    out.truncate(len);
    Ok(out)
}

/// One PEM block: its label and its decoded body. Lax about layout (line width, CRLF,
/// indentation, explanatory text before the block as RFC 7468 allows); anything after the
/// END line is refused (a second block would be silently ignored otherwise).
pub(super) fn decode_pem(text: &str) -> Result<(&str, Vec<u8>), KeyError> {
    let (label, body) = super::split_pem(text)?;
    Ok((label, decode_base64_lax_whitespace(body)?))
}

fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(10).any(|w| w == b"-----BEGIN")
}

fn looks_like_der(bytes: &[u8]) -> bool {
    // Every accepted DER structure is a SEQUENCE; base64 and PEM text never start with 0x30
    // ('0' is not the first character of a base64 key).
    bytes.first() == Some(&0x30)
}

impl Rsa2PublicKey {
    /// Loads a DER key: an X.509 `SubjectPublicKeyInfo` (what Alipay's base64 and a
    /// `PUBLIC KEY` PEM hold) or a PKCS#1 `RSAPublicKey`.
    ///
    /// This is also the last step of loading a key from a certificate: pass the
    /// certificate's `SubjectPublicKeyInfo` DER.
    pub fn from_der(der: &[u8]) -> Result<Rsa2PublicKey, KeyError> {
        if der.is_empty() {
            return Err(KeyError::Empty);
        }
        if let Ok(spki) = SubjectPublicKeyInfoRef::from_der(der) {
            check_rsa_algorithm(&spki.algorithm)?;
            let inner = spki
                .subject_public_key
                .as_bytes()
                .ok_or(KeyError::InvalidDer)?;
            return public_from_pkcs1(inner);
        }
        match public_from_pkcs1(der) {
            Err(KeyError::InvalidDer) => {}
            other => return other,
        }
        if PrivateKeyInfoRef::from_der(der).is_ok() || RsaPrivateKeyRef::from_der(der).is_ok() {
            return Err(KeyError::PrivateKeyGiven);
        }
        Err(KeyError::InvalidDer)
    }

    /// Loads a PEM key: `-----BEGIN PUBLIC KEY-----` (SPKI) or
    /// `-----BEGIN RSA PUBLIC KEY-----` (PKCS#1). Line width, CRLF and surrounding whitespace
    /// do not matter.
    pub fn from_pem(pem: &str) -> Result<Rsa2PublicKey, KeyError> {
        if pem.trim().is_empty() {
            return Err(KeyError::Empty);
        }
        let (label, der) = decode_pem(pem)?;
        match label {
            // Either structure under either label: mislabelled PKCS#1 keys are common, and
            // the DER says unambiguously which one it is.
            "PUBLIC KEY" | "RSA PUBLIC KEY" => Rsa2PublicKey::from_der(&der),
            "CERTIFICATE" => Err(KeyError::Certificate),
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
                Err(KeyError::PrivateKeyGiven)
            }
            _ => Err(KeyError::UnsupportedPemLabel),
        }
    }

    /// Loads the bare base64 that Alipay's console shows ("支付宝公钥": a base64 SPKI, no PEM
    /// lines). Whitespace and line breaks anywhere are ignored; a PKCS#1 body loads too.
    pub fn from_base64(text: &str) -> Result<Rsa2PublicKey, KeyError> {
        Rsa2PublicKey::from_der(&decode_base64_lax_whitespace(text)?)
    }

    /// Loads a key in any of the forms above, as read from a key file: PEM (starts with
    /// `-----BEGIN`), DER (starts with a SEQUENCE byte) or bare base64. With the `x509`
    /// feature an X.509 certificate (PEM or DER, e.g. Alipay's certificate mode
    /// `alipayCertPublicKey_RSA2.crt`) loads too, as the key it certifies.
    pub fn parse(bytes: &[u8]) -> Result<Rsa2PublicKey, KeyError> {
        let key = Rsa2PublicKey::parse_key(bytes);
        #[cfg(feature = "x509")]
        if key.is_err()
            && let Ok(certificate) = crate::signature::x509::Certificate::parse(bytes)
        {
            return certificate.public_key();
        }
        key
    }

    fn parse_key(bytes: &[u8]) -> Result<Rsa2PublicKey, KeyError> {
        if bytes.trim_ascii().is_empty() {
            return Err(KeyError::Empty);
        }
        if looks_like_der(bytes) {
            return Rsa2PublicKey::from_der(bytes);
        }
        let text = core::str::from_utf8(bytes).map_err(|_| KeyError::InvalidBase64)?;
        if looks_like_pem(bytes) {
            Rsa2PublicKey::from_pem(text)
        } else {
            Rsa2PublicKey::from_base64(text)
        }
    }

    /// The modulus size in bits (2048..=4096).
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The length of every valid signature under this key, in bytes (256 for 2048 bits).
    pub fn signature_len(&self) -> usize {
        self.key.size()
    }

    /// Checks a PKCS#1 v1.5 signature over a SHA-256 digest the host computed (for example
    /// by streaming Alipay's signed content into a `Sha256`).
    pub fn verify_digest(
        &self,
        sha256_digest: &[u8; 32],
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        let expected = self.signature_len();
        if signature.len() != expected {
            return Err(SignatureError::WrongLength {
                expected,
                got: signature.len(),
            });
        }
        self.key
            .verify(Pkcs1v15Sign::new::<Sha256>(), sha256_digest, signature)
            .map_err(|_| SignatureError::Mismatch)
    }

    /// Checks a SHA256withRSA signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        self.verify_digest(&Sha256::digest(message).into(), signature)
    }

    /// Checks a SHA256withRSA signature given as strict base64 text over `message`.
    pub fn verify_base64(&self, message: &[u8], signature: &str) -> Result<(), SignatureError> {
        let mut buf = [0u8; super::MAX_SIGNATURE_LEN];
        let sig = super::decode_signature(signature, &mut buf)?;
        self.verify(message, sig)
    }

    /// The key as DER `SubjectPublicKeyInfo`, e.g. to show it as Alipay's bare base64.
    pub fn to_spki_der(&self) -> Result<Vec<u8>, KeyError> {
        use rsa::pkcs8::EncodePublicKey;
        self.key
            .to_public_key_der()
            .map(|d| d.into_vec())
            .map_err(|_| KeyError::InvalidKey)
    }
}

impl super::Rsa2Verifier for Rsa2PublicKey {
    fn verify_message<M: super::SignedMessage + ?Sized>(
        &self,
        message: &M,
        signature: &[u8],
    ) -> Result<(), SignatureError> {
        self.verify_digest(&super::sha256_of(message), signature)
    }
}

/// The merchant's own RSA private key (Alipay's "应用私钥"), for signing requests to the
/// provider.
///
/// Loads PKCS#8 (`-----BEGIN PRIVATE KEY-----`) and PKCS#1 (`-----BEGIN RSA PRIVATE KEY-----`)
/// PEM, DER, and the bare base64 that Alipay's key tool writes. Encrypted keys are refused:
/// decrypt them in the host's secret store. Keys below 2048 or above 4096 bits are refused.
#[derive(Clone)]
pub struct Rsa2PrivateKey {
    key: PrivateKey,
    bits: u32,
}

impl fmt::Debug for Rsa2PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        write!(f, "Rsa2PrivateKey({} bits)", self.bits)
    }
}

fn private_from_pkcs1(der: &[u8]) -> Result<Rsa2PrivateKey, KeyError> {
    let parsed = RsaPrivateKeyRef::from_der(der).map_err(|_| KeyError::InvalidDer)?;
    let bits = check_bits(bit_len(parsed.modulus.as_bytes()))?;
    let key = PrivateKey::try_from(parsed).map_err(|_| KeyError::InvalidKey)?;
    Ok(Rsa2PrivateKey { key, bits })
}

fn private_from_pkcs8(der: &[u8]) -> Result<Rsa2PrivateKey, KeyError> {
    let info = PrivateKeyInfoRef::from_der(der).map_err(|_| KeyError::InvalidDer)?;
    check_rsa_algorithm(&info.algorithm)?;
    private_from_pkcs1(info.private_key.as_bytes())
}

impl Rsa2PrivateKey {
    /// Loads a DER key: PKCS#8 `PrivateKeyInfo` or PKCS#1 `RSAPrivateKey`.
    pub fn from_der(der: &[u8]) -> Result<Rsa2PrivateKey, KeyError> {
        if der.is_empty() {
            return Err(KeyError::Empty);
        }
        match private_from_pkcs8(der) {
            Err(KeyError::InvalidDer) => {}
            other => return other,
        }
        match private_from_pkcs1(der) {
            Err(KeyError::InvalidDer) => {}
            other => return other,
        }
        if SubjectPublicKeyInfoRef::from_der(der).is_ok() || RsaPublicKeyRef::from_der(der).is_ok()
        {
            return Err(KeyError::PublicKeyGiven);
        }
        Err(KeyError::InvalidDer)
    }

    /// Loads a PEM key: `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1, unencrypted).
    pub fn from_pem(pem: &str) -> Result<Rsa2PrivateKey, KeyError> {
        if pem.trim().is_empty() {
            return Err(KeyError::Empty);
        }
        let (label, der) = decode_pem(pem)?;
        match label {
            "PRIVATE KEY" => private_from_pkcs8(&der),
            "RSA PRIVATE KEY" => private_from_pkcs1(&der),
            "PUBLIC KEY" | "RSA PUBLIC KEY" | "CERTIFICATE" => Err(KeyError::PublicKeyGiven),
            _ => Err(KeyError::UnsupportedPemLabel),
        }
    }

    /// Loads bare base64 (PKCS#8 or PKCS#1), as Alipay's key tool writes it. Whitespace is
    /// ignored.
    pub fn from_base64(text: &str) -> Result<Rsa2PrivateKey, KeyError> {
        Rsa2PrivateKey::from_der(&decode_base64_lax_whitespace(text)?)
    }

    /// Loads a key in any of the forms above, as read from a key file.
    pub fn parse(bytes: &[u8]) -> Result<Rsa2PrivateKey, KeyError> {
        if bytes.trim_ascii().is_empty() {
            return Err(KeyError::Empty);
        }
        if looks_like_der(bytes) {
            return Rsa2PrivateKey::from_der(bytes);
        }
        let text = core::str::from_utf8(bytes).map_err(|_| KeyError::InvalidBase64)?;
        if looks_like_pem(bytes) {
            Rsa2PrivateKey::from_pem(text)
        } else {
            Rsa2PrivateKey::from_base64(text)
        }
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The matching public key (what the merchant uploads to the provider).
    pub fn public_key(&self) -> Rsa2PublicKey {
        Rsa2PublicKey {
            key: self.key.to_public_key(),
            bits: self.bits,
        }
    }

    /// Signs `message` with SHA256withRSA (PKCS#1 v1.5). The signature is deterministic.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        self.sign_digest(&Sha256::digest(message).into())
    }

    /// Signs a SHA-256 digest the host computed.
    pub fn sign_digest(&self, sha256_digest: &[u8; 32]) -> Result<Vec<u8>, SignatureError> {
        self.key
            .sign(Pkcs1v15Sign::new::<Sha256>(), sha256_digest)
            .map_err(|_| SignatureError::SigningFailed)
    }

    /// Signs `message` and returns the signature as standard base64 (Alipay's `sign`).
    pub fn sign_base64(&self, message: &[u8]) -> Result<String, SignatureError> {
        self.sign(message).map(|sig| Base64::encode_string(&sig))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_length_of_big_endian_integers() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[0, 0]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0, 0x80, 0]), 16);
        assert_eq!(bit_len(&[0xff; 256]), 2048);
        assert_eq!(bit_len(&[0x7f; 256]), 2047);
    }

    #[test]
    fn pem_layout() {
        assert_eq!(decode_pem("nothing"), Err(KeyError::InvalidPem));
        assert_eq!(
            decode_pem("-----BEGIN A-----\nAAEC\n-----END B-----"),
            Err(KeyError::InvalidPem)
        );
        assert_eq!(
            decode_pem("  -----BEGIN A-----\r\n AA\r\nEC \r\n-----END A-----\n"),
            Ok(("A", alloc::vec![0, 1, 2]))
        );
        assert_eq!(
            decode_pem("-----BEGIN A-----\nProc-Type: 4,ENCRYPTED\nAAEC\n-----END A-----"),
            Err(KeyError::UnsupportedPemLabel)
        );
        assert_eq!(
            decode_pem("-----BEGIN A-----\n-----END A-----"),
            Err(KeyError::Empty)
        );
    }
}
