//! The guards of docs/spec.md §3 at every boundary: the window's edges, the floor, eviction,
//! retention, bad input and clocks that go back.

use core::cell::Cell;
use core::mem::size_of;

use paystate::Timestamp;
use paystate::guard::{
    Begin, IdempotencyError, IdempotencyStore, MAX_KEY_LEN, MAX_NONCE_LEN, ReplayError,
    ReplayGuard, RequestFingerprint,
};

fn t(secs: u64) -> Timestamp {
    Timestamp::from_secs(secs)
}

const T: u64 = ReplayGuard::<8>::DEFAULT_TOLERANCE.as_secs();

// ---------------------------------------------------------------- replay guard: the window

#[test]
fn a_timestamp_exactly_t_seconds_old_is_accepted_and_t_plus_one_is_stale() {
    let mut g: ReplayGuard<8> = ReplayGuard::new();
    assert_eq!(g.tolerance(), paystate::Duration::from_secs(300));
    assert_eq!(g.check_window(t(10_000 - T), t(10_000)), Ok(()));
    assert_eq!(g.record(t(10_000 - T), b"a", t(10_000)), Ok(()));
    assert_eq!(
        g.check_window(t(10_000 - T - 1), t(10_000)),
        Err(ReplayError::Stale)
    );
    assert_eq!(
        g.record(t(10_000 - T - 1), b"b", t(10_000)),
        Err(ReplayError::Stale)
    );
}

#[test]
fn a_timestamp_exactly_t_seconds_ahead_is_accepted_and_t_plus_one_is_from_the_future() {
    let mut g: ReplayGuard<8> = ReplayGuard::new();
    assert_eq!(g.record(t(10_000 + T), b"a", t(10_000)), Ok(()));
    assert_eq!(
        g.record(t(10_000 + T + 1), b"b", t(10_000)),
        Err(ReplayError::FromFuture)
    );
    assert_eq!(
        g.check_window(t(10_000 + T + 1), t(10_000)),
        Err(ReplayError::FromFuture)
    );
    assert_eq!(g.len(), 1);
}

#[test]
fn the_tolerance_is_configurable() {
    let mut g: ReplayGuard<8> = ReplayGuard::with_tolerance(paystate::Duration::from_secs(5));
    assert_eq!(g.record(t(95), b"a", t(100)), Ok(()));
    assert_eq!(g.record(t(94), b"b", t(100)), Err(ReplayError::Stale));
    assert_eq!(g.record(t(105), b"c", t(100)), Ok(()));
    assert_eq!(g.record(t(106), b"d", t(100)), Err(ReplayError::FromFuture));
    // Duration 0: only `now` itself.
    let mut g: ReplayGuard<8> = ReplayGuard::with_tolerance(paystate::Duration::from_secs(0));
    assert_eq!(g.record(t(100), b"a", t(100)), Ok(()));
    assert_eq!(g.record(t(99), b"b", t(100)), Err(ReplayError::Stale));
    assert_eq!(g.record(t(101), b"c", t(100)), Err(ReplayError::FromFuture));
}

#[test]
fn timestamps_at_the_ends_of_time_are_answered_without_overflow() {
    let max = u64::MAX;
    let mut g: ReplayGuard<8> = ReplayGuard::new();
    assert_eq!(g.record(t(max), b"a", t(0)), Err(ReplayError::FromFuture));
    assert_eq!(g.record(t(0), b"a", t(max)), Err(ReplayError::Stale));
    assert_eq!(g.record(t(0), b"a", t(0)), Ok(()));
    assert_eq!(g.record(t(max), b"b", t(max)), Ok(()));
    assert_eq!(g.record(t(max - T), b"c", t(max)), Ok(()));
    assert_eq!(
        g.record(t(max), b"b", t(max - T)),
        Err(ReplayError::Replayed)
    );
    // Recording at the end of time dropped the entry at 0: the floor is 0 now.
    assert_eq!(g.floor(), Some(t(0)));
    assert_eq!(g.record(t(0), b"z", t(0)), Err(ReplayError::Stale));

    // With an infinite tolerance every timestamp is in the window.
    let mut g: ReplayGuard<8> = ReplayGuard::with_tolerance(paystate::Duration::from_secs(max));
    assert_eq!(g.record(t(0), b"a", t(max)), Ok(()));
    assert_eq!(g.record(t(max), b"b", t(0)), Ok(()));
    assert_eq!(g.record(t(0), b"a", t(max)), Err(ReplayError::Replayed));
}

