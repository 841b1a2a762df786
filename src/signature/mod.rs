//! Provider signatures: keys pinned by the host, and what can go wrong with them.
//!
//! The algorithm and the key are always the host's configuration, never read from the message
//! (an Alipay `sign_type`, a header): a notification that names another algorithm is simply
//! checked with the pinned one and fails.
//!
//! This module is always compiled and never allocates: it holds the error types, the strict
//! base64 decoding of a signature into a fixed buffer, and the seam every provider verifies
//! through ([`Rsa2Verifier`], over a [`SignedMessage`]). The keys behind the seam are the
//! backends, one feature each:
//!
//! - `rsa` (default): `Rsa2PublicKey` and `Rsa2PrivateKey` (request signing), on RustCrypto's
//!   `rsa` crate; needs a heap.
//! - `ring`: `RingRsa2PublicKey`, verification through `ring`, for std hosts.
//! - `rsa-fixed`: `FixedRsa2PublicKey` ([`FixedRsa2048`](FixedRsa2PublicKey) and its
//!   siblings), verification in fixed-size integers with no heap and no `alloc`, for firmware.

use core::fmt;

use base64ct::{Base64, Encoding};

mod verifier;
pub use self::verifier::{Rsa2Verifier, SHA256_DIGEST_INFO_PREFIX, SignedMessage, sha256_of};

#[cfg(feature = "rsa")]
mod rsa;

#[cfg(feature = "rsa")]
pub use self::rsa::{Rsa2PrivateKey, Rsa2PublicKey};

#[cfg(any(feature = "rsa-fixed", feature = "ring"))]
mod keyfile;

#[cfg(feature = "rsa-fixed")]
mod fixed;
#[cfg(feature = "rsa-fixed")]
pub use self::fixed::{FixedRsa2PublicKey, FixedRsa2048, FixedRsa3072, FixedRsa4096};

#[cfg(feature = "ring")]
mod ring;
#[cfg(feature = "ring")]
pub use self::ring::RingRsa2PublicKey;

#[cfg(feature = "x509")]
pub mod x509;

/// The longest RSA signature accepted, in bytes: one made with a 4096-bit key.
pub const MAX_SIGNATURE_LEN: usize = 512;

/// The longest base64 text of a signature accepted: `MAX_SIGNATURE_LEN` bytes, padded.
pub const MAX_SIGNATURE_BASE64_LEN: usize = MAX_SIGNATURE_LEN.div_ceil(3) * 4;

/// The smallest RSA key accepted, in bits. Smaller keys are refused with
/// [`KeyError::TooSmall`]: a 1024-bit key is no longer a signature anyone should trust.
pub const MIN_KEY_BITS: u32 = 2048;

/// The largest RSA key accepted, in bits. Larger keys (8192) are refused with
/// [`KeyError::TooLarge`] before any arithmetic, so a hostile key file cannot make the host
/// spend seconds per notification. No payment provider issues keys above 4096 bits.
pub const MAX_KEY_BITS: u32 = 4096;

/// Why a key could not be loaded. The host should treat every variant as a configuration error:
/// fix the key file, do not retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum KeyError {
    /// The input is empty (or only whitespace).
    Empty,
    /// The text is not base64 (bare base64 or the body of a PEM block).
    InvalidBase64,
    /// A `-----BEGIN` line without a matching `-----END` line, or text around it.
    InvalidPem,
    /// A PEM block of a kind that is not a key of the expected sort (for example
    /// `EC PRIVATE KEY` or `ENCRYPTED PRIVATE KEY`).
    UnsupportedPemLabel,
    /// An X.509 certificate where a bare key was expected: load the certificate's key instead.
    Certificate,
    /// The bytes are not a DER `SubjectPublicKeyInfo`, PKCS#1 `RSAPublicKey`, PKCS#8
    /// `PrivateKeyInfo` or PKCS#1 `RSAPrivateKey` (whichever was expected).
    InvalidDer,
    /// A key of another algorithm (EC, Ed25519, RSA-PSS-only): RSA2 needs an `rsaEncryption` key.
    NotRsa,
    /// A private key where a public key is expected. To check the provider's signatures the
    /// host needs the **provider's** public key (Alipay: "支付宝公钥"), not its own key pair.
    PrivateKeyGiven,
    /// A public key where a private key is expected (request signing needs the merchant's
    /// application private key).
    PublicKeyGiven,
    /// The modulus is smaller than [`MIN_KEY_BITS`].
    TooSmall {
        /// The key's modulus size.
        bits: u32,
    },
    /// The modulus is larger than [`MAX_KEY_BITS`].
    TooLarge {
        /// The key's modulus size.
        bits: u32,
    },
    /// The numbers are not a usable RSA key (even modulus, exponent out of range, primes that
    /// do not multiply to the modulus).
    InvalidKey,
    /// The key is within the policy but larger than the fixed-size key type it is loaded
    /// into (a 4096-bit key into `FixedRsa2048`): use a type of at least `bits` capacity.
    ExceedsCapacity {
        /// The key's modulus size.
        bits: u32,
        /// The most bits the type holds.
        capacity_bits: u32,
    },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty => f.write_str("the key is empty"),
            KeyError::InvalidBase64 => f.write_str("the key is not valid base64"),
            KeyError::InvalidPem => f.write_str("the key is not a well-formed PEM block"),
            KeyError::UnsupportedPemLabel => f.write_str("the PEM block is not an RSA key"),
            KeyError::Certificate => {
                f.write_str("an X.509 certificate was given where a bare key was expected")
            }
            KeyError::InvalidDer => f.write_str("the key is not a DER-encoded RSA key"),
            KeyError::NotRsa => f.write_str("the key is not an RSA key"),
            KeyError::PrivateKeyGiven => {
                f.write_str("a private key was given where the provider's public key is expected")
            }
            KeyError::PublicKeyGiven => {
                f.write_str("a public key was given where a private key is expected")
            }
            KeyError::TooSmall { bits } => {
                write!(
                    f,
                    "a {bits}-bit RSA key is too small (at least {MIN_KEY_BITS} bits)"
                )
            }
            KeyError::TooLarge { bits } => {
                write!(
                    f,
                    "a {bits}-bit RSA key is too large (at most {MAX_KEY_BITS} bits)"
                )
            }
            KeyError::InvalidKey => f.write_str("the key's numbers are not a valid RSA key"),
            KeyError::ExceedsCapacity {
                bits,
                capacity_bits,
            } => write!(
                f,
                "a {bits}-bit RSA key does not fit a key type of {capacity_bits} bits"
            ),
        }
    }
}

