//! WeChat Pay API v3 (微信支付 APIv3) in the provider shape of docs/spec.md §4.1.
//!
//! Four message kinds, each verified with the `Wechatpay-*` signature scheme of
//! [`webhook::wechatpay`](crate::webhook::wechatpay) (SHA256withRSA over
//! `"{timestamp}\n{nonce}\n{body}\n"`, the platform key named by `Wechatpay-Serial`, probes
//! starting `WECHATPAY/SIGNTEST/` refused) and then mapped to an engine input:
//!
//! | message | verify with | input | event id |
//! |---|---|---|---|
//! | notification `TRANSACTION.SUCCESS` (支付通知) | [`verify_notification`] | by `trade_state` (below) | the notification's `id` |
//! | notification `REFUND.SUCCESS` / `.ABNORMAL` / `.CLOSED` (退款通知) | [`verify_notification`] | by `refund_status` (below) | the notification's `id` |
//! | order query answer, `GET /v3/pay/transactions/out-trade-no/{no}` | [`verify_query`] | by `trade_state` | derived from `["wechatpay.query", out_trade_no, trade_state]` |
//! | close answer, `POST /v3/pay/transactions/out-trade-no/{no}/close` | [`verify_close`] | `close` (204, and the errors `ORDER_NOT_EXIST`, `ORDERNOTEXIST`, `ORDER_CLOSED`) | derived from `["wechatpay.close", out_trade_no]` |
//! | refund answer, `POST /v3/refund/domestic/refunds` | [`verify_refund`] | by `status` | derived from `["wechatpay.refund", out_refund_no, status]` |
//!
//! `trade_state` (notification and query): `SUCCESS` → `succeed(amount.total)`; `NOTPAY`,
//! `USERPAYING`, `ACCEPT` → `initiate`; `CLOSED`, `REVOKED` → `close`; `PAYERROR` →
//! `fail("PAYERROR")`; `REFUND` → [`MapError::NothingToApply`] (refunds are their own events).
//!
//! Refund status (`refund_status` of a refund notification, `status` of a refund answer):
//! `SUCCESS` → `refund(out_refund_no, amount.refund)`; `PROCESSING` →
//! [`MapError::NothingToApply`] (the notification or a later query brings the result);
//! `CLOSED`, `ABNORMAL` → [`MapError::RefundFailed`] (nothing was refunded; the refund
//! obligation stays outstanding until a person decides).
//!
//! Business checks before any input is made (WeChat Pay's docs: "商户系统对于支付结果通知的
//! 内容一定要做签名验证，并校验返回的订单金额是否与商户侧的订单金额一致"), each present in the
//! message: `mchid` and `appid` are the host's ([`Merchant`]), `out_trade_no` is the payment's
//! order id, `amount.total` (in fen for CNY: minor units) is its amount, `amount.currency` its
//! currency (an unknown code is [`MapError::UnknownCurrency`], never a mismatch). Refund
//! resources carry no `appid` (and notifications no currency: a refund is in the order's
//! currency); a refund answer carries neither `mchid` nor `appid` (it answers the host's own
//! request); the close answer is an empty 204 and names nothing, so the host passes the
//! `out_trade_no` it asked to close.
//!
//! Synchronous answers are checked against a two-sided 300 s window around `now` (WeChat Pay's
//! SDKs allow 5 minutes) but not against the replay guard: they arrive on the host's own
//! connection, and the same answer to the same question maps to the same event.
//!
//! The host then answers the notification with [`Reply`]: 204 for applied, duplicate and
//! ignored; 4xx/5xx with `{"code":"FAIL","message":"..."}` otherwise, so WeChat Pay retries.
//!
//! A notification handler (the keys and the notification are this crate's test data: a
//! self-generated platform key, not WeChat Pay's):
//!
//! ```
//! use paystate::guard::ReplayGuard;
//! use paystate::provider::{Facts, wechatpay::{self, Keys, Merchant, Reply}};
//! use paystate::signature::x509::Certificate;
//! use paystate::webhook::wechatpay::{ApiV3Key, Headers, PlatformKey};
//! use paystate::{Currency, Money, Payment, Status, Timestamp};
//!
//! let t = Timestamp::from_secs;
//! // Configuration, loaded once.
//! let cert = Certificate::from_pem(include_str!("../../tests/data/wechatpay_fresh/platform_cert.pem"))?;
//! let platform = [PlatformKey::from_certificate(&cert)?];
//! let api_v3 = ApiV3Key::from_slice(b"J2PKguiqOpHxV9IjuelJjyE7aWfDCp8R")?;
//! let keys = Keys { platform: &platform, api_v3: &api_v3 };
//! let merchant = Merchant { mchid: "1230000109", appid: "wxd678efh567hg6787" };
//! let mut guard = ReplayGuard::<1024>::new();
//!
//! // One request.
//! let sent: serde_json::Value =
//!     serde_json::from_str(include_str!("../../tests/data/wechatpay_fresh/notification.json"))?;
//! let h = &sent["headers"];
//! let headers = Headers::from_pairs(
//!     ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial", "Wechatpay-Signature"]
//!         .map(|name| (name, h[name].as_str().unwrap_or(""))),
//! )?;
//! let body = sent["body"].as_str().unwrap_or("").as_bytes();
//! let now = t(1_795_790_470);
//!
//! let mut order: Payment = Payment::new(Money::parse("1.00", Currency::CNY)?, t(1_795_790_000))?;
//! let mut buf = [0u8; 1024];
//! let reply = match wechatpay::verify_notification(&headers, body, &keys, &mut guard, now, &mut buf) {
//!     Err(e) => Reply::for_error(&e),
//!     Ok(n) => match n.to_input(&merchant, &Facts::of("1217752501201407033233368018", &order)) {
//!         Err(e) => Reply::for_map_error(&e),
//!         // Persist the snapshot and carry out the effects before replying.
//!         Ok(input) => Reply::for_outcome(&order.apply(&input, now)),
//!     },
//! };
//! assert_eq!((reply.status(), order.status()), (204, Status::Succeeded));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use serde::Deserialize;
use serde_json_core::str::EscapedStr;

