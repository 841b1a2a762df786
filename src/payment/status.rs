//! Where a payment is in its life ([`Status`]), and what a capture after a failure does to it
//! ([`LateSuccess`]): docs/spec.md §2 and §2.4.

use core::fmt;

/// Where a payment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Status {
    /// Created; nothing sent to the customer's wallet yet.
    Pending,
    /// The trade exists at the provider; the customer may be paying.
    Processing,
    /// Funds captured (`paid` > 0), not all refunded.
    Succeeded,
    /// The attempt failed; no funds are owed to the merchant.
    Failed,
    /// Closed before capture (by the merchant, the customer, the deadline or the provider).
    Cancelled,
    /// Funds were captured and have all been returned.
    Refunded,
}

every_variant! {
    /// Every status, in rank order (and in the order of their snapshot bytes).
    Status: 6 [Pending, Processing, Succeeded, Failed, Cancelled, Refunded]
}

impl Status {
    /// The rank of docs/spec.md §2: 0 pending, 1 processing, 2 succeeded/failed/cancelled,
    /// 3 refunded. A payment's rank never decreases.
    pub const fn rank(self) -> u8 {
        match self {
            Status::Pending => 0,
            Status::Processing => 1,
            Status::Succeeded | Status::Failed | Status::Cancelled => 2,
            Status::Refunded => 3,
        }
    }

    /// The lower-case name used in the driver and the docs (`"succeeded"`).
    pub const fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processing => "processing",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
            Status::Refunded => "refunded",
        }
    }

    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) const fn to_u8(self) -> u8 {
        match self {
            Status::Pending => 0,
            Status::Processing => 1,
            Status::Succeeded => 2,
            Status::Failed => 3,
            Status::Cancelled => 4,
            Status::Refunded => 5,
        }
    }

    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn from_u8(b: u8) -> Option<Status> {
        // The inverse of `to_u8`, over every status: a new one decodes once it has a byte.
        Status::ALL.into_iter().find(|status| status.to_u8() == b)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What to do with a capture confirmed after the payment `failed` (docs/spec.md §2.4).
///
/// A capture on a `cancelled` payment is always answered with
/// [`Effect::RefundRequired`](crate::Effect::RefundRequired), whatever the policy: a cancelled order must not ship.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LateSuccess {
    /// Record the capture, keep the status, and ask the host to refund it. The default.
    #[default]
    Refund,
    /// Move the payment to `succeeded`: the order is fulfilled after all.
    Accept,
}

every_variant! {
    /// Both policies, the default first.
    LateSuccess: 2 [Refund, Accept]
}

impl LateSuccess {
    /// `"refund"` or `"accept"`.
    pub const fn name(self) -> &'static str {
        match self {
            LateSuccess::Refund => "refund",
            LateSuccess::Accept => "accept",
        }
    }
}
