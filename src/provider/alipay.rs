//! Alipay in the shape every provider has (docs/spec.md §4.1): notifications and the signed
//! answers to the requests the host makes.
//!
//! - **Notifications** (`notify_url`): [`Notification`] (verified by
//!   `Notification::verify`, feature `rsa`), mapped by [`Notification::to_input`] with the
//!   four business checks; see [`crate::alipay::notify`] for the table.
//! - **Synchronous answers** to `alipay.trade.pay`, `query`, `close`, `cancel`, `precreate`,
//!   `refund` and `alipay.trade.fastpay.refund.query`: `verify_answer` (feature `rsa`)
//!   finds the signed `<method>_response` text, checks it with the pinned key or, in
//!   certificate mode, the certificate its `alipay_cert_sn` names, and parses it into a
//!   [`Verified`]`<`[`Answer`]`>`, which `to_input` maps. `verify_encrypted_answer`
//!   (feature `alipay-aes`) does the same for encrypted answers, decrypting after the check.
//! - **The browser's return** from `alipay.trade.page.pay` / `wap.pay` (`return_url`):
//!   verified like a notification, mapped by [`return_to_input`] to `initiate` only: Alipay's
//!   docs say never to trust the return for the payment's result (the notification or a
//!   query decides it).
//!
//! | answer | condition | input | event id ([`EventId::derived`] parts) |
//! |---|---|---|---|
//! | `trade.pay` | `10000` (paid) | `succeed(total_amount)` | `alipay.trade.pay`, order, `TRADE_SUCCESS` |
//! | `trade.pay` | `10003` (the customer confirms on the phone) | `initiate` | `alipay.trade.pay`, order, `WAIT_BUYER_PAY` |
//! | `trade.query` | `WAIT_BUYER_PAY` | `initiate` | `alipay.trade.query`, order, status |
//! | `trade.query` | `TRADE_SUCCESS`, `TRADE_FINISHED` | `succeed(total_amount)` | same |
//! | `trade.query` | `TRADE_CLOSED` | `close` | same |
//! | `trade.query` | `40004 ACQ.TRADE_NOT_EXIST` | none: [`MapError::NothingToApply`] (the customer has not scanned yet) | — |
//! | `trade.close` | success, or `40004 ACQ.TRADE_NOT_EXIST` (a trade that never existed is closed) | `close` | `alipay.trade.close`, order |
//! | `trade.cancel` | success with `action` `close` (or none) | `close` | `alipay.trade.cancel`, order |
//! | `trade.cancel` | success with `action` `refund` | none: [`MapError::NothingToApply`]; the capture and its refund arrive as notifications | — |
//! | `trade.precreate` | success | `initiate` | `alipay.trade.precreate`, order |
//! | `trade.refund` | success | `refund(out_request_no, amount)`, the amount by [`Facts::refund_amount`] from the cumulative `refund_fee` | `alipay.trade.refund`, order, `out_request_no` |
//! | `trade.fastpay.refund.query` | `refund_status` `REFUND_SUCCESS` (or absent, with `refund_amount`) | `refund(out_request_no, refund_amount)` | `alipay.trade.fastpay.refund.query`, order, `out_request_no` |
//! | any | `error_response`, or another `code` | none: [`MapError::ProviderError`] | — |
//!
//! Every answer's `out_trade_no`, where it carries one, must be the payment's order id
//! ([`MapError::WrongOrder`]), and `total_amount` its amount. The same answer to the same
//! question is the same event, and a refund confirmed twice (by `trade.refund` and by
//! `fastpay.refund.query`, or by a notification) is one refund id with one amount: the second
//! is a `duplicate`.

use core::fmt;

use serde::Deserialize;
use serde_json_core::str::EscapedStr;

use super::json::{self, JsonError};
use super::{Facts, MapError, Verified};
use crate::alipay::response::{ResponseError, ResponseKind};
use crate::money::Money;
use crate::payment::input::{EventId, Input, RefundId};

pub use crate::alipay::notify::{MerchantConfig, Notification, NotifyError, Reply, TradeStatus};