use super::json::{self, JsonError, expect, expect_currency, plain};
use super::{Facts, MapError, Verified};
use crate::guard::ReplayGuard;
use crate::money::Money;
use crate::payment::Outcome;
use crate::payment::input::{EventId, Input, RefundId};
use crate::time::Timestamp;
use crate::webhook::wechatpay::{
    self as scheme, ApiV3Key, DecryptError, Headers, PlatformKey, Resource, TradeState, WechatError,
};
use crate::webhook::{Duration, WindowError, check_window, parse_timestamp};

/// The host's own WeChat Pay identities, from its configuration (never from the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Merchant<'c> {
    /// The merchant id (`mchid`, 商户号, e.g. `1230000109`).
    pub mchid: &'c str,
    /// The application id the orders are made under (`appid`, e.g. `wxd678efh567hg6787`).
    pub appid: &'c str,
}

/// The keys a notification is verified and decrypted with.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'k> {
    /// The platform keys (certificates or `PUB_KEY_ID_...` public keys) `Wechatpay-Serial`
    /// may name. Hold the new one before WeChat Pay rotates.
    pub platform: &'k [PlatformKey],
    /// The merchant's APIv3 key, which decrypts the notification's `resource`.
    pub api_v3: &'k ApiV3Key,
}

/// Why a message was refused before anything was mapped. The host does not act on it; for a
/// notification it answers with [`Reply::for_error`] and WeChat Pay retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The signature headers, the replay guard (notifications) or the signature refused it.
    Signature(WechatError),
    /// An answer's `Wechatpay-Timestamp` is more than 300 s from `now` (either side).
    Window(WindowError),
    /// The notification's `resource` did not decrypt: almost always the wrong APIv3 key.
    Decrypt(DecryptError),
    /// The body or the decrypted resource is not the JSON this message kind has, or lacks the
    /// `resource` a notification must carry.
    Json(JsonError),
    /// An answer came with an HTTP status this request never answers with (a close answered
    /// 200, a query answered 302, ...): the status given.
    Status(u16),
}

impl Error {
    /// A stable snake_case code for logs and the reply's `message`.
    pub const fn code(&self) -> &'static str {
        match self {
            Error::Signature(e) => e.code(),
            Error::Window(e) => e.code(),
            Error::Decrypt(e) => e.code(),
            Error::Json(_) => "bad_json",
            Error::Status(_) => "unexpected_status",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Signature(e) => e.fmt(f),
            Error::Window(e) => e.fmt(f),
            Error::Decrypt(e) => e.fmt(f),
            Error::Json(e) => e.fmt(f),
            Error::Status(s) => write!(f, "unexpected HTTP status {s}"),
        }
    }
}

