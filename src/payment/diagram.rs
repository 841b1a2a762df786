//! The transition diagram, derived from the transition table itself.
//!
//! Every status × input kind × policy is run through the transition function (`decide`) with inputs that
//! pass the field checks (the payment's own amount and currency), and every change of status
//! becomes an edge. The README's diagram is this output; a test fails if they disagree.

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

fn states(status: Status) -> impl Iterator<Item = (u64, u64)> {
    // (paid, refunded) pairs a payment in `status` can have.
    let pairs: &[(u64, u64)] = match status {
        Status::Pending | Status::Processing => &[(0, 0)],
        Status::Succeeded => &[(AMOUNT, 0)],
        Status::Failed | Status::Cancelled => &[(0, 0), (AMOUNT, 0)],
        Status::Refunded => &[(AMOUNT, AMOUNT)],
    };
    pairs.iter().copied()
}

/// Calls `f` with every edge of the transition table, in a fixed order, without duplicates.
pub fn for_each_edge(mut f: impl FnMut(Edge)) {
    let money = Money::from_minor(AMOUNT, Currency::CNY);
    let mut seen: heapless::Vec<Edge, 32> = heapless::Vec::new();
    for from in Status::ALL {
        for kind in InputKind::ALL {
            for policy in [LateSuccess::Refund, LateSuccess::Accept] {
                for (paid, refunded) in states(from) {
                    let state = State {
                        status: from,
                        amount: AMOUNT,
                        currency: Currency::CNY,
                        paid,
                        refunded,
                        policy,
                        version: 0,
                        // Already passed: the diagram draws the tick that expires a payment.
                        expires_at: Some(Timestamp::from_secs(0)),
                        events: &[],
                        refunds: &[],
                        refunds_full: false,
                        // A cancel or a tick leaves a close owed; the diagram draws that case.
                        close_pending: from == Status::Cancelled && paid == 0,
                    };
                    let decision = match kind {
                        InputKind::Tick => transition::decide_tick(&state, Timestamp::from_secs(0)),
                        other => {
                            let refund_id = RefundId::from_fingerprint([0; 8]);
                            let cmd = match other {
                                InputKind::Initiate => Command::Initiate,
                                InputKind::Succeed => Command::Succeed { amount: money },
                                InputKind::Fail => Command::Fail,
                                InputKind::Cancel => Command::Cancel,
                                InputKind::Close => Command::Close,
                                _ => Command::Refund {
                                    refund_id,
                                    amount: Money::from_minor(
                                        paid.saturating_sub(refunded),
                                        Currency::CNY,
                                    ),
                                },
                            };
                            transition::decide_command(&state, &cmd)
                        }
                    };
                    let Decision::Apply(change) = decision else {
                        continue;
                    };
                    // Partial refunds keep the status: not an edge. A late capture keeps it too,
                    // but its refund_required effect is the point, so it is drawn.
                    if change.status == from && change.effect.is_none() {
                        continue;
                    }
                    let when = match (kind, from, change.status) {
                        (InputKind::Succeed, Status::Failed, Status::Succeeded) => {
                            Some("policy accept")
                        }
                        (InputKind::Succeed, Status::Failed, _) => Some("policy refund"),
                        (InputKind::Refund, _, _) => Some("rest refunded"),
                        (InputKind::Tick, _, _) => Some("deadline passed"),
                        _ => None,
                    };
                    let effect = change.effect.map(EffectKind::name);
                    let edge = Edge {
                        from,
                        to: change.status,
                        input: kind,
                        when,
                        effect,
                    };
                    if !seen.contains(&edge) && seen.push(edge).is_ok() {
                        f(edge);
                    }
                }
            }
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
