//! The memory behind both guards: a fixed-capacity set of entries, each a 128-bit fingerprint
//! and a time, that answers "is this fingerprint here?" and "which entry is the oldest?" without
//! scanning.
//!
//! Two arrays, no allocation:
//!
//! - `heap` holds the entries as a binary min-heap ordered by `(time, fingerprint)`, so the
//!   oldest is at position 0 and leaves in O(log N). The fingerprint breaks ties, which makes
//!   the order total and every eviction deterministic.
//! - `index` is an open-addressing hash table of `2·N` slots (load ≤ ½) with linear probing and
//!   backward-shift deletion (no tombstones, so probes stay short however long the table
//!   lives). A slot holds `heap position + 1`, or 0 when empty. It is declared `[[u32; N]; 2]`
//!   because stable Rust cannot write `[u32; 2 * N]`.
//!
//! Fingerprints are SHA-256 output, so their first 8 bytes are a uniform hash.

use crate::time::Timestamp;

/// A 128-bit fingerprint (a truncated SHA-256).
pub(crate) type Fingerprint = [u8; 16];

/// The largest capacity either guard accepts: positions (+1) must fit the `u32` index slots
/// and `2·N` must fit `usize` on every target.
pub(crate) const MAX_CAPACITY: usize = (u32::MAX as usize) / 4;

/// A value with a constant placeholder for unused slots, so a table can be built in a `const fn`
/// and a removed entry leaves no trace (derived equality compares whole arrays).
pub(crate) trait Blank {
    const BLANK: Self;
}

impl Blank for () {
    const BLANK: () = ();
}

/// One remembered item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry<V> {
    pub(crate) time: Timestamp,
    pub(crate) fp: Fingerprint,
    pub(crate) value: V,
}

impl<V: Blank> Entry<V> {
    const BLANK: Entry<V> = Entry {
        time: Timestamp::EPOCH,
        fp: [0; 16],
        value: V::BLANK,
    };
}

impl<V> Entry<V> {
    fn precedes(&self, other: &Entry<V>) -> bool {
        (self.time, self.fp) < (other.time, other.fp)
    }
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Table<const N: usize, V> {
    /// `heap[..len]` is a min-heap on `(time, fp)`; `heap[len..]` are all `Entry::BLANK`.
    heap: [Entry<V>; N],
    /// Hash index: 0 = empty, else heap position + 1.
    index: [[u32; N]; 2],
    len: usize,
}

impl<const N: usize, V: Blank> Table<N, V> {
    const CAPACITY_OK: () = assert!(
        N >= 1 && N <= MAX_CAPACITY,
        "a guard's capacity must be at least 1 (and below 2^30)"
    );

    pub(crate) const fn new() -> Self {
        let () = Self::CAPACITY_OK;
        Table {
            heap: [Entry::<V>::BLANK; N],
            index: [[0; N]; 2],
            len: 0,
        }
    }

    /// Removes the entry at heap position `pos` and returns it.
    pub(crate) fn remove_at(&mut self, pos: usize) -> Option<Entry<V>> {
        if pos >= self.len {
            return None;
        }
        let fp = self.heap.get(pos)?.fp;
        let slot = self.slot_of(pos, &fp)?;
        self.delete_slot(slot);
        let last = self.len.checked_sub(1)?;
        if pos != last {
            // Move the last entry into the hole and repoint its index slot.
            let last_fp = self.heap.get(last)?.fp;
            if let Some(s) = self.slot_of(last, &last_fp) {
                self.set_slot(s, pos);
            }
            self.heap.swap(pos, last);
        }
        let removed = core::mem::replace(self.heap.get_mut(last)?, Entry::<V>::BLANK);
        self.len = last;
        if pos < self.len {
            self.restore(pos);
        }
        Some(removed)
    }

