//! What the host feeds the engine: event ids, refund ids and the six kinds of input.

use core::fmt;

use sha2::{Digest, Sha256};

use crate::money::Money;

/// Longest event id, refund id or failure reason accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// An id was empty or longer than [`MAX_ID_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IdError {
    /// The length that was refused.
    pub len: usize,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "id of {} bytes (must be 1..={MAX_ID_LEN})", self.len)
    }
}

impl core::error::Error for IdError {}

fn fingerprint<const N: usize>(domain: &[u8], bytes: &[u8]) -> Result<[u8; N], IdError> {
    if bytes.is_empty() || bytes.len() > MAX_ID_LEN {
        return Err(IdError { len: bytes.len() });
    }
    let digest = Sha256::new()
        .chain_update(domain)
        .chain_update(bytes)
        .finalize();
    let mut out = [0u8; N];
    for (o, d) in out.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    Ok(out)
}

/// The id of one input: the provider's notification id (Alipay `notify_id`, a webhook event id)
/// or the host's own command id. 1..=64 bytes.
///
/// The engine remembers an id as its fingerprint: the first 128 bits of SHA-256 over a domain
/// tag and the id. Two different ids share a fingerprint with probability 2⁻¹²⁸ per pair, and
/// finding such a pair on purpose costs about 2⁶⁴ hashes, so a duplicate is recognised exactly
/// for every practical purpose while each remembered id costs 16 bytes instead of 64. The hash
/// is computed here, once, when the id is made, not on every `apply`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct EventId([u8; 16]);

impl EventId {
    /// Fingerprints `id`; an empty id or one over 64 bytes is an error.
    pub fn new(id: &[u8]) -> Result<EventId, IdError> {
        fingerprint(b"paystate/event/v1\0", id).map(EventId)
    }

    /// The event id of a message that has no id of its own: a synchronous response, or a
    /// host's command derived from what it answers (docs/spec.md §4.1, 3). `parts` are, for
    /// example, the method, the trade number and the status; they are fingerprinted with a
    /// separator between them, so `["ab", "c"]` and `["a", "bc"]` are different ids. Any part
    /// may be up to 64 bytes; no part may be empty, and there must be 1..=8 parts.
    ///
    /// ```
    /// use paystate::EventId;
    ///
    /// let a = EventId::derived(&[b"alipay.trade.query", b"2024001", b"TRADE_SUCCESS"])?;
    /// let b = EventId::derived(&[b"alipay.trade.query", b"2024001", b"TRADE_SUCCESS"])?;
    /// assert_eq!(a, b);
    /// assert_ne!(a, EventId::derived(&[b"alipay.trade.query", b"2024001", b"TRADE_CLOSED"])?);
    /// # Ok::<(), paystate::IdError>(())
    /// ```
    pub fn derived(parts: &[&[u8]]) -> Result<EventId, IdError> {
        if parts.is_empty() || parts.len() > 8 {
            return Err(IdError { len: parts.len() });
        }
        let mut h = Sha256::new();
        h.update(b"paystate/event/derived/v1\0");
        for part in parts {
            if part.is_empty() || part.len() > MAX_ID_LEN {
                return Err(IdError { len: part.len() });
            }
            h.update([u8::try_from(part.len()).unwrap_or(u8::MAX)]);
            h.update(part);
        }
        let digest = h.finalize();
        let mut out = [0u8; 16];
        for (o, d) in out.iter_mut().zip(digest.iter()) {
            *o = *d;
        }
        Ok(EventId(out))
    }

    /// The 16-byte fingerprint the engine stores.
    pub const fn fingerprint(&self) -> [u8; 16] {
        self.0
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EventId(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}

/// The provider's id of one refund (Alipay `out_request_no`, a Stripe refund id). 1..=64 bytes.
///
/// Every refund a payment records is kept for its whole life (capacity ≥ 16), so a refund id
/// is remembered in 8 bytes beside its exact amount: the first 64 bits of SHA-256 over a domain
/// tag and the id. Refund ids are compared only within one payment, so the chance that a new
/// refund id is taken for one of the 16 recorded ones is below 2⁻⁶⁰; the ids are chosen by the
/// merchant and the provider, not by the payer. This keeps a default payment within 512 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RefundId([u8; 8]);

impl RefundId {
    /// Fingerprints `id`; an empty id or one over 64 bytes is an error.
    pub fn new(id: &[u8]) -> Result<RefundId, IdError> {
        fingerprint(b"paystate/refund/v1\0", id).map(RefundId)
    }

    /// The 8-byte fingerprint the engine stores.
    pub const fn fingerprint(&self) -> [u8; 8] {
        self.0
    }

    pub(crate) const fn from_fingerprint(fp: [u8; 8]) -> RefundId {
        RefundId(fp)
    }
}

impl fmt::Debug for RefundId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefundId(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}

/// The kind of an input and its fields, without the event id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Command {
    /// The host created the trade at the provider, or the customer started paying.
    Initiate,
    /// The provider confirmed a capture of `amount` (a verified notification or query result).
    Succeed {
        /// The captured amount, in the currency the provider reported.
        amount: Money,
    },
    /// The provider reported that the attempt failed. The reason code is part of the input's
    /// identity (a redelivery must carry the same one) but does not change the payment.
    Fail,
    /// The merchant or the customer cancels (a command of the host's).
    Cancel,
    /// The provider reports the unpaid trade closed.
    Close,
    /// The provider confirmed a refund.
    Refund {
        /// The provider's id of this refund.
        refund_id: RefundId,
        /// The refunded amount.
        amount: Money,
    },
}

/// The kinds of input, for tables and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum InputKind {
    /// [`Command::Initiate`].
    Initiate,
    /// [`Command::Succeed`].
    Succeed,
    /// [`Command::Fail`].
    Fail,
    /// [`Command::Cancel`].
    Cancel,
    /// [`Command::Close`].
    Close,
    /// [`Command::Refund`].
    Refund,
    /// [`Payment::tick`](crate::Payment::tick): time passed.
    Tick,
}

