//! Raw `epoll(7)` over libc, level-triggered unless built edge-triggered (Linux).
//!
//! Level-triggered means `epoll_wait` keeps reporting an fd for as long as it is ready:
//! a reader that stops early is told again next tick, which is the forgiving mode and
//! the one the classic C loop uses. The price: after reporting an fd, the kernel puts
//! it back on the ready list, and the next `epoll_wait` polls it again (`tcp_poll`) to
//! see whether it still is. With `EPOLLET` (`Trigger::Edge`) an fd is reported once per
//! change and not looked at again. `EPOLLRDHUP` comes with read interest, so a peer's
//! FIN is reported even when no data came with it.

use super::{cvt, timeout_ms, Event, Fd, Interest};
use std::io;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// How many events one `epoll_wait` may return; more simply wait for the next tick.
const EVENTS_PER_WAIT: usize = 1024;

pub(crate) struct Epoll {
    epfd: OwnedFd,
    buf: Vec<libc::epoll_event>,
    /// Every registration edge-triggered (`EPOLLET`).
    edge: bool,
}

impl Epoll {
    pub fn new(edge: bool) -> io::Result<Epoll> {
        // EPOLL_CLOEXEC: a child process (the benchmark spawns servers) must not inherit it.
        // SAFETY: epoll_create1 takes a flag and touches no memory of ours.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: epoll_create1 just returned this fd and nothing else owns it.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let empty = libc::epoll_event { events: 0, u64: 0 };
        Ok(Epoll {
            epfd,
            buf: vec![empty; EVENTS_PER_WAIT],
            edge,
        })
    }

    pub fn register(&self, fd: Fd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, interest)
    }

    pub fn reregister(&self, fd: Fd, token: u64, interest: Interest) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, interest)
    }

    /// Watch a listener that several epoll instances share (Linux 4.5+): a new connection
    /// wakes one of the loops waiting on it, not all of them. The kernel takes no RDHUP
    /// with EPOLLEXCLUSIVE (EINVAL), and a listener has no use for it.
    pub fn register_exclusive(&self, fd: Fd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event that outlives the call; the kernel copies it.
        let ret =
            unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        cvt(ret).map(drop)
    }

    pub fn deregister(&self, fd: Fd) -> io::Result<()> {
        let epfd = self.epfd.as_raw_fd();
        // SAFETY: a null event pointer is allowed for EPOLL_CTL_DEL since Linux 2.6.9.
        let ret = unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut()) };
        cvt(ret).map(drop)
    }

    fn ctl(&self, op: libc::c_int, fd: Fd, token: u64, interest: Interest) -> io::Result<()> {
        let mut flags = 0;
        // RDHUP only with read interest: level-triggered, a half-closed peer would
        // otherwise be reported every tick to a stream that is not reading.
        if interest.readable {
            flags |= libc::EPOLLIN | libc::EPOLLRDHUP;
        }
        if interest.writable {
            flags |= libc::EPOLLOUT;
        }
        if self.edge {
            flags |= libc::EPOLLET;
        }
        let mut ev = libc::epoll_event {
            events: flags as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event that outlives the call; the kernel copies it.
        let ret = unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) };
        cvt(ret).map(drop)
    }

    /// One `epoll_wait`; `Poller::wait` retries EINTR and slices long waits.
    pub fn wait_once(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let max = EVENTS_PER_WAIT as libc::c_int;
        // SAFETY: `buf` has EVENTS_PER_WAIT initialised entries the kernel may overwrite.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.buf.as_mut_ptr(),
                max,
                timeout_ms(timeout),
            )
        };
        // epoll_wait returns at most `max`, so the count fits a usize and the buffer.
        let n = usize::try_from(cvt(n)?).unwrap_or(0).min(self.buf.len());
        events.extend(self.buf[..n].iter().map(|ev| {
            let bits = ev.events as libc::c_int;
            Event {
                token: ev.u64,
                readable: bits & (libc::EPOLLIN | libc::EPOLLPRI) != 0,
                writable: bits & libc::EPOLLOUT != 0,
                hangup: bits & (libc::EPOLLRDHUP | libc::EPOLLHUP) != 0,
                error: bits & libc::EPOLLERR != 0,
            }
        }));
        Ok(())
    }
}
