//! Signals into the loop: the self-pipe trick.
//!
//! A signal handler may run on any thread, at any instruction, and may call only
//! async-signal-safe functions: no locks, no allocation, no `println!`. So our handler
//! does one thing: it writes the signal number, as one byte, into the signal pipe of
//! every loop that listens for signals. Each loop watches its pipe's read end, reads the
//! numbers in its poll phase, and runs the callbacks on the loop thread, where anything
//! may be done.
//!
//! The registry is process-wide (signal dispositions are process-wide): a fixed array of
//! atomic fds the handler can read without locking, and a per-signal count of loops
//! watching it, under a mutex that only normal code takes.

use super::selfpipe::write_byte;
use std::io;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

/// How many loops in one process can listen for signals at once.
const MAX_LISTENING_LOOPS: usize = 64;
/// Signal numbers are small; 65 covers Linux's real-time signals too.
const MAX_SIGNUM: usize = 65;

static PIPE_FDS: [AtomicI32; MAX_LISTENING_LOOPS] =
    [const { AtomicI32::new(-1) }; MAX_LISTENING_LOOPS];

struct Installed {
    watchers: [u32; MAX_SIGNUM],
    previous: Vec<Option<libc::sigaction>>,
}

static INSTALLED: Mutex<Option<Installed>> = Mutex::new(None);

extern "C" fn on_signal(signum: libc::c_int) {
    let saved = errno::get();
    for slot in &PIPE_FDS {
        let fd = slot.load(Ordering::Acquire);
        if fd >= 0 {
            // A failed write cannot be reported from here; a full pipe already
            // holds bytes that will wake the loop.
            let _ = write_byte(fd, signum as u8);
        }
    }
    errno::set(saved);
}

/// Make `write_fd` receive a byte per delivered signal; returns the slot to release later.
pub(crate) fn add_pipe(write_fd: i32) -> io::Result<usize> {
    for (i, slot) in PIPE_FDS.iter().enumerate() {
        if slot
            .compare_exchange(-1, write_fd, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return Ok(i);
        }
    }
    Err(io::Error::other(format!(
        "more than {MAX_LISTENING_LOOPS} loops listen for signals in this process"
    )))
}

/// Stop sending bytes to a pipe; call before the pipe is closed.
pub(crate) fn remove_pipe(slot: usize) {
    if let Some(s) = PIPE_FDS.get(slot) {
        s.store(-1, Ordering::Release);
    }
}

fn check_signum(signum: i32) -> io::Result<usize> {
    let forbidden = signum == libc::SIGKILL || signum == libc::SIGSTOP;
    match usize::try_from(signum) {
        Ok(n) if n > 0 && n < MAX_SIGNUM && !forbidden => Ok(n),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "signal {signum} cannot be watched (valid: 1..{MAX_SIGNUM}, not SIGKILL/SIGSTOP)"
            ),
        )),
    }
}

/// Install our handler for `signum` (once per process, counted per watcher).
pub(crate) fn watch(signum: i32) -> io::Result<()> {
    let n = check_signum(signum)?;
    let mut guard = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    let state = guard.get_or_insert_with(|| Installed {
        watchers: [0; MAX_SIGNUM],
        previous: vec![None; MAX_SIGNUM],
    });
    if state.watchers[n] == 0 {
        // SAFETY: sigaction is a plain C struct; zeroed is a valid empty value.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = on_signal as *const () as usize;
        // SA_RESTART: other threads' blocking reads are resumed rather than failing with EINTR.
        action.sa_flags = libc::SA_RESTART;
        // SAFETY: sa_mask is a valid sigset_t inside `action`.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: zeroed sigaction is a valid out-parameter for the previous action.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: `action` is fully initialised and its handler is async-signal-safe.
        super::syscall!(sigaction(signum, &action, &mut old))?;
        state.previous[n] = Some(old);
    }
    state.watchers[n] += 1;
    Ok(())
}

/// Drop one watcher of `signum`; the last one restores the previous disposition.
pub(crate) fn unwatch(signum: i32) {
    let Ok(n) = check_signum(signum) else { return };
    let mut guard = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    let Some(state) = guard.as_mut() else { return };
    if state.watchers[n] == 0 {
        return;
    }
    state.watchers[n] -= 1;
    if state.watchers[n] == 0 {
        if let Some(old) = state.previous[n].take() {
            // SAFETY: `old` is the disposition sigaction gave us when we installed ours.
            let _ = super::syscall!(sigaction(signum, &old, std::ptr::null_mut()));
        }
    }
}

/// Send `signum` to this process (what `kill -SIG $$` does). Used by tests and examples.
pub fn raise(signum: i32) -> io::Result<()> {
    // SAFETY: kill with our own pid and a signal number has no memory-safety preconditions.
    super::syscall!(kill(libc::getpid(), signum)).map(drop)
}

/// errno must survive the handler, or the interrupted code would see our write's errno.
mod errno {
    #[cfg(any(target_os = "netbsd", target_os = "openbsd"))]
    use libc::__errno as location;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    use libc::__errno_location as location;
    #[cfg(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "dragonfly"
    ))]
    use libc::__error as location;

    pub fn get() -> i32 {
        // SAFETY: the errno location is valid and thread-local for the calling thread.
        unsafe { *location() }
    }

    pub fn set(value: i32) {
        // SAFETY: as in `get`; writing errno is what libc itself does.
        unsafe { *location() = value }
    }
}
