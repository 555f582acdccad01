//! The kernel boundary: the module with `unsafe` and raw syscalls (the only other one is
//! the hand-written epoll rung, `servers/raw_echo.rs`). Each call site writes its own
//! `unsafe { libc::... }` with its own `// SAFETY:` line (clippy's
//! `undocumented_unsafe_blocks` is on), and `cvt` turns C's `-1` into an `io::Error`.
//!
//! What lives here: the pollers (`epoll.rs`, `kqueue.rs` with its rules in `kevent.rs`,
//! `mio.rs`), the self-pipe (`selfpipe.rs`), signals (`signal.rs`), and small OS helpers
//! (`clock.rs`, `rlimit.rs`, `affinity.rs`, `net.rs` and `pipe.rs` for SIGPIPE,
//! `process.rs` for `kill(2)`), and `uring.rs`: the io_uring completion ring that the
//! uring echo is built on (not a poller: see its module doc).
//!
//! Every poller backend provides the same four operations, written once here:
//!
//! | operation                          | meaning                                             |
//! |------------------------------------|-----------------------------------------------------|
//! | `register(fd, token, interest)`    | start watching `fd`; events carry `token` back      |
//! | `reregister(fd, token, interest)`  | change what we watch (e.g. add writability)         |
//! | `deregister(fd)`                   | stop watching; must happen before the fd is closed  |
//! | `wait(events, timeout)`            | block until something is ready or the timeout ends  |
//!
//! A token is a [`Handle`](crate::Handle) packed into 64 bits (slab key and generation),
//! so an event for a handle that was closed while the batch was being processed is
//! recognised as stale instead of being delivered to whoever reused the slot.
//!
//! The raw backends (`epoll`, `kqueue`) register level-triggered unless built with
//! [`Trigger::Edge`]: the kernel keeps reporting a ready fd until it is drained. The
//! `mio` backend registers edge-triggered, as mio always does. The loop is written to be
//! correct under both (see `stream.rs`).
//!
//! Each backend makes one kernel wait per `wait_once`; `Poller::wait` retries EINTR
//! and long or early-ended waits for all of them, so `wait` never returns early.

#![warn(clippy::undocumented_unsafe_blocks)]

use std::io;
use std::time::{Duration, Instant};

// A poller token is a 64-bit handle id (slab key and generation) that kqueue's `udata` and
// mio's `Token` carry as a `usize`, and kqueue's `time_t` is 32 bits on some 32-bit BSDs:
// on a 32-bit target tokens would lose their generation and deadlines would wrap.
#[cfg(not(target_pointer_width = "64"))]
compile_error!(
    "looplab needs a 64-bit target: poller tokens are 64-bit handle ids carried as usize"
);

pub mod affinity;
pub mod clock;
#[cfg(epoll_os)]
mod epoll;
// The kqueue backend's rules as plain functions: built for kqueue, and for the tests
// everywhere, so Linux checks them too.
#[cfg(any(kqueue_os, test))]
mod kevent;
#[cfg(kqueue_os)]
mod kqueue;
mod mio;
pub(crate) mod net;
pub(crate) mod pipe;
pub(crate) mod prefetch;
pub(crate) mod process;
pub mod rlimit;
pub(crate) mod selfpipe;
pub mod signal;
// The completion ring for `looplab echo --backend uring` (Linux, with the servers).
#[cfg(all(target_os = "linux", feature = "tools"))]
pub mod uring;

/// Return values that say "failed, see errno" with -1, as libc's do.
pub(crate) trait MinusOne: Copy + PartialEq {
    const MINUS_ONE: Self;
}

impl MinusOne for i32 {
    const MINUS_ONE: Self = -1;
}

impl MinusOne for i64 {
    const MINUS_ONE: Self = -1;
}

impl MinusOne for isize {
    const MINUS_ONE: Self = -1;
}

