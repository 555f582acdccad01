//! Connected streams: read, the write queue, shutdown, and what close owes.
//!
//! A write, a shutdown and a connect are **requests**: each ends in exactly one callback,
//! never inside the call that made it. A request that finishes is queued on its stream
//! (`done`) and called back in the next pending phase; `close` moves everything still
//! owed (finished, queued, in flight) into the close phase, ahead of the close callback.

use super::{is_disconnect, send, ReadEvent};
use crate::event_loop::{Deferred, Loop, State};
use crate::handle::{Handle, Tcp};
use crate::sys::{Event, Fd, Interest};
use socket2::Socket;
use std::collections::VecDeque;
use std::io::{self, Read as _};
use std::net::SocketAddr;
use std::os::unix::io::AsRawFd;

/// Reads per readiness event before other streams get their turn (16 x 64 KiB = 1 MiB).
/// A stream cut off by the budget is re-read in the next pending phase.
const READ_BUDGET: usize = 16;

type OnRead = Box<dyn FnMut(&mut Loop, Tcp, ReadEvent<'_>)>;
pub(super) type OnConnect = Box<dyn FnOnce(&mut Loop, Tcp, io::Result<()>)>;
pub(super) type OnDone = Box<dyn FnOnce(&mut Loop, Tcp, io::Result<()>)>;
type OnDrain = Box<dyn FnOnce(&mut Loop, Tcp)>;

struct WriteReq {
    data: Vec<u8>,
    written: usize,
    done: Option<OnDone>,
}

pub(crate) struct TcpState {
    /// `None` once closed: the fd is closed at `close`, the slot lives to the close phase.
    pub(super) socket: Option<Socket>,
    pub(super) connecting: Option<OnConnect>,
    /// The connect failed: the socket is dead; reads and writes are refused until close.
    pub(super) failed: bool,
    on_read: Option<OnRead>,
    pub(super) reading: bool,
    queue: VecDeque<WriteReq>,
    queued_bytes: usize,
    shutdown: Option<OnDone>,
    /// The write side is shut (or shutting): no more writes.
    write_closed: bool,
    /// An earlier write failed (the peer is gone): what it failed with, for later writes.
    write_failed: Option<(io::ErrorKind, String)>,
    /// What the poller watches now; `None` when not registered at all.
    registered: Option<Interest>,
    /// Run once when the queue falls to this many bytes (Node's 'drain').
    drain: Option<(usize, OnDrain)>,
    /// Finished requests waiting for the pending phase, oldest first.
    done: VecDeque<(Option<OnDone>, io::Result<()>)>,
}

impl TcpState {
    pub fn new(socket: Socket) -> TcpState {
        TcpState {
            socket: Some(socket),
            connecting: None,
            failed: false,
            on_read: None,
            reading: false,
            queue: VecDeque::new(),
            queued_bytes: 0,
            shutdown: None,
            write_closed: false,
            write_failed: None,
            registered: None,
            drain: None,
            done: VecDeque::new(),
        }
    }

    pub fn fd(&self) -> Option<Fd> {
        self.socket.as_ref().map(|s| s.as_raw_fd())
    }

    pub fn socket(&self) -> Option<&Socket> {
        self.socket.as_ref()
    }

    /// What the stream needs from the poller right now.
    fn wanted(&self) -> Option<Interest> {
        let readable = self.reading && !self.failed;
        let writable = self.connecting.is_some()
            || (!self.failed && (!self.queue.is_empty() || self.shutdown.is_some()));
        (readable || writable).then_some(Interest { readable, writable })
    }

    /// Take the callbacks of queued writes and a pending shutdown (their bytes are dropped).
    pub(super) fn take_requests(&mut self) -> Vec<OnDone> {
        let mut owed: Vec<OnDone> = self.queue.drain(..).filter_map(|r| r.done).collect();
        owed.extend(self.shutdown.take());
        self.queued_bytes = 0;
        owed
    }

    /// Requests in flight: each holds the loop, ref'd or not.
    fn requests(&self) -> u32 {
        let n = self.queue.len()
            + self.done.len()
            + usize::from(self.connecting.is_some())
            + usize::from(self.shutdown.is_some());
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// The error a request gets when `close` cuts it short (libuv's `UV_ECANCELED`).
pub(super) fn canceled(what: &str, h: Handle) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        format!("{what} on tcp {h} canceled: the stream was closed first"),
    )
}

fn not_connected(op: &str, h: Handle) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        format!("{op}: tcp {h} failed to connect; close it"),
    )
}

