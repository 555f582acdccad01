//! RLIMIT_NOFILE: how many fds this process may hold. Servers and the load generator
//! raise the soft limit to the hard limit at start, since 10 000 sockets need 10 000 fds.

use super::syscall;
use std::io;

// rlim_t is u64 on Linux and macOS but not on every Unix.
#[allow(clippy::unnecessary_cast)]
/// Raise the soft fd limit to the hard limit; returns the (old soft, new soft) limits.
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill.
    syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut lim))?;
    let old = lim.rlim_cur as u64;
    #[allow(unused_mut)]
    let mut target = lim.rlim_max;
    // macOS refuses RLIM_INFINITY here; OPEN_MAX is the real ceiling there.
    #[cfg(target_os = "macos")]
    {
        target = target.min(libc::OPEN_MAX as libc::rlim_t);
    }
    if lim.rlim_cur < target {
        lim.rlim_cur = target;
        // SAFETY: `lim` is a valid rlimit read above, with only the soft limit changed.
        syscall!(setrlimit(libc::RLIMIT_NOFILE, &lim))?;
    }
    Ok((old, lim.rlim_cur as u64))
}
