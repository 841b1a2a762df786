//! The replay guard (docs/spec.md §3.1) under random request streams and a clock that stands
//! still, runs backwards and jumps.
//!
//! What must hold whatever the stream, checked after every request:
//! - an accepted request lies within the tolerance of `now`, on both sides;
//! - a `(timestamp, nonce)` pair accepted once is never accepted again (exact replays are also
//!   sent on purpose, long after the original);
//! - a refusal, and above all a bad signature, leaves the guard unchanged; the floor never
//!   goes down; the guard never holds more than its capacity; its memory is well formed;
//! - while the clock has never gone back and nothing was ever evicted for room, every fresh
//!   in-window request with a never-accepted nonce is accepted (§3.1 step 6);
//! - the answers, the floor and the size agree with a model written from §3.1 and the guard's
//!   documented eviction rule, with plain vectors and full nonces;
//! - a restart at any point — the guard encoded into its snapshot and decoded back (docs/spec.md
//!   §5) — changes nothing: the restored guard equals the original, is well formed, encodes to
//!   the same bytes, and the stream goes on against the same model.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use paystate::Timestamp;
use paystate::guard::{MAX_NONCE_LEN, ReplayError, ReplayGuard, snapshot};
use paystate_fuzz::no_alloc;

/// The guard's fingerprint of a nonce, used only to break ties between equally old entries.
fn nonce_fingerprint(nonce: &[u8]) -> [u8; 16] {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(b"paystate/nonce/v1\0")
        .chain_update(nonce)
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

#[derive(Arbitrary, Debug)]
struct Stream {
    capacity: Capacity,
    tolerance: Tolerance,
    start: u64,
    requests: Vec<Request>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Capacity {
    One,
    Three,
    Eight,
    SixtyFour,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Tolerance {
    Default,
    Secs(u8),
    Any(u64),
}

#[derive(Arbitrary, Debug)]
enum Request {
    /// A request from the stream.
    New {
        dt: Dt,
        timestamp: Ts,
        nonce: Nonce,
        signature_valid: bool,
        /// Through `check_window` + `record` instead of `admit`.
        split: bool,
    },
    /// An exact copy of a request accepted earlier, signature and all.
    Replay { which: u16, dt: Dt, split: bool },
    /// The host restarts: the guard goes through its snapshot and comes back.
    Restart,
}

/// How the host's clock moves before a request.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Dt {
    Same,
    Forward(u16),
    Back(u16),
    Jump(u64),
}

/// The request's timestamp, relative to `now` or not.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Ts {
    Now,
    Behind(u16),
    Ahead(u16),
    At(u64),
}

#[derive(Arbitrary, Debug)]
enum Nonce {
    /// From a pool of 8, so nonces repeat.
    Pool(u8),
    /// Never used before in this stream.
    Fresh,
    Bytes(Vec<u8>),
}

/// The guard as §3.1 and its docs describe it.
struct Model {
    capacity: usize,
    tolerance: u64,
    floor: Option<u64>,
    /// Remembered `(timestamp, nonce)`, in no particular order.
    entries: Vec<(u64, Vec<u8>)>,
}

impl Model {
    fn expired(&self, ts: u64, now: u64) -> bool {
        now.checked_sub(ts).is_some_and(|age| age > self.tolerance)
    }

    fn window(&self, ts: u64, now: u64) -> Result<(), ReplayError> {
        if now.checked_sub(ts).is_some_and(|age| age > self.tolerance) {
            return Err(ReplayError::Stale);
        }
        if ts
            .checked_sub(now)
            .is_some_and(|ahead| ahead > self.tolerance)
        {
            return Err(ReplayError::FromFuture);
        }
        if self.floor.is_some_and(|f| ts <= f) {
            return Err(ReplayError::Stale);
        }
        Ok(())
    }

    fn forget(&mut self, gone: u64) {
        self.floor = Some(self.floor.map_or(gone, |f| f.max(gone)));
    }

    /// Returns the answer and whether room was made by evicting unexpired entries.
    fn admit(
        &mut self,
        ts: u64,
        nonce: &[u8],
        now: u64,
        signature_valid: bool,
    ) -> (Result<(), ReplayError>, bool) {
        if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
            return (Err(ReplayError::InvalidNonce { len: nonce.len() }), false);
        }
        if let Err(e) = self.window(ts, now) {
            return (Err(e), false);
        }
        if !signature_valid {
            return (Err(ReplayError::BadSignature), false);
        }
        if let Some((t, _)) = self.entries.iter().find(|(_, n)| n == nonce)
            && !self.expired(*t, now)
        {
            return (Err(ReplayError::Replayed), false);
        }
        let expired: Vec<u64> = self
            .entries
            .iter()
            .map(|(t, _)| *t)
            .filter(|t| self.expired(*t, now))
            .collect();
        for t in expired {
            self.forget(t);
        }
        let tolerance = self.tolerance;
        self.entries
            .retain(|(t, _)| now.checked_sub(*t).is_none_or(|age| age <= tolerance));
        let mut evicted = false;
        // Full and nothing expired: one entry leaves, the oldest, ties broken as the guard
        // breaks them (by the nonce's fingerprint). The request is accepted all the same.
        if self.entries.len() >= self.capacity
            && let Some((i, oldest)) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, (t, n))| (*t, nonce_fingerprint(n)))
                .map(|(i, (t, _))| (i, *t))
        {
            self.entries.remove(i);
            self.forget(oldest);
            evicted = true;
        }
        self.entries.push((ts, nonce.to_vec()));
        (Ok(()), evicted)
    }
}