// ---------------------------------------------------------------- replay guard: the order

#[test]
fn the_signature_is_checked_only_inside_the_window_and_a_bad_one_changes_nothing() {
    let mut g: ReplayGuard<8> = ReplayGuard::new();
    assert_eq!(g.admit(t(1_000), b"n1", t(1_000), || true), Ok(()));
    let calls = Cell::new(0);
    let verify = |ok| {
        calls.set(calls.get() + 1);
        ok
    };

    assert_eq!(
        g.admit(t(1_000 - T - 1), b"x", t(1_000), || verify(true)),
        Err(ReplayError::Stale)
    );
    assert_eq!(
        g.admit(t(1_000 + T + 1), b"x", t(1_000), || verify(true)),
        Err(ReplayError::FromFuture)
    );
    assert_eq!(
        g.admit(t(1_000), b"", t(1_000), || verify(true)),
        Err(ReplayError::InvalidNonce { len: 0 })
    );
    assert_eq!(
        calls.get(),
        0,
        "no signature check for a request refused earlier"
    );

    let before = g.clone();
    assert_eq!(
        g.admit(t(1_001), b"n2", t(1_001), || verify(false)),
        Err(ReplayError::BadSignature)
    );
    assert_eq!(calls.get(), 1);
    assert_eq!(g, before);
    // A forged copy of a remembered request is a bad signature too, not a replay: the
    // signature comes first.
    assert_eq!(
        g.admit(t(1_000), b"n1", t(1_001), || false),
        Err(ReplayError::BadSignature)
    );
    assert_eq!(g, before);
    // The genuine request is still accepted after the forgeries.
    assert_eq!(g.admit(t(1_001), b"n2", t(1_001), || verify(true)), Ok(()));
    assert_eq!(g.len(), 2);
}

#[test]
fn a_remembered_nonce_is_replayed_whatever_its_timestamp() {
    let mut g: ReplayGuard<8> = ReplayGuard::new();
    assert_eq!(g.record(t(1_000), b"n", t(1_000)), Ok(()));
    let before = g.clone();
    assert_eq!(
        g.record(t(1_000), b"n", t(1_100)),
        Err(ReplayError::Replayed)
    );
    assert_eq!(
        g.record(t(1_050), b"n", t(1_100)),
        Err(ReplayError::Replayed)
    );
    assert_eq!(g, before, "a refusal changes nothing");
    // Nonces are compared exactly, as bytes.
    assert_eq!(g.record(t(1_000), b"N", t(1_100)), Ok(()));
    assert_eq!(g.record(t(1_000), b"n\0", t(1_100)), Ok(()));
}

#[test]
fn nonces_of_1_to_64_bytes_are_accepted_and_others_refused() {
    let mut g: ReplayGuard<8> = ReplayGuard::new();
    let long = [b'x'; MAX_NONCE_LEN + 1];
    assert_eq!(MAX_NONCE_LEN, 64);
    assert_eq!(g.record(t(1), &long[..1], t(1)), Ok(()));
    assert_eq!(g.record(t(1), &long[..64], t(1)), Ok(()));
    assert_eq!(
        g.record(t(1), &long, t(1)),
        Err(ReplayError::InvalidNonce { len: 65 })
    );
    assert_eq!(
        g.record(t(1), b"", t(1)),
        Err(ReplayError::InvalidNonce { len: 0 })
    );
    assert_eq!(g.len(), 2);
}

// ---------------------------------------------------------------- replay guard: the floor

#[test]
fn an_expired_entry_is_dropped_on_record_and_the_floor_rises_to_it() {
    let mut g: ReplayGuard<8> = ReplayGuard::with_tolerance(paystate::Duration::from_secs(10));
    assert_eq!(g.record(t(100), b"a", t(100)), Ok(()));
    assert_eq!(g.record(t(105), b"b", t(105)), Ok(()));
    // At 111 the entry of 100 is 11 s old: the next record drops it.
    assert_eq!(g.check_window(t(101), t(111)), Ok(()));
    assert_eq!(g.record(t(110), b"c", t(111)), Ok(()));
    assert_eq!((g.len(), g.floor()), (2, Some(t(100))));
    // Floor equality: a timestamp equal to the floor is stale, one above it is not.
    let mut back = g.clone();
    assert_eq!(back.record(t(100), b"d", t(100)), Err(ReplayError::Stale));
    assert_eq!(back.record(t(101), b"d", t(100)), Ok(()));
    // The dropped nonce is new again for a later timestamp (the exact pair is below the floor).
    assert_eq!(g.record(t(106), b"a", t(111)), Ok(()));
}

