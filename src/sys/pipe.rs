//! Pipes: making an fd non-blocking, and writing to a pipe without SIGPIPE.
//!
//! A write to a pipe whose reader has gone raises SIGPIPE, whose default action ends the
//! process. Sockets have a flag against it (`sys/net.rs`); pipes have none. Rust programs
//! ignore SIGPIPE, but a library cannot count on its host doing so, so a pipe write here
//! holds SIGPIPE off the way PostgreSQL's libpq does:
//!
//! 1. block SIGPIPE on this thread (`pthread_sigmask`): a SIGPIPE the write raises is
//!    thread-directed, so it stays pending on this thread instead of being delivered;
//! 2. `write(2)`; a gone reader now gives `EPIPE`, which the caller reports;
//! 3. on `EPIPE`, if the SIGPIPE was not already pending before the write, take it back
//!    with `sigwait` (it returns at once: the signal is pending);
//! 4. put the thread's mask back.
//!
//! Two extra syscalls per pipe write (four when the reader is gone); socket writes, the
//! common case, pay none.

use super::{cvt, Fd};
use std::io;

/// Make `fd` non-blocking (`O_NONBLOCK`), keeping its other status flags.
pub(crate) fn set_nonblocking(fd: Fd) -> io::Result<()> {
    // SAFETY: F_GETFL reads the status flags of `fd`, which the caller owns and keeps open.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: F_SETFL on the same open fd changes only its status flags.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(drop)
}

/// A signal set holding only SIGPIPE.
fn sigpipe_set() -> libc::sigset_t {
    // SAFETY: sigset_t is a plain C value; sigemptyset below gives it a defined content.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t we own, for both calls.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
    }
    set
}

/// Whether SIGPIPE is pending on this thread (or the process).
fn sigpipe_pending() -> bool {
    // SAFETY: as in `sigpipe_set`: zeroed, then filled by sigpending.
    let mut pending: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `pending` is a valid sigset_t for sigpending to fill.
    if unsafe { libc::sigpending(&mut pending) } != 0 {
        return false;
    }
    // SAFETY: `pending` was filled above; sigismember only reads it.
    unsafe { libc::sigismember(&pending, libc::SIGPIPE) == 1 }
}

/// One `write(2)` of `buf` to the pipe `fd`, during which SIGPIPE cannot be delivered:
/// a reader that has gone is `Err(BrokenPipe)`, never a signal (see the module doc).
pub(crate) fn write_without_sigpipe(fd: Fd, buf: &[u8]) -> io::Result<usize> {
    let only_sigpipe = sigpipe_set();
    // SAFETY: as in `sigpipe_set`; pthread_sigmask fills it with the old mask.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both sets are valid sigset_t values; this changes only this thread's mask.
    let err = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &only_sigpipe, &mut old) };
    if err != 0 {
        return Err(io::Error::from_raw_os_error(err));
    }
    // SAFETY: `old` was filled by pthread_sigmask; sigismember only reads it.
    let was_blocked = unsafe { libc::sigismember(&old, libc::SIGPIPE) == 1 };
    // Only a thread that already blocked SIGPIPE can have one pending that is not ours.
    let was_pending = was_blocked && sigpipe_pending();
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes during the call; `fd` is the
    // caller's open fd.
    let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
    // Taken before any other call can change errno.
    let result = cvt(n).map(|n| n as usize);
    if matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EPIPE))
        && !was_pending
        && sigpipe_pending()
    {
        let mut taken: libc::c_int = 0;
        // SAFETY: SIGPIPE is blocked and pending, so sigwait returns at once, consuming
        // it; both pointers are valid for the call.
        unsafe { libc::sigwait(&only_sigpipe, &mut taken) };
    }
    // SAFETY: `old` is the mask pthread_sigmask gave us; restoring it touches only this
    // thread's mask.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::selfpipe::nonblocking_pipe;
    use std::os::unix::io::AsRawFd;

    /// Run `f` with SIGPIPE blocked on this thread only, so a SIGPIPE raised meanwhile
    /// stays pending here and touches no other test; undo both afterwards.
    fn with_sigpipe_blocked<R>(f: impl FnOnce() -> R) -> R {
        let set = sigpipe_set();
        // SAFETY: valid sets; changes only this thread's mask.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
        let r = f();
        if sigpipe_pending() {
            let mut sig = 0;
            // SAFETY: SIGPIPE is blocked and pending: sigwait returns at once.
            unsafe { libc::sigwait(&set, &mut sig) };
        }
        // SAFETY: as above.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
        r
    }

    /// A pipe whose read end is closed: a plain write(2) raises SIGPIPE (the control),
    /// `write_without_sigpipe` returns EPIPE and leaves no SIGPIPE behind, and the
    /// thread's mask is as it was.
    #[test]
    fn a_write_to_a_gone_reader_is_epipe_and_no_signal() {
        with_sigpipe_blocked(|| {
            let (read, write) = nonblocking_pipe().unwrap();
            drop(read);
            // SAFETY: a one-byte buffer valid for the call; `write` is open.
            let n = unsafe { libc::write(write.as_raw_fd(), b"x".as_ptr().cast(), 1) };
            assert_eq!(n, -1);
            assert!(sigpipe_pending(), "control: a plain write raised SIGPIPE");
            let mut sig = 0;
            let set = sigpipe_set();
            // SAFETY: pending and blocked: returns at once.
            unsafe { libc::sigwait(&set, &mut sig) };
            assert!(!sigpipe_pending());

            let err = write_without_sigpipe(write.as_raw_fd(), b"x").unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EPIPE), "{err}");
            assert!(
                !sigpipe_pending(),
                "the guarded write left a SIGPIPE behind"
            );
        });
    }

    /// The mask is restored: SIGPIPE was unblocked before, and is unblocked after.
    #[test]
    fn the_thread_mask_is_put_back() {
        let (read, write) = nonblocking_pipe().unwrap();
        assert_eq!(write_without_sigpipe(write.as_raw_fd(), b"abc").unwrap(), 3);
        // SAFETY: as in `sigpipe_set`.
        let mut now: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: a null new set only reads the current mask into `now`.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut now) };
        // SAFETY: `now` was filled above.
        assert_eq!(unsafe { libc::sigismember(&now, libc::SIGPIPE) }, 0);
        drop(read);
    }
}
