//! One payment's life: statuses, inputs, outcomes and effects (docs/spec.md §2).
//!
//! The module is split by concept:
//!
//! - `status`: [`Status`] and the [`LateSuccess`] policy;
//! - [`input`]: what the host feeds in ([`Input`](input::Input), the ids,
//!   [`InputKind`](input::InputKind));
//! - `transition`: the rules of docs/spec.md §2.3 as one function, `decide`: every decision
//!   about an input is made there;
//! - `machine`: the [`Payment`] itself, which asks `decide` and commits what it decided, so
//!   "the payment changes if and only if the outcome is `applied`" holds by construction;
//! - `outcome`: [`Outcome`], [`Rejection`], [`Effect`], [`Effects`], [`RefundRequestId`];
//! - `events`: the ring of remembered event ids;
//! - `invariants`: [`Payment::check_invariants`] and [`InvariantError`] (docs/spec.md §2.5);
//! - `parts` (feature `serde`): a payment taken apart and rebuilt, for snapshots;
//! - [`diagram`]: the transition diagram, generated from `decide`.
//!
//! Nothing here panics on input, and the compiler checks it: the crate denies `unwrap`,
//! `expect`, panicking indexing, `panic!` and unchecked arithmetic in library code (see the
//! crate root); and every `match` on a status, an input kind or a policy is exhaustive, so a
//! new one is a compile error wherever it needs a decision.

/// Declares `ALL`, every variant of a field-less enum in the order listed, and makes the list
/// a compile-time fact rather than something kept by hand:
///
/// - the `match` it generates names exactly the listed variants and must be exhaustive, so a
///   variant added to the enum and not to the list fails to compile;
/// - a `const` assertion refuses a variant listed twice;
/// - the array's length is written out, so a wrong count fails to compile too.
///
/// Everything that walks the variants (the diagram, the snapshot's status byte, the tests)
/// goes through `ALL`, and so cannot miss one.
macro_rules! every_variant {
    ($(#[$doc:meta])* $ty:ident: $len:literal [$($variant:ident),+ $(,)?]) => {
        impl $ty {
            $(#[$doc])*
            pub const ALL: [$ty; $len] = [$($ty::$variant),+];
        }

        const _: () = {
            // Exhaustive: every variant of the enum is in the list above.
            const fn listed(v: $ty) {
                match v {
                    $($ty::$variant)|+ => {}
                }
            }
            let _ = listed;
            // No variant twice, so `ALL` holds each exactly once.
            let mut rest: &[$ty] = &$ty::ALL;
            while let [first, tail @ ..] = rest {
                let mut others = tail;
                while let [other, more @ ..] = others {
                    assert!(
                        *first as u8 != *other as u8,
                        concat!(stringify!($ty), "::ALL lists a variant twice"),
                    );
                    others = more;
                }
                rest = tail;
            }
        };
    };
}

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
