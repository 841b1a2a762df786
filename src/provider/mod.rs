//! Every provider has the same shape (docs/spec.md §4.1).
//!
//! For each provider and each message kind it sends — asynchronous notifications and the
//! synchronous answers to the requests the host makes:
//!
//! 1. `verify(raw bytes, pinned keys, now, …)` gives a [`Verified`] message. A message can only
//!    be had by verifying it, or through the loudly named [`Verified::trust_unverified`] for a
//!    host that checked the signature elsewhere (an HSM).
//! 2. `message.to_input(&merchant, &facts)` runs the provider's business checks (merchant ids,
//!    the order id, the amount and currency) and maps the provider's status to an engine
//!    [`Input`](crate::Input), or says why not ([`MapError`]). It reads only [`Facts`]: what
//!    never changes after creation, plus the recorded refunds — never the payment's mutable
//!    status or balance. So **a redelivered message maps to the same input**, and its second
//!    outcome is `duplicate` or `ignored`, never a rejection and never a second effect.
//! 3. The event id is the provider's own id where it has one (Alipay `notify_id`, WeChat
//!    Pay's notification `id`, Stripe's `evt_…`), and for synchronous answers an id derived
//!    from the question and the answer ([`EventId::derived`](crate::EventId::derived)), so
//!    the same answer to the same question is the same event.
//! 4. The reply the host sends is a function of the outcome.
//!
//! Providers: [`alipay`], `wechatpay` (feature `wechatpay`) and [`stripe`]. Their JSON is read without a
//! heap (see [`JsonError`] for what a body that is not the expected JSON means).

use core::fmt;

pub mod alipay;
mod json;
pub mod stripe;
#[cfg(feature = "wechatpay")]
pub mod wechatpay;

pub use json::JsonError;

use crate::money::{Currency, Money};
use crate::payment::input::{IdError, RefundId};
use crate::payment::{LateSuccess, Payment};

/// A message whose signature was checked against the host's pinned keys.
///
/// The only ways to get one are a provider's `verify` functions and
/// [`Verified::trust_unverified`]. Read the message through [`Verified::message`] or `Deref`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified<M>(M);

impl<M> Verified<M> {
    /// Made by a provider's `verify` once the signature holds.
    #[allow(dead_code)] // each provider module's `verify` calls it
    pub(crate) fn new(message: M) -> Verified<M> {
        Verified(message)
    }

    /// Wraps a message **without checking anything**. Only for a host that verified the
    /// signature itself over the same bytes (an HSM, a gateway in front of it); a message
    /// trusted this way is believed entirely, so never call this on bytes from the network
    /// that nothing has checked.
    pub fn trust_unverified(message: M) -> Verified<M> {
        Verified(message)
    }

    /// The verified message.
    pub fn message(&self) -> &M {
        &self.0
    }

    /// The verified message, by value.
    pub fn into_message(self) -> M {
        self.0
    }
}

impl<M> core::ops::Deref for Verified<M> {
    type Target = M;
    fn deref(&self) -> &M {
        &self.0
    }
}

/// What a mapper may read of a payment: what never changes after it was created (the order
/// id, the amount and currency, the late-success policy), the refunds it has recorded, and the
/// refunds the host has requested and is waiting for.
///
/// Never its status or balance: a mapping that read them would map a redelivered message
/// differently once something else was applied in between (docs/spec.md §4.1, 2).
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    order_id: &'a str,
    amount: Money,
    policy: LateSuccess,
    recorded: &'a [([u8; 8], u64)],
    requested: &'a [(RefundId, Money)],
}

