//! Signals into the loop: the self-pipe trick.
//!
//! A signal handler may run on any thread, at any instruction, and may call only
//! async-signal-safe functions: no locks, no allocation, no `println!`. So our handler
//! does one thing: it writes the signal number, as one byte, into the pipe of each loop
//! that watches that signal. Each loop watches its pipe's read end, reads the numbers in
//! its poll phase, and runs the callbacks on the loop thread, where anything may be done.
//!
//! The registry is process-wide, as signal dispositions are. Normal code changes it under
//! a mutex; the handler never locks and reads only atomics, one `Slot` per loop:
//!
//! - `mask`: bit `signum - 1` is set while the loop watches `signum`, so a loop is sent
//!   only the signals it asked for.
//! - `fd`: the pipe's write end, or -1.
//! - `in_flight`: how many handlers are between loading `fd` and finishing their write.
//!
//! **Why a closed fd is never written.** The handler increments `in_flight`, *then* loads
//! `fd`; `remove_pipe` stores -1 in `fd`, *then* waits until `in_flight` is 0. All four
//! are SeqCst, so they fall in one order: a handler that loaded the old fd incremented
//! before the -1 was stored, hence before `remove_pipe` read the count, and `remove_pipe`
//! waits for its write to end. Once `remove_pipe` returns, no handler holds the old fd,
//! and every later one loads -1 (or the fd of a loop that claimed the slot since), so
//! the caller may close the pipe. The wait is short: a handler does one non-blocking
//! `write(2)` and cannot block on anything `remove_pipe` holds (it takes no lock), so the
//! spin also ends when the handler runs on the thread that is spinning.

use super::selfpipe::write_byte;
use std::io;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard};

/// How many loops in one process can listen for signals at once.
const MAX_LISTENING_LOOPS: usize = 64;
/// Signal numbers 1..=64 (Linux's real-time signals end at 64): one bit each in a u64.
const MAX_SIGNUM: usize = 64;

/// What the handler reads for one loop; see the module doc for the protocol.
struct Slot {
    fd: AtomicI32,
    mask: AtomicU64,
    in_flight: AtomicU32,
}

static SLOTS: [Slot; MAX_LISTENING_LOOPS] = [const {
    Slot {
        fd: AtomicI32::new(-1),
        mask: AtomicU64::new(0),
        in_flight: AtomicU32::new(0),
    }
}; MAX_LISTENING_LOOPS];

/// What only normal code touches, under the mutex.
struct Registry {
    claimed: [bool; MAX_LISTENING_LOOPS],
    /// watch() calls not yet undone, per slot and signal (a loop may have several handles
    /// on one signal; its bit stays set until the last is gone).
    watches: [[u32; MAX_SIGNUM + 1]; MAX_LISTENING_LOOPS],
    /// The disposition our handler replaced, per signal, while any slot watches it.
    previous: [Option<libc::sigaction>; MAX_SIGNUM + 1],
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    claimed: [false; MAX_LISTENING_LOOPS],
    watches: [[0; MAX_SIGNUM + 1]; MAX_LISTENING_LOOPS],
    previous: [None; MAX_SIGNUM + 1],
});

/// The registry, even if a thread panicked holding it: every change leaves it consistent.
fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

extern "C" fn on_signal(signum: libc::c_int) {
    let Some(bit) = bit(signum) else { return };
    let Ok(byte) = u8::try_from(signum) else {
        return;
    };
    let saved = errno::get();
    for slot in &SLOTS {
        if slot.mask.load(SeqCst) & bit == 0 {
            continue;
        }
        slot.in_flight.fetch_add(1, SeqCst);
        let fd = slot.fd.load(SeqCst);
        // Checked again: the slot may have been given to a loop that does not watch it.
        if fd >= 0 && slot.mask.load(SeqCst) & bit != 0 {
            // A failed write cannot be reported from here; a full pipe already
            // holds bytes that will wake the loop.
            let _ = write_byte(fd, byte);
        }
        slot.in_flight.fetch_sub(1, SeqCst);
    }
    errno::set(saved);
}

/// The mask bit of `signum`, if it is one we can carry.
fn bit(signum: libc::c_int) -> Option<u64> {
    let n = u32::try_from(signum).ok()?;
    (1..=MAX_SIGNUM as u32)
        .contains(&n)
        .then(|| 1u64 << (n - 1))
}

/// Register a loop's signal pipe; returns its slot for `watch` and `remove_pipe`.
pub(crate) fn add_pipe(write_fd: i32) -> io::Result<usize> {
    let mut reg = registry();
    let Some(slot) = reg.claimed.iter().position(|c| !c) else {
        return Err(io::Error::other(format!(
            "more than {MAX_LISTENING_LOOPS} loops listen for signals in this process"
        )));
    };
    reg.claimed[slot] = true;
    SLOTS[slot].mask.store(0, SeqCst);
    SLOTS[slot].fd.store(write_fd, SeqCst);
    Ok(slot)
}

