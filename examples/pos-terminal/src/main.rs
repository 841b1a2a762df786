//! A POS terminal's shift on the `paystate` engine, as firmware for a Cortex-M3
//! (QEMU's `lm3s6965evb`: 256 KiB flash, 64 KiB RAM).
//!
//! The terminal plays a scripted shift through Alipay's face-to-face (barcode) flow: it opens
//! orders, scans barcodes, polls, closes expired trades and refunds, keeping every open payment
//! in a [`PaymentTable`]. Every Alipay answer is verified (RSA2) and mapped to an engine input
//! by the crate's `provider::alipay`, and after every applied outcome the payment's snapshot is
//! appended to a journal in (simulated) flash. Halfway through, the power fails in the middle
//! of a flash write: the terminal reboots with nothing but the flash, restores every payment,
//! sends again every obligation still outstanding (`Payment::pending_effects`), and finishes
//! the shift; it then replays the shift without the power failure and checks that both end in
//! the same state, with no obligation left outstanding.
//!
//! The transcript goes to the host's stdout through semihosting, the footprint figures to its
//! stderr, and the exit status says whether the shift ran as it must.

#![no_std]
#![no_main]

mod flash;
mod footprint;
mod provider;
mod script;

use core::fmt::{self, Write as _};

use cortex_m_rt::{ExceptionFrame, entry, exception};
use cortex_m_semihosting::{debug, heprintln, hprintln};
use paystate::provider::alipay::Request;
use paystate::provider::{Facts, MapError};
use paystate::table::{OrderId, PaymentTable, TableError};
use paystate::{
    Command, CreateError, Currency, Effect, EventId, Input, Money, Outcome, Payment, RefundId,
    RefundRequestId, Timestamp, snapshot,
};

use flash::{Entry, Journal, Sector, WriteError};
use provider::Verifier;
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

/// What survives a power failure: the flash, Alipay, and the test fixture's own state.
struct World {
    sector: &'static mut Sector,
    gateway: Gateway,
    power_cut: PowerCut,
    /// Flash writes started so far in this run.
    writes: u32,
    /// Whether the terminal sends its outstanding obligations again after a reboot (off only
    /// to show that the end-of-shift checks catch a lost obligation).
    outbox: bool,
    out: Out,
}

/// Alipay's side of the obligations: the requests it was sent and has not answered yet. The
/// script's answer to a close or to an obligation's refund is delivered only while its
/// request is in flight; when the power fails every request in flight is lost with its
/// connection. So an obligation is carried out after a reboot only if the terminal sends it
/// again, and one it forgot stays outstanding, which the end-of-shift checks catch.
struct Gateway {
    /// One entry per order that was ever sent a request, never moved: moving entries about
    /// would link `memmove` (1.5 KiB) into the firmware.
    orders: heapless::Vec<InFlight, { 2 * CAPACITY }>,
}

/// The requests in flight for one order.
struct InFlight {
    order: OrderId,
    /// `alipay.trade.close`.
    close: bool,
    /// `alipay.trade.refund` under this request number, of this amount.
    refund: Option<(RefundRequestId, Money)>,
}

impl Gateway {
    /// The requests in flight for `order`, if it was ever sent one.
    fn of(&mut self, order: &[u8]) -> Option<&mut InFlight> {
        self.orders.iter_mut().find(|o| o.order.as_bytes() == order)
    }

    /// Alipay receives a request for `order` (one sent again replaces the first).
    fn receive(&mut self, order: &OrderId) -> &mut InFlight {
        if self.of(order.as_bytes()).is_none() {
            let entry = InFlight {
                order: order.clone(),
                close: false,
                refund: None,
            };
            if self.orders.push(entry).is_err() {
                fail("more orders with requests in flight than the fixture holds");
            }
        }
        match self.of(order.as_bytes()) {
            Some(entry) => entry,
            None => fail("the fixture lost a request"),
        }
    }

