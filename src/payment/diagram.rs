//! The transition diagram, derived from the transition table itself.
//!
//! Every status × input kind × policy is run through the transition function (`decide`) with
//! inputs that pass the field checks (the payment's own amount and currency), and every change
//! of status becomes an edge. The README's diagram is this output; a test fails if they
//! disagree.
//!
//! Statuses, input kinds and policies are walked through their `ALL` lists, which the compiler
//! checks are complete, and every `match` on them here is exhaustive: a new status, input kind
//! or policy does not compile until the diagram says how to draw it.

use core::fmt;

use super::transition::{self, Decision, EffectKind, State};
use super::{LateSuccess, Status};
use crate::money::{Currency, Money};
use crate::payment::input::{Command, InputKind, RefundId};
use crate::time::Timestamp;

/// One edge of the diagram: from, to, the input that moves it, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Edge {
    /// The status before.
    pub from: Status,
    /// The status after.
    pub to: Status,
    /// The input.
    pub input: InputKind,
    /// The condition, if any (`"policy accept"`, `"rest refunded"`).
    pub when: Option<&'static str>,
    /// Whether the transition emits an effect, and which.
    pub effect: Option<&'static str>,
}

const AMOUNT: u64 = 100;

/// The (paid, refunded) pairs a payment in `status` can have.
fn money_states(status: Status) -> impl Iterator<Item = (u64, u64)> + Clone {
    let pairs: &[(u64, u64)] = match status {
        Status::Pending | Status::Processing => &[(0, 0)],
        Status::Succeeded => &[(AMOUNT, 0)],
        Status::Failed | Status::Cancelled => &[(0, 0), (AMOUNT, 0)],
        Status::Refunded => &[(AMOUNT, AMOUNT)],
    };
    pairs.iter().copied()
}

/// One case the diagram tries.
#[derive(Clone, Copy)]
struct Case {
    from: Status,
    kind: InputKind,
    policy: LateSuccess,
    paid: u64,
    refunded: u64,
}

/// Every status × input kind × policy × money the status can hold, in a fixed order.
fn cases() -> impl Iterator<Item = Case> + Clone {
    Status::ALL.into_iter().flat_map(|from| {
        InputKind::ALL.into_iter().flat_map(move |kind| {
            LateSuccess::ALL.into_iter().flat_map(move |policy| {
                money_states(from).map(move |(paid, refunded)| Case {
                    from,
                    kind,
                    policy,
                    paid,
                    refunded,
                })
            })
        })
    })
}

/// What `decide` answers in `case`, with inputs that pass the field checks (the payment's own
/// amount and currency; a refund of the rest).
fn decision(case: Case) -> Decision {
    let state = State {
        status: case.from,
        amount: AMOUNT,
        currency: Currency::CNY,
        paid: case.paid,
        refunded: case.refunded,
        policy: case.policy,
        version: 0,
        // Already passed: the diagram draws the tick that expires a payment.
        expires_at: Some(Timestamp::from_secs(0)),
        events: &[],
        refunds: &[],
        refunds_full: false,
        // A cancel or a tick leaves a close owed; the diagram draws that case.
        close_pending: case.from == Status::Cancelled && case.paid == 0,
    };
    let command = match case.kind {
        InputKind::Initiate => Command::Initiate,
        InputKind::Succeed => Command::Succeed {
            amount: Money::from_minor(AMOUNT, Currency::CNY),
        },
        InputKind::Fail => Command::Fail,
        InputKind::Cancel => Command::Cancel,
        InputKind::Close => Command::Close,
        InputKind::Refund => Command::Refund {
            refund_id: RefundId::from_fingerprint([0; 8]),
            amount: Money::from_minor(case.paid.saturating_sub(case.refunded), Currency::CNY),
        },
        InputKind::Tick => return transition::decide_tick(&state, Timestamp::from_secs(0)),
    };
    transition::decide_command(&state, &command)
}

/// The label's condition for an edge of `case`.
fn condition(case: Case) -> Option<&'static str> {
    match case.kind {
        InputKind::Initiate | InputKind::Fail | InputKind::Cancel | InputKind::Close => None,
        InputKind::Succeed => match case.from {
            Status::Failed => Some(match case.policy {
                LateSuccess::Refund => "policy refund",
                LateSuccess::Accept => "policy accept",
            }),
            Status::Pending
            | Status::Processing
            | Status::Succeeded
            | Status::Cancelled
            | Status::Refunded => None,
        },
        InputKind::Refund => Some("rest refunded"),
        InputKind::Tick => Some("deadline passed"),
    }
}

/// The edge `case` draws, if any.
fn edge(case: Case) -> Option<Edge> {
    let Decision::Apply(change) = decision(case) else {
        return None;
    };
    // Partial refunds keep the status: not an edge. A late capture keeps it too, but its
    // refund_required effect is the point, so it is drawn.
    if change.status == case.from && change.effect.is_none() {
        return None;
    }
    Some(Edge {
        from: case.from,
        to: change.status,
        input: case.kind,
        when: condition(case),
        effect: change.effect.map(EffectKind::name),
    })
}

/// Calls `f` with every edge of the transition table, in a fixed order, without duplicates.
///
/// Nothing is stored, so nothing can be dropped: an edge is drawn the first time a case
/// produces it, which is checked by running the earlier cases again (a few thousand calls of
/// the transition function, once per diagram).
pub fn for_each_edge(mut f: impl FnMut(Edge)) {
    let edges = cases().filter_map(edge);
    for (i, e) in edges.clone().enumerate() {
        if !edges.clone().take(i).any(|earlier| earlier == e) {
            f(e);
        }
    }
}

/// Writes the transition diagram as a Mermaid `stateDiagram-v2`, exactly as the README shows
/// it (without the code fence).
pub fn write_mermaid(w: &mut impl fmt::Write) -> fmt::Result {
    writeln!(w, "stateDiagram-v2")?;
    writeln!(w, "    [*] --> pending")?;
    let mut result = Ok(());
    for_each_edge(|e| {
        if result.is_err() {
            return;
        }
        result = (|| {
            write!(
                w,
                "    {} --> {}: {}",
                e.from.name(),
                e.to.name(),
                e.input.name()
            )?;
            if let Some(when) = e.when {
                write!(w, " [{when}]")?;
            }
            if let Some(effect) = e.effect {
                write!(w, " / {effect}")?;
            }
            writeln!(w)
        })();
    });
    result
}