impl core::error::Error for Error {}

// ---------------------------------------------------------------------------------------------
// The JSON shapes. Every field is optional at parse time: a missing field the mapping needs is
// a `MapError::MissingField` naming it, not an anonymous parse error.

/// `amount` of a transaction or a refund, in minor units (fen for CNY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
struct Amount<'a> {
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    refund: Option<u64>,
    #[serde(borrow, default)]
    currency: Option<EscapedStr<'a>>,
}

/// A transaction: the decrypted resource of a `TRANSACTION.SUCCESS` notification, or the
/// answer to an order query. Fields the mapping does not read are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Transaction<'a> {
    #[serde(borrow, default)]
    mchid: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    appid: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    out_trade_no: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    transaction_id: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    trade_state: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    amount: Option<Amount<'a>>,
}

impl<'a> Transaction<'a> {
    /// `out_trade_no`, as sent (JSON escapes not decoded).
    pub fn out_trade_no(&self) -> Option<&'a str> {
        self.out_trade_no.map(|s| s.0)
    }

    /// `transaction_id`, WeChat Pay's own order number, as sent.
    pub fn transaction_id(&self) -> Option<&'a str> {
        self.transaction_id.map(|s| s.0)
    }

    /// `trade_state` (`"SUCCESS"`, `"NOTPAY"`, ...), as sent.
    pub fn trade_state(&self) -> Option<&'a str> {
        self.trade_state.map(|s| s.0)
    }

    /// `amount.total`, in minor units of `amount.currency`.
    pub fn total(&self) -> Option<u64> {
        self.amount.and_then(|a| a.total)
    }

    /// The input this transaction maps to; `event_id` is made from the order number and the
    /// state once they are checked.
    fn map(
        &self,
        merchant: &Merchant<'_>,
        facts: &Facts<'_>,
        event_id: impl FnOnce(&str, &str) -> Result<EventId, MapError>,
    ) -> Result<Input, MapError> {
        expect(
            self.mchid,
            "mchid",
            merchant.mchid,
            MapError::WrongMerchant("mchid"),
        )?;
        expect(
            self.appid,
            "appid",
            merchant.appid,
            MapError::WrongMerchant("appid"),
        )?;
        expect(
            self.out_trade_no,
            "out_trade_no",
            facts.order_id(),
            MapError::WrongOrder,
        )?;
        let out_trade_no = plain(self.out_trade_no, "out_trade_no")?;
        let state_text = plain(self.trade_state, "trade_state")?;
        let state = TradeState::parse(state_text).map_err(|_| MapError::UnknownStatus)?;
        // The amount is checked wherever it is sent, and required where it becomes the input.
        let total = match self.amount {
            Some(amount) => check_amount(&amount, facts, true)?,
            None if state == TradeState::Success => {
                return Err(MapError::MissingField("amount.total"));
            }
            None => facts.amount(),
        };
        let event_id = event_id(out_trade_no, state_text)?;
        state.input(event_id, total).ok_or(MapError::NothingToApply)
    }
}

/// A refund: the decrypted resource of a `REFUND.*` notification, or the answer to a refund
/// request. Fields the mapping does not read are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Refund<'a> {
    #[serde(borrow, default)]
    mchid: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    out_trade_no: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    out_refund_no: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    refund_id: Option<EscapedStr<'a>>,
    /// In notifications.
    #[serde(borrow, default)]
    refund_status: Option<EscapedStr<'a>>,
    /// In answers.
    #[serde(borrow, default)]
    status: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    amount: Option<Amount<'a>>,
}

