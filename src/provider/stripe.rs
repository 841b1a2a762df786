//! Stripe events in the provider shape of docs/spec.md §4.1.
//!
//! An event is verified with the `Stripe-Signature` header of
//! [`webhook::stripe`](crate::webhook::stripe) (HMAC-SHA256 over `"{t}.{body}"`, two-sided
//! window) and then mapped to an engine input:
//!
//! | event `type` | input | event id |
//! |---|---|---|
//! | `payment_intent.succeeded` | `succeed(amount_received)` | the event's `id` (`evt_…`) |
//! | `payment_intent.payment_failed` | `fail("payment_failed")` | `evt_…` |
//! | `payment_intent.canceled` | `close` | `evt_…` |
//! | `payment_intent.created`, `.processing`, `.requires_action` | `initiate` | `evt_…` |
//! | `charge.refunded` | `refund` (below) | `evt_…` |
//! | any other type | [`MapError::NothingToApply`]: acknowledge it | — |
//!
//! The four types [`PaymentIntentEvent`] knows map to exactly the inputs it makes, so the two
//! APIs agree. `created` and `requires_action` are mapped here too (`PaymentIntentEvent` leaves
//! them to the host): each says the intent exists at Stripe, which is what `initiate` means,
//! and `initiate` is ignored in every status but `pending`, so they can never undo anything.
//!
//! **`charge.refunded`** names its refund deterministically, from the event alone:
//!
//! - when the charge lists its refunds (`refunds.data`, newest first; Stripe stopped including
//!   the list by default in API version 2022-11-15), the newest one: `status` `succeeded` →
//!   `refund(re_…, amount)`; `pending`/`requires_action` → [`MapError::NothingToApply`]
//!   (`charge.refunded` comes again, or `refund.updated`); `failed`/`canceled` →
//!   [`MapError::RefundFailed`];
//! - otherwise the refund is named by the event's id (`evt_…`) and its amount is
//!   [`Facts::refund_amount`] of the cumulative `amount_refunded`: a redelivery finds that
//!   refund recorded and maps to the same amount (a `duplicate`). A total that the recorded
//!   refunds already account for exactly is [`MapError::NothingToApply`].
//!
//! **`payment_intent.payment_failed` is one attempt failing, not the intent**: the customer may
//! try another card on the same intent, and its `payment_intent.succeeded` then arrives for a
//! `failed` payment. Under the default late-success policy that capture is refunded
//! (docs/spec.md §2.4); create Stripe payments with
//! [`LateSuccess::Accept`](crate::LateSuccess::Accept) to keep it instead.
//!
//! Use one source of refunds per payment (these events, or the host's own refund answers):
//! the same money recorded under two refund ids would be refused as exceeding the balance.
//!
//! **Business checks** before any input is made: the order the host attached to the payment
//! intent — `metadata.order_id` by default ([`Merchant::order_key`]; Stripe copies a payment
//! intent's metadata onto the charge it creates, which `charge.refunded` carries) — is the
//! payment's order id; `currency` is the payment's (Stripe writes codes in lower case,
//! `"usd"`; an unknown code is [`MapError::UnknownCurrency`], never a mismatch); `amount` (in
//! the currency's smallest unit, as Stripe counts it) is the payment's amount, and for
//! `succeeded` so is `amount_received`. Stripe's units are ISO 4217's minor units except for
//! ISK, which Stripe counts in hundredths (Stripe's docs, "Special cases"): an ISK amount
//! must be a multiple of 100 and is divided by it.
//!
//! The host then answers with [`Reply`]: 200 when received, 400 when verification failed,
//! 500 when a genuine event could not be processed (Stripe retries for up to three days).
//!
//! ```
//! use paystate::provider::{Facts, stripe};
//! use paystate::webhook::{Duration, encode_hex, hmac::HmacKey};
//! use paystate::{Currency, Money, Payment, Status, Timestamp};
//!
//! let t = Timestamp::from_secs;
//! let secret = HmacKey::new(b"whsec_test_secret")?;
//! let mut order: Payment = Payment::new(Money::parse("20.00", Currency::USD)?, t(1_700_000_000))?;
//!
//! // What Stripe POSTs (most fields left out) and its signature header.
//! let body = br#"{"id":"evt_1","object":"event","type":"payment_intent.succeeded","data":{"object":
//!   {"id":"pi_1","object":"payment_intent","amount":2000,"amount_received":2000,"currency":"usd",
//!    "metadata":{"order_id":"2024001"}}}}"#;
//! let mut hex = [0u8; 64];
//! let header = format!("t=1700000060,v1={}",
//!     encode_hex(&paystate::webhook::stripe::sign(&secret, t(1_700_000_060), body), &mut hex).unwrap());
//!
//! // The handler: verify, map against the payment's facts, apply, reply.
//! let reply = match stripe::verify(&secret, &header, body, t(1_700_000_075), Duration::DEFAULT_TOLERANCE) {
//!     Err(e) => stripe::Reply::for_error(&e),
//!     Ok(event) => match event.to_input(&stripe::Merchant::DEFAULT, &Facts::of("2024001", &order)) {
//!         Err(e) => stripe::Reply::for_map_error(&e),
//!         // Persist the snapshot and carry out the effects before replying.
//!         Ok(input) => stripe::Reply::for_outcome(&order.apply(&input, t(1_700_000_075))),
//!     },
//! };
//! assert_eq!((reply.status(), order.status()), (200, Status::Succeeded));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json_core::str::EscapedStr;

