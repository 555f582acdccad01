//! io_uring (Linux 5.6+) through the `io-uring` crate: a completion ring whose every
//! borrowed buffer is held here, so the code above it is safe Rust.
//!
//! Readiness (epoll) says "this fd would not block now; do the read yourself". Completion
//! (io_uring) says "here is a read I want done; tell me when it is": the program hands the
//! kernel a buffer and gets it back with the result. Between the two moments the kernel
//! may write into that buffer at any time, so nothing else may touch, move or free it.
//! [`Ring`] enforces that by *owning* what an operation borrows: [`Ring::send`] takes the
//! `Vec<u8>` by value and the matching [`Completion`] hands it back; an accept's new fd
//! comes back as an `OwnedFd`. A buffer of the provided-buffer ring ([`bufring`]) is lent
//! to the program by a completion and given back with [`Ring::give_back`].
//!
//! `user_data` is the caller's 64-bit name for an operation; it comes back unchanged on
//! every completion of that operation, and no two operations in flight may share one.
//!
//! Dropping a ring with operations in flight leaks what they borrow rather than free
//! memory the kernel may still write (its teardown runs after `close` returns).

pub mod bufring;
mod setup;
mod target;

pub use setup::{available, explain_setup_error, Features};
pub use target::Target;

use bufring::BufRing;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// `IORING_RECVSEND_POLL_FIRST` (5.19): wait for readability before trying the recv, when
/// the caller knows the peer has not answered yet (the io-uring crate does not export it).
const RECVSEND_POLL_FIRST: u16 = 1;

/// What an operation borrows from us until its last completion.
enum Held {
    /// Nothing (a recv into a provided buffer, a cancel, a tick).
    Nothing,
    /// The listener is the caller's; what comes back is a new fd per completion.
    Accept,
    /// A send's bytes or a recv's own buffer.
    Buf(Vec<u8>),
}

/// One completion, with what the kernel borrowed for it when this is its last one.
#[derive(Debug)]
pub struct Completion {
    /// The operation's name, as submitted.
    pub user_data: u64,
    /// The syscall's answer: bytes or an fd (>= 0), or `-errno`.
    pub result: i32,
    /// More completions of this (multishot) operation will come.
    pub more: bool,
    /// A buffer of the provided-buffer ring now lent to us (read it with [`Ring::lent`]).
    pub buffer: Option<u16>,
    /// A send's or a recv's own buffer, back from the kernel.
    pub buf: Option<Vec<u8>>,
    /// An accepted connection, ours to close.
    pub fd: Option<OwnedFd>,
}

impl Completion {
    /// The result as an `io::Result`: a count, or the errno as an error.
    pub fn io_result(&self) -> io::Result<usize> {
        usize::try_from(self.result).map_err(|_| io::Error::from_raw_os_error(-self.result))
    }
}

/// A hasher for user_data, which is ours and not a peer's: one folded multiply. SipHash,
/// the default, showed in the profile: a table insert and remove per operation.
#[derive(Default)]
struct UserDataHasher(u64);

