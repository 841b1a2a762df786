//! The payment engine against a reference model (docs/spec.md §2.3, §2.5).
//!
//! The input is a handful of payments (amounts, currencies, deadlines, both late-success
//! policies) and a sequence of operations on them: inputs of every kind with event ids, refund
//! ids and amounts drawn from small pools (so duplicates, conflicts and full refund books are
//! common) or from arbitrary text, ticks on a clock that also runs backwards, applying the same
//! input twice in a row, and snapshot round trips mid-sequence.
//!
//! The model is written from the spec text with plain `Vec`s and full ids, not from the
//! engine: after every step the target asserts agreement with it (outcome, rejection data,
//! effects, status, money, version, remembered ids and refunds) and every invariant of §2.5.
//!
//! Set `PAYSTATE_FUZZ_JSONL=<file>` to have the target write the operations as JSON lines for
//! the replay driver (`cargo run --example replay < file`) as it executes them, and the answers
//! the model expects from the driver to `<file>.expected`; on a crash the last line of each is
//! the operation that failed. See docs/fuzzing.md.
#![no_main]

use std::fs::File;
use std::io::Write;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use paystate::{
    Currency, Effect, EventId, IdError, Input, LateSuccess, MAX_ID_LEN, Money, Outcome, Payment,
    RefundId, RefundRequestId, Rejection, Status, Timestamp,
};
use paystate_fuzz::{check_state, check_step, check_twice, no_alloc, round_trip};
use serde_json::{Value, json};

/// At most this many payments per run.
const MAX_PAYMENTS: usize = 6;

#[derive(Arbitrary, Debug)]
struct Scenario {
    /// Payments remember 11 events and 19 refunds instead of the defaults 8 and 16.
    wide: bool,
    /// Creation time of every payment; the clock starts here.
    start: Time,
    payments: Vec<Spec>,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Time {
    /// About now (2023 onwards).
    Recent(u32),
    Any(u64),
}

#[derive(Arbitrary, Debug)]
struct Spec {
    amount: Price,
    currency: Pick,
    deadline: Option<Deadline>,
    accept_late_success: bool,
}

#[derive(Arbitrary, Debug)]
enum Price {
    Small(u16),
    Any(u64),
}

/// A currency: one of a few with different exponents, or any from the table.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Pick {
    Cny,
    Jpy,
    Kwd,
    Usd,
    Table(u8),
}

#[derive(Arbitrary, Debug)]
enum Deadline {
    After(u16),
    Before(u16),
    At(u64),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Apply {
        payment: u8,
        event: Id,
        cmd: Cmd,
        dt: Dt,
        twice: bool,
    },
    Tick {
        payment: u8,
        dt: Dt,
        twice: bool,
    },
    Snapshot {
        payment: u8,
    },
    /// Up to 20 refunds with fresh ids, to fill the refund book.
    Refunds {
        payment: u8,
        count: u8,
        amount: Amt,
    },
}

/// How the host's clock moves before an operation: it may stand still, run backwards or jump.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Dt {
    Same,
    Forward(u16),
    Back(u16),
    Jump(u64),
}

/// An event id or refund id: from a small pool, so it repeats, or any text.
#[derive(Arbitrary, Debug)]
enum Id {
    Pool(u8),
    Text(String),
}

#[derive(Arbitrary, Debug)]
enum Cmd {
    Initiate,
    Succeed {
        amount: Amt,
        currency: Cur,
    },
    Fail {
        reason: Reason,
    },
    Cancel,
    Close,
    Refund {
        refund: Id,
        amount: Amt,
        currency: Cur,
    },
}

