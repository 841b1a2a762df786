//! The guards of docs/spec.md §3 over random request streams, with a clock that jumps ahead, goes
//! back and visits the ends of time.
//!
//! Each guard is checked two ways: step by step against a naive model that follows the spec's
//! words with vectors and linear scans, and globally against the promises a host relies on —
//! a replayed `(timestamp, nonce)` is never accepted, nothing outside the window is accepted,
//! a refusal leaves the guard bit-for-bit unchanged, a key is never executed twice within its
//! retention.

use std::collections::{HashMap, HashSet};

use paystate::Timestamp;
use paystate::guard::{
    Begin, IdempotencyError, IdempotencyStore, ReplayError, ReplayGuard, RequestFingerprint,
};
use proptest::prelude::*;
use proptest::sample::Index;

fn ts(secs: u64) -> Timestamp {
    Timestamp::from_secs(secs)
}

/// How the host's clock moves before a call.
#[derive(Debug, Clone)]
enum Clock {
    /// Forward or back by this many seconds.
    By(i64),
    /// Jumps to this time (the ends of time included).
    To(u64),
}

fn clock(scale: i64) -> impl Strategy<Value = Clock> {
    prop_oneof![
        12 => (-2i64..=scale).prop_map(Clock::By),
        3 => (-4 * scale..=4 * scale).prop_map(Clock::By),
        1 => (-1_000 * scale..=1_000 * scale).prop_map(Clock::By),
        1 => prop_oneof![
            Just(0u64),
            Just(1u64),
            (0u64..=10).prop_map(|d| u64::MAX - d),
            Just(1_000_000u64),
        ]
        .prop_map(Clock::To),
    ]
}

fn advance(now: u64, c: &Clock) -> u64 {
    match *c {
        Clock::By(d) => now.saturating_add_signed(d),
        Clock::To(t) => t,
    }
}

// ------------------------------------------------------------------------- replay guard

/// The naive model of §3.1: every remembered request in a vector, the floor, and the steps
/// in the spec's order.
#[derive(Debug)]
struct ReplayModel {
    capacity: usize,
    tolerance: u64,
    floor: Option<u64>,
    memory: Vec<(u64, Vec<u8>)>,
}

impl ReplayModel {
    fn expired(&self, t: u64, now: u64) -> bool {
        now >= t && now - t > self.tolerance
    }

    fn in_window(&self, t: u64, now: u64) -> bool {
        t.abs_diff(now) <= self.tolerance
    }

    fn window(&self, t: u64, now: u64) -> Result<(), &'static str> {
        if now >= t && now - t > self.tolerance {
            return Err("stale");
        }
        if t > now && t - now > self.tolerance {
            return Err("from_future");
        }
        if self.floor.is_some_and(|f| t <= f) {
            return Err("stale");
        }
        Ok(())
    }

    fn live(&self, now: u64) -> usize {
        self.memory
            .iter()
            .filter(|(t, _)| !self.expired(*t, now))
            .count()
    }

    fn admit(&mut self, t: u64, nonce: &[u8], now: u64, sig: bool) -> Result<(), &'static str> {
        if nonce.is_empty() || nonce.len() > 64 {
            return Err("invalid_nonce");
        }
        self.window(t, now)?;
        if !sig {
            return Err("bad_signature");
        }
        if self
            .memory
            .iter()
            .any(|(m, n)| n == nonce && !self.expired(*m, now))
        {
            return Err("replayed");
        }
        let gone: Vec<u64> = self
            .memory
            .iter()
            .map(|(m, _)| *m)
            .filter(|m| self.expired(*m, now))
            .collect();
        for m in gone {
            self.floor = self.floor.max(Some(m));
        }
        let (tol, n) = (self.tolerance, now);
        self.memory.retain(|(m, _)| !(n >= *m && n - *m > tol));
        if self.memory.len() == self.capacity {
            // One entry leaves: the oldest, ties broken as the guard breaks them (by the
            // nonce's fingerprint), so that which nonce is still remembered agrees exactly.
            let (i, (oldest, _)) = self
                .memory
                .iter()
                .enumerate()
                .min_by_key(|(_, (m, n))| (*m, nonce_fingerprint(n)))
                .unwrap();
            self.floor = self.floor.max(Some(*oldest));
            self.memory.remove(i);
        }
        self.memory.push((t, nonce.to_vec()));
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Request {
    /// A request with a new or pooled nonce, `skew` seconds from `now`.
    Fresh { skew: i64, nonce: Vec<u8> },
    /// An exact copy of an earlier accepted request.
    Replay(Index),
    /// A timestamp anywhere in `u64`.
    Wild { at: u64, nonce: Vec<u8> },
}