fn run<const N: usize>(s: &Stream) {
    let tolerance = match s.tolerance {
        Tolerance::Default => ReplayGuard::<N>::DEFAULT_TOLERANCE.as_secs(),
        Tolerance::Secs(t) => u64::from(t),
        Tolerance::Any(t) => t,
    };
    let mut guard: ReplayGuard<N> = if matches!(s.tolerance, Tolerance::Default) {
        ReplayGuard::new()
    } else {
        ReplayGuard::with_tolerance(paystate::Duration::from_secs(tolerance))
    };
    assert_eq!(guard.tolerance().as_secs(), tolerance);
    assert_eq!(guard.capacity(), N);
    let mut model = Model {
        capacity: N,
        tolerance,
        floor: None,
        entries: Vec::new(),
    };
    let mut now = s.start;
    // Every accepted request ever, to recognise replays after the guard forgot them.
    let mut accepted: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut fresh = 0u64;
    let mut clock_went_back = false;
    let mut ever_evicted = false;

    for (i, request) in s.requests.iter().enumerate() {
        let (dt, ts, nonce, signature_valid, split) = match request {
            Request::New {
                dt,
                timestamp,
                nonce,
                signature_valid,
                split,
            } => {
                let next = step(now, *dt);
                let ts = match *timestamp {
                    Ts::Now => next,
                    Ts::Behind(d) => next.saturating_sub(u64::from(d)),
                    Ts::Ahead(d) => next.saturating_add(u64::from(d)),
                    Ts::At(t) => t,
                };
                let nonce = match nonce {
                    Nonce::Pool(n) => format!("nonce-{}", n % 8).into_bytes(),
                    Nonce::Fresh => {
                        fresh += 1;
                        format!("fresh-{fresh}").into_bytes()
                    }
                    Nonce::Bytes(b) => b.clone(),
                };
                (*dt, ts, nonce, *signature_valid, *split)
            }
            Request::Replay { which, dt, split } => {
                if accepted.is_empty() {
                    continue;
                }
                let (ts, nonce) = accepted[usize::from(*which) % accepted.len()].clone();
                (*dt, ts, nonce, true, *split)
            }
            Request::Restart => {
                guard = restart(&guard, i);
                continue;
            }
        };
        let next = step(now, dt);
        clock_went_back |= next < now;
        now = next;

        let before = guard.clone();
        let floor_before = guard.floor();
        let (t, n) = (Timestamp::from_secs(ts), Timestamp::from_secs(now));
        let got = no_alloc("ReplayGuard", || {
            if split {
                match guard.check_window(t, n) {
                    Err(e) => Err(e),
                    Ok(()) if !signature_valid => Err(ReplayError::BadSignature),
                    Ok(()) => guard.record(t, &nonce, n),
                }
            } else {
                guard.admit(t, &nonce, n, || signature_valid)
            }
        });
        // `check_window` does not look at the nonce: a split call reports a bad nonce only
        // once it reaches `record`.
        let got = match got {
            Err(e)
                if split
                    && nonce_invalid(&nonce)
                    && e != ReplayError::InvalidNonce { len: nonce.len() } =>
            {
                assert_eq!(guard, before, "request {i}: refused, but the guard changed");
                Err(ReplayError::InvalidNonce { len: nonce.len() })
            }
            other => other,
        };
        let fresh_nonce = !accepted.iter().any(|(_, a)| *a == nonce);
        let unexpired = model
            .entries
            .iter()
            .filter(|(t, _)| !model.expired(*t, now))
            .count();
        let (want, evicted) = model.admit(ts, &nonce, now, signature_valid);
        ever_evicted |= evicted;

        let ctx = || {
            format!(
                "request {i}: timestamp {ts}, nonce {:?}, now {now}, signature {signature_valid}, \
                 split {split}, guard before {before:?}",
                String::from_utf8_lossy(&nonce)
            )
        };
        assert_eq!(got, want, "{}: guard and model disagree", ctx());
        assert!(
            guard.is_consistent(),
            "{}: memory is not well formed",
            ctx()
        );
        assert!(guard.len() <= N, "{}", ctx());
        assert_eq!(guard.len(), model.entries.len(), "{}", ctx());
        assert_eq!(
            guard.floor().map(Timestamp::as_secs),
            model.floor,
            "{}",
            ctx()
        );
        assert!(
            guard.floor() >= floor_before,
            "{}: the floor went down",
            ctx()
        );
        match got {
            Ok(()) => {
                let age = now.abs_diff(ts);
                assert!(age <= tolerance, "{}: accepted {age} s away", ctx());
                assert!(
                    floor_before.is_none_or(|f| t > f),
                    "{}: accepted at or below the floor",
                    ctx()
                );
                assert!(
                    !accepted.iter().any(|(at, an)| *at == ts && *an == nonce),
                    "{}: accepted a replay",
                    ctx()
                );
                accepted.push((ts, nonce));
            }
            Err(e) => {
                assert_eq!(
                    guard,
                    before,
                    "{}: refused ({e:?}) but the guard changed",
                    ctx()
                );
                // §3.1 step 6, for a clock that never went back and a guard that never had
                // to evict: a fresh in-window request with a new nonce is accepted.
                let in_window = now.abs_diff(ts) <= tolerance;
                if !clock_went_back
                    && !ever_evicted
                    && in_window
                    && signature_valid
                    && fresh_nonce
                    && !nonce_invalid(&nonce)
                    && unexpired < N
                {
                    panic!("{}: refused ({e:?}) with room and a new nonce", ctx());
                }
            }
        }
    }
}

