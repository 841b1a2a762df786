//! What the fuzz targets share: an allocation counter (the core must never allocate, docs/spec.md
//! §2.5 item 1) and the checks of §2.5 that need no model, on one state or one step.
//!
//! Checks return `Err(reason)` instead of panicking so each target can say where it was (the
//! driver line of the engine target) when it panics.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use paystate::snapshot::{self, SnapshotError};
use paystate::{Effect, Outcome, Payment, Status};

/// The system allocator, counting every allocation made through it.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to `System`; the counter is a relaxed atomic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and panics if it allocated: the engine, snapshots and money parsing are the core
/// path, which never touches the heap. Targets are single-threaded, so every allocation seen
/// while `f` runs is `f`'s.
pub fn no_alloc<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let out = f();
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(before, after, "{what} allocated {} times", after - before);
    out
}

/// §2.5 item 2 on one state, written out from the text, plus the engine's own check.
pub fn check_state<const E: usize, const R: usize>(p: &Payment<E, R>) -> Result<(), String> {
    if let Err(e) = p.check_invariants() {
        return Err(format!("check_invariants: {e}"));
    }
    let (amount, paid, refunded) = (
        p.amount().minor_units(),
        p.paid().minor_units(),
        p.refunded().minor_units(),
    );
    if refunded > paid {
        return Err(format!("refunded {refunded} > paid {paid}"));
    }
    if paid != 0 && paid != amount {
        return Err(format!("paid {paid} is neither 0 nor the amount {amount}"));
    }
    if (p.status() == Status::Refunded) != (paid > 0 && refunded == paid) {
        return Err(format!(
            "status {} with paid {paid}, refunded {refunded}",
            p.status()
        ));
    }
    if p.status() == Status::Succeeded && paid == 0 {
        return Err("succeeded with nothing paid".into());
    }
    let open = matches!(p.status(), Status::Pending | Status::Processing);
    let want_deadline = if open { p.expires_at() } else { None };
    if p.next_deadline() != want_deadline {
        return Err(format!(
            "next_deadline {:?} in status {}",
            p.next_deadline(),
            p.status()
        ));
    }
    if p.balance().minor_units() != paid - refunded {
        return Err("balance is not paid - refunded".into());
    }
    // §2.5 item 8, from the state alone: a refund is owed exactly while late with money held,
    // for what is held; a close only by a cancelled payment holding nothing.
    let late = matches!(p.status(), Status::Failed | Status::Cancelled);
    let mut want = Vec::new();
    if p.close_pending() {
        if p.status() != Status::Cancelled || paid != 0 {
            return Err(format!(
                "close_trade owed in status {} with paid {paid}",
                p.status()
            ));
        }
        want.push(Effect::CloseTrade);
    }
    if late && paid > refunded {
        want.push(Effect::RefundRequired {
            amount: p.balance(),
            refund_id: p.refund_request_id(),
        });
    }
    if p.pending_effects().as_slice() != want.as_slice() {
        return Err(format!(
            "pending_effects {:?}, but the state owes {want:?}",
            p.pending_effects()
        ));
    }
    Ok(())
}

