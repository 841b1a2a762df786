//! The generic HMAC-SHA256 webhook scheme.
//!
//! The sender signs `"{timestamp}|{body}"` with a shared secret and sends the timestamp (decimal
//! seconds since the Unix epoch) and `hex(HMAC-SHA256(secret, "{timestamp}|{body}"))` in two
//! headers. The receiver checks the timestamp against a two-sided window around its own `now`,
//! then the MAC, in constant time.
//!
//! ```
//! use paystate::Timestamp;
//! use paystate::webhook::{Duration, encode_hex, hmac};
//!
//! let key = hmac::HmacKey::new(b"shared secret")?;
//! let body = br#"{"order":"o1","status":"paid"}"#;
//!
//! // What the sender computes (and what a host's own tests can use).
//! let mut hex = [0u8; 64];
//! let signature = encode_hex(&hmac::sign(&key, Timestamp::from_secs(1_700_000_000), body), &mut hex)
//!     .ok_or("buffer")?;
//!
//! // The receiver, 42 seconds later.
//! let verified = hmac::verify(&key, "1700000000", signature, body, Timestamp::from_secs(1_700_000_042), Duration::DEFAULT_TOLERANCE)?;
//! assert_eq!(verified.timestamp(), Timestamp::from_secs(1_700_000_000));
//!
//! // One byte changed: rejected.
//! assert_eq!(
//!     hmac::verify(&key, "1700000000", signature, b"{}", Timestamp::from_secs(1_700_000_042), Duration::DEFAULT_TOLERANCE),
//!     Err(hmac::HmacError::Mismatch),
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The scheme has no nonce of its own: a host that runs a replay guard passes
//! [`Verified::signature`] as the nonce, so the same request delivered twice is caught while two
//! different requests at the same second are not.

use core::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{
    Duration, HMAC_SHA256_LEN, HexError, TimestampError, WindowError, check_window,
    decode_hex_signature, parse_timestamp,
};
use crate::time::Timestamp;

type HmacSha256 = Hmac<Sha256>;

/// A shared HMAC-SHA256 secret, keyed once and reused for every request.
///
/// Used by the generic scheme and by [`stripe`](super::stripe) (where the secret is the whole
/// `whsec_...` string, prefix included). Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct HmacKey(HmacSha256);

impl HmacKey {
    /// Keys HMAC-SHA256 with `secret`. An empty secret is refused: every attacker knows it.
    pub fn new(secret: &[u8]) -> Result<HmacKey, EmptySecret> {
        if secret.is_empty() {
            return Err(EmptySecret);
        }
        // HMAC accepts keys of every length; the error arm cannot be reached.
        HmacSha256::new_from_slice(secret)
            .map(HmacKey)
            .map_err(|_| EmptySecret)
    }

    /// HMAC-SHA256 of `message` under this key: the raw primitive, for hosts whose provider
    /// signs some other layout.
    pub fn tag(&self, message: &[u8]) -> [u8; HMAC_SHA256_LEN] {
        let mut mac = self.mac();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    pub(crate) fn mac(&self) -> HmacSha256 {
        self.0.clone()
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(..)")
    }
}

/// The secret given to [`HmacKey::new`] was empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EmptySecret;

impl fmt::Display for EmptySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("empty webhook secret")
    }
}

impl core::error::Error for EmptySecret {}

/// Why a request failed verification. The host must not acknowledge it as processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HmacError {
    /// The timestamp header is not a plain decimal number of seconds.
    Timestamp(TimestampError),
    /// The signature header is not 64 hex digits.
    Signature(HexError),
    /// The timestamp is outside the window around `now`; the MAC was not computed.
    Window(WindowError),
    /// The signature does not match: wrong secret, or a changed timestamp or body.
    Mismatch,
}

impl HmacError {
    /// A stable snake_case code for logs and the verify tool.
    pub const fn code(&self) -> &'static str {
        match self {
            HmacError::Timestamp(_) => "invalid_timestamp",
            HmacError::Signature(_) => "malformed_signature",
            HmacError::Window(w) => w.code(),
            HmacError::Mismatch => "signature_mismatch",
        }
    }
}

