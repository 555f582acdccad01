//! CPU affinity: which cores a thread may run on. The benchmark gives the load generator
//! and the server separate cores, so the two do not trade places on a small machine and
//! every server is measured with the same CPU budget. A process (and every thread it
//! creates) inherits the affinity of the thread that started it.

use std::io;

/// Restrict the calling thread to `cpus`. Linux only; elsewhere it does nothing.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn pin_current_thread(cpus: &[usize]) -> io::Result<()> {
    // SAFETY: cpu_set_t is a plain bit array; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: CPU_SET writes one bit inside `set`; cpu is bounds-checked by the caller
        // range (available_parallelism) and CPU_SET ignores numbers past the set's size.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t of `size` bytes.
    super::cvt(unsafe { libc::sched_setaffinity(0, size, &set) }).map(drop)
}

/// Restrict the calling thread to `cpus`. Linux only; elsewhere it does nothing.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn pin_current_thread(_cpus: &[usize]) -> io::Result<()> {
    Ok(())
}