    /// Removes and returns the oldest entry.
    pub(crate) fn pop_oldest(&mut self) -> Option<Entry<V>> {
        self.remove_at(0)
    }
}

impl<const N: usize, V> Table<N, V> {
    /// Number of index slots.
    const SLOTS: usize = N * 2;

    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    pub(crate) const fn is_full(&self) -> bool {
        self.len >= N
    }

    pub(crate) fn oldest(&self) -> Option<&Entry<V>> {
        if self.len == 0 {
            None
        } else {
            self.heap.first()
        }
    }

    pub(crate) fn get(&self, pos: usize) -> Option<&Entry<V>> {
        if pos < self.len {
            self.heap.get(pos)
        } else {
            None
        }
    }

    pub(crate) fn get_mut(&mut self, pos: usize) -> Option<&mut Entry<V>> {
        if pos < self.len {
            self.heap.get_mut(pos)
        } else {
            None
        }
    }

    /// The heap position of the entry with fingerprint `fp`.
    pub(crate) fn find(&self, fp: &Fingerprint) -> Option<usize> {
        let slots = self.index.as_flattened();
        let mut i = home(fp, Self::SLOTS);
        for _ in 0..Self::SLOTS {
            let tag = *slots.get(i)?;
            let pos = position(tag)?;
            if self.heap.get(pos).is_some_and(|e| e.fp == *fp) {
                return Some(pos);
            }
            i = next(i, Self::SLOTS);
        }
        None
    }

    /// Adds an entry whose fingerprint is not in the table. Gives the value back when full.
    pub(crate) fn insert(&mut self, time: Timestamp, fp: Fingerprint, value: V) -> Result<(), V> {
        let pos = self.len;
        if pos >= N {
            return Err(value);
        }
        // Find the free slot first, so that a failure leaves nothing half-done. With at most N
        // entries in 2·N slots there always is one.
        let Some(slot) = self.free_slot(&fp) else {
            return Err(value);
        };
        let Some(place) = self.heap.get_mut(pos) else {
            return Err(value);
        };
        *place = Entry { time, fp, value };
        self.set_slot(slot, pos);
        self.len = pos.saturating_add(1);
        self.sift_up(pos);
        Ok(())
    }

    fn free_slot(&self, fp: &Fingerprint) -> Option<usize> {
        let slots = self.index.as_flattened();
        let mut i = home(fp, Self::SLOTS);
        for _ in 0..Self::SLOTS {
            if *slots.get(i)? == 0 {
                return Some(i);
            }
            i = next(i, Self::SLOTS);
        }
        None
    }

    /// The index slot that points at heap position `pos`, whose fingerprint is `fp`.
    fn slot_of(&self, pos: usize, fp: &Fingerprint) -> Option<usize> {
        let slots = self.index.as_flattened();
        let mut i = home(fp, Self::SLOTS);
        for _ in 0..Self::SLOTS {
            let tag = *slots.get(i)?;
            if position(tag)? == pos {
                return Some(i);
            }
            i = next(i, Self::SLOTS);
        }
        None
    }

    fn set_slot(&mut self, slot: usize, pos: usize) {
        // `pos < N ≤ MAX_CAPACITY`, so `pos + 1` fits a u32.
        let tag = u32::try_from(pos).map_or(0, |p| p.saturating_add(1));
        if let Some(s) = self.index.as_flattened_mut().get_mut(slot) {
            *s = tag;
        }
    }

    /// Empties `slot` and shifts the following probe run back, so that every entry stays
    /// reachable from its home slot without tombstones.
    fn delete_slot(&mut self, slot: usize) {
        let mut hole = slot;
        let mut j = slot;
        if let Some(s) = self.index.as_flattened_mut().get_mut(hole) {
            *s = 0;
        }
        for _ in 0..Self::SLOTS {
            j = next(j, Self::SLOTS);
            let tag = self.index.as_flattened().get(j).copied().unwrap_or(0);
            let Some(pos) = position(tag) else {
                break;
            };
            let Some(entry) = self.heap.get(pos) else {
                break;
            };
            let h = home(&entry.fp, Self::SLOTS);
            // The entry at `j` may stay only if its home lies cyclically in (hole, j].
            let stays = if hole <= j {
                hole < h && h <= j
            } else {
                hole < h || h <= j
            };
            if !stays {
                let slots = self.index.as_flattened_mut();
                if let Some(s) = slots.get_mut(hole) {
                    *s = tag;
                }
                if let Some(s) = slots.get_mut(j) {
                    *s = 0;
                }
                hole = j;
            }
        }
    }

