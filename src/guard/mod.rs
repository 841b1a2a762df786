//! Host-level guards (docs/spec.md §3): fixed memory, no clock, no heap.
//!
//! - [`ReplayGuard`] (§3.1) sits in front of a webhook endpoint whose messages carry a
//!   timestamp and a nonce (WeChat Pay v3, the generic HMAC scheme). It refuses stale and
//!   future-dated messages and every replay, and it can only be changed by a message whose
//!   signature the host has verified.
//! - [`IdempotencyStore`] (§3.2) sits in front of the host's own API (create a payment, request
//!   a refund) and gives idempotency keys Stripe's semantics: a retried request is answered
//!   with the stored outcome instead of being executed again.
//!
//! Both remember at most a const-generic number of entries, in arrays inside the value (no
//! allocation; a `static` works on a microcontroller). Both answer in O(1) expected time for a
//! lookup and O(log N) for recording: an open-addressing hash index over 128-bit fingerprints
//! plus a binary min-heap by time for finding the oldest entry. When they must forget an entry
//! early, they raise a *floor* so that forgetting can only cause a refusal, never a second
//! execution or an accepted replay.
//!
//! With the `serde` feature, [`snapshot`] writes either guard as bytes the host persists and
//! reads them back after a restart, so that a restart forgets no replay and no key.

use sha2::{Digest, Sha256};

pub mod idempotency;
pub mod replay;
mod slots;
#[cfg(feature = "serde")]
pub mod snapshot;

pub use idempotency::{Begin, IdempotencyError, IdempotencyStore, MAX_KEY_LEN, RequestFingerprint};
pub use replay::{MAX_NONCE_LEN, ReplayError, ReplayGuard};

use slots::Fingerprint;

/// The first 128 bits of SHA-256 over a domain tag and `bytes`.
fn fingerprint(domain: &[u8], bytes: &[u8]) -> Fingerprint {
    let digest = Sha256::new()
        .chain_update(domain)
        .chain_update(bytes)
        .finalize();
    let mut out = [0u8; 16];
    for (o, d) in out.iter_mut().zip(digest.iter()) {
        *o = *d;
    }
    out
}
