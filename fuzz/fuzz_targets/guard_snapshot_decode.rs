//! Guard snapshots from arbitrary bytes (docs/spec.md §5): the replay guard's and the idempotency
//! store's decoders.
//!
//! The input is the snapshot itself, so the seed corpus holds real snapshots. Decoding never
//! panics or allocates; what decodes is refused by the other decoder and by the payment's,
//! re-encodes in no more bytes to a snapshot that decodes to an equal guard (into a larger
//! capacity too), and a restored guard stays well formed and answers requests without
//! panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paystate::Timestamp;
use paystate::guard::snapshot::{self, GuardSnapshotError};
use paystate::guard::{IdempotencyStore, ReplayGuard, RequestFingerprint};
use paystate_fuzz::no_alloc;

type Store<const N: usize> = IdempotencyStore<N, u64>;

fn replay_guard(data: &[u8]) {
    let Ok(guard) = no_alloc("decode_replay_guard", || {
        snapshot::decode_replay_guard::<8>(data)
    }) else {
        return;
    };
    assert!(guard.is_consistent(), "{guard:?}");
    assert!(snapshot::decode_idempotency_store::<8, u64>(data).is_err());
    assert!(paystate::snapshot::decode(data).is_err());

    let mut buf = [0u8; snapshot::replay_guard_max_size(8)];
    let bytes = snapshot::encode_replay_guard(&guard, &mut buf).expect("max_size suffices");
    assert!(bytes.len() <= data.len(), "re-encoded longer than decoded");
    assert_eq!(
        snapshot::decode_replay_guard::<8>(bytes).as_ref(),
        Ok(&guard)
    );
    let wide: ReplayGuard<11> = snapshot::decode_replay_guard(data).expect("a larger capacity");
    let mut wide_buf = [0u8; snapshot::replay_guard_max_size(11)];
    let wide_bytes = snapshot::encode_replay_guard(&wide, &mut wide_buf).expect("max_size");
    assert_eq!(*wide_bytes, *bytes, "capacity 11 encodes differently");

    // Whatever the snapshot says, the guard goes on answering and stays well formed.
    let mut guard = guard;
    let floor = guard.floor().map_or(0, Timestamp::as_secs);
    for (i, at) in [0, floor, floor.saturating_add(1), u64::MAX]
        .into_iter()
        .enumerate()
    {
        let t = Timestamp::from_secs(at);
        let nonce = format!("fz-{i}");
        let _ = no_alloc("ReplayGuard::admit", || {
            guard.admit(t, nonce.as_bytes(), t, || true)
        });
        assert!(guard.is_consistent());
    }
}

fn idempotency_store(data: &[u8]) {
    let Ok(store) = no_alloc("decode_idempotency_store", || {
        snapshot::decode_idempotency_store::<8, u64>(data)
    }) else {
        return;
    };
    assert!(snapshot::decode_replay_guard::<8>(data).is_err());
    assert!(paystate::snapshot::decode(data).is_err());

    let mut buf = [0u8; snapshot::idempotency_store_max_size(8, 10)];
    let bytes = snapshot::encode_idempotency_store(&store, &mut buf).expect("max_size suffices");
    assert!(bytes.len() <= data.len(), "re-encoded longer than decoded");
    assert_eq!(
        snapshot::decode_idempotency_store::<8, u64>(bytes).as_ref(),
        Ok(&store)
    );
    let wide: Store<11> = snapshot::decode_idempotency_store(data).expect("a larger capacity");
    let mut wide_buf = [0u8; snapshot::idempotency_store_max_size(11, 10)];
    let wide_bytes = snapshot::encode_idempotency_store(&wide, &mut wide_buf).expect("max_size");
    assert_eq!(*wide_bytes, *bytes, "capacity 11 encodes differently");

    let mut store = store;
    let request = RequestFingerprint::of(b"fz");
    let floor = store.floor().map_or(0, Timestamp::as_secs);
    for (i, at) in [0, floor, floor.saturating_add(1), u64::MAX]
        .into_iter()
        .enumerate()
    {
        let t = Timestamp::from_secs(at);
        let key = format!("fz-{i}");
        let _ = no_alloc("IdempotencyStore::begin", || {
            store.begin(key.as_bytes(), request, t)
        });
        let _ = store.complete(key.as_bytes(), at, t);
    }
}

fuzz_target!(|data: &[u8]| {
    match data.first() {
        None => {
            assert_eq!(
                snapshot::decode_replay_guard::<8>(data),
                Err(GuardSnapshotError::Empty)
            );
        }
        Some(&snapshot::REPLAY_GUARD_FORMAT) => replay_guard(data),
        Some(&snapshot::IDEMPOTENCY_STORE_FORMAT) => idempotency_store(data),
        Some(&other) => {
            assert_eq!(
                snapshot::decode_replay_guard::<8>(data),
                Err(GuardSnapshotError::UnknownVersion(other))
            );
            assert_eq!(
                snapshot::decode_idempotency_store::<8, u64>(data),
                Err(GuardSnapshotError::UnknownVersion(other))
            );
        }
    }
});
