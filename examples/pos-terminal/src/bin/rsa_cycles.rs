//! How long one RSA2 verification of an Alipay answer takes on the Cortex-M3: the firmware's
//! `verify_response` call with the heap-free `FixedRsa2048` key (find the signed content,
//! decode the signature, SHA-256 of the content, the RSA public operation), counted with
//! SysTick.
//!
//! QEMU does not model cycles, so `footprint.sh` runs this probe with `-icount shift=0`: every
//! instruction then takes one nanosecond of virtual time, and SysTick, clocked from the
//! 200 MHz system clock QEMU gives the LM3S6965, counts one tick per 5 instructions. The probe
//! calibrates that ratio against a loop of known length and reports instructions (on a real
//! Cortex-M3, cycles are somewhat more: loads, taken branches and long multiplies take 2 or
//! more). Without `-icount` the figures are host time and mean nothing.

#![no_std]
#![no_main]

use core::hint::black_box;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::{entry, exception};
use cortex_m_semihosting::{debug, hprintln};
use paystate::alipay::response::verify_response;

const RAW: &str = include_str!("../../data/t1-0002-query-success.json");
const METHOD: &str = "alipay.trade.query";
const KEY: &str = include_str!("../../data/alipay-public-key.txt");

/// SysTick wraps (every 2^24 ticks).
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Ticks since SysTick started (it counts down from 2^24 − 1).
fn now() -> u64 {
    loop {
        let wraps = WRAPS.load(Ordering::Relaxed);
        let current = SYST::get_current();
        if WRAPS.load(Ordering::Relaxed) == wraps {
            return u64::from(wraps) * (1 << 24) + u64::from(0x00FF_FFFF - current);
        }
    }
}

/// A loop of exactly `2 * n` instructions (`subs`, `bne`).
fn spin(n: u32) {
    // SAFETY: a counted loop on one register; no memory is touched.
    unsafe {
        core::arch::asm!(
            "1:",
            "subs {n}, #1",
            "bne 1b",
            n = inout(reg) n => _,
            options(nomem, nostack),
        );
    }
}

#[entry]
fn main() -> ! {
    let Some(mut p) = cortex_m::Peripherals::take() else {
        panic!("peripherals taken twice");
    };
    p.SYST.set_clock_source(SystClkSource::Core);
    p.SYST.set_reload(0x00FF_FFFF);
    p.SYST.clear_current();
    p.SYST.enable_interrupt();
    p.SYST.enable_counter();
    // The counter starts at 0 and loads the reload value on its first tick.
    while SYST::get_current() == 0 {}

    // Calibration: instructions per tick.
    const SPIN: u32 = 1_000_000;
    let t0 = now();
    spin(black_box(SPIN));
    let spin_ticks = now() - t0;
    let per_tick = (2 * u64::from(SPIN)) as f32 / spin_ticks as f32;

    let key = match paystate::signature::FixedRsa2048::from_base64(KEY) {
        Ok(key) => key,
        Err(_) => panic!("the pinned key does not parse"),
    };

    const RUNS: u64 = 4;
    let mut ok = true;
    let t1 = now();
    for _ in 0..RUNS {
        ok &= verify_response(black_box(RAW), METHOD, &key).is_ok();
    }
    let ticks = (now() - t1) / RUNS;
    let insns = (ticks as f32 * per_tick) as u64;
    hprintln!(
        "rsa_cycles: backend={} calibration={per_tick:.3} instructions/tick verify_ticks={ticks} verify_instructions={insns} ok={ok}",
        "fixed",
    );
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
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
