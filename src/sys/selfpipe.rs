//! The self-pipe: a way for another thread (or a signal handler) to wake a loop that
//! is blocked in `epoll_wait`/`kevent`.
//!
//! The loop registers the read end like any socket. `wake()` writes one byte to the write
//! end, which makes the read end readable and ends the wait; the loop then `drain()`s the
//! pipe and looks at whatever shared queues the wakers filled.
//!
//! Why a pipe and not Linux's `eventfd`: a pipe works on every Unix with the same code,
//! so it is the portable form and the one to learn first (libuv uses eventfd on Linux as
//! an optimisation of exactly this). mio's `Waker` does the same thing on some systems.
//!
//! Rules that make it correct:
//! - both ends are non-blocking and close-on-exec;
//! - a full pipe (`EAGAIN` on write) means a wake is already pending: success;
//! - `EINTR` is retried;
//! - the loop drains until `EAGAIN`, so one readable event consumes every byte;
//! - wakes coalesce: while one wake is pending, further `wake()` calls write nothing;
//! - the loop empties the pipe *before* it clears the pending flag (see `drain`).

use super::{cvt, Fd};
use std::io;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

pub(crate) struct SelfPipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Set by the first `wake()` after a drain; later wakes see it and skip the syscall.
    pending: AtomicBool,
    /// How many bytes were really written: with `wakes_requested` it shows coalescing.
    writes: AtomicU64,
    wakes_requested: AtomicU64,
}

impl SelfPipe {
    pub fn new() -> io::Result<SelfPipe> {
        let (read, write) = nonblocking_pipe()?;
        Ok(SelfPipe {
            read,
            write,
            pending: AtomicBool::new(false),
            writes: AtomicU64::new(0),
            wakes_requested: AtomicU64::new(0),
        })
    }

    pub fn read_fd(&self) -> Fd {
        self.read.as_raw_fd()
    }

    pub fn write_fd(&self) -> Fd {
        self.write.as_raw_fd()
    }

    /// Wake the loop. Safe to call from any thread, any number of times.
    pub fn wake(&self) -> io::Result<()> {
        self.wakes_requested.fetch_add(1, Ordering::Relaxed);
        // AcqRel: whatever the waker published before waking is visible to the loop
        // once it clears the flag in `drain`.
        if self.pending.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.writes.fetch_add(1, Ordering::Relaxed);
        write_byte(self.write.as_raw_fd(), 1)
    }

    /// Whether a wake is pending: set by `wake()`, cleared by `drain()`. The loop looks
    /// between the callbacks of a batch, so a pool completion runs next instead of after
    /// the batch. Seen set a moment before the waker's byte lands, the drain finds no
    /// byte and the late one makes one spare wakeup later: never a lost one.
    pub fn is_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Empty the pipe, then clear the flag; the caller looks at its queues after this.
    ///
    /// The order keeps one invariant: the flag is set exactly while a byte is (or is about
    /// to be) in the pipe. Clearing first would lose wakes: a waker could set the flag and
    /// write between the clear and the read, the read would eat its byte, and every later
    /// waker would see the flag still set and write nothing, with nothing left to wake
    /// the next poll. Cleared after the read, the flag stays set while we read (so no
    /// waker writes a byte we would eat), and any wake after the clear writes a byte the
    /// next poll sees; a job queued before it is also found by the caller now, which costs
    /// at most one spare wakeup.
    pub fn drain(&self) -> io::Result<usize> {
        let mut sink = Vec::new();
        let read = read_all(self.read.as_raw_fd(), &mut sink);
        self.pending.store(false, Ordering::SeqCst);
        read
    }

    /// Read every byte that is waiting into `out` (the signal pipe's bytes are signal
    /// numbers, so they matter). Returns how many were read.
    pub fn read_into(&self, out: &mut Vec<u8>) -> io::Result<usize> {
        read_all(self.read.as_raw_fd(), out)
    }

    /// (wakes asked for, bytes really written): the coalescing at work.
    pub fn wake_counts(&self) -> (u64, u64) {
        (
            self.wakes_requested.load(Ordering::Relaxed),
            self.writes.load(Ordering::Relaxed),
        )
    }
}

