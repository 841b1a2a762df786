//! Snapshots of the guards (docs/spec.md §5): a [`ReplayGuard`] or an [`IdempotencyStore`] as
//! bytes the host persists, and back after a restart.
//!
//! Like a payment's snapshot (`paystate::snapshot`), each is one format byte followed by
//! postcard (unsigned integers are varints, `Option` is a 0/1 tag, byte arrays are their bytes).
//! The format byte names the kind of state as well as the version, so bytes fed to the wrong
//! decoder — a payment's snapshot (whose versions count up from 1), or the other guard's — are
//! refused as [`UnknownVersion`](GuardSnapshotError::UnknownVersion).
//!
//! **Replay guard**, format byte [`REPLAY_GUARD_FORMAT`] (`0x81`):
//!
//! | field | type |
//! |---|---|
//! | format | the byte `0x81` |
//! | tolerance | u64, seconds |
//! | floor | `Option<u64>`, seconds since the Unix epoch |
//! | count | u32, the number of remembered requests |
//! | each request | u64 timestamp (seconds since the Unix epoch), `[u8; 16]` nonce fingerprint |
//!
//! **Idempotency store**, format byte [`IDEMPOTENCY_STORE_FORMAT`] (`0x91`):
//!
//! | field | type |
//! |---|---|
//! | format | the byte `0x91` |
//! | retention | u64, seconds |
//! | floor | `Option<u64>`, seconds since the Unix epoch |
//! | count | u32, the number of keys held |
//! | each key | u64 begin time (seconds since the Unix epoch), `[u8; 16]` key fingerprint, `[u8; 32]` [`RequestFingerprint`], `Option<O>`: tag 0 in flight, tag 1 completed followed by the outcome's postcard encoding |
//!
//! In both, the entries come in strictly ascending order of (time, fingerprint) — the order in
//! which they would leave memory — so a guard has exactly one encoding, whatever its history,
//! and `count` followed by the entries is postcard's encoding of a sequence. Fingerprints are
//! the guard's own (SHA-256 with a domain tag, truncated): the nonces and keys themselves are
//! never stored.
//!
//! **Not in the format**: the capacity `N` (a snapshot decodes into any capacity that holds its
//! entries, so a host may grow a guard across a restart), the hash index and the heap layout
//! (decoding rebuilds them), and the time of the snapshot.
//!
//! **Decoding checks** the format byte, that every field is well formed, that the entries fit
//! the capacity, are in order and never repeat a fingerprint, and that nothing follows:
//! a truncated, corrupted or forged snapshot is a typed error, and arbitrary bytes never panic
//! the decoder. Two things that look suspicious are *not* errors, because a guard reaches them
//! by ordinary use: entries at or below the floor (a replay guard keeps the request it accepted
//! in the same call that evicted an older one and raised the floor above it; an idempotency
//! store whose clock went back begins keys before its floor), and entries past the window or the
//! retention (they are dropped lazily, by the next recording).
//!
//! **What the host must do.** A restored guard answers every later call exactly as the one that
//! was encoded would have (it compares equal to it), and it protects only what it holds:
//!
//! - Replay guard: persist the snapshot after every accepted request, before acting on the
//!   message. A request accepted after the last persisted snapshot is forgotten by a restart,
//!   and its replay would be accepted while it is in the window. A host that persists less
//!   often must refuse every request until more than `2·T` seconds after the restart (the
//!   providers redeliver): a lost request was accepted before the restart with a timestamp at
//!   most `T` ahead of the clock, so by then its replay is stale.
//! - Idempotency store: persist after every [`Proceed`](super::Begin::Proceed) (before
//!   executing the request), every `complete` and every `release`. A key that was **in flight**
//!   when the snapshot was taken is restored in flight: a retry is answered
//!   [`InUse`](super::Begin::InUse), never executed again, because the request may have had its
//!   effect before the restart. The host resolves it from its own durable records — `complete`
//!   it with the outcome if the request took effect, `release` it if it certainly did not — or
//!   the key answers `InUse` until its retention ends. (A fleet of hosts sharing keys in a
//!   database puts a lease on in-flight keys instead, docs/spec.md §10.)
//!
//! ```
//! use paystate::guard::snapshot::{self, GuardSnapshotError};
//! use paystate::guard::{Begin, IdempotencyStore, ReplayError, ReplayGuard, RequestFingerprint};
//! use paystate::Timestamp;
//!
//! let t = Timestamp::from_secs;
//! let mut guard: ReplayGuard<64> = ReplayGuard::new();
//! guard.admit(t(1_000), b"nonce-1", t(1_000), || true)?;
//!
//! let mut buf = [0u8; snapshot::replay_guard_max_size(64)];
//! let bytes = snapshot::encode_replay_guard(&guard, &mut buf)?;
//! // ... persisted, the process restarts ...
//! let mut restored: ReplayGuard<64> = snapshot::decode_replay_guard(bytes)?;
//! assert_eq!(restored, guard);
//! assert_eq!(restored.admit(t(1_000), b"nonce-1", t(1_010), || true), Err(ReplayError::Replayed));
//!
//! // A key in flight at the snapshot stays in flight: a retry is never executed twice.
//! let mut store: IdempotencyStore<64, u64> = IdempotencyStore::new();
//! let request = RequestFingerprint::of(b"POST /v1/refunds order=42&amount=10.00");
//! assert_eq!(store.begin(b"key-1", request, t(1_000))?, Begin::Proceed);
//! let mut buf = [0u8; snapshot::idempotency_store_max_size(64, 10)]; // a u64 takes ≤ 10 bytes
//! let bytes = snapshot::encode_idempotency_store(&store, &mut buf)?;
//! let mut restored: IdempotencyStore<64, u64> = snapshot::decode_idempotency_store(bytes)?;
//! assert_eq!(restored.begin(b"key-1", request, t(1_005))?, Begin::InUse);
//!
//! // The wrong kind of snapshot is refused.
//! assert_eq!(
//!     snapshot::decode_replay_guard::<64>(bytes).unwrap_err(),
//!     GuardSnapshotError::UnknownVersion(snapshot::IDEMPOTENCY_STORE_FORMAT)
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::idempotency::{IdempotencyStore, Record, RequestFingerprint};
use super::replay::ReplayGuard;
use super::slots::{Blank, Fingerprint, Table};
use crate::time::Timestamp;

