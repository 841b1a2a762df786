//! A replay guard at capacity, and the `HashSet` baseline under the same load.
//!
//! The load is a steady stream of WeChat-style requests: a fresh 32-byte nonce each, four per
//! second, `now` equal to the timestamp. After warm-up the guard is full (four a second fill
//! 1 024 entries in 256 s, inside the 300 s window), so every accepted request evicts the
//! oldest entry (one out, one in). The `HashSet` baseline inserts the same
//! nonce and, to stay at the same size instead of growing without end, removes the one inserted
//! `N` requests earlier.

use std::collections::HashSet;

use paystate::Timestamp;
use paystate::guard::{ReplayError, ReplayGuard};

pub const PER_SECOND: u64 = 4;
const START: u64 = 1_764_000_000;

/// Distinct nonces, reused round-robin; long enough that a nonce is long gone from a guard of
/// capacity `n` before it comes round again.
pub fn nonces(n: usize) -> Vec<[u8; 32]> {
    let count = (4 * n).max(4_096);
    (0..count as u64)
        .map(|i| {
            // An odd multiplier is a bijection on u64: the nonces are distinct.
            let mixed = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let text = format!("{mixed:016X}{:016X}", mixed.rotate_left(29) ^ i);
            let mut out = [0u8; 32];
            out.copy_from_slice(text.as_bytes());
            out
        })
        .collect()
}

/// A `ReplayGuard<N>` fed the steady load.
#[derive(Clone)]
pub struct GuardLoad<const N: usize> {
    pub guard: ReplayGuard<N>,
    nonces: Vec<[u8; 32]>,
    i: u64,
}

impl<const N: usize> GuardLoad<N> {
    /// A guard brought to its steady state (full) with every request accepted.
    pub fn warmed() -> Self {
        let mut load = GuardLoad {
            guard: ReplayGuard::new(),
            nonces: nonces(N),
            i: 0,
        };
        for _ in 0..2 * load.nonces.len() {
            assert_eq!(load.step(), Ok(()), "the steady load is always accepted");
        }
        assert!(load.at_capacity(), "the guard is at capacity");
        load
    }

    /// Full: each request evicts one entry and adds one.
    pub fn at_capacity(&self) -> bool {
        self.guard.len() == N
    }

    /// One request: the window check, then recording (the signature check in between is the
    /// host's and not measured here).
    #[inline]
    pub fn step(&mut self) -> Result<(), ReplayError> {
        let k = (self.i % self.nonces.len() as u64) as usize;
        let ts = Timestamp::from_secs(START + self.i / PER_SECOND);
        self.i += 1;
        self.guard.admit(ts, &self.nonces[k], ts, || true)
    }
}

/// A `HashSet` of the nonces held at `n` entries under the same load.
#[derive(Clone)]
pub struct SetLoad {
    pub set: HashSet<[u8; 32]>,
    nonces: Vec<[u8; 32]>,
    n: usize,
    i: usize,
}

impl SetLoad {
    pub fn warmed(n: usize) -> Self {
        let mut load = SetLoad {
            set: HashSet::with_capacity(n + 1),
            nonces: nonces(n),
            n,
            i: 0,
        };
        for _ in 0..2 * load.nonces.len() {
            assert!(load.step(), "every nonce is new");
        }
        assert_eq!(load.set.len(), n);
        load
    }

    /// Inserts the next nonce and drops the one inserted `n` requests ago. Answers whether the
    /// nonce was new.
    #[inline]
    pub fn step(&mut self) -> bool {
        let len = self.nonces.len();
        let fresh = self.set.insert(self.nonces[self.i % len]);
        if self.i >= self.n {
            self.set.remove(&self.nonces[(self.i - self.n) % len]);
        }
        self.i += 1;
        fresh
    }
}