/// Alipay's success `code`.
const SUCCESS: &str = "10000";
/// `alipay.trade.pay`'s "order created, the customer is paying" `code`.
const PAY_IN_PROCESS: &str = "10003";
/// Alipay's "business failed" `code`, with the reason in `sub_code`.
const BUSINESS_FAILED: &str = "40004";
/// The `sub_code` of a trade Alipay does not know.
const TRADE_NOT_EXIST: &str = "ACQ.TRADE_NOT_EXIST";

/// The request an answer answers. The host knows what it asked; the answer is read in that
/// light (Alipay's `trade.refund` answer, for one, does not repeat the `out_request_no`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Request<'q> {
    /// `alipay.trade.pay` (face-to-face: the cashier scanned the customer's barcode). Its
    /// answer has no `trade_status`: `10000` means paid, `10003` that the customer is still
    /// confirming on the phone (poll with `alipay.trade.query`); any other code (`20000`
    /// unknown, `40004` failed) maps to nothing, and the host queries or cancels the trade.
    Pay,
    /// `alipay.trade.query`.
    Query,
    /// `alipay.trade.close`.
    Close,
    /// `alipay.trade.cancel`.
    Cancel,
    /// `alipay.trade.precreate`.
    Precreate,
    /// `alipay.trade.refund` with this `out_request_no` (the refund's id: an obligation's
    /// [`RefundRequestId`](crate::RefundRequestId), or the merchant's own).
    Refund {
        /// The request number sent.
        out_request_no: &'q str,
    },
    /// `alipay.trade.fastpay.refund.query` for this `out_request_no`.
    RefundQuery {
        /// The request number asked about.
        out_request_no: &'q str,
    },
}

impl Request<'_> {
    /// The method name (`"alipay.trade.query"`).
    pub const fn method(&self) -> &'static str {
        match self {
            Request::Pay => "alipay.trade.pay",
            Request::Query => "alipay.trade.query",
            Request::Close => "alipay.trade.close",
            Request::Cancel => "alipay.trade.cancel",
            Request::Precreate => "alipay.trade.precreate",
            Request::Refund { .. } => "alipay.trade.refund",
            Request::RefundQuery { .. } => "alipay.trade.fastpay.refund.query",
        }
    }
}

/// The fields of an answer the mapping reads; every other field is skipped.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
struct Fields<'a> {
    #[serde(borrow)]
    code: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    sub_code: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    out_trade_no: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    trade_status: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    total_amount: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    refund_fee: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    action: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    out_request_no: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    refund_amount: Option<EscapedStr<'a>>,
    #[serde(borrow)]
    refund_status: Option<EscapedStr<'a>>,
}

/// A synchronous answer of the Alipay gateway, its signed content parsed. Map it with
/// [`Verified::<Answer>::to_input`]; only [`verify_answer`] / [`verify_answer_content`] (or
/// the loudly named [`Verified::trust_unverified`]) make the `Verified` that allows it.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a, 'q> {
    request: Request<'q>,
    kind: ResponseKind,
    fields: Fields<'a>,
}

/// Why an answer could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AnswerError {
    /// The raw response failed the scan or the signature check.
    Response(ResponseError),
    /// The answer is encrypted: decrypt it with the merchant's AES key
    /// (`SignedResponse::decrypt`, feature `alipay-aes`) and use [`verify_answer_content`].
    Encrypted,
    /// The signed content is not the JSON object an answer is.
    Json(JsonError),
}

