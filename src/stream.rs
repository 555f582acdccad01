//! Streams: the one implementation behind every byte stream on the loop, TCP ([`Tcp`])
//! and pipes ([`Pipe`]), as libuv's `uv_stream_t` is behind `uv_tcp_t` and
//! `uv_pipe_t`. Reading, the write queue and its backpressure, shutdown, and what close
//! owes are written once here; `tcp/` and `pipe.rs` only make the fds.
//!
//! The rules that make a non-blocking stream correct under level- *and* edge-triggered
//! polling:
//! - read until the socket is empty, or until a per-event budget, and then remember that
//!   the stream may still be readable (a deferred re-read), because an edge-triggered
//!   poller will not say so again. Empty means a read found `WouldBlock`, or, on a
//!   readiness event that did not say the peer closed, a read that came back short
//!   (`Drained`): tokio makes the same saving;
//! - `write` tries the kernel at once; only what it refuses is queued, and only while the
//!   queue is non-empty is the stream registered for writability (a level-triggered
//!   poller would otherwise report "writable" every tick: a busy loop);
//! - one read buffer per loop, lent to the callback: no allocation per read;
//! - SIGPIPE never fires: `MSG_NOSIGNAL`/`SO_NOSIGPIPE` on sockets, a held-off SIGPIPE on
//!   pipes (`stream/io.rs`);
//! - a stream is *active* (holds the loop, if ref'd) while reading, writing, connecting or
//!   shutting down, as a libuv stream is; its requests (connect, queued writes, shutdown)
//!   hold the loop even when it is unref'd;
//! - a stream is closed only by `close` (a failed connect leaves it open and failed, as in
//!   libuv); what `close` cuts short is called back with an error before the close callback.
//!
//! The methods are generic over [`Stream`], so `lp.read_start(conn, |lp, conn, ev| ..)`
//! hands a `Tcp` back to a TCP callback and a `Pipe` to a pipe's: the callbacks are stored
//! with the bare [`Handle`] and the type is put back on the way out.

mod connect;
mod io;
mod read;
mod write;

pub(crate) use io::{write_what_fits, LentFd, StreamIo};
use read::OnRead;
pub(crate) use read::{Drained, TaskSide, READ_BUDGET};
pub(crate) use write::OnDone;

use crate::event_loop::{Deferred, Loop, State};
use crate::handle::{Handle, HandleKind, Pipe, Tcp};
use crate::sys::{Fd, Interest};
use std::collections::VecDeque;
use std::io as stdio;
use std::rc::Rc;

/// What a read callback is told.
#[derive(Debug)]
pub enum ReadEvent<'a> {
    /// Bytes from the peer. The slice is the loop's buffer, valid during the callback.
    Data(&'a [u8]),
    /// The peer closed its sending side; reading has stopped. Writing may go on.
    Eof,
    /// The connection failed (reset, timed out); reading has stopped.
    Error(stdio::Error),
}

mod sealed {
    use crate::handle::Handle;

    /// Only looplab's stream handles are streams: the loop must know how to rebuild one.
    pub trait Sealed {
        fn wrap(h: Handle) -> Self;
    }
}

/// A handle the stream methods (`read_start`, `write`, `shutdown`, ...) accept: [`Tcp`]
/// and [`Pipe`]. Sealed: the loop rebuilds the typed handle for callbacks.
pub trait Stream: sealed::Sealed + Copy + Into<Handle> + 'static {}

impl sealed::Sealed for Tcp {
    fn wrap(h: Handle) -> Tcp {
        Tcp(h)
    }
}
impl Stream for Tcp {}

impl sealed::Sealed for Pipe {
    fn wrap(h: Handle) -> Pipe {
        Pipe(h)
    }
}
impl Stream for Pipe {}

/// The typed handle `S` for `h`, for a callback.
fn typed<S: Stream>(h: Handle) -> S {
    <S as sealed::Sealed>::wrap(h)
}

/// A stream's state in the loop. In C's order and aligned to a cache line: what an
/// event reads (the fd, the reader, a connect in progress, the flags, what is watched)
/// is its first line; the write side and the rest follow.
#[repr(C, align(64))]
pub(crate) struct StreamState {
    /// `None` once closed: the fd is closed at `close`, the slot lives to the close phase.
    pub io: Option<StreamIo>,
    on_read: Option<OnRead>,
    pub connecting: Option<OnDone>,
    /// `tcp` or `pipe`, for messages.
    pub kind: HandleKind,
    /// The connect failed: the socket is dead; reads and writes are refused until close.
    pub failed: bool,
    /// `read_start` was called: `on_read` is also `None` while it runs (taken out for
    /// the call), and a `read_resume` from inside it is no error.
    read_started: bool,
    pub reading: bool,
    /// What the poller watches now; `None` when not registered at all.
    registered: Option<Interest>,
    /// The process whose stdout or stderr this is: told when the stream ends.
    pub owner: Option<Handle>,
    w: write::WriteSide,
    /// Who borrowed the fd (`lend_fd`), to be told before it closes.
    lent_to: Option<Rc<dyn TaskSide>>,
}

impl StreamState {
    pub fn new(io: StreamIo, kind: HandleKind) -> StreamState {
        StreamState {
            io: Some(io),
            kind,
            connecting: None,
            failed: false,
            on_read: None,
            read_started: false,
            reading: false,
            owner: None,
            w: write::WriteSide::default(),
            registered: None,
            lent_to: None,
        }
    }