/// One byte to a non-blocking fd; a full pipe counts as success. Async-signal-safe:
/// it calls nothing but `write(2)`, so the signal handler uses it too.
pub(crate) fn write_byte(fd: Fd, byte: u8) -> io::Result<()> {
    loop {
        // SAFETY: `byte` is a valid one-byte buffer for the duration of the call.
        let n = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
        if n >= 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(()),
            _ => return Err(err),
        }
    }
}

fn read_all(fd: Fd, out: &mut Vec<u8>) -> io::Result<usize> {
    let mut buf = [0u8; 256];
    let mut total = 0;
    loop {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            out.extend_from_slice(&buf[..n as usize]);
            total += n as usize;
            continue;
        }
        if n == 0 {
            return Ok(total);
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(total),
            _ => return Err(err),
        }
    }
}

// Apple has no pipe2: it sets the flags in two more calls below.
/// A pipe with both ends non-blocking and close-on-exec: (read end, write end).
#[cfg(not(target_vendor = "apple"))]
pub(crate) fn nonblocking_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both fds are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A pipe with both ends non-blocking and close-on-exec: (read end, write end).
#[cfg(target_vendor = "apple")]
pub(crate) fn nonblocking_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe to fill.
    cvt(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
    // SAFETY: pipe succeeded, so both fds are open and owned by nobody else.
    let ends = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for fd in [ends.0.as_raw_fd(), ends.1.as_raw_fd()] {
        // SAFETY: F_SETFD on an fd we own changes only that fd's flags.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) })?;
        // SAFETY: F_GETFL reads the status flags of an fd we own.
        let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
        // SAFETY: F_SETFL on an fd we own changes only its status flags.
        cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    }
    Ok(ends)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_wakes_coalesce_into_one_byte() {
        let pipe = SelfPipe::new().unwrap();
        for _ in 0..1000 {
            pipe.wake().unwrap();
        }
        assert_eq!(pipe.drain().unwrap(), 1);
        assert_eq!(pipe.wake_counts(), (1000, 1));
        assert_eq!(pipe.drain().unwrap(), 0, "a drained pipe is empty");
        pipe.wake().unwrap();
        assert_eq!(
            pipe.drain().unwrap(),
            1,
            "a wake after a drain writes again"
        );
    }

    /// Wait until the pipe's read end is readable; false after `ms` without.
    fn readable_within(pipe: &SelfPipe, ms: i32) -> bool {
        let mut pfd = libc::pollfd {
            fd: pipe.read_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        n > 0
    }

    /// The loop's side of a wake, as `Loop::on_wake` does it: wait for the pipe, drain
    /// it, then take everything queued. Four threads each queue and wake 250 000 times;
    /// if a wake is ever lost, the waiting side sees items queued and no byte to wake it.
    #[test]
    fn no_wake_is_lost_between_drain_and_queue() {
        let pipe = std::sync::Arc::new(SelfPipe::new().unwrap());
        let (tx, rx) = crossbeam_channel::unbounded::<u32>();
        let senders: Vec<_> = (0..4)
            .map(|_| {
                let (p, tx) = (pipe.clone(), tx.clone());
                std::thread::spawn(move || {
                    for i in 0..250_000 {
                        tx.send(i).unwrap();
                        p.wake().unwrap();
                    }
                })
            })
            .collect();
        let mut seen = 0;
        while seen < 1_000_000 {
            assert!(
                readable_within(&pipe, 2000),
                "lost wake: {seen} of 1000000 seen, {} queued",
                rx.len()
            );
            pipe.drain().unwrap();
            seen += rx.try_iter().count();
        }
        for s in senders {
            s.join().unwrap();
        }
    }

    #[test]
    fn a_full_pipe_is_already_woken() {
        let pipe = SelfPipe::new().unwrap();
        // Fill the pipe past its capacity with raw writes; none may fail or block.
        for _ in 0..200_000 {
            write_byte(pipe.write_fd(), 7).unwrap();
        }
        let mut out = Vec::new();
        let n = pipe.read_into(&mut out).unwrap();
        assert!(
            (4096..200_000).contains(&n),
            "pipe capacity bounded the bytes: {n}"
        );
    }
}