    /// Swaps two heap positions and repoints their index slots.
    fn swap(&mut self, a: usize, b: usize) {
        let (Some(ea), Some(eb)) = (self.heap.get(a), self.heap.get(b)) else {
            return;
        };
        let (sa, sb) = (self.slot_of(a, &ea.fp), self.slot_of(b, &eb.fp));
        self.heap.swap(a, b);
        if let Some(s) = sa {
            self.set_slot(s, b);
        }
        if let Some(s) = sb {
            self.set_slot(s, a);
        }
    }

    fn precedes(&self, a: usize, b: usize) -> bool {
        match (self.get(a), self.get(b)) {
            (Some(x), Some(y)) => x.precedes(y),
            _ => false,
        }
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = parent(pos);
            if !self.precedes(pos, parent) {
                break;
            }
            self.swap(pos, parent);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        loop {
            // `pos < N ≤ 2^30`, so these cannot overflow.
            let left = pos.saturating_mul(2).saturating_add(1);
            let right = left.saturating_add(1);
            let mut first = pos;
            if self.precedes(left, first) {
                first = left;
            }
            if self.precedes(right, first) {
                first = right;
            }
            if first == pos {
                break;
            }
            self.swap(pos, first);
            pos = first;
        }
    }

    /// Restores heap order around `pos` after an entry was moved there.
    fn restore(&mut self, pos: usize) {
        if pos > 0 && self.precedes(pos, parent(pos)) {
            self.sift_up(pos);
        } else {
            self.sift_down(pos);
        }
    }

    /// Calls `f` on every entry in ascending `(time, fp)` order — the order in which they
    /// leave memory — whatever the heap's layout. Sorts positions, not entries: `4·N` bytes
    /// of stack, O(N log N), no allocation.
    #[cfg(feature = "serde")]
    pub(crate) fn try_for_each_in_order<E>(
        &self,
        mut f: impl FnMut(&Entry<V>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut order = [0u32; N];
        let live = order.get_mut(..self.len).unwrap_or(&mut []);
        for (pos, slot) in live.iter_mut().enumerate() {
            // `pos < N ≤ MAX_CAPACITY`, which fits a u32.
            *slot = u32::try_from(pos).unwrap_or(u32::MAX);
        }
        let key = |pos: &u32| {
            usize::try_from(*pos)
                .ok()
                .and_then(|p| self.get(p))
                .map(|e| (e.time, e.fp))
        };
        live.sort_unstable_by_key(key);
        for pos in live.iter() {
            if let Some(entry) = usize::try_from(*pos).ok().and_then(|p| self.get(p)) {
                f(entry)?;
            }
        }
        Ok(())
    }

    /// Whether both tables hold the same entries (fingerprint, time and value), however each
    /// laid them out. Entries are unique by fingerprint, so equal lengths and every entry of
    /// `self` found in `other` make a bijection.
    pub(crate) fn same_entries(&self, other: &Self) -> bool
    where
        V: PartialEq,
    {
        self.len == other.len
            && self
                .heap
                .get(..self.len)
                .unwrap_or(&[])
                .iter()
                .all(|e| other.find(&e.fp).and_then(|p| other.get(p)) == Some(e))
    }

    /// Checks every structural invariant; for tests and the fuzz targets.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn is_consistent(&self) -> bool {
        let slots = self.index.as_flattened();
        let live = self.heap.get(..self.len).unwrap_or(&[]);
        let heap_ordered = (1..self.len).all(|i| !self.precedes(i, parent(i)));
        let each_found = live
            .iter()
            .enumerate()
            .all(|(pos, e)| self.find(&e.fp) == Some(pos));
        let tags_used = slots.iter().filter(|&&t| t != 0).count() == self.len;
        let tags_valid = slots
            .iter()
            .all(|&t| position(t).is_none_or(|p| p < self.len));
        heap_ordered && each_found && tags_used && tags_valid
    }
}

/// The heap position stored in an index slot, or `None` for an empty slot.
fn position(tag: u32) -> Option<usize> {
    tag.checked_sub(1).and_then(|p| usize::try_from(p).ok())
}

/// The home slot of `fp` among `slots`: its first 64 bits scaled to the table (Lemire's
/// multiply-shift, no division).
fn home(fp: &Fingerprint, slots: usize) -> usize {
    let [b0, b1, b2, b3, b4, b5, b6, b7, ..] = *fp;
    let h = u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]);
    // A 64-bit by 64-bit product always fits 128 bits.
    let scaled = u128::from(h).wrapping_mul(slots as u128) >> 64;
    usize::try_from(scaled).unwrap_or(0)
}