/// The first byte of a replay guard's snapshot: kind `0x8_`, format version 1.
pub const REPLAY_GUARD_FORMAT: u8 = 0x81;

/// The first byte of an idempotency store's snapshot: kind `0x9_`, format version 1.
pub const IDEMPOTENCY_STORE_FORMAT: u8 = 0x91;

/// The format byte, the tolerance or retention (a u64 varint, at most 10 bytes) and the floor
/// (an option tag and at most 10 bytes).
const HEADER_MAX: usize = 1 + 10 + 11;
/// A timestamp (≤ 10 bytes) and a nonce fingerprint.
const REPLAY_ENTRY_MAX: usize = 10 + 16;
/// A begin time (≤ 10 bytes), a key fingerprint, a request fingerprint and the option tag.
const STORE_ENTRY_MAX: usize = 10 + 16 + 32 + 1;

/// The largest snapshot of a [`ReplayGuard`] of capacity `capacity`, in bytes: a buffer this
/// long always holds one. Saturates at `usize::MAX` instead of overflowing.
///
/// It is `22 + 26·capacity` plus the length of `capacity` as a varint (capacities 8, 64 and
/// 1024: 231, 1 687 and 26 648 bytes). A snapshot is usually smaller: a timestamp of today
/// takes 5 bytes, not 10.
pub const fn replay_guard_max_size(capacity: usize) -> usize {
    HEADER_MAX
        .saturating_add(varint_len(capacity))
        .saturating_add(capacity.saturating_mul(REPLAY_ENTRY_MAX))
}

/// The largest snapshot of an [`IdempotencyStore`] of capacity `capacity` whose outcome `O`
/// takes at most `outcome_max` bytes in postcard (a `u64` or `usize` 10, a `u32` 5, a `u16` 3,
/// a `u8` 1, a `[u8; K]` K; a struct the sum of its fields). A buffer this long always holds
/// one. Saturates at `usize::MAX` instead of overflowing.
///
/// It is `22 + (59 + outcome_max)·capacity` plus the length of `capacity` as a varint.
pub const fn idempotency_store_max_size(capacity: usize, outcome_max: usize) -> usize {
    HEADER_MAX
        .saturating_add(varint_len(capacity))
        .saturating_add(capacity.saturating_mul(STORE_ENTRY_MAX.saturating_add(outcome_max)))
}

/// Bytes of `n` as a postcard varint (7 bits a byte).
const fn varint_len(n: usize) -> usize {
    let mut len = 1usize;
    let mut rest = n >> 7;
    while rest > 0 {
        len = len.saturating_add(1);
        rest >>= 7;
    }
    len
}

