//! Reading an RSA public key file without a heap: PEM armour, bare base64 with any line
//! breaks, DER (`SubjectPublicKeyInfo` or PKCS#1 `RSAPublicKey`), down to the two numbers
//! (modulus, exponent) under the crate's key policy.
//!
//! The backends that do not use the `rsa` crate (`rsa-fixed`, `ring`) load keys through here,
//! so every backend accepts and refuses exactly the same keys, with the same [`KeyError`]s.

use base64ct::{Base64, Encoding};
use pkcs1::der::Decode;
use pkcs1::der::asn1::{AnyRef, Null};
use pkcs1::{RsaPrivateKeyRef, RsaPublicKeyRef};
use pkcs8::{AlgorithmIdentifierRef, PrivateKeyInfoRef, SubjectPublicKeyInfoRef};

use super::split_pem;
use super::{KeyError, MAX_KEY_BITS};

/// The largest DER a key file may decode to: a 4096-bit PKCS#8 private key (about 2.4 KB)
/// still fits, so a private key given by mistake is named as one
/// ([`KeyError::PrivateKeyGiven`]). Public keys need at most 550 bytes.
pub(crate) const MAX_KEY_DER_LEN: usize = 2560;

/// The largest public exponent accepted, 2³³−1: the bound `ring` and the `rsa` crate share,
/// which keeps a hostile key from making verification slow.
pub(crate) const MAX_PUBLIC_EXPONENT: u64 = (1 << 33) - 1;

/// A public key's numbers, checked against the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PublicComponents<'a> {
    /// The modulus, big-endian, without leading zero bytes.
    pub(crate) modulus: &'a [u8],
    /// The public exponent: odd, 3..=2³³−1.
    pub(crate) exponent: u64,
    /// The modulus size in bits.
    pub(crate) bits: u32,
}

/// Size in bits of a big-endian unsigned integer.
pub(crate) fn bit_len(be: &[u8]) -> u32 {
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

/// Checks the modulus size against `min_bits..=MAX_KEY_BITS`.
fn check_bits(bits: u32, min_bits: u32) -> Result<u32, KeyError> {
    if bits < min_bits {
        Err(KeyError::TooSmall { bits })
    } else if bits > MAX_KEY_BITS {
        Err(KeyError::TooLarge { bits })
    } else {
        Ok(bits)
    }
}

fn strip_leading_zeros(be: &[u8]) -> &[u8] {
    let first = be.iter().position(|&b| b != 0).unwrap_or(be.len());
    be.get(first..).unwrap_or_default()
}

/// The policy on the numbers of a public key, shared by every backend: the size
/// (`min_bits..=MAX_KEY_BITS`), an odd modulus, an odd exponent from 3 to 2³³−1.
pub(crate) fn check_components<'a>(
    modulus: &'a [u8],
    exponent: &[u8],
    min_bits: u32,
) -> Result<PublicComponents<'a>, KeyError> {
    let modulus = strip_leading_zeros(modulus);
    let bits = check_bits(bit_len(modulus), min_bits)?;
    if modulus.last().is_none_or(|&b| b & 1 == 0) {
        return Err(KeyError::InvalidKey);
    }
    let exponent = strip_leading_zeros(exponent);
    if exponent.len() > 8 {
        return Err(KeyError::InvalidKey);
    }
    let exponent = exponent.iter().fold(0u64, |e, &b| (e << 8) | u64::from(b));
    if !(3..=MAX_PUBLIC_EXPONENT).contains(&exponent) || exponent & 1 == 0 {
        return Err(KeyError::InvalidKey);
    }
    Ok(PublicComponents {
        modulus,
        exponent,
        bits,
    })
}

/// `rsaEncryption` with NULL (or, from lax encoders, absent) parameters.
fn check_rsa_algorithm(algorithm: &AlgorithmIdentifierRef<'_>) -> Result<(), KeyError> {
    if algorithm.oid != pkcs1::ALGORITHM_OID {
        return Err(KeyError::NotRsa);
    }
    match algorithm.parameters {
        None => Ok(()),
        Some(p) if p == AnyRef::from(Null) => Ok(()),
        Some(_) => Err(KeyError::InvalidDer),
    }
}

