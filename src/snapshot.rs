//! Snapshots: a payment as bytes, and back (docs/spec.md §5).
//!
//! The format is one version byte ([`FORMAT_VERSION`]) followed by the postcard encoding of
//! the payment's fields. Decoding checks the version, refuses trailing bytes, and re-checks
//! every invariant of docs/spec.md §2.5: a corrupted or forged snapshot is an error, never a
//! payment that breaks an invariant. Arbitrary bytes never panic the decoder.
//!
//! A new format never strands stored payments: [`decode`] reads every earlier version and
//! upgrades it. Version 1 (before obligations, docs/spec.md §2.6) is read as version 2 with the
//! `close_trade` obligation outstanding on every `cancelled` payment that holds no money:
//! closing a closed trade is harmless, forgetting an open one is not.
//!
//! The wire format of version 2, field by field (postcard: unsigned integers are varints,
//! `Option` is a 0/1 tag, sequences are a varint length and their items). Version 1 is the
//! same without the last field.
//!
//! | field | type |
//! |---|---|
//! | amount | u64, minor units |
//! | currency | u16, ISO 4217 numeric code |
//! | created_at, expires_at | u64, `Option<u64>` (seconds) |
//! | paid, refunded | u64, u64 |
//! | version | u32 |
//! | policy | u8: 0 refund, 1 accept |
//! | status | u8: 0 pending, 1 processing, 2 succeeded, 3 failed, 4 cancelled, 5 refunded |
//! | events | seq of (`[u8; 16]` event-id fingerprint, `[u8; 8]` input digest), oldest first |
//! | refunds | seq of (`[u8; 8]` refund-id fingerprint, u64 amount), in order |
//! | obligations | u8 bit set: bit 0 `close_trade` outstanding; other bits zero (version 2) |
//!
//! The refund obligation is not stored: it is outstanding exactly while the payment is
//! `failed` or `cancelled` with `paid` > `refunded`, and its request number is derived from
//! the fields above.
//!
//! ```
//! use paystate::{Currency, Money, Payment, Timestamp, snapshot};
//!
//! let p: Payment = Payment::new(Money::from_minor(9999, Currency::CNY), Timestamp::from_secs(1))?;
//! let mut buf = [0u8; snapshot::MAX_SIZE];
//! let bytes = snapshot::encode(&p, &mut buf)?;
//! let back: Payment = snapshot::decode(bytes)?;
//! assert_eq!(back, p);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::money::Currency;
use crate::payment::{EventEntry, InvariantError, LateSuccess, Parts, Payment, Status};
use crate::time::Timestamp;

/// The format version this crate writes. [`decode`] reads it and every earlier one.
pub const FORMAT_VERSION: u8 = 2;

/// The first format, before obligations: still read, and upgraded.
const FORMAT_V1: u8 = 1;

/// Bit 0 of the obligations byte: a `close_trade` is outstanding.
const CLOSE_PENDING: u8 = 1;

/// A buffer of this many bytes holds the snapshot of any payment with the default capacities.
pub const MAX_SIZE: usize = max_size(8, 16);

/// The largest snapshot of a payment remembering `events` events and `refunds` refunds.
///
/// A payment holds at most 255 of each, so larger arguments are answered as 255; the result
/// never overflows.
#[allow(
    clippy::arithmetic_side_effects,
    reason = "both counts are capped at 255 first, so the sum is below 11 000"
)]
pub const fn max_size(events: usize, refunds: usize) -> usize {
    const fn at_most_255(n: usize) -> usize {
        if n > 255 { 255 } else { n }
    }
    // version byte; amount, 3 timestamps and paid/refunded as 10-byte varints; currency (3),
    // version (5), policy and status (1 each), option tag (1), two sequence lengths (≤ 3 each),
    // then the entries: 24 bytes per event, 8 + 10 per refund; the obligations byte.
    1 + 10 * 6
        + 3
        + 5
        + 1
        + 1
        + 1
        + 3
        + 3
        + at_most_255(events) * 24
        + at_most_255(refunds) * 18
        + 1
}

/// Why a snapshot could not be written or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SnapshotError {
    /// The buffer is too small to hold the snapshot.
    BufferTooSmall,
    /// No bytes at all.
    Empty,
    /// The version byte is neither [`FORMAT_VERSION`] nor an earlier version.
    UnknownVersion(u8),
    /// The bytes are not a well-formed snapshot (truncated, bad varint, bad tag, unknown
    /// currency or status, more entries than the payment's capacity).
    Malformed,
    /// Bytes left over after the snapshot.
    TrailingBytes,
    /// Well-formed, but describes a payment no sequence of inputs can reach.
    Invariant(InvariantError),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::BufferTooSmall => f.write_str("buffer too small for the snapshot"),
            SnapshotError::Empty => f.write_str("empty snapshot"),
            SnapshotError::UnknownVersion(v) => write!(f, "unknown snapshot format version {v}"),
            SnapshotError::Malformed => f.write_str("malformed snapshot"),
            SnapshotError::TrailingBytes => f.write_str("trailing bytes after the snapshot"),
            SnapshotError::Invariant(e) => write!(f, "snapshot breaks an invariant: {e}"),
        }
    }
}

impl core::error::Error for SnapshotError {}