/// An amount relative to the payment, so checks pass often and edges are hit.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Amt {
    Full,
    /// What is left to refund (the model's `paid − refunded`).
    Balance,
    Zero,
    Over(u8),
    Under(u8),
    /// `full × n / 256`.
    Part(u8),
    Tiny(u8),
    Any(u64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Cur {
    Same,
    Other(Pick),
}

#[derive(Arbitrary, Debug)]
enum Reason {
    Pool(bool),
    Text(String),
}

fn currency(pick: Pick) -> Currency {
    match pick {
        Pick::Cny => Currency::CNY,
        Pick::Jpy => Currency::JPY,
        Pick::Kwd => Currency::KWD,
        Pick::Usd => Currency::USD,
        Pick::Table(i) => {
            let n = Currency::all().count();
            Currency::all()
                .nth(usize::from(i) % n)
                .unwrap_or(Currency::CNY)
        }
    }
}

fn time(t: Time) -> u64 {
    match t {
        Time::Recent(s) => 1_700_000_000 + u64::from(s),
        Time::Any(s) => s,
    }
}

fn step(now: u64, dt: Dt) -> u64 {
    match dt {
        Dt::Same => now,
        Dt::Forward(s) => now.saturating_add(u64::from(s)),
        Dt::Back(s) => now.saturating_sub(u64::from(s)),
        Dt::Jump(t) => t,
    }
}

fn id_text(id: &Id, prefix: &str, pool: u8) -> String {
    match id {
        Id::Pool(n) => format!("{prefix}{}", n % pool),
        Id::Text(s) => s.clone(),
    }
}

/// An input as the model sees it: kind and every field, ids in full.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    Initiate,
    Succeed(Money),
    Fail(String),
    Cancel,
    Close,
    Refund(String, Money),
}

/// What the model expects.
#[derive(Debug, PartialEq)]
enum Want {
    Applied(Vec<Effect>),
    Duplicate,
    Ignored,
    Rejected(Rejection),
}

fn got(outcome: &Outcome) -> Want {
    match outcome {
        Outcome::Applied(effects) => Want::Applied(effects.to_vec()),
        Outcome::Duplicate => Want::Duplicate,
        Outcome::Ignored => Want::Ignored,
        Outcome::Rejected(r) => Want::Rejected(*r),
    }
}

/// One payment as docs/spec.md §2 describes it, with plain vectors.
#[derive(Debug, Clone)]
struct Model {
    amount: Money,
    expires_at: Option<u64>,
    policy: LateSuccess,
    status: Status,
    paid: u64,
    refunded: u64,
    version: u32,
    /// The last `event_capacity` applied inputs, oldest first.
    events: Vec<(String, Command)>,
    event_capacity: usize,
    /// Every recorded refund, in order.
    refunds: Vec<(String, Money)>,
    refund_capacity: usize,
    /// Whether `refund_required` was answered when `paid` became > 0.
    refund_required_emitted: bool,
    /// A `close_trade` obligation is outstanding (§2.6).
    close_pending: bool,
    /// The payment's refund request number, taken from the engine when it was created (its
    /// stability is what the model checks).
    late_refund: RefundRequestId,
}

impl Model {
    fn open(&self) -> bool {
        matches!(self.status, Status::Pending | Status::Processing)
    }

    fn late(&self) -> bool {
        matches!(self.status, Status::Failed | Status::Cancelled)
    }

    fn balance(&self) -> u64 {
        self.paid - self.refunded
    }

