//! Idempotent commands (docs/spec.md §3.2): Stripe's idempotency keys, in fixed memory.

use core::fmt;

use sha2::{Digest, Sha256};

use super::fingerprint;
use super::slots::{Blank, Fingerprint, Memory, expired};
use crate::time::{Duration, Timestamp};

/// Longest idempotency key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 255;

/// A digest of everything in a request that must match for a retry to be "the same request":
/// the operation, its target and its parameters (not transport headers, not the key itself).
///
/// The store keeps all 32 bytes and compares them exactly. Make it with
/// [`of_parts`](Self::of_parts) (SHA-256 over length-prefixed parts, so `"ab" + "c"` and
/// `"a" + "bc"` differ), [`of`](Self::of) for one canonical encoding, or
/// [`from_digest`](Self::from_digest) for a 256-bit digest the host already computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RequestFingerprint([u8; 32]);

impl RequestFingerprint {
    /// Wraps a digest computed by the host.
    pub const fn from_digest(digest: [u8; 32]) -> Self {
        RequestFingerprint(digest)
    }

    /// SHA-256 over a domain tag and `request`, a canonical encoding of the request.
    pub fn of(request: &[u8]) -> Self {
        Self::of_parts(&[request])
    }

    /// SHA-256 over a domain tag and each part preceded by its length (64-bit little endian),
    /// e.g. `&[b"POST", b"/v1/refunds", body]`.
    pub fn of_parts(parts: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        h.update(b"paystate/request/v1\0");
        for part in parts {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let mut out = [0u8; 32];
        for (o, d) in out.iter_mut().zip(h.finalize().iter()) {
            *o = *d;
        }
        RequestFingerprint(out)
    }

    /// The 32 bytes the store compares.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The answer to [`IdempotencyStore::begin`]: what the host does with the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[must_use = "the host must execute, refuse or answer the request accordingly"]
pub enum Begin<O> {
    /// The key is new: it is now in flight. Execute the request, then call
    /// [`complete`](IdempotencyStore::complete) with its outcome — or
    /// [`release`](IdempotencyStore::release) if it was abandoned before it had any effect, so
    /// that a retry may execute it.
    Proceed,
    /// The same request is being executed under this key right now: do not execute it; answer
    /// "in progress, retry later" (HTTP 409).
    InUse,
    /// The same request completed under this key: do not execute it again; answer with this
    /// stored outcome.
    Replay(O),
    /// The key was used for a different request: do not execute it; answer with an error
    /// (HTTP 422). The store is unchanged.
    Conflict,
}

impl<O> Begin<O> {
    /// `"proceed"`, `"in_use"`, `"replay"` or `"conflict"`.
    pub const fn name(&self) -> &'static str {
        match self {
            Begin::Proceed => "proceed",
            Begin::InUse => "in_use",
            Begin::Replay(_) => "replay",
            Begin::Conflict => "conflict",
        }
    }
}

/// Why the store could not answer or record. The store is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum IdempotencyError {
    /// The key is empty or longer than [`MAX_KEY_LEN`] bytes: refuse the request as malformed.
    InvalidKey {
        /// The length that was refused.
        len: usize,
    },
    /// The key is not remembered, but the store forgot a key early (it was full) that might
    /// still be within its retention, and this could be that key: executing it might execute a
    /// request twice. Do not execute it; answer "retry after `until`" (HTTP 503 with
    /// `Retry-After`). Under overload this is the price of never executing twice.
    MaybeForgotten {
        /// The first second at which unknown keys are accepted again (if the clock does not
        /// go back): the floor plus the retention plus one.
        until: Timestamp,
    },
    /// [`complete`](IdempotencyStore::complete) or [`release`](IdempotencyStore::release) of a
    /// key the store does not hold in flight now: never begun, released, past its retention,
    /// or evicted. Nothing was stored; the host still answers its client with the outcome it
    /// has, and a retry of the key will be refused or will proceed as `begin` decides.
    UnknownKey,
    /// [`complete`](IdempotencyStore::complete) or [`release`](IdempotencyStore::release) of a
    /// key that is already completed. The first outcome stays.
    AlreadyCompleted,
}

impl IdempotencyError {
    /// `"invalid_key"`, `"maybe_forgotten"`, `"unknown_key"` or `"already_completed"`.
    pub const fn code(&self) -> &'static str {
        match self {
            IdempotencyError::InvalidKey { .. } => "invalid_key",
            IdempotencyError::MaybeForgotten { .. } => "maybe_forgotten",
            IdempotencyError::UnknownKey => "unknown_key",
            IdempotencyError::AlreadyCompleted => "already_completed",
        }
    }
}

