//! WeChat Pay API v3 notifications (微信支付 APIv3 回调通知).
//!
//! A notification is an HTTP POST whose body is JSON with an encrypted `resource`, and four
//! headers: `Wechatpay-Timestamp`, `Wechatpay-Nonce`, `Wechatpay-Serial` (which platform key
//! signed it) and `Wechatpay-Signature` (base64 SHA256withRSA over
//! `"{timestamp}\n{nonce}\n{body}\n"`).
//!
//! The host:
//!
//! 1. collects the headers ([`Headers::from_pairs`]) and the raw body;
//! 2. verifies them against its platform keys and its replay guard;
//! 3. decrypts `resource` with its APIv3 key ([`Resource::decrypt`]);
//! 4. maps `trade_state` onto an engine input ([`TradeState::input`]);
//! 5. answers HTTP 200/204 only when verification passed and the engine's outcome is
//!    `applied`, `duplicate` or `ignored`; anything else gets a 4xx/5xx with
//!    `{"code":"FAIL","message":"..."}` so WeChat Pay retries.

use core::fmt;

use sha2::{Digest, Sha256};

mod resource;
mod trade;

pub use resource::{
    ALGORITHM, ApiV3Key, DecryptError, KeyLengthError, NONCE_LEN, Resource, TAG_LEN, decoded_len,
};
pub use trade::{TradeState, UnknownTradeState};

/// Signatures starting with this are WeChat Pay's probes ("签名探测"): a request the merchant
/// must reject, sent to check that it verifies signatures at all. They always fail here.
pub const SIGNTEST_PREFIX: &str = "WECHATPAY/SIGNTEST/";

/// One of the four signature headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Field {
    /// `Wechatpay-Timestamp`.
    Timestamp,
    /// `Wechatpay-Nonce`.
    Nonce,
    /// `Wechatpay-Serial`.
    Serial,
    /// `Wechatpay-Signature`.
    Signature,
}

impl Field {
    const ALL: [Field; 4] = [
        Field::Timestamp,
        Field::Nonce,
        Field::Serial,
        Field::Signature,
    ];

    /// The HTTP header name (matched case-insensitively).
    pub const fn header_name(self) -> &'static str {
        match self {
            Field::Timestamp => "Wechatpay-Timestamp",
            Field::Nonce => "Wechatpay-Nonce",
            Field::Serial => "Wechatpay-Serial",
            Field::Signature => "Wechatpay-Signature",
        }
    }
}

/// A signature header missing or sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HeaderError {
    /// The header is absent or empty.
    Missing(Field),
    /// The header appears more than once: which value was signed is ambiguous.
    Repeated(Field),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Missing(h) => write!(f, "missing {} header", h.header_name()),
            HeaderError::Repeated(h) => write!(f, "repeated {} header", h.header_name()),
        }
    }
}

impl core::error::Error for HeaderError {}

/// The four signature headers of one notification, as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Headers<'a> {
    /// `Wechatpay-Timestamp`: decimal seconds since the Unix epoch.
    pub timestamp: &'a str,
    /// `Wechatpay-Nonce`: a random string (32 characters in practice).
    pub nonce: &'a str,
    /// `Wechatpay-Serial`: the serial number of the platform certificate, or the id of the
    /// platform public key (`PUB_KEY_ID_...`), that signed the notification.
    pub serial: &'a str,
    /// `Wechatpay-Signature`: base64 of the RSA signature.
    pub signature: &'a str,
}

impl<'a> Headers<'a> {
    /// Picks the four headers out of all the request's headers (names compared
    /// case-insensitively, other headers ignored). Each must appear exactly once, non-empty.
    /// `Wechatpay-Signature-Type` is ignored on purpose: the algorithm is the host's
    /// configuration, never the message's.
    pub fn from_pairs<I>(pairs: I) -> Result<Headers<'a>, HeaderError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut found: [Option<&'a str>; 4] = [None; 4];
        for (name, value) in pairs {
            let field = Field::ALL
                .into_iter()
                .zip(found.iter_mut())
                .find(|(f, _)| f.header_name().eq_ignore_ascii_case(name.trim()));
            if let Some((field, slot)) = field {
                if slot.is_some() {
                    return Err(HeaderError::Repeated(field));
                }
                *slot = Some(value.trim_matches([' ', '\t']));
            }
        }
        let [timestamp, nonce, serial, signature] = found;
        let take = |v: Option<&'a str>, f: Field| {
            v.filter(|s| !s.is_empty()).ok_or(HeaderError::Missing(f))
        };
        Ok(Headers {
            timestamp: take(timestamp, Field::Timestamp)?,
            nonce: take(nonce, Field::Nonce)?,
            serial: take(serial, Field::Serial)?,
            signature: take(signature, Field::Signature)?,
        })
    }
}

/// SHA-256 of the signed message `"{timestamp}\n{nonce}\n{body}\n"`, streamed (the message is
/// never assembled). `timestamp` and `nonce` are the header values as received.
pub fn message_digest(timestamp: &str, nonce: &str, body: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(timestamp)
        .chain_update(b"\n")
        .chain_update(nonce)
        .chain_update(b"\n")
        .chain_update(body)
        .chain_update(b"\n")
        .finalize()
        .into()
}
