//! The encrypted `resource` of a notification: AEAD_AES_256_GCM under the merchant's APIv3 key.

use core::fmt;

use aes_gcm::aead::{Nonce, Tag};
use aes_gcm::{AeadInOut, Aes128Gcm, Aes256Gcm, KeyInit};
use base64ct::{Base64, Encoding};

/// The only `resource.algorithm` WeChat Pay v3 uses.
pub const ALGORITHM: &str = "AEAD_AES_256_GCM";

/// Length of an AES-GCM authentication tag, appended to the ciphertext.
pub const TAG_LEN: usize = 16;

/// Length of the `resource.nonce`, in bytes.
pub const NONCE_LEN: usize = 12;

#[derive(Clone)]
enum KeyBytes {
    Aes256([u8; 32]),
    #[cfg_attr(not(feature = "sdk-test-vectors"), allow(dead_code))]
    // built only for the SDK test keys
    Aes128([u8; 16]),
}

/// The merchant's APIv3 key ("APIv3密钥"): 32 bytes, set in the merchant platform. It decrypts
/// notification resources; it is a secret of the same rank as the merchant's private key.
/// Its `Debug` output never shows it.
#[derive(Clone)]
pub struct ApiV3Key(KeyBytes);

impl fmt::Debug for ApiV3Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            KeyBytes::Aes256(_) => f.write_str("ApiV3Key(AES-256, ..)"),
            KeyBytes::Aes128(_) => f.write_str("ApiV3Key(AES-128, ..)"),
        }
    }
}

/// An APIv3 key that is not 32 bytes long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct KeyLengthError {
    /// The length given, in bytes.
    pub len: usize,
}

impl fmt::Display for KeyLengthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "APIv3 key is {} bytes, expected 32", self.len)
    }
}

impl core::error::Error for KeyLengthError {}

impl ApiV3Key {
    /// A 32-byte APIv3 key (AES-256-GCM), as WeChat Pay's merchant platform issues them.
    pub const fn new(key: [u8; 32]) -> ApiV3Key {
        ApiV3Key(KeyBytes::Aes256(key))
    }

    /// The key as read from configuration: exactly 32 bytes (the 32 characters the merchant
    /// set), else an error. Trim the trailing newline of a key file first.
    pub fn from_slice(key: &[u8]) -> Result<ApiV3Key, KeyLengthError> {
        <[u8; 32]>::try_from(key)
            .map(ApiV3Key::new)
            .map_err(|_| KeyLengthError { len: key.len() })
    }

    /// A 16-byte key, decrypting with AES-128-GCM. **Not for production**: WeChat Pay's keys
    /// are 32 bytes. The official SDKs' test vectors use 16-byte keys (the SDKs pick the AES
    /// variant from the key length), and this exists to check them: it is compiled only with
    /// the test-only feature `sdk-test-vectors`, never part of a production build's API.
    #[cfg(feature = "sdk-test-vectors")]
    pub const fn aes128_for_sdk_test_vectors(key: [u8; 16]) -> ApiV3Key {
        ApiV3Key(KeyBytes::Aes128(key))
    }

    /// Decrypts `ciphertext_b64` (standard base64 of ciphertext ‖ 16-byte tag) with `nonce`
    /// (12 bytes) and `associated_data` into `out`, and returns the plaintext, a prefix of `out`.
    ///
    /// `out` must hold the whole decoded ciphertext, tag included: at least
    /// [`decoded_len`]`(ciphertext_b64)` bytes. On any error `out` is zeroed: no partial or
    /// unauthenticated plaintext is ever left in it.
    pub fn decrypt<'o>(
        &self,
        nonce: &[u8],
        associated_data: &[u8],
        ciphertext_b64: &[u8],
        out: &'o mut [u8],
    ) -> Result<&'o [u8], DecryptError> {
        let nonce = <&Nonce<Aes256Gcm>>::try_from(nonce)
            .map_err(|_| DecryptError::NonceLength { len: nonce.len() })?;
        let needed = decoded_len(ciphertext_b64).ok_or(DecryptError::InvalidBase64)?;
        if needed < TAG_LEN {
            return Err(DecryptError::Truncated { len: needed });
        }
        if out.len() < needed {
            return Err(DecryptError::BufferTooSmall {
                needed,
                got: out.len(),
            });
        }
        let result = self.open(nonce, associated_data, ciphertext_b64, out);
        match result {
            Ok(len) => out.get(..len).ok_or(DecryptError::Authentication),
            Err(e) => {
                out.fill(0);
                Err(e)
            }
        }
    }

    /// Decodes and decrypts in place; returns the plaintext length.
    fn open(
        &self,
        nonce: &Nonce<Aes256Gcm>,
        associated_data: &[u8],
        ciphertext_b64: &[u8],
        out: &mut [u8],
    ) -> Result<usize, DecryptError> {
        let decoded = Base64::decode(ciphertext_b64, out)
            .map_err(|_| DecryptError::InvalidBase64)?
            .len();
        let text_len = decoded
            .checked_sub(TAG_LEN)
            .ok_or(DecryptError::Truncated { len: decoded })?;
        let (text, rest) = out
            .split_at_mut_checked(text_len)
            .ok_or(DecryptError::InvalidBase64)?;
        let tag = rest
            .get(..TAG_LEN)
            .ok_or(DecryptError::Truncated { len: decoded })?;
        let tag = <&Tag<Aes256Gcm>>::try_from(tag)
            .map_err(|_| DecryptError::Truncated { len: decoded })?;
        // aes-gcm checks the tag over the ciphertext before it decrypts anything.
        let opened = match &self.0 {
            KeyBytes::Aes256(k) => Aes256Gcm::new(&(*k).into()).decrypt_inout_detached(
                nonce,
                associated_data,
                text.into(),
                tag,
            ),
            KeyBytes::Aes128(k) => Aes128Gcm::new(&(*k).into()).decrypt_inout_detached(
                nonce,
                associated_data,
                text.into(),
                tag,
            ),
        };
        opened.map_err(|_| DecryptError::Authentication)?;
        Ok(text_len)
    }
}