/// A libc call's `-1` as `io::Error::last_os_error()`, anything else as the value
/// (std's `cvt`). Call it right after the call: the next libc call may change errno.
pub(crate) fn cvt<T: MinusOne>(ret: T) -> io::Result<T> {
    if ret == T::MINUS_ONE {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Which kernel interface the loop polls with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Raw `epoll(7)` over libc, level-triggered unless built edge-triggered (Linux).
    Epoll,
    /// Raw `kqueue(2)` over libc, level-triggered unless built edge-triggered (BSD, macOS).
    Kqueue,
    /// The same interface on `mio::Poll`, edge-triggered (portable).
    Mio,
}

impl Backend {
    /// The raw backend for this OS: epoll on Linux, kqueue on BSD/macOS.
    pub fn default_for_os() -> Backend {
        if cfg!(epoll_os) {
            Backend::Epoll
        } else if cfg!(kqueue_os) {
            Backend::Kqueue
        } else {
            Backend::Mio
        }
    }

    /// Every backend this build can run on this OS, raw one first.
    pub fn available() -> Vec<Backend> {
        let raw = Backend::default_for_os();
        if raw == Backend::Mio {
            vec![Backend::Mio]
        } else {
            vec![raw, Backend::Mio]
        }
    }

    /// The lowercase name used on the command line and in traces.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Epoll => "epoll",
            Backend::Kqueue => "kqueue",
            Backend::Mio => "mio",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "epoll" => Ok(Backend::Epoll),
            "kqueue" => Ok(Backend::Kqueue),
            "mio" => Ok(Backend::Mio),
            other => Err(format!(
                "unknown backend '{other}': expected epoll, kqueue or mio"
            )),
        }
    }
}

/// When a ready fd is reported.
///
/// **Level**: at every wait while it is ready, until it is drained; a reader that stops
/// early is told again next tick (the classic C loop's mode, and the raw backends'
/// default). **Edge**: when it *becomes* ready (new bytes, new room, a FIN), once; the
/// loop then keeps the readiness itself until a read or write finds `WouldBlock` (mio's
/// only mode, and tokio's). The loop is correct under both (`src/stream.rs`); edge saves
/// the kernel a second look at every reported fd (a level-triggered `epoll_wait` polls
/// each one again at the next wait, to see whether it is still ready).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// Reported at every wait while ready.
    Level,
    /// Reported when it becomes ready.
    Edge,
}

impl Trigger {
    /// What `backend` does unless told otherwise: level for the raw ones, edge for mio.
    pub fn default_for(backend: Backend) -> Trigger {
        match backend {
            Backend::Mio => Trigger::Edge,
            Backend::Epoll | Backend::Kqueue => Trigger::Level,
        }
    }

    /// The lowercase name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Level => "level",
            Trigger::Edge => "edge",
        }
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Trigger {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "level" => Ok(Trigger::Level),
            "edge" => Ok(Trigger::Edge),
            other => Err(format!("unknown trigger '{other}': expected level or edge")),
        }
    }
}

/// What a registration asks to be told about. At least one of the two is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    /// Tell me when a read would not block.
    pub readable: bool,
    /// Tell me when a write would not block.
    pub writable: bool,
}

impl Interest {
    /// Readability only.
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// Writability only.
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };
    /// Both.
    pub const BOTH: Interest = Interest {
        readable: true,
        writable: true,
    };
}

/// One readiness report from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The token given at registration: a packed handle id.
    pub token: u64,
    /// A read would not block (data, EOF or an error waits).
    pub readable: bool,
    /// A write would not block.
    pub writable: bool,
    /// The peer closed its side (EPOLLRDHUP/EPOLLHUP, EV_EOF): a read will see EOF.
    pub hangup: bool,
    /// The fd has a pending error (EPOLLERR, EV_ERROR): a read or write will report it.
    pub error: bool,
}

/// A poller over one of the backends, chosen at run time.
pub(crate) enum Poller {
    #[cfg(epoll_os)]
    Epoll(epoll::Epoll),
    #[cfg(kqueue_os)]
    Kqueue(kqueue::Kqueue),
    Mio(mio::MioPoller),
}

/// The raw fd type every backend watches.
pub(crate) type Fd = std::os::unix::io::RawFd;

macro_rules! dispatch {
    ($self: ident, $p: ident => $body: expr) => {
        match $self {
            #[cfg(epoll_os)]
            Poller::Epoll($p) => $body,
            #[cfg(kqueue_os)]
            Poller::Kqueue($p) => $body,
            Poller::Mio($p) => $body,
        }
    };
}

