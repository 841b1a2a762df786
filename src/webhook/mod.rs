//! Verifying webhooks: the generic HMAC-SHA256 scheme, Stripe's, and WeChat Pay v3's.
//!
//! Every scheme here is pinned by the host's configuration (which endpoint speaks which scheme,
//! with which secret or platform keys), never by the message. Every verifier takes `now` from the
//! host and checks a two-sided window around it: a timestamp too far in the past is *stale*,
//! one too far in the future is *from the future* (many providers' SDKs only check the past).
//!
//! - [`hmac`]: `hex(HMAC-SHA256(secret, "{timestamp}|{body}"))`.
//! - [`stripe`]: the `Stripe-Signature` header, `HMAC-SHA256(secret, "{t}.{body}")`, any `v1`
//!   may match; the mapping of `payment_intent.*` events onto engine inputs.
//! - `wechatpay` (feature `wechatpay`): SHA256withRSA with the platform key chosen by
//!   `Wechatpay-Serial`, the nonce through the replay guard, the `resource` decrypted with
//!   AEAD_AES_256_GCM, and the mapping of `trade_state`.
//!
//! Nothing here allocates: bodies are streamed into the MAC or the digest, and signatures are
//! compared in constant time.

use core::fmt;

use crate::time::Timestamp;

pub mod hmac;
pub mod stripe;
#[cfg(feature = "wechatpay")]
pub mod wechatpay;

pub use crate::time::{Duration, WindowError, check_window};

/// A timestamp field that is not a plain decimal count of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TimestampError {
    /// The field is empty.
    Empty,
    /// The byte at `index` is not an ASCII digit (signs, spaces, dots and exponents included).
    NotDecimal {
        /// Offset of the first offending byte.
        index: usize,
    },
    /// A leading zero (`"0123"`): the signed text would differ from the number it stands for.
    LeadingZero,
    /// More than fits in 64 bits.
    Overflow,
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimestampError::Empty => f.write_str("empty timestamp"),
            TimestampError::NotDecimal { index } => {
                write!(f, "timestamp has a non-digit at byte {index}")
            }
            TimestampError::LeadingZero => f.write_str("timestamp has a leading zero"),
            TimestampError::Overflow => f.write_str("timestamp does not fit in 64 bits"),
        }
    }
}

impl core::error::Error for TimestampError {}

/// Parses a timestamp header field: ASCII digits only, no sign, no leading zero (except `"0"`),
/// at most `u64::MAX`. The text that was signed is then exactly the number's decimal form.
pub fn parse_timestamp(text: &str) -> Result<Timestamp, TimestampError> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return Err(TimestampError::Empty);
    }
    let mut secs: u64 = 0;
    for (index, &b) in bytes.iter().enumerate() {
        if !b.is_ascii_digit() {
            return Err(TimestampError::NotDecimal { index });
        }
        secs = secs
            .checked_mul(10)
            .and_then(|s| s.checked_add(u64::from(b.saturating_sub(b'0'))))
            .ok_or(TimestampError::Overflow)?;
    }
    if bytes.len() > 1 && bytes.first() == Some(&b'0') {
        return Err(TimestampError::LeadingZero);
    }
    Ok(Timestamp::from_secs(secs))
}

/// Length in bytes of an HMAC-SHA256 signature.
pub const HMAC_SHA256_LEN: usize = 32;

/// A hex signature that is not 64 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HexError {
    /// Not 64 characters long (32 bytes of HMAC-SHA256, hex-encoded).
    Length {
        /// The length received, in bytes.
        len: usize,
    },
    /// The byte at `index` is not a hex digit.
    NotHex {
        /// Offset of the first offending byte.
        index: usize,
    },
}

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HexError::Length { len } => {
                write!(
                    f,
                    "signature is {len} characters, expected {}",
                    2 * HMAC_SHA256_LEN
                )
            }
            HexError::NotHex { index } => {
                write!(f, "signature has a non-hex digit at byte {index}")
            }
        }
    }
}

impl core::error::Error for HexError {}

/// The value of one hex digit, either case.
pub(crate) fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Decodes a 64-digit hex HMAC-SHA256 signature (lowercase, uppercase or mixed).
pub fn decode_hex_signature(text: &str) -> Result<[u8; HMAC_SHA256_LEN], HexError> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * HMAC_SHA256_LEN {
        return Err(HexError::Length { len: bytes.len() });
    }
    let mut out = [0u8; HMAC_SHA256_LEN];
    for (i, (o, pair)) in out.iter_mut().zip(bytes.chunks_exact(2)).enumerate() {
        let (hi, lo) = match pair {
            [hi, lo] => (*hi, *lo),
            _ => return Err(HexError::Length { len: bytes.len() }),
        };
        let at = i.saturating_mul(2);
        let hi = hex_digit(hi).ok_or(HexError::NotHex { index: at })?;
        let lo = hex_digit(lo).ok_or(HexError::NotHex {
            index: at.saturating_add(1),
        })?;
        *o = (hi << 4) | lo;
    }
    Ok(out)
}

