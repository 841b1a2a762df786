//! Guard snapshots: golden bytes pin both formats, a restored guard answers as the original,
//! and every truncated, corrupted, forged or foreign snapshot is a typed error.
#![cfg(feature = "serde")]

use paystate::guard::snapshot::{
    self, GuardSnapshotError, IDEMPOTENCY_STORE_FORMAT, REPLAY_GUARD_FORMAT,
};
use paystate::guard::{
    Begin, IdempotencyError, IdempotencyStore, ReplayError, ReplayGuard, RequestFingerprint,
};
use paystate::{Currency, Money, Payment, Timestamp};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

const T0: u64 = 1_700_000_000;

fn t(secs: u64) -> Timestamp {
    Timestamp::from_secs(secs)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `v` as a postcard varint.
fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

fn encode_guard<const N: usize>(g: &ReplayGuard<N>) -> Vec<u8> {
    let mut buf = vec![0u8; snapshot::replay_guard_max_size(N)];
    snapshot::encode_replay_guard(g, &mut buf).unwrap().to_vec()
}

fn encode_store<const N: usize>(s: &IdempotencyStore<N, u64>) -> Vec<u8> {
    let mut buf = vec![0u8; snapshot::idempotency_store_max_size(N, 10)];
    snapshot::encode_idempotency_store(s, &mut buf)
        .unwrap()
        .to_vec()
}

/// A guard of 2 that accepted `a`, `b`, `c` five seconds apart: `a` was evicted for room, so
/// the floor is its timestamp.
fn evicting_guard() -> ReplayGuard<2> {
    let mut g = ReplayGuard::new();
    for (i, nonce) in [b"a", b"b", b"c"].into_iter().enumerate() {
        let at = t(T0 + 5 * i as u64);
        g.admit(at, nonce, at, || true).unwrap();
    }
    assert_eq!(g.floor(), Some(t(T0)));
    g
}

fn req(body: &[u8]) -> RequestFingerprint {
    RequestFingerprint::of_parts(&[b"POST", b"/v1/refunds", body])
}

/// A store of 2: `k1` completed then evicted by `k3` (floor `T0`), `k2` in flight, `k3`
/// completed with 42.
fn evicting_store() -> IdempotencyStore<2, u64> {
    let mut s = IdempotencyStore::new();
    let r = RequestFingerprint::of(b"r");
    assert_eq!(s.begin(b"k1", r, t(T0)), Ok(Begin::Proceed));
    s.complete(b"k1", 7_001, t(T0)).unwrap();
    assert_eq!(s.begin(b"k2", r, t(T0 + 1)), Ok(Begin::Proceed));
    assert_eq!(s.begin(b"k3", r, t(T0 + 2)), Ok(Begin::Proceed));
    s.complete(b"k3", 42, t(T0 + 3)).unwrap();
    assert_eq!(s.floor(), Some(t(T0)));
    s
}

/// The guard's fingerprint of a nonce, as the format documents it.
fn nonce_fp(nonce: &[u8]) -> [u8; 16] {
    let d = Sha256::new()
        .chain_update(b"paystate/nonce/v1\0")
        .chain_update(nonce)
        .finalize();
    d[..16].try_into().unwrap()
}

// ------------------------------------------------------------------------------ the formats

/// Golden bytes: an accidental change of either wire format fails here. A deliberate change
/// needs a new format byte (and a decoder that still reads this one).
#[test]
fn golden_bytes_pin_both_formats() {
    assert_eq!(
        (REPLAY_GUARD_FORMAT, IDEMPOTENCY_STORE_FORMAT),
        (0x81, 0x91)
    );

    // format, tolerance 300 (ac 02), no floor, no entries.
    assert_eq!(hex(&encode_guard(&ReplayGuard::<8>::new())), "81ac020000");
    // format, tolerance, floor Some(T0), 2 entries: (T0 + 5, fp "b"), (T0 + 10, fp "c").
    assert_eq!(
        hex(&encode_guard(&evicting_guard())),
        "81ac020180e2cfaa060285e2cfaa068f4a532b6773638da941d7c61ac64cbc8ae2cfaa065bcbd42d261641a7b0b59a21410b8713"
    );
    // format, retention 86 400 (80 a3 05), no floor, no entries.
    assert_eq!(
        hex(&encode_store(&IdempotencyStore::<8, u64>::new())),
        "9180a3050000"
    );
    // format, retention, floor Some(T0), 2 keys: (T0 + 1, fp "k2", request, in flight 00),
    // (T0 + 2, fp "k3", request, completed 01 with 42 = 2a).
    assert_eq!(
        hex(&encode_store(&evicting_store())),
        "9180a3050180e2cfaa060281e2cfaa063a8a9de00376851d5725e884c2e81ff08c1ad9adc4ce74beac5b6052d8fb90d1e2b9e79baa82f91065ef5a906b53d9a40082e2cfaa066aea2dd1357dcb5beb33b5d8b9a785698c1ad9adc4ce74beac5b6052d8fb90d1e2b9e79baa82f91065ef5a906b53d9a4012a"
    );
}

/// The format is what the module docs say, field by field: a snapshot written by hand from
/// the table restores a guard that refuses the nonce it lists.
#[test]
fn a_snapshot_written_from_the_documented_format_restores_its_requests() {
    let mut bytes = vec![0x81, 60, 0x00, 0x01]; // tolerance 60, no floor, one entry
    bytes.extend([0x80, 0xe2, 0xcf, 0xaa, 0x06]); // T0
    bytes.extend(nonce_fp(b"5K8264ILTKCH16CQ2502SI8ZNMTM67VS"));
    let mut g: ReplayGuard<8> = snapshot::decode_replay_guard(&bytes).unwrap();
    assert_eq!(
        (g.tolerance(), g.floor(), g.len()),
        (paystate::Duration::from_secs(60), None, 1)
    );
    assert_eq!(
        g.admit(
            t(T0),
            b"5K8264ILTKCH16CQ2502SI8ZNMTM67VS",
            t(T0 + 60),
            || true
        ),
        Err(ReplayError::Replayed)
    );
    assert_eq!(g.admit(t(T0), b"another", t(T0 + 60), || true), Ok(()));
}

// ------------------------------------------------------------------------------ sizes

/// A replay guard of `N` full of the largest values: every varint at its longest.
fn largest_guard<const N: usize>() -> ReplayGuard<N> {
    let mut g = ReplayGuard::with_tolerance(paystate::Duration::from_secs(u64::MAX));
    let top = u64::MAX - 2 * N as u64;
    for i in 0..=N as u64 {
        let at = t(top + i);
        g.record(at, format!("n{i}").as_bytes(), at).unwrap();
    }
    assert_eq!((g.len(), g.floor()), (N, Some(t(top))));
    g
}

fn largest_store<const N: usize>() -> IdempotencyStore<N, u64> {
    let mut s = IdempotencyStore::with_retention(paystate::Duration::from_secs(u64::MAX));
    let top = u64::MAX - 2 * N as u64;
    // Fill, then one more evicts the first and raises the floor; later begins are refused
    // (`MaybeForgotten`, the retention never ends), so the evicting key is the last one.
    for i in 0..=N as u64 {
        let key = format!("k{i}");
        assert_eq!(
            s.begin(key.as_bytes(), req(b"r"), t(top + i)),
            Ok(Begin::Proceed)
        );
        s.complete(key.as_bytes(), u64::MAX, t(top + i)).unwrap();
    }
    assert_eq!((s.len(), s.floor()), (N, Some(t(top))));
    s
}

/// A store of `N` full of keys begun today, all completed with a `u64` outcome of today's
/// magnitude.
fn today_store<const N: usize>() -> IdempotencyStore<N, u64> {
    let mut s = IdempotencyStore::new();
    for i in 0..N as u64 {
        let key = format!("k{i}");
        assert_eq!(
            s.begin(key.as_bytes(), req(b"r"), t(T0 + i)),
            Ok(Begin::Proceed)
        );
        s.complete(key.as_bytes(), T0, t(T0 + i)).unwrap();
    }
    s
}

fn today_guard<const N: usize>() -> ReplayGuard<N> {
    let mut g = ReplayGuard::new();
    for i in 0..N as u64 {
        g.record(t(T0), format!("n{i}").as_bytes(), t(T0)).unwrap();
    }
    g
}

/// `max_size` is reached exactly by the largest guards, and the sizes docs/guards.md quotes hold.
#[test]
fn max_size_is_exact_and_the_documented_sizes_hold() {
    fn check<const N: usize>(today_guard_len: usize, today_store_len: usize) {
        let g = largest_guard::<N>();
        assert_eq!(encode_guard(&g).len(), snapshot::replay_guard_max_size(N));
        let s = largest_store::<N>();
        assert_eq!(
            encode_store(&s).len(),
            snapshot::idempotency_store_max_size(N, 10)
        );
        assert_eq!(encode_guard(&today_guard::<N>()).len(), today_guard_len);
        assert_eq!(encode_store(&today_store::<N>()).len(), today_store_len);
    }
    check::<8>(173, 478);
    check::<64>(1_349, 3_782);
    check::<1024>(21_510, 60_423);

    assert_eq!(snapshot::replay_guard_max_size(8), 231);
    assert_eq!(snapshot::replay_guard_max_size(64), 1_687);
    assert_eq!(snapshot::replay_guard_max_size(1024), 26_648);
    assert_eq!(snapshot::idempotency_store_max_size(8, 10), 575);
    assert_eq!(snapshot::idempotency_store_max_size(64, 10), 4_439);
    assert_eq!(snapshot::idempotency_store_max_size(1024, 10), 70_680);
    // Empty: the header only.
    assert_eq!(encode_guard(&ReplayGuard::<1024>::new()).len(), 5);
    assert_eq!(encode_store(&IdempotencyStore::<1024, u64>::new()).len(), 6);
    // Caller input never overflows.
    assert_eq!(snapshot::replay_guard_max_size(usize::MAX), usize::MAX);
    assert_eq!(
        snapshot::idempotency_store_max_size(2, usize::MAX),
        usize::MAX
    );
}

#[test]
fn a_buffer_one_byte_short_is_refused_and_left_to_the_caller() {
    let g = evicting_guard();
    let bytes = encode_guard(&g);
    for len in 0..bytes.len() {
        let mut buf = vec![0u8; len];
        assert_eq!(
            snapshot::encode_replay_guard(&g, &mut buf),
            Err(GuardSnapshotError::BufferTooSmall),
            "{len} bytes"
        );
    }
    let mut exact = vec![0u8; bytes.len()];
    assert_eq!(
        snapshot::encode_replay_guard(&g, &mut exact).map(|b| b.to_vec()),
        Ok(bytes)
    );
    let s = evicting_store();
    let bytes = encode_store(&s);
    let mut short = vec![0u8; bytes.len() - 1];
    assert_eq!(
        snapshot::encode_idempotency_store(&s, &mut short),
        Err(GuardSnapshotError::BufferTooSmall)
    );
}

// ------------------------------------------------------------------------------ restoring

#[test]
fn a_restored_replay_guard_refuses_what_the_original_refused() {
    let g = evicting_guard();
    let mut back: ReplayGuard<2> = snapshot::decode_replay_guard(&encode_guard(&g)).unwrap();
    assert_eq!(back, g);
    assert_eq!(
        (back.tolerance(), back.floor(), back.len()),
        (paystate::Duration::from_secs(300), Some(t(T0)), 2)
    );
    let now = t(T0 + 20);
    // Remembered: replayed. Evicted: at the floor, stale. New: accepted.
    assert_eq!(
        back.admit(t(T0 + 5), b"b", now, || true),
        Err(ReplayError::Replayed)
    );
    assert_eq!(
        back.admit(t(T0), b"a", now, || true),
        Err(ReplayError::Stale)
    );
    assert_eq!(back.admit(t(T0 + 20), b"d", now, || true), Ok(()));
    // Eviction picks the same entry as the original would: `b`, the oldest.
    let mut original = g.clone();
    assert_eq!(original.admit(t(T0 + 20), b"d", now, || true), Ok(()));
    assert_eq!(back, original);
    assert_eq!(back.floor(), Some(t(T0 + 5)));
}

#[test]
fn a_key_in_flight_stays_in_flight_across_a_restart_and_is_never_executed_twice() {
    let s = evicting_store();
    let r = RequestFingerprint::of(b"r");
    let mut back: IdempotencyStore<2, u64> =
        snapshot::decode_idempotency_store(&encode_store(&s)).unwrap();
    assert_eq!(back, s);
    let now = t(T0 + 10);
    assert_eq!(back.begin(b"k2", r, now), Ok(Begin::InUse));
    assert_eq!(back.begin(b"k3", r, now), Ok(Begin::Replay(42)));
    assert_eq!(back.begin(b"k3", req(b"other"), now), Ok(Begin::Conflict));
    // `k1` was evicted: every unknown key is refused until its retention would have ended.
    let until = t(T0 + 86_400 + 1);
    assert_eq!(
        back.begin(b"k1", r, now),
        Err(IdempotencyError::MaybeForgotten { until })
    );
    assert_eq!(
        back.begin(b"k4", r, now),
        Err(IdempotencyError::MaybeForgotten { until })
    );

    // The host resolves the in-flight key from its own records: it completed...
    let mut completed = back.clone();
    completed.complete(b"k2", 9, now).unwrap();
    assert_eq!(completed.begin(b"k2", r, now), Ok(Begin::Replay(9)));
    // ...or it certainly had no effect, and is released so that a retry runs it.
    back.release(b"k2").unwrap();
    assert_eq!(back.begin(b"k2", r, until), Ok(Begin::Proceed));
}

#[test]
fn a_snapshot_decodes_into_a_larger_capacity_and_not_into_a_smaller_one() {
    let g = today_guard::<8>();
    let bytes = encode_guard(&g);
    let mut wide: ReplayGuard<64> = snapshot::decode_replay_guard(&bytes).unwrap();
    assert_eq!(encode_guard(&wide), bytes);
    assert_eq!(
        wide.admit(t(T0), b"n3", t(T0), || true),
        Err(ReplayError::Replayed)
    );
    // Room for more: nothing is evicted where the guard of 8 would have evicted.
    assert_eq!(wide.admit(t(T0 + 1), b"new", t(T0 + 1), || true), Ok(()));
    assert_eq!((wide.len(), wide.floor()), (9, None));
    assert_eq!(
        snapshot::decode_replay_guard::<4>(&bytes),
        Err(GuardSnapshotError::TooManyEntries {
            count: 8,
            capacity: 4
        })
    );

    let bytes = encode_store(&today_store::<8>());
    let wide: IdempotencyStore<9, u64> = snapshot::decode_idempotency_store(&bytes).unwrap();
    assert_eq!(encode_store(&wide), bytes);
    assert_eq!(
        snapshot::decode_idempotency_store::<7, u64>(&bytes),
        Err(GuardSnapshotError::TooManyEntries {
            count: 8,
            capacity: 7
        })
    );
}

#[test]
fn outcomes_of_any_serde_type_round_trip() {
    type Outcome = (u16, [u8; 4], Option<i32>);
    let mut s: IdempotencyStore<4, Outcome> =
        IdempotencyStore::with_retention(paystate::Duration::from_secs(60));
    let r = req(b"x");
    let _ = s.begin(b"a", r, t(T0)).unwrap();
    s.complete(b"a", (201, *b"pay1", Some(-5)), t(T0)).unwrap();
    let _ = s.begin(b"b", r, t(T0)).unwrap();
    let mut buf = [0u8; snapshot::idempotency_store_max_size(4, 3 + 4 + 6)];
    let bytes = snapshot::encode_idempotency_store(&s, &mut buf).unwrap();
    let mut back: IdempotencyStore<4, Outcome> = snapshot::decode_idempotency_store(bytes).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.retention(), paystate::Duration::from_secs(60));
    assert_eq!(
        back.begin(b"a", r, t(T0 + 1)),
        Ok(Begin::Replay((201, *b"pay1", Some(-5))))
    );
    assert_eq!(back.begin(b"b", r, t(T0 + 1)), Ok(Begin::InUse));
    // Decoded as another outcome type, the bytes do not fit.
    assert!(snapshot::decode_idempotency_store::<4, u64>(bytes).is_err());
}