use super::json::{self, JsonError, expect_currency, plain, same};
use super::{Facts, MapError, Verified};
use crate::money::{Currency, Money};
use crate::payment::Outcome;
use crate::payment::input::{EventId, Input, RefundId};
use crate::time::Timestamp;
use crate::webhook::Duration;
use crate::webhook::hmac::HmacKey;
use crate::webhook::stripe::{self as scheme, PaymentIntentEvent, StripeError};

/// The metadata key that carries the host's order id unless configured otherwise.
pub const DEFAULT_ORDER_KEY: &str = "order_id";

/// Most metadata entries Stripe allows on an object (its docs: 50 keys).
pub const MAX_METADATA: usize = 50;

/// The host's Stripe configuration for mapping (never taken from the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Merchant<'c> {
    /// The metadata key under which the host put its order id when it created the payment
    /// intent (`metadata[order_id]=2024001`). Compared exactly, as sent.
    pub order_key: &'c str,
}

impl Merchant<'static> {
    /// The order id under `metadata.order_id`.
    pub const DEFAULT: Merchant<'static> = Merchant {
        order_key: DEFAULT_ORDER_KEY,
    };
}

impl Default for Merchant<'static> {
    fn default() -> Merchant<'static> {
        Merchant::DEFAULT
    }
}

/// Why an event was refused before anything was mapped. Answer with [`Reply::for_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// The `Stripe-Signature` header, the window or the MAC refused it.
    Signature(StripeError),
    /// The body is not a Stripe event's JSON.
    Json(JsonError),
}

impl Error {
    /// A stable snake_case code for logs and the reply.
    pub const fn code(&self) -> &'static str {
        match self {
            Error::Signature(e) => e.code(),
            Error::Json(_) => "bad_json",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Signature(e) => e.fmt(f),
            Error::Json(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for Error {}

// ---------------------------------------------------------------------------------------------
// The JSON shapes.

/// An object's `metadata`: up to [`MAX_METADATA`] string entries, keys as sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Metadata<'a> {
    entries: heapless::Vec<(&'a str, EscapedStr<'a>), MAX_METADATA>,
}

impl<'a> Metadata<'a> {
    /// The value under `key`; a key sent twice is ambiguous.
    fn get(&self, key: &str) -> Result<Option<EscapedStr<'a>>, MapError> {
        let mut found = self.entries.iter().filter(|(k, _)| *k == key);
        let first = found.next().map(|(_, v)| *v);
        if found.next().is_some() {
            return Err(MapError::BadField("data.object.metadata"));
        }
        Ok(first)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Metadata<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Metadata<'a>, D::Error> {
        struct V<'a>(core::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Metadata<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Metadata<'a>, M::Error> {
                let mut entries = heapless::Vec::new();
                while let Some(entry) = map.next_entry::<&'de str, EscapedStr<'de>>()? {
                    entries
                        .push(entry)
                        .map_err(|_| de::Error::invalid_length(MAX_METADATA + 1, &self))?;
                }
                Ok(Metadata { entries })
            }
        }
        d.deserialize_map(V(core::marker::PhantomData))
    }
}

/// A refund object in a charge's `refunds.data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
struct RefundObject<'a> {
    #[serde(borrow, default)]
    id: Option<EscapedStr<'a>>,
    #[serde(default)]
    amount: Option<u64>,
    #[serde(borrow, default)]
    currency: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    status: Option<EscapedStr<'a>>,
}

/// The first (newest) element of a list's `data`; the others are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Newest<'a>(Option<RefundObject<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Newest<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Newest<'a>, D::Error> {
        struct V<'a>(core::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Newest<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of refunds")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Newest<'a>, S::Error> {
                let first = seq.next_element::<RefundObject<'de>>()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Newest(first))
            }
        }
        d.deserialize_seq(V(core::marker::PhantomData))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