/// Why a guard's snapshot could not be written or read. On any error nothing is restored:
/// the host must not start with an empty guard in its place (that would accept the replays and
/// re-execute the requests the lost one remembered) — see the module docs for what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum GuardSnapshotError {
    /// Encoding: the buffer is too small. [`replay_guard_max_size`] and
    /// [`idempotency_store_max_size`] bytes always suffice.
    BufferTooSmall,
    /// Encoding: the outcome's `Serialize` failed (postcard cannot encode it, e.g. a sequence
    /// of unknown length).
    UnencodableOutcome,
    /// Decoding: no bytes at all.
    Empty,
    /// Decoding: the first byte is not this guard's format byte ([`REPLAY_GUARD_FORMAT`] or
    /// [`IDEMPOTENCY_STORE_FORMAT`]). A payment's snapshot, the other guard's, or a format this
    /// version of the crate does not know.
    UnknownVersion(u8),
    /// Decoding: the bytes are not a well-formed snapshot (truncated, a bad varint or option
    /// tag, an outcome that does not decode).
    Malformed,
    /// Decoding: bytes left over after the snapshot.
    TrailingBytes,
    /// Decoding: the snapshot holds more entries than the guard's capacity. Decode it into a
    /// guard of at least `count` entries.
    TooManyEntries {
        /// Entries in the snapshot.
        count: usize,
        /// The capacity `N` it was decoded into.
        capacity: usize,
    },
    /// Decoding: the entry at `index` (from 0) does not come strictly after the one before it
    /// in (time, fingerprint) order; no guard encodes that.
    EntriesOutOfOrder {
        /// The entry's position in the snapshot.
        index: usize,
    },
    /// Decoding: the entry at `index` (from 0) has the fingerprint of an earlier one; a guard
    /// remembers each nonce or key once.
    DuplicateEntry {
        /// The entry's position in the snapshot.
        index: usize,
    },
}

impl GuardSnapshotError {
    /// A short code for logs: `"buffer_too_small"`, `"unencodable_outcome"`, `"empty"`,
    /// `"unknown_version"`, `"malformed"`, `"trailing_bytes"`, `"too_many_entries"`,
    /// `"entries_out_of_order"` or `"duplicate_entry"`.
    pub const fn code(&self) -> &'static str {
        match self {
            GuardSnapshotError::BufferTooSmall => "buffer_too_small",
            GuardSnapshotError::UnencodableOutcome => "unencodable_outcome",
            GuardSnapshotError::Empty => "empty",
            GuardSnapshotError::UnknownVersion(_) => "unknown_version",
            GuardSnapshotError::Malformed => "malformed",
            GuardSnapshotError::TrailingBytes => "trailing_bytes",
            GuardSnapshotError::TooManyEntries { .. } => "too_many_entries",
            GuardSnapshotError::EntriesOutOfOrder { .. } => "entries_out_of_order",
            GuardSnapshotError::DuplicateEntry { .. } => "duplicate_entry",
        }
    }
}

impl fmt::Display for GuardSnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuardSnapshotError::UnknownVersion(v) => {
                write!(f, "unknown_version: format byte {v:#04x}")
            }
            GuardSnapshotError::TooManyEntries { count, capacity } => {
                write!(
                    f,
                    "too_many_entries: {count} entries for a capacity of {capacity}"
                )
            }
            GuardSnapshotError::EntriesOutOfOrder { index } => {
                write!(f, "entries_out_of_order: entry {index}")
            }
            GuardSnapshotError::DuplicateEntry { index } => {
                write!(f, "duplicate_entry: entry {index}")
            }
            other => f.write_str(other.code()),
        }
    }
}

impl core::error::Error for GuardSnapshotError {}

/// Writes the snapshot of `guard` into `buf` and returns the bytes written. A buffer of
/// [`replay_guard_max_size`]`(N)` bytes always suffices; a smaller one may, and if not the
/// answer is [`BufferTooSmall`](GuardSnapshotError::BufferTooSmall). Reads the guard only.
/// Uses `4·N` bytes of stack to put the entries in order, and no heap.
pub fn encode_replay_guard<'b, const N: usize>(
    guard: &ReplayGuard<N>,
    buf: &'b mut [u8],
) -> Result<&'b mut [u8], GuardSnapshotError> {
    encode_table(
        REPLAY_GUARD_FORMAT,
        guard.memory.limit,
        guard.memory.floor,
        &guard.memory.table,
        buf,
        |_, ()| Ok(()),
    )
}