#[test]
fn an_expired_entry_with_the_same_nonce_does_not_count_as_a_replay() {
    let mut g: ReplayGuard<8> = ReplayGuard::with_tolerance(paystate::Duration::from_secs(10));
    assert_eq!(g.record(t(100), b"a", t(100)), Ok(()));
    assert_eq!(g.record(t(111), b"a", t(111)), Ok(()));
    assert_eq!((g.len(), g.floor()), (1, Some(t(100))));
    assert_eq!(g.record(t(100), b"a", t(105)), Err(ReplayError::Stale));
}

#[test]
fn a_full_guard_evicts_the_oldest_entry_and_raises_the_floor() {
    let mut g: ReplayGuard<3> = ReplayGuard::new();
    assert_eq!(g.capacity(), 3);
    for (ts, n) in [(1_000, b"a"), (1_000, b"b"), (1_002, b"c")] {
        assert_eq!(g.record(t(ts), n, t(1_002)), Ok(()));
    }
    // Full and nothing expired: one entry of second 1000 is evicted, the floor rises to 1000,
    // and the new request is accepted even though it is older than the floor (§3.1 step 4).
    assert_eq!(g.record(t(999), b"d", t(1_002)), Ok(()));
    assert_eq!((g.len(), g.floor()), (3, Some(t(1_000))));
    // From now on anything at or below the floor is stale at step 2, remembered or not.
    let before = g.clone();
    assert_eq!(g.record(t(999), b"d", t(1_002)), Err(ReplayError::Stale));
    assert_eq!(g.record(t(1_000), b"a", t(1_002)), Err(ReplayError::Stale));
    assert_eq!(g.record(t(1_000), b"b", t(1_002)), Err(ReplayError::Stale));
    assert_eq!(g.record(t(1_000), b"e", t(1_002)), Err(ReplayError::Stale));
    assert_eq!(g, before, "refusals change nothing");
    // A newer request evicts the oldest remaining entry (d, at 999): the floor stays at 1000.
    assert_eq!(g.record(t(1_001), b"e", t(1_002)), Ok(()));
    assert_eq!((g.len(), g.floor()), (3, Some(t(1_000))));
    assert_eq!(
        g.record(t(1_002), b"c", t(1_003)),
        Err(ReplayError::Replayed)
    );
    assert_eq!(
        g.record(t(1_001), b"e", t(1_003)),
        Err(ReplayError::Replayed)
    );
}

#[test]
fn below_capacity_nothing_is_evicted() {
    let mut g: ReplayGuard<64> = ReplayGuard::new();
    for i in 0u32..64 {
        assert_eq!(g.record(t(5_000), &i.to_le_bytes(), t(5_000)), Ok(()));
    }
    assert_eq!((g.len(), g.floor()), (64, None));
    for i in 0u32..64 {
        assert_eq!(
            g.record(t(5_000), &i.to_le_bytes(), t(5_100)),
            Err(ReplayError::Replayed)
        );
    }
}

#[test]
fn a_clock_that_goes_back_never_lets_a_replay_through() {
    let mut g: ReplayGuard<8> = ReplayGuard::with_tolerance(paystate::Duration::from_secs(10));
    assert_eq!(g.record(t(1_000), b"a", t(1_000)), Ok(()));
    // The clock jumps ahead: the entry expires but is dropped only by the next record.
    assert_eq!(g.record(t(5_000), b"b", t(5_000)), Ok(()));
    assert_eq!(g.floor(), Some(t(1_000)));
    // The clock goes back to where it was: the first request is still refused (floor), and so
    // is everything else that old, until the clock catches up.
    assert_eq!(g.record(t(1_000), b"a", t(1_000)), Err(ReplayError::Stale));
    assert_eq!(g.record(t(1_001), b"z", t(1_000)), Ok(()));
    // Entries from "the future" of a clock that went back stay remembered.
    assert_eq!(
        g.record(t(5_000), b"b", t(4_995)),
        Err(ReplayError::Replayed)
    );
    assert_eq!(g.len(), 2);
}