#[derive(Debug, Clone)]
struct Call {
    clock: Clock,
    request: Request,
    signature_valid: bool,
    /// Use `check_window` + `record` instead of `admit`.
    split: bool,
}

fn nonce() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        10 => (0u8..30).prop_map(|i| format!("nonce-{i}").into_bytes()),
        2 => proptest::collection::vec(any::<u8>(), 1..=64),
        1 => proptest::collection::vec(any::<u8>(), 0..=70),
    ]
}

fn call(tolerance: i64) -> impl Strategy<Value = Call> {
    let request = prop_oneof![
        6 => (-tolerance - 3..=tolerance + 3, nonce())
            .prop_map(|(skew, nonce)| Request::Fresh { skew, nonce }),
        3 => any::<Index>().prop_map(Request::Replay),
        1 => (any::<u64>(), nonce()).prop_map(|(at, nonce)| Request::Wild { at, nonce }),
    ];
    (
        clock(tolerance),
        request,
        prop::bool::weighted(0.85),
        any::<bool>(),
    )
        .prop_map(|(clock, request, signature_valid, split)| Call {
            clock,
            request,
            signature_valid,
            split,
        })
}

fn run_replay_guard<const N: usize>(tolerance: u64, calls: &[Call]) -> Result<(), TestCaseError> {
    let mut guard: ReplayGuard<N> =
        ReplayGuard::with_tolerance(paystate::Duration::from_secs(tolerance));
    let mut model = ReplayModel {
        capacity: N,
        tolerance,
        floor: None,
        memory: Vec::new(),
    };
    let mut now = 1_000_000u64;
    let mut accepted: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut ever: HashSet<(u64, Vec<u8>)> = HashSet::new();

    for c in calls {
        now = advance(now, &c.clock);
        let (t, nonce) = match &c.request {
            Request::Fresh { skew, nonce } => (now.saturating_add_signed(*skew), nonce.clone()),
            Request::Wild { at, nonce } => (*at, nonce.clone()),
            Request::Replay(i) if !accepted.is_empty() => accepted[i.index(accepted.len())].clone(),
            Request::Replay(_) => (now, b"first".to_vec()),
        };

        // What the spec promises below capacity, stated on the state before the call.
        let fresh = !nonce.is_empty()
            && nonce.len() <= 64
            && model.in_window(t, now)
            && model.floor.is_none_or(|f| t > f)
            && !model
                .memory
                .iter()
                .any(|(m, n)| *n == nonce && !model.expired(*m, now));
        let below_capacity = model.live(now) < N;
        let verify_expected =
            !nonce.is_empty() && nonce.len() <= 64 && model.window(t, now).is_ok();

        let before = guard.clone();
        let mut verified = false;
        let got = if c.split {
            let window = if nonce.is_empty() || nonce.len() > 64 {
                Err(ReplayError::InvalidNonce { len: nonce.len() })
            } else {
                guard.check_window(ts(t), ts(now))
            };
            window.and_then(|()| {
                verified = true;
                if c.signature_valid {
                    guard.record(ts(t), &nonce, ts(now))
                } else {
                    Err(ReplayError::BadSignature)
                }
            })
        } else {
            guard.admit(ts(t), &nonce, ts(now), || {
                verified = true;
                c.signature_valid
            })
        };
        let expected = model.admit(t, &nonce, now, c.signature_valid);

        prop_assert_eq!(got.map_err(|e| e.code()), expected, "t={} now={}", t, now);
        prop_assert_eq!(guard.len(), model.memory.len());
        prop_assert_eq!(guard.floor(), model.floor.map(ts));
        prop_assert!(guard.len() <= N);
        // The signature is checked exactly when the nonce, the window and the floor pass.
        prop_assert_eq!(verified, verify_expected);

        match got {
            Ok(()) => {
                prop_assert!(t.abs_diff(now) <= tolerance, "accepted outside the window");
                prop_assert!(
                    ever.insert((t, nonce.clone())),
                    "accepted a replay of ({}, {:?})",
                    t,
                    nonce
                );
                accepted.push((t, nonce));
            }
            Err(e) => {
                prop_assert!(guard == before, "{:?} changed the guard", e);
                if fresh && below_capacity && c.signature_valid {
                    prop_assert!(false, "false rejection {:?} below capacity", e);
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Capacity 4 with a short window: the guard is full most of the time and evicts.
    #[test]
    fn replay_guard_at_capacity_4(calls in proptest::collection::vec(call(20), 1..250)) {
        run_replay_guard::<4>(20, &calls)?;
    }

    /// Capacity 8, the smallest the driver offers.
    #[test]
    fn replay_guard_at_capacity_8(calls in proptest::collection::vec(call(60), 1..250)) {
        run_replay_guard::<8>(60, &calls)?;
    }

    /// Capacity 64, the driver's default: rarely full, so mostly the window and the floor.
    #[test]
    fn replay_guard_at_capacity_64(calls in proptest::collection::vec(call(300), 1..250)) {
        run_replay_guard::<64>(300, &calls)?;
    }
}

// ------------------------------------------------------------------- idempotency store

#[derive(Debug, Clone)]
enum Command {
    Begin { key: Vec<u8>, request: u8 },
    Complete { key: Vec<u8>, outcome: u32 },
    Release { key: Vec<u8> },
}

fn key(pool: u8) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        20 => (0..pool).prop_map(|i| format!("key-{i}").into_bytes()),
        1 => prop_oneof![Just(Vec::new()), Just(vec![b'k'; 256]), Just(vec![b'k'; 255])],
    ]
}

fn command(pool: u8, retention: i64) -> impl Strategy<Value = (Clock, Command)> {
    let cmd = prop_oneof![
        5 => (key(pool), 0u8..3).prop_map(|(key, request)| Command::Begin { key, request }),
        3 => (key(pool), any::<u32>()).prop_map(|(key, outcome)| Command::Complete { key, outcome }),
        1 => key(pool).prop_map(|key| Command::Release { key }),
    ];
    (clock(retention), cmd)
}

fn request(i: u8) -> RequestFingerprint {
    RequestFingerprint::of_parts(&[b"POST", b"/v1/refunds", &[i]])
}

type Answer = Result<Option<Begin<u32>>, IdempotencyError>;

/// The naive model of §3.2 without eviction: a map from key to (begin time, request, outcome).
#[derive(Debug)]
struct StoreModel {
    retention: u64,
    floor: Option<u64>,
    keys: HashMap<Vec<u8>, (u64, u8, Option<u32>)>,
}

impl StoreModel {
    fn expired(&self, t: u64, now: u64) -> bool {
        now >= t && now - t > self.retention
    }

    fn valid(key: &[u8]) -> Result<(), IdempotencyError> {
        if key.is_empty() || key.len() > 255 {
            return Err(IdempotencyError::InvalidKey { len: key.len() });
        }
        Ok(())
    }

    fn apply(&mut self, cmd: &Command, now: u64) -> Answer {
        match cmd {
            Command::Begin { key, request } => {
                Self::valid(key)?;
                if let Some(&(c, r, outcome)) = self.keys.get(key)
                    && !self.expired(c, now)
                {
                    return Ok(Some(match (r == *request, outcome) {
                        (false, _) => Begin::Conflict,
                        (true, None) => Begin::InUse,
                        (true, Some(o)) => Begin::Replay(o),
                    }));
                }
                if let Some(f) = self.floor
                    && !self.expired(f, now)
                {
                    let until = ts(f.saturating_add(self.retention).saturating_add(1));
                    return Err(IdempotencyError::MaybeForgotten { until });
                }
                let gone: Vec<u64> = self
                    .keys
                    .values()
                    .map(|e| e.0)
                    .filter(|c| self.expired(*c, now))
                    .collect();
                for c in gone {
                    self.floor = self.floor.max(Some(c));
                }
                let r = self.retention;
                self.keys.retain(|_, e| !(now >= e.0 && now - e.0 > r));
                self.keys.insert(key.clone(), (now, *request, None));
                Ok(Some(Begin::Proceed))
            }
            Command::Complete { key, outcome } => {
                Self::valid(key)?;
                let r = self.retention;
                match self.keys.get_mut(key) {
                    Some(e) if !(now >= e.0 && now - e.0 > r) => {
                        if e.2.is_some() {
                            return Err(IdempotencyError::AlreadyCompleted);
                        }
                        e.2 = Some(*outcome);
                        Ok(None)
                    }
                    _ => Err(IdempotencyError::UnknownKey),
                }
            }
            Command::Release { key } => {
                Self::valid(key)?;
                match self.keys.get(key) {
                    None => Err(IdempotencyError::UnknownKey),
                    Some((_, _, Some(_))) => Err(IdempotencyError::AlreadyCompleted),
                    Some(_) => {
                        self.keys.remove(key);
                        Ok(None)
                    }
                }
            }
        }
    }
}

fn apply<const N: usize>(store: &mut IdempotencyStore<N, u32>, cmd: &Command, now: u64) -> Answer {
    match cmd {
        Command::Begin { key, request: r } => store.begin(key, request(*r), ts(now)).map(Some),
        Command::Complete { key, outcome } => store.complete(key, *outcome, ts(now)).map(|()| None),
        Command::Release { key } => store.release(key).map(|()| None),
    }
}

/// What the host has seen of the latest execution of one key.
#[derive(Debug, Default)]
struct History {
    /// Begin times of every execution (`Proceed`) that was not released.
    proceeded: Vec<u64>,
    /// The latest execution's request and outcome, unless it was released.
    latest: Option<(u8, Option<u32>)>,
}

/// Checks one answer against what the host has seen so far, and records it. These hold
/// whatever the store evicted.
fn check_history(
    seen: &mut HashMap<Vec<u8>, History>,
    cmd: &Command,
    now: u64,
    retention: u64,
    answer: &Answer,
) -> Result<(), TestCaseError> {
    let key = match cmd {
        Command::Begin { key, .. } | Command::Complete { key, .. } | Command::Release { key } => {
            key
        }
    };
    let h = seen.entry(key.clone()).or_default();
    match (cmd, answer) {
        (Command::Begin { request, .. }, Ok(Some(b))) => match b {
            Begin::Proceed => {
                for &c in &h.proceeded {
                    prop_assert!(
                        now >= c && now - c > retention,
                        "{:?} executed again at {} after an execution at {}",
                        key,
                        now,
                        c
                    );
                }
                h.proceeded.push(now);
                h.latest = Some((*request, None));
            }
            Begin::InUse => prop_assert_eq!(h.latest, Some((*request, None))),
            Begin::Replay(o) => prop_assert_eq!(h.latest, Some((*request, Some(*o)))),
            Begin::Conflict => prop_assert!(h.latest.is_some_and(|(r, _)| r != *request)),
        },
        (Command::Complete { outcome, .. }, Ok(None)) => {
            prop_assert!(matches!(h.latest, Some((_, None))));
            if let Some(l) = h.latest.as_mut() {
                l.1 = Some(*outcome);
            }
        }
        (
            Command::Complete { .. } | Command::Release { .. },
            Err(IdempotencyError::AlreadyCompleted),
        ) => {
            prop_assert!(matches!(h.latest, Some((_, Some(_)))));
        }
        (Command::Release { .. }, Ok(None)) => {
            prop_assert!(matches!(h.latest, Some((_, None))));
            h.proceeded.pop();
            h.latest = None;
        }
        (_, Err(_)) => {}
        (_, Ok(_)) => prop_assert!(false, "answer of the wrong kind"),
    }
    Ok(())
}

fn run_store<const N: usize>(
    retention: u64,
    commands: &[(Clock, Command)],
    exact: bool,
) -> Result<(), TestCaseError> {
    let mut store: IdempotencyStore<N, u32> =
        IdempotencyStore::with_retention(paystate::Duration::from_secs(retention));
    let mut model = StoreModel {
        retention,
        floor: None,
        keys: HashMap::new(),
    };
    let mut seen: HashMap<Vec<u8>, History> = HashMap::new();
    let mut now = 1_000_000u64;
    for (c, cmd) in commands {
        now = advance(now, c);
        let before = store.clone();
        let got = apply(&mut store, cmd, now);
        prop_assert!(store.len() <= N);
        if !matches!(got, Ok(Some(Begin::Proceed)) | Ok(None)) {
            prop_assert!(store == before, "{:?} -> {:?} changed the store", cmd, got);
        }
        check_history(&mut seen, cmd, now, retention, &got)?;
        if let Err(IdempotencyError::MaybeForgotten { until }) = got {
            let floor = store.floor().map(Timestamp::as_secs);
            prop_assert!(floor.is_some_and(|f| now <= f.saturating_add(retention)));
            prop_assert_eq!(
                Some(until),
                store
                    .floor()
                    .map(|f| f.saturating_add(retention).saturating_add(1))
            );
        }
        if exact {
            let expected = model.apply(cmd, now);
            prop_assert_eq!(&got, &expected, "{:?} at {}", cmd, now);
            prop_assert_eq!(store.len(), model.keys.len());
            prop_assert_eq!(store.floor(), model.floor.map(ts));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// At most 8 keys (7 from the pool and one of 255 bytes) in a store of 8: nothing is ever evicted, and every answer is the naive
    /// model's, including retention, the floor under a clock that goes back, and release.
    #[test]
    fn idempotency_store_matches_the_model_below_capacity(
        commands in proptest::collection::vec(command(7, 50), 1..250)
    ) {
        run_store::<8>(50, &commands, true)?;
    }

    /// Twenty keys in a store of 4: constant eviction. An evicted key is never answered
    /// `Proceed` within its retention, and every answer agrees with what the host saw.
    #[test]
    fn idempotency_store_never_executes_twice_under_eviction(
        commands in proptest::collection::vec(command(20, 50), 1..250)
    ) {
        run_store::<4>(50, &commands, false)?;
    }
}

/// The guard's fingerprint of a nonce (the first 128 bits of SHA-256 over its domain tag and
/// the nonce), used by the model only to break ties between equally old entries the same way.
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

// ------------------------------------------------------------------------------ snapshots

/// A guard restored from its snapshot is the guard: the same stream fed to one that never
/// restarts and to one that goes through a snapshot at random points (several times, each
/// restart starting from the last one's restored guard) gets the same answer to every request,
/// and the two encode to the same bytes after every step.
#[cfg(feature = "serde")]
mod snapshots {
    use super::*;
    use paystate::guard::snapshot;

    fn restart_guard<const N: usize>(g: &ReplayGuard<N>) -> Result<ReplayGuard<N>, TestCaseError> {
        let mut buf = vec![0u8; snapshot::replay_guard_max_size(N)];
        let bytes = snapshot::encode_replay_guard(g, &mut buf)
            .map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
        let back: ReplayGuard<N> = snapshot::decode_replay_guard(bytes)
            .map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
        prop_assert!(back == *g, "restored {:?} is not {:?}", back, g);
        Ok(back)
    }

    fn guard_bytes<const N: usize>(g: &ReplayGuard<N>) -> Vec<u8> {
        let mut buf = vec![0u8; snapshot::replay_guard_max_size(N)];
        snapshot::encode_replay_guard(g, &mut buf)
            .map(|b| b.to_vec())
            .unwrap_or_default()
    }

    fn send<const N: usize>(
        g: &mut ReplayGuard<N>,
        c: &Call,
        t: u64,
        nonce: &[u8],
        now: u64,
    ) -> Result<(), ReplayError> {
        if c.split {
            g.check_window(ts(t), ts(now))?;
            if !c.signature_valid {
                return Err(ReplayError::BadSignature);
            }
            g.record(ts(t), nonce, ts(now))
        } else {
            g.admit(ts(t), nonce, ts(now), || c.signature_valid)
        }
    }

    fn run_replay_restarts<const N: usize>(
        tolerance: u64,
        calls: &[(Call, bool)],
    ) -> Result<(), TestCaseError> {
        let mut steady: ReplayGuard<N> =
            ReplayGuard::with_tolerance(paystate::Duration::from_secs(tolerance));
        let mut restarted = restart_guard(&steady)?;
        let mut now = 1_000_000u64;
        let mut accepted: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut restarts = 0;
        for (i, (c, restart)) in calls.iter().enumerate() {
            if *restart {
                restarted = restart_guard(&restarted)?;
                restarts += 1;
            }
            now = advance(now, &c.clock);
            let (t, nonce) = match &c.request {
                Request::Fresh { skew, nonce } => (now.saturating_add_signed(*skew), nonce.clone()),
                Request::Wild { at, nonce } => (*at, nonce.clone()),
                Request::Replay(k) if !accepted.is_empty() => {
                    accepted[k.index(accepted.len())].clone()
                }
                Request::Replay(_) => (now, b"first".to_vec()),
            };
            let want = send(&mut steady, c, t, &nonce, now);
            let got = send(&mut restarted, c, t, &nonce, now);
            prop_assert_eq!(
                got,
                want,
                "request {} after {} restarts: t={} now={}",
                i,
                restarts,
                t,
                now
            );
            prop_assert!(restarted == steady);
            prop_assert_eq!(guard_bytes(&restarted), guard_bytes(&steady));
            if want.is_ok() {
                accepted.push((t, nonce));
            }
        }
        Ok(())
    }

    type Store<const N: usize> = IdempotencyStore<N, u32>;

    fn restart_store<const N: usize>(s: &Store<N>) -> Result<Store<N>, TestCaseError> {
        let bytes = store_bytes(s);
        prop_assert!(bytes.len() <= snapshot::idempotency_store_max_size(N, 5));
        let back: Store<N> = snapshot::decode_idempotency_store(&bytes)
            .map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
        prop_assert!(back == *s, "restored {:?} is not {:?}", back, s);
        Ok(back)
    }

    fn store_bytes<const N: usize>(s: &Store<N>) -> Vec<u8> {
        let mut buf = vec![0u8; snapshot::idempotency_store_max_size(N, 5)];
        snapshot::encode_idempotency_store(s, &mut buf)
            .map(|b| b.to_vec())
            .unwrap_or_default()
    }

    fn run_store_restarts<const N: usize>(
        commands: &[((Clock, Command), bool)],
    ) -> Result<(), TestCaseError> {
        let mut steady: Store<N> =
            IdempotencyStore::with_retention(paystate::Duration::from_secs(50));
        let mut restarted = restart_store(&steady)?;
        let mut now = 1_000_000u64;
        for (i, ((c, cmd), restart)) in commands.iter().enumerate() {
            if *restart {
                restarted = restart_store(&restarted)?;
            }
            now = advance(now, c);
            let want = apply(&mut steady, cmd, now);
            let got = apply(&mut restarted, cmd, now);
            prop_assert_eq!(&got, &want, "command {} {:?} at {}", i, cmd, now);
            prop_assert!(restarted == steady);
            prop_assert_eq!(store_bytes(&restarted), store_bytes(&steady));
        }
        Ok(())
    }

    fn with_restarts<T: core::fmt::Debug>(
        s: impl Strategy<Value = T>,
    ) -> impl Strategy<Value = Vec<(T, bool)>> {
        proptest::collection::vec((s, prop::bool::weighted(0.1)), 1..200)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Capacity 4, short window: restarts land while the guard is full and evicting.
        #[test]
        fn a_restarted_replay_guard_answers_as_one_that_never_restarted_4(
            calls in with_restarts(call(20))
        ) {
            run_replay_restarts::<4>(20, &calls)?;
        }

        #[test]
        fn a_restarted_replay_guard_answers_as_one_that_never_restarted_64(
            calls in with_restarts(call(300))
        ) {
            run_replay_restarts::<64>(300, &calls)?;
        }

        /// Keys in flight, completed, released, past retention and evicted across restarts.
        #[test]
        fn a_restarted_idempotency_store_answers_as_one_that_never_restarted(
            commands in with_restarts(command(20, 50))
        ) {
            run_store_restarts::<4>(&commands)?;
        }

        #[test]
        fn a_restarted_idempotency_store_below_capacity_answers_alike(
            commands in with_restarts(command(7, 50))
        ) {
            run_store_restarts::<8>(&commands)?;
        }
    }
}