/// An outcome postcard cannot write.
#[derive(Clone, Debug, PartialEq)]
struct Unwritable;

impl serde::Serialize for Unwritable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("no"))
    }
}

#[test]
fn an_outcome_that_cannot_be_written_is_its_own_error() {
    let mut s: IdempotencyStore<4, Unwritable> = IdempotencyStore::new();
    let _ = s.begin(b"a", req(b"x"), t(T0)).unwrap();
    let mut buf = [0u8; 256];
    // In flight, there is no outcome to write yet.
    assert!(snapshot::encode_idempotency_store(&s, &mut buf).is_ok());
    s.complete(b"a", Unwritable, t(T0)).unwrap();
    assert_eq!(
        snapshot::encode_idempotency_store(&s, &mut buf),
        Err(GuardSnapshotError::UnencodableOutcome)
    );
}

// ------------------------------------------------------------------------------ refusals

#[test]
fn foreign_snapshots_are_refused_by_their_format_byte() {
    let payment: Payment = Payment::new(Money::from_minor(9_999, Currency::CNY), t(T0)).unwrap();
    let mut buf = [0u8; paystate::snapshot::MAX_SIZE];
    let payment_bytes = paystate::snapshot::encode(&payment, &mut buf)
        .unwrap()
        .to_vec();
    let guard_bytes = encode_guard(&evicting_guard());
    let store_bytes = encode_store(&evicting_store());

    let v = paystate::snapshot::FORMAT_VERSION;
    assert_eq!(
        snapshot::decode_replay_guard::<8>(&payment_bytes),
        Err(GuardSnapshotError::UnknownVersion(v))
    );
    assert_eq!(
        snapshot::decode_idempotency_store::<8, u64>(&payment_bytes),
        Err(GuardSnapshotError::UnknownVersion(v))
    );
    assert_eq!(
        snapshot::decode_replay_guard::<8>(&store_bytes),
        Err(GuardSnapshotError::UnknownVersion(IDEMPOTENCY_STORE_FORMAT))
    );
    assert_eq!(
        snapshot::decode_idempotency_store::<8, u64>(&guard_bytes),
        Err(GuardSnapshotError::UnknownVersion(REPLAY_GUARD_FORMAT))
    );
    // And the payment decoder refuses the guards'.
    assert!(paystate::snapshot::decode(&guard_bytes).is_err());
    assert!(paystate::snapshot::decode(&store_bytes).is_err());
    // A later version of a guard's own format is not guessed at.
    let mut next = guard_bytes.clone();
    next[0] = REPLAY_GUARD_FORMAT + 1;
    assert_eq!(
        snapshot::decode_replay_guard::<8>(&next),
        Err(GuardSnapshotError::UnknownVersion(0x82))
    );
}