impl fmt::Display for HmacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HmacError::Timestamp(e) => e.fmt(f),
            HmacError::Signature(e) => e.fmt(f),
            HmacError::Window(e) => e.fmt(f),
            HmacError::Mismatch => f.write_str("signature does not match"),
        }
    }
}

impl core::error::Error for HmacError {}

/// A request that passed: its timestamp and signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use]
pub struct Verified {
    timestamp: Timestamp,
    signature: [u8; HMAC_SHA256_LEN],
}

impl Verified {
    /// The sender's timestamp.
    pub const fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The verified MAC. It is unique to (timestamp, body), so a host that keeps a replay guard
    /// passes it as the nonce.
    pub const fn signature(&self) -> &[u8; HMAC_SHA256_LEN] {
        &self.signature
    }
}

/// Verification of one request whose body arrives in pieces.
///
/// [`begin`](Verifier::begin) parses the headers and checks the window, [`update`](Verifier::update)
/// takes the body chunk by chunk, [`finish`](Verifier::finish) compares the MAC. The host must
/// not act on the body before `finish` returns `Ok`.
#[derive(Clone)]
#[must_use = "a verifier does nothing until `finish` is called"]
pub struct Verifier {
    mac: HmacSha256,
    timestamp: Timestamp,
    signature: [u8; HMAC_SHA256_LEN],
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("timestamp", &self.timestamp)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Parses the timestamp and signature headers as received and checks the timestamp is within
    /// `tolerance` of `now` on both sides.
    pub fn begin(
        key: &HmacKey,
        timestamp: &str,
        signature: &str,
        now: Timestamp,
        tolerance: Duration,
    ) -> Result<Verifier, HmacError> {
        let ts = parse_timestamp(timestamp).map_err(HmacError::Timestamp)?;
        let signature = decode_hex_signature(signature).map_err(HmacError::Signature)?;
        check_window(ts, now, tolerance).map_err(HmacError::Window)?;
        let mut mac = key.mac();
        // The parsed text has no leading zeros, so it is exactly what the sender formatted.
        mac.update(timestamp.as_bytes());
        mac.update(b"|");
        Ok(Verifier {
            mac,
            timestamp: ts,
            signature,
        })
    }

    /// The sender's timestamp, already checked against the window.
    pub const fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// Feeds the next piece of the raw body, byte for byte as received.
    pub fn update(&mut self, body_chunk: &[u8]) {
        self.mac.update(body_chunk);
    }

    /// Compares the MAC with the signature in constant time.
    pub fn finish(self) -> Result<Verified, HmacError> {
        self.mac
            .verify_slice(&self.signature)
            .map_err(|_| HmacError::Mismatch)?;
        Ok(Verified {
            timestamp: self.timestamp,
            signature: self.signature,
        })
    }
}

/// Verifies one request: `timestamp` and `signature` are the header values as received, `body`
/// the raw body. Checks, in order: the timestamp's syntax, the signature's syntax, the window,
/// the MAC.
pub fn verify(
    key: &HmacKey,
    timestamp: &str,
    signature: &str,
    body: &[u8],
    now: Timestamp,
    tolerance: Duration,
) -> Result<Verified, HmacError> {
    let mut v = Verifier::begin(key, timestamp, signature, now, tolerance)?;
    v.update(body);
    v.finish()
}

/// The signature a sender puts on `body` at `timestamp`: HMAC-SHA256 over `"{timestamp}|{body}"`.
/// Hex-encode it with [`encode_hex`](super::encode_hex).
pub fn sign(key: &HmacKey, timestamp: Timestamp, body: &[u8]) -> [u8; HMAC_SHA256_LEN] {
    sign_timestamped(key, timestamp, b"|", body)
}

/// HMAC-SHA256 over `"{timestamp}{separator}{body}"`, the layout of both schemes.
pub(crate) fn sign_timestamped(
    key: &HmacKey,
    timestamp: Timestamp,
    separator: &[u8],
    body: &[u8],
) -> [u8; HMAC_SHA256_LEN] {
    use core::fmt::Write;
    let mut digits = heapless::String::<20>::new();
    // u64::MAX has 20 digits: the write always fits.
    let _ = write!(digits, "{}", timestamp.as_secs());
    let mut mac = key.mac();
    mac.update(digits.as_bytes());
    mac.update(separator);
    mac.update(body);
    mac.finalize().into_bytes().into()
}
