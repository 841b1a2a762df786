//! The replay guard of docs/spec.md §3.1, for webhooks that carry a timestamp and a nonce.

use core::fmt;

use super::fingerprint;
use super::slots::{Fingerprint, Memory};
use crate::time::{Duration, Timestamp, WindowError, check_window};

/// Longest nonce accepted, in bytes. WeChat Pay v3 sends 32.
pub const MAX_NONCE_LEN: usize = 64;

/// Why a webhook request was refused. The host answers it with an error status and does not
/// process it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ReplayError {
    /// The timestamp is more than the tolerance in the past, or at or below the floor (an
    /// entry that recent has already left memory, so a replay could not be recognised), or the
    /// guard is full of newer requests.
    Stale,
    /// The timestamp is more than the tolerance in the future.
    FromFuture,
    /// The host's signature check failed. The guard is unchanged.
    BadSignature,
    /// The nonce was seen before, within the tolerance.
    Replayed,
    /// The nonce is empty or longer than [`MAX_NONCE_LEN`] bytes.
    InvalidNonce {
        /// The length that was refused.
        len: usize,
    },
}

impl ReplayError {
    /// The error code used by the JSON-lines driver and in logs: `"stale"`, `"from_future"`,
    /// `"bad_signature"`, `"replayed"` or `"invalid_nonce"`.
    pub const fn code(&self) -> &'static str {
        match self {
            ReplayError::Stale => "stale",
            ReplayError::FromFuture => "from_future",
            ReplayError::BadSignature => "bad_signature",
            ReplayError::Replayed => "replayed",
            ReplayError::InvalidNonce { .. } => "invalid_nonce",
        }
    }
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::InvalidNonce { len } => {
                write!(
                    f,
                    "invalid_nonce: {len} bytes (must be 1..={MAX_NONCE_LEN})"
                )
            }
            other => f.write_str(other.code()),
        }
    }
}

impl core::error::Error for ReplayError {}

/// Refuses stale, future-dated and replayed webhook requests, in fixed memory (docs/spec.md §3.1).
///
/// `N` is how many requests it remembers (at least 1). A request is a `(timestamp, nonce)` pair
/// from a message whose signature covers both, checked against the host's `now` with a
/// two-sided tolerance `T` (default 300 s). The order is fixed:
///
/// 1. `now − timestamp > T` → [`Stale`](ReplayError::Stale); `timestamp − now > T` →
///    [`FromFuture`](ReplayError::FromFuture).
/// 2. `timestamp ≤ floor` → [`Stale`](ReplayError::Stale).
/// 3. The host verifies the signature; a failure is
///    [`BadSignature`](ReplayError::BadSignature) and changes nothing, so an attacker without
///    the key can neither fill the guard nor raise its floor.
/// 4. A nonce equal to a remembered one → [`Replayed`](ReplayError::Replayed); otherwise the
///    request is accepted and remembered.
/// 5. Whenever an entry leaves memory, the floor rises to its timestamp. Entries leave when
///    recording finds them expired (`now − timestamp > T`), and when the guard is full and none
///    is expired: then the entry with the oldest timestamp is evicted, one per recording. The
///    new request is accepted and remembered all the same, even if its own timestamp is not
///    above the new floor: a replay of it is refused as remembered while it is, and as at or
///    below the floor once it leaves.
///
/// So a replay of an accepted `(timestamp, nonce)` is **never** accepted, however the load or
/// the clock behaves: the pair is either still remembered (→ `Replayed`) or its timestamp is at
/// or below the floor (→ `Stale`). While fewer than `N` unexpired requests are remembered
/// nothing is evicted, and, with a clock that does not go back, every in-window request with a
/// new nonce is accepted. Under overload the cost is refusing some old-but-in-window requests;
/// a clock that goes back by more than `T` after entries were dropped makes requests stale until
/// it catches up.
///
/// [`admit`](Self::admit) runs the whole order with the signature check as a closure;
/// [`check_window`](Self::check_window) and [`record`](Self::record) are the two halves for a
/// host that verifies in between by other means. Any refusal leaves the guard unchanged.
///
/// **Memory.** Each remembered nonce is kept as a 128-bit fingerprint: the first 16 bytes of
/// SHA-256 over a domain tag and the nonce, computed once per call. An exact replay has the
/// same fingerprint, so it is always recognised; two different nonces share one with
/// probability 2⁻¹²⁸, and even then the only effect is a wrong `Replayed` for the second one,
/// never an accepted replay. An entry costs 24 bytes plus 8 bytes of hash index;
/// `size_of::<ReplayGuard<N>>()` is `32·N + 32` bytes on 64-bit targets (8: 288 bytes,
/// 64: 2 080, 1024: 32 800).
///
/// **Time.** A lookup hashes the nonce once and probes a hash index at most half full
/// (O(1) expected); recording and each eviction are O(log N). The index is not keyed, so a
/// party able to sign messages could choose nonces that collide in it and slow lookups to
/// O(N) — correctness does not depend on it.
///
/// ```
/// use paystate::guard::{ReplayError, ReplayGuard};
/// use paystate::Timestamp;
///
/// let t = Timestamp::from_secs;
/// let mut guard: ReplayGuard<64> = ReplayGuard::new();
/// let nonce = b"5K8264ILTKCH16CQ2502SI8ZNMTM67VS";
///
/// assert_eq!(guard.admit(t(1_000), nonce, t(1_010), || true), Ok(()));
/// assert_eq!(guard.admit(t(1_000), nonce, t(1_020), || true), Err(ReplayError::Replayed));
/// assert_eq!(guard.admit(t(1_000), b"other", t(1_301), || true), Err(ReplayError::Stale));
/// assert_eq!(guard.admit(t(2_000), b"other", t(1_600), || true), Err(ReplayError::FromFuture));
///
/// // A forged request is refused before it can touch the guard.
/// let before = guard.clone();
/// assert_eq!(guard.admit(t(1_030), b"forged", t(1_030), || false), Err(ReplayError::BadSignature));
/// assert_eq!(guard, before);
/// ```
///
/// **Equality** is logical: two guards are equal when they have the same tolerance, the same
/// floor and remember the same `(timestamp, nonce)` pairs, however their memory is laid out
/// inside. Equal guards answer every request alike, so a guard restored from a snapshot
/// (`guard::snapshot`, feature `serde`) equals the original.
#[derive(Clone)]
pub struct ReplayGuard<const N: usize> {
    /// The remembered requests; the memory's limit is the tolerance.
    pub(super) memory: Memory<N, ()>,
}