/// The fields in wire order. `Ev` and `Rf` are borrowed slices when encoding and bounded
/// vectors (the payment's capacities) when decoding, so one definition serves both ways.
#[derive(Serialize, Deserialize)]
struct Wire<Ev, Rf> {
    amount: u64,
    currency: u16,
    created_at: u64,
    expires_at: Option<u64>,
    paid: u64,
    refunded: u64,
    version: u32,
    policy: u8,
    status: u8,
    events: Ev,
    refunds: Rf,
}

/// Version 2: the fields of version 1, then the obligations byte. Postcard encodes a struct as
/// its fields in order, so this is exactly version 1's bytes followed by one more.
#[derive(Serialize, Deserialize)]
struct WireV2<Ev, Rf> {
    fields: Wire<Ev, Rf>,
    obligations: u8,
}

/// Writes the snapshot of `payment` into `buf` and returns the bytes written.
/// [`max_size`] bytes always suffice.
pub fn encode<'b, const E: usize, const R: usize>(
    payment: &Payment<E, R>,
    buf: &'b mut [u8],
) -> Result<&'b mut [u8], SnapshotError> {
    let (first, rest) = buf.split_first_mut().ok_or(SnapshotError::BufferTooSmall)?;
    *first = FORMAT_VERSION;
    let events: heapless::Vec<EventEntry, E> = payment.applied_events().collect();
    let fields = Wire {
        amount: payment.amount().minor_units(),
        currency: payment.currency().numeric(),
        created_at: payment.created_at().as_secs(),
        expires_at: payment.expires_at().map(Timestamp::as_secs),
        paid: payment.paid().minor_units(),
        refunded: payment.refunded().minor_units(),
        version: payment.version(),
        policy: match payment.late_success() {
            LateSuccess::Refund => 0,
            LateSuccess::Accept => 1,
        },
        status: payment.status().to_u8(),
        events: events.as_slice(),
        refunds: payment.recorded_refunds(),
    };
    let wire = WireV2 {
        fields,
        obligations: if payment.close_pending() {
            CLOSE_PENDING
        } else {
            0
        },
    };
    let used = postcard::to_slice(&wire, rest)
        .map_err(|_| SnapshotError::BufferTooSmall)?
        .len();
    buf.get_mut(..used.saturating_add(1))
        .ok_or(SnapshotError::BufferTooSmall)
}

/// Reads a snapshot written by [`encode`], of this format version or an earlier one.
/// Restoring emits nothing: the payment is exactly the one that was encoded, with its
/// outstanding obligations ([`Payment::pending_effects`]).
///
/// Errors: [`SnapshotError::Empty`], [`SnapshotError::UnknownVersion`],
/// [`SnapshotError::Malformed`], [`SnapshotError::TrailingBytes`], and
/// [`SnapshotError::Invariant`] for a well-formed snapshot of an unreachable payment.
pub fn decode(bytes: &[u8]) -> Result<Payment, SnapshotError> {
    decode_with_capacity(bytes)
}

/// [`decode`] into a payment with other capacities than the default
/// (`snapshot::decode_with_capacity::<16, 32>(bytes)`). A snapshot with more remembered events
/// or refunds than the capacities is [`SnapshotError::Malformed`].
pub fn decode_with_capacity<const E: usize, const R: usize>(
    bytes: &[u8],
) -> Result<Payment<E, R>, SnapshotError> {
    type Fields<const E: usize, const R: usize> =
        Wire<heapless::Vec<EventEntry, E>, heapless::Vec<([u8; 8], u64), R>>;
    let (&version, rest) = bytes.split_first().ok_or(SnapshotError::Empty)?;
    let (wire, close_pending, left) = match version {
        FORMAT_VERSION => {
            let (wire, left): (WireV2<_, _>, &[u8]) =
                postcard::take_from_bytes(rest).map_err(|_| SnapshotError::Malformed)?;
            if wire.obligations & !CLOSE_PENDING != 0 {
                return Err(SnapshotError::Malformed);
            }
            let close_pending = wire.obligations & CLOSE_PENDING != 0;
            (wire.fields, close_pending, left)
        }
        FORMAT_V1 => {
            let (wire, left): (Fields<E, R>, &[u8]) =
                postcard::take_from_bytes(rest).map_err(|_| SnapshotError::Malformed)?;
            // Upgrade (§5): a cancelled payment with nothing paid may still have an open trade.
            let close_pending =
                Status::from_u8(wire.status) == Some(Status::Cancelled) && wire.paid == 0;
            (wire, close_pending, left)
        }
        other => return Err(SnapshotError::UnknownVersion(other)),
    };
    if !left.is_empty() {
        return Err(SnapshotError::TrailingBytes);
    }
    let currency = Currency::from_numeric(wire.currency).map_err(|_| SnapshotError::Malformed)?;
    let status = Status::from_u8(wire.status).ok_or(SnapshotError::Malformed)?;
    let policy = match wire.policy {
        0 => LateSuccess::Refund,
        1 => LateSuccess::Accept,
        _ => return Err(SnapshotError::Malformed),
    };
    Payment::from_parts(Parts {
        amount: wire.amount,
        currency,
        created_at: Timestamp::from_secs(wire.created_at),
        expires_at: wire.expires_at.map(Timestamp::from_secs),
        paid: wire.paid,
        refunded: wire.refunded,
        version: wire.version,
        policy,
        status,
        events: &wire.events,
        refunds: &wire.refunds,
        close_pending,
    })
    .map_err(SnapshotError::Invariant)
}
