//! RLIMIT_NOFILE: how many fds this process may hold. Servers and the load generator
//! raise the soft limit at start, since 10 000 sockets need 10 000 fds.

use super::cvt;
use std::io;

/// Raise the soft fd limit as far as the OS allows (the hard limit, and on Apple systems
/// `kern.maxfilesperproc`); returns the (old soft, new soft) limits.
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for getrlimit to fill.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) })?;
    let old = lim.rlim_cur;
    let target = ceiling(lim.rlim_max)?;
    if lim.rlim_cur < target {
        lim.rlim_cur = target;
        // SAFETY: `lim` is a valid rlimit read above, with only the soft limit changed.
        cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) })?;
    }
    Ok((as_u64(old), as_u64(lim.rlim_cur)))
}

// rlim_t is u64 on Linux, macOS and NetBSD, but i64 on FreeBSD.
#[allow(clippy::unnecessary_cast)]
fn as_u64(limit: libc::rlim_t) -> u64 {
    limit as u64
}

/// The highest soft limit the kernel accepts: the hard limit.
#[cfg(not(target_vendor = "apple"))]
fn ceiling(hard: libc::rlim_t) -> io::Result<libc::rlim_t> {
    Ok(hard)
}

/// The highest soft limit the kernel accepts. XNU refuses (EINVAL) a soft limit above
/// `kern.maxfilesperproc`, and its hard limit is often RLIM_INFINITY; the libc crate has
/// no `OPEN_MAX` for Apple, and the sysctl is the real ceiling anyway.
#[cfg(target_vendor = "apple")]
fn ceiling(hard: libc::rlim_t) -> io::Result<libc::rlim_t> {
    let mut per_proc: libc::c_int = 0;
    let mut size = std::mem::size_of::<libc::c_int>();
    let name = c"kern.maxfilesperproc";
    let out: *mut libc::c_int = &mut per_proc;
    // SAFETY: `name` is NUL-terminated; `out` points at a c_int of `size` bytes for the
    // kernel to fill; a null new value with length 0 only reads.
    let ret = unsafe {
        libc::sysctlbyname(
            name.as_ptr(),
            out.cast(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    cvt(ret).map_err(|e| crate::error::context("reading kern.maxfilesperproc", e))?;
    let per_proc = libc::rlim_t::try_from(per_proc).unwrap_or(0);
    Ok(hard.min(per_proc))
}
