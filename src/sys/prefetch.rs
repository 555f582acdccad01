//! Asking the CPU to start fetching memory now that the program will read soon, so the
//! fetch overlaps other work instead of stalling the read that needs it.

/// A cache line on every CPU looplab runs on (x86-64 and arm64).
const LINE: usize = 64;

/// Start fetching the cache lines `value` lies on, at most `max_lines` of them, into
/// every level of cache. A hint: it returns at once, and it is free to do nothing.
#[inline]
pub(crate) fn prefetch<T: ?Sized>(value: &T, max_lines: usize) {
    let start = value as *const T as *const u8 as usize;
    let end = start + std::mem::size_of_val(value).max(1);
    let first = start & !(LINE - 1);
    let mut line = first;
    while line < end && line < first + max_lines * LINE {
        fetch(line);
        line += LINE;
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn fetch(addr: usize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: PREFETCHT0 is a hint that never faults and hands nothing back to the
    // program, whatever the address; this one lies on a line of a live `&T` besides.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(addr as *const i8) }
}

/// Elsewhere, no hint: only a cost of a few instructions more.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn fetch(_addr: usize) {}
