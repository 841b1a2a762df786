//! A POS terminal's shift on the `paystate` engine, as firmware for a Cortex-M3
//! (QEMU's `lm3s6965evb`: 256 KiB flash, 64 KiB RAM).
//!
//! The terminal plays a scripted shift through Alipay's face-to-face (barcode) flow: it opens
//! orders, scans barcodes, polls, closes expired trades and refunds, keeping every open payment
//! in a [`PaymentTable`]. Every Alipay answer is verified (RSA2) on the device before it
//! becomes an engine input, and after every applied outcome the payment's snapshot is appended
//! to a journal in (simulated) flash. Halfway through, the power fails in the middle of a flash
//! write: the terminal reboots with nothing but the flash, restores every payment, and finishes
//! the shift; it then replays the shift without the power failure and checks that both end in
//! the same state.
//!
//! The transcript goes to the host's stdout through semihosting, the footprint figures to its
//! stderr, and the exit status says whether the shift ran as it must.

#![no_std]
#![no_main]

#[cfg(feature = "rsa")]
extern crate alloc;

mod flash;
mod footprint;
#[cfg(feature = "rsa")]
mod heap;
mod json;
mod provider;
mod script;

use core::fmt::{self, Write as _};

use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::{debug, heprintln, hprintln};
use panic_semihosting as _;
use paystate::table::{OrderId, PaymentTable, TableError};
use paystate::{
    Currency, Effect, EventId, Input, Money, Outcome, Payment, RefundId, Timestamp, snapshot,
};

use flash::{Entry, Journal, Sector, WriteError};
use provider::{AnswerError, Content, Verifier};
use script::{Action, SHIFT, SHIFT_START, Step};

/// How many payments the terminal keeps open at once.
const CAPACITY: usize = 6;
type Table = PaymentTable<CAPACITY>;
/// A line of text built on the stack.
type Line = heapless::String<256>;

/// Prints a transcript line unless the run is quiet.
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {
        if !$out.quiet {
            hprintln!($($arg)*);
        }
    };
}

/// Where the transcript goes: the host's stdout, or nowhere (the reference run).
#[derive(Clone, Copy)]
struct Out {
    quiet: bool,
}

/// The power-failure fixture.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PowerCut {
    /// This run has none (the reference run).
    Disabled,
    /// Not yet armed.
    Ready,
    /// The next flash write is cut halfway.
    Armed,
    /// The flash write with this number (counted from 1 over the whole run) is cut halfway.
    AtWrite(u32),
    /// It happened.
    Done,
}

/// What survives a power failure: the flash, and the test fixture's own state.
struct World {
    sector: &'static mut Sector,
    power_cut: PowerCut,
    /// Flash writes started so far in this run.
    writes: u32,
    out: Out,
}

/// The power failed: everything in RAM is gone.
struct PowerLost;

/// The terminal's RAM state. Dropped whole when the power fails.
struct Terminal {
    table: Table,
    journal: Journal,
    verifier: Verifier,
}

/// The wall clock of a step, for the transcript (the shift starts at 10:00:00).
struct Clock(u64);

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = 10 * 3600 + self.0;
        write!(f, "{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
    }
}

/// A payment's state for the transcript.
struct State<'a>(&'a Payment);

impl fmt::Display for State<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.0;
        write!(
            f,
            "{} v{}, paid {}, refunded {}",
            p.status(),
            p.version(),
            p.paid(),
            p.refunded()
        )
    }
}

/// An outcome for the transcript.
struct Said<'a>(&'a Outcome);

impl fmt::Display for Said<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Outcome::Rejected(reason) => write!(f, "rejected ({})", reason.code()),
            other => f.write_str(other.name()),
        }
    }
}

/// What an answer means for the engine.
enum Meaning {
    /// Feed this input.
    Input(Input),
    /// Nothing to feed; the note says why.
    Nothing,
}

