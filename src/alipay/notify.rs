//! An Alipay asynchronous notification (`notify_url`) → one engine [`Input`].
//!
//! The steps, in this order, each a typed error that the host answers with `fail`:
//!
//! 1. decode the raw body once, strictly ([`Form::decode`]);
//! 2. check the RSA2 signature with the pinned Alipay public key under the endpoint's rule
//!    ([`Notification::verify`], with any RSA2 backend) — only a [`Notification`] can be turned into
//!    an input, and only a signature check makes one;
//! 3. the four business checks of docs/spec.md §4 against the host's configuration and the
//!    payment's [`Facts`]: `app_id` and `seller_id` are the merchant's, `out_trade_no` is the
//!    payment, `total_amount` is its amount ([`Notification::to_input`]);
//! 4. map `trade_status` to an input (table below) with `notify_id` as the event id, apply
//!    it, and answer with [`Reply::for_outcome`]: `success` for applied, duplicate and
//!    ignored, `fail` otherwise (Alipay then redelivers, up to 8 times over 25 hours).
//!
//! The mapping reads the message and the payment's [`Facts`] only (what never changes, and
//! the recorded refunds), never its status or balance, so a redelivered notification maps to
//! the same input and is answered `duplicate` or `ignored` (docs/spec.md §4.1).
//!
//! | notification | input | event id |
//! |---|---|---|
//! | `WAIT_BUYER_PAY` | `initiate` | `notify_id` |
//! | `TRADE_SUCCESS`, `TRADE_FINISHED` | `succeed(total_amount)` (on a paid order the engine answers `ignored`) | `notify_id` |
//! | `TRADE_CLOSED` without `refund_fee` | `close` (closed unpaid) | `notify_id` |
//! | a refund notification: `out_biz_no` with `refund_fee`, or `TRADE_CLOSED` with `refund_fee` (Alipay closes a paid trade after its full refund) | `refund(out_biz_no, amount)`; without `out_biz_no` the refund id is `notify_id` | `notify_id` |
//! | a refund notification whose `refund_fee` adds nothing to the recorded refunds | as if it had no refund fields (`close` or `succeed`: the engine answers `ignored`) | `notify_id` |
//!
//! `refund_fee` is the trade's *cumulative* refunded amount (Alipay's refund notification
//! fields `out_biz_no`, `refund_fee`, `gmt_refund`), so one refund's amount is found by
//! [`Facts::refund_amount`]: the recorded amount if the payment recorded `out_biz_no`; nothing
//! (the notification is read as its status) if `refund_fee` does not exceed the other recorded
//! refunds; else the amount the host requested under it, else `refund_fee` minus the other
//! recorded refunds.

use core::fmt;

use crate::money::{AmountError, Money};
use crate::payment::Outcome;
use crate::payment::input::{EventId, IdError, Input, RefundId};
use crate::provider::{Facts, MapError};
use crate::signature::{MAX_SIGNATURE_LEN, Rsa2Verifier, SignatureError, decode_signature_bytes};

use super::content::{SignRule, SignedContent, is_blank};
use super::form::{Form, FormError, MAX_FIELDS};

/// The host's own Alipay identities, from its configuration (never from the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MerchantConfig<'c> {
    /// The application's id (`app_id`, e.g. `2019073166072302`).
    pub app_id: &'c str,
    /// The merchant's Alipay account id (`seller_id`, the PID, `2088...`).
    pub seller_id: &'c str,
}

/// The `trade_status` values of a trade notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TradeStatus {
    /// `WAIT_BUYER_PAY`: the trade was created, the buyer has not paid.
    WaitBuyerPay,
    /// `TRADE_CLOSED`: closed unpaid (timeout, closed by the merchant), or fully refunded.
    TradeClosed,
    /// `TRADE_SUCCESS`: paid; refunds are still possible.
    TradeSuccess,
    /// `TRADE_FINISHED`: paid and final (no more refunds); sent after `TRADE_SUCCESS`.
    TradeFinished,
}

impl TradeStatus {
    /// Parses Alipay's name (`"TRADE_SUCCESS"`), exactly.
    pub fn from_name(name: &str) -> Option<TradeStatus> {
        match name {
            "WAIT_BUYER_PAY" => Some(TradeStatus::WaitBuyerPay),
            "TRADE_CLOSED" => Some(TradeStatus::TradeClosed),
            "TRADE_SUCCESS" => Some(TradeStatus::TradeSuccess),
            "TRADE_FINISHED" => Some(TradeStatus::TradeFinished),
            _ => None,
        }
    }

    /// Alipay's name.
    pub const fn name(self) -> &'static str {
        match self {
            TradeStatus::WaitBuyerPay => "WAIT_BUYER_PAY",
            TradeStatus::TradeClosed => "TRADE_CLOSED",
            TradeStatus::TradeSuccess => "TRADE_SUCCESS",
            TradeStatus::TradeFinished => "TRADE_FINISHED",
        }
    }
}