impl Loop {
    pub(super) fn stream(&mut self, h: Handle) -> Option<&mut TcpState> {
        match self.handles.state_mut(h) {
            Some(State::Tcp(t)) if t.socket.is_some() => Some(t),
            _ => None,
        }
    }

    fn stream_for(&mut self, op: &str, h: Handle) -> io::Result<&mut TcpState> {
        self.stream(h).ok_or_else(|| crate::error::stale(op, h))
    }

    /// Bring the poller registration, the active flag and the request count in line with
    /// the stream's state. An error leaves the registration as it was.
    pub(super) fn sync_interest(&mut self, h: Handle) -> io::Result<()> {
        let Some(t) = self.stream(h) else {
            return Ok(());
        };
        let (wanted, had, requests) = (t.wanted(), t.registered, t.requests());
        let busy = wanted.is_some() || t.shutdown.is_some();
        let Some(fd) = t.fd() else { return Ok(()) };
        if wanted != had {
            let token = h.token();
            match (had, wanted) {
                (None, Some(i)) => self.poller.register(fd, token, i),
                (Some(_), Some(i)) => self.poller.reregister(fd, token, i),
                (Some(_), None) => self.poller.deregister(fd),
                (None, None) => Ok(()),
            }
            .map_err(|e| crate::error::context(format!("watching tcp {h} (fd {fd})"), e))?;
            if let Some(t) = self.stream(h) {
                t.registered = wanted;
            }
        }
        self.handles.set_active(h, busy);
        self.handles.set_requests(h, requests);
        Ok(())
    }