impl Poller {
    /// A poller on `backend` that registers every fd `trigger`ed. mio has no level mode.
    pub fn new(backend: Backend, trigger: Trigger) -> io::Result<Poller> {
        let edge = trigger == Trigger::Edge;
        match backend {
            #[cfg(epoll_os)]
            Backend::Epoll => Ok(Poller::Epoll(epoll::Epoll::new(edge)?)),
            #[cfg(kqueue_os)]
            Backend::Kqueue => Ok(Poller::Kqueue(kqueue::Kqueue::new(edge)?)),
            Backend::Mio if !edge => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "mio registers every fd edge-triggered: it has no level-triggered mode",
            )),
            Backend::Mio => Ok(Poller::Mio(mio::MioPoller::new()?)),
            #[allow(unreachable_patterns)]
            other => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the {other} backend is not available on this OS"),
            )),
        }
    }

    pub fn register(&self, fd: Fd, token: u64, interest: Interest) -> io::Result<()> {
        debug_assert!(
            interest.readable || interest.writable,
            "empty interest for fd {fd}"
        );
        dispatch!(self, p => p.register(fd, token, interest))
    }

    pub fn reregister(&self, fd: Fd, token: u64, interest: Interest) -> io::Result<()> {
        debug_assert!(
            interest.readable || interest.writable,
            "empty interest for fd {fd}"
        );
        dispatch!(self, p => p.reregister(fd, token, interest))
    }

    pub fn deregister(&self, fd: Fd) -> io::Result<()> {
        dispatch!(self, p => p.deregister(fd))
    }

    /// Watch a listener shared with other loops so that one connection wakes one loop
    /// (`EPOLLEXCLUSIVE`). Raw epoll only: kqueue has no such flag and mio does not expose
    /// it, so they answer `Unsupported` and the loop group falls back to SO_REUSEPORT.
    #[cfg_attr(not(epoll_os), allow(unused_variables))]
    pub fn register_exclusive(&self, fd: Fd, token: u64) -> io::Result<()> {
        match self {
            #[cfg(epoll_os)]
            Poller::Epoll(p) => p.register_exclusive(fd, token),
            #[allow(unreachable_patterns)]
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "EPOLLEXCLUSIVE needs the raw epoll backend",
            )),
        }
    }

    /// Wait for events; `None` waits forever. Clears `events` first.
    ///
    /// Never returns early, so the caller need not understand why a wait ended: EINTR
    /// waits again for the time that is left, and so does a wait that ends with no event
    /// before the deadline (a slice of a long wait, see [`MAX_WAIT`]). Both rules live
    /// here, once, for every backend.
    pub fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        // A deadline past what Instant can hold is the same as no deadline.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let slice = wait_slice(deadline, Instant::now());
            match dispatch!(self, p => p.wait_once(events, slice)) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
                Ok(()) if events.is_empty() && !deadline_passed(deadline, Instant::now()) => {
                    continue
                }
                Ok(()) => return Ok(()),
            }
        }
    }
}

/// The longest one kernel wait is asked to block; a longer wait is done in slices.
/// XNU's kevent fails with EINVAL when `tv_sec` exceeds 10^8, and mio's kqueue selector
/// passes a timeout unclamped; Go's runtime caps its kqueue waits at 10^6 s (11.6 days)
/// for the same reason. Below `c_int::MAX` ms, so epoll's timeout is never clamped.
pub(crate) const MAX_WAIT: Duration = Duration::from_secs(1_000_000);

/// How long the next kernel wait may block: what is left of `deadline`, at most
/// [`MAX_WAIT`]; `None` (no deadline) blocks until an event.
fn wait_slice(deadline: Option<Instant>, now: Instant) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(now).min(MAX_WAIT))
}

/// Whether a wait that saw no event may return: only once its deadline has come.
fn deadline_passed(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|d| now >= d)
}