impl fmt::Display for IdempotencyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdempotencyError::InvalidKey { len } => {
                write!(f, "invalid_key: {len} bytes (must be 1..={MAX_KEY_LEN})")
            }
            IdempotencyError::MaybeForgotten { until } => {
                write!(f, "maybe_forgotten: unknown keys refused until {until}")
            }
            other => f.write_str(other.code()),
        }
    }
}

impl core::error::Error for IdempotencyError {}

/// What the store holds for one key: the request it was begun with and, once completed, the
/// outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record<O> {
    pub(super) request: RequestFingerprint,
    /// `None` while the key is in flight.
    pub(super) outcome: Option<O>,
}

impl<O> Blank for Record<O> {
    const BLANK: Self = Record {
        request: RequestFingerprint([0; 32]),
        outcome: None,
    };
}

/// Idempotency keys with Stripe's semantics, in fixed memory (docs/spec.md §3.2).
///
/// `N` is how many keys it remembers (at least 1); `O` is the outcome the host stores for a
/// completed request and hands back on a retry — a small `Clone` value such as a payment id
/// and a status code. Keys are 1..=255 bytes; each is remembered from its first
/// [`begin`](Self::begin) for the retention `R` (default 24 h).
///
/// | call | state of the key | answer | change |
/// |---|---|---|---|
/// | `begin` | remembered, different request | [`Conflict`](Begin::Conflict) | none |
/// | `begin` | remembered, same request, in flight | [`InUse`](Begin::InUse) | none |
/// | `begin` | remembered, same request, completed | [`Replay(outcome)`](Begin::Replay) | none |
/// | `begin` | unknown, while a forgotten key may be in retention | `Err(`[`MaybeForgotten`](IdempotencyError::MaybeForgotten)`)` | none |
/// | `begin` | unknown | [`Proceed`](Begin::Proceed) | remembered, in flight |
/// | `complete` | in flight | `Ok(())` | completed with the outcome |
/// | `complete` / `release` | completed | `Err(`[`AlreadyCompleted`](IdempotencyError::AlreadyCompleted)`)` | none |
/// | `complete` / `release` | unknown | `Err(`[`UnknownKey`](IdempotencyError::UnknownKey)`)` | none |
/// | `release` | in flight | `Ok(())` | forgotten (a retry proceeds) |
/// | any | key empty or over 255 bytes | `Err(`[`InvalidKey`](IdempotencyError::InvalidKey)`)` | none |
///
/// "Remembered" means held in memory and not past retention: a key begun at `c` is past
/// retention when `now − c > R`, and is then treated as unknown everywhere (a retry a day
/// later is a new request, as with Stripe). Any answer but `Proceed` and any error leave the
/// store unchanged.
///
/// **The floor.** Entries leave memory when a `begin` that records a new key finds them past
/// retention (dropped), or when the store is full and none is (then the one begun earliest is
/// evicted, in flight or not). Either way the floor rises to that entry's begin time, and an
/// unknown key is refused with `MaybeForgotten` while `now − floor ≤ R`, because it could be a
/// forgotten key still inside its retention. With a clock that does not go back, dropping never
/// refuses anything (a dropped entry is already older than `R`); only an eviction does, until
/// the evicted key's retention would have ended. So a key is **never** executed twice within
/// its retention, whatever the load or the clock does; size `N` for the peak number of keys
/// per retention period to avoid refusals. [`release`](Self::release) does not raise the floor:
/// the host asks for that key to be executable again.
///
/// **Memory.** A key is kept as its 128-bit fingerprint (SHA-256 with a domain tag, truncated);
/// two different keys share one with probability 2⁻¹²⁸, and then the second is answered
/// `Conflict` (or, with an identical request, the first one's outcome) — never executed twice.
/// An entry costs `24 + 32 + size_of::<Option<O>>()` bytes (rounded up to 8) plus 8 bytes of
/// hash index; with `O = u64`, `size_of::<IdempotencyStore<N, u64>>()` is `80·N + 32` bytes on
/// 64-bit targets (8: 672 bytes, 64: 5 152, 1024: 81 952).
///
/// ```
/// use paystate::guard::{Begin, IdempotencyStore, RequestFingerprint};
/// use paystate::Timestamp;
///
/// let t = Timestamp::from_secs;
/// let mut store: IdempotencyStore<64, u64> = IdempotencyStore::new();
/// let refund = RequestFingerprint::of_parts(&[b"POST", b"/refunds", b"order=42&amount=10.00"]);
///
/// assert_eq!(store.begin(b"key-1", refund, t(1_000))?, Begin::Proceed);
/// // A retry while the first attempt runs.
/// assert_eq!(store.begin(b"key-1", refund, t(1_001))?, Begin::InUse);
/// store.complete(b"key-1", 7_001, t(1_002))?; // the refund's id, say
/// assert_eq!(store.begin(b"key-1", refund, t(1_003))?, Begin::Replay(7_001));
/// // The same key for another request.
/// let other = RequestFingerprint::of_parts(&[b"POST", b"/refunds", b"order=42&amount=99.00"]);
/// assert_eq!(store.begin(b"key-1", other, t(1_004))?, Begin::Conflict);
/// # Ok::<(), paystate::guard::IdempotencyError>(())
/// ```
///
/// **Equality** is logical: two stores are equal when they have the same retention, the same
/// floor and hold the same keys with the same requests, states and outcomes, however their
/// memory is laid out inside. Equal stores answer every call alike, so a store restored from a
/// snapshot (`guard::snapshot`, feature `serde`) equals the original.
#[derive(Clone)]
pub struct IdempotencyStore<const N: usize, O> {
    /// The remembered keys; the memory's limit is the retention.
    pub(super) memory: Memory<N, Record<O>>,
}