#[entry]
fn main() -> ! {
    #[cfg(feature = "rsa")]
    heap::init();
    let sector: &'static mut Sector = match cortex_m::singleton!(: Sector = Sector::erased()) {
        Some(sector) => sector,
        None => fail("the flash sector was taken twice"),
    };
    let out = Out { quiet: false };
    say!(
        out,
        "paystate POS terminal, till 1: shift of 2025-06-17 (lm3s6965evb, Cortex-M3)"
    );
    say!(
        out,
        "answers are checked: {}",
        if cfg!(feature = "rsa") {
            "RSA2 (SHA256withRSA) with the pinned Alipay key"
        } else {
            "no (built without the rsa feature)"
        }
    );

    let mut world = World {
        sector,
        power_cut: PowerCut::Disabled,
        writes: 0,
        out: Out { quiet: true },
    };
    // First, quietly, the shift without a power failure: the reference end state.
    let reference = replay(&mut world, PowerCut::Disabled);
    let writes = world.writes;

    // The shift of the transcript, with the power failing once.
    world.out = out;
    let same = shift_ends_as(&mut world, &reference);
    say!(
        out,
        "check: the shift with the power failure ends as the uninterrupted one: {}",
        if same {
            "yes, every payment bit for bit"
        } else {
            "NO"
        }
    );
    // And once more for every flash write of the shift, with the power failing halfway
    // through that write.
    world.out = Out { quiet: true };
    let identical = (1..=writes)
        .filter(|&n| cut_at_write_ends_as(&mut world, n, &reference))
        .count();
    say!(
        out,
        "check: the power failing in the middle of any one of the shift's {writes} flash writes: {identical} of {writes} end states identical to the uninterrupted run"
    );
    footprint::report();
    if same && identical == writes as usize {
        say!(out, "shift complete");
        debug::exit(debug::EXIT_SUCCESS);
    } else {
        debug::exit(debug::EXIT_FAILURE);
    }
    loop {
        cortex_m::asm::wfi();
    }
}

/// Erases the flash and runs the shift (quietly) with this power failure.
fn replay(world: &mut World, power_cut: PowerCut) -> Table {
    world.sector.erase();
    world.power_cut = power_cut;
    world.writes = 0;
    run_shift(world)
}

/// Runs the shift of the transcript (the power fails where the script says) and tells
/// whether it ends as `reference`. Not inlined, so its table is on the stack only meanwhile.
#[inline(never)]
fn shift_ends_as(world: &mut World, reference: &Table) -> bool {
    let end = replay(world, PowerCut::Ready);
    world.power_cut == PowerCut::Done && end == *reference
}

/// Whether the shift with the power failing during flash write `n` ends as `reference`.
#[inline(never)]
fn cut_at_write_ends_as(world: &mut World, n: u32, reference: &Table) -> bool {
    let end = replay(world, PowerCut::AtWrite(n));
    world.power_cut == PowerCut::Done && end == *reference
}

/// Runs the whole shift, rebooting after every power failure, and returns the final table.
fn run_shift(world: &mut World) -> Table {
    let out = world.out;
    let mut boot = 1u32;
    loop {
        let (mut terminal, resume) = Terminal::boot(world, boot);
        match terminal.run(world, resume) {
            Ok(()) => {
                say!(out, "end of shift: {} payments", terminal.table.len());
                for (id, p) in terminal.table.iter() {
                    say!(out, "  {id}: {}", State(p));
                }
                return terminal.table;
            }
            Err(PowerLost) => {
                say!(out, "*** power lost: every payment in RAM is gone ***");
                drop(terminal);
                boot += 1;
            }
        }
    }
}