impl<'a> Facts<'a> {
    /// The facts of `payment`, known to the host as `order_id` (Alipay `out_trade_no`, WeChat
    /// Pay `out_trade_no`, the order id a Stripe payment intent carries in its metadata).
    pub fn of<const E: usize, const R: usize>(
        order_id: &'a str,
        payment: &'a Payment<E, R>,
    ) -> Facts<'a> {
        Facts {
            order_id,
            amount: payment.amount(),
            policy: payment.late_success(),
            recorded: payment.recorded_refunds(),
            requested: &[],
        }
    }

    /// Adds the refunds the host asked the provider for and has not seen confirmed: its own
    /// refund id (Alipay `out_request_no`) and the amount it asked for. A provider that
    /// reports a refund only as a cumulative total (Alipay `refund_fee`, Stripe
    /// `amount_refunded`) is mapped to the requested amount when it names one of these.
    pub fn with_requested_refunds(mut self, requested: &'a [(RefundId, Money)]) -> Facts<'a> {
        self.requested = requested;
        self
    }

    /// The order id.
    pub fn order_id(&self) -> &'a str {
        self.order_id
    }

    /// The payment's amount.
    pub fn amount(&self) -> Money {
        self.amount
    }

    /// The payment's currency.
    pub fn currency(&self) -> Currency {
        self.amount.currency()
    }

    /// The late-success policy.
    pub fn late_success(&self) -> LateSuccess {
        self.policy
    }

    /// The amount recorded for refund `id`, if the payment recorded it.
    pub fn recorded_refund(&self, id: RefundId) -> Option<Money> {
        self.recorded
            .iter()
            .find(|(fp, _)| *fp == id.fingerprint())
            .map(|(_, amount)| Money::from_minor(*amount, self.currency()))
    }

    /// The amount the host asked for under refund `id`, if it did.
    pub fn requested_refund(&self, id: RefundId) -> Option<Money> {
        self.requested
            .iter()
            .find(|(rid, _)| *rid == id)
            .map(|(_, amount)| *amount)
    }

    /// The sum of the recorded refunds other than `except`, in minor units.
    fn recorded_total_except(&self, except: RefundId) -> u64 {
        self.recorded
            .iter()
            .filter(|(fp, _)| *fp != except.fingerprint())
            .fold(0u64, |sum, (_, amount)| sum.saturating_add(*amount))
    }

    /// The amount of refund `id`, reported by a provider only as the cumulative refunded
    /// total `cumulative` (Alipay `refund_fee`, Stripe `amount_refunded`):
    ///
    /// 1. if the payment recorded `id`, the recorded amount (so a redelivery maps to the same
    ///    refund, and is a `duplicate`);
    /// 2. else, if `cumulative` does not exceed the other recorded refunds, the report adds
    ///    nothing to what is recorded: [`MapError::NothingToApply`], which the host
    ///    acknowledges. This is the case of two refunds' reports arriving out of order (the
    ///    later total was recorded first, so the earlier one is already accounted for) and of
    ///    one refund confirmed twice under two ids (a `TRADE_CLOSED` recorded under its
    ///    `notify_id`, then the host's own `trade.refund` answer);
    /// 3. else, if the host requested `id`, the requested amount, provided `cumulative` covers
    ///    it (the report that names a refund includes it);
    /// 4. else `cumulative` minus the other recorded refunds.
    ///
    /// Errors: [`MapError::NothingToApply`] as in 2; [`MapError::RefundNotCovered`] when a
    /// requested refund is larger than the total that reports it (the report contradicts the
    /// request: alert); [`MapError::CurrencyMismatch`] for a total in another currency.
    ///
    /// In money the ledger always follows the provider: the recorded refunds add up to the
    /// largest cumulative total reported. Without the host's requested refunds, a refund whose
    /// report arrives after a later one is recorded inside that later one's amount.
    pub fn refund_amount(&self, id: RefundId, cumulative: Money) -> Result<Money, MapError> {
        if cumulative.currency() != self.currency() {
            return Err(MapError::CurrencyMismatch {
                expected: self.currency(),
                got: cumulative.currency(),
            });
        }
        if let Some(recorded) = self.recorded_refund(id) {
            return Ok(recorded);
        }
        let others = self.recorded_total_except(id);
        if cumulative.minor_units() <= others {
            return Err(MapError::NothingToApply);
        }
        if let Some(requested) = self.requested_refund(id) {
            return if requested.minor_units() <= cumulative.minor_units() {
                Ok(requested)
            } else {
                Err(MapError::RefundNotCovered {
                    cumulative: cumulative.minor_units(),
                    recorded: others,
                })
            };
        }
        // Cannot underflow: cumulative > others (checked above).
        Ok(Money::from_minor(
            cumulative.minor_units().saturating_sub(others),
            self.currency(),
        ))
    }
}