    /// §2.5 item 8: the obligations outstanding now.
    fn outstanding(&self) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.close_pending {
            out.push(Effect::CloseTrade);
        }
        if self.late() && self.balance() > 0 {
            out.push(Effect::RefundRequired {
                amount: Money::from_minor(self.balance(), self.amount.currency()),
                refund_id: self.late_refund,
            });
        }
        out
    }

    /// §2.3: the event-id check, then the input's own rules.
    fn apply(&mut self, event: &str, cmd: &Command) -> Want {
        if let Some((_, seen)) = self.events.iter().find(|(e, _)| e == event) {
            return if seen == cmd {
                Want::Duplicate
            } else {
                Want::Rejected(Rejection::IdempotencyConflict)
            };
        }
        let want = self.decide(cmd);
        if matches!(want, Want::Applied(_)) {
            self.version += 1;
            self.events.push((event.to_owned(), cmd.clone()));
            if self.events.len() > self.event_capacity {
                self.events.remove(0);
            }
        }
        want
    }

    fn decide(&mut self, cmd: &Command) -> Want {
        use Status::*;
        let currency = self.amount.currency();
        match cmd {
            Command::Initiate => {
                if self.status == Pending {
                    self.status = Processing;
                    Want::Applied(vec![])
                } else {
                    Want::Ignored
                }
            }
            Command::Succeed(m) => {
                if m.currency() != currency {
                    return Want::Rejected(Rejection::CurrencyMismatch {
                        expected: currency,
                        got: m.currency(),
                    });
                }
                if m.minor_units() != self.amount.minor_units() {
                    return Want::Rejected(Rejection::AmountMismatch {
                        expected: self.amount.minor_units(),
                        got: m.minor_units(),
                    });
                }
                if self.paid > 0 {
                    return Want::Ignored;
                }
                if self.open() {
                    self.status = Succeeded;
                    self.paid = self.amount.minor_units();
                    return Want::Applied(vec![]);
                }
                if self.status == Failed && self.policy == LateSuccess::Accept {
                    self.status = Succeeded;
                    self.paid = self.amount.minor_units();
                    return Want::Applied(vec![]);
                }
                if self.late() {
                    self.paid = self.amount.minor_units();
                    self.refund_required_emitted = true;
                    // A paid trade cannot be closed: the capture discharges the close.
                    self.close_pending = false;
                    return Want::Applied(vec![Effect::RefundRequired {
                        amount: self.amount,
                        refund_id: self.late_refund,
                    }]);
                }
                // succeeded and refunded have paid > 0: answered above.
                unreachable!("status {:?} with nothing paid", self.status)
            }
            Command::Fail(_) => {
                if self.open() {
                    self.status = Failed;
                    Want::Applied(vec![])
                } else {
                    Want::Ignored
                }
            }
            Command::Cancel => match self.status {
                Pending | Processing => {
                    self.status = Cancelled;
                    self.close_pending = true;
                    Want::Applied(vec![Effect::CloseTrade])
                }
                Succeeded => Want::Rejected(Rejection::InvalidTransition),
                Failed | Cancelled | Refunded => Want::Ignored,
            },
            Command::Close => match self.status {
                Pending | Processing => {
                    self.status = Cancelled;
                    Want::Applied(vec![])
                }
                Cancelled if self.close_pending => {
                    self.close_pending = false;
                    Want::Applied(vec![])
                }
                Succeeded => Want::Rejected(Rejection::InvalidTransition),
                Failed | Cancelled | Refunded => Want::Ignored,
            },
            Command::Refund(refund_id, m) => {
                if let Some((_, recorded)) = self.refunds.iter().find(|(r, _)| r == refund_id) {
                    return if recorded == m {
                        Want::Duplicate
                    } else {
                        Want::Rejected(Rejection::IdempotencyConflict)
                    };
                }
                if self.paid == 0 {
                    return Want::Rejected(Rejection::InvalidTransition);
                }
                if m.currency() != currency {
                    return Want::Rejected(Rejection::CurrencyMismatch {
                        expected: currency,
                        got: m.currency(),
                    });
                }
                if m.is_zero() {
                    return Want::Rejected(Rejection::InvalidAmount);
                }
                if m.minor_units() > self.balance() {
                    return Want::Rejected(Rejection::RefundExceedsBalance {
                        balance: self.balance(),
                        requested: m.minor_units(),
                    });
                }
                if self.refunds.len() >= self.refund_capacity {
                    return Want::Rejected(Rejection::TooManyRefunds);
                }
                self.refunds.push((refund_id.clone(), *m));
                self.refunded += m.minor_units();
                if self.refunded == self.paid {
                    self.status = Refunded;
                }
                Want::Applied(vec![])
            }
        }
    }

    fn tick(&mut self, now: u64) -> Want {
        if self.open() && self.expires_at.is_some_and(|t| t <= now) {
            self.status = Status::Cancelled;
            self.close_pending = true;
            self.version += 1;
            Want::Applied(vec![Effect::CloseTrade])
        } else {
            Want::Ignored
        }
    }

    fn resolve(&self, amt: Amt, cur: Cur) -> Money {
        let full = self.amount.minor_units();
        let minor = match amt {
            Amt::Full => full,
            Amt::Balance => self.balance(),
            Amt::Zero => 0,
            Amt::Over(n) => full.saturating_add(1 + u64::from(n)),
            Amt::Under(n) => full.saturating_sub(1 + u64::from(n)),
            Amt::Part(n) => (u128::from(full) * u128::from(n) / 256) as u64,
            Amt::Tiny(n) => u64::from(n),
            Amt::Any(n) => n,
        };
        let c = match cur {
            Cur::Same => self.amount.currency(),
            Cur::Other(p) => currency(p),
        };
        Money::from_minor(minor, c)
    }
}