impl<const N: usize> PartialEq for ReplayGuard<N> {
    fn eq(&self, other: &Self) -> bool {
        self.memory.same(&other.memory)
    }
}

impl<const N: usize> Eq for ReplayGuard<N> {}

impl<const N: usize> ReplayGuard<N> {
    /// The default tolerance `T`, in seconds: 300 (five minutes, as WeChat Pay and Stripe use).
    pub const DEFAULT_TOLERANCE: Duration = Duration::DEFAULT_TOLERANCE;

    /// An empty guard with the default tolerance of 300 s. A `const fn`, so it can initialise a
    /// `static`.
    pub const fn new() -> Self {
        Self::with_tolerance(Self::DEFAULT_TOLERANCE)
    }

    /// An empty guard that accepts timestamps up to `tolerance_secs` seconds away from `now`,
    /// in either direction.
    pub const fn with_tolerance(tolerance: Duration) -> Self {
        ReplayGuard {
            memory: Memory::new(tolerance.as_secs()),
        }
    }

    /// The tolerance `T`, in seconds.
    pub const fn tolerance(&self) -> Duration {
        Duration::from_secs(self.memory.limit)
    }

    /// The timestamp of the newest entry that ever left memory, or `None` if none has.
    /// Every request at or below it is refused as stale.
    pub const fn floor(&self) -> Option<Timestamp> {
        self.memory.floor
    }

    /// How many requests are remembered now.
    pub const fn len(&self) -> usize {
        self.memory.table.len()
    }

    /// Whether no request is remembered.
    pub const fn is_empty(&self) -> bool {
        self.memory.table.len() == 0
    }

    /// How many requests it can remember: `N`.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Steps 1–2: the two-sided window and the floor. Read-only; call it before verifying the
    /// signature so that clearly stale or future-dated messages cost no signature check.
    pub fn check_window(&self, timestamp: Timestamp, now: Timestamp) -> Result<(), ReplayError> {
        // Step 1 is the same two-sided window every webhook scheme checks.
        let tolerance = Duration::from_secs(self.memory.limit);
        check_window(timestamp, now, tolerance).map_err(|e| match e {
            WindowError::FromFuture { .. } => ReplayError::FromFuture,
            _ => ReplayError::Stale,
        })?;
        match self.memory.floor {
            Some(floor) if timestamp <= floor => Err(ReplayError::Stale),
            _ => Ok(()),
        }
    }

