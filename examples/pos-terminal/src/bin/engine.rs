//! The engine alone: the baseline firmware plus a payment table driven through every kind of
//! input, deadlines and snapshots, with no transcript (no `core::fmt`) and no RSA. Its flash
//! size minus `baseline`'s is what the engine costs a firmware; `footprint.sh` reports it.
//! The exit status says whether the engine answered as expected.

#![no_std]
#![no_main]

use core::hint::black_box;

use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use paystate::table::PaymentTable;
use paystate::{
    Currency, EventId, Input, Money, Outcome, Payment, RefundId, Status, Timestamp, snapshot,
};

fn shift() -> Option<()> {
    let t = |s: u64| Timestamp::from_secs(black_box(s));
    let price = Money::parse(black_box("45.50"), Currency::CNY).ok()?;
    let part = Money::parse(black_box("10.00"), Currency::CNY).ok()?;
    let mut table: PaymentTable<4> = PaymentTable::new();
    table
        .insert(
            b"T1-0001",
            Payment::new(price, t(0)).ok()?.with_deadline(t(90)),
        )
        .ok()?;
    table
        .insert(
            b"T1-0002",
            Payment::new(price, t(5)).ok()?.with_deadline(t(300)),
        )
        .ok()?;
    let ev = |id: &[u8]| EventId::new(black_box(id)).ok();

    let _ = table
        .apply(b"T1-0001", &Input::initiate(ev(b"scan:1")?), t(1))
        .ok()?;
    let _ = table
        .apply(b"T1-0002", &Input::initiate(ev(b"scan:2")?), t(6))
        .ok()?;
    let paid = Input::succeed(ev(b"alipay:2:TRADE_SUCCESS")?, price);
    let _ = table.apply(b"T1-0002", &paid, t(8)).ok()?;
    if table.apply(b"T1-0002", &paid, t(9)).ok()? != Outcome::Duplicate {
        return None;
    }
    let refund = Input::refund(ev(b"refund:2")?, RefundId::new(b"R1").ok()?, part);
    let _ = table.apply(b"T1-0002", &refund, t(20)).ok()?;
    let _ = table
        .apply(b"T1-0002", &Input::cancel(ev(b"cancel:2")?), t(21))
        .ok()?;
    let _ = table
        .apply(b"T1-0002", &Input::close(ev(b"close:2")?), t(22))
        .ok()?;
    let _ = table
        .apply(
            b"T1-0002",
            &Input::fail(ev(b"fail:2")?, "PAYERROR").ok()?,
            t(23),
        )
        .ok()?;

    let mut closed = 0;
    table.tick_due(t(black_box(90)), |_, _, outcome| {
        closed += outcome.effects().len()
    });
    let late = Input::succeed(ev(b"alipay:1:TRADE_SUCCESS")?, price);
    let late = table.apply(b"T1-0001", &late, t(100)).ok()?;

    let mut buf = [0u8; snapshot::MAX_SIZE];
    for (_, p) in table.iter() {
        let bytes = snapshot::encode(p, &mut buf).ok()?;
        let back: Payment = snapshot::decode(bytes).ok()?;
        if &back != p {
            return None;
        }
    }
    let one = table.get(b"T1-0001").ok()?;
    let two = table.get(b"T1-0002").ok()?;
    let ok = closed == 1
        && late.effects().len() == 1
        && one.status() == Status::Cancelled
        && two.status() == Status::Succeeded
        && two.refunded() == part
        && table.next_deadline().is_none();
    ok.then_some(())
}

#[entry]
fn main() -> ! {
    match shift() {
        Some(()) => debug::exit(debug::EXIT_SUCCESS),
        None => debug::exit(debug::EXIT_FAILURE),
    }
    loop {
        cortex_m::asm::wfi();
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