fn from_pkcs1(der: &[u8], min_bits: u32) -> Result<PublicComponents<'_>, KeyError> {
    let key = RsaPublicKeyRef::from_der(der).map_err(|_| KeyError::InvalidDer)?;
    check_components(
        key.modulus.as_bytes(),
        key.public_exponent.as_bytes(),
        min_bits,
    )
}

/// A DER public key: an X.509 `SubjectPublicKeyInfo` or a PKCS#1 `RSAPublicKey`.
pub(crate) fn public_from_der(der: &[u8], min_bits: u32) -> Result<PublicComponents<'_>, KeyError> {
    if der.is_empty() {
        return Err(KeyError::Empty);
    }
    if let Ok(spki) = SubjectPublicKeyInfoRef::from_der(der) {
        check_rsa_algorithm(&spki.algorithm)?;
        let inner = spki
            .subject_public_key
            .as_bytes()
            .ok_or(KeyError::InvalidDer)?;
        return from_pkcs1(inner, min_bits);
    }
    match from_pkcs1(der, min_bits) {
        Err(KeyError::InvalidDer) => {}
        other => return other,
    }
    if PrivateKeyInfoRef::from_der(der).is_ok() || RsaPrivateKeyRef::from_der(der).is_ok() {
        return Err(KeyError::PrivateKeyGiven);
    }
    Err(KeyError::InvalidDer)
}

/// Decodes standard base64 into `buf`, ignoring ASCII whitespace anywhere (a pasted key's
/// line breaks and indentation); padding and trailing bits must be canonical.
pub(crate) fn decode_base64_lax<'b>(text: &[u8], buf: &'b mut [u8]) -> Result<&'b [u8], KeyError> {
    let mut quad = [0u8; 4];
    let mut filled = 0usize;
    let mut len = 0usize;
    let mut padded = false;
    for &c in text.iter().filter(|c| !c.is_ascii_whitespace()) {
        if padded {
            // Padding ended the text, and more followed.
            return Err(KeyError::InvalidBase64);
        }
        let slot = quad.get_mut(filled).ok_or(KeyError::InvalidBase64)?;
        *slot = c;
        filled = filled.saturating_add(1);
        if filled == quad.len() {
            let mut out = [0u8; 3];
            let decoded = Base64::decode(quad, &mut out).map_err(|_| KeyError::InvalidBase64)?;
            let end = len.saturating_add(decoded.len());
            buf.get_mut(len..end)
                .ok_or(KeyError::InvalidDer)?
                .copy_from_slice(decoded);
            len = end;
            padded = decoded.len() < 3;
            filled = 0;
        }
    }
    if filled != 0 {
        return Err(KeyError::InvalidBase64);
    }
    if len == 0 {
        return Err(KeyError::Empty);
    }
    buf.get(..len).ok_or(KeyError::InvalidBase64)
}

/// The DER of a PEM public key (`PUBLIC KEY` or `RSA PUBLIC KEY`), decoded into `buf`.
pub(crate) fn pem_public_der<'b>(pem: &str, buf: &'b mut [u8]) -> Result<&'b [u8], KeyError> {
    if pem.trim().is_empty() {
        return Err(KeyError::Empty);
    }
    let (label, body) = split_pem(pem)?;
    match label {
        // Either structure under either label: mislabelled PKCS#1 keys are common, and the
        // DER says unambiguously which one it is.
        "PUBLIC KEY" | "RSA PUBLIC KEY" => decode_base64_lax(body.as_bytes(), buf),
        "CERTIFICATE" => Err(KeyError::Certificate),
        "PRIVATE KEY" | "RSA PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" => {
            Err(KeyError::PrivateKeyGiven)
        }
        _ => Err(KeyError::UnsupportedPemLabel),
    }
}