#[test]
fn error_codes_are_the_drivers() {
    let codes = [
        (ReplayError::Stale, "stale"),
        (ReplayError::FromFuture, "from_future"),
        (ReplayError::BadSignature, "bad_signature"),
        (ReplayError::Replayed, "replayed"),
        (ReplayError::InvalidNonce { len: 0 }, "invalid_nonce"),
    ];
    for (e, code) in codes {
        assert_eq!(e.code(), code);
    }
    assert_eq!(
        ReplayError::InvalidNonce { len: 65 }.to_string(),
        "invalid_nonce: 65 bytes (must be 1..=64)"
    );
}

#[test]
fn a_guard_can_be_a_static() {
    static GUARD: ReplayGuard<8> = ReplayGuard::new();
    assert!(GUARD.is_empty());
    assert_eq!(GUARD, ReplayGuard::default());
}

// ---------------------------------------------------------------- idempotency store

fn req(body: &[u8]) -> RequestFingerprint {
    RequestFingerprint::of_parts(&[b"POST", b"/refunds", body])
}

const R: u64 = IdempotencyStore::<8, u32>::DEFAULT_RETENTION.as_secs();

#[test]
fn begin_complete_replay_in_use_and_conflict() {
    let mut s: IdempotencyStore<8, u32> = IdempotencyStore::new();
    assert_eq!(s.retention(), paystate::Duration::from_secs(86_400));
    let (a, b) = (req(b"amount=1"), req(b"amount=2"));

    assert_eq!(s.begin(b"k", a, t(100)), Ok(Begin::Proceed));
    let before = s.clone();
    assert_eq!(s.begin(b"k", a, t(101)), Ok(Begin::InUse));
    assert_eq!(s.begin(b"k", b, t(101)), Ok(Begin::Conflict));
    assert_eq!(s, before, "answers from memory change nothing");

    assert_eq!(s.complete(b"k", 7, t(102)), Ok(()));
    assert_eq!(s.begin(b"k", a, t(103)), Ok(Begin::Replay(7)));
    assert_eq!(s.begin(b"k", b, t(103)), Ok(Begin::Conflict));
    assert_eq!(
        s.complete(b"k", 8, t(104)),
        Err(IdempotencyError::AlreadyCompleted)
    );
    assert_eq!(s.release(b"k"), Err(IdempotencyError::AlreadyCompleted));
    assert_eq!(s.begin(b"k", a, t(105)), Ok(Begin::Replay(7)));
    assert_eq!(Begin::<u32>::Proceed.name(), "proceed");
    assert_eq!(Begin::Replay(1).name(), "replay");
}

#[test]
fn request_fingerprints_separate_their_parts() {
    assert_ne!(
        RequestFingerprint::of_parts(&[b"ab", b"c"]),
        RequestFingerprint::of_parts(&[b"a", b"bc"])
    );
    assert_eq!(
        RequestFingerprint::of(b"abc"),
        RequestFingerprint::of_parts(&[b"abc"])
    );
    let d = [7u8; 32];
    assert_eq!(RequestFingerprint::from_digest(d).as_bytes(), &d);
}

#[test]
fn complete_and_release_of_an_unknown_key_change_nothing() {
    let mut s: IdempotencyStore<8, u32> = IdempotencyStore::new();
    let before = s.clone();
    assert_eq!(s.complete(b"k", 1, t(1)), Err(IdempotencyError::UnknownKey));
    assert_eq!(s.release(b"k"), Err(IdempotencyError::UnknownKey));
    assert_eq!(s, before);
}

#[test]
fn a_released_key_proceeds_again() {
    let mut s: IdempotencyStore<8, u32> = IdempotencyStore::new();
    assert_eq!(s.begin(b"k", req(b"1"), t(100)), Ok(Begin::Proceed));
    assert_eq!(s.release(b"k"), Ok(()));
    assert_eq!(
        (s.len(), s.floor()),
        (0, None),
        "release does not raise the floor"
    );
    assert_eq!(s.release(b"k"), Err(IdempotencyError::UnknownKey));
    assert_eq!(
        s.complete(b"k", 1, t(101)),
        Err(IdempotencyError::UnknownKey)
    );
    // Even with a different request: the key is free.
    assert_eq!(s.begin(b"k", req(b"2"), t(102)), Ok(Begin::Proceed));
}

