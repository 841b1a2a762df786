//! The heap RSA verification needs, with its high-water mark.
//!
//! `rsa` works on heap-allocated big integers. The firmware gives it a fixed arena managed by
//! `embedded-alloc`'s linked-list allocator, wrapped to remember the most bytes ever in use.

use core::alloc::{GlobalAlloc, Layout};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicUsize, Ordering};

use embedded_alloc::LlffHeap;

/// Size of the arena.
pub const HEAP_SIZE: usize = 12 * 1024;

/// The allocator, and the most bytes it ever had in use (as the allocator counts them,
/// alignment included).
pub struct PeakHeap {
    heap: LlffHeap,
    peak: AtomicUsize,
}

#[global_allocator]
static HEAP: PeakHeap = PeakHeap {
    heap: LlffHeap::empty(),
    peak: AtomicUsize::new(0),
};

// SAFETY: every call is forwarded to `LlffHeap`, which upholds `GlobalAlloc`'s contract; the
// wrapper only reads its usage counter afterwards.
unsafe impl GlobalAlloc for PeakHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { self.heap.alloc(layout) };
        self.peak.fetch_max(self.heap.used(), Ordering::Relaxed);
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.heap.dealloc(ptr, layout) }
    }
}

/// Hands the arena to the allocator. Call once, first thing in `main`.
pub fn init() {
    static mut ARENA: [MaybeUninit<u8>; HEAP_SIZE] = [MaybeUninit::uninit(); HEAP_SIZE];
    // SAFETY: called once before any allocation; the arena is used by nothing else.
    unsafe {
        HEAP.heap
            .init(core::ptr::addr_of_mut!(ARENA) as usize, HEAP_SIZE)
    }
}

/// The high-water mark, in bytes.
pub fn peak() -> usize {
    HEAP.peak.load(Ordering::Relaxed)
}
