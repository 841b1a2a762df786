//! Time as the host tells it: seconds since the Unix epoch, passed into every call, and
//! spans of seconds between two such times.
//!
//! This module sits below everything that checks a time window (the webhook verifiers and
//! the guards), so they share one window check, [`check_window`].

use core::fmt;

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

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

/// A span of time in whole seconds: a webhook's tolerance, a guard's window, an idempotency
/// key's retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Duration(u64);

impl Duration {
    /// 300 seconds: the window around `now` that Stripe's SDKs use by default and WeChat Pay
    /// documents for its notifications, and the replay guard's default tolerance.
    pub const DEFAULT_TOLERANCE: Duration = Duration(300);

    /// 86 400 seconds (24 hours): how long Stripe keeps idempotency keys, and the
    /// idempotency store's default retention.
    pub const DEFAULT_RETENTION: Duration = Duration(86_400);

    /// A span of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Duration {
        Duration(secs)
    }

    /// The span in seconds.
    pub const fn as_secs(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} s", self.0)
    }
}

/// A timestamp outside the window around `now`. The host must not acknowledge the request as
/// processed; a genuine sender retries with a fresh timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum WindowError {
    /// `now − timestamp` exceeds the tolerance: too old (or a replay of an old request).
    Stale {
        /// `now − timestamp`, in seconds.
        age: u64,
        /// The tolerance that was exceeded, in seconds.
        tolerance: u64,
    },
    /// `timestamp − now` exceeds the tolerance: the sender's clock (or the host's) is wrong,
    /// or someone signed a request to replay it later.
    FromFuture {
        /// `timestamp − now`, in seconds.
        ahead: u64,
        /// The tolerance that was exceeded, in seconds.
        tolerance: u64,
    },
}

impl WindowError {
    /// A stable snake_case code for logs and the verify tool: `stale` or `from_future`.
    pub const fn code(&self) -> &'static str {
        match self {
            WindowError::Stale { .. } => "stale",
            WindowError::FromFuture { .. } => "from_future",
        }
    }
}

impl fmt::Display for WindowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WindowError::Stale { age, tolerance } => {
                write!(f, "timestamp is {age} s old (tolerance {tolerance} s)")
            }
            WindowError::FromFuture { ahead, tolerance } => {
                write!(
                    f,
                    "timestamp is {ahead} s in the future (tolerance {tolerance} s)"
                )
            }
        }
    }
}

impl core::error::Error for WindowError {}

/// Checks that `timestamp` is within `tolerance` of `now` on both sides (two-sided: many
/// providers' SDKs only check the past). Both ends are inclusive: a timestamp exactly
/// `tolerance` away is accepted.
///
/// Errors: [`WindowError::Stale`] when `now − timestamp > tolerance`,
/// [`WindowError::FromFuture`] when `timestamp − now > tolerance`.
pub fn check_window(
    timestamp: Timestamp,
    now: Timestamp,
    tolerance: Duration,
) -> Result<(), WindowError> {
    let tolerance = tolerance.as_secs();
    if let Some(age) = now.checked_since(timestamp)
        && age > tolerance
    {
        return Err(WindowError::Stale { age, tolerance });
    }
    if let Some(ahead) = timestamp.checked_since(now)
        && ahead > tolerance
    {
        return Err(WindowError::FromFuture { ahead, tolerance });
    }
    Ok(())
}