impl Terminal {
    /// Starts from the flash alone: restores every payment and finds where the shift stood.
    fn boot(world: &mut World, boot: u32) -> (Terminal, usize) {
        let out = world.out;
        let verifier = match Verifier::new() {
            Ok(v) => v,
            Err(_) => fail("the pinned Alipay public key does not parse"),
        };
        let mut table = Table::new();
        let mut resume = 0usize;
        if world.sector.is_erased() {
            say!(
                out,
                "boot {boot}: flash sector erased (all 0xFF): no payments to restore"
            );
        } else {
            let mut records = 0u32;
            for entry in flash::scan(world.sector) {
                match entry {
                    Entry::Record(r) => {
                        records += 1;
                        resume = resume.max(r.position as usize);
                        restore(&mut table, out, r.offset, r.order_id, r.snapshot);
                    }
                    Entry::Damaged(d) => say!(
                        out,
                        "boot {boot}: flash bytes 0x{:03x}..0x{:03x} are no valid record (a torn write): skipped, the record before stays in force",
                        d.offset,
                        d.offset + d.len
                    ),
                }
            }
            say!(
                out,
                "boot {boot}: restored {} payments from {records} records; the last persisted step was {resume:02}, the shift resumes there",
                table.len()
            );
            for (id, p) in table.iter() {
                say!(out, "  {id}: {}", State(p));
            }
        }
        let journal = Journal::open(world.sector);
        (
            Terminal {
                table,
                journal,
                verifier,
            },
            resume,
        )
    }

    /// Plays the shift from step number `last` on (steps are numbered from 1; a record holds
    /// the number of the step whose outcome it persists). Step `last` itself runs again: one
    /// step can persist several records (deadlines, then its own outcome), and the power may
    /// have failed between them. What was persisted answers `duplicate` or `ignored`.
    fn run(&mut self, world: &mut World, last: usize) -> Result<(), PowerLost> {
        for (i, step) in SHIFT.iter().enumerate().skip(last.saturating_sub(1)) {
            let i = i + 1;
            let now = Timestamp::from_secs(SHIFT_START + step.at);
            self.deadlines(world, i, step, now)?;
            self.step(world, i, step, now)?;
        }
        Ok(())
    }

    /// Ticks every payment whose deadline has come.
    fn deadlines(
        &mut self,
        world: &mut World,
        i: usize,
        step: &Step,
        now: Timestamp,
    ) -> Result<(), PowerLost> {
        let out = world.out;
        let Terminal { table, journal, .. } = self;
        let mut lost = false;
        table.tick_due(now, |id, p, outcome| {
            if lost {
                return;
            }
            say!(
                out,
                "[{i:02}] {} {id} deadline passed: tick: {} -> {}",
                Clock(step.at),
                Said(&outcome),
                State(p)
            );
            match persist(world, journal, i, id.as_bytes(), p) {
                Ok(()) => effects(out, id, &outcome),
                Err(PowerLost) => lost = true,
            }
        });
        if lost { Err(PowerLost) } else { Ok(()) }
    }