/// Reads a snapshot written by [`encode_replay_guard`], into a guard of capacity `N` (any
/// capacity that holds its entries). The guard remembers the same requests with the same
/// tolerance and floor, and answers every later request as the encoded one would have.
///
/// Errors: [`Empty`](GuardSnapshotError::Empty),
/// [`UnknownVersion`](GuardSnapshotError::UnknownVersion) (not a replay guard's snapshot),
/// [`Malformed`](GuardSnapshotError::Malformed),
/// [`TooManyEntries`](GuardSnapshotError::TooManyEntries),
/// [`EntriesOutOfOrder`](GuardSnapshotError::EntriesOutOfOrder),
/// [`DuplicateEntry`](GuardSnapshotError::DuplicateEntry),
/// [`TrailingBytes`](GuardSnapshotError::TrailingBytes). Never panics, never allocates.
pub fn decode_replay_guard<const N: usize>(
    bytes: &[u8],
) -> Result<ReplayGuard<N>, GuardSnapshotError> {
    let (header, mut reader) = Header::read(bytes, REPLAY_GUARD_FORMAT, N)?;
    let mut guard = ReplayGuard::with_tolerance(crate::time::Duration::from_secs(header.limit));
    guard.memory.floor = header.floor;
    reader.entries(&mut guard.memory.table, header.count, |_| Ok(()))?;
    reader.finish()?;
    Ok(guard)
}

/// Writes the snapshot of `store` into `buf` and returns the bytes written: every key held,
/// in flight or completed with its outcome. A buffer of
/// [`idempotency_store_max_size`]`(N, outcome_max)` bytes always suffices; a smaller one may,
/// and if not the answer is [`BufferTooSmall`](GuardSnapshotError::BufferTooSmall). Reads the
/// store only. Uses `4·N` bytes of stack to put the entries in order, and no heap (unless
/// `O`'s `Serialize` does).
pub fn encode_idempotency_store<'b, const N: usize, O: Serialize>(
    store: &IdempotencyStore<N, O>,
    buf: &'b mut [u8],
) -> Result<&'b mut [u8], GuardSnapshotError> {
    encode_table(
        IDEMPOTENCY_STORE_FORMAT,
        store.memory.limit,
        store.memory.floor,
        &store.memory.table,
        buf,
        |w, record| {
            w.put(record.request.as_bytes())?;
            w.put(&record.outcome)
        },
    )
}

/// Reads a snapshot written by [`encode_idempotency_store`], into a store of capacity `N` (any
/// capacity that holds its keys). The store holds the same keys with the same retention and
/// floor, and answers every later call as the encoded one would have. A key in flight in the
/// snapshot is in flight here: a retry gets [`InUse`](super::Begin::InUse) until the host
/// `complete`s or `release`s it (see the module docs).
///
/// Errors: [`Empty`](GuardSnapshotError::Empty),
/// [`UnknownVersion`](GuardSnapshotError::UnknownVersion) (not an idempotency store's
/// snapshot), [`Malformed`](GuardSnapshotError::Malformed) (including an outcome that `O`
/// does not decode), [`TooManyEntries`](GuardSnapshotError::TooManyEntries),
/// [`EntriesOutOfOrder`](GuardSnapshotError::EntriesOutOfOrder),
/// [`DuplicateEntry`](GuardSnapshotError::DuplicateEntry),
/// [`TrailingBytes`](GuardSnapshotError::TrailingBytes). Never panics or allocates (unless
/// `O`'s `Deserialize` does).
pub fn decode_idempotency_store<const N: usize, O: Clone + DeserializeOwned>(
    bytes: &[u8],
) -> Result<IdempotencyStore<N, O>, GuardSnapshotError> {
    let (header, mut reader) = Header::read(bytes, IDEMPOTENCY_STORE_FORMAT, N)?;
    let mut store =
        IdempotencyStore::with_retention(crate::time::Duration::from_secs(header.limit));
    store.memory.floor = header.floor;
    reader.entries(&mut store.memory.table, header.count, |r| {
        let request: [u8; 32] = r.take()?;
        let outcome: Option<O> = r.take()?;
        Ok(Record {
            request: RequestFingerprint::from_digest(request),
            outcome,
        })
    })?;
    reader.finish()?;
    Ok(store)
}

/// The part both formats share: the format byte, the limit (tolerance or retention), the
/// floor, and each entry's time and fingerprint followed by `value`'s fields.
fn encode_table<'b, const N: usize, V>(
    format: u8,
    limit: u64,
    floor: Option<Timestamp>,
    table: &Table<N, V>,
    buf: &'b mut [u8],
    mut value: impl FnMut(&mut Writer<'b>, &V) -> Result<(), GuardSnapshotError>,
) -> Result<&'b mut [u8], GuardSnapshotError> {
    let mut w = Writer::new(buf, format)?;
    w.put(&limit)?;
    w.put(&floor.map(Timestamp::as_secs))?;
    // `len ≤ N ≤ MAX_CAPACITY < 2^30`.
    let count = u32::try_from(table.len()).map_err(|_| GuardSnapshotError::BufferTooSmall)?;
    w.put(&count)?;
    table.try_for_each_in_order(|entry| {
        w.put(&entry.time.as_secs())?;
        w.put(&entry.fp)?;
        value(&mut w, &entry.value)
    })?;
    w.finish()
}

