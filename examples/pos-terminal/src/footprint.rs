//! Run-time footprint figures, printed to the host's stderr (so they never enter the compared
//! transcript): static RAM from the linker's symbols, the stack's high-water mark from
//! cortex-m-rt's stack paint. There is no heap: the firmware links no allocator.

use cortex_m_semihosting::heprintln;

unsafe extern "C" {
    static __sdata: u32;
    static __ebss: u32;
    static _stack_end: u32;
    static _stack_start: u32;
}

/// cortex-m-rt paints the stack with this before `main` (feature `paint-stack`).
const PAINT: u32 = 0xCCCC_CCCC;

/// Prints the figures.
pub fn report() {
    // Only the addresses of the linker symbols are taken, never their values.
    let (data, ebss, bottom, top) = (
        core::ptr::addr_of!(__sdata) as usize,
        core::ptr::addr_of!(__ebss) as usize,
        core::ptr::addr_of!(_stack_end) as usize,
        core::ptr::addr_of!(_stack_start) as usize,
    );
    // The lowest word the stack ever reached is the first one whose paint is gone.
    let mut reached = top;
    let mut at = bottom;
    while at < top {
        // SAFETY: `at` is a word-aligned address inside the stack region, which is RAM.
        let word = unsafe { core::ptr::read_volatile(at as *const u32) };
        if word != PAINT {
            reached = at;
            break;
        }
        at += 4;
    }
    let stack = top - reached;
    let statics = ebss - data;
    let sector = crate::flash::SECTOR_SIZE;
    // One line of key=value pairs, read by footprint.sh.
    heprintln!("footprint: static_ram={statics} flash_sector={sector} stack_peak={stack}");
}