impl<'a> Refund<'a> {
    /// `out_trade_no`, the host's order the refund is of, as sent: the host looks its
    /// payment up by it.
    pub fn out_trade_no(&self) -> Option<&'a str> {
        self.out_trade_no.map(|s| s.0)
    }

    /// `out_refund_no`, the host's refund number, as sent.
    pub fn out_refund_no(&self) -> Option<&'a str> {
        self.out_refund_no.map(|s| s.0)
    }

    /// `refund_id`, WeChat Pay's refund number, as sent.
    pub fn refund_id(&self) -> Option<&'a str> {
        self.refund_id.map(|s| s.0)
    }

    /// `amount.refund`, in minor units.
    pub fn refund_amount(&self) -> Option<u64> {
        self.amount.and_then(|a| a.refund)
    }

    /// The input this refund maps to. `status` is the status field's value (`refund_status`
    /// or `status`); `mchid` is checked when `merchant` is given (notifications).
    fn map(
        &self,
        status: Option<EscapedStr<'_>>,
        status_field: &'static str,
        merchant: Option<&Merchant<'_>>,
        facts: &Facts<'_>,
        event_id: impl FnOnce(&str, &str) -> Result<EventId, MapError>,
    ) -> Result<Input, MapError> {
        if let Some(merchant) = merchant {
            expect(
                self.mchid,
                "mchid",
                merchant.mchid,
                MapError::WrongMerchant("mchid"),
            )?;
        }
        expect(
            self.out_trade_no,
            "out_trade_no",
            facts.order_id(),
            MapError::WrongOrder,
        )?;
        let amount = self.amount.ok_or(MapError::MissingField("amount.total"))?;
        // A refund notification carries no currency: the refund is in the order's.
        check_amount(&amount, facts, false)?;
        let status = plain(status, status_field)?;
        match status {
            "SUCCESS" => {}
            "PROCESSING" => return Err(MapError::NothingToApply),
            "CLOSED" | "ABNORMAL" => return Err(MapError::RefundFailed),
            _ => return Err(MapError::UnknownStatus),
        }
        let out_refund_no = plain(self.out_refund_no, "out_refund_no")?;
        let refunded = amount
            .refund
            .ok_or(MapError::MissingField("amount.refund"))?;
        let refund_id = RefundId::new(out_refund_no.as_bytes())?;
        let event_id = event_id(out_refund_no, status)?;
        Ok(Input::refund(
            event_id,
            refund_id,
            Money::from_minor(refunded, facts.currency()),
        ))
    }
}

/// Checks `amount.currency` (required when `currency_required`, else checked if present) and
/// `amount.total` against the payment; returns the total as money.
fn check_amount(
    amount: &Amount<'_>,
    facts: &Facts<'_>,
    currency_required: bool,
) -> Result<Money, MapError> {
    if currency_required || amount.currency.is_some() {
        expect_currency(amount.currency, "amount.currency", facts.currency())?;
    }
    let total = amount.total.ok_or(MapError::MissingField("amount.total"))?;
    if total != facts.amount().minor_units() {
        return Err(MapError::AmountMismatch {
            expected: facts.amount().minor_units(),
            got: total,
        });
    }
    Ok(Money::from_minor(total, facts.currency()))
}

/// The error body of a 4xx/5xx answer: `{"code":"ORDER_NOT_EXIST","message":"订单不存在"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Failure<'a> {
    #[serde(skip)]
    status: u16,
    #[serde(borrow, default)]
    code: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    message: Option<EscapedStr<'a>>,
}

impl<'a> Failure<'a> {
    fn parse(status: u16, body: &'a [u8]) -> Result<Failure<'a>, Error> {
        let failure: Failure<'a> = json::parse(body, "answer").map_err(Error::Json)?;
        Ok(Failure { status, ..failure })
    }

    /// The HTTP status of the answer (4xx or 5xx).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// `code` (`"ORDER_NOT_EXIST"`, `"ORDERPAID"`, ...), as sent.
    pub fn code(&self) -> Option<&'a str> {
        self.code.map(|s| s.0)
    }

    /// `message`, a human-readable description (often Chinese), as sent (JSON escapes not
    /// decoded).
    pub fn message(&self) -> Option<&'a str> {
        self.message.map(|s| s.0)
    }

    fn is(&self, codes: &[&str]) -> bool {
        self.code.is_some_and(|c| codes.contains(&c.0))
    }
}

/// "The order does not exist": `ORDER_NOT_EXIST` in API v3, `ORDERNOTEXIST` as some
/// endpoints still spell it.
const NOT_EXIST: [&str; 2] = ["ORDER_NOT_EXIST", "ORDERNOTEXIST"];

fn is_error_status(status: u16) -> bool {
    (400..600).contains(&status)
}

fn derived(parts: &[&[u8]]) -> Result<EventId, MapError> {
    EventId::derived(parts).map_err(|_| MapError::BadField("event id"))
}

// ---------------------------------------------------------------------------------------------
// Notifications.

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    id: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    event_type: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    resource: Option<ResourceJson<'a>>,
}

#[derive(Deserialize)]
struct ResourceJson<'a> {
    #[serde(borrow, default)]
    algorithm: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    ciphertext: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    associated_data: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    nonce: Option<EscapedStr<'a>>,
}