    /// Start delivering reads to `cb`. An error if the stream is already reading (libuv's
    /// `EALREADY`: a second reader would silently replace the first). Tries a read in the
    /// next pending phase too: data that arrived while reading was stopped is not reported
    /// again by an edge-triggered poller.
    pub fn read_start(
        &mut self,
        conn: Tcp,
        cb: impl FnMut(&mut Loop, Tcp, ReadEvent<'_>) + 'static,
    ) -> io::Result<()> {
        let h: Handle = conn.into();
        let t = self.stream_for("read_start", h)?;
        if t.reading {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("read_start: tcp {h} is already reading (EALREADY); read_stop first"),
            ));
        }
        t.on_read = Some(Box::new(cb));
        self.resume_reading(h)
    }

    /// Stop reading (backpressure): the kernel buffers, then the peer's sends block.
    /// False if the stream is stale or closed.
    pub fn read_stop(&mut self, conn: Tcp) -> bool {
        let h: Handle = conn.into();
        let Some(t) = self.stream(h) else {
            return false;
        };
        t.reading = false;
        // Stopping watching cannot leave us reading; a failed deregister is harmless here.
        let _ = self.sync_interest(h);
        true
    }

    /// Read again with the callback given to the last `read_start` (Node's `resume()`).
    pub fn read_resume(&mut self, conn: Tcp) -> io::Result<()> {
        self.resume_reading(conn.into())
    }

    fn resume_reading(&mut self, h: Handle) -> io::Result<()> {
        let t = self.stream_for("read_resume", h)?;
        if t.failed {
            return Err(not_connected("read", h));
        }
        if t.on_read.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("tcp {h}: read_resume before read_start"),
            ));
        }
        let was_reading = std::mem::replace(&mut t.reading, true);
        if let Err(e) = self.sync_interest(h) {
            if let Some(t) = self.stream(h) {
                t.reading = was_reading;
            }
            return Err(e);
        }
        let connecting = self.stream(h).is_some_and(|t| t.connecting.is_some());
        if !was_reading && !connecting {
            self.defer(move |lp| lp.read_some(h));
        }
        Ok(())
    }

    /// Readiness for a stream: finish a connect, flush writes, read.
    pub(crate) fn on_stream_ready(&mut self, h: Handle, ev: Event) {
        if self.stream(h).is_some_and(|t| t.connecting.is_some()) {
            if ev.writable || ev.error || ev.hangup {
                self.finish_connect(h);
            }
            return;
        }
        if ev.writable || ev.error {
            self.flush(h);
        }
        if ev.readable || ev.hangup || ev.error {
            self.read_some(h);
        }
    }

    /// Read with the loop's shared buffer, lent out through a guard (handle.rs).
    pub(super) fn read_some(&mut self, h: Handle) {
        let buf = std::mem::take(&mut self.read_buf);
        let more = self.call_taken(
            buf,
            |lp, buf| lp.read_into(h, buf),
            |lp, buf| lp.read_buf = buf,
        );
        // Out of budget while still reading: more may be waiting and an edge-triggered
        // poller will not tell us again, so look once more next tick.
        if more {
            self.defer(move |lp| lp.read_some(h));
        }
    }

    /// Read until WouldBlock, EOF, an error, the callback stopping us, or the budget.
    /// True if the budget ran out while still reading.
    fn read_into(&mut self, h: Handle, buf: &mut [u8]) -> bool {
        for _ in 0..READ_BUDGET {
            let Some(t) = self.stream(h) else {
                return false;
            };
            let Some(socket) = t.socket.as_ref().filter(|_| t.reading) else {
                return false;
            };
            let event = match (&mut &*socket).read(buf) {
                Ok(0) => ReadEvent::Eof,
                Ok(n) => ReadEvent::Data(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => ReadEvent::Error(crate::error::context(format!("reading tcp {h}"), e)),
            };
            let last = !matches!(event, ReadEvent::Data(_));
            if last {
                t.reading = false;
            }
            let Some(cb) = t.on_read.take() else {
                return false;
            };
            self.call_taken(
                cb,
                |lp, cb| cb(lp, Tcp(h), event),
                |lp, cb| {
                    if let Some(t @ TcpState { on_read: None, .. }) = lp.stream(h) {
                        t.on_read = Some(cb);
                    }
                },
            );
            if last {
                let _ = self.sync_interest(h); // only ever narrows what is watched
                return false;
            }
        }
        self.stream(h).is_some_and(|t| t.reading)
    }

    /// Write `bytes`. The kernel gets them at once if it takes them; the rest is copied to
    /// the stream's queue and sent when writable (writes made while connecting wait for
    /// the connection). An error the kernel gives at once (the peer is gone) is returned,
    /// and that is the only report of it.
    pub fn write(&mut self, conn: Tcp, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        self.write_request(conn.into(), bytes.as_ref(), None)
    }

    /// `write`, then `cb(lp, conn, result)` once every byte is handed to the kernel, or
    /// with the error if one comes later; never inside this call. If `write_then` itself
    /// returns an error, `cb` is not called: each failure is reported exactly once.
    pub fn write_then(
        &mut self,
        conn: Tcp,
        bytes: impl AsRef<[u8]>,
        cb: impl FnOnce(&mut Loop, Tcp, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        self.write_request(conn.into(), bytes.as_ref(), Some(Box::new(cb)))
    }

    fn write_request(&mut self, h: Handle, bytes: &[u8], done: Option<OnDone>) -> io::Result<()> {
        let t = self.stream_for("write", h)?;
        if t.failed {
            return Err(not_connected("write", h));
        }
        if let Some((kind, why)) = &t.write_failed {
            return Err(io::Error::new(
                *kind,
                format!("write on tcp {h}: an earlier write failed ({why})"),
            ));
        }
        if t.write_closed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("write on tcp {h} after shutdown"),
            ));
        }
        let mut written = 0;
        if t.queue.is_empty() && t.connecting.is_none() {
            let Some(socket) = t.socket.as_ref() else {
                return Err(crate::error::stale("write", h));
            };
            while written < bytes.len() {
                match send(socket, &bytes[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(crate::error::context(format!("writing to tcp {h}"), e)),
                }
            }
            if written == bytes.len() {
                if done.is_some() {
                    self.complete(h, done, Ok(()));
                }
                return Ok(());
            }
        }
        let rest = bytes[written..].to_vec();
        t.queued_bytes += rest.len();
        t.queue.push_back(WriteReq {
            data: rest,
            written: 0,
            done,
        });
        if let Err(e) = self.sync_interest(h) {
            // Never sent and never will be: take it back and say so now, once.
            if let Some(t) = self.stream(h) {
                if let Some(req) = t.queue.pop_back() {
                    t.queued_bytes -= req.data.len() - req.written;
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// A request finished: its callback runs in the next pending phase (or in the close
    /// phase, if the stream is closed first).
    pub(super) fn complete(&mut self, h: Handle, done: Option<OnDone>, r: io::Result<()>) {
        let Some(t) = self.stream(h) else { return };
        t.done.push_back((done, r));
        let _ = self.sync_interest(h); // the request count only
        self.defer(move |lp| lp.deliver_done(h));
    }

    /// One finished request's callback (each `complete` defers one of these).
    fn deliver_done(&mut self, h: Handle) {
        let Some((done, r)) = self.stream(h).and_then(|t| t.done.pop_front()) else {
            return; // closed meanwhile: the close phase delivered it
        };
        let _ = self.sync_interest(h);
        if let Some(done) = done {
            done(self, Tcp(h), r);
        }
    }

    /// Bytes accepted by `write` that the kernel has not taken yet.
    pub fn write_queue_len(&self, conn: Tcp) -> usize {
        match self.handles.get(conn.into()).map(|s| &s.state) {
            Some(State::Tcp(t)) => t.queued_bytes,
            _ => 0,
        }
    }

    /// Writable: send queued bytes until the queue is empty or the kernel is full.
    pub(super) fn flush(&mut self, h: Handle) {
        let Some(t) = self.stream(h) else { return };
        if t.connecting.is_some() {
            return;
        }
        let mut finished: Vec<Option<OnDone>> = Vec::new();
        let mut failure = None;
        while let Some(req) = t.queue.front_mut() {
            let Some(socket) = t.socket.as_ref() else {
                break;
            };
            match send(socket, &req.data[req.written..]) {
                Ok(n) => {
                    req.written += n;
                    t.queued_bytes -= n;
                    if req.written == req.data.len() {
                        finished.extend(t.queue.pop_front().map(|r| r.done));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        let shut = if failure.is_none() && t.queue.is_empty() {
            t.shutdown.take().map(|done| {
                let r = t
                    .socket
                    .as_ref()
                    .map_or(Ok(()), |s| s.shutdown(std::net::Shutdown::Write));
                (done, r)
            })
        } else {
            None
        };
        let drained = match t.drain.take() {
            Some((low, cb)) if t.queued_bytes <= low && failure.is_none() => Some(cb),
            other => {
                t.drain = other;
                None
            }
        };
        for done in finished {
            self.complete(h, done, Ok(()));
        }
        if let Some((done, r)) = shut {
            self.complete(h, Some(done), r);
        }
        if let Some(e) = failure {
            self.fail_writes(h, &e);
        }
        if let Err(e) = self.sync_interest(h) {
            self.fail_writes(h, &e);
        }
        if let Some(cb) = drained {
            cb(self, Tcp(h));
        }
    }

    /// The peer is gone (EPIPE, ECONNRESET) or the socket failed: every queued write and
    /// a pending shutdown fail with the same error, and no more writes are taken.
    fn fail_writes(&mut self, h: Handle, e: &io::Error) {
        let Some(t) = self.stream(h) else { return };
        let kind = e.kind();
        let msg = format!("writing to tcp {h}: {e}");
        let owed = t.take_requests();
        t.write_closed = true;
        t.write_failed = Some((kind, e.to_string()));
        t.drain = None;
        if !is_disconnect(e) {
            self.tracer.note(msg.clone());
        }
        for done in owed {
            self.complete(h, Some(done), Err(io::Error::new(kind, msg.clone())));
        }
        let _ = self.sync_interest(h); // only ever narrows what is watched
    }

    /// Run `cb` once when the write queue has fallen to `low_water` bytes or fewer: the
    /// moment to resume reading after backpressure (Node's 'drain' event). If it already
    /// has, `cb` runs in the next pending phase. Replaces an earlier `on_drain`.
    pub fn on_drain(
        &mut self,
        conn: Tcp,
        low_water: usize,
        cb: impl FnOnce(&mut Loop, Tcp) + 'static,
    ) -> io::Result<()> {
        let h: Handle = conn.into();
        let t = self.stream_for("on_drain", h)?;
        if t.queued_bytes <= low_water {
            t.drain = None;
            self.defer(move |lp| cb(lp, conn));
        } else {
            t.drain = Some((low_water, Box::new(cb)));
        }
        Ok(())
    }

    /// Close the write side once the queue has drained (a TCP FIN: the peer reads EOF).
    /// `cb(lp, conn, result)` runs later, never inside this call.
    pub fn shutdown(
        &mut self,
        conn: Tcp,
        cb: impl FnOnce(&mut Loop, Tcp, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        let h: Handle = conn.into();
        let t = self.stream_for("shutdown", h)?;
        if t.failed {
            return Err(not_connected("shutdown", h));
        }
        if std::mem::replace(&mut t.write_closed, true) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("tcp {h} is already shut down"),
            ));
        }
        t.shutdown = Some(Box::new(cb));
        if t.queue.is_empty() && t.connecting.is_none() {
            self.flush(h);
            return Ok(());
        }
        self.sync_interest(h)
    }

    /// close(): deregister and close the fd now. Returns what the stream still owes, in
    /// order: the connect, finished requests, queued writes, the shutdown; the close phase
    /// calls them, each with its result or a cancel error, before the close callback.
    pub(crate) fn stop_stream(&mut self, h: Handle) -> VecDeque<Deferred> {
        let mut owed: VecDeque<Deferred> = VecDeque::new();
        let Some(State::Tcp(t)) = self.handles.state_mut(h) else {
            return owed;
        };
        let socket = t.socket.take();
        let registered = t.registered.take().is_some();
        let conn = Tcp(h);
        if let Some(cb) = t.connecting.take() {
            owed.push_back(Box::new(move |lp| {
                cb(lp, conn, Err(canceled("connect", h)))
            }));
        }
        for (done, r) in t.done.drain(..) {
            if let Some(done) = done {
                owed.push_back(Box::new(move |lp| done(lp, conn, r)));
            }
        }
        for done in t.queue.drain(..).filter_map(|r| r.done) {
            owed.push_back(Box::new(move |lp| {
                done(lp, conn, Err(canceled("write", h)))
            }));
        }
        if let Some(done) = t.shutdown.take() {
            owed.push_back(Box::new(move |lp| {
                done(lp, conn, Err(canceled("shutdown", h)))
            }));
        }
        t.queued_bytes = 0;
        t.on_read = None;
        t.reading = false;
        t.drain = None;
        if let (Some(s), true) = (&socket, registered) {
            // The fd closes next line; a failed deregister leaves nothing to clean.
            let _ = self.poller.deregister(s.as_raw_fd());
        }
        drop(socket);
        owed
    }

    /// The address of the peer of a connected stream.
    pub fn peer_addr(&self, conn: Tcp) -> io::Result<SocketAddr> {
        let h: Handle = conn.into();
        let socket = match self.handles.get(h).map(|s| &s.state) {
            Some(State::Tcp(t)) => t.socket.as_ref(),
            _ => None,
        };
        let socket = socket.ok_or_else(|| crate::error::stale("peer_addr", h))?;
        socket
            .peer_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket"))
    }
}
