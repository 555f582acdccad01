//! The same poller interface on `mio::Poll` (portable; compare it with `epoll.rs`).
//!
//! mio registers every source edge-triggered: an fd is reported when it *becomes*
//! ready, not while it *is* ready. Whoever reads must read until `WouldBlock`, or
//! remember that more is waiting; the loop does both. `SourceFd` lets mio watch a raw
//! fd that we own, so the rest of looplab never knows which backend it runs on.

use super::{Event, Fd, Interest};
use mio::unix::SourceFd;
use mio::{Events, Poll, Token};
use std::io;
use std::time::Duration;

const EVENTS_PER_WAIT: usize = 1024;

pub(crate) struct MioPoller {
    poll: Poll,
    events: Events,
}

fn mio_interest(interest: Interest) -> mio::Interest {
    match (interest.readable, interest.writable) {
        (true, true) => mio::Interest::READABLE | mio::Interest::WRITABLE,
        (false, true) => mio::Interest::WRITABLE,
        // mio has no empty interest; `Poller` never asks for one.
        _ => mio::Interest::READABLE,
    }
}

impl MioPoller {
    pub fn new() -> io::Result<MioPoller> {
        Ok(MioPoller {
            poll: Poll::new()?,
            events: Events::with_capacity(EVENTS_PER_WAIT),
        })
    }

    pub fn register(&self, fd: Fd, token: u64, interest: Interest) -> io::Result<()> {
        self.poll.registry().register(
            &mut SourceFd(&fd),
            Token(token as usize),
            mio_interest(interest),
        )
    }

    pub fn reregister(&self, fd: Fd, token: u64, interest: Interest) -> io::Result<()> {
        self.poll.registry().reregister(
            &mut SourceFd(&fd),
            Token(token as usize),
            mio_interest(interest),
        )
    }

    pub fn deregister(&self, fd: Fd) -> io::Result<()> {
        self.poll.registry().deregister(&mut SourceFd(&fd))
    }

    /// One `mio::Poll::poll`; `Poller::wait` retries EINTR and slices long waits.
    pub fn wait_once(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        // Round up here too: mio passes whole milliseconds to the kernel.
        let timeout = timeout.map(|t| Duration::from_millis(super::timeout_ms(Some(t)) as u64));
        self.poll.poll(&mut self.events, timeout)?;
        events.extend(self.events.iter().map(|ev| Event {
            token: ev.token().0 as u64,
            readable: ev.is_readable(),
            writable: ev.is_writable(),
            hangup: ev.is_read_closed(),
            error: ev.is_error(),
        }));
        Ok(())
    }
}
