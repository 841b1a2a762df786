//! Stripe webhooks: the `Stripe-Signature` header, and `payment_intent.*` events as engine inputs.
//!
//! Stripe signs `"{t}.{body}"` with HMAC-SHA256, keyed with the endpoint's whole signing secret
//! (the `whsec_...` string, prefix included), and sends
//! `Stripe-Signature: t=1614264600,v1=5257a8...[,v1=...][,v0=...]`. While a secret is being
//! rolled, several `v1` are sent, one per secret; any of them may match. Schemes other than
//! `v1` (such as the test-mode `v0`) are ignored.
//!
//! ```
//! use paystate::Timestamp;
//! use paystate::webhook::{Duration, encode_hex, hmac::HmacKey, stripe};
//!
//! let key = HmacKey::new(b"whsec_test_secret")?;
//! let body = br#"{"id":"evt_test_webhook","object":"event","type":"payment_intent.succeeded"}"#;
//! let header = "t=1614264600,v1=562b3f1fff088096a6ced058286d36883179bbfa1426f58d028a3ad3cd59fa55";
//!
//! let verified = stripe::verify(&key, header, body, Timestamp::from_secs(1_614_264_630), Duration::DEFAULT_TOLERANCE)?;
//! assert_eq!(verified.timestamp(), Timestamp::from_secs(1_614_264_600));
//!
//! // The same request ten minutes later is stale.
//! let late = stripe::verify(&key, header, body, Timestamp::from_secs(1_614_265_200), Duration::DEFAULT_TOLERANCE);
//! assert_eq!(late.map_err(|e| e.code()), Err("stale"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Unlike Stripe's own libraries, which only reject old timestamps, the window is two-sided:
//! a timestamp more than the tolerance ahead of `now` is rejected too.

use core::fmt;

use hmac::Mac;
use hmac::digest::CtOutput;

use super::hmac::HmacKey;
use super::{
    Duration, HMAC_SHA256_LEN, HexError, TimestampError, WindowError, check_window,
    decode_hex_signature, parse_timestamp,
};
use crate::money::Money;
use crate::payment::input::{EventId, Input};
use crate::time::Timestamp;

/// A `Stripe-Signature` header that cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SignatureHeaderError {
    /// The header is empty (or only whitespace): the request is not signed.
    Empty,
    /// Element `index` (0-based, counted by commas) is not `key=value` with a non-empty
    /// alphanumeric key.
    Malformed {
        /// Which element.
        index: usize,
    },
    /// No `t=` element.
    MissingTimestamp,
    /// More than one `t=` element: which one was signed is ambiguous.
    RepeatedTimestamp,
    /// The `t=` value is not a plain decimal number of seconds.
    Timestamp(TimestampError),
    /// No `v1=` element.
    NoV1Signature,
    /// A `v1=` value is not 64 hex digits.
    Signature {
        /// Which element of the header.
        index: usize,
        /// What is wrong with it.
        error: HexError,
    },
}

impl fmt::Display for SignatureHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureHeaderError::Empty => f.write_str("empty Stripe-Signature header"),
            SignatureHeaderError::Malformed { index } => {
                write!(f, "element {index} is not key=value")
            }
            SignatureHeaderError::MissingTimestamp => f.write_str("no t= element"),
            SignatureHeaderError::RepeatedTimestamp => f.write_str("more than one t= element"),
            SignatureHeaderError::Timestamp(e) => write!(f, "t=: {e}"),
            SignatureHeaderError::NoV1Signature => f.write_str("no v1= signature"),
            SignatureHeaderError::Signature { index, error } => {
                write!(f, "element {index}: {error}")
            }
        }
    }
}

impl core::error::Error for SignatureHeaderError {}

/// Why a request failed verification. The host must answer with a non-2xx status (Stripe then
/// retries) and must not act on the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum StripeError {
    /// The `Stripe-Signature` header cannot be used.
    Header(SignatureHeaderError),
    /// `t` is outside the window around `now`; no MAC was computed.
    Window(WindowError),
    /// No `v1` signature matches: wrong secret, or a changed timestamp or body.
    Mismatch,
}

impl StripeError {
    /// A stable snake_case code for logs and the verify tool.
    pub const fn code(&self) -> &'static str {
        match self {
            StripeError::Header(h) => match h {
                SignatureHeaderError::Empty => "missing_header",
                SignatureHeaderError::Malformed { .. } => "malformed_header",
                SignatureHeaderError::MissingTimestamp => "missing_timestamp",
                SignatureHeaderError::RepeatedTimestamp => "repeated_timestamp",
                SignatureHeaderError::Timestamp(_) => "invalid_timestamp",
                SignatureHeaderError::NoV1Signature => "no_v1_signature",
                SignatureHeaderError::Signature { .. } => "malformed_signature",
            },
            StripeError::Window(w) => w.code(),
            StripeError::Mismatch => "signature_mismatch",
        }
    }
}

impl fmt::Display for StripeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StripeError::Header(e) => e.fmt(f),
            StripeError::Window(e) => e.fmt(f),
            StripeError::Mismatch => f.write_str("no v1 signature matches"),
        }
    }
}

