//! Time as the host tells it: seconds since the Unix epoch, passed into every call.

/// A point in time, in whole seconds since the Unix epoch (UTC).
///
/// The crate never reads a clock: the host passes `now` into every call, so tests drive the
/// engine with a virtual clock and a replayed event log gives the same answers as the original
/// run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Timestamp(u64);

impl Timestamp {
    /// The Unix epoch itself.
    pub const EPOCH: Timestamp = Timestamp(0);

    /// A timestamp `secs` seconds after the Unix epoch.
    pub const fn from_secs(secs: u64) -> Timestamp {
        Timestamp(secs)
    }

    /// Seconds since the Unix epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// `self − earlier` in seconds, or `None` if `earlier` is later than `self`.
    pub const fn checked_since(self, earlier: Timestamp) -> Option<u64> {
        self.0.checked_sub(earlier.0)
    }

    /// `self + secs`, saturating at the end of time instead of overflowing.
    pub const fn saturating_add(self, secs: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs))
    }
}

impl core::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}s", self.0)
    }
}