    fn step(
        &mut self,
        world: &mut World,
        i: usize,
        step: &Step,
        now: Timestamp,
    ) -> Result<(), PowerLost> {
        let out = world.out;
        let at = Clock(step.at);
        let order = step.order;
        match step.action {
            Action::Open { amount, window } => {
                let Ok(amount) = Money::parse(amount, Currency::CNY) else {
                    say!(
                        out,
                        "[{i:02}] {at} {order} open: refused: amount {amount} is not a CNY amount"
                    );
                    return Ok(());
                };
                let payment = match Payment::new(amount, now) {
                    Ok(p) => p.with_deadline(now.saturating_add(window)),
                    Err(e) => {
                        say!(out, "[{i:02}] {at} {order} open {amount} CNY: refused: {e}");
                        return Ok(());
                    }
                };
                match self.table.insert(order.as_bytes(), payment) {
                    Ok(p) => {
                        say!(
                            out,
                            "[{i:02}] {at} {order} open {amount} CNY, to be paid by {}: created -> {}",
                            Clock(step.at + window),
                            State(p)
                        );
                        self.persisted(world, i, order)?;
                    }
                    Err(TableError::DuplicateOrder) => {
                        if let Ok(p) = self.table.get(order.as_bytes()) {
                            say!(
                                out,
                                "[{i:02}] {at} {order} open {amount} CNY: already open (restored from flash) -> {}",
                                State(p)
                            );
                        }
                    }
                    Err(TableError::Full { capacity }) => say!(
                        out,
                        "[{i:02}] {at} {order} open {amount} CNY: refused: the payment table is full ({capacity} open payments); the customer goes to another till"
                    ),
                    Err(e) => say!(out, "[{i:02}] {at} {order} open {amount} CNY: refused: {e}"),
                }
            }
            Action::Scan => {
                let mut line = Line::new();
                let _ = write!(
                    line,
                    "[{i:02}] {at} {order} barcode scanned, alipay.trade.pay sent: initiate"
                );
                let mut id: heapless::String<64> = heapless::String::new();
                let _ = write!(id, "scan:{order}");
                match EventId::new(id.as_bytes()) {
                    Ok(event) => self.feed(world, i, order, line, &Input::initiate(event), now)?,
                    Err(e) => say!(out, "{line}: refused: event id {e}"),
                }
            }
            Action::Answer { method, file, raw } => {
                let mut line = Line::new();
                let _ = write!(line, "[{i:02}] {at} {order} {method} answer {file}");
                let content = match self.verifier.receive(raw, method) {
                    Ok(content) => content,
                    Err(e) => {
                        say!(out, "{line}: refused before the engine: {e}");
                        return Ok(());
                    }
                };
                let _ = write!(line, " ({})", Verifier::CHECK);
                match self.meaning(order, method, &content, &mut line) {
                    Ok(Meaning::Input(input)) => self.feed(world, i, order, line, &input, now)?,
                    Ok(Meaning::Nothing) => say!(out, "{line}"),
                    Err(e) => say!(out, "{line}: refused: {e}"),
                }
            }
            Action::Refund {
                request,
                amount,
                file,
                raw,
            } => {
                say!(
                    out,
                    "[{i:02}] {at} {order} alipay.trade.refund sent: {amount} CNY as {request}"
                );
                let mut line = Line::new();
                let _ = write!(line, "       answer {file}");
                match self.refund(order, request, amount, raw, &mut line) {
                    Ok(input) => self.feed(world, i, order, line, &input, now)?,
                    Err(e) => say!(out, "{line}: refused: {e}"),
                }
            }
            Action::Wait => {}
            Action::PowerFailsDuringNextWrite => match world.power_cut {
                PowerCut::Ready => {
                    world.power_cut = PowerCut::Armed;
                    say!(
                        out,
                        "[{i:02}] {at} (test fixture: the power will fail during the next flash write)"
                    );
                }
                PowerCut::Done => say!(
                    out,
                    "[{i:02}] {at} (test fixture: the power failure has happened)"
                ),
                PowerCut::Armed | PowerCut::AtWrite(_) | PowerCut::Disabled => {}
            },
        }
        Ok(())
    }

    /// Applies `input` to `order`, prints the outcome, persists and carries out effects.
    fn feed(
        &mut self,
        world: &mut World,
        i: usize,
        order: &str,
        line: Line,
        input: &Input,
        now: Timestamp,
    ) -> Result<(), PowerLost> {
        let out = world.out;
        let outcome = match self.table.apply(order.as_bytes(), input, now) {
            Ok(outcome) => outcome,
            Err(e) => {
                say!(out, "{line}: refused: {e}");
                return Ok(());
            }
        };
        let Ok(p) = self.table.get(order.as_bytes()) else {
            return Ok(());
        };
        say!(out, "{line}: {} -> {}", Said(&outcome), State(p));
        if let Outcome::Applied(_) = outcome {
            self.persisted(world, i, order)?;
            if let Ok(id) = OrderId::new(order.as_bytes()) {
                effects(out, &id, &outcome);
            }
        }
        Ok(())
    }

    /// Persists the payment of `order` after an applied outcome.
    fn persisted(&mut self, world: &mut World, i: usize, order: &str) -> Result<(), PowerLost> {
        let Terminal { table, journal, .. } = self;
        match table.get(order.as_bytes()) {
            Ok(p) => persist(world, journal, i, order.as_bytes(), p),
            Err(_) => Ok(()),
        }
    }