struct RefundList<'a> {
    #[serde(borrow, default)]
    data: Option<Newest<'a>>,
}

/// `data.object`: a payment intent or a charge; only the fields the mapping reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Object<'a> {
    #[serde(borrow, default)]
    object: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    id: Option<EscapedStr<'a>>,
    #[serde(default)]
    amount: Option<u64>,
    #[serde(default)]
    amount_received: Option<u64>,
    #[serde(default)]
    amount_refunded: Option<u64>,
    #[serde(borrow, default)]
    currency: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    metadata: Option<Metadata<'a>>,
    #[serde(borrow, default)]
    refunds: Option<RefundList<'a>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Data<'a> {
    #[serde(borrow, default)]
    object: Option<Object<'a>>,
}

/// The event types this mapping knows; see the [module](self) table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EventKind {
    /// `payment_intent.created`.
    PaymentIntentCreated,
    /// `payment_intent.processing`.
    PaymentIntentProcessing,
    /// `payment_intent.requires_action`.
    PaymentIntentRequiresAction,
    /// `payment_intent.succeeded`.
    PaymentIntentSucceeded,
    /// `payment_intent.payment_failed`.
    PaymentIntentPaymentFailed,
    /// `payment_intent.canceled`.
    PaymentIntentCanceled,
    /// `charge.refunded`.
    ChargeRefunded,
    /// Any other type: acknowledged, nothing applied.
    Other,
}

impl EventKind {
    const KNOWN: [EventKind; 7] = [
        EventKind::PaymentIntentCreated,
        EventKind::PaymentIntentProcessing,
        EventKind::PaymentIntentRequiresAction,
        EventKind::PaymentIntentSucceeded,
        EventKind::PaymentIntentPaymentFailed,
        EventKind::PaymentIntentCanceled,
        EventKind::ChargeRefunded,
    ];

    /// The kind of an event `type` (compared exactly; Stripe's types are lower case).
    pub fn from_type(event_type: &str) -> EventKind {
        Self::KNOWN
            .into_iter()
            .find(|k| k.event_type() == event_type)
            .unwrap_or(EventKind::Other)
    }

    /// The event `type`, or `""` for [`EventKind::Other`].
    pub const fn event_type(self) -> &'static str {
        match self {
            EventKind::PaymentIntentCreated => "payment_intent.created",
            EventKind::PaymentIntentProcessing => "payment_intent.processing",
            EventKind::PaymentIntentRequiresAction => "payment_intent.requires_action",
            EventKind::PaymentIntentSucceeded => "payment_intent.succeeded",
            EventKind::PaymentIntentPaymentFailed => "payment_intent.payment_failed",
            EventKind::PaymentIntentCanceled => "payment_intent.canceled",
            EventKind::ChargeRefunded => "charge.refunded",
            EventKind::Other => "",
        }
    }

    /// The `object` of `data.object` this kind carries.
    const fn object(self) -> &'static str {
        match self {
            EventKind::ChargeRefunded => "charge",
            _ => "payment_intent",
        }
    }
}

/// A Stripe event (`{"id":"evt_…","object":"event","type":…,"data":{"object":{…}}}`), read
/// without a heap: only the fields the mapping needs, borrowed from the body. The object's
/// metadata is held inline (up to [`MAX_METADATA`] entries, two string slices each: 800 bytes
/// on a 32-bit target); more entries than Stripe allows make the body a [`JsonError`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Event<'a> {
    #[serde(borrow, default)]
    id: Option<EscapedStr<'a>>,
    #[serde(borrow, default, rename = "type")]
    event_type: Option<EscapedStr<'a>>,
    #[serde(borrow, default)]
    data: Option<Data<'a>>,
}

impl<'a> Event<'a> {
    /// Reads an event body **without checking its signature**: for a host that verified the
    /// `Stripe-Signature` elsewhere, which then wraps the result in
    /// [`Verified::trust_unverified`]. Everyone else calls [`verify`].
    pub fn parse(body: &'a [u8]) -> Result<Event<'a>, JsonError> {
        json::parse(body, "body")
    }

    /// The event's `id` (`evt_…`), as sent.
    pub fn id(&self) -> Option<&'a str> {
        self.id.map(|s| s.0)
    }