/// The heap parent of position `pos` (> 0).
const fn parent(pos: usize) -> usize {
    pos.saturating_sub(1) / 2
}

fn next(i: usize, slots: usize) -> usize {
    let n = i.saturating_add(1);
    if n >= slots { 0 } else { n }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    fn fp(seed: u16) -> Fingerprint {
        // A few low-entropy fingerprints share home slots on purpose.
        let mut f = [0u8; 16];
        f[..2].copy_from_slice(&seed.to_le_bytes());
        f[7] = (seed % 3) as u8;
        f
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u16, u64),
        RemoveFp(u16),
        PopOldest,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u16..40, 0u64..20).prop_map(|(k, t)| Op::Insert(k, t)),
            2 => (0u16..40).prop_map(Op::RemoveFp),
            1 => Just(Op::PopOldest),
        ]
    }

    #[test]
    fn same_entries_ignores_the_layout() {
        let (mut a, mut b): (Table<4, ()>, Table<4, ()>) = (Table::new(), Table::new());
        for k in [1u16, 2, 3] {
            a.insert(Timestamp::from_secs(u64::from(k)), fp(k), ())
                .unwrap();
        }
        for k in [3u16, 2, 1] {
            b.insert(Timestamp::from_secs(u64::from(k)), fp(k), ())
                .unwrap();
        }
        assert!(a != b, "the heaps are laid out differently");
        assert!(a.same_entries(&b) && b.same_entries(&a));
        // One time differs: not the same.
        b.pop_oldest();
        b.insert(Timestamp::from_secs(9), fp(1), ()).unwrap();
        assert!(!a.same_entries(&b) && !b.same_entries(&a));
        b.pop_oldest();
        assert!(!a.same_entries(&b) && !b.same_entries(&a));
    }

    proptest! {
        /// The table behaves as an ordered map from fingerprint to time, and its heap and
        /// index stay consistent, whatever the mix of inserts, removals and evictions.
        #[test]
        fn behaves_as_a_map_ordered_by_time(ops in proptest::collection::vec(op(), 0..200)) {
            let mut t: Table<7, ()> = Table::new();
            let mut model: BTreeMap<Fingerprint, u64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, time) => {
                        let f = fp(k);
                        if model.contains_key(&f) {
                            prop_assert!(t.find(&f).is_some());
                            continue;
                        }
                        let ok = t.insert(Timestamp::from_secs(time), f, ()).is_ok();
                        prop_assert_eq!(ok, model.len() < 7);
                        if ok {
                            model.insert(f, time);
                        }
                    }
                    Op::RemoveFp(k) => {
                        let f = fp(k);
                        let removed = t.find(&f).and_then(|pos| t.remove_at(pos));
                        prop_assert_eq!(removed.map(|e| e.time.as_secs()), model.remove(&f));
                    }
                    Op::PopOldest => {
                        let expect = model.iter().map(|(f, t)| (*t, *f)).min();
                        let got = t.pop_oldest().map(|e| (e.time.as_secs(), e.fp));
                        prop_assert_eq!(got, expect);
                        if let Some((_, f)) = expect {
                            model.remove(&f);
                        }
                    }
                }
                prop_assert!(t.is_consistent());
                prop_assert_eq!(t.len(), model.len());
                for (f, time) in &model {
                    let pos = t.find(f);
                    prop_assert_eq!(pos.and_then(|p| t.get(p)).map(|e| e.time.as_secs()), Some(*time));
                }
            }
            // In order: ascending (time, fingerprint), whatever the heap's layout.
            #[cfg(feature = "serde")]
            {
                let mut in_order = Vec::new();
                let _ = t.try_for_each_in_order(|e| {
                    in_order.push((e.time.as_secs(), e.fp));
                    Ok::<(), ()>(())
                });
                let mut expected: Vec<_> = model.iter().map(|(f, t)| (*t, *f)).collect();
                expected.sort();
                prop_assert_eq!(in_order, expected);
            }
            // Emptied, the table equals a new one: removals leave no trace.
            while t.pop_oldest().is_some() {}
            prop_assert!(t == Table::new());
            let leftover: Vec<_> = model.keys().collect();
            prop_assert!(leftover.iter().all(|f| t.find(f).is_none()));
        }
    }
}

