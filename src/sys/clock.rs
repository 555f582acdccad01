//! Clock ticks per second: the unit of the CPU times in /proc/PID/stat.

/// `sysconf(_SC_CLK_TCK)`, or 100 (the usual value) if the call fails.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf takes a plain constant and has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if n > 0 {
        n as u64
    } else {
        100
    }
}