#[test]
fn keys_of_1_to_255_bytes_are_accepted_and_others_refused() {
    let mut s: IdempotencyStore<8, u32> = IdempotencyStore::new();
    let long = [b'k'; MAX_KEY_LEN + 1];
    let r = req(b"");
    assert_eq!(s.begin(&long[..1], r, t(1)), Ok(Begin::Proceed));
    assert_eq!(s.begin(&long[..255], r, t(1)), Ok(Begin::Proceed));
    for bad in [&long[..], &b""[..]] {
        let e = IdempotencyError::InvalidKey { len: bad.len() };
        assert_eq!(s.begin(bad, r, t(1)), Err(e));
        assert_eq!(s.complete(bad, 1, t(1)), Err(e));
        assert_eq!(s.release(bad), Err(e));
    }
    assert_eq!(s.len(), 2);
}

#[test]
fn a_key_is_remembered_for_exactly_the_retention() {
    let mut s: IdempotencyStore<8, u32> = IdempotencyStore::new();
    let a = req(b"1");
    assert_eq!(s.begin(b"k", a, t(1_000)), Ok(Begin::Proceed));
    assert_eq!(s.complete(b"k", 9, t(1_000 + R)), Ok(()));
    assert_eq!(s.begin(b"k", a, t(1_000 + R)), Ok(Begin::Replay(9)));
    // One second later it is past retention: a new request, and the old entry leaves memory.
    assert_eq!(s.begin(b"k", a, t(1_001 + R)), Ok(Begin::Proceed));
    assert_eq!((s.len(), s.floor()), (1, Some(t(1_000))));
    assert_eq!(s.begin(b"k", a, t(1_002 + R)), Ok(Begin::InUse));
}

#[test]
fn complete_past_retention_is_an_unknown_key() {
    let mut s: IdempotencyStore<8, u32> =
        IdempotencyStore::with_retention(paystate::Duration::from_secs(10));
    assert_eq!(s.begin(b"k", req(b"1"), t(100)), Ok(Begin::Proceed));
    let before = s.clone();
    assert_eq!(
        s.complete(b"k", 1, t(111)),
        Err(IdempotencyError::UnknownKey)
    );
    assert_eq!(s, before);
    assert_eq!(s.complete(b"k", 1, t(110)), Ok(()));
}

#[test]
fn a_full_store_evicts_the_earliest_key_and_refuses_unknown_keys_until_its_retention_ends() {
    let mut s: IdempotencyStore<2, u32> =
        IdempotencyStore::with_retention(paystate::Duration::from_secs(100));
    let r = req(b"1");
    assert_eq!(s.begin(b"a", r, t(1_000)), Ok(Begin::Proceed));
    assert_eq!(s.complete(b"a", 1, t(1_000)), Ok(()));
    assert_eq!(s.begin(b"b", r, t(1_010)), Ok(Begin::Proceed));
    // Full: "c" evicts "a" (begun earliest), and the floor rises to 1000.
    assert_eq!(s.begin(b"c", r, t(1_020)), Ok(Begin::Proceed));
    assert_eq!((s.len(), s.floor()), (2, Some(t(1_000))));
    // "a" is unknown now and may be within its retention: refused, never executed again.
    let refused = Err(IdempotencyError::MaybeForgotten { until: t(1_101) });
    let before = s.clone();
    assert_eq!(s.begin(b"a", r, t(1_030)), refused);
    assert_eq!(s.begin(b"d", r, t(1_030)), refused, "it could be any key");
    assert_eq!(
        s.begin(b"a", r, t(1_100)),
        refused,
        "floor + R is still inside"
    );
    assert_eq!(s, before);
    // Known keys are still answered.
    assert_eq!(s.begin(b"b", r, t(1_100)), Ok(Begin::InUse));
    // At floor + R + 1 "a" is past its retention anyway: it may proceed. "b" (begun at 1010)
    // is still live, so the full store evicts it and refuses again until 1010 + R + 1.
    assert_eq!(s.begin(b"a", r, t(1_101)), Ok(Begin::Proceed));
    assert_eq!(s.floor(), Some(t(1_010)));
    assert_eq!(
        s.begin(b"b", r, t(1_101)),
        Err(IdempotencyError::MaybeForgotten { until: t(1_111) })
    );
    assert_eq!(
        IdempotencyError::MaybeForgotten { until: t(1_111) }.code(),
        "maybe_forgotten"
    );
}

