//! `trade_state`: what a decrypted payment notification (or an order query) says, as an input.

use core::fmt;

use crate::money::Money;
use crate::payment::input::{EventId, Input};

/// The `trade_state` of a WeChat Pay v3 transaction (the decrypted `resource` of a
/// `TRANSACTION.SUCCESS` notification, or an order query's answer).
///
/// | `trade_state` | input |
/// |---|---|
/// | `SUCCESS` | [`Input::succeed`] with `amount.total` in `amount.currency` |
/// | `NOTPAY`, `USERPAYING`, `ACCEPT` | [`Input::initiate`] |
/// | `CLOSED`, `REVOKED` | [`Input::close`] |
/// | `PAYERROR` | [`Input::fail`] with reason `PAYERROR` |
/// | `REFUND` | none: refunds are their own events (`REFUND.SUCCESS` notifications with `out_refund_no` and `amount.refund`), each an [`Input::refund`] |
///
/// Before making the input the host checks, as for Alipay, that `out_trade_no` is this
/// payment, `mchid` and `appid` are its own, and `amount.total`/`amount.currency` are the
/// payment's amount (the engine rejects a different amount or currency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TradeState {
    /// `SUCCESS`: paid.
    Success,
    /// `REFUND`: a refund happened after payment (look at the refund notifications).
    Refund,
    /// `NOTPAY`: the order exists and is not paid yet.
    NotPay,
    /// `CLOSED`: closed before payment.
    Closed,
    /// `REVOKED`: revoked (payment-code / micropay orders).
    Revoked,
    /// `USERPAYING`: the customer is paying (entering a password, payment-code orders).
    UserPaying,
    /// `PAYERROR`: the payment failed (for example the bank refused it).
    PayError,
    /// `ACCEPT`: accepted, awaiting settlement of the payment.
    Accept,
}

/// A `trade_state` this crate does not know. The host must not acknowledge the notification as
/// processed: WeChat Pay retries it, and a person looks at the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnknownTradeState;

impl fmt::Display for UnknownTradeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown trade_state")
    }
}

impl core::error::Error for UnknownTradeState {}

impl TradeState {
    const ALL: [TradeState; 8] = [
        TradeState::Success,
        TradeState::Refund,
        TradeState::NotPay,
        TradeState::Closed,
        TradeState::Revoked,
        TradeState::UserPaying,
        TradeState::PayError,
        TradeState::Accept,
    ];

    /// Parses the exact (upper-case) code WeChat Pay sends.
    pub fn parse(code: &str) -> Result<TradeState, UnknownTradeState> {
        Self::ALL
            .into_iter()
            .find(|s| s.code() == code)
            .ok_or(UnknownTradeState)
    }

    /// The code as WeChat Pay writes it (`"SUCCESS"`).
    pub const fn code(self) -> &'static str {
        match self {
            TradeState::Success => "SUCCESS",
            TradeState::Refund => "REFUND",
            TradeState::NotPay => "NOTPAY",
            TradeState::Closed => "CLOSED",
            TradeState::Revoked => "REVOKED",
            TradeState::UserPaying => "USERPAYING",
            TradeState::PayError => "PAYERROR",
            TradeState::Accept => "ACCEPT",
        }
    }

    /// The engine input for this state, or `None` for `REFUND` (refunds are their own events).
    ///
    /// `event_id` is built from the notification's `id` (or, for an order query, an id the host
    /// makes for that query), so a redelivered notification is a duplicate. `total` is
    /// `amount.total` (in fen for CNY) in `amount.currency`, used only by `SUCCESS`.
    pub fn input(self, event_id: EventId, total: Money) -> Option<Input> {
        match self {
            TradeState::Success => Some(Input::succeed(event_id, total)),
            TradeState::NotPay | TradeState::UserPaying | TradeState::Accept => {
                Some(Input::initiate(event_id))
            }
            TradeState::Closed | TradeState::Revoked => Some(Input::close(event_id)),
            TradeState::PayError => Some(Input::fail_with_code(event_id, self.code())),
            TradeState::Refund => None,
        }
    }
}