impl InputKind {
    /// The name used in the JSON-lines driver and the docs (`"succeed"`).
    pub const fn name(self) -> &'static str {
        match self {
            InputKind::Initiate => "initiate",
            InputKind::Succeed => "succeed",
            InputKind::Fail => "fail",
            InputKind::Cancel => "cancel",
            InputKind::Close => "close",
            InputKind::Refund => "refund",
            InputKind::Tick => "tick",
        }
    }
}

/// One input for [`Payment::apply`](crate::Payment::apply): an event id and a command.
///
/// Make it with the constructor of its kind. Each computes, once, a 64-bit digest of the
/// command's fields (including a failure's reason code), which the payment keeps beside the
/// event id so that a redelivery is told apart from a different input reusing the id.
///
/// ```
/// use paystate::{Currency, EventId, Input, Money};
///
/// let paid = Input::succeed(EventId::new(b"notify-1")?, Money::parse("99.99", Currency::CNY)?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Input {
    event_id: EventId,
    command: Command,
    digest: [u8; 8],
}

impl Input {
    fn with(event_id: EventId, command: Command, reason: &[u8]) -> Input {
        let mut h = Sha256::new();
        h.update(b"paystate/input/v1\0");
        match command {
            Command::Initiate => h.update([1]),
            Command::Succeed { amount } => {
                h.update([2]);
                h.update(amount.minor_units().to_le_bytes());
                h.update(amount.currency().numeric().to_le_bytes());
            }
            Command::Fail => {
                h.update([3]);
                h.update((reason.len() as u64).to_le_bytes());
                h.update(reason);
            }
            Command::Cancel => h.update([4]),
            Command::Close => h.update([5]),
            Command::Refund { refund_id, amount } => {
                h.update([6]);
                h.update(refund_id.fingerprint());
                h.update(amount.minor_units().to_le_bytes());
                h.update(amount.currency().numeric().to_le_bytes());
            }
        }
        let full = h.finalize();
        let mut digest = [0u8; 8];
        for (o, d) in digest.iter_mut().zip(full.iter()) {
            *o = *d;
        }
        Input {
            event_id,
            command,
            digest,
        }
    }

    /// The host created the trade at the provider / the customer started paying.
    pub fn initiate(event_id: EventId) -> Input {
        Input::with(event_id, Command::Initiate, &[])
    }

    /// The provider confirmed a capture of `amount`.
    pub fn succeed(event_id: EventId, amount: Money) -> Input {
        Input::with(event_id, Command::Succeed { amount }, &[])
    }

    /// The provider reported that the attempt failed, with its reason code (1..=64 bytes,
    /// e.g. WeChat Pay's `PAYERROR`).
    pub fn fail(event_id: EventId, reason: &str) -> Result<Input, IdError> {
        if reason.is_empty() || reason.len() > MAX_ID_LEN {
            return Err(IdError { len: reason.len() });
        }
        Ok(Input::with(event_id, Command::Fail, reason.as_bytes()))
    }

    /// [`Input::fail`] for a provider's fixed reason code, which the caller knows to be
    /// 1..=64 bytes (the webhook mappings' `PAYERROR`, `payment_failed`).
    pub(crate) fn fail_with_code(event_id: EventId, reason: &'static str) -> Input {
        Input::with(event_id, Command::Fail, reason.as_bytes())
    }

    /// The merchant or the customer cancels.
    pub fn cancel(event_id: EventId) -> Input {
        Input::with(event_id, Command::Cancel, &[])
    }

    /// The provider reports the unpaid trade closed.
    pub fn close(event_id: EventId) -> Input {
        Input::with(event_id, Command::Close, &[])
    }

    /// The provider confirmed refund `refund_id` of `amount`.
    pub fn refund(event_id: EventId, refund_id: RefundId, amount: Money) -> Input {
        Input::with(event_id, Command::Refund { refund_id, amount }, &[])
    }

    /// The event id.
    pub const fn event_id(&self) -> EventId {
        self.event_id
    }

    /// The command.
    pub const fn command(&self) -> Command {
        self.command
    }

    /// The kind of input.
    pub const fn kind(&self) -> InputKind {
        match self.command {
            Command::Initiate => InputKind::Initiate,
            Command::Succeed { .. } => InputKind::Succeed,
            Command::Fail => InputKind::Fail,
            Command::Cancel => InputKind::Cancel,
            Command::Close => InputKind::Close,
            Command::Refund { .. } => InputKind::Refund,
        }
    }

    pub(crate) const fn digest(&self) -> [u8; 8] {
        self.digest
    }
}

every_variant! {
    /// Every kind, in the order of docs/spec.md §2.1.
    InputKind: 7 [Initiate, Succeed, Fail, Cancel, Close, Refund, Tick]
}