impl AnswerError {
    /// A short stable code for logs (`"encrypted"`, or the inner error's code).
    pub const fn code(&self) -> &'static str {
        match self {
            AnswerError::Response(e) => e.code(),
            AnswerError::Encrypted => "encrypted",
            AnswerError::Json(_) => "malformed_json",
        }
    }
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerError::Response(e) => write!(f, "{e}"),
            AnswerError::Encrypted => {
                f.write_str("the answer is encrypted: decrypt it with the AES key first")
            }
            AnswerError::Json(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for AnswerError {}

impl From<ResponseError> for AnswerError {
    fn from(e: ResponseError) -> Self {
        AnswerError::Response(e)
    }
}

impl From<JsonError> for AnswerError {
    fn from(e: JsonError) -> Self {
        AnswerError::Json(e)
    }
}

impl<'a, 'q> Answer<'a, 'q> {
    /// Parses the plain JSON object `content` of an answer to `request`, **without checking
    /// any signature**: the content of a response the host already verified (an encrypted
    /// answer it decrypted, a certificate-mode answer), to be wrapped by
    /// [`verify_answer_content`], or by [`Verified::trust_unverified`].
    ///
    /// `kind` is [`ResponseKind::Error`] for an `error_response`, which maps to nothing.
    pub fn parse(
        content: &'a str,
        kind: ResponseKind,
        request: Request<'q>,
    ) -> Result<Answer<'a, 'q>, JsonError> {
        let fields = json::parse::<Fields<'a>>(content.as_bytes(), "answer")?;
        Ok(Answer {
            request,
            kind,
            fields,
        })
    }

    /// The request this answers.
    pub fn request(&self) -> Request<'q> {
        self.request
    }

    /// Alipay's `code` (`"10000"` is success), if the answer has one as plain text.
    pub fn code(&self) -> Option<&'a str> {
        json::plain(self.fields.code, "code").ok()
    }

    /// Alipay's `sub_code` (`"ACQ.TRADE_NOT_EXIST"`), if any.
    pub fn sub_code(&self) -> Option<&'a str> {
        json::plain(self.fields.sub_code, "sub_code").ok()
    }
}

/// The Alipay keys the host pinned in its configuration: Alipay's public key (key mode), or
/// Alipay's certificates (public-key certificate mode, feature `x509`), among which the one
/// named by a response's `alipay_cert_sn` verifies it.
#[cfg(feature = "rsa")]
#[derive(Debug, Clone, Copy)]
pub enum AlipayKeys<'k> {
    /// Key mode: the Alipay public key from the open platform console.
    PublicKey(&'k crate::signature::Rsa2PublicKey),
    /// Certificate mode: the Alipay certificates the host holds (checked against the root
    /// when they were loaded). A response naming another SN is
    /// [`ResponseError::UnknownCertSn`]: fetch that certificate
    /// (`alipay.open.app.alipaycert.download`), check it, and add it.
    #[cfg(feature = "x509")]
    Certificates(&'k [crate::alipay::cert::AlipayCertificate]),
}

#[cfg(feature = "rsa")]
impl<'k> From<&'k crate::signature::Rsa2PublicKey> for AlipayKeys<'k> {
    fn from(key: &'k crate::signature::Rsa2PublicKey) -> Self {
        AlipayKeys::PublicKey(key)
    }
}

#[cfg(feature = "x509")]
impl<'k> From<&'k [crate::alipay::cert::AlipayCertificate]> for AlipayKeys<'k> {
    fn from(certificates: &'k [crate::alipay::cert::AlipayCertificate]) -> Self {
        AlipayKeys::Certificates(certificates)
    }
}

/// Finds the signed `<method>_response` text in `raw` and checks it with the pinned keys.
#[cfg(feature = "rsa")]
fn verified_response<'a>(
    raw: &'a str,
    request: &Request<'_>,
    keys: AlipayKeys<'_>,
) -> Result<crate::alipay::response::SignedResponse<'a>, ResponseError> {
    match keys {
        AlipayKeys::PublicKey(key) => {
            crate::alipay::response::verify_response(raw, request.method(), key)
        }
        #[cfg(feature = "x509")]
        AlipayKeys::Certificates(certificates) => {
            crate::alipay::response::verify_response_with_certificates(
                raw,
                request.method(),
                certificates,
            )
        }
    }
}