    /// Steps 1–2 again, then 4–5: refuses a replayed nonce, else remembers the request (dropping
    /// expired entries and, when full, evicting the oldest, which raises the floor).
    ///
    /// Call it only for a request whose signature the host has verified, after
    /// [`check_window`](Self::check_window) — or use [`admit`](Self::admit), which does all
    /// three in order. On any error the guard is unchanged.
    pub fn record(
        &mut self,
        timestamp: Timestamp,
        nonce: &[u8],
        now: Timestamp,
    ) -> Result<(), ReplayError> {
        let fp = nonce_fingerprint(nonce)?;
        self.check_window(timestamp, now)?;
        self.record_fingerprint(timestamp, fp, now)
    }

    /// The whole order of §3.1: the nonce's length, the window and the floor, then
    /// `signature_valid()` — called only if those pass — then the replay check and recording.
    ///
    /// `signature_valid` is the host's verification of the message's signature over the
    /// timestamp, the nonce and the body; if it returns `false` the answer is
    /// [`BadSignature`](ReplayError::BadSignature) and the guard is unchanged. Accept the
    /// message only on `Ok(())`.
    pub fn admit(
        &mut self,
        timestamp: Timestamp,
        nonce: &[u8],
        now: Timestamp,
        signature_valid: impl FnOnce() -> bool,
    ) -> Result<(), ReplayError> {
        let fp = nonce_fingerprint(nonce)?;
        self.check_window(timestamp, now)?;
        if !signature_valid() {
            return Err(ReplayError::BadSignature);
        }
        self.record_fingerprint(timestamp, fp, now)
    }

    /// Steps 4–5 for a request that passed the window and the signature check.
    fn record_fingerprint(
        &mut self,
        timestamp: Timestamp,
        fp: Fingerprint,
        now: Timestamp,
    ) -> Result<(), ReplayError> {
        // Decide first, read-only, so that a refusal changes nothing.
        // An expired entry is as good as gone: it is dropped below with the others.
        if self.memory.live(&fp, now).is_some() {
            return Err(ReplayError::Replayed);
        }
        // Expired entries go first; every one of them is older than `timestamp`, which passed
        // the window, so the floor stays below it. Still full and nothing could be dropped: the
        // entry with the oldest timestamp goes, and the floor rises to it (§3.1 step 5). The
        // request itself is still accepted and remembered (step 4), even if its timestamp is
        // not above the new floor: a replay of it is then refused as remembered or, once it
        // leaves memory too, as at or below the floor.
        self.memory.make_room(now);
        // Cannot fail: the table has room now, and `fp` is not in it.
        self.memory
            .table
            .insert(timestamp, fp, ())
            .map_err(|()| ReplayError::Stale)
    }
}

#[cfg(fuzzing)]
impl<const N: usize> ReplayGuard<N> {
    /// Whether the memory is well formed: the hash index finds every remembered entry and the
    /// heap is in order. Only in fuzzing builds
    /// (`--cfg fuzzing`), for the `replay_guard` target.
    #[doc(hidden)]
    pub fn is_consistent(&self) -> bool {
        self.memory.table.is_consistent()
    }
}

impl<const N: usize> Default for ReplayGuard<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> fmt::Debug for ReplayGuard<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayGuard")
            .field("capacity", &N)
            .field("len", &self.memory.table.len())
            .field("tolerance", &self.memory.limit)
            .field("floor", &self.memory.floor)
            .finish()
    }
}

fn nonce_fingerprint(nonce: &[u8]) -> Result<Fingerprint, ReplayError> {
    if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
        return Err(ReplayError::InvalidNonce { len: nonce.len() });
    }
    Ok(fingerprint(b"paystate/nonce/v1\0", nonce))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_consistent_through_drops_and_evictions() {
        let t = Timestamp::from_secs;
        let mut g: ReplayGuard<4> =
            ReplayGuard::with_tolerance(crate::time::Duration::from_secs(10));
        let mut floor_before = None;
        for i in 0u64..200 {
            let nonce = i.to_le_bytes();
            // A clock that wanders back and forth; some requests are refused.
            let now = 1_000 + (i * 7) % 23;
            let _ = g.record(t(now - (i % 5)), &nonce, t(now));
            assert!(g.memory.table.is_consistent(), "after request {i}");
            assert!(g.len() <= 4);
            assert!(g.floor() >= floor_before, "the floor never goes down");
            floor_before = g.floor();
        }
    }
}