    /// The event's `type`, as sent.
    pub fn event_type(&self) -> Option<&'a str> {
        self.event_type.map(|s| s.0)
    }

    /// The kind of event.
    pub fn kind(&self) -> EventKind {
        self.event_type
            .map_or(EventKind::Other, |t| EventKind::from_type(t.0))
    }

    /// The id of `data.object` (`pi_…` or `ch_…`), as sent.
    pub fn object_id(&self) -> Option<&'a str> {
        self.object().and_then(|o| o.id).map(|s| s.0)
    }

    /// The host's order id: the value under `merchant.order_key` in `data.object.metadata`,
    /// as sent. The host looks its payment up by it, then maps the event against that
    /// payment's [`Facts`] (which checks the same key again).
    ///
    /// Errors: [`MapError::MissingField`] when the object or the key is absent,
    /// [`MapError::BadField`] when the key is sent twice or the value holds a JSON escape
    /// (an order id the host issued never needs one).
    pub fn order_id(&self, merchant: &Merchant<'_>) -> Result<&'a str, MapError> {
        let value = self
            .object()
            .and_then(|o| o.metadata.as_ref())
            .map(|m| m.get(merchant.order_key))
            .transpose()?
            .flatten()
            .ok_or(MapError::MissingField("data.object.metadata"))?;
        if value.0.contains('\\') || value.0.is_empty() {
            return Err(MapError::BadField("data.object.metadata"));
        }
        Ok(value.0)
    }

    fn object(&self) -> Option<&Object<'a>> {
        self.data.as_ref().and_then(|d| d.object.as_ref())
    }
}

/// An amount Stripe reports in its units of `currency`, as ISO 4217 minor units.
fn from_stripe_units(
    units: Option<u64>,
    field: &'static str,
    currency: Currency,
) -> Result<Money, MapError> {
    let units = units.ok_or(MapError::MissingField(field))?;
    let minor = if currency.code() == "ISK" {
        if units % 100 != 0 {
            return Err(MapError::BadField(field));
        }
        units / 100
    } else {
        units
    };
    Ok(Money::from_minor(minor, currency))
}

fn expect_amount(money: Money, facts: &Facts<'_>) -> Result<(), MapError> {
    if money != facts.amount() {
        return Err(MapError::AmountMismatch {
            expected: facts.amount().minor_units(),
            got: money.minor_units(),
        });
    }
    Ok(())
}

impl Verified<Event<'_>> {
    /// The business checks and the mapping (see the [module](self) table). The event id is
    /// the event's `id` (`evt_…`; Stripe redelivers with the same id).
    ///
    /// Errors: [`MapError::NothingToApply`] for a type this mapping leaves alone (acknowledge
    /// it); [`MapError::WrongOrder`] when the metadata names another order;
    /// [`MapError::UnknownCurrency`], [`MapError::CurrencyMismatch`],
    /// [`MapError::AmountMismatch`] (in minor units); [`MapError::MissingField`] /
    /// [`MapError::BadField`] naming a field; for `charge.refunded` also
    /// [`MapError::RefundFailed`] and [`MapError::RefundNotCovered`].
    pub fn to_input(&self, merchant: &Merchant<'_>, facts: &Facts<'_>) -> Result<Input, MapError> {
        let event = self.message();
        let kind = event.kind();
        if kind == EventKind::Other {
            plain(event.event_type, "type")?;
            return Err(MapError::NothingToApply);
        }
        let id = plain(event.id, "id")?;
        let event_id = EventId::new(id.as_bytes()).map_err(|_| MapError::BadField("id"))?;
        let object = event
            .object()
            .ok_or(MapError::MissingField("data.object"))?;
        match object.object {
            Some(o) if o.0 == kind.object() => {}
            Some(_) => return Err(MapError::BadField("data.object.object")),
            None => return Err(MapError::MissingField("data.object.object")),
        }
        let order = object
            .metadata
            .as_ref()
            .map(|m| m.get(merchant.order_key))
            .transpose()?
            .flatten()
            .ok_or(MapError::MissingField("data.object.metadata"))?;
        if !same(order, facts.order_id()) {
            return Err(MapError::WrongOrder);
        }
        let currency = expect_currency(object.currency, "data.object.currency", facts.currency())?;
        expect_amount(
            from_stripe_units(object.amount, "data.object.amount", currency)?,
            facts,
        )?;
        let received = |field| from_stripe_units(object.amount_received, field, currency);
        match kind {
            EventKind::PaymentIntentCreated
            | EventKind::PaymentIntentProcessing
            | EventKind::PaymentIntentRequiresAction => Ok(Input::initiate(event_id)),
            EventKind::PaymentIntentSucceeded => {
                let amount = received("data.object.amount_received")?;
                expect_amount(amount, facts)?;
                Ok(PaymentIntentEvent::Succeeded.input(event_id, amount))
            }
            EventKind::PaymentIntentPaymentFailed => {
                Ok(PaymentIntentEvent::PaymentFailed.input(event_id, facts.amount()))
            }
            EventKind::PaymentIntentCanceled => {
                Ok(PaymentIntentEvent::Canceled.input(event_id, facts.amount()))
            }
            EventKind::ChargeRefunded => refund_input(object, id, event_id, currency, facts),
            EventKind::Other => Err(MapError::NothingToApply),
        }
    }
}