/// [`verify_answer`] in key mode with any RSA2 backend behind the
/// [`Rsa2Verifier`](crate::signature::Rsa2Verifier) seam: the heap-free `FixedRsa2048` on
/// firmware (feature `rsa-fixed`), `RingRsa2PublicKey` on a server (feature `ring`), or the
/// default `Rsa2PublicKey`. Needs no heap itself.
///
/// Errors: as [`verify_answer`].
pub fn verify_answer_with_key<'a, 'q, V: crate::signature::Rsa2Verifier>(
    raw: &'a str,
    request: Request<'q>,
    key: &V,
) -> Result<Verified<Answer<'a, 'q>>, AnswerError> {
    let signed = crate::alipay::response::verify_response(raw, request.method(), key)?;
    if signed.is_encrypted() {
        return Err(AnswerError::Encrypted);
    }
    Ok(Verified::new(Answer::parse(
        signed.content,
        signed.kind,
        request,
    )?))
}

/// Finds, verifies (with the pinned keys: a public key, or certificates in certificate mode)
/// and parses the answer to `request` in the raw response text `raw`, byte for byte as
/// received.
///
/// Errors: [`AnswerError::Response`] for a malformed or badly signed response, or one signed
/// under a certificate the host does not hold (do not act on it), [`AnswerError::Encrypted`]
/// when content encryption is on (use [`verify_encrypted_answer`]), [`AnswerError::Json`]
/// when the signed content is not an answer's JSON.
#[cfg(feature = "rsa")]
pub fn verify_answer<'a, 'q, 'k>(
    raw: &'a str,
    request: Request<'q>,
    keys: impl Into<AlipayKeys<'k>>,
) -> Result<Verified<Answer<'a, 'q>>, AnswerError> {
    let signed = verified_response(raw, &request, keys.into())?;
    if signed.is_encrypted() {
        return Err(AnswerError::Encrypted);
    }
    Ok(Verified::new(Answer::parse(
        signed.content,
        signed.kind,
        request,
    )?))
}

/// Like [`verify_answer`], for an answer encrypted with the merchant's content key (docs/spec.md
/// §4.2): the signature is checked over the ciphertext token as received, then the content is
/// decrypted into `buf` (at least as long as the token) and parsed. An answer that is not
/// encrypted is parsed as it is (Alipay leaves error answers in the clear).
///
/// Errors: as [`verify_answer`], and [`ResponseError::Decryption`] /
/// [`ResponseError::DecryptedNotObject`] (inside [`AnswerError::Response`]) for a wrong key
/// or a corrupted ciphertext.
#[cfg(all(feature = "rsa", feature = "alipay-aes"))]
pub fn verify_encrypted_answer<'a, 'q, 'k>(
    raw: &'a str,
    request: Request<'q>,
    keys: impl Into<AlipayKeys<'k>>,
    aes: &crate::alipay::encryption::AesKey,
    buf: &'a mut [u8],
) -> Result<Verified<Answer<'a, 'q>>, AnswerError> {
    let signed = verified_response(raw, &request, keys.into())?;
    let kind = signed.kind;
    if !signed.is_encrypted() {
        return Ok(Verified::new(Answer::parse(signed.content, kind, request)?));
    }
    let plain = signed.decrypt(aes, buf)?;
    Ok(Verified::new(Answer::parse(plain, kind, request)?))
}

/// Parses the plain `content` of a response the host has verified by another path of
/// [`crate::alipay::response`] — certificate mode (`verify_response_with_certificates`), an
/// encrypted answer verified and then decrypted, or an HSM — passing the verified
/// [`SignedResponse`](crate::alipay::response::SignedResponse)'s `kind`.
///
/// It checks nothing itself: the name says what the caller vouches for.
pub fn verify_answer_content<'a, 'q>(
    verified_content: &'a str,
    kind: ResponseKind,
    request: Request<'q>,
) -> Result<Verified<Answer<'a, 'q>>, AnswerError> {
    Ok(Verified::trust_unverified(Answer::parse(
        verified_content,
        kind,
        request,
    )?))
}