    /// Reads an answer to a payment request, query or close: the Alipay business checks, then
    /// the input it stands for (docs/spec.md §4).
    fn meaning(
        &self,
        order: &str,
        method: &str,
        c: &Content<'_>,
        line: &mut Line,
    ) -> Result<Meaning, Refusal> {
        let code = c.get("code")?;
        let out_trade_no = c.get("out_trade_no")?;
        if out_trade_no != order {
            return Err(Refusal::OtherOrder);
        }
        let payment = self.table.get(order.as_bytes()).map_err(Refusal::Table)?;
        let trade_no = c.get("trade_no")?;
        let status = match (method, code) {
            ("alipay.trade.pay", "10000") => "TRADE_SUCCESS",
            ("alipay.trade.pay", "10003") => "WAIT_BUYER_PAY",
            ("alipay.trade.query", "10000") => c.get("trade_status")?,
            ("alipay.trade.close", "10000") => "TRADE_CLOSED",
            (_, code) => {
                let sub = c.opt("sub_code")?.unwrap_or("-");
                let _ = write!(
                    line,
                    ": code {code} {sub}: nothing to apply, the terminal queries the trade"
                );
                return Ok(Meaning::Nothing);
            }
        };
        // One provider fact, one event id: the same fact delivered twice is a duplicate.
        let mut id: heapless::String<64> = heapless::String::new();
        write!(id, "alipay:{trade_no}:{status}").map_err(|_| Refusal::EventId)?;
        let event = EventId::new(id.as_bytes()).map_err(|_| Refusal::EventId)?;
        let _ = write!(line, ": {status}");
        match status {
            "TRADE_SUCCESS" | "TRADE_FINISHED" => {
                let total = c.get("total_amount")?;
                let amount =
                    Money::parse(total, payment.currency()).map_err(|_| Refusal::Amount)?;
                let _ = write!(line, " {amount}: succeed");
                Ok(Meaning::Input(Input::succeed(event, amount)))
            }
            "WAIT_BUYER_PAY" => {
                let _ = write!(line, ": initiate");
                Ok(Meaning::Input(Input::initiate(event)))
            }
            "TRADE_CLOSED" if payment.paid().is_zero() => {
                let _ = write!(line, ": close");
                Ok(Meaning::Input(Input::close(event)))
            }
            _ => {
                let _ = write!(line, ": nothing to apply, reconcile");
                Ok(Meaning::Nothing)
            }
        }
    }

    /// Reads the answer to a refund request.
    fn refund(
        &self,
        order: &str,
        request: &str,
        amount: &str,
        raw: &str,
        line: &mut Line,
    ) -> Result<Input, Refusal> {
        let c = self.verifier.receive(raw, "alipay.trade.refund")?;
        let _ = write!(line, " ({})", Verifier::CHECK);
        let payment = self.table.get(order.as_bytes()).map_err(Refusal::Table)?;
        if c.get("out_trade_no")? != order {
            return Err(Refusal::OtherOrder);
        }
        if c.get("code")? != "10000" || c.get("fund_change")? != "Y" {
            return Err(Refusal::NotRefunded);
        }
        let amount = Money::parse(amount, payment.currency()).map_err(|_| Refusal::Amount)?;
        let refund_id = RefundId::new(request.as_bytes()).map_err(|_| Refusal::EventId)?;
        // `refund_fee` is the trade's refunded total. A first delivery must add up; a
        // redelivery of a recorded refund goes to the engine, which answers `duplicate`.
        let fee =
            Money::parse(c.get("refund_fee")?, payment.currency()).map_err(|_| Refusal::Amount)?;
        if payment.recorded_refund(refund_id).is_none()
            && payment.refunded().checked_add(amount) != Some(fee)
        {
            return Err(Refusal::Amount);
        }
        let _ = write!(line, ": refund_fee {fee}: refund {amount}");
        let mut id: heapless::String<64> = heapless::String::new();
        write!(id, "refund:{request}").map_err(|_| Refusal::EventId)?;
        let event = EventId::new(id.as_bytes()).map_err(|_| Refusal::EventId)?;
        Ok(Input::refund(event, refund_id, amount))
    }
}