/// Why a notification did not become an input. The host answers `fail` ([`Reply::Fail`]) and
/// logs it; a business-check failure on a correctly signed notification deserves an alert
/// (the configuration or the order store is wrong, or Alipay and the host disagree).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum NotifyError {
    /// The body is not a well-formed form.
    Form(FormError),
    /// The signature is missing, malformed or wrong.
    Signature(SignatureError),
    /// A field the check or the mapping needs is absent or blank (empty or only whitespace:
    /// such a value is not signed, so it is never read).
    MissingField {
        /// Its name.
        field: &'static str,
    },
    /// A field the check or the mapping needs is not UTF-8 text (in a `charset=GBK`
    /// notification, a non-ASCII value where Alipay sends ASCII).
    NotText {
        /// Its name.
        field: &'static str,
    },
    /// `app_id` is not the host's application.
    AppIdMismatch,
    /// `seller_id` is not the host's merchant account.
    SellerIdMismatch,
    /// `out_trade_no` is not the payment the host passed.
    OrderMismatch,
    /// `total_amount` (or `refund_fee`) is not a decimal amount in the payment's currency.
    InvalidAmount {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        error: AmountError,
    },
    /// `total_amount` is not the payment's amount.
    AmountMismatch {
        /// The payment's amount, in minor units.
        expected: u64,
        /// The notification's `total_amount`, in minor units.
        got: u64,
    },
    /// A `trade_status` this crate does not know.
    UnknownTradeStatus,
    /// `notify_id` is not 1..=64 bytes.
    InvalidNotifyId(IdError),
    /// `out_biz_no` (the refund's id) is not 1..=64 bytes.
    InvalidRefundId(IdError),
    /// A refund notification whose cumulative `refund_fee` is smaller than the refund the host
    /// requested under its `out_biz_no`: the notification contradicts the request. Answered
    /// `fail`; alert. (Notifications that merely arrive out of order are acknowledged: see
    /// [`Facts::refund_amount`].)
    RefundNotCovered {
        /// `refund_fee`, in minor units.
        cumulative: u64,
        /// The other refunds the payment recorded, in minor units.
        recorded: u64,
    },
    /// Another reason the shared mapping rules of [`crate::provider`] gave.
    Map(MapError),
}

impl NotifyError {
    /// A short stable code for logs (`"amount_mismatch"`).
    pub fn code(&self) -> &'static str {
        match self {
            NotifyError::Form(e) => e.code(),
            NotifyError::Signature(e) => e.code(),
            NotifyError::MissingField { .. } => "missing_field",
            NotifyError::NotText { .. } => "field_not_text",
            NotifyError::AppIdMismatch => "app_id_mismatch",
            NotifyError::SellerIdMismatch => "seller_id_mismatch",
            NotifyError::OrderMismatch => "out_trade_no_mismatch",
            NotifyError::InvalidAmount { .. } => "invalid_amount",
            NotifyError::AmountMismatch { .. } => "amount_mismatch",
            NotifyError::UnknownTradeStatus => "unknown_trade_status",
            NotifyError::InvalidNotifyId(_) => "invalid_notify_id",
            NotifyError::InvalidRefundId(_) => "invalid_refund_id",
            NotifyError::RefundNotCovered { .. } => "refund_not_covered",
            NotifyError::Map(e) => e.code(),
        }
    }
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotifyError::Form(e) => write!(f, "malformed body: {e}"),
            NotifyError::Signature(e) => write!(f, "bad signature: {e}"),
            NotifyError::MissingField { field } => write!(f, "field {field} is missing or empty"),
            NotifyError::NotText { field } => write!(f, "field {field} is not UTF-8 text"),
            NotifyError::AppIdMismatch => f.write_str("app_id is not this application's"),
            NotifyError::SellerIdMismatch => f.write_str("seller_id is not this merchant's"),
            NotifyError::OrderMismatch => f.write_str("out_trade_no is not this payment"),
            NotifyError::InvalidAmount { field, error } => write!(f, "{field}: {error}"),
            NotifyError::AmountMismatch { expected, got } => write!(
                f,
                "total_amount is {got} minor units, the payment is {expected}"
            ),
            NotifyError::UnknownTradeStatus => f.write_str("unknown trade_status"),
            NotifyError::InvalidNotifyId(e) => write!(f, "notify_id: {e}"),
            NotifyError::InvalidRefundId(e) => write!(f, "out_biz_no: {e}"),
            NotifyError::RefundNotCovered {
                cumulative,
                recorded,
            } => write!(
                f,
                "refund_fee {cumulative} minor units does not cover the {recorded} recorded"
            ),
            NotifyError::Map(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for NotifyError {}

impl From<FormError> for NotifyError {
    fn from(e: FormError) -> Self {
        NotifyError::Form(e)
    }
}

impl From<SignatureError> for NotifyError {
    fn from(e: SignatureError) -> Self {
        NotifyError::Signature(e)
    }
}

/// What the host writes back as the whole HTTP response body to Alipay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reply {
    /// `success`: processed (applied, a duplicate, or nothing to do). Alipay stops
    /// redelivering.
    Success,
    /// `fail`: not processed. Alipay redelivers later.
    Fail,
}

