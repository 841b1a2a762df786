//! Run-time footprint figures, printed to the host's stderr (so they never enter the compared
//! transcript): static RAM from the linker's symbols, the stack's high-water mark from
//! cortex-m-rt's stack paint, and the heap's high-water mark.

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
    #[cfg(feature = "rsa")]
    let (heap_peak, heap_size) = (crate::heap::peak(), crate::heap::HEAP_SIZE);
    #[cfg(not(feature = "rsa"))]
    let (heap_peak, heap_size) = (0usize, 0usize);
    let sector = crate::flash::SECTOR_SIZE;
    // One line of key=value pairs, read by footprint.sh.
    heprintln!(
        "footprint: static_ram={statics} heap_arena={heap_size} flash_sector={sector} heap_peak={heap_peak} stack_peak={stack}"
    );
}