impl Verified<Answer<'_, '_>> {
    /// Maps the answer to the input to apply (see the module's table), with the checks the
    /// answer allows: its `out_trade_no` is the payment's, its `total_amount` the payment's
    /// amount. Answers carry no `app_id` or `seller_id`: the merchant is the one whose key
    /// signed the request.
    ///
    /// Errors: [`MapError::ProviderError`] for an error answer (retry or alert),
    /// [`MapError::NothingToApply`] for a genuine answer with nothing to apply yet, the
    /// business-check errors, and [`MapError::MissingField`] / [`MapError::BadField`].
    pub fn to_input(&self, facts: &Facts<'_>) -> Result<Input, MapError> {
        let answer = self.message();
        let f = &answer.fields;
        if answer.kind == ResponseKind::Error {
            return Err(MapError::ProviderError);
        }
        let code = json::plain(f.code, "code")?;
        let order = facts.order_id().as_bytes();
        let method = answer.request.method().as_bytes();
        let not_exist = code == BUSINESS_FAILED
            && json::plain(f.sub_code, "sub_code").is_ok_and(|s| s == TRADE_NOT_EXIST);
        if let Request::Pay = answer.request {
            return pay_to_input(code, f, facts, method);
        }
        if code != SUCCESS && !not_exist {
            return Err(MapError::ProviderError);
        }
        if !not_exist {
            check_order(f.out_trade_no, facts)?;
        }
        match answer.request {
            Request::Close => Ok(Input::close(EventId::derived(&[method, order])?)),
            Request::Cancel if not_exist => Ok(Input::close(EventId::derived(&[method, order])?)),
            Request::Cancel => match f.action.map(|_| json::plain(f.action, "action")) {
                None => Ok(Input::close(EventId::derived(&[method, order])?)),
                Some(Ok("close")) => Ok(Input::close(EventId::derived(&[method, order])?)),
                Some(Ok("refund")) => Err(MapError::NothingToApply),
                Some(_) => Err(MapError::UnknownStatus),
            },
            _ if not_exist => Err(MapError::NothingToApply),
            // Mapped above: its codes are not the other answers'.
            Request::Pay => Err(MapError::ProviderError),
            Request::Precreate => Ok(Input::initiate(EventId::derived(&[method, order])?)),
            Request::Query => {
                let status = json::plain(f.trade_status, "trade_status")?;
                let trade_status = TradeStatus::from_name(status).ok_or(MapError::UnknownStatus)?;
                let event = EventId::derived(&[method, order, status.as_bytes()])?;
                Ok(match trade_status {
                    TradeStatus::WaitBuyerPay => Input::initiate(event),
                    TradeStatus::TradeSuccess | TradeStatus::TradeFinished => {
                        let total = amount(f.total_amount, "total_amount", facts)?;
                        if total != facts.amount() {
                            return Err(MapError::AmountMismatch {
                                expected: facts.amount().minor_units(),
                                got: total.minor_units(),
                            });
                        }
                        Input::succeed(event, total)
                    }
                    TradeStatus::TradeClosed => Input::close(event),
                })
            }
            Request::Refund { out_request_no } => {
                let refund_id = RefundId::new(out_request_no.as_bytes())?;
                let cumulative = amount(f.refund_fee, "refund_fee", facts)?;
                let refunded = facts.refund_amount(refund_id, cumulative)?;
                let event = EventId::derived(&[method, order, out_request_no.as_bytes()])?;
                Ok(Input::refund(event, refund_id, refunded))
            }
            Request::RefundQuery { out_request_no } => {
                // An empty answer (no refund_amount) means Alipay has no such refund (yet).
                if f.refund_amount.is_none() {
                    return Err(MapError::NothingToApply);
                }
                match f
                    .refund_status
                    .map(|_| json::plain(f.refund_status, "refund_status"))
                {
                    None | Some(Ok("REFUND_SUCCESS")) => {}
                    Some(Ok(_)) => return Err(MapError::NothingToApply),
                    Some(Err(e)) => return Err(e),
                }
                if f.out_request_no.is_some() {
                    json::expect(
                        f.out_request_no,
                        "out_request_no",
                        out_request_no,
                        MapError::BadField("out_request_no"),
                    )?;
                }
                let refund_id = RefundId::new(out_request_no.as_bytes())?;
                let refunded = amount(f.refund_amount, "refund_amount", facts)?;
                let event = EventId::derived(&[method, order, out_request_no.as_bytes()])?;
                Ok(Input::refund(event, refund_id, refunded))
            }
        }
    }
}

