//! Alipay content encryption ("接口内容加密"): AES-CBC with the merchant's AES key.
//!
//! With content encryption switched on in Alipay's console, the `<method>_response` of a
//! synchronous response is a JSON string — the base64 of the AES ciphertext of the response
//! object — instead of the object itself (see [`SignedResponse::decrypt`]). Alipay's SDKs
//! encrypt with AES in CBC mode, an all-zero IV and PKCS#7 padding; the key is given as
//! base64 in the console (16 bytes; 24- and 32-byte keys work the same way).
//!
//! No heap: everything is decrypted into a buffer the host provides. [`AesKey`] needs the
//! feature `alipay-aes`; the error type is always there (it is part of
//! [`ResponseError`](super::response::ResponseError)).
//!
//! [`SignedResponse::decrypt`]: super::response::SignedResponse::decrypt

use core::fmt;

#[cfg(feature = "alipay-aes")]
mod key;
#[cfg(feature = "alipay-aes")]
pub use key::AesKey;

/// Why a key could not be loaded or a ciphertext not be decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AesError {
    /// The key text is not strict base64. A configuration error: copy the key again from the
    /// console.
    KeyNotBase64,
    /// The key is not 16, 24 or 32 bytes long.
    KeyLength {
        /// Its length in bytes.
        len: usize,
    },
    /// The ciphertext is not strict base64 (a response that is not Alipay's, or damaged).
    CiphertextNotBase64,
    /// The ciphertext is empty or not a whole number of 16-byte blocks.
    CiphertextLength {
        /// Its length in bytes.
        len: usize,
    },
    /// The decrypted bytes do not end in valid PKCS#7 padding: almost always the wrong AES
    /// key (another application's, or one replaced in the console).
    BadPadding,
    /// The output buffer is too short.
    BufferTooSmall {
        /// How many bytes it must hold.
        needed: usize,
    },
}

impl AesError {
    /// A short stable code for logs and the verification tool (`"bad_padding"`).
    pub const fn code(&self) -> &'static str {
        match self {
            AesError::KeyNotBase64 => "aes_key_not_base64",
            AesError::KeyLength { .. } => "aes_key_length",
            AesError::CiphertextNotBase64 => "ciphertext_not_base64",
            AesError::CiphertextLength { .. } => "ciphertext_length",
            AesError::BadPadding => "bad_padding",
            AesError::BufferTooSmall { .. } => "buffer_too_small",
        }
    }
}

impl fmt::Display for AesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AesError::KeyNotBase64 => f.write_str("the AES key is not base64"),
            AesError::KeyLength { len } => {
                write!(f, "the AES key is {len} bytes (AES needs 16, 24 or 32)")
            }
            AesError::CiphertextNotBase64 => f.write_str("the ciphertext is not base64"),
            AesError::CiphertextLength { len } => write!(
                f,
                "the ciphertext is {len} bytes, not a whole number of 16-byte blocks"
            ),
            AesError::BadPadding => f.write_str(
                "the decrypted content has no valid PKCS#7 padding (is it the right AES key?)",
            ),
            AesError::BufferTooSmall { needed } => {
                write!(f, "the output buffer must hold at least {needed} bytes")
            }
        }
    }
}

impl core::error::Error for AesError {}