impl Reply {
    /// `success` when the outcome is acknowledged (applied, duplicate, ignored), `fail` when
    /// it was rejected. Reply only after the new snapshot is persisted.
    pub const fn for_outcome(outcome: &Outcome) -> Reply {
        if outcome.should_acknowledge() {
            Reply::Success
        } else {
            Reply::Fail
        }
    }

    /// The exact body to send: `"success"` or `"fail"` (lower case, nothing else).
    pub const fn as_str(self) -> &'static str {
        match self {
            Reply::Success => "success",
            Reply::Fail => "fail",
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A notification whose signature was checked with the host's pinned key. Only
/// [`Notification::verify`] or [`Notification::verify_with`] makes one, so an unverified
/// body can never reach [`Notification::to_input`].
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Notification<'f, 'b, const N: usize = MAX_FIELDS> {
    form: &'f Form<'b, N>,
    rule: SignRule,
}

impl<'f, 'b, const N: usize> Notification<'f, 'b, N> {
    /// Checks the signature with the pinned Alipay public key, under the endpoint's rule
    /// ([`SignRule::V1`] for a trade `notify_url`). `sign_type` in the message is ignored:
    /// the algorithm is always RSA2. The key is any [`Rsa2Verifier`] backend
    /// (`Rsa2PublicKey`, `RingRsa2PublicKey`, `FixedRsa2048`, ...).
    pub fn verify<V: Rsa2Verifier>(
        form: &'f Form<'b, N>,
        rule: SignRule,
        key: &V,
    ) -> Result<Self, SignatureError> {
        let sign = form.get_bytes("sign").ok_or(SignatureError::Missing)?;
        let mut buf = [0u8; MAX_SIGNATURE_LEN];
        let signature = decode_signature_bytes(sign, &mut buf)?;
        key.verify_message(&SignedContent::new(form, rule), signature)?;
        Ok(Notification { form, rule })
    }

    /// Like [`Notification::verify`], with the host's own RSA implementation that takes a
    /// digest (a secure element, an HSM): `check` gets the SHA-256 digest of the signed
    /// content and the decoded signature, and must verify SHA256withRSA PKCS#1 v1.5 with the
    /// pinned Alipay public key.
    pub fn verify_with<F>(
        form: &'f Form<'b, N>,
        rule: SignRule,
        check: F,
    ) -> Result<Self, SignatureError>
    where
        F: FnOnce(&[u8; 32], &[u8]) -> Result<(), SignatureError>,
    {
        let sign = form.get_bytes("sign").ok_or(SignatureError::Missing)?;
        let mut buf = [0u8; MAX_SIGNATURE_LEN];
        let signature = decode_signature_bytes(sign, &mut buf)?;
        check(&SignedContent::new(form, rule).digest(), signature)?;
        Ok(Notification { form, rule })
    }

    /// The verified form.
    pub fn form(&self) -> &'f Form<'b, N> {
        self.form
    }

    /// The rule it was verified under.
    pub fn rule(&self) -> SignRule {
        self.rule
    }

    /// The decoded value of a field as text: `None` if it is absent, [blank](is_blank) (not
    /// signed, so never to be read) or not UTF-8 (a GBK value: see [`Notification::get_bytes`]).
    pub fn get(&self, key: &str) -> Option<&'b str> {
        self.get_bytes(key)
            .and_then(|v| core::str::from_utf8(v).ok())
    }

    /// The decoded bytes of a field (GBK bytes in a `charset=GBK` notification): `None` if it
    /// is absent or [blank](is_blank).
    pub fn get_bytes(&self, key: &str) -> Option<&'b [u8]> {
        self.form.get_bytes(key).filter(|v| !is_blank(v))
    }

    fn required(&self, field: &'static str) -> Result<&'b str, NotifyError> {
        let value = self
            .get_bytes(field)
            .ok_or(NotifyError::MissingField { field })?;
        core::str::from_utf8(value).map_err(|_| NotifyError::NotText { field })
    }

    /// `out_trade_no`: the merchant's order id, to look the payment up by.
    pub fn out_trade_no(&self) -> Result<&'b str, NotifyError> {
        self.required("out_trade_no")
    }