/// Why a verified message could not be mapped to an input. The payment is unchanged; the
/// host answers the provider as for a rejection (Alipay `fail`), so it is sent again —
/// except for a genuine message that is final and has nothing to apply
/// ([`NothingToApply`](MapError::NothingToApply), [`RefundFailed`](MapError::RefundFailed)),
/// which the WeChat Pay and Stripe replies acknowledge (`wechatpay::Reply::for_map_error`,
/// [`stripe::Reply::for_map_error`]): a redelivery would say the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum MapError {
    /// A required field is missing or empty.
    MissingField(&'static str),
    /// A field is present but malformed (an amount that is not a decimal, a bad id).
    BadField(&'static str),
    /// A merchant id (`app_id`, `seller_id`, `mchid`, `appid`) is not the host's.
    WrongMerchant(&'static str),
    /// The message is about another order.
    WrongOrder,
    /// The message's amount is not the payment's, in minor units.
    AmountMismatch {
        /// The payment's amount.
        expected: u64,
        /// The amount in the message.
        got: u64,
    },
    /// The message's currency is not the payment's.
    CurrencyMismatch {
        /// The payment's currency.
        expected: Currency,
        /// The currency in the message.
        got: Currency,
    },
    /// The message names a currency code that is not in ISO 4217 (never reported as a
    /// mismatch: the host must see that the code itself is unknown).
    UnknownCurrency,
    /// The provider's status is not one this mapping knows.
    UnknownStatus,
    /// A cumulative refunded total is smaller than the refund the host requested under the id
    /// it reports: the report contradicts the request.
    RefundNotCovered {
        /// The provider's cumulative total, in minor units.
        cumulative: u64,
        /// The other refunds the payment recorded, in minor units.
        recorded: u64,
    },
    /// The message is genuine but says nothing to apply yet (a refund still processing, a
    /// query answered "trade does not exist" before the customer scanned the code).
    NothingToApply,
    /// The provider answered the request with an error (`code` is not success).
    ProviderError,
    /// The provider reports that a refund was not made and will not be by itself (WeChat
    /// Pay's refund status `CLOSED` or `ABNORMAL`, a Stripe refund `failed` or `canceled`).
    /// Nothing is recorded and the refund obligation stays outstanding: a person looks
    /// (WeChat Pay's `ABNORMAL` needs the merchant to act in its merchant platform) before the
    /// refund is asked for again. The message is final, so it is acknowledged: a redelivery
    /// would say the same.
    RefundFailed,
}

impl MapError {
    /// A short snake-case code for logs and replies (`"wrong_merchant"`).
    pub const fn code(&self) -> &'static str {
        match self {
            MapError::MissingField(_) => "missing_field",
            MapError::BadField(_) => "bad_field",
            MapError::WrongMerchant(_) => "wrong_merchant",
            MapError::WrongOrder => "wrong_order",
            MapError::AmountMismatch { .. } => "amount_mismatch",
            MapError::CurrencyMismatch { .. } => "currency_mismatch",
            MapError::UnknownCurrency => "unknown_currency",
            MapError::UnknownStatus => "unknown_status",
            MapError::RefundNotCovered { .. } => "refund_not_covered",
            MapError::NothingToApply => "nothing_to_apply",
            MapError::ProviderError => "provider_error",
            MapError::RefundFailed => "refund_failed",
        }
    }
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapError::MissingField(name) => write!(f, "missing_field: {name}"),
            MapError::BadField(name) => write!(f, "bad_field: {name}"),
            MapError::WrongMerchant(name) => write!(f, "wrong_merchant: {name} is not ours"),
            MapError::AmountMismatch { expected, got } => {
                write!(
                    f,
                    "amount_mismatch: expected {expected}, got {got} minor units"
                )
            }
            MapError::CurrencyMismatch { expected, got } => {
                write!(f, "currency_mismatch: expected {expected}, got {got}")
            }
            MapError::RefundNotCovered {
                cumulative,
                recorded,
            } => write!(
                f,
                "refund_not_covered: cumulative {cumulative} does not cover {recorded} recorded"
            ),
            other => f.write_str(other.code()),
        }
    }
}

impl core::error::Error for MapError {}

impl From<IdError> for MapError {
    fn from(_: IdError) -> MapError {
        MapError::BadField("id")
    }
}