/// `alipay.trade.pay`'s answer: `10000` is the capture of the whole amount, `10003` a trade
/// created that the customer is still confirming; every other code is an error answer. The
/// event id names the status the code stands for, like a query's.
fn pay_to_input(
    code: &str,
    f: &Fields<'_>,
    facts: &Facts<'_>,
    method: &[u8],
) -> Result<Input, MapError> {
    let status = match code {
        SUCCESS => TradeStatus::TradeSuccess,
        PAY_IN_PROCESS => TradeStatus::WaitBuyerPay,
        _ => return Err(MapError::ProviderError),
    };
    check_order(f.out_trade_no, facts)?;
    let order = facts.order_id().as_bytes();
    let event = EventId::derived(&[method, order, status.name().as_bytes()])?;
    match status {
        TradeStatus::TradeSuccess => {
            let total = amount(f.total_amount, "total_amount", facts)?;
            if total != facts.amount() {
                return Err(MapError::AmountMismatch {
                    expected: facts.amount().minor_units(),
                    got: total.minor_units(),
                });
            }
            Ok(Input::succeed(event, total))
        }
        _ => Ok(Input::initiate(event)),
    }
}

/// The answer's `out_trade_no`, where it carries one, must be the payment's.
fn check_order(value: Option<EscapedStr<'_>>, facts: &Facts<'_>) -> Result<(), MapError> {
    match value {
        None => Ok(()),
        Some(v) if json::same(v, facts.order_id()) => Ok(()),
        Some(_) => Err(MapError::WrongOrder),
    }
}

/// An amount field, a decimal in the payment's currency (`"99.90"`).
fn amount(
    value: Option<EscapedStr<'_>>,
    field: &'static str,
    facts: &Facts<'_>,
) -> Result<Money, MapError> {
    let text = json::plain(value, field)?;
    Money::parse(text, facts.currency()).map_err(|_| MapError::BadField(field))
}

/// Maps the verified query string of the browser's return from `alipay.trade.page.pay` or
/// `wap.pay` (verified as a notification under rule V1: `sign` and `sign_type` are left out)
/// to `initiate`, after the business checks (`app_id`, `seller_id`, `out_trade_no`,
/// `total_amount`). The event id is derived from the method and Alipay's `trade_no`.
///
/// Alipay's docs say the return is for the customer's eyes only: it never changes a payment
/// beyond `processing` (the notification or a query decides success), so the host shows the
/// order's current status.
pub fn return_to_input(
    note: &Notification<'_, '_>,
    merchant: &MerchantConfig<'_>,
    facts: &Facts<'_>,
) -> Result<Input, NotifyError> {
    let field = |name: &'static str| {
        note.get(name)
            .filter(|v| !v.is_empty())
            .ok_or(NotifyError::MissingField { field: name })
    };
    if field("app_id")? != merchant.app_id {
        return Err(NotifyError::AppIdMismatch);
    }
    if field("seller_id")? != merchant.seller_id {
        return Err(NotifyError::SellerIdMismatch);
    }
    if field("out_trade_no")? != facts.order_id() {
        return Err(NotifyError::OrderMismatch);
    }
    let total = Money::parse(field("total_amount")?, facts.currency()).map_err(|error| {
        NotifyError::InvalidAmount {
            field: "total_amount",
            error,
        }
    })?;
    if total != facts.amount() {
        return Err(NotifyError::AmountMismatch {
            expected: facts.amount().minor_units(),
            got: total.minor_units(),
        });
    }
    let trade_no = field("trade_no")?;
    let event = EventId::derived(&[b"alipay.trade.page.pay.return", trade_no.as_bytes()])
        .map_err(NotifyError::InvalidNotifyId)?;
    Ok(Input::initiate(event))
}
