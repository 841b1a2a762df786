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

use super::{TimestampError, parse_timestamp};
use crate::guard::{ReplayError, ReplayGuard};
use crate::signature::x509::Certificate;
use crate::signature::{
    KeyError, MAX_SIGNATURE_LEN, Rsa2PublicKey, Rsa2Verifier, SignatureError, decode_signature,
};
use crate::time::Timestamp;

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
pub enum Header {
    /// `Wechatpay-Timestamp`.
    Timestamp,
    /// `Wechatpay-Nonce`.
    Nonce,
    /// `Wechatpay-Serial`.
    Serial,
    /// `Wechatpay-Signature`.
    Signature,
}

impl Header {
    const ALL: [Header; 4] = [
        Header::Timestamp,
        Header::Nonce,
        Header::Serial,
        Header::Signature,
    ];

    /// The HTTP header name (matched case-insensitively).
    pub const fn header_name(self) -> &'static str {
        match self {
            Header::Timestamp => "Wechatpay-Timestamp",
            Header::Nonce => "Wechatpay-Nonce",
            Header::Serial => "Wechatpay-Serial",
            Header::Signature => "Wechatpay-Signature",
        }
    }
}

/// A signature header missing or sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum HeaderError {
    /// The header is absent or empty.
    Missing(Header),
    /// The header appears more than once: which value was signed is ambiguous.
    Repeated(Header),
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
            let field = Header::ALL
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
        let take = |v: Option<&'a str>, f: Header| {
            v.filter(|s| !s.is_empty()).ok_or(HeaderError::Missing(f))
        };
        Ok(Headers {
            timestamp: take(timestamp, Header::Timestamp)?,
            nonce: take(nonce, Header::Nonce)?,
            serial: take(serial, Header::Serial)?,
            signature: take(signature, Header::Signature)?,
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

/// Longest key id accepted in `Wechatpay-Serial`, in bytes. Certificate serials are 40 hex
/// digits and public key ids (`PUB_KEY_ID_` and 28 digits) 39 characters in practice.
pub const MAX_KEY_ID_LEN: usize = 64;

/// A key id that is empty or longer than [`MAX_KEY_ID_LEN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct KeyIdError {
    /// The length given.
    pub len: usize,
}

impl fmt::Display for KeyIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "key id of {} bytes (must be 1..={MAX_KEY_ID_LEN})",
            self.len
        )
    }
}

impl core::error::Error for KeyIdError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyId {
    /// A platform certificate's serial number, upper-case hex without leading zeros.
    Serial(heapless::String<MAX_KEY_ID_LEN>),
    /// A platform public key's id (`PUB_KEY_ID_...`), compared exactly.
    Id(heapless::String<MAX_KEY_ID_LEN>),
}

/// One WeChat Pay platform key, with the id that `Wechatpay-Serial` names it by: a platform
/// certificate's serial number, or a platform public key's ("微信支付公钥") `PUB_KEY_ID_...`.
///
/// The host loads its platform keys once and passes them all to [`verify`]; during a key
/// rotation WeChat Pay signs with the new key and the host must already hold it.
///
/// `K` is the RSA2 backend that verifies with it: `Rsa2PublicKey` unless the host picks
/// another ([`PlatformKey::with_key`]).
#[derive(Clone, PartialEq, Eq)]
pub struct PlatformKey<K = Rsa2PublicKey> {
    id: KeyId,
    key: K,
    validity: Option<(Timestamp, Timestamp)>,
}

impl<K: fmt::Debug> fmt::Debug for PlatformKey<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformKey")
            .field("id", &self.id())
            .field("key", &self.key)
            .field("validity", &self.validity)
            .finish()
    }
}

impl PlatformKey {
    /// The key of a platform certificate, named by the certificate's serial number.
    pub fn from_certificate(certificate: &Certificate) -> Result<PlatformKey, KeyError> {
        let key = certificate.public_key()?;
        let hex = certificate.serial_hex();
        let mut id = heapless::String::new();
        // A serial hex is at most 42 characters: it always fits.
        let _ = id.push_str(hex.as_str().trim_start_matches('0'));
        Ok(PlatformKey {
            id: KeyId::Serial(id),
            key,
            validity: Some((certificate.not_before(), certificate.not_after())),
        })
    }
}

impl<K> PlatformKey<K> {
    /// A platform public key and its id as WeChat Pay shows it (`PUB_KEY_ID_...`).
    pub fn from_public_key(id: &str, key: K) -> Result<PlatformKey<K>, KeyIdError> {
        if id.is_empty() {
            return Err(KeyIdError { len: 0 });
        }
        let id = heapless::String::try_from(id).map_err(|_| KeyIdError { len: id.len() })?;
        Ok(PlatformKey {
            id: KeyId::Id(id),
            key,
            validity: None,
        })
    }

    /// The id `Wechatpay-Serial` must carry for this key.
    pub fn id(&self) -> &str {
        match &self.id {
            KeyId::Serial(s) | KeyId::Id(s) => s.as_str(),
        }
    }

    /// The RSA key.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The same id and validity, verified with another RSA2 backend: load the certificate's
    /// key into it (`RingRsa2PublicKey::from_der(certificate.subject_public_key_info_der())`)
    /// and swap it in.
    pub fn with_key<L>(self, key: L) -> PlatformKey<L> {
        PlatformKey {
            id: self.id,
            key,
            validity: self.validity,
        }
    }

    /// The certificate's validity period (`notBefore`, `notAfter`), for a key loaded from a
    /// certificate. Verification does not enforce it (the host pinned the certificate, and
    /// WeChat Pay moves to a new serial before one expires); a host alerts when `notAfter`
    /// comes near, and fetches the new platform certificate.
    pub fn validity(&self) -> Option<(Timestamp, Timestamp)> {
        self.validity
    }