impl Hasher for UserDataHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(self.0 ^ u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        let m = u128::from(n) * 0x9E37_79B9_7F4A_7C15;
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// An io_uring with the borrows of its operations in flight.
///
/// A recv takes its buffer, so while the read is in flight the program cannot touch it:
///
/// ```compile_fail
/// # fn f(ring: &mut looplab::sys::uring::Ring, fd: i32) -> std::io::Result<()> {
/// let buf = vec![0u8; 4096];
/// ring.recv(fd, buf, 1)?;
/// println!("{}", buf[0]); // borrow of moved value: `buf`
/// # Ok(())
/// # }
/// ```
///
/// It is the completion that hands it back:
///
/// ```no_run
/// # fn f(ring: &mut looplab::sys::uring::Ring, fd: i32) -> std::io::Result<()> {
/// let buf = vec![0u8; 4096];
/// ring.recv(fd, buf, 1)?;
/// let mut done = Vec::new();
/// ring.wait(&mut done)?;
/// if let Some(buf) = done.iter_mut().find(|c| c.user_data == 1).and_then(|c| c.buf.take()) {
///     println!("{}", buf[0]);
/// }
/// # Ok(())
/// # }
/// ```
pub struct Ring {
    ring: IoUring,
    held: HashMap<u64, Held, BuildHasherDefault<UserDataHasher>>,
    in_flight: usize,
    tick: Box<types::Timespec>,
    bufs: Option<BufRing>,
    slots: u32,
    raw: Vec<(u64, i32, u32)>,
    features: Features,
}

impl Ring {
    /// A ring of `entries` submissions (and 8x as many completions), with the features
    /// this kernel has; a provided-buffer ring of `bufs` buffers of `buf_size` bytes if
    /// it can (`bufs` a power of two; 0 for none).
    pub fn new(entries: u32, bufs: u16, buf_size: usize) -> io::Result<Ring> {
        let (ring, mut features) = setup::build(entries)?;
        let bufs = if features.provide_buffers && bufs > 0 {
            BufRing::register(&ring.submitter(), 0, bufs, buf_size).ok()
        } else {
            None
        };
        features.buf_ring = bufs.is_some();
        Ok(Ring {
            ring,
            held: HashMap::default(),
            in_flight: 0,
            tick: Box::new(types::Timespec::new()),
            bufs,
            slots: 0,
            raw: Vec::new(),
            features,
        })
    }

    /// What this ring got from the kernel.
    pub fn features(&self) -> Features {
        self.features
    }

    /// Operations submitted whose last completion has not come yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Accept on `listener`: once, or (`multishot`, 5.19) one completion per connection
    /// until an error ends it (`more` false on the last).
    pub fn accept(&mut self, listener: RawFd, multishot: bool, user_data: u64) -> io::Result<()> {
        let fd = types::Fd(listener);
        let sqe = if multishot {
            opcode::AcceptMulti::new(fd)
                .flags(libc::SOCK_CLOEXEC)
                .build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_CLOEXEC)
                .build()
        };
        self.submit_op(sqe, user_data, Held::Accept)
    }

    /// Receive into a buffer the kernel picks from the provided-buffer ring when data
    /// arrives. `peer_is_quiet`: we just answered, so wait for readability before trying.
    pub fn recv_provided(
        &mut self,
        to: impl Into<Target>,
        peer_is_quiet: bool,
        user_data: u64,
    ) -> io::Result<()> {
        let Some(bufs) = &self.bufs else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no provided-buffer ring on this kernel",
            ));
        };
        let ioprio = if peer_is_quiet {
            RECVSEND_POLL_FIRST
        } else {
            0
        };
        let (fd, kind) = to.into().sqe_fd();
        let sqe = opcode::Recv::new(fd, std::ptr::null_mut(), bufs.buf_size())
            .buf_group(bufs.group())
            .ioprio(ioprio)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT | kind);
        self.submit_op(sqe, user_data, Held::Nothing)
    }

    /// Receive, for as long as it is not cancelled and buffers last, into buffers of the
    /// provided-buffer ring (6.0): one completion per arrival, `more` until the last.
    pub fn recv_multishot(&mut self, to: impl Into<Target>, user_data: u64) -> io::Result<()> {
        let Some(bufs) = &self.bufs else {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no provided-buffer ring on this kernel",
            ));
        };
        let (fd, kind) = to.into().sqe_fd();
        let sqe = opcode::RecvMulti::new(fd, bufs.group()).build().flags(kind);
        self.submit_op(sqe, user_data, Held::Nothing)
    }

    /// Receive into `buf` (all of its length), which is the kernel's until the completion
    /// hands it back.
    pub fn recv(
        &mut self,
        from: impl Into<Target>,
        mut buf: Vec<u8>,
        user_data: u64,
    ) -> io::Result<()> {
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let (fd, kind) = from.into().sqe_fd();
        let sqe = opcode::Recv::new(fd, buf.as_mut_ptr(), len)
            .build()
            .flags(kind);
        self.submit_op(sqe, user_data, Held::Buf(buf))
    }

    /// Send `buf[from..]` (MSG_NOSIGNAL); `buf` is the kernel's until the completion hands
    /// it back with how much was sent.
    pub fn send(
        &mut self,
        to: impl Into<Target>,
        buf: Vec<u8>,
        from: usize,
        user_data: u64,
    ) -> io::Result<()> {
        let rest = buf.get(from..).unwrap_or(&[]);
        let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
        let (fd, kind) = to.into().sqe_fd();
        let sqe = opcode::Send::new(fd, rest.as_ptr(), len)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .flags(kind);
        self.submit_op(sqe, user_data, Held::Buf(buf))
    }

    /// A table of `slots` registered files (5.19), all empty; fewer if the open-file limit
    /// is lower (the kernel counts them against it). Returns the slots made (0 for none).
    pub fn register_files(&mut self, slots: u32) -> u32 {
        let mut n = slots;
        while n >= 64 {
            if self.ring.submitter().register_files_sparse(n).is_ok() {
                self.slots = n;
                return n;
            }
            n /= 2;
        }
        0
    }

    /// Put `fd` in slot `slot` (or empty it with `None`). Operations in flight on the
    /// slot's old file keep that file until they complete.
    pub fn set_slot(&mut self, slot: u32, fd: Option<RawFd>) -> io::Result<()> {
        if slot >= self.slots {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no such file slot",
            ));
        }
        let fds = [fd.unwrap_or(-1)];
        self.ring
            .submitter()
            .register_files_update(slot, &fds)
            .map(drop)
    }

    /// Ask the kernel to cancel the operation named `target`. It may lose the race: the
    /// target may complete normally anyway. Either way the target's completion comes.
    pub fn cancel(&mut self, target: u64, user_data: u64) -> io::Result<()> {
        let sqe = opcode::AsyncCancel::new(target).build();
        self.submit_op(sqe, user_data, Held::Nothing)
    }

    /// A completion after `after` (result `-ETIME`): the ring's own clock.
    pub fn tick(&mut self, after: Duration, user_data: u64) -> io::Result<()> {
        *self.tick = types::Timespec::from(after);
        let sqe = opcode::Timeout::new(&*self.tick).build();
        self.submit_op(sqe, user_data, Held::Nothing)
    }

    fn submit_op(&mut self, sqe: squeue::Entry, user_data: u64, held: Held) -> io::Result<()> {
        if self.held.contains_key(&user_data) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("user_data {user_data:#x} is already in flight"),
            ));
        }
        let sqe = sqe.user_data(user_data);
        loop {
            // SAFETY: every pointer in `sqe` is into memory that stays put until the last
            // completion: a Vec's heap block held in `self.held` (moving the Vec does not
            // move it), the boxed timespec, the buffer ring, or a caller's listener fd.
            if unsafe { self.ring.submission().push(&sqe) }.is_ok() {
                break;
            }
            // The submission queue is full: hand what it holds to the kernel first.
            self.ring.submit()?;
        }
        self.held.insert(user_data, held);
        self.in_flight += 1;
        Ok(())
    }

    /// Submit what is queued and wait for at least one completion (or `EINTR`), then
    /// fill `out` with every completion there is.
    pub fn wait(&mut self, out: &mut Vec<Completion>) -> io::Result<()> {
        out.clear();
        match self.ring.submit_and_wait(1) {
            // EBUSY: the completion queue overflowed; reap it, then submit again.
            Err(e) if !matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {
                return Err(e)
            }
            _ => {}
        }
        self.raw.clear();
        self.raw.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for i in 0..self.raw.len() {
            let (user_data, result, flags) = self.raw[i];
            out.push(self.complete(user_data, result, flags));
        }
        Ok(())
    }

    fn complete(&mut self, user_data: u64, result: i32, flags: u32) -> Completion {
        let more = cqueue::more(flags);
        let held = if more {
            match self.held.get(&user_data) {
                Some(Held::Accept) => Held::Accept,
                _ => Held::Nothing,
            }
        } else {
            self.in_flight = self.in_flight.saturating_sub(1);
            self.held.remove(&user_data).unwrap_or(Held::Nothing)
        };
        let buffer = cqueue::buffer_select(flags);
        if let (Some(bid), Some(bufs)) = (buffer, self.bufs.as_mut()) {
            bufs.lend(bid);
        }
        let mut c = Completion {
            user_data,
            result,
            more,
            buffer,
            buf: None,
            fd: None,
        };
        match held {
            Held::Buf(b) => c.buf = Some(b),
            // SAFETY: a successful accept's result is a new fd the kernel installed for
            // this process just now; nothing else owns it.
            Held::Accept if result >= 0 => c.fd = Some(unsafe { OwnedFd::from_raw_fd(result) }),
            _ => {}
        }
        c
    }

    /// The first `len` bytes of provided buffer `bid`, while it is lent to us.
    pub fn lent(&self, bid: u16, len: usize) -> Option<&[u8]> {
        self.bufs.as_ref().and_then(|b| b.lent(bid, len))
    }

    /// Give a lent provided buffer back to the kernel.
    pub fn give_back(&mut self, bid: u16) {
        if let Some(b) = self.bufs.as_mut() {
            b.give_back(bid);
        }
    }

    /// Provided buffers the kernel may use now.
    pub fn buffers_free(&self) -> usize {
        self.bufs.as_ref().map_or(0, BufRing::free)
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        if self.in_flight > 0 {
            // The kernel may still write into these after we close the ring.
            std::mem::forget(std::mem::take(&mut self.held));
            if let Some(b) = self.bufs.take() {
                std::mem::forget(b);
            }
        } else if let Some(b) = &self.bufs {
            let _ = self.ring.submitter().unregister_buf_ring(b.group());
        }
    }
}