/// Where the JSON lines go when `PAYSTATE_FUZZ_JSONL` is set.
fn jsonl_path() -> Option<&'static str> {
    static PATH: OnceLock<Option<String>> = OnceLock::new();
    PATH.get_or_init(|| std::env::var("PAYSTATE_FUZZ_JSONL").ok())
        .as_deref()
}

/// The driver lines of the run, and their count so failures can name the line. When
/// recording: the operations, and beside them the answers the model expects from the driver.
struct Lines {
    out: Option<(File, File)>,
    count: usize,
}

impl Lines {
    fn emit(&mut self, line: impl FnOnce() -> Value) {
        self.count += 1;
        if let Some((ops, _)) = &mut self.out {
            writeln!(ops, "{}", line()).expect("write the JSON lines");
            ops.flush().expect("flush the JSON lines");
        }
    }

    fn expect(&mut self, line: impl FnOnce() -> Value) {
        if let Some((_, expected)) = &mut self.out {
            writeln!(expected, "{}", line()).expect("write the expected answers");
            expected.flush().expect("flush the expected answers");
        }
    }
}

/// The driver's answer (docs/spec.md §7) that the model expects, field for field.
fn answer(name: &str, m: &Model, want: &Want, snapshot: Option<&[u8]>) -> Value {
    let (outcome, error, effects): (&str, Option<&str>, &[Effect]) = match want {
        Want::Applied(effects) => ("applied", None, effects),
        Want::Duplicate => ("duplicate", None, &[]),
        Want::Ignored => ("ignored", None, &[]),
        Want::Rejected(r) => ("rejected", Some(r.code()), &[]),
    };
    let outcome = if snapshot.is_some() {
        "snapshot"
    } else {
        outcome
    };
    let mut v = json!({"payment": name, "outcome": outcome});
    if let Some(e) = error {
        v["error"] = json!(e);
    }
    if let Some(bytes) = snapshot {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        v["bytes"] = json!(hex);
        v["size"] = json!(bytes.len());
    }
    let money = |minor| Money::from_minor(minor, m.amount.currency()).to_string();
    v["status"] = json!(m.status.name());
    v["version"] = json!(m.version);
    v["paid"] = json!(money(m.paid));
    v["refunded"] = json!(money(m.refunded));
    v["effects"] = effects_json(effects);
    v["pending_effects"] = effects_json(&m.outstanding());
    v
}

fn effects_json(effects: &[Effect]) -> Value {
    effects
        .iter()
        .map(|e| match e {
            Effect::CloseTrade => json!({"type": "close_trade"}),
            Effect::RefundRequired { amount, refund_id } => json!({
                "type": "refund_required",
                "amount": amount.to_string(),
                "refund_id": refund_id.as_str(),
            }),
        })
        .collect::<Vec<Value>>()
        .into()
}

/// One payment under test: the engine's, the model's, and what the harness observed.
struct Slot<const E: usize, const R: usize> {
    name: String,
    payment: Payment<E, R>,
    model: Model,
    /// `applied` outcomes counted here, independently of both.
    applied: u32,
}

fn fail_at(line: usize, what: impl std::fmt::Display) -> ! {
    panic!("driver line {line}: {what}")
}

/// Agreement with the model, beyond the outcome.
fn agree<const E: usize, const R: usize>(s: &Slot<E, R>) -> Result<(), String> {
    let (p, m) = (&s.payment, &s.model);
    let engine = (
        p.status(),
        p.paid().minor_units(),
        p.refunded().minor_units(),
        p.version(),
        p.refund_count(),
    );
    let model = (m.status, m.paid, m.refunded, m.version, m.refunds.len());
    if engine != model {
        return Err(format!(
            "engine (status, paid, refunded, version, refunds) {engine:?} != model {model:?}"
        ));
    }
    if p.version() != s.applied {
        return Err(format!(
            "version {} but {} applied outcomes",
            p.version(),
            s.applied
        ));
    }
    if matches!(p.status(), Status::Failed | Status::Cancelled)
        && p.paid() != p.refunded()
        && !m.refund_required_emitted
    {
        return Err("funds lost: captured on a dead payment, no refund_required".into());
    }
    // §2.5 item 8: the obligations are exactly what the model says is outstanding.
    let pending = p.pending_effects();
    if pending.as_slice() != m.outstanding().as_slice() {
        return Err(format!(
            "pending_effects {pending:?}, model outstanding {:?}",
            m.outstanding()
        ));
    }
    if p.refund_request_id() != m.late_refund {
        return Err("the refund request number changed".into());
    }
    Ok(())
}