/// Encodes the guard, decodes it back and checks that nothing changed.
fn restart<const N: usize>(guard: &ReplayGuard<N>, i: usize) -> ReplayGuard<N> {
    let mut buf = vec![0u8; snapshot::replay_guard_max_size(N)];
    let len = no_alloc("encode_replay_guard", || {
        snapshot::encode_replay_guard(guard, &mut buf).map(|b| b.len())
    });
    let len = len.unwrap_or_else(|e| panic!("request {i}: encoding {guard:?} failed: {e}"));
    let bytes = &buf[..len];
    let restored: ReplayGuard<N> = no_alloc("decode_replay_guard", || {
        snapshot::decode_replay_guard(bytes)
    })
    .unwrap_or_else(|e| panic!("request {i}: decoding {guard:?} failed: {e}"));
    assert_eq!(restored, *guard, "request {i}: restored guard differs");
    assert!(
        restored.is_consistent(),
        "request {i}: restored memory is not well formed"
    );
    let mut again = vec![0u8; bytes.len()];
    let again = snapshot::encode_replay_guard(&restored, &mut again)
        .unwrap_or_else(|e| panic!("request {i}: re-encoding failed: {e}"));
    assert_eq!(
        *again, *bytes,
        "request {i}: the restored guard encodes differently"
    );
    restored
}

fn nonce_invalid(nonce: &[u8]) -> bool {
    nonce.is_empty() || nonce.len() > MAX_NONCE_LEN
}

fn step(now: u64, dt: Dt) -> u64 {
    match dt {
        Dt::Same => now,
        Dt::Forward(s) => now.saturating_add(u64::from(s)),
        Dt::Back(s) => now.saturating_sub(u64::from(s)),
        Dt::Jump(t) => t,
    }
}

fuzz_target!(|s: Stream| {
    match s.capacity {
        Capacity::One => run::<1>(&s),
        Capacity::Three => run::<3>(&s),
        Capacity::Eight => run::<8>(&s),
        Capacity::SixtyFour => run::<64>(&s),
    }
});