/// Unregister a slot's pipe and drop its watches. When this returns no signal handler
/// is writing, or will write, to the pipe: the caller may close it.
pub(crate) fn remove_pipe(slot: usize) {
    let mut reg = registry();
    if !reg.claimed.get(slot).copied().unwrap_or(false) {
        return;
    }
    for signum in 1..=MAX_SIGNUM {
        while reg.watches[slot][signum] > 0 {
            unwatch_locked(&mut reg, slot, signum);
        }
    }
    let s = &SLOTS[slot];
    s.mask.store(0, SeqCst);
    s.fd.store(-1, SeqCst);
    while s.in_flight.load(SeqCst) != 0 {
        std::hint::spin_loop();
    }
    reg.claimed[slot] = false;
}

/// The slot and signal as indexes, or why they cannot be used.
fn check(reg: &Registry, slot: usize, signum: i32) -> io::Result<usize> {
    let forbidden = signum == libc::SIGKILL || signum == libc::SIGSTOP;
    let n = usize::try_from(signum).unwrap_or(0);
    if !(1..=MAX_SIGNUM).contains(&n) || forbidden {
        let why = format!("valid: 1..={MAX_SIGNUM}, not SIGKILL or SIGSTOP");
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal {signum} cannot be watched ({why})"),
        ));
    }
    if !reg.claimed.get(slot).copied().unwrap_or(false) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("signal slot {slot} has no pipe"),
        ));
    }
    Ok(n)
}