/// Why an authentic answer was not fed to the engine.
enum Refusal {
    Answer(AnswerError),
    OtherOrder,
    Table(TableError),
    EventId,
    Amount,
    NotRefunded,
}

impl From<AnswerError> for Refusal {
    fn from(e: AnswerError) -> Self {
        Refusal::Answer(e)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Answer(e) => write!(f, "{e}"),
            Refusal::OtherOrder => f.write_str("the answer is about another order"),
            Refusal::Table(e) => write!(f, "{e}"),
            Refusal::EventId => f.write_str("no usable event id"),
            Refusal::Amount => f.write_str("the amounts do not add up"),
            Refusal::NotRefunded => f.write_str("Alipay did not refund"),
        }
    }
}

/// Puts a restored record into the table: the last record of an order wins.
fn restore(table: &mut Table, out: Out, offset: usize, order_id: &[u8], bytes: &[u8]) {
    let payment: Payment = match snapshot::decode(bytes) {
        Ok(p) => p,
        Err(e) => {
            say!(
                out,
                "  flash record at 0x{offset:03x}: unreadable snapshot ({e}): skipped"
            );
            return;
        }
    };
    match table.get_mut(order_id) {
        Ok(slot) => *slot = payment,
        Err(_) => {
            if let Err(e) = table.insert(order_id, payment) {
                say!(out, "  flash record at 0x{offset:03x}: not restored: {e}");
            }
        }
    }
}

/// Appends the payment's snapshot to the journal.
fn persist(
    world: &mut World,
    journal: &mut Journal,
    i: usize,
    order_id: &[u8],
    p: &Payment,
) -> Result<(), PowerLost> {
    let out = world.out;
    let mut buf = [0u8; snapshot::MAX_SIZE];
    let bytes = match snapshot::encode(p, &mut buf) {
        Ok(bytes) => bytes,
        Err(e) => {
            say!(out, "       flash: no snapshot ({e}): not persisted");
            return Ok(());
        }
    };
    world.writes = world.writes.saturating_add(1);
    let cut = match world.power_cut {
        PowerCut::Armed => true,
        PowerCut::AtWrite(n) => n == world.writes,
        _ => false,
    };
    let position = u32::try_from(i).unwrap_or(u32::MAX);
    match journal.append(world.sector, position, order_id, bytes, cut) {
        Ok((at, len)) => {
            say!(out, "       flash: record at 0x{at:03x}, {len} bytes");
            Ok(())
        }
        Err(WriteError::PowerLost { at, written, len }) => {
            world.power_cut = PowerCut::Done;
            say!(
                out,
                "       flash: POWER FAILS while writing the record at 0x{at:03x} ({written} of {len} bytes written)"
            );
            Err(PowerLost)
        }
        Err(WriteError::Full { needed, left }) => {
            say!(
                out,
                "       flash: sector full ({needed} bytes needed, {left} left): not persisted"
            );
            Ok(())
        }
        Err(WriteError::TooLarge) => {
            say!(out, "       flash: record too large: not persisted");
            Ok(())
        }
    }
}

/// Carries out the effects of an applied outcome (here: says what the terminal sends).
fn effects(out: Out, id: &OrderId, outcome: &Outcome) {
    for effect in outcome.effects() {
        match effect {
            Effect::CloseTrade => say!(
                out,
                "       effect: close_trade -> alipay.trade.close sent for {id}"
            ),
            Effect::RefundRequired(amount) => say!(
                out,
                "       effect: refund_required {amount} -> a refund of {id} is due"
            ),
            _ => say!(out, "       effect: {effect:?}"),
        }
    }
}

/// Stops the firmware with a failure status.
fn fail(why: &str) -> ! {
    heprintln!("fatal: {why}");
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    heprintln!("hard fault at pc {:#010x}", frame.pc());
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