/// What a notification's decrypted resource is, chosen by its `event_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum NotificationResource<'a> {
    /// `TRANSACTION.*` (`TRANSACTION.SUCCESS`): a payment.
    Transaction(Transaction<'a>),
    /// `REFUND.*` (`REFUND.SUCCESS`, `REFUND.ABNORMAL`, `REFUND.CLOSED`): a refund.
    Refund(Refund<'a>),
    /// Any other event type (a PayScore event, ...): decrypted, not read. It maps to
    /// [`MapError::UnknownStatus`]: a payment's `notify_url` does not receive these.
    Other,
}

/// A WeChat Pay notification (回调通知) with its resource decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Notification<'a> {
    id: Option<EscapedStr<'a>>,
    event_type: &'a str,
    plaintext: &'a [u8],
    resource: NotificationResource<'a>,
}

impl<'a> Notification<'a> {
    /// Decrypts and reads a notification body **without checking its signature**: for a host
    /// that verified `Wechatpay-Signature` elsewhere (an HSM over
    /// [`message_digest`](crate::webhook::wechatpay::message_digest)), which then wraps the
    /// result in [`Verified::trust_unverified`]. Everyone else calls
    /// [`verify_notification`].
    ///
    /// `buf` receives the plaintext and must hold the decoded ciphertext:
    /// [`decoded_len`](crate::webhook::wechatpay::decoded_len)`(resource.ciphertext)` bytes
    /// (1 KiB is plenty for a transaction or a refund). On a decryption error it is zeroed.
    pub fn open(
        body: &'a [u8],
        api_v3_key: &ApiV3Key,
        buf: &'a mut [u8],
    ) -> Result<Notification<'a>, Error> {
        let bad = Error::Json(JsonError { part: "body" });
        let envelope: Envelope<'a> = json::parse(body, "body").map_err(Error::Json)?;
        let event_type = plain(envelope.event_type, "event_type").map_err(|_| bad)?;
        let res = envelope.resource.ok_or(bad)?;
        let field = |v: Option<EscapedStr<'a>>| plain(v, "resource").map_err(|_| bad);
        let resource = Resource {
            algorithm: field(res.algorithm)?,
            ciphertext: field(res.ciphertext)?,
            // Empty associated data is allowed (and then sent as "" or left out).
            associated_data: match res.associated_data {
                Some(ad) if !ad.0.is_empty() => field(Some(ad))?,
                _ => "",
            },
            nonce: field(res.nonce)?,
        };
        let plaintext: &'a [u8] = resource.decrypt(api_v3_key, buf).map_err(Error::Decrypt)?;
        let resource = if event_type.starts_with("TRANSACTION.") {
            NotificationResource::Transaction(
                json::parse(plaintext, "resource").map_err(Error::Json)?,
            )
        } else if event_type.starts_with("REFUND.") {
            NotificationResource::Refund(json::parse(plaintext, "resource").map_err(Error::Json)?)
        } else {
            NotificationResource::Other
        };
        Ok(Notification {
            id: envelope.id,
            event_type,
            plaintext,
            resource,
        })
    }

    /// The notification's `id` (e.g. `EV-2018022511223320873`), as sent.
    pub fn id(&self) -> Option<&'a str> {
        self.id.map(|s| s.0)
    }

    /// `event_type` (`"TRANSACTION.SUCCESS"`, `"REFUND.SUCCESS"`, ...).
    pub fn event_type(&self) -> &'a str {
        self.event_type
    }

    /// The decrypted resource, as JSON text.
    pub fn plaintext(&self) -> &'a [u8] {
        self.plaintext
    }

    /// The decrypted resource, read.
    pub fn resource(&self) -> NotificationResource<'a> {
        self.resource
    }
}

impl Verified<Notification<'_>> {
    /// The business checks and the mapping (see the [module](self) table). The event id is
    /// the notification's `id` (1..=64 bytes; WeChat Pay redelivers with the same `id`).
    pub fn to_input(&self, merchant: &Merchant<'_>, facts: &Facts<'_>) -> Result<Input, MapError> {
        let n = self.message();
        let event_id = |_: &str, _: &str| {
            let id = plain(n.id, "id")?;
            EventId::new(id.as_bytes()).map_err(|_| MapError::BadField("id"))
        };
        match &n.resource {
            NotificationResource::Transaction(tx) => tx.map(merchant, facts, event_id),
            NotificationResource::Refund(r) => r.map(
                r.refund_status,
                "refund_status",
                Some(merchant),
                facts,
                event_id,
            ),
            NotificationResource::Other => Err(MapError::UnknownStatus),
        }
    }
}

