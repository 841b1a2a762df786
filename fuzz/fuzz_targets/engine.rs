//! The payment engine against a reference model (docs/spec.md §2.3, §2.5).
//!
//! The input is a handful of payments (amounts, currencies, deadlines, both late-success
//! policies) and a sequence of operations on them: inputs of every kind with event ids, refund
//! ids and amounts drawn from small pools (so duplicates, conflicts and full refund books are
//! common) or from arbitrary text, ticks on a clock that also runs backwards, applying the same
//! input twice in a row, and snapshot round trips mid-sequence.
//!
//! The model is the shared reference model (`paystate-model`, in model/; the property tests
//! drive the same one), written from the spec text with plain `Vec`s and full ids, not from
//! the engine: after every step the target asserts agreement with it (outcome, rejection
//! data, effects, status, money, version, obligations, remembered ids and refunds) and every
//! invariant of §2.5.
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
use paystate::{Currency, LateSuccess, Money, Outcome, Payment, Timestamp};
use paystate_fuzz::{check_state, check_step, check_twice, no_alloc, round_trip};
use paystate_model::{Command, Model, Terms, Want, driver};
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

/// A generated amount in the currency `cur`, relative to what the model holds.
fn resolve(m: &Model, amt: Amt, cur: Cur) -> Money {
    let full = m.amount().minor_units();
    let minor = match amt {
        Amt::Full => full,
        Amt::Balance => m.balance(),
        Amt::Zero => 0,
        Amt::Over(n) => full.saturating_add(1 + u64::from(n)),
        Amt::Under(n) => full.saturating_sub(1 + u64::from(n)),
        Amt::Part(n) => (u128::from(full) * u128::from(n) / 256) as u64,
        Amt::Tiny(n) => u64::from(n),
        Amt::Any(n) => n,
    };
    let c = match cur {
        Cur::Same => m.amount().currency(),
        Cur::Other(p) => currency(p),
    };
    Money::from_minor(minor, c)
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

/// Agreement with the model beyond the outcome, and with the harness's own count of
/// `applied` outcomes.
fn agree<const E: usize, const R: usize>(s: &Slot<E, R>) -> Result<(), String> {
    s.model.agrees_with(&s.payment)?;
    if s.payment.version() != s.applied {
        return Err(format!(
            "version {} but {} applied outcomes",
            s.payment.version(),
            s.applied
        ));
    }
    Ok(())
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
    lines.expect(|| driver::answer(&slot.name, &slot.model, &want, None));
    let result = if Want::of(&outcome) != want {
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
    let Some(input) = no_alloc("building an input", || command.input(event)) else {
        return;
    };
    let rounds = if twice { 2 } else { 1 };
    let mut first: Option<Outcome> = None;
    for _ in 0..rounds {
        lines.emit(|| {
            json!({"op": "apply", "payment": slot.name, "now": now,
                   "input": driver::input(event, command)})
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
        let terms = Terms::new(amount)
            .with_deadline(expires_at)
            .with_late_success(policy)
            .with_capacity(E, R);
        lines.emit(|| driver::create(&name, &terms, start));
        let created = Payment::<E, R>::with_capacity(amount, Timestamp::from_secs(start));
        let Ok(mut payment) = created else {
            lines.expect(|| driver::create_refused(&name));
            if terms.check().is_ok() {
                fail_at(
                    lines.count,
                    format!("creating {amount:?} failed: {created:?}"),
                );
            }
            slots.push(None);
            continue;
        };
        if let Err(e) = terms.check() {
            fail_at(
                lines.count,
                format!("created {amount:?}, the model says {e:?}"),
            );
        }
        payment = payment.with_late_success(policy);
        if let Some(t) = expires_at {
            payment = payment.with_deadline(Timestamp::from_secs(t));
        }
        if let Err(e) = check_state(&payment) {
            fail_at(lines.count, e);
        }
        let model = Model::new(terms, payment.refund_request_id());
        lines.expect(|| driver::created(&name, &model));
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
                        Command::Succeed(resolve(&slot.model, *amount, *currency))
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
                        resolve(&slot.model, *amount, *currency),
                    ),
                };
                apply(slot, &mut lines, &event, &command, now, *twice);
            }
            Op::Refunds { count, amount, .. } => {
                for _ in 0..(count % 21) {
                    serial += 1;
                    let command = Command::Refund(
                        format!("rb{serial}"),
                        resolve(&slot.model, *amount, Cur::Same),
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
                        lines
                            .expect(|| driver::answer(&slot.name, m, &Want::Ignored, Some(&bytes)));
                    }
                    Err(e) => fail_at(lines.count, format!("snapshot: {e}")),
                }
                if slot.payment.status().rank() != rank {
                    fail_at(lines.count, "a snapshot round trip changed the rank");
                }
                if let Err(e) =
                    agree(slot).and_then(|()| slot.model.agrees_deeply_with(&slot.payment))
                {
                    fail_at(lines.count, format!("after a snapshot round trip: {e}"));
                }
            }
        }
    }
    for slot in slots.iter().flatten() {
        if let Err(e) = slot.model.agrees_deeply_with(&slot.payment) {
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