/// Whether `time` lies more than `limit` seconds before `now` (never, if `now` is earlier).
pub(crate) fn expired(time: Timestamp, now: Timestamp, limit: u64) -> bool {
    now.checked_since(time).is_some_and(|age| age > limit)
}

/// The bookkeeping both guards share: the remembered entries, how long one is kept (the
/// replay guard's tolerance, the idempotency store's retention, in seconds), and the floor —
/// the newest time of an entry that ever left memory (docs/spec.md §3.1 step 5, §3.2).
#[derive(Clone)]
pub(crate) struct Memory<const N: usize, V> {
    pub(crate) table: Table<N, V>,
    pub(crate) limit: u64,
    pub(crate) floor: Option<Timestamp>,
}

impl<const N: usize, V: Blank> Memory<N, V> {
    /// Nothing remembered, nothing ever forgotten.
    pub(crate) const fn new(limit: u64) -> Self {
        Memory {
            table: Table::new(),
            limit,
            floor: None,
        }
    }

    /// Whether an entry of `time` is past the limit at `now`.
    pub(crate) fn expired(&self, time: Timestamp, now: Timestamp) -> bool {
        expired(time, now, self.limit)
    }

    /// The remembered, unexpired entry of `fp`.
    pub(crate) fn live(&self, fp: &Fingerprint, now: Timestamp) -> Option<&Entry<V>> {
        let entry = self.table.get(self.table.find(fp)?)?;
        (!self.expired(entry.time, now)).then_some(entry)
    }

    /// Makes room for one more entry at `now`: drops every expired entry (they sit at the
    /// front of the heap: expiry is monotone in the time), then, if still full, evicts the
    /// oldest. Each entry that leaves raises the floor to its time.
    pub(crate) fn make_room(&mut self, now: Timestamp) {
        while let Some(oldest) = self.table.oldest().map(|e| e.time) {
            if !self.expired(oldest, now) {
                break;
            }
            self.forget_oldest();
        }
        if self.table.is_full() {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some(gone) = self.table.pop_oldest() {
            self.floor = Some(self.floor.map_or(gone.time, |f| f.max(gone.time)));
        }
    }
}

impl<const N: usize, V: PartialEq> Memory<N, V> {
    /// The same limit, floor and remembered entries, however the memory is laid out.
    pub(crate) fn same(&self, other: &Self) -> bool {
        self.limit == other.limit
            && self.floor == other.floor
            && self.table.same_entries(&other.table)
    }
}