    /// `notify_id`: the notification's id, the same on every redelivery.
    pub fn notify_id(&self) -> Result<&'b str, NotifyError> {
        self.required("notify_id")
    }

    /// `trade_status`.
    pub fn trade_status(&self) -> Result<TradeStatus, NotifyError> {
        TradeStatus::from_name(self.required("trade_status")?)
            .ok_or(NotifyError::UnknownTradeStatus)
    }

    fn amount(&self, field: &'static str, currency: crate::Currency) -> Result<Money, NotifyError> {
        Money::parse(self.required(field)?, currency)
            .map_err(|error| NotifyError::InvalidAmount { field, error })
    }

    /// Runs the four business checks against the host's configuration and the payment's
    /// `facts` ([`Facts::of`] the payment stored under `out_trade_no`), then maps the
    /// notification to the input to apply (see the module docs). Amounts are read in the
    /// payment's currency.
    ///
    /// The host applies the input, persists the payment if the outcome is applied, and
    /// answers [`Reply::for_outcome`]. On an error it answers [`Reply::Fail`].
    pub fn to_input(
        &self,
        merchant: &MerchantConfig<'_>,
        facts: &Facts<'_>,
    ) -> Result<Input, NotifyError> {
        if self.required("app_id")? != merchant.app_id {
            return Err(NotifyError::AppIdMismatch);
        }
        if self.required("seller_id")? != merchant.seller_id {
            return Err(NotifyError::SellerIdMismatch);
        }
        if self.out_trade_no()? != facts.order_id() {
            return Err(NotifyError::OrderMismatch);
        }
        // `total_amount` is in CNY, or in `trans_currency` for a cross-border trade priced in
        // another currency: a payment in any other currency cannot be paid by it.
        let priced_in = match self.get("trans_currency") {
            Some(code) => crate::money::Currency::from_code(code)
                .map_err(|_| NotifyError::Map(MapError::UnknownCurrency))?,
            None => crate::money::Currency::CNY,
        };
        if priced_in != facts.currency() {
            return Err(NotifyError::Map(MapError::CurrencyMismatch {
                expected: facts.currency(),
                got: priced_in,
            }));
        }
        let total = self.amount("total_amount", facts.currency())?;
        if total != facts.amount() {
            return Err(NotifyError::AmountMismatch {
                expected: facts.amount().minor_units(),
                got: total.minor_units(),
            });
        }
        let notify_id = self.notify_id()?;
        let status = self.trade_status()?;
        let event = EventId::new(notify_id.as_bytes()).map_err(NotifyError::InvalidNotifyId)?;
        if let Some(refund) = self.refund(facts, status, notify_id)? {
            return Ok(Input::refund(event, refund.0, refund.1));
        }
        Ok(match status {
            TradeStatus::WaitBuyerPay => Input::initiate(event),
            TradeStatus::TradeSuccess | TradeStatus::TradeFinished => Input::succeed(event, total),
            TradeStatus::TradeClosed => Input::close(event),
        })
    }

    /// The refund a refund notification reports, or `None` when the notification reports no
    /// refund, or none that the payment has not recorded already (see the module docs).
    fn refund(
        &self,
        facts: &Facts<'_>,
        status: TradeStatus,
        notify_id: &str,
    ) -> Result<Option<(RefundId, Money)>, NotifyError> {
        let present = |field| self.get(field).is_some_and(|v| !v.is_empty());
        let out_biz_no = self.get("out_biz_no").filter(|v| !v.is_empty());
        let is_refund =
            present("refund_fee") && (out_biz_no.is_some() || status == TradeStatus::TradeClosed);
        if !is_refund {
            return Ok(None);
        }
        let cumulative = self.amount("refund_fee", facts.currency())?;
        // Redeliveries keep their notify_id, so it is a stable id for a refund reported
        // without its out_biz_no.
        let id = out_biz_no.unwrap_or(notify_id);
        let refund_id = RefundId::new(id.as_bytes()).map_err(NotifyError::InvalidRefundId)?;
        match facts.refund_amount(refund_id, cumulative) {
            Ok(amount) => Ok(Some((refund_id, amount))),
            // Nothing beyond the recorded refunds: the notification only restates them (a
            // TRADE_CLOSED after refunds the host recorded from its own refund answers, or a
            // refund's notification arriving after a later one's). It is read as the status it
            // carries, which the engine answers `ignored` on a payment that holds refunds.
            Err(MapError::NothingToApply) => Ok(None),
            Err(MapError::RefundNotCovered {
                cumulative,
                recorded,
            }) => Err(NotifyError::RefundNotCovered {
                cumulative,
                recorded,
            }),
            Err(other) => Err(NotifyError::Map(other)),
        }
    }
}