    /// Whether a close of `order` was in flight; it is being answered.
    fn answer_close(&mut self, order: &str) -> bool {
        self.of(order.as_bytes())
            .is_some_and(|o| core::mem::take(&mut o.close))
    }

    /// The refund of `order` in flight, if any; it is being answered.
    fn answer_refund(&mut self, order: &str) -> Option<(RefundRequestId, Money)> {
        self.of(order.as_bytes()).and_then(|o| o.refund.take())
    }

    /// The power failed: every request in flight is lost with its connection.
    fn lose_all(&mut self) {
        self.orders.clear();
    }
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

/// An order id for the transcript: the terminal's ids are text (`OrderId`'s own `Display`
/// escapes arbitrary bytes, which costs flash for ids this terminal never makes).
struct Order<'a>(&'a OrderId);

impl fmt::Display for Order<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(core::str::from_utf8(self.0.as_bytes()).unwrap_or("(not text)"))
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

/// The input an answer maps to, for the transcript.
struct Mapped<'a>(&'a Input);

impl fmt::Display for Mapped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.kind().name())?;
        match self.0.command() {
            Command::Succeed { amount } | Command::Refund { amount, .. } => write!(f, " {amount}"),
            _ => Ok(()),
        }
    }
}

/// The short code of a table error. Errors the shift never expects are printed as codes, not
/// as the crate's sentences (`Display`): those would cost the firmware about 4 KiB of flash
/// for lines nobody should ever see.
fn table_code(e: &TableError) -> &'static str {
    match e {
        TableError::Full { .. } => "table_full",
        TableError::DuplicateOrder => "duplicate_order",
        TableError::UnknownOrder => "unknown_order",
        TableError::InvalidOrderId(_) => "invalid_order_id",
        _ => "table_error",
    }
}

/// The short code of a snapshot error (see [`table_code`]).
fn snapshot_code(e: &snapshot::SnapshotError) -> &'static str {
    use snapshot::SnapshotError as E;
    match e {
        E::BufferTooSmall => "buffer_too_small",
        E::Empty => "empty",
        E::UnknownVersion(_) => "unknown_version",
        E::Malformed => "malformed",
        E::TrailingBytes => "trailing_bytes",
        E::Invariant(_) => "invariant",
        _ => "snapshot_error",
    }
}

/// How many obligations the payments of `table` still have outstanding.
fn outstanding(table: &Table) -> usize {
    table.iter().map(|(_, p)| p.pending_effects().len()).sum()
}

#[entry]
fn main() -> ! {
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
        gateway: Gateway {
            orders: heapless::Vec::new(),
        },
        power_cut: PowerCut::Disabled,
        writes: 0,
        outbox: true,
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
        "check: the power failing in the middle of any one of the shift's {writes} flash writes: {identical} of {writes} end states identical to the uninterrupted run, with no obligation outstanding"
    );
    // The same once more with the outbox off: the checks must see the obligations it loses.
    world.outbox = false;
    let lost = (1..=writes)
        .filter(|&n| !cut_at_write_ends_as(&mut world, n, &reference))
        .count();
    world.outbox = true;
    say!(
        out,
        "check: the same without sending outstanding obligations again after the reboot: {lost} of {writes} end states differ (an obligation is lost), so the checks above would see one"
    );
    footprint::report();
    let settled = outstanding(&reference) == 0;
    if same && settled && identical == writes as usize && lost > 0 {
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
    world.gateway.lose_all();
    world.power_cut = power_cut;
    world.writes = 0;
    run_shift(world)
}

/// Runs the shift of the transcript (the power fails where the script says) and tells
/// whether it ends as `reference`. Not inlined, so its table is on the stack only meanwhile.
#[inline(never)]
fn shift_ends_as(world: &mut World, reference: &Table) -> bool {
    let end = replay(world, PowerCut::Ready);
    world.power_cut == PowerCut::Done && end == *reference && outstanding(&end) == 0
}