/// Send `signum` to `slot`'s pipe from now on (counted: one `unwatch` per `watch`).
/// The first watcher of a signal in the process installs our handler.
pub(crate) fn watch(slot: usize, signum: i32) -> io::Result<()> {
    let mut reg = registry();
    let n = check(&reg, slot, signum)?;
    // The bit before the handler: once our handler runs, this slot is already counted.
    reg.watches[slot][n] += 1;
    if let Some(bit) = bit(signum) {
        SLOTS[slot].mask.fetch_or(bit, SeqCst);
    }
    if reg.previous[n].is_none() {
        match install(signum) {
            Ok(old) => reg.previous[n] = Some(old),
            Err(e) => {
                unwatch_locked(&mut reg, slot, n);
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Undo one `watch`; the slot's last watch stops the bytes, and the process's last
/// watcher of the signal puts the previous disposition back.
pub(crate) fn unwatch(slot: usize, signum: i32) {
    let mut reg = registry();
    if let Ok(n) = check(&reg, slot, signum) {
        unwatch_locked(&mut reg, slot, n);
    }
}

fn unwatch_locked(reg: &mut Registry, slot: usize, n: usize) {
    if reg.watches[slot][n] == 0 {
        return;
    }
    reg.watches[slot][n] -= 1;
    if reg.watches[slot][n] > 0 {
        return;
    }
    let signum = n as libc::c_int;
    let others = reg.watches.iter().any(|w| w[n] > 0);
    if !others {
        if let Some(old) = reg.previous[n].take() {
            // Nothing to tell the caller: the handler stays, and writes only where watched.
            let _ = restore(signum, &old);
        }
    }
    if let Some(bit) = bit(signum) {
        SLOTS[slot].mask.fetch_and(!bit, SeqCst);
    }
}

/// Put our handler on `signum`; returns the disposition it replaced.
fn install(signum: i32) -> io::Result<libc::sigaction> {
    // SAFETY: sigaction is a plain C struct; all-zero is a valid empty value.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_signal as *const () as usize;
    // SA_RESTART: other threads' blocking reads are resumed rather than failing with EINTR.
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: sa_mask is a valid sigset_t inside `action`, which we own.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: all-zero is a valid sigaction for the kernel to overwrite.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: `action` is fully initialised, its handler is async-signal-safe, and `old`
    // is valid for writes.
    super::cvt(unsafe { libc::sigaction(signum, &action, &mut old) })?;
    Ok(old)
}

/// Put back the disposition `install` replaced.
fn restore(signum: i32, old: &libc::sigaction) -> io::Result<()> {
    // SAFETY: `old` is the disposition sigaction gave us when we installed ours; a null
    // out-parameter is allowed.
    super::cvt(unsafe { libc::sigaction(signum, old, std::ptr::null_mut()) }).map(drop)
}

/// Send `signum` to this process (what `kill -SIG $$` does). Used by tests and examples.
pub fn raise(signum: i32) -> io::Result<()> {
    // SAFETY: getpid has no preconditions; kill with our own pid and a signal number
    // touches no memory of ours.
    super::cvt(unsafe { libc::kill(libc::getpid(), signum) }).map(drop)
}

/// errno must survive the handler, or the interrupted code would see our write's errno.
mod errno {
    #[cfg(any(target_os = "netbsd", target_os = "openbsd", target_os = "android"))]
    use libc::__errno as location;
    #[cfg(any(target_os = "linux", target_os = "dragonfly"))]
    use libc::__errno_location as location;
    #[cfg(any(target_vendor = "apple", target_os = "freebsd"))]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::selfpipe::SelfPipe;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// Raise `signum` on this thread only: the handler runs here before this returns,
    /// and no other test's thread is interrupted.
    fn raise_here(signum: i32) {
        // SAFETY: pthread_kill to the calling thread with a valid signal number touches no
        // memory of ours.
        let ret = unsafe { libc::pthread_kill(libc::pthread_self(), signum) };
        assert_eq!(ret, 0);
    }

    fn bytes(pipe: &SelfPipe) -> Vec<u8> {
        let mut out = Vec::new();
        pipe.read_into(&mut out).unwrap();
        out
    }

    /// Two loops' pipes, one watching SIGUSR1: only that one gets the byte.
    #[test]
    fn only_the_loop_watching_a_signal_is_sent_it() {
        let (a, b) = (SelfPipe::new().unwrap(), SelfPipe::new().unwrap());
        let (sa, sb) = (
            add_pipe(a.write_fd()).unwrap(),
            add_pipe(b.write_fd()).unwrap(),
        );
        watch(sa, libc::SIGUSR1).unwrap();
        raise_here(libc::SIGUSR1);
        assert_eq!(bytes(&a), vec![libc::SIGUSR1 as u8]);
        assert_eq!(bytes(&b), Vec::<u8>::new(), "b does not watch SIGUSR1");
        remove_pipe(sa);
        remove_pipe(sb);
    }

    /// The disposition a signal had comes back when its last watcher leaves, and watches
    /// are counted per slot: one of two unwatches keeps the bytes coming.
    #[test]
    fn watches_are_counted_and_the_old_disposition_comes_back() {
        let sig = libc::SIGWINCH; // ignored by default: safe to raise with no watcher
        let before = disposition(sig);
        let pipe = SelfPipe::new().unwrap();
        let slot = add_pipe(pipe.write_fd()).unwrap();
        watch(slot, sig).unwrap();
        watch(slot, sig).unwrap();
        assert_eq!(disposition(sig), on_signal as *const () as usize);
        unwatch(slot, sig);
        raise_here(sig);
        assert_eq!(bytes(&pipe).len(), 1, "one watch is left");
        unwatch(slot, sig);
        raise_here(sig);
        assert!(bytes(&pipe).is_empty(), "no watch is left");
        assert_eq!(disposition(sig), before);
        assert!(watch(slot, libc::SIGKILL).is_err());
        remove_pipe(slot);
        assert!(watch(slot, sig).is_err(), "a removed slot cannot watch");
    }

    fn disposition(signum: i32) -> usize {
        // SAFETY: all-zero is a valid sigaction for the kernel to overwrite.
        let mut cur: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: a null new action only reads the current one into `cur`.
        let ret = unsafe { libc::sigaction(signum, std::ptr::null(), &mut cur) };
        assert_eq!(ret, 0);
        cur.sa_sigaction
    }

    /// remove_pipe while another thread raises the signal in a tight loop and its
    /// handler is writing to the pipe (each round waits for a byte first). Right after
    /// remove_pipe returns, the pipe's fd number is pointed at a "trap" pipe (dup2), so
    /// a handler still holding the number would write into the trap. 2000 rounds.
    /// (With an artificially slow handler, a remove_pipe that does not wait for the
    /// in-flight count fails this within about a hundred rounds.)
    #[test]
    fn a_removed_pipe_is_never_written_again() {
        let sig = libc::SIGUSR2;
        let keeper = SelfPipe::new().unwrap();
        let keep = add_pipe(keeper.write_fd()).unwrap();
        watch(keep, sig).unwrap(); // our handler stays installed throughout
        let stop = Arc::new(AtomicBool::new(false));
        let raiser = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(SeqCst) {
                    raise_here(sig);
                }
            })
        };
        let (mut delivered, mut last_trap) = (0, None::<SelfPipe>);
        for round in 0.. {
            let pipe = SelfPipe::new().unwrap();
            let trap = SelfPipe::new().unwrap();
            let slot = add_pipe(pipe.write_fd()).unwrap();
            watch(slot, sig).unwrap();
            // Remove while the raiser is writing here: wait for its first byte.
            let mut got = bytes(&pipe).len();
            for _ in 0..1_000_000 {
                if got > 0 {
                    break;
                }
                std::thread::yield_now();
                got = bytes(&pipe).len();
            }
            remove_pipe(slot);
            // SAFETY: both fds are open pipe ends we own; dup2 makes the number of
            // `pipe`'s write end refer to the trap, and `pipe` closes it when dropped.
            assert!(unsafe { libc::dup2(trap.write_fd(), pipe.write_fd()) } >= 0);
            delivered += got + bytes(&pipe).len();
            for t in last_trap.iter().chain([&trap]) {
                assert!(
                    bytes(t).is_empty(),
                    "round {round}: a removed pipe was written"
                );
            }
            last_trap = Some(trap);
            if round >= 2000 {
                break;
            }
        }
        assert!(
            delivered >= 2000,
            "the raiser reached the watched pipes {delivered} times"
        );
        stop.store(true, SeqCst);
        raiser.join().unwrap();
        remove_pipe(keep);
    }
}
