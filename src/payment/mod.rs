//! One payment's life: statuses, inputs, outcomes and effects (docs/spec.md §2).
//!
//! The module is split by concept:
//!
//! - `status`: [`Status`] and the [`LateSuccess`] policy;
//! - [`input`]: what the host feeds in ([`Input`](input::Input), the ids, [`InputKind`](input::InputKind));
//! - `transition`: the rules of docs/spec.md §2.3 as one function, `decide`: every decision
//!   about an input is made there;
//! - `machine`: the [`Payment`] itself, which asks `decide` and commits what it decided, so
//!   "the payment changes if and only if the outcome is `applied`" holds by construction;
//! - `outcome`: [`Outcome`], [`Rejection`], [`Effect`], [`Effects`], [`RefundRequestId`];
//! - `events`: the ring of remembered event ids;
//! - `invariants`: [`Payment::check_invariants`] and [`InvariantError`] (docs/spec.md §2.5);
//! - `parts` (feature `serde`): a payment taken apart and rebuilt, for snapshots;
//! - [`diagram`]: the transition diagram, generated from `decide`.

pub mod diagram;
mod events;
pub mod input;
mod invariants;
mod machine;
mod outcome;
#[cfg(feature = "serde")]
mod parts;
mod status;
pub(crate) mod transition;

#[cfg(feature = "serde")]
pub(crate) use events::EventEntry;
pub use invariants::InvariantError;
pub use machine::{CreateError, Payment};
pub use outcome::{Effect, Effects, EffectsIntoIter, Outcome, RefundRequestId, Rejection};
#[cfg(feature = "serde")]
pub(crate) use parts::Parts;
pub use status::{LateSuccess, Status};