/// Whether the shift with the power failing during flash write `n` ends as `reference`.
#[inline(never)]
fn cut_at_write_ends_as(world: &mut World, n: u32, reference: &Table) -> bool {
    let end = replay(world, PowerCut::AtWrite(n));
    world.power_cut == PowerCut::Done && end == *reference && outstanding(&end) == 0
}

/// Runs the whole shift, rebooting after every power failure, and returns the final table.
fn run_shift(world: &mut World) -> Table {
    let out = world.out;
    let mut boot = 1u32;
    loop {
        let (mut terminal, resume) = Terminal::boot(world, boot);
        match terminal.run(world, resume) {
            Ok(()) => {
                say!(
                    out,
                    "end of shift: {} payments, obligations outstanding: {}",
                    terminal.table.len(),
                    outstanding(&terminal.table)
                );
                for (id, p) in terminal.table.iter() {
                    say!(out, "  {}: {}", Order(id), State(p));
                }
                return terminal.table;
            }
            Err(PowerLost) => {
                say!(
                    out,
                    "*** power lost: every payment in RAM is gone, and every request in flight ***"
                );
                world.gateway.lose_all();
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
                say!(out, "  {}: {}", Order(id), State(p));
            }
            // The journal is the outbox: what a payment still owes is in its snapshot.
            if world.outbox {
                say!(
                    out,
                    "boot {boot}: obligations outstanding in the restored payments: {}, sent again:",
                    outstanding(&table)
                );
                for (id, p) in table.iter() {
                    for effect in p.pending_effects() {
                        carry_out(world, "  outbox: ", id, &effect);
                    }
                }
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
                "[{i:02}] {} {} deadline passed: tick: {} -> {}",
                Clock(step.at),
                Order(id),
                Said(&outcome),
                State(p)
            );
            match persist(world, journal, i, id.as_bytes(), p) {
                Ok(()) => {
                    for effect in outcome.effects() {
                        carry_out(world, "       effect: ", id, effect);
                    }
                }
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
                        let code = match e {
                            CreateError::InvalidAmount => "invalid_amount",
                            _ => "create_error",
                        };
                        say!(
                            out,
                            "[{i:02}] {at} {order} open {amount} CNY: refused: {code}"
                        );
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
                    Err(e) => say!(
                        out,
                        "[{i:02}] {at} {order} open {amount} CNY: refused: {}",
                        table_code(&e)
                    ),
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
                    Err(e) => say!(out, "{line}: refused: event id of {} bytes", e.len),
                }
            }
            Action::Answer { request, file, raw } => {
                let method = request.method();
                let mut line = Line::new();
                let _ = write!(line, "[{i:02}] {at} {order} {method} answer {file}");
                // Alipay answers a close only if the terminal sent it.
                if request == Request::Close && !world.gateway.answer_close(order) {
                    say!(
                        out,
                        "{line}: not delivered: no {method} for {order} is in flight"
                    );
                    return Ok(());
                }
                self.answer(world, i, order, line, request, raw, &[], now)?;
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
                let requested = match (
                    RefundId::new(request.as_bytes()),
                    Money::parse(amount, Currency::CNY),
                ) {
                    (Ok(id), Ok(amount)) => [(id, amount)],
                    _ => {
                        say!(
                            out,
                            "{line}: refused: {request} {amount} is no refund request"
                        );
                        return Ok(());
                    }
                };
                let request = Request::Refund {
                    out_request_no: request,
                };
                self.answer(world, i, order, line, request, raw, &requested, now)?;
            }
            Action::RefundAnswer { file, raw } => {
                let mut line = Line::new();
                let _ = write!(
                    line,
                    "[{i:02}] {at} {order} alipay.trade.refund answer {file}"
                );
                let Some((refund_id, amount)) = world.gateway.answer_refund(order) else {
                    say!(
                        out,
                        "{line}: not delivered: no alipay.trade.refund for {order} is in flight"
                    );
                    return Ok(());
                };
                let requested = [(refund_id.refund_id(), amount)];
                let request = Request::Refund {
                    out_request_no: refund_id.as_str(),
                };
                self.answer(world, i, order, line, request, raw, &requested, now)?;
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
                say!(out, "{line}: refused: {}", table_code(&e));
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
                for effect in outcome.effects() {
                    carry_out(world, "       effect: ", &id, effect);
                }
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

    /// Verifies the answer to `request` and maps it against the payment's facts (and the
    /// refunds the terminal asked for), then feeds the input it stands for.
    #[allow(clippy::too_many_arguments)]
    fn answer(
        &mut self,
        world: &mut World,
        i: usize,
        order: &str,
        mut line: Line,
        request: Request<'_>,
        raw: &str,
        requested: &[(RefundId, Money)],
        now: Timestamp,
    ) -> Result<(), PowerLost> {
        let out = world.out;
        let answer = match self.verifier.receive(raw, request) {
            Ok(answer) => answer,
            Err(e) => {
                say!(out, "{line}: refused before the engine: {e}");
                return Ok(());
            }
        };
        let _ = write!(line, " ({})", Verifier::CHECK);
        let mapped = match self.table.get(order.as_bytes()) {
            Ok(p) => answer.to_input(&Facts::of(order, p).with_requested_refunds(requested)),
            Err(e) => {
                say!(out, "{line}: refused: {}", table_code(&e));
                return Ok(());
            }
        };
        match mapped {
            Ok(input) => {
                let _ = write!(line, ": {}", Mapped(&input));
                self.feed(world, i, order, line, &input, now)?;
            }
            Err(MapError::ProviderError) => say!(
                out,
                "{line}: code {} {}: nothing to apply, the terminal queries the trade",
                answer.code().unwrap_or("-"),
                answer.sub_code().unwrap_or("-")
            ),
            Err(MapError::NothingToApply) => say!(out, "{line}: nothing to apply yet"),
            Err(e) => say!(out, "{line}: refused: {}", e.code()),
        }
        Ok(())
    }
}

/// Puts a restored record into the table: the last record of an order wins.
fn restore(table: &mut Table, out: Out, offset: usize, order_id: &[u8], bytes: &[u8]) {
    let payment: Payment = match snapshot::decode(bytes) {
        Ok(p) => p,
        Err(e) => {
            say!(
                out,
                "  flash record at 0x{offset:03x}: unreadable snapshot ({}): skipped",
                snapshot_code(&e)
            );
            return;
        }
    };
    match table.get_mut(order_id) {
        Ok(slot) => *slot = payment,
        Err(_) => {
            if let Err(e) = table.insert(order_id, payment) {
                say!(
                    out,
                    "  flash record at 0x{offset:03x}: not restored: {}",
                    table_code(&e)
                );
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
            say!(
                out,
                "       flash: no snapshot ({}): not persisted",
                snapshot_code(&e)
            );
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

/// Carries out an obligation: sends Alipay the request it calls for. Sending one again is
/// harmless (`alipay.trade.close` is idempotent, and Alipay pays one refund per
/// `out_request_no`).
fn carry_out(world: &mut World, lead: &str, id: &OrderId, effect: &Effect) {
    let out = world.out;
    match *effect {
        Effect::CloseTrade => {
            world.gateway.receive(id).close = true;
            say!(
                out,
                "{lead}close_trade -> alipay.trade.close sent for {}",
                Order(id)
            );
        }
        Effect::RefundRequired { amount, refund_id } => {
            world.gateway.receive(id).refund = Some((refund_id, amount));
            say!(
                out,
                "{lead}refund_required {amount} -> alipay.trade.refund sent for {}: {amount} CNY as {refund_id}",
                Order(id)
            );
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

/// A panic halts the demo with a failure status. Its message and location are not printed:
/// formatting them would keep every panic site's message (and the formatting code for it) in
/// the firmware, about 9 KiB of flash.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    fail("panic")
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    heprintln!("hard fault at pc {:#010x}", frame.pc());
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