/// Appends postcard encodings to a caller's buffer.
struct Writer<'b> {
    buf: &'b mut [u8],
    used: usize,
}

impl<'b> Writer<'b> {
    fn new(buf: &'b mut [u8], format: u8) -> Result<Self, GuardSnapshotError> {
        let first = buf.first_mut().ok_or(GuardSnapshotError::BufferTooSmall)?;
        *first = format;
        Ok(Writer { buf, used: 1 })
    }

    fn put<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), GuardSnapshotError> {
        let rest = self
            .buf
            .get_mut(self.used..)
            .ok_or(GuardSnapshotError::BufferTooSmall)?;
        let written = postcard::to_slice(value, rest)
            .map_err(|e| match e {
                postcard::Error::SerializeBufferFull => GuardSnapshotError::BufferTooSmall,
                _ => GuardSnapshotError::UnencodableOutcome,
            })?
            .len();
        self.used = self
            .used
            .checked_add(written)
            .ok_or(GuardSnapshotError::BufferTooSmall)?;
        Ok(())
    }

    fn finish(self) -> Result<&'b mut [u8], GuardSnapshotError> {
        self.buf
            .get_mut(..self.used)
            .ok_or(GuardSnapshotError::BufferTooSmall)
    }
}

/// The fields before the entries.
struct Header {
    limit: u64,
    floor: Option<Timestamp>,
    count: usize,
}

impl Header {
    /// Checks the format byte and reads the header; refuses a count above `capacity` before
    /// reading any entry.
    fn read(
        bytes: &[u8],
        format: u8,
        capacity: usize,
    ) -> Result<(Header, Reader<'_>), GuardSnapshotError> {
        let (&first, rest) = bytes.split_first().ok_or(GuardSnapshotError::Empty)?;
        if first != format {
            return Err(GuardSnapshotError::UnknownVersion(first));
        }
        let mut r = Reader {
            de: postcard::Deserializer::from_bytes(rest),
        };
        let limit: u64 = r.take()?;
        let floor: Option<u64> = r.take()?;
        let count: u32 = r.take()?;
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count > capacity {
            return Err(GuardSnapshotError::TooManyEntries { count, capacity });
        }
        let header = Header {
            limit,
            floor: floor.map(Timestamp::from_secs),
            count,
        };
        Ok((header, r))
    }
}

/// Reads postcard values one after the other from the snapshot's bytes.
struct Reader<'a> {
    de: postcard::Deserializer<'a, postcard::de_flavors::Slice<'a>>,
}

impl<'a> Reader<'a> {
    fn take<T: Deserialize<'a>>(&mut self) -> Result<T, GuardSnapshotError> {
        T::deserialize(&mut self.de).map_err(|_| GuardSnapshotError::Malformed)
    }

    /// Reads `count` entries (time, fingerprint, then `value`'s fields) into the empty `table`,
    /// checking that they are in strictly ascending (time, fingerprint) order and that no
    /// fingerprint repeats. In that order each insertion leaves the heap as it is: O(count).
    fn entries<const N: usize, V: Blank>(
        &mut self,
        table: &mut Table<N, V>,
        count: usize,
        mut value: impl FnMut(&mut Self) -> Result<V, GuardSnapshotError>,
    ) -> Result<(), GuardSnapshotError> {
        let mut previous: Option<(u64, Fingerprint)> = None;
        for index in 0..count {
            let time: u64 = self.take()?;
            let fp: Fingerprint = self.take()?;
            let v = value(self)?;
            if previous.is_some_and(|p| (time, fp) <= p) {
                return Err(GuardSnapshotError::EntriesOutOfOrder { index });
            }
            previous = Some((time, fp));
            if table.find(&fp).is_some() {
                return Err(GuardSnapshotError::DuplicateEntry { index });
            }
            table
                .insert(Timestamp::from_secs(time), fp, v)
                .map_err(|_| GuardSnapshotError::TooManyEntries { count, capacity: N })?;
        }
        Ok(())
    }

    /// Refuses anything left over.
    fn finish(self) -> Result<(), GuardSnapshotError> {
        let left = self
            .de
            .finalize()
            .map_err(|_| GuardSnapshotError::Malformed)?;
        if left.is_empty() {
            Ok(())
        } else {
            Err(GuardSnapshotError::TrailingBytes)
        }
    }
}