#[test]
fn empty_truncated_and_padded_snapshots_are_refused() {
    assert_eq!(
        snapshot::decode_replay_guard::<8>(&[]),
        Err(GuardSnapshotError::Empty)
    );
    assert_eq!(
        snapshot::decode_idempotency_store::<8, u64>(&[]),
        Err(GuardSnapshotError::Empty)
    );
    let guard_bytes = encode_guard(&evicting_guard());
    for cut in 1..guard_bytes.len() {
        assert_eq!(
            snapshot::decode_replay_guard::<8>(&guard_bytes[..cut]),
            Err(GuardSnapshotError::Malformed),
            "cut at {cut}"
        );
    }
    let store_bytes = encode_store(&evicting_store());
    for cut in 1..store_bytes.len() {
        assert_eq!(
            snapshot::decode_idempotency_store::<8, u64>(&store_bytes[..cut]),
            Err(GuardSnapshotError::Malformed),
            "cut at {cut}"
        );
    }
    for mut bytes in [guard_bytes.clone(), store_bytes.clone()] {
        bytes.push(0);
        let refused = if bytes[0] == REPLAY_GUARD_FORMAT {
            snapshot::decode_replay_guard::<8>(&bytes).map(|_| ())
        } else {
            snapshot::decode_idempotency_store::<8, u64>(&bytes).map(|_| ())
        };
        assert_eq!(refused, Err(GuardSnapshotError::TrailingBytes));
    }
}

