//! Ctrl-C the C way: a `sigaction` handler that only sets a flag. The handler may do
//! almost nothing (it interrupts the program anywhere, even inside malloc); storing to
//! an atomic is among the few things that are safe. The loop sees the flag when
//! `epoll_wait` returns, early with EINTR or at its 100 ms timeout. The event loop
//! proper does better, with the self-pipe (chapter 7): the signal becomes an event.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_signum: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// Install the handler for SIGINT and SIGTERM; the flag it sets is returned.
pub fn stop_on_signals() -> io::Result<&'static AtomicBool> {
    for signum in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: an all-zero sigaction is a valid value (empty mask, no flags).
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `action` is initialised; the handler only stores to an atomic, which
        // is async-signal-safe; a null old-action pointer is allowed.
        let r = unsafe { libc::sigaction(signum, &action, std::ptr::null_mut()) };
        crate::sys::cvt(r)?;
    }
    Ok(&STOP)
}
