//! # paystate
//!
//! The life of one payment — `pending`, `processing`, `succeeded`, `failed`, `cancelled`,
//! `refunded` — as a deterministic, I/O-free state machine that a host embeds.
//!
//! **What it is not.** It contains no networking code, reads no clock and does no I/O: the host
//! passes every input and the current time (`now`) in, and gets back an [`Outcome`] with a
//! short list of [`Effect`]s to carry out. The core never allocates and never panics on any
//! input; it runs the same in a web service's callback handler, on a POS terminal's
//! microcontroller, and under a fuzzer.
//!
//! ```
//! use paystate::{Currency, Effect, Effects, EventId, Input, Money, Outcome, Payment, Status, Timestamp};
//!
//! let t = Timestamp::from_secs;
//! let price = Money::parse("99.99", Currency::CNY)?;
//! let mut order: Payment = Payment::new(price, t(1_000))?.with_deadline(t(2_800));
//!
//! // The deadline passes before the customer pays: cancel, and close the trade at the provider.
//! assert_eq!(order.tick(t(2_800)), Outcome::Applied(Effects::from([Effect::CloseTrade])));
//!
//! // The provider confirms the capture an hour later. It is never dropped: refund it.
//! let late = Input::succeed(EventId::new(b"notify-7")?, price);
//! let outcome = order.apply(&late, t(6_400));
//! let refund_id = order.refund_request_id(); // stable: sent as Alipay's `out_request_no`
//! assert_eq!(outcome.effects(), &[Effect::RefundRequired { amount: price, refund_id }]);
//! assert_eq!((order.status(), order.paid()), (Status::Cancelled, price));
//!
//! // Until the refund is confirmed it stays owed, across snapshots and restarts.
//! assert_eq!(order.pending_effects().as_slice(), outcome.effects());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Modules
//!
//! - [`money`]: integer minor units and ISO 4217 currencies, exact decimal parsing.
//! - [`payment`]: the payment, its inputs, outcomes and effects; the transition table.
//! - `snapshot` (feature `serde`): versioned postcard snapshots that re-check every invariant.
//! - [`guard`]: the host-level replay guard and idempotent-command store, in fixed memory.
//! - [`table`]: many payments keyed by order id, without a heap.
//! - [`reconcile`]: the host's ledger against the provider's bill, streaming, no allocation;
//!   readers of Alipay's and WeChat Pay's bill files, line by line.
//! - [`alipay`]: strict form decoding, signed content, notifications to inputs, responses.
//! - [`signature`]: the RSA2 verification seam; keys, verification and signing behind the
//!   backends' features (`rsa`, `ring`, `rsa-fixed`).
//! - [`webhook`]: HMAC-SHA256 (the generic scheme and Stripe's) and WeChat Pay v3.
//!
//! ## Feature flags
//!
//! - `serde` (default): snapshots with serde + postcard.
//! - `rsa` (default): RSA2 verification and signing (needs `alloc`).
//! - `x509`: public keys and serials out of X.509 certificates (needs `rsa`).
//! - `wechatpay` (default): WeChat Pay v3 platform keys and resource decryption (needs `x509`).
//! - `ring`: RSA2 verification through `ring`, for std hosts (needs `alloc`).
//! - `rsa-fixed`: RSA2 verification with no heap and no `alloc`, in fixed-size integers.
//! - `defmt`: `defmt::Format` on every public type, for firmware logs.
//! - `alloc`: helpers that return owned strings, and bill lines summed per order
//!   (`reconcile::bill::BillTotals`). The core never needs it.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// "Never panics on input", checked by the compiler in all library code. Unit tests are exempt,
// as are integration tests, examples and benchmarks (crates of their own): a `[lints.clippy]`
// table in Cargo.toml would apply to those too. Every `#[allow]` of these in `src/` carries a
// `reason` saying why that one spot cannot panic or overflow.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod alipay;
pub mod guard;
pub mod money;
pub mod payment;
pub mod provider;
pub mod reconcile;
pub mod signature;
pub mod table;
pub mod time;
pub mod webhook;

#[cfg(feature = "defmt")]
mod defmt_impls;
#[cfg(feature = "serde")]
pub mod snapshot;

/// The fixed-capacity strings a few functions return (`SerialHex`, `beijing_time`,
/// `CertSn::to_hex`) are `heapless::String`s: re-exported, so a host names them through
/// `paystate::heapless` and always gets the version this crate was built with. A major
/// upgrade of heapless is a major upgrade of paystate. (The engine's own outputs, [`Effects`],
/// are a paystate type.)
pub use heapless;
pub use money::{AmountError, Currency, Money, UnknownCurrency};
pub use payment::diagram;
pub use payment::input::{Command, EventId, IdError, Input, InputKind, MAX_ID_LEN, RefundId};
pub use payment::{
    CreateError, Effect, Effects, EffectsIntoIter, InvariantError, LateSuccess, Outcome, Payment,
    RefundRequestId, Rejection, Status,
};
pub use table::{OrderId, PaymentTable, TableError};
pub use time::{Duration, Timestamp};

/// The README's examples, compiled and run as doc tests.
#[cfg(all(doctest, feature = "serde", feature = "rsa", feature = "wechatpay"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The examples of the guides in docs/, compiled and run as doc tests like the README's.
#[cfg(all(doctest, feature = "serde", feature = "rsa", feature = "wechatpay"))]
pub mod guide_doctests {
    #[doc = include_str!("../docs/guards.md")]
    pub struct Guards;
    #[doc = include_str!("../docs/webhooks.md")]
    pub struct Webhooks;
    #[doc = include_str!("../docs/alipay.md")]
    pub struct Alipay;
    #[doc = include_str!("../docs/embedded.md")]
    pub struct Embedded;
}