/// The remembered ids and recorded refunds, by their public accessors (SHA-256 per id: run at
/// snapshots and at the end, not every step).
fn agree_deep<const E: usize, const R: usize>(s: &Slot<E, R>) -> Result<(), String> {
    for (id, _) in &s.model.events {
        let Ok(event) = EventId::new(id.as_bytes()) else {
            return Err(format!("model remembers an invalid id {id:?}"));
        };
        if !s.payment.remembers(event) {
            return Err(format!("engine forgot event {id:?}, one of the last {E}"));
        }
    }
    for (id, amount) in &s.model.refunds {
        let Ok(refund) = RefundId::new(id.as_bytes()) else {
            return Err(format!("model recorded an invalid refund id {id:?}"));
        };
        if s.payment.recorded_refund(refund) != Some(*amount) {
            return Err(format!(
                "refund {id:?}: engine {:?}, model {amount:?}",
                s.payment.recorded_refund(refund)
            ));
        }
    }
    Ok(())
}

fn id_checked(text: &str) -> Result<(), IdError> {
    if text.is_empty() || text.len() > MAX_ID_LEN {
        Err(IdError { len: text.len() })
    } else {
        Ok(())
    }
}

/// Builds the engine input, checking the id rules of §2.1 on the way. `None`: an id the
/// engine refused, as it must.
fn build(event: &str, cmd: &Command) -> Option<Input> {
    let id = EventId::new(event.as_bytes());
    assert_eq!(id.map(|_| ()), id_checked(event), "event id {event:?}");
    let id = id.ok()?;
    Some(match cmd {
        Command::Initiate => Input::initiate(id),
        Command::Succeed(m) => Input::succeed(id, *m),
        Command::Fail(reason) => {
            let input = Input::fail(id, reason);
            assert_eq!(input.map(|_| ()), id_checked(reason), "reason {reason:?}");
            input.ok()?
        }
        Command::Cancel => Input::cancel(id),
        Command::Close => Input::close(id),
        Command::Refund(refund_id, m) => {
            let r = RefundId::new(refund_id.as_bytes());
            assert_eq!(
                r.map(|_| ()),
                id_checked(refund_id),
                "refund id {refund_id:?}"
            );
            Input::refund(id, r.ok()?, *m)
        }
    })
}

fn input_json(event: &str, cmd: &Command) -> Value {
    match cmd {
        Command::Initiate => json!({"type": "initiate", "event_id": event}),
        Command::Succeed(m) => json!({
            "type": "succeed", "event_id": event,
            "amount": m.to_string(), "currency": m.currency().code(),
        }),
        Command::Fail(reason) => json!({"type": "fail", "event_id": event, "reason": reason}),
        Command::Cancel => json!({"type": "cancel", "event_id": event}),
        Command::Close => json!({"type": "close", "event_id": event}),
        Command::Refund(refund_id, m) => json!({
            "type": "refund", "event_id": event, "refund_id": refund_id,
            "amount": m.to_string(), "currency": m.currency().code(),
        }),
    }
}

/// After one input or tick: counts an applied outcome, writes the model's expected answer,
/// and checks engine against model, every invariant of the step, and (on the second of two
/// identical deliveries) idempotence. Stops the run at the failing driver line.
fn settle<const E: usize, const R: usize>(
    slot: &mut Slot<E, R>,
    lines: &mut Lines,
    before: &Payment<E, R>,
    outcome: Outcome,
    want: Want,
    first: &mut Option<Outcome>,
    what: impl FnOnce() -> String,
) {
    if matches!(outcome, Outcome::Applied(_)) {
        slot.applied += 1;
    }
    lines.expect(|| answer(&slot.name, &slot.model, &want, None));
    let result = if got(&outcome) != want {
        Err(format!(
            "{} on {before:?}: engine {outcome:?}, model {want:?}",
            what()
        ))
    } else {
        check_step(before, &slot.payment, &outcome)
            .and_then(|()| agree(slot))
            .and_then(|()| match first.as_ref() {
                Some(f) => check_twice(f, &outcome),
                None => Ok(()),
            })
    };
    if let Err(e) = result {
        fail_at(lines.count, e);
    }
    *first = Some(outcome);
}