impl core::error::Error for KeyError {}

/// Why a signature was not accepted. Every variant means "not genuine": the host must not act
/// on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SignatureError {
    /// The message carries no signature, or an empty one.
    Missing,
    /// A byte that is not in the standard base64 alphabet. A space where the signature had a
    /// `+` means the body was URL-decoded twice, or sent without encoding.
    InvalidBase64Char {
        /// Offset of the byte in the signature text.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// The base64 text has a bad length, bad padding or non-zero trailing bits (it is not the
    /// one canonical encoding of any byte string).
    InvalidBase64,
    /// Longer than [`MAX_SIGNATURE_BASE64_LEN`] characters: no accepted key makes one so long.
    TooLong {
        /// Length of the signature text.
        len: usize,
    },
    /// The signature's length is not the key's modulus length.
    WrongLength {
        /// The key's modulus length in bytes.
        expected: usize,
        /// The decoded signature's length in bytes.
        got: usize,
    },
    /// The signature does not match the content and the key: the content was changed, the
    /// signed content was built differently (wrong rule, decoding), or it is the wrong key.
    Mismatch,
    /// Signing failed (the private key is unusable).
    SigningFailed,
}

impl SignatureError {
    /// A short stable code for logs and the verification tool (`"signature_mismatch"`).
    pub const fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "missing_sign",
            SignatureError::InvalidBase64Char { .. } | SignatureError::InvalidBase64 => {
                "sign_not_base64"
            }
            SignatureError::TooLong { .. } | SignatureError::WrongLength { .. } => {
                "sign_wrong_length"
            }
            SignatureError::Mismatch => "signature_mismatch",
            SignatureError::SigningFailed => "signing_failed",
        }
    }
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::Missing => f.write_str("no signature"),
            SignatureError::InvalidBase64Char { at, byte: b' ' } => write!(
                f,
                "the signature has a space at offset {at}: a '+' was turned into a space \
                 (the body was URL-decoded twice or sent unencoded)"
            ),
            SignatureError::InvalidBase64Char { at, byte } => {
                write!(
                    f,
                    "the signature has byte 0x{byte:02x} at offset {at}, not base64"
                )
            }
            SignatureError::InvalidBase64 => f.write_str(
                "the signature is not canonical base64 (length, padding or trailing bits)",
            ),
            SignatureError::TooLong { len } => write!(
                f,
                "the signature is {len} characters long (at most {MAX_SIGNATURE_BASE64_LEN})"
            ),
            SignatureError::WrongLength { expected, got } => write!(
                f,
                "the signature is {got} bytes long, the key's modulus is {expected} bytes"
            ),
            SignatureError::Mismatch => f.write_str("the signature does not match"),
            SignatureError::SigningFailed => f.write_str("signing failed"),
        }
    }
}

impl core::error::Error for SignatureError {}