/// Writes `bytes` as lowercase hex into `out` (which must be twice as long) and returns it as a
/// string; `None` if `out` is too short. For hosts that send webhooks, and for tests.
pub fn encode_hex<'o>(bytes: &[u8], out: &'o mut [u8]) -> Option<&'o str> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let len = bytes.len().checked_mul(2)?;
    let out = out.get_mut(..len)?;
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        for (o, nibble) in pair.iter_mut().zip([b >> 4, b & 0x0f]) {
            *o = DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0');
        }
    }
    core::str::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: fn(u64) -> Timestamp = Timestamp::from_secs;

    #[test]
    fn window_is_inclusive_on_both_sides() {
        let tol = Duration::DEFAULT_TOLERANCE;
        assert_eq!(check_window(T(1_000), T(1_300), tol), Ok(()));
        assert_eq!(
            check_window(T(1_000), T(1_301), tol),
            Err(WindowError::Stale {
                age: 301,
                tolerance: 300
            })
        );
        assert_eq!(check_window(T(1_300), T(1_000), tol), Ok(()));
        assert_eq!(
            check_window(T(1_301), T(1_000), tol),
            Err(WindowError::FromFuture {
                ahead: 301,
                tolerance: 300
            })
        );
        assert_eq!(check_window(T(5), T(5), Duration::from_secs(0)), Ok(()));
        assert!(check_window(T(6), T(5), Duration::from_secs(0)).is_err());
        assert!(check_window(T(u64::MAX), T(0), Duration::from_secs(u64::MAX)).is_ok());
        assert_eq!(
            check_window(T(u64::MAX), T(0), tol),
            Err(WindowError::FromFuture {
                ahead: u64::MAX,
                tolerance: 300
            })
        );
    }

    #[test]
    fn timestamps_are_strict_decimal() {
        assert_eq!(parse_timestamp("1624523846"), Ok(T(1_624_523_846)));
        assert_eq!(parse_timestamp("0"), Ok(T(0)));
        assert_eq!(parse_timestamp("18446744073709551615"), Ok(T(u64::MAX)));
        assert_eq!(
            parse_timestamp("18446744073709551616"),
            Err(TimestampError::Overflow)
        );
        assert_eq!(
            parse_timestamp("99999999999999999999999"),
            Err(TimestampError::Overflow)
        );
        assert_eq!(parse_timestamp(""), Err(TimestampError::Empty));
        assert_eq!(parse_timestamp("0123"), Err(TimestampError::LeadingZero));
        assert_eq!(
            parse_timestamp("+123"),
            Err(TimestampError::NotDecimal { index: 0 })
        );
        assert_eq!(
            parse_timestamp("-1"),
            Err(TimestampError::NotDecimal { index: 0 })
        );
        assert_eq!(
            parse_timestamp(" 12"),
            Err(TimestampError::NotDecimal { index: 0 })
        );
        assert_eq!(
            parse_timestamp("12 "),
            Err(TimestampError::NotDecimal { index: 2 })
        );
        assert_eq!(
            parse_timestamp("1e9"),
            Err(TimestampError::NotDecimal { index: 1 })
        );
        assert_eq!(
            parse_timestamp("１２"),
            Err(TimestampError::NotDecimal { index: 0 })
        );
    }

    #[test]
    fn hex_signatures_decode_in_either_case() {
        let lower = "562b3f1fff088096a6ced058286d36883179bbfa1426f58d028a3ad3cd59fa55";
        let upper = "562B3F1FFF088096A6CED058286D36883179BBFA1426F58D028A3AD3CD59FA55";
        let a = decode_hex_signature(lower);
        assert_eq!(a, decode_hex_signature(upper));
        let a = a.unwrap_or_default();
        assert_eq!(a.first(), Some(&0x56));
        assert_eq!(a.last(), Some(&0x55));
        let mut buf = [0u8; 64];
        assert_eq!(encode_hex(&a, &mut buf), Some(lower));
        assert_eq!(encode_hex(&a, &mut [0u8; 63]), None);
    }

    #[test]
    fn bad_hex_signatures_are_typed_errors() {
        assert_eq!(decode_hex_signature(""), Err(HexError::Length { len: 0 }));
        assert_eq!(
            decode_hex_signature(&"a".repeat(62)),
            Err(HexError::Length { len: 62 })
        );
        assert_eq!(
            decode_hex_signature(&"a".repeat(66)),
            Err(HexError::Length { len: 66 })
        );
        let mut s = "a".repeat(64);
        s.replace_range(9..10, "g");
        assert_eq!(decode_hex_signature(&s), Err(HexError::NotHex { index: 9 }));
        // 64 bytes but a multi-byte character: still a typed error, never a panic.
        let s = std::format!("{}é", "a".repeat(62));
        assert_eq!(
            decode_hex_signature(&s),
            Err(HexError::NotHex { index: 62 })
        );
    }
}