impl core::error::Error for StripeError {}

impl From<SignatureHeaderError> for StripeError {
    fn from(e: SignatureHeaderError) -> StripeError {
        StripeError::Header(e)
    }
}

/// A parsed `Stripe-Signature` header. It borrows the header text; nothing is copied.
///
/// Elements are separated by commas, with optional spaces or tabs around each. Order does not
/// matter. Exactly one `t`, at least one `v1`, every `v1` 64 hex digits; other keys are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SignatureHeader<'a> {
    header: &'a str,
    timestamp_text: &'a str,
    timestamp: Timestamp,
    v1_count: usize,
}

fn elements(header: &str) -> impl Iterator<Item = (usize, &str)> {
    header
        .split(',')
        .map(|e| e.trim_matches([' ', '\t']))
        .enumerate()
}

impl<'a> SignatureHeader<'a> {
    /// Parses the header value as received.
    pub fn parse(header: &'a str) -> Result<SignatureHeader<'a>, SignatureHeaderError> {
        if header.trim_matches([' ', '\t']).is_empty() {
            return Err(SignatureHeaderError::Empty);
        }
        let mut timestamp = None;
        let mut v1_count = 0usize;
        for (index, element) in elements(header) {
            let (key, value) = element
                .split_once('=')
                .ok_or(SignatureHeaderError::Malformed { index })?;
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(SignatureHeaderError::Malformed { index });
            }
            match key {
                "t" => {
                    if timestamp.is_some() {
                        return Err(SignatureHeaderError::RepeatedTimestamp);
                    }
                    let ts = parse_timestamp(value).map_err(SignatureHeaderError::Timestamp)?;
                    timestamp = Some((value, ts));
                }
                "v1" => {
                    decode_hex_signature(value)
                        .map_err(|error| SignatureHeaderError::Signature { index, error })?;
                    v1_count = v1_count.saturating_add(1);
                }
                _ => {}
            }
        }
        let (timestamp_text, timestamp) =
            timestamp.ok_or(SignatureHeaderError::MissingTimestamp)?;
        if v1_count == 0 {
            return Err(SignatureHeaderError::NoV1Signature);
        }
        Ok(SignatureHeader {
            header,
            timestamp_text,
            timestamp,
            v1_count,
        })
    }

    /// The signing time `t`.
    pub const fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// How many `v1` signatures the header carries.
    pub const fn v1_count(&self) -> usize {
        self.v1_count
    }

    /// The `v1` signatures, in header order.
    pub fn v1_signatures(&self) -> impl Iterator<Item = [u8; HMAC_SHA256_LEN]> + 'a {
        elements(self.header).filter_map(|(_, element)| match element.split_once('=') {
            Some(("v1", value)) => decode_hex_signature(value).ok(),
            _ => None,
        })
    }
}

/// A request that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use]
pub struct Verified {
    timestamp: Timestamp,
    matched: usize,
}

impl Verified {
    /// The signing time `t`.
    pub const fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// Which `v1` signature matched (0 for the first in the header).
    pub const fn matched(&self) -> usize {
        self.matched
    }
}

/// Verification of one request whose body arrives in pieces: [`begin`](Verifier::begin) with
/// the header, [`update`](Verifier::update) with each body chunk, [`finish`](Verifier::finish).
/// The host must not act on the body before `finish` returns `Ok`.
#[derive(Clone)]
#[must_use = "a verifier does nothing until `finish` is called"]
pub struct Verifier<'a> {
    mac: hmac::Hmac<sha2::Sha256>,
    header: SignatureHeader<'a>,
}

impl fmt::Debug for Verifier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl<'a> Verifier<'a> {
    /// Parses the `Stripe-Signature` header and checks `t` is within `tolerance` of `now` on
    /// both sides.
    pub fn begin(
        key: &HmacKey,
        header: &'a str,
        now: Timestamp,
        tolerance: Duration,
    ) -> Result<Verifier<'a>, StripeError> {
        let header = SignatureHeader::parse(header)?;
        check_window(header.timestamp, now, tolerance).map_err(StripeError::Window)?;
        let mut mac = key.mac();
        mac.update(header.timestamp_text.as_bytes());
        mac.update(b".");
        Ok(Verifier { mac, header })
    }

    /// The signing time `t`, already checked against the window.
    pub const fn timestamp(&self) -> Timestamp {
        self.header.timestamp
    }

    /// Feeds the next piece of the raw body, byte for byte as received (before any JSON parsing).
    pub fn update(&mut self, body_chunk: &[u8]) {
        self.mac.update(body_chunk);
    }

    /// Compares the MAC with every `v1` signature, each in constant time.
    pub fn finish(self) -> Result<Verified, StripeError> {
        let computed = self.mac.finalize();
        let mut matched = None;
        for (i, candidate) in self.header.v1_signatures().enumerate() {
            // `CtOutput`'s equality is constant-time.
            if computed == CtOutput::new(candidate.into()) && matched.is_none() {
                matched = Some(i);
            }
        }
        let matched = matched.ok_or(StripeError::Mismatch)?;
        Ok(Verified {
            timestamp: self.header.timestamp,
            matched,
        })
    }
}