/// The length of the bytes that standard padded base64 `text` decodes to, or `None` if its
/// length or padding cannot be base64. The buffer given to [`ApiV3Key::decrypt`] needs this
/// many bytes; the plaintext is [`TAG_LEN`] shorter.
pub fn decoded_len(text: &[u8]) -> Option<usize> {
    if !text.len().is_multiple_of(4) {
        return None;
    }
    let padding = match text {
        [.., b'=', b'='] => 2,
        [.., b'='] => 1,
        _ => 0,
    };
    (text.len() / 4).checked_mul(3)?.checked_sub(padding)
}

/// Why a resource could not be decrypted. The host must not acknowledge the notification as
/// processed. After a verified signature, [`Authentication`](DecryptError::Authentication)
/// almost always means the wrong APIv3 key (it was reset in the merchant platform).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecryptError {
    /// `resource.algorithm` is not `AEAD_AES_256_GCM`.
    UnsupportedAlgorithm,
    /// `resource.nonce` is not 12 bytes.
    NonceLength {
        /// The length given.
        len: usize,
    },
    /// `resource.ciphertext` is not standard, padded base64.
    InvalidBase64,
    /// The decoded ciphertext is shorter than the 16-byte tag.
    Truncated {
        /// The decoded length.
        len: usize,
    },
    /// The output buffer cannot hold the decoded ciphertext.
    BufferTooSmall {
        /// Bytes needed (ciphertext and tag).
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// The tag does not match: a wrong APIv3 key, changed ciphertext, nonce or associated data.
    Authentication,
}

impl DecryptError {
    /// A stable snake_case code for logs.
    pub const fn code(&self) -> &'static str {
        match self {
            DecryptError::UnsupportedAlgorithm => "unsupported_algorithm",
            DecryptError::NonceLength { .. } => "invalid_nonce",
            DecryptError::InvalidBase64 => "ciphertext_not_base64",
            DecryptError::Truncated { .. } => "ciphertext_truncated",
            DecryptError::BufferTooSmall { .. } => "buffer_too_small",
            DecryptError::Authentication => "decryption_failed",
        }
    }
}

impl fmt::Display for DecryptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecryptError::UnsupportedAlgorithm => {
                write!(f, "resource algorithm is not {ALGORITHM}")
            }
            DecryptError::NonceLength { len } => {
                write!(f, "resource nonce is {len} bytes, expected {NONCE_LEN}")
            }
            DecryptError::InvalidBase64 => f.write_str("resource ciphertext is not base64"),
            DecryptError::Truncated { len } => {
                write!(
                    f,
                    "resource ciphertext is {len} bytes, shorter than its {TAG_LEN}-byte tag"
                )
            }
            DecryptError::BufferTooSmall { needed, got } => {
                write!(f, "output buffer of {got} bytes, {needed} needed")
            }
            DecryptError::Authentication => {
                f.write_str("resource does not authenticate (wrong APIv3 key or changed data)")
            }
        }
    }
}

impl core::error::Error for DecryptError {}

/// The `resource` object of a notification body, as the host's JSON parser gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Resource<'a> {
    /// `resource.algorithm`: must be `AEAD_AES_256_GCM`.
    pub algorithm: &'a str,
    /// `resource.ciphertext`: base64 of ciphertext ‖ tag.
    pub ciphertext: &'a str,
    /// `resource.associated_data` (may be empty).
    pub associated_data: &'a str,
    /// `resource.nonce`: 12 characters.
    pub nonce: &'a str,
}

impl Resource<'_> {
    /// Decrypts the resource into `out` (see [`ApiV3Key::decrypt`]) and returns the plaintext,
    /// a JSON object. Call it only after the notification's signature verified.
    pub fn decrypt<'o>(&self, key: &ApiV3Key, out: &'o mut [u8]) -> Result<&'o [u8], DecryptError> {
        if self.algorithm != ALGORITHM {
            return Err(DecryptError::UnsupportedAlgorithm);
        }
        key.decrypt(
            self.nonce.as_bytes(),
            self.associated_data.as_bytes(),
            self.ciphertext.as_bytes(),
            out,
        )
    }
}