/// `charge.refunded`: the newest listed refund, else the cumulative total named by the event.
fn refund_input(
    charge: &Object<'_>,
    event_id_text: &str,
    event_id: EventId,
    currency: Currency,
    facts: &Facts<'_>,
) -> Result<Input, MapError> {
    let newest = charge.refunds.and_then(|l| l.data).and_then(|n| n.0);
    if let Some(refund) = newest {
        match plain(refund.status, "refunds.data.status")? {
            "succeeded" => {}
            "pending" | "requires_action" => return Err(MapError::NothingToApply),
            "failed" | "canceled" => return Err(MapError::RefundFailed),
            _ => return Err(MapError::UnknownStatus),
        }
        if refund.currency.is_some() {
            expect_currency(refund.currency, "refunds.data.currency", currency)?;
        }
        let id = plain(refund.id, "refunds.data.id")?;
        let refund_id =
            RefundId::new(id.as_bytes()).map_err(|_| MapError::BadField("refunds.data.id"))?;
        let amount = from_stripe_units(refund.amount, "refunds.data.amount", currency)?;
        return Ok(Input::refund(event_id, refund_id, amount));
    }
    let cumulative = from_stripe_units(
        charge.amount_refunded,
        "data.object.amount_refunded",
        currency,
    )?;
    let refund_id =
        RefundId::new(event_id_text.as_bytes()).map_err(|_| MapError::BadField("id"))?;
    // A total that every recorded refund covers already is NothingToApply (acknowledged).
    let amount = facts.refund_amount(refund_id, cumulative)?;
    Ok(Input::refund(event_id, refund_id, amount))
}

/// Verifies an event: the `Stripe-Signature` header, the window around `now` and the MAC,
/// exactly as [`webhook::stripe::verify`](scheme::verify) checks them, then reads the body.
/// Nothing is parsed before the signature holds.
pub fn verify<'a>(
    key: &HmacKey,
    header: &str,
    body: &'a [u8],
    now: Timestamp,
    tolerance: Duration,
) -> Result<Verified<Event<'a>>, Error> {
    let _signed = scheme::verify(key, header, body, now, tolerance).map_err(Error::Signature)?;
    Event::parse(body).map(Verified::new).map_err(Error::Json)
}

/// What the host answers an event with. Stripe treats any 2xx as received and retries
/// anything else, with backoff, for up to three days. Reply only after the new snapshot is
/// persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Reply {
    /// 200: processed (applied, a duplicate, nothing to do).
    Received,
    /// Not processed; Stripe sends it again.
    Fail {
        /// 400 when verification failed (Stripe's advice), 500 when a genuine event could not
        /// be processed (a rejection, a failed business check).
        status: u16,
        /// A snake_case code for the body and the logs.
        code: &'static str,
    },
}

impl Reply {
    /// 200 for applied, duplicate and ignored; 500 with the rejection's code otherwise.
    pub const fn for_outcome(outcome: &Outcome) -> Reply {
        match outcome {
            Outcome::Rejected(r) => Reply::Fail {
                status: 500,
                code: r.code(),
            },
            _ => Reply::Received,
        }
    }

    /// For a genuine event that did not map: 200 for [`MapError::NothingToApply`] (a type
    /// this mapping leaves alone, a refund still pending) and [`MapError::RefundFailed`]
    /// (final), 500 with the error's code for the rest.
    pub const fn for_map_error(error: &MapError) -> Reply {
        match error {
            MapError::NothingToApply | MapError::RefundFailed => Reply::Received,
            other => Reply::Fail {
                status: 500,
                code: other.code(),
            },
        }
    }

    /// For an event refused by [`verify`]: 400.
    pub const fn for_error(error: &Error) -> Reply {
        Reply::Fail {
            status: 400,
            code: error.code(),
        }
    }

    /// The HTTP status to send.
    pub const fn status(&self) -> u16 {
        match self {
            Reply::Received => 200,
            Reply::Fail { status, .. } => *status,
        }
    }

    /// The plain-text body to send (Stripe does not read it; it shows in the dashboard's
    /// delivery log): `"received"` or the code.
    pub const fn body(&self) -> &'static str {
        match self {
            Reply::Received => "received",
            Reply::Fail { code, .. } => code,
        }
    }
}
