//! The event-id memory of docs/spec.md §2.3, step 1: a ring of the last `N` applied inputs
//! that carry an event id, each as the id's fingerprint and the input's digest.

/// One remembered applied event: the event id's fingerprint and the input's digest.
pub(crate) type EventEntry = ([u8; 16], [u8; 8]);

/// The last `N` (1..=255) remembered events. When it is full, remembering one more forgets
/// the oldest.
#[derive(Clone)]
pub(crate) struct EventRing<const N: usize> {
    /// The first `len` slots are valid; the newest sits just before `next`.
    entries: [EventEntry; N],
    /// Where the next event goes: always below `N`.
    next: u8,
    /// How many slots are valid: at most `N`.
    len: u8,
}

impl<const N: usize> EventRing<N> {
    const CAPACITY_OK: () = assert!(N >= 1 && N <= 255, "an event ring holds 1..=255 events");

    /// An empty ring.
    pub(crate) const fn new() -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_OK;
        EventRing {
            entries: [([0; 16], [0; 8]); N],
            next: 0,
            len: 0,
        }
    }

    /// How many events are remembered.
    pub(crate) const fn len(&self) -> usize {
        self.len as usize
    }

    /// The remembered events in slot order, not oldest first: enough for membership. The
    /// valid entries are the first `len` slots whatever the ring's order (it fills from slot
    /// 0 and wraps only once full), so a plain slice scan finds an id.
    pub(crate) fn as_unordered_slice(&self) -> &[EventEntry] {
        self.entries.get(..self.len()).unwrap_or(&[])
    }

    /// Remembers one applied event, forgetting the oldest when full.
    pub(crate) fn remember(&mut self, id: [u8; 16], digest: [u8; 8]) {
        let next = usize::from(self.next);
        if let Some(slot) = self.entries.get_mut(next) {
            *slot = (id, digest);
        }
        // N ≤ 255 (checked at compile time), so both fit in a u8.
        let after = next.saturating_add(1);
        self.next = if after < N {
            u8::try_from(after).unwrap_or(0)
        } else {
            0
        };
        self.len = u8::try_from(self.len().saturating_add(1).min(N)).unwrap_or(u8::MAX);
    }

    /// The remembered events, oldest first.
    pub(crate) fn oldest_first(&self) -> impl Iterator<Item = EventEntry> + '_ {
        // Slots from `next` on are older than those before it; the valid ones are the newest
        // `len` of that order.
        let (newer, older) = self
            .entries
            .split_at_checked(usize::from(self.next))
            .unwrap_or((&self.entries, &[]));
        older
            .iter()
            .chain(newer)
            .skip(N.saturating_sub(self.len()))
            .copied()
    }

    /// Whether the bookkeeping is in range (`len` ≤ `N`, `next` < `N`).
    pub(crate) fn is_well_formed(&self) -> bool {
        self.len() <= N && usize::from(self.next) < N
    }
}

/// Two rings are equal when they remember the same events, oldest first; where the newest
/// sits is not part of it (a snapshot does not record it).
impl<const N: usize> PartialEq for EventRing<N> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.oldest_first().eq(other.oldest_first())
    }
}

impl<const N: usize> Eq for EventRing<N> {}