    pub fn fd(&self) -> Option<Fd> {
        self.io.as_ref().map(StreamIo::fd)
    }

    /// What the stream needs from the poller right now.
    fn wanted(&self) -> Option<Interest> {
        let readable = self.reading && !self.failed;
        let writable = self.connecting.is_some() || (!self.failed && self.w.wants_writable());
        (readable || writable).then_some(Interest { readable, writable })
    }

    /// Requests in flight: each holds the loop, ref'd or not.
    fn requests(&self) -> u32 {
        let n = self.w.requests() + usize::from(self.connecting.is_some());
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Take the callbacks of queued writes and a pending shutdown (their bytes are dropped).
    pub fn take_requests(&mut self) -> Vec<OnDone> {
        self.w.take_requests()
    }
}

/// The error a request gets when `close` cuts it short (libuv's `UV_ECANCELED`).
pub(crate) fn canceled(what: &str, kind: HandleKind, h: Handle) -> stdio::Error {
    // Closed by a cancelled scope: the error carries the scope's cause instead.
    if let Some(e) = crate::scope::cancel_error(what, kind, h) {
        return e;
    }
    stdio::Error::new(
        stdio::ErrorKind::ConnectionAborted,
        format!("{what} on {kind} {h} canceled: the stream was closed first"),
    )
}

fn not_connected(op: &str, kind: HandleKind, h: Handle) -> stdio::Error {
    stdio::Error::new(
        stdio::ErrorKind::NotConnected,
        format!("{op}: {kind} {h} failed to connect; close it"),
    )
}

impl Loop {
    /// An open stream (TCP or pipe); `None` if stale, closed, or not a stream.
    pub(crate) fn stream(&mut self, h: Handle) -> Option<&mut StreamState> {
        match self.handles.state_mut(h) {
            Some(State::Stream(t)) if t.io.is_some() => Some(t),
            _ => None,
        }
    }

    /// `stream`, shared: what an event reads before it tells a task's side.
    #[inline]
    pub(crate) fn stream_ref(&self, h: Handle) -> Option<&StreamState> {
        match self.handles.get(h).map(|slot| &slot.state) {
            Some(State::Stream(t)) if t.io.is_some() => Some(t),
            _ => None,
        }
    }

    fn stream_for(&mut self, op: &str, h: Handle) -> stdio::Result<&mut StreamState> {
        self.stream(h).ok_or_else(|| crate::error::stale(op, h))
    }

    /// Put a new stream in the table; it starts inactive (nothing to do yet), ref'd.
    pub(crate) fn insert_stream(&mut self, io: StreamIo, kind: HandleKind) -> Handle {
        let state = State::Stream(Box::new(StreamState::new(io, kind)));
        self.handles.insert(kind, state, false, true)
    }

    /// Bring the poller registration, the active flag and the request count in line with
    /// the stream's state. An error leaves the registration as it was.
    pub(crate) fn sync_interest(&mut self, h: Handle) -> stdio::Result<()> {
        let Some(t) = self.stream(h) else {
            return Ok(());
        };
        let (wanted, had, requests) = (t.wanted(), t.registered, t.requests());
        let busy = wanted.is_some() || t.w.shutting_down();
        let kind = t.kind;
        let Some(fd) = t.fd() else { return Ok(()) };
        if wanted != had {
            let token = h.token();
            match (had, wanted) {
                (None, Some(i)) => self.poller.register(fd, token, i),
                (Some(_), Some(i)) => self.poller.reregister(fd, token, i),
                (Some(_), None) => self.poller.deregister(fd),
                (None, None) => Ok(()),
            }
            .map_err(|e| crate::error::context(format!("watching {kind} {h} (fd {fd})"), e))?;
            if let Some(t) = self.stream(h) {
                t.registered = wanted;
            }
        }
        self.handles.set_active(h, busy);
        self.handles.set_requests(h, requests);
        Ok(())
    }

    /// close(): deregister and close the fd now. Returns what the stream still owes, in
    /// order: the connect, finished requests, queued writes, the shutdown; the close phase
    /// calls them, each with its result or a cancel error, before the close callback.
    pub(crate) fn stop_stream(&mut self, h: Handle) -> VecDeque<Deferred> {
        let mut owed: VecDeque<Deferred> = VecDeque::new();
        let Some(State::Stream(t)) = self.handles.state_mut(h) else {
            return owed;
        };
        if let Some(side) = t.lent_to.take() {
            side.fd_taken_back();
        }
        let io = t.io.take();
        let registered = t.registered.take().is_some();
        let kind = t.kind;
        if let Some(cb) = t.connecting.take() {
            // Made now: a scope's cancel puts its cause in the error only during close.
            let e = canceled("connect", kind, h);
            owed.push_back(Box::new(move |lp| cb(lp, h, Err(e))));
        }
        t.w.stop(h, kind, &mut owed);
        t.on_read = None;
        t.reading = false;
        let owner = t.owner.take();
        if let (Some(io), true) = (&io, registered) {
            // The fd closes next line; a failed deregister leaves nothing to clean.
            let _ = self.poller.deregister(io.fd());
        }
        drop(io);
        if let Some(process) = owner {
            self.stdio_ended(process, h);
        }
        owed
    }
}