/// §2.5 items 3, 5 and 6 for one step from `before` to `after` with `outcome`.
pub fn check_step<const E: usize, const R: usize>(
    before: &Payment<E, R>,
    after: &Payment<E, R>,
    outcome: &Outcome,
) -> Result<(), String> {
    check_state(after)?;
    let applied = matches!(outcome, Outcome::Applied(_));
    if (before != after) != applied {
        return Err(format!(
            "outcome {outcome:?} but the payment {} changed",
            if applied { "has not" } else { "has" }
        ));
    }
    let want_version = if applied {
        before.version().checked_add(1)
    } else {
        Some(before.version())
    };
    if Some(after.version()) != want_version {
        return Err(format!(
            "version {} -> {} on {outcome:?}",
            before.version(),
            after.version()
        ));
    }
    if after.status().rank() < before.status().rank() {
        return Err(format!(
            "rank decreased: {} -> {}",
            before.status(),
            after.status()
        ));
    }
    if !outcome.effects().is_empty() && !applied {
        return Err(format!("effects without applied: {outcome:?}"));
    }
    // Funds are never lost: the step that records a capture on a dead payment asks for it
    // back, and a capture that fulfils the order does not.
    let captured = before.paid().is_zero() && !after.paid().is_zero();
    let refund_asked = outcome.effects().iter().any(|e| {
        *e == Effect::RefundRequired {
            amount: after.paid(),
            refund_id: after.refund_request_id(),
        }
    });
    let dead = matches!(after.status(), Status::Failed | Status::Cancelled);
    if captured && dead && !refund_asked {
        return Err(format!(
            "capture recorded on a {} payment without refund_required",
            after.status()
        ));
    }
    if captured && !dead && refund_asked {
        return Err(format!(
            "refund_required for a capture that moved the payment to {}",
            after.status()
        ));
    }
    if !captured
        && outcome
            .effects()
            .iter()
            .any(|e| matches!(e, Effect::RefundRequired { .. }))
    {
        return Err("refund_required without a new capture".into());
    }
    // §2.5 item 8, across the step: a close_trade effect leaves the close owed, and a close
    // owed before is discharged only by an applied capture (paid becomes > 0) or an applied
    // close (nothing else changes: the status stays cancelled and nothing is paid).
    if outcome.effects().contains(&Effect::CloseTrade) && !after.close_pending() {
        return Err("close_trade returned but not owed".into());
    }
    if before.close_pending() && !after.close_pending() {
        let by_capture = captured;
        let by_close = applied
            && after.status() == Status::Cancelled
            && after.paid().is_zero()
            && after.refunded() == before.refunded();
        if !(by_capture || by_close) {
            return Err(format!("close_trade discharged by {outcome:?}"));
        }
    }
    if !before.close_pending()
        && after.close_pending()
        && !outcome.effects().contains(&Effect::CloseTrade)
    {
        return Err("close_trade owed without the effect being returned".into());
    }
    Ok(())
}

/// §2.5 item 4: what the same input answers the second time in a row.
pub fn check_twice(first: &Outcome, second: &Outcome) -> Result<(), String> {
    match (first, second) {
        (_, Outcome::Duplicate | Outcome::Ignored) => Ok(()),
        (Outcome::Rejected(a), Outcome::Rejected(b)) if a == b => Ok(()),
        _ => Err(format!("applied twice: {first:?} then {second:?}")),
    }
}

/// A buffer that holds the snapshot of a payment with up to 12 events and 20 refunds.
pub const SNAPSHOT_BUF: usize = snapshot::max_size(12, 20);

/// §2.5 item 7: encodes `p`, decodes it back, and checks that the result is equal, encodes to
/// the same bytes, fits the documented size and needs every one of its bytes. Returns the
/// restored payment and the bytes.
pub fn round_trip<const E: usize, const R: usize>(
    p: &Payment<E, R>,
) -> Result<(Payment<E, R>, Vec<u8>), String> {
    let mut buf = [0u8; SNAPSHOT_BUF];
    let bytes = no_alloc("snapshot::encode", || {
        snapshot::encode(p, &mut buf).map(|b| &*b)
    })
    .map_err(|e| format!("encode: {e}"))?;
    if bytes.len() > snapshot::max_size(E, R) {
        return Err(format!(
            "snapshot of {} bytes > max_size {}",
            bytes.len(),
            snapshot::max_size(E, R)
        ));
    }
    let restored: Payment<E, R> =
        no_alloc("snapshot::decode", || snapshot::decode_with_capacity(bytes))
            .map_err(|e| format!("decode of a snapshot just written: {e}"))?;
    if &restored != p {
        return Err(format!("restored {restored:?} != {p:?}"));
    }
    let mut again = [0u8; SNAPSHOT_BUF];
    let bytes_again =
        snapshot::encode(&restored, &mut again).map_err(|e| format!("re-encode: {e}"))?;
    if bytes_again != bytes {
        return Err("re-encoding a restored payment changed the bytes".into());
    }
    let mut short = [0u8; SNAPSHOT_BUF];
    let cut = bytes.len() - 1;
    if snapshot::encode(p, &mut short[..cut]).map(|b| b.len()) != Err(SnapshotError::BufferTooSmall)
    {
        return Err(format!(
            "encode into {cut} bytes did not report BufferTooSmall"
        ));
    }
    Ok((restored, bytes.to_vec()))
}