/// Verifies a notification and decrypts its resource: the signature headers, the replay
/// guard and the signature exactly as [`webhook::wechatpay::verify`](scheme::verify) checks
/// them (a forged request leaves the guard unchanged), then [`Notification::open`] with
/// `keys.api_v3` into `buf`. Nothing is parsed before the signature holds.
pub fn verify_notification<'a, const N: usize>(
    headers: &Headers<'_>,
    body: &'a [u8],
    keys: &Keys<'_>,
    guard: &mut ReplayGuard<N>,
    now: Timestamp,
    buf: &'a mut [u8],
) -> Result<Verified<Notification<'a>>, Error> {
    let _signed =
        scheme::verify(headers, body, keys.platform, guard, now).map_err(Error::Signature)?;
    Notification::open(body, keys.api_v3, buf).map(Verified::new)
}

// ---------------------------------------------------------------------------------------------
// Synchronous answers.

/// The signature of an answer: the timestamp's syntax, the two-sided 300 s window, then the
/// same signature check as a notification's (probe prefix, key by serial, SHA256withRSA).
fn verify_answer(
    headers: &Headers<'_>,
    body: &[u8],
    keys: &[PlatformKey],
    now: Timestamp,
) -> Result<(), Error> {
    let timestamp = parse_timestamp(headers.timestamp)
        .map_err(|e| Error::Signature(WechatError::Timestamp(e)))?;
    check_window(timestamp, now, Duration::DEFAULT_TOLERANCE).map_err(Error::Window)?;
    scheme::verify_signature(headers, body, keys).map_err(Error::Signature)?;
    Ok(())
}

/// The answer to an order query, `GET /v3/pay/transactions/out-trade-no/{out_trade_no}`
/// (查询订单): the transaction (HTTP 200), or WeChat Pay's error (4xx/5xx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum QueryAnswer<'a> {
    /// HTTP 200: the order.
    Found(Transaction<'a>),
    /// 4xx/5xx: `ORDER_NOT_EXIST` (the order was never created at WeChat Pay) or another
    /// error.
    Failed(Failure<'a>),
}

impl<'a> QueryAnswer<'a> {
    /// Reads an answer **without checking its signature** (see [`Notification::open`] for
    /// who may); everyone else calls [`verify_query`].
    pub fn parse(status: u16, body: &'a [u8]) -> Result<QueryAnswer<'a>, Error> {
        match status {
            200 => json::parse(body, "answer")
                .map(QueryAnswer::Found)
                .map_err(Error::Json),
            s if is_error_status(s) => Failure::parse(s, body).map(QueryAnswer::Failed),
            s => Err(Error::Status(s)),
        }
    }
}

impl Verified<QueryAnswer<'_>> {
    /// The business checks and the mapping by `trade_state` (see the [module](self) table).
    ///
    /// The event id is [`EventId::derived`] from `["wechatpay.query", out_trade_no,
    /// trade_state]`: asking again and hearing the same state is the same event. An
    /// `ORDER_NOT_EXIST` answer is [`MapError::NothingToApply`] (nothing was created at
    /// WeChat Pay yet); other errors are [`MapError::ProviderError`].
    pub fn to_input(&self, merchant: &Merchant<'_>, facts: &Facts<'_>) -> Result<Input, MapError> {
        match self.message() {
            QueryAnswer::Found(tx) => tx.map(merchant, facts, |no, state| {
                derived(&[b"wechatpay.query", no.as_bytes(), state.as_bytes()])
            }),
            QueryAnswer::Failed(f) if f.is(&NOT_EXIST) => Err(MapError::NothingToApply),
            QueryAnswer::Failed(_) => Err(MapError::ProviderError),
        }
    }
}

/// Verifies the answer to an order query: `status` is the HTTP status, `headers` the
/// answer's `Wechatpay-*` headers, `body` the raw body.
pub fn verify_query<'a>(
    headers: &Headers<'_>,
    status: u16,
    body: &'a [u8],
    keys: &[PlatformKey],
    now: Timestamp,
) -> Result<Verified<QueryAnswer<'a>>, Error> {
    verify_answer(headers, body, keys, now)?;
    QueryAnswer::parse(status, body).map(Verified::new)
}