/// Decodes a signature's base64 text strictly into `buf`: the standard alphabet, padding
/// required, no whitespace, no line breaks, canonical trailing bits. Returns the signature
/// bytes.
///
/// ```
/// use paystate::signature::{decode_signature, SignatureError, MAX_SIGNATURE_LEN};
///
/// let mut buf = [0u8; MAX_SIGNATURE_LEN];
/// assert_eq!(decode_signature("AAEC/w==", &mut buf), Ok(&[0, 1, 2, 255][..]));
/// assert_eq!(
///     decode_signature("AAEC w==", &mut buf),
///     Err(SignatureError::InvalidBase64Char { at: 4, byte: b' ' }),
/// );
/// ```
pub fn decode_signature<'b>(
    text: &str,
    buf: &'b mut [u8; MAX_SIGNATURE_LEN],
) -> Result<&'b [u8], SignatureError> {
    decode_signature_bytes(text.as_bytes(), buf)
}

pub(crate) fn decode_signature_bytes<'b>(
    text: &[u8],
    buf: &'b mut [u8; MAX_SIGNATURE_LEN],
) -> Result<&'b [u8], SignatureError> {
    if text.is_empty() {
        return Err(SignatureError::Missing);
    }
    if text.len() > MAX_SIGNATURE_BASE64_LEN {
        return Err(SignatureError::TooLong { len: text.len() });
    }
    // Find the first byte outside the alphabet first: it is the most useful diagnosis
    // (a space for a '+', a URL escape left in).
    let bad = text.iter().enumerate().find(|&(i, &b)| {
        let alphabet = b.is_ascii_alphanumeric() || b == b'+' || b == b'/';
        // '=' only as the last one or two characters.
        let padding = b == b'=' && i.saturating_add(2) >= text.len();
        !(alphabet || padding)
    });
    if let Some((at, &byte)) = bad {
        return Err(SignatureError::InvalidBase64Char { at, byte });
    }
    Base64::decode(text, buf).map_err(|_| SignatureError::InvalidBase64)
}

/// One PEM block's label and body text. Lax about layout (line width, CRLF, indentation,
/// explanatory text before the block as RFC 7468 allows); anything after the END line is
/// refused (a second block would be silently ignored otherwise).
#[cfg(any(feature = "rsa", feature = "rsa-fixed", feature = "ring"))]
pub(crate) fn split_pem(text: &str) -> Result<(&str, &str), KeyError> {
    let begin = text.find("-----BEGIN ").ok_or(KeyError::InvalidPem)?;
    let rest = text
        .get(begin..)
        .unwrap_or_default()
        .trim_end()
        .strip_prefix("-----BEGIN ")
        .ok_or(KeyError::InvalidPem)?;
    let (label, rest) = rest.split_once("-----").ok_or(KeyError::InvalidPem)?;
    let (body, end) = rest.split_once("-----END ").ok_or(KeyError::InvalidPem)?;
    let end_label = end.strip_suffix("-----").ok_or(KeyError::InvalidPem)?;
    if end_label != label || label.is_empty() {
        return Err(KeyError::InvalidPem);
    }
    if body.contains(':') {
        // RFC 1421 headers ("Proc-Type: 4,ENCRYPTED"): an encrypted legacy key.
        return Err(KeyError::UnsupportedPemLabel);
    }
    Ok((label, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_base64() {
        let mut buf = [0u8; MAX_SIGNATURE_LEN];
        assert_eq!(decode_signature("", &mut buf), Err(SignatureError::Missing));
        assert_eq!(
            decode_signature("AAEC/w==", &mut buf),
            Ok(&[0u8, 1, 2, 255][..])
        );
        // No padding, wrong padding, non-canonical trailing bits, line breaks, URL-safe alphabet.
        assert_eq!(
            decode_signature("AAEC/w", &mut buf),
            Err(SignatureError::InvalidBase64)
        );
        assert_eq!(
            decode_signature("AAEC/w=", &mut buf),
            Err(SignatureError::InvalidBase64)
        );
        assert_eq!(
            decode_signature("AAEC/x==", &mut buf),
            Err(SignatureError::InvalidBase64)
        );
        assert_eq!(
            decode_signature("AA=C/w==", &mut buf),
            Err(SignatureError::InvalidBase64Char { at: 2, byte: b'=' })
        );
        assert_eq!(
            decode_signature("AAEC\n/w==", &mut buf),
            Err(SignatureError::InvalidBase64Char { at: 4, byte: b'\n' })
        );
        assert_eq!(
            decode_signature("AAEC_w==", &mut buf),
            Err(SignatureError::InvalidBase64Char { at: 4, byte: b'_' })
        );
        let long = [b'A'; MAX_SIGNATURE_BASE64_LEN + 4];
        assert_eq!(
            decode_signature_bytes(&long, &mut buf),
            Err(SignatureError::TooLong {
                len: MAX_SIGNATURE_BASE64_LEN + 4
            })
        );
        // The longest accepted text decodes to exactly MAX_SIGNATURE_LEN bytes.
        let mut max = [b'A'; MAX_SIGNATURE_BASE64_LEN];
        max[MAX_SIGNATURE_BASE64_LEN - 1] = b'=';
        assert_eq!(
            decode_signature_bytes(&max, &mut buf).map(<[u8]>::len),
            Ok(MAX_SIGNATURE_LEN)
        );
    }
}