/// Verifies one request: `header` is the `Stripe-Signature` value, `body` the raw body. Checks,
/// in order: the header's syntax, the window, the MAC against every `v1`.
///
/// To accept two secrets of one endpoint during a roll, call it with each key in turn.
pub fn verify(
    key: &HmacKey,
    header: &str,
    body: &[u8],
    now: Timestamp,
    tolerance: Duration,
) -> Result<Verified, StripeError> {
    let mut v = Verifier::begin(key, header, now, tolerance)?;
    v.update(body);
    v.finish()
}

/// The `v1` signature Stripe puts on `body` at `t`: HMAC-SHA256 over `"{t}.{body}"`. For a
/// host's own tests (hex-encode it with [`encode_hex`](super::encode_hex)).
pub fn sign(key: &HmacKey, t: Timestamp, body: &[u8]) -> [u8; HMAC_SHA256_LEN] {
    super::hmac::sign_timestamped(key, t, b".", body)
}

/// The `payment_intent.*` events that map onto an engine input without ambiguity.
///
/// | event type | input |
/// |---|---|
/// | `payment_intent.succeeded` | [`Input::succeed`] with `amount_received` |
/// | `payment_intent.processing` | [`Input::initiate`] |
/// | `payment_intent.payment_failed` | [`Input::fail`] with reason `payment_failed` |
/// | `payment_intent.canceled` | [`Input::close`] (the provider closed it, whoever asked) |
///
/// Every other type is left to the host, on purpose:
///
/// - `payment_intent.created`: the host created it; its own `initiate` (if any) already says so.
/// - `payment_intent.requires_action`: the customer is authenticating (3-D Secure); it arrives
///   both for a first attempt and after a failed one, so it says nothing the engine needs.
/// - `payment_intent.amount_capturable_updated`: funds are authorised, not captured. The engine
///   has no authorised state: capture, then wait for `payment_intent.succeeded`.
/// - `payment_intent.partially_funded`: a bank transfer arrived short; nothing is captured yet.
/// - Refunds (`refund.created`, `refund.updated`, `charge.refunded`, ...) are their own
///   events: when a refund object's `status` is `succeeded`, build [`Input::refund`] from its
///   `id` (`re_...`) and `amount`.
/// - `charge.*` events repeat the payment intent's: use the payment intent's only, or the same
///   capture arrives under two event ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PaymentIntentEvent {
    /// `payment_intent.succeeded`: the capture is confirmed.
    Succeeded,
    /// `payment_intent.processing`: the payment is under way (bank debits, some wallets).
    Processing,
    /// `payment_intent.payment_failed`: the attempt failed.
    PaymentFailed,
    /// `payment_intent.canceled`: the intent was cancelled at Stripe (by the merchant's API
    /// call, by Stripe, or on expiry); nothing was captured.
    Canceled,
}

impl PaymentIntentEvent {
    const ALL: [PaymentIntentEvent; 4] = [
        PaymentIntentEvent::Succeeded,
        PaymentIntentEvent::Processing,
        PaymentIntentEvent::PaymentFailed,
        PaymentIntentEvent::Canceled,
    ];

    /// Looks up an event's `type`; `None` for every type without an unambiguous mapping
    /// (see the table above). A `None` is not an error: acknowledge the event and move on.
    pub fn from_type(event_type: &str) -> Option<PaymentIntentEvent> {
        Self::ALL.into_iter().find(|e| e.event_type() == event_type)
    }

    /// The event `type` string, e.g. `"payment_intent.succeeded"`.
    pub const fn event_type(self) -> &'static str {
        match self {
            PaymentIntentEvent::Succeeded => "payment_intent.succeeded",
            PaymentIntentEvent::Processing => "payment_intent.processing",
            PaymentIntentEvent::PaymentFailed => "payment_intent.payment_failed",
            PaymentIntentEvent::Canceled => "payment_intent.canceled",
        }
    }

    /// The engine input for this event. `event_id` is built from the event's `id` (`evt_...`),
    /// so a redelivery is a duplicate. `amount_received` is the payment intent's
    /// `amount_received` in its `currency` and is used only by `succeeded`; Stripe counts
    /// amounts in the currency's smallest unit, so it is `Money::from_minor(amount_received,
    /// currency)` for the currencies where Stripe's unit is ISO 4217's (check Stripe's list of
    /// special cases before adding a currency).
    pub fn input(self, event_id: EventId, amount_received: Money) -> Input {
        match self {
            PaymentIntentEvent::Succeeded => Input::succeed(event_id, amount_received),
            PaymentIntentEvent::Processing => Input::initiate(event_id),
            PaymentIntentEvent::PaymentFailed => Input::fail_with_code(event_id, "payment_failed"),
            PaymentIntentEvent::Canceled => Input::close(event_id),
        }
    }
}