/// The answer to closing an order, `POST /v3/pay/transactions/out-trade-no/{out_trade_no}/close`
/// (关闭订单): HTTP 204 with an empty body, or an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct CloseAnswer<'a> {
    out_trade_no: &'a str,
    failure: Option<Failure<'a>>,
}

impl<'a> CloseAnswer<'a> {
    /// Reads an answer **without checking its signature** (see [`Notification::open`] for
    /// who may); everyone else calls [`verify_close`]. `out_trade_no` is the order the host
    /// asked to close: the 204 names nothing.
    pub fn parse(
        status: u16,
        body: &'a [u8],
        out_trade_no: &'a str,
    ) -> Result<CloseAnswer<'a>, Error> {
        let failure = match status {
            204 if body.iter().all(u8::is_ascii_whitespace) => None,
            204 => return Err(Error::Json(JsonError { part: "answer" })),
            s if is_error_status(s) => Some(Failure::parse(s, body)?),
            s => return Err(Error::Status(s)),
        };
        Ok(CloseAnswer {
            out_trade_no,
            failure,
        })
    }

    /// The order the host asked to close.
    pub fn out_trade_no(&self) -> &'a str {
        self.out_trade_no
    }

    /// WeChat Pay's error, unless it answered 204.
    pub fn failure(&self) -> Option<Failure<'a>> {
        self.failure
    }
}

impl Verified<CloseAnswer<'_>> {
    /// `close` when WeChat Pay closed the order (204), or says it does not exist or is closed
    /// already (`ORDER_NOT_EXIST`, `ORDERNOTEXIST`, `ORDER_CLOSED`: closing is idempotent,
    /// docs/spec.md §2.6); this discharges an outstanding `close_trade`. `ORDERPAID` and other
    /// errors are [`MapError::ProviderError`] (the order was paid meanwhile: query it). The
    /// order asked about must be the payment's ([`MapError::WrongOrder`]).
    ///
    /// The event id is [`EventId::derived`] from `["wechatpay.close", out_trade_no]`.
    /// `merchant` is not read: the answer names no merchant.
    pub fn to_input(&self, _merchant: &Merchant<'_>, facts: &Facts<'_>) -> Result<Input, MapError> {
        let answer = self.message();
        if answer.out_trade_no.is_empty() {
            return Err(MapError::MissingField("out_trade_no"));
        }
        if answer.out_trade_no != facts.order_id() {
            return Err(MapError::WrongOrder);
        }
        match &answer.failure {
            None => {}
            Some(f) if f.is(&NOT_EXIST) || f.is(&["ORDER_CLOSED"]) => {}
            Some(_) => return Err(MapError::ProviderError),
        }
        let event_id = derived(&[b"wechatpay.close", answer.out_trade_no.as_bytes()])?;
        Ok(Input::close(event_id))
    }
}

/// Verifies the answer to closing `out_trade_no`: `status` is the HTTP status (204 when
/// closed), `body` the raw body (empty for 204; the signature covers
/// `"{timestamp}\n{nonce}\n\n"`).
pub fn verify_close<'a>(
    headers: &Headers<'_>,
    status: u16,
    body: &'a [u8],
    keys: &[PlatformKey],
    now: Timestamp,
    out_trade_no: &'a str,
) -> Result<Verified<CloseAnswer<'a>>, Error> {
    verify_answer(headers, body, keys, now)?;
    CloseAnswer::parse(status, body, out_trade_no).map(Verified::new)
}