    /// Whether `serial` names this key. A certificate serial is a number: case and leading
    /// zeros do not matter (SDKs print it either way). A public key id must match exactly.
    pub fn matches(&self, serial: &str) -> bool {
        match &self.id {
            KeyId::Serial(s) => s
                .as_str()
                .eq_ignore_ascii_case(serial.trim_start_matches('0')),
            KeyId::Id(s) => s.as_str() == serial,
        }
    }
}

/// Why a notification was refused. The host answers with a 4xx/5xx status and
/// `{"code":"FAIL","message":"..."}`, and does not process it; WeChat Pay retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WechatError {
    /// `Wechatpay-Timestamp` is not a plain decimal number of seconds.
    Timestamp(TimestampError),
    /// The replay guard refused the request: stale or from the future (the 300 s window),
    /// replayed nonce, or a nonce of a bad length. Never `BadSignature`: that is reported as
    /// the precise signature error below.
    Replay(ReplayError),
    /// A `WECHATPAY/SIGNTEST/` probe: WeChat Pay checking that the merchant verifies
    /// signatures. Failing it is the right answer.
    SignTest,
    /// No platform key has the id in `Wechatpay-Serial`. If WeChat Pay rotated its key, the
    /// host must fetch the new platform certificate (or public key) and add it.
    UnknownSerial,
    /// `Wechatpay-Signature` is malformed or does not match.
    Signature(SignatureError),
}

impl WechatError {
    /// A stable snake_case code for logs and the verify tool.
    pub const fn code(&self) -> &'static str {
        match self {
            WechatError::Timestamp(_) => "invalid_timestamp",
            WechatError::Replay(e) => e.code(),
            WechatError::SignTest => "signtest",
            WechatError::UnknownSerial => "unknown_serial",
            WechatError::Signature(e) => e.code(),
        }
    }
}

impl fmt::Display for WechatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WechatError::Timestamp(e) => write!(f, "Wechatpay-Timestamp: {e}"),
            WechatError::Replay(e) => e.fmt(f),
            WechatError::SignTest => f.write_str("signature probe (WECHATPAY/SIGNTEST/)"),
            WechatError::UnknownSerial => f.write_str("no platform key for Wechatpay-Serial"),
            WechatError::Signature(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for WechatError {}

/// A notification that passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use]
pub struct Verified {
    timestamp: Timestamp,
    key: usize,
}

impl Verified {
    /// `Wechatpay-Timestamp`.
    pub const fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// Which of the host's platform keys signed it (an index into the slice given).
    pub const fn key_index(&self) -> usize {
        self.key
    }
}

/// Verifies a notification: the headers, the raw body (byte for byte as received), the host's
/// platform keys and its replay guard (tolerance 300 s, the default).
///
/// The order is docs/spec.md §3.1's, as [`ReplayGuard::admit`] runs it: the timestamp's syntax; the
/// nonce's length, the two-sided window and the guard's floor; then the signature (probe
/// prefix, key by `Wechatpay-Serial`, base64, SHA256withRSA); and only
/// for a genuine request the replay check, after which the nonce is remembered. A request that
/// fails its signature leaves the guard unchanged.
///
/// On `Ok`, decrypt the resource and apply the input; on `Err`, answer with an error status.
pub fn verify<const N: usize, K: Rsa2Verifier>(
    headers: &Headers<'_>,
    body: &[u8],
    keys: &[PlatformKey<K>],
    guard: &mut ReplayGuard<N>,
    now: Timestamp,
) -> Result<Verified, WechatError> {
    let timestamp = parse_timestamp(headers.timestamp).map_err(WechatError::Timestamp)?;
    let mut outcome = Err(WechatError::Signature(SignatureError::Mismatch));
    let admitted = guard.admit(timestamp, headers.nonce.as_bytes(), now, || {
        outcome = verify_signature(headers, body, keys);
        outcome.is_ok()
    });
    match admitted {
        Ok(()) => outcome.map(|key| Verified { timestamp, key }),
        Err(ReplayError::BadSignature) => {
            outcome.and(Err(WechatError::Signature(SignatureError::Mismatch)))
        }
        Err(e) => Err(WechatError::Replay(e)),
    }
}

/// Only the signature: the probe prefix, the key named by `Wechatpay-Serial`, and
/// SHA256withRSA over the signed message. Returns the index of the key that matched.
///
/// This checks neither the window nor the nonce: a host uses [`verify`], which calls this in
/// the right place. It is public for tools and for hosts with a replay store of their own.
pub fn verify_signature<K: Rsa2Verifier>(
    headers: &Headers<'_>,
    body: &[u8],
    keys: &[PlatformKey<K>],
) -> Result<usize, WechatError> {
    if headers.signature.starts_with(SIGNTEST_PREFIX) {
        return Err(WechatError::SignTest);
    }
    let (index, key) = keys
        .iter()
        .enumerate()
        .find(|(_, k)| k.matches(headers.serial))
        .ok_or(WechatError::UnknownSerial)?;
    let mut buf = [0u8; MAX_SIGNATURE_LEN];
    let signature =
        decode_signature(headers.signature, &mut buf).map_err(WechatError::Signature)?;
    let message: [&[u8]; 6] = [
        headers.timestamp.as_bytes(),
        b"\n",
        headers.nonce.as_bytes(),
        b"\n",
        body,
        b"\n",
    ];
    key.key
        .verify_message(&message, signature)
        .map_err(WechatError::Signature)?;
    Ok(index)
}