impl<const N: usize, O: PartialEq> PartialEq for IdempotencyStore<N, O> {
    fn eq(&self, other: &Self) -> bool {
        self.memory.same(&other.memory)
    }
}

impl<const N: usize, O: Eq> Eq for IdempotencyStore<N, O> {}

impl<const N: usize, O: Clone> IdempotencyStore<N, O> {
    /// The default retention `R`, in seconds: 86 400 (24 hours, as Stripe keeps keys).
    pub const DEFAULT_RETENTION: Duration = Duration::DEFAULT_RETENTION;

    /// An empty store with the default retention of 24 h. A `const fn`, so it can initialise a
    /// `static`.
    pub const fn new() -> Self {
        Self::with_retention(Self::DEFAULT_RETENTION)
    }

    /// An empty store that remembers a key for `retention_secs` seconds after its first
    /// `begin`.
    pub const fn with_retention(retention: Duration) -> Self {
        IdempotencyStore {
            memory: Memory::new(retention.as_secs()),
        }
    }

    /// The retention `R`, in seconds.
    pub const fn retention(&self) -> Duration {
        Duration::from_secs(self.memory.limit)
    }

    /// The begin time of the newest entry that left memory (dropped or evicted), or `None` if
    /// none has. Unknown keys are refused while `now − floor ≤ R`.
    pub const fn floor(&self) -> Option<Timestamp> {
        self.memory.floor
    }

    /// How many keys are held now (some may be past retention and not yet dropped).
    pub const fn len(&self) -> usize {
        self.memory.table.len()
    }

    /// Whether no key is held.
    pub const fn is_empty(&self) -> bool {
        self.memory.table.len() == 0
    }

    /// How many keys it can hold: `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Starts a request under `key` (see the table on [`IdempotencyStore`]). Call it before
    /// executing anything; execute only on `Ok(Begin::Proceed)`.
    pub fn begin(
        &mut self,
        key: &[u8],
        request: RequestFingerprint,
        now: Timestamp,
    ) -> Result<Begin<O>, IdempotencyError> {
        let fp = key_fingerprint(key)?;
        if let Some(entry) = self.live(&fp, now) {
            let record = &entry.value;
            return Ok(if record.request != request {
                Begin::Conflict
            } else {
                match &record.outcome {
                    None => Begin::InUse,
                    Some(outcome) => Begin::Replay(outcome.clone()),
                }
            });
        }
        // Unknown (or past retention, which is the same). Refuse while a key forgotten early
        // may still be inside its retention. Dropping the expired entries below cannot change
        // this answer: each of them is older than `R` already.
        if let Some(floor) = self.memory.floor
            && !self.memory.expired(floor, now)
        {
            return Err(IdempotencyError::MaybeForgotten {
                until: floor.saturating_add(self.memory.limit).saturating_add(1),
            });
        }

        // Drop what is past retention (including this key's old entry, if any); still full:
        // evict the entry begun earliest. The new key is not that one (it was not found), and
        // no earlier eviction can be it (the floor check passed), so it may proceed; unknown
        // keys after it are refused until the evicted one's retention ends.
        self.memory.make_room(now);
        let record = Record {
            request,
            outcome: None,
        };
        // Cannot fail: the table has room now, and `fp` is not in it.
        match self.memory.table.insert(now, fp, record) {
            Ok(()) => Ok(Begin::Proceed),
            Err(_) => Err(IdempotencyError::MaybeForgotten {
                until: now.saturating_add(self.memory.limit).saturating_add(1),
            }),
        }
    }