/// The answer to a refund request, `POST /v3/refund/domestic/refunds` (申请退款): the refund
/// (HTTP 200), or an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RefundAnswer<'a> {
    /// HTTP 200: the refund, with its `status`.
    Refund(Refund<'a>),
    /// 4xx/5xx: WeChat Pay refused the request.
    Failed(Failure<'a>),
}

impl<'a> RefundAnswer<'a> {
    /// Reads an answer **without checking its signature** (see [`Notification::open`] for
    /// who may); everyone else calls [`verify_refund`].
    pub fn parse(status: u16, body: &'a [u8]) -> Result<RefundAnswer<'a>, Error> {
        match status {
            200 => json::parse(body, "answer")
                .map(RefundAnswer::Refund)
                .map_err(Error::Json),
            s if is_error_status(s) => Failure::parse(s, body).map(RefundAnswer::Failed),
            s => Err(Error::Status(s)),
        }
    }
}

impl Verified<RefundAnswer<'_>> {
    /// The business checks (`out_trade_no`, `amount.total`, `amount.currency`) and the
    /// mapping by `status` (see the [module](self) table). The refund id is `out_refund_no`,
    /// the number the host chose (the engine's `refund_id`, prefixed as docs/spec.md §2.6 says),
    /// so the answer and the later `REFUND.SUCCESS` notification record the refund once.
    ///
    /// The event id is [`EventId::derived`] from `["wechatpay.refund", out_refund_no,
    /// status]`. An error answer is [`MapError::ProviderError`]. `merchant` is not read: the
    /// answer names no merchant.
    pub fn to_input(&self, _merchant: &Merchant<'_>, facts: &Facts<'_>) -> Result<Input, MapError> {
        match self.message() {
            RefundAnswer::Refund(r) => r.map(r.status, "status", None, facts, |no, status| {
                derived(&[b"wechatpay.refund", no.as_bytes(), status.as_bytes()])
            }),
            RefundAnswer::Failed(_) => Err(MapError::ProviderError),
        }
    }
}

/// Verifies the answer to a refund request.
pub fn verify_refund<'a>(
    headers: &Headers<'_>,
    status: u16,
    body: &'a [u8],
    keys: &[PlatformKey],
    now: Timestamp,
) -> Result<Verified<RefundAnswer<'a>>, Error> {
    verify_answer(headers, body, keys, now)?;
    RefundAnswer::parse(status, body).map(Verified::new)
}

// ---------------------------------------------------------------------------------------------
// The reply to a notification.

/// What the host answers a notification with (WeChat Pay's "通知应答"): HTTP 200 or 204 with
/// no body when it was received, else a 4xx/5xx with `{"code":"FAIL","message":"..."}`, and
/// WeChat Pay notifies again (15 s, 15 s, 30 s, 3 min, ... for up to a day).
///
/// Reply only after the new snapshot is persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reply {
    /// 204 No Content: processed (applied, a duplicate, nothing to do).
    Success,
    /// Not processed; WeChat Pay sends it again.
    Fail {
        /// 401 when the request failed verification, 400 when its body is unreadable, 500
        /// when a genuine notification could not be processed (a rejection, a failed check).
        status: u16,
        /// The `message`: a snake_case code (`"signature_mismatch"`, `"amount_mismatch"`).
        message: &'static str,
    },
}

impl Reply {
    /// 204 for applied, duplicate and ignored; 500 with the rejection's code otherwise.
    pub const fn for_outcome(outcome: &Outcome) -> Reply {
        match outcome {
            Outcome::Rejected(r) => Reply::Fail {
                status: 500,
                message: r.code(),
            },
            _ => Reply::Success,
        }
    }

    /// For a genuine notification that did not map: 204 for
    /// [`MapError::NothingToApply`] and [`MapError::RefundFailed`] (final; a redelivery says
    /// the same), 500 with the error's code for the rest (a failed business check: alert).
    pub const fn for_map_error(error: &MapError) -> Reply {
        match error {
            MapError::NothingToApply | MapError::RefundFailed => Reply::Success,
            other => Reply::Fail {
                status: 500,
                message: other.code(),
            },
        }
    }

    /// For a notification refused by [`verify_notification`]: 401 for the signature, window
    /// and replay checks, 400 for an unreadable or undecryptable body.
    pub const fn for_error(error: &Error) -> Reply {
        let status = match error {
            Error::Signature(_) | Error::Window(_) => 401,
            Error::Decrypt(_) | Error::Json(_) | Error::Status(_) => 400,
        };
        Reply::Fail {
            status,
            message: error.code(),
        }
    }

    /// The HTTP status to send.
    pub const fn status(&self) -> u16 {
        match self {
            Reply::Success => 204,
            Reply::Fail { status, .. } => *status,
        }
    }

    /// The body to send (`Content-Type: application/json` for a failure): empty, or
    /// `{"code":"FAIL","message":"<code>"}`. Display it into the response; nothing is
    /// allocated.
    pub const fn body(&self) -> ReplyBody {
        ReplyBody(*self)
    }
}

/// The body of a [`Reply`], written by its `Display`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyBody(Reply);

impl fmt::Display for ReplyBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Reply::Success => Ok(()),
            // Every message is a snake_case code: nothing in it needs escaping.
            Reply::Fail { message, .. } => {
                write!(f, r#"{{"code":"FAIL","message":"{message}"}}"#)
            }
        }
    }
}