/// The DER of a key file in any form: DER as it is (it starts with a SEQUENCE byte, which no
/// base64 key or PEM text does), PEM (it holds `-----BEGIN`), or else bare base64.
pub(crate) fn key_file_der<'a>(bytes: &'a [u8], buf: &'a mut [u8]) -> Result<&'a [u8], KeyError> {
    if bytes.trim_ascii().is_empty() {
        return Err(KeyError::Empty);
    }
    if bytes.first() == Some(&0x30) {
        return Ok(bytes);
    }
    let text = core::str::from_utf8(bytes).map_err(|_| KeyError::InvalidBase64)?;
    if bytes.windows(10).any(|w| w == b"-----BEGIN") {
        pem_public_der(text, buf)
    } else {
        decode_base64_lax(bytes, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::MIN_KEY_BITS;

    #[test]
    fn base64_with_line_breaks_decodes_strictly() {
        let mut buf = [0u8; 16];
        assert_eq!(
            decode_base64_lax(b" AA\r\nEC\n/w== \n", &mut buf),
            Ok(&[0u8, 1, 2, 255][..])
        );
        assert_eq!(
            decode_base64_lax(b"AAEC/w", &mut buf),
            Err(KeyError::InvalidBase64)
        );
        assert_eq!(
            decode_base64_lax(b"AAEC/x==", &mut buf),
            Err(KeyError::InvalidBase64)
        );
        // Padding in the middle: a second key pasted after the first.
        assert_eq!(
            decode_base64_lax(b"AA==AAEC", &mut buf),
            Err(KeyError::InvalidBase64)
        );
        assert_eq!(decode_base64_lax(b" \n", &mut buf), Err(KeyError::Empty));
        // More than the buffer holds is no key this crate reads.
        assert_eq!(
            decode_base64_lax(&[b'A'; 24], &mut buf),
            Err(KeyError::InvalidDer)
        );
    }

    #[test]
    fn pem_layout() {
        assert_eq!(split_pem("nothing"), Err(KeyError::InvalidPem));
        assert_eq!(
            split_pem("-----BEGIN A-----\nAAEC\n-----END B-----"),
            Err(KeyError::InvalidPem)
        );
        assert_eq!(
            split_pem("  -----BEGIN A-----\r\n AA\r\nEC \r\n-----END A-----\n"),
            Ok(("A", "\r\n AA\r\nEC \r\n"))
        );
        assert_eq!(
            split_pem("-----BEGIN A-----\nProc-Type: 4,ENCRYPTED\nAAEC\n-----END A-----"),
            Err(KeyError::UnsupportedPemLabel)
        );
    }

    #[test]
    fn the_numbers_policy() {
        let n2048 = [0xffu8; 256];
        assert_eq!(
            check_components(&n2048, &[1, 0, 1], MIN_KEY_BITS).map(|c| (c.bits, c.exponent)),
            Ok((2048, 65537))
        );
        assert_eq!(
            check_components(&[0xff; 128], &[3], MIN_KEY_BITS),
            Err(KeyError::TooSmall { bits: 1024 })
        );
        assert_eq!(
            check_components(&[0xff; 128], &[3], 1024).map(|c| c.bits),
            Ok(1024)
        );
        assert_eq!(
            check_components(&[0xff; 513], &[3], MIN_KEY_BITS),
            Err(KeyError::TooLarge { bits: 4104 })
        );
        let mut even = n2048;
        even[255] = 0xfe;
        assert_eq!(
            check_components(&even, &[3], MIN_KEY_BITS),
            Err(KeyError::InvalidKey)
        );
        for bad_e in [
            &[1u8][..],
            &[4],
            &[0],
            &[2, 0, 0, 0, 1],
            &[1, 0, 0, 0, 0, 0, 0, 0, 1],
        ] {
            assert_eq!(
                check_components(&n2048, bad_e, MIN_KEY_BITS),
                Err(KeyError::InvalidKey),
                "{bad_e:?}"
            );
        }
        // Leading zeros of a DER integer's sign byte do not count.
        let mut padded = [0u8; 257];
        padded[1..].copy_from_slice(&n2048);
        assert_eq!(
            check_components(&padded, &[0, 0, 3], MIN_KEY_BITS)
                .map(|c| (c.modulus.len(), c.exponent)),
            Ok((256, 3))
        );
        assert_eq!(
            check_components(&n2048, &[1, 0xff, 0xff, 0xff, 0xff], MIN_KEY_BITS)
                .map(|c| c.exponent),
            Ok(MAX_PUBLIC_EXPONENT)
        );
    }
}