    /// Stores `outcome` for an in-flight `key`, so that retries get
    /// [`Begin::Replay`]. Call it once the request's effects are durable, before answering the
    /// client. Errors: [`UnknownKey`](IdempotencyError::UnknownKey) if the key is not held or
    /// is past its retention at `now`, [`AlreadyCompleted`](IdempotencyError::AlreadyCompleted)
    /// if it is completed; either way nothing changes.
    pub fn complete(
        &mut self,
        key: &[u8],
        outcome: O,
        now: Timestamp,
    ) -> Result<(), IdempotencyError> {
        let fp = key_fingerprint(key)?;
        let retention = self.memory.limit;
        let entry = self
            .memory
            .table
            .find(&fp)
            .and_then(|pos| self.memory.table.get_mut(pos))
            .filter(|e| !expired(e.time, now, retention))
            .ok_or(IdempotencyError::UnknownKey)?;
        if entry.value.outcome.is_some() {
            return Err(IdempotencyError::AlreadyCompleted);
        }
        entry.value.outcome = Some(outcome);
        Ok(())
    }

    /// Forgets an in-flight `key` whose request was abandoned before it had any effect (the
    /// handler failed, the client went away), so that a retry answers
    /// [`Proceed`](Begin::Proceed) instead of [`InUse`](Begin::InUse). Release only what
    /// certainly did nothing: a released key can be executed again. It does not raise the
    /// floor. Errors: [`UnknownKey`](IdempotencyError::UnknownKey) if the key is not held,
    /// [`AlreadyCompleted`](IdempotencyError::AlreadyCompleted) if it is completed (a stored
    /// outcome is never dropped on request); either way nothing changes.
    pub fn release(&mut self, key: &[u8]) -> Result<(), IdempotencyError> {
        let fp = key_fingerprint(key)?;
        let pos = self
            .memory
            .table
            .find(&fp)
            .ok_or(IdempotencyError::UnknownKey)?;
        let completed = self
            .memory
            .table
            .get(pos)
            .is_some_and(|e| e.value.outcome.is_some());
        if completed {
            return Err(IdempotencyError::AlreadyCompleted);
        }
        self.memory
            .table
            .remove_at(pos)
            .map(|_| ())
            .ok_or(IdempotencyError::UnknownKey)
    }

    /// The entry for `fp` if it is held and within retention at `now`.
    fn live(&self, fp: &Fingerprint, now: Timestamp) -> Option<&super::slots::Entry<Record<O>>> {
        self.memory.live(fp, now)
    }
}

impl<const N: usize, O: Clone> Default for IdempotencyStore<N, O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, O> fmt::Debug for IdempotencyStore<N, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyStore")
            .field("capacity", &N)
            .field("len", &self.memory.table.len())
            .field("retention", &self.memory.limit)
            .field("floor", &self.memory.floor)
            .finish()
    }
}

fn key_fingerprint(key: &[u8]) -> Result<Fingerprint, IdempotencyError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(IdempotencyError::InvalidKey { len: key.len() });
    }
    Ok(fingerprint(b"paystate/idempotency-key/v1\0", key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_consistent_through_drops_evictions_and_releases() {
        let t = Timestamp::from_secs;
        let mut s: IdempotencyStore<4, u32> =
            IdempotencyStore::with_retention(crate::time::Duration::from_secs(10));
        let req = RequestFingerprint::of(b"r");
        for i in 0u32..300 {
            let key = (i % 9).to_le_bytes();
            let now = t(1_000 + u64::from((i * 7) % 31));
            match i % 4 {
                0 | 1 => {
                    let _ = s.begin(&key, req, now);
                }
                2 => {
                    let _ = s.complete(&key, i, now);
                }
                _ => {
                    let _ = s.release(&key);
                }
            }
            assert!(s.memory.table.is_consistent(), "after operation {i}");
            assert!(s.len() <= 4);
        }
    }
}