/// A replay guard's snapshot, built by hand: tolerance 300, `floor`, and `entries`.
fn forge(floor: Option<u64>, entries: &[(u64, [u8; 16])]) -> Vec<u8> {
    let mut b = vec![0x81, 0xac, 0x02];
    match floor {
        None => b.push(0),
        Some(f) => {
            b.push(1);
            b.extend(varint(f));
        }
    }
    b.extend(varint(entries.len() as u64));
    for (time, fp) in entries {
        b.extend(varint(*time));
        b.extend(fp);
    }
    b
}

#[test]
fn forged_snapshots_are_refused_with_the_reason() {
    let (a, b, c) = ([0x11; 16], [0x22; 16], [0x33; 16]);
    let decode = |bytes: &[u8]| snapshot::decode_replay_guard::<4>(bytes).map(|g| g.len());
    assert_eq!(
        decode(&forge(Some(5), &[(5, b), (6, a), (6, c)])),
        Ok(3),
        "the honest one"
    );
    // Entries at or below the floor are not a forgery: the guard keeps the request it accepted
    // in the call that raised the floor above it.
    assert_eq!(decode(&forge(Some(9), &[(5, b), (6, a)])), Ok(2));

    assert_eq!(
        decode(&forge(None, &[(6, a), (5, b)])),
        Err(GuardSnapshotError::EntriesOutOfOrder { index: 1 })
    );
    assert_eq!(
        decode(&forge(None, &[(5, b), (5, a)])),
        Err(GuardSnapshotError::EntriesOutOfOrder { index: 1 }),
        "ties are ordered by fingerprint"
    );
    assert_eq!(
        decode(&forge(None, &[(5, a), (5, a)])),
        Err(GuardSnapshotError::EntriesOutOfOrder { index: 1 })
    );
    assert_eq!(
        decode(&forge(None, &[(5, a), (6, b), (7, a)])),
        Err(GuardSnapshotError::DuplicateEntry { index: 2 }),
        "one nonce remembered twice"
    );
    let five: Vec<_> = (0..5u8).map(|i| (u64::from(i), [i; 16])).collect();
    assert_eq!(
        decode(&forge(None, &five)),
        Err(GuardSnapshotError::TooManyEntries {
            count: 5,
            capacity: 4
        })
    );
    // A count far beyond what follows: refused before reading any entry.
    let mut huge = vec![0x81, 0xac, 0x02, 0x00];
    huge.extend([0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(
        decode(&huge),
        Err(GuardSnapshotError::TooManyEntries {
            count: u32::MAX as usize,
            capacity: 4
        })
    );
    // A bad option tag for the floor, a count that is not a u32.
    assert_eq!(
        decode(&[0x81, 0xac, 0x02, 0x02, 0x00]),
        Err(GuardSnapshotError::Malformed)
    );
    assert_eq!(
        decode(&[0x81, 0xac, 0x02, 0x00, 0xff, 0xff, 0xff, 0xff, 0x1f]),
        Err(GuardSnapshotError::Malformed)
    );

    // The store: an outcome tag that is neither in flight nor completed.
    let mut store = encode_store(&evicting_store());
    let last_tag = store.len() - 2;
    assert_eq!(store[last_tag], 0x01);
    store[last_tag] = 0x02;
    assert_eq!(
        snapshot::decode_idempotency_store::<8, u64>(&store),
        Err(GuardSnapshotError::Malformed)
    );
}

#[test]
fn errors_name_themselves_for_the_logs() {
    let e = GuardSnapshotError::TooManyEntries {
        count: 9,
        capacity: 8,
    };
    assert_eq!(e.code(), "too_many_entries");
    assert_eq!(
        e.to_string(),
        "too_many_entries: 9 entries for a capacity of 8"
    );
    assert_eq!(
        GuardSnapshotError::UnknownVersion(1).to_string(),
        "unknown_version: format byte 0x01"
    );
    assert_eq!(
        GuardSnapshotError::TrailingBytes.to_string(),
        "trailing_bytes"
    );
}

proptest! {
    /// Arbitrary bytes never panic either decoder; whatever decodes re-encodes to a snapshot
    /// no longer than the input that decodes to an equal guard.
    #[test]
    fn arbitrary_bytes_never_panic(
        format in prop_oneof![Just(REPLAY_GUARD_FORMAT), Just(IDEMPOTENCY_STORE_FORMAT), any::<u8>()],
        tail in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut bytes = vec![format];
        bytes.extend(tail);
        if let Ok(g) = snapshot::decode_replay_guard::<4>(&bytes) {
            let again = encode_guard(&g);
            prop_assert!(again.len() <= bytes.len());
            prop_assert_eq!(snapshot::decode_replay_guard::<4>(&again), Ok(g));
        }
        if let Ok(s) = snapshot::decode_idempotency_store::<4, u64>(&bytes) {
            let again = encode_store(&s);
            prop_assert!(again.len() <= bytes.len());
            prop_assert_eq!(snapshot::decode_idempotency_store::<4, u64>(&again), Ok(s));
        }
    }

    /// Every corruption of a real snapshot — a byte changed, the bytes cut — is an error or a
    /// guard that re-encodes consistently; never a panic.
    #[test]
    fn corrupted_snapshots_never_panic(at in any::<prop::sample::Index>(), to in any::<u8>(), cut in any::<prop::sample::Index>()) {
        for bytes in [encode_guard(&evicting_guard()), encode_store(&evicting_store())] {
            let mut bad = bytes.clone();
            let i = at.index(bad.len());
            bad[i] = to;
            bad.truncate(1 + cut.index(bad.len()));
            if let Ok(g) = snapshot::decode_replay_guard::<2>(&bad) {
                prop_assert_eq!(snapshot::decode_replay_guard::<2>(&encode_guard(&g)), Ok(g));
            }
            if let Ok(s) = snapshot::decode_idempotency_store::<2, u64>(&bad) {
                prop_assert_eq!(snapshot::decode_idempotency_store::<2, u64>(&encode_store(&s)), Ok(s));
            }
        }
    }
}