/// Applies one input (twice in a row if `twice`) to the engine and the model and checks
/// every step.
fn apply<const E: usize, const R: usize>(
    slot: &mut Slot<E, R>,
    lines: &mut Lines,
    event: &str,
    command: &Command,
    now: u64,
    twice: bool,
) {
    let Some(input) = no_alloc("building an input", || build(event, command)) else {
        return;
    };
    let rounds = if twice { 2 } else { 1 };
    let mut first: Option<Outcome> = None;
    for _ in 0..rounds {
        lines.emit(|| {
            json!({"op": "apply", "payment": slot.name, "now": now,
                   "input": input_json(event, command)})
        });
        let before = slot.payment.clone();
        let outcome = no_alloc("Payment::apply", || {
            slot.payment.apply(&input, Timestamp::from_secs(now))
        });
        let want = slot.model.apply(event, command);
        settle(slot, lines, &before, outcome, want, &mut first, || {
            format!("{command:?} (event {event:?})")
        });
    }
}

fn run<const E: usize, const R: usize>(s: &Scenario, out: Option<(File, File)>) {
    let mut lines = Lines { out, count: 0 };
    let start = time(s.start);
    let mut now = start;
    let mut slots: Vec<Option<Slot<E, R>>> = Vec::new();
    // Makes the ids of `Op::Refunds` fresh.
    let mut serial = 0u32;

    for (i, spec) in s.payments.iter().take(MAX_PAYMENTS).enumerate() {
        let c = currency(spec.currency);
        let minor = match spec.amount {
            Price::Small(n) => u64::from(n),
            Price::Any(n) => n,
        };
        let amount = Money::from_minor(minor, c);
        let expires_at = spec.deadline.as_ref().map(|d| match *d {
            Deadline::After(n) => start.saturating_add(u64::from(n)),
            Deadline::Before(n) => start.saturating_sub(u64::from(n)),
            Deadline::At(t) => t,
        });
        let policy = if spec.accept_late_success {
            LateSuccess::Accept
        } else {
            LateSuccess::Refund
        };
        let name = format!("p{i}");
        lines.emit(|| {
            let mut v = json!({
                "op": "create", "payment": name, "amount": amount.to_string(),
                "currency": c.code(), "now": start,
            });
            if let Some(t) = expires_at {
                v["expires_at"] = json!(t);
            }
            v["late_success"] = json!(policy.name());
            v
        });
        let created = Payment::<E, R>::with_capacity(amount, Timestamp::from_secs(start));
        let Ok(mut payment) = created else {
            lines.expect(
                || json!({"payment": name, "outcome": "rejected", "error": "invalid_amount"}),
            );
            if minor != 0 {
                fail_at(
                    lines.count,
                    format!("creating {amount:?} failed: {created:?}"),
                );
            }
            slots.push(None);
            continue;
        };
        if minor == 0 {
            fail_at(lines.count, "a payment of zero was created");
        }
        payment = payment.with_late_success(policy);
        if let Some(t) = expires_at {
            payment = payment.with_deadline(Timestamp::from_secs(t));
        }
        if let Err(e) = check_state(&payment) {
            fail_at(lines.count, e);
        }
        let model = Model {
            amount,
            expires_at,
            policy,
            status: Status::Pending,
            paid: 0,
            refunded: 0,
            version: 0,
            events: Vec::new(),
            event_capacity: E,
            refunds: Vec::new(),
            refund_capacity: R,
            refund_required_emitted: false,
            close_pending: false,
            late_refund: payment.refund_request_id(),
        };
        lines.expect(|| {
            let mut created = answer(&name, &model, &Want::Ignored, None);
            created["outcome"] = json!("created");
            created
        });
        slots.push(Some(Slot {
            name,
            payment,
            model,
            applied: 0,
        }));
    }
    if slots.is_empty() {
        return;
    }

    for op in &s.ops {
        let (Op::Apply { payment, .. }
        | Op::Tick { payment, .. }
        | Op::Snapshot { payment }
        | Op::Refunds { payment, .. }) = op;
        let n = slots.len();
        let Some(slot) = slots
            .get_mut(usize::from(*payment) % n)
            .and_then(Option::as_mut)
        else {
            continue;
        };
        match op {
            Op::Apply {
                event,
                cmd,
                dt,
                twice,
                ..
            } => {
                now = step(now, *dt);
                let event = id_text(event, "e", 16);
                let command = match cmd {
                    Cmd::Initiate => Command::Initiate,
                    Cmd::Succeed { amount, currency } => {
                        Command::Succeed(slot.model.resolve(*amount, *currency))
                    }
                    Cmd::Fail { reason } => Command::Fail(match reason {
                        Reason::Pool(b) => if *b { "PAYERROR" } else { "EXPIRED" }.into(),
                        Reason::Text(s) => s.clone(),
                    }),
                    Cmd::Cancel => Command::Cancel,
                    Cmd::Close => Command::Close,
                    Cmd::Refund {
                        refund,
                        amount,
                        currency,
                    } => Command::Refund(
                        id_text(refund, "r", 24),
                        slot.model.resolve(*amount, *currency),
                    ),
                };
                apply(slot, &mut lines, &event, &command, now, *twice);
            }
            Op::Refunds { count, amount, .. } => {
                for _ in 0..(count % 21) {
                    serial += 1;
                    let command = Command::Refund(
                        format!("rb{serial}"),
                        slot.model.resolve(*amount, Cur::Same),
                    );
                    apply(
                        slot,
                        &mut lines,
                        &format!("eb{serial}"),
                        &command,
                        now,
                        false,
                    );
                }
            }
            Op::Tick { dt, twice, .. } => {
                now = step(now, *dt);
                let rounds = if *twice { 2 } else { 1 };
                let mut first: Option<Outcome> = None;
                for _ in 0..rounds {
                    lines.emit(|| json!({"op": "tick", "payment": slot.name, "now": now}));
                    let before = slot.payment.clone();
                    let outcome = no_alloc("Payment::tick", || {
                        slot.payment.tick(Timestamp::from_secs(now))
                    });
                    let want = slot.model.tick(now);
                    settle(slot, &mut lines, &before, outcome, want, &mut first, || {
                        format!("tick at {now}")
                    });
                }
            }
            Op::Snapshot { .. } => {
                lines.emit(|| json!({"op": "snapshot", "payment": slot.name}));
                let rank = slot.payment.status().rank();
                match round_trip(&slot.payment) {
                    Ok((restored, bytes)) => {
                        slot.payment = restored;
                        let m = &slot.model;
                        lines.expect(|| answer(&slot.name, m, &Want::Ignored, Some(&bytes)));
                    }
                    Err(e) => fail_at(lines.count, format!("snapshot: {e}")),
                }
                if slot.payment.status().rank() != rank {
                    fail_at(lines.count, "a snapshot round trip changed the rank");
                }
                if let Err(e) = agree(slot).and_then(|()| agree_deep(slot)) {
                    fail_at(lines.count, format!("after a snapshot round trip: {e}"));
                }
            }
        }
    }
    for slot in slots.iter().flatten() {
        if let Err(e) = agree_deep(slot) {
            fail_at(lines.count, format!("{} at the end: {e}", slot.name));
        }
    }
}

fuzz_target!(|s: Scenario| {
    let out = jsonl_path().map(|path| {
        if s.wide {
            eprintln!(
                "note: this input uses payments that remember 11 events and 19 refunds; the \
                 replay driver's remember 8 and 16, so its answers differ once those fill up"
            );
        }
        let ops = File::create(path).expect("create the JSON-lines file");
        let expected =
            File::create(format!("{path}.expected")).expect("create the expected-answers file");
        (ops, expected)
    });
    if s.wide {
        run::<11, 19>(&s, out);
    } else {
        run::<8, 16>(&s, out);
    }
});
