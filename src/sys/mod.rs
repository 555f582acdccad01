//! The kernel boundary: the only module with `unsafe` and raw syscalls.
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
//! The raw backends (`epoll`, `kqueue`) register level-triggered: the kernel keeps
//! reporting a ready fd until it is drained. The `mio` backend registers edge-triggered,
//! as mio always does. The loop is written to be correct under both (see `tcp.rs`).

use std::io;
use std::time::Duration;

pub mod affinity;
pub mod clock;
#[cfg(epoll_os)]
mod epoll;
#[cfg(kqueue_os)]
mod kqueue;
mod mio;
pub mod raw_echo;
pub mod rlimit;
pub(crate) mod selfpipe;
pub mod signal;

/// Turn a libc call's `-1` into `io::Error::last_os_error()`, in one place.
macro_rules! syscall {
    ($fn: ident ( $($arg: expr),* $(,)* ) ) => {{
        #[allow(unused_unsafe)]
        // SAFETY: each caller states why its arguments are valid for this libc call.
        let res = unsafe { libc::$fn($($arg, )*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

/// Which kernel interface the loop polls with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Raw `epoll(7)` over libc, level-triggered (Linux).
    Epoll,
    /// Raw `kqueue(2)` over libc, level-triggered (BSD, macOS).
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
    pub fn new(backend: Backend) -> io::Result<Poller> {
        match backend {
            #[cfg(epoll_os)]
            Backend::Epoll => Ok(Poller::Epoll(epoll::Epoll::new()?)),
            #[cfg(kqueue_os)]
            Backend::Kqueue => Ok(Poller::Kqueue(kqueue::Kqueue::new()?)),
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

    /// Wait for events; `None` waits forever. Clears `events` first. EINTR is retried
    /// with the time that is left, so a signal never turns into a spurious early return
    /// that the caller must understand.
    pub fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        dispatch!(self, p => p.wait(events, timeout))
    }
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
}