#[test]
fn an_in_flight_key_can_be_evicted_and_its_completion_is_then_refused() {
    let mut s: IdempotencyStore<1, u32> =
        IdempotencyStore::with_retention(paystate::Duration::from_secs(100));
    let r = req(b"1");
    assert_eq!(s.begin(b"a", r, t(1_000)), Ok(Begin::Proceed));
    assert_eq!(s.begin(b"b", r, t(1_001)), Ok(Begin::Proceed));
    assert_eq!(
        s.complete(b"a", 1, t(1_002)),
        Err(IdempotencyError::UnknownKey)
    );
    assert!(matches!(
        s.begin(b"a", r, t(1_002)),
        Err(IdempotencyError::MaybeForgotten { .. })
    ));
}

#[test]
fn a_clock_that_goes_back_never_re_executes_a_key() {
    let mut s: IdempotencyStore<8, u32> =
        IdempotencyStore::with_retention(paystate::Duration::from_secs(100));
    let r = req(b"1");
    assert_eq!(s.begin(b"a", r, t(1_000)), Ok(Begin::Proceed));
    // The clock jumps a day ahead: "a" is dropped when "b" is recorded.
    assert_eq!(s.begin(b"b", r, t(90_000)), Ok(Begin::Proceed));
    assert_eq!((s.len(), s.floor()), (1, Some(t(1_000))));
    // Back to where it was: "a" is within its retention again by this clock, and unknown.
    assert_eq!(
        s.begin(b"a", r, t(1_050)),
        Err(IdempotencyError::MaybeForgotten { until: t(1_101) })
    );
    // "b", begun in the clock's future, is still remembered.
    assert_eq!(s.begin(b"b", r, t(1_050)), Ok(Begin::InUse));
}

#[test]
fn times_at_the_ends_of_time_are_answered_without_overflow() {
    let max = u64::MAX;
    let mut s: IdempotencyStore<1, u32> = IdempotencyStore::new();
    let r = req(b"1");
    assert_eq!(s.begin(b"a", r, t(max)), Ok(Begin::Proceed));
    assert_eq!(s.begin(b"a", r, t(0)), Ok(Begin::InUse));
    assert_eq!(s.begin(b"b", r, t(0)), Ok(Begin::Proceed));
    assert_eq!(s.floor(), Some(t(max)));
    // The floor is at the end of time: unknown keys are refused from now on.
    assert_eq!(
        s.begin(b"c", r, t(max)),
        Err(IdempotencyError::MaybeForgotten { until: t(max) })
    );
    let mut s: IdempotencyStore<1, u32> =
        IdempotencyStore::with_retention(paystate::Duration::from_secs(max));
    assert_eq!(s.begin(b"a", r, t(0)), Ok(Begin::Proceed));
    assert_eq!(s.begin(b"a", r, t(max)), Ok(Begin::InUse));
}

// ---------------------------------------------------------------- memory

/// The memory each capacity costs, as documented in docs/guards.md and on the types.
/// Run with `--nocapture` to print them.
#[test]
#[cfg(target_pointer_width = "64")]
fn memory_per_capacity_is_as_documented() {
    let replay = [
        size_of::<ReplayGuard<8>>(),
        size_of::<ReplayGuard<64>>(),
        size_of::<ReplayGuard<1024>>(),
    ];
    let store = [
        size_of::<IdempotencyStore<8, u64>>(),
        size_of::<IdempotencyStore<64, u64>>(),
        size_of::<IdempotencyStore<1024, u64>>(),
    ];
    println!("ReplayGuard<8|64|1024>: {replay:?} bytes");
    println!("IdempotencyStore<8|64|1024, u64>: {store:?} bytes");
    assert_eq!(replay, [288, 2_080, 32_800]);
    assert_eq!(store, [672, 5_152, 81_952]);
}