/// A timeout in whole milliseconds for epoll_wait: rounded UP, so a 0.3 ms wait for a
/// timer becomes 1 ms rather than 0 (which would spin until the timer is due), and
/// clamped to what a C `int` holds. `None` is -1: wait forever.
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => {
            let whole = d.as_millis();
            let ms = if d > Duration::from_millis(whole as u64) {
                whole + 1
            } else {
                whole
            };
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::os::unix::io::AsRawFd;
    use std::os::unix::net::UnixStream;

    /// How many times a socket with one unread byte is reported by three waits in a row.
    fn reports_of_an_unread_byte(backend: Backend, trigger: Trigger) -> usize {
        let mut poller = Poller::new(backend, trigger).expect("a poller");
        let (mut ours, theirs) = UnixStream::pair().expect("a socket pair");
        theirs.set_nonblocking(true).expect("non-blocking");
        poller
            .register(theirs.as_raw_fd(), 7, Interest::READABLE)
            .expect("register");
        ours.write_all(b"x").expect("write a byte");
        let mut events = Vec::new();
        let mut reports = 0;
        for wait in 0..3 {
            // The first wait may block until the byte is seen; the others only look.
            let timeout = if wait == 0 { 1000 } else { 0 };
            poller
                .wait(&mut events, Some(Duration::from_millis(timeout)))
                .expect("wait");
            reports += events.iter().filter(|e| e.token == 7 && e.readable).count();
        }
        reports
    }

    /// Level: the unread byte is reported at every wait. Edge: once, when it came.
    #[test]
    fn level_reports_until_drained_and_edge_reports_once() {
        for backend in Backend::available() {
            let trigger = Trigger::default_for(backend);
            let expected = if trigger == Trigger::Edge { 1 } else { 3 };
            assert_eq!(
                reports_of_an_unread_byte(backend, trigger),
                expected,
                "{backend}, {trigger}-triggered by default"
            );
            assert_eq!(
                reports_of_an_unread_byte(backend, Trigger::Edge),
                1,
                "{backend}, edge-triggered"
            );
        }
    }

    #[test]
    fn mio_has_no_level_mode_and_says_so() {
        let Err(e) = Poller::new(Backend::Mio, Trigger::Level) else {
            panic!("mio built level-triggered");
        };
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        assert!(e.to_string().contains("edge-triggered"), "{e}");
        assert_eq!("edge".parse(), Ok(Trigger::Edge));
        assert_eq!("level".parse(), Ok(Trigger::Level));
        let bad = "both".parse::<Trigger>().expect_err("not a trigger");
        assert!(bad.contains("expected level or edge"), "{bad}");
    }

    #[test]
    fn timeouts_round_up_to_the_next_millisecond() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(300))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_millis(5))), 5);
        assert_eq!(timeout_ms(Some(Duration::from_micros(5001))), 6);
        assert_eq!(
            timeout_ms(Some(Duration::from_secs(u64::MAX))),
            libc::c_int::MAX
        );
    }

    /// A wait of 3.5 x MAX_WAIT as `Poller::wait` drives it, with a kernel that times out
    /// every slice with no event: slices of at most MAX_WAIT (so tv_sec stays far below
    /// XNU's 10^8 limit), and no return before the deadline.
    #[test]
    fn a_long_wait_is_sliced_and_never_returns_early() {
        let start = Instant::now();
        let deadline = start + MAX_WAIT * 3 + MAX_WAIT / 2;
        let (mut now, mut slices) = (start, 0);
        while !deadline_passed(Some(deadline), now) {
            let slice = wait_slice(Some(deadline), now).expect("a deadline gives a slice");
            assert!(
                slice <= MAX_WAIT && slice.as_secs() < 100_000_000,
                "{slice:?}"
            );
            now += slice;
            slices += 1;
            assert!(slices <= 4, "more slices than 3.5 x MAX_WAIT needs");
        }
        assert_eq!((slices, now), (4, deadline));
    }

    /// A kernel that wakes 1 ms before the deadline with nothing to report is asked to
    /// wait again for that millisecond; a zero timeout polls once; no deadline blocks.
    #[test]
    fn an_early_empty_wake_waits_again_for_what_is_left() {
        let start = Instant::now();
        let deadline = start + Duration::from_millis(10);
        let woke = start + Duration::from_millis(9);
        assert!(!deadline_passed(Some(deadline), woke));
        assert_eq!(
            wait_slice(Some(deadline), woke),
            Some(Duration::from_millis(1))
        );
        assert_eq!(wait_slice(Some(start), start), Some(Duration::ZERO));
        assert!(deadline_passed(Some(start), start));
        assert_eq!(wait_slice(None, start), None);
        assert!(!deadline_passed(None, start + MAX_WAIT));
    }
}
