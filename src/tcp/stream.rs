//! Connected streams: connect, read, the write queue, shutdown, close.

use super::{is_disconnect, send, Read};
use crate::event_loop::{Loop, State};
use crate::handle::{Handle, HandleKind, Tcp};
use crate::sys::{Event, Fd, Interest};
use socket2::Socket;
use std::collections::VecDeque;
use std::io::{self, Read as _};
use std::net::SocketAddr;
use std::os::unix::io::AsRawFd;

/// Reads per readiness event before other streams get their turn (16 x 64 KiB = 1 MiB).
/// A stream cut off by the budget is re-read in the next pending phase.
const READ_BUDGET: usize = 16;

type OnRead = Box<dyn FnMut(&mut Loop, Tcp, Read<'_>)>;
pub(super) type OnConnect = Box<dyn FnOnce(&mut Loop, io::Result<Tcp>)>;
type OnDone = Box<dyn FnOnce(&mut Loop, io::Result<()>)>;
type OnDrain = Box<dyn FnOnce(&mut Loop, Tcp)>;

struct WriteReq {
    data: Vec<u8>,
    written: usize,
    done: Option<OnDone>,
}

pub(crate) struct TcpState {
    pub(super) socket: Option<Socket>,
    pub(super) connecting: Option<OnConnect>,
    on_read: Option<OnRead>,
    reading: bool,
    queue: VecDeque<WriteReq>,
    queued_bytes: usize,
    shutdown: Option<OnDone>,
    /// The write side is shut (or shutting): no more writes.
    write_closed: bool,
    /// What the poller watches now; `None` when not registered at all.
    registered: Option<Interest>,
    /// Run once when the queue falls to this many bytes (Node's 'drain').
    drain: Option<(usize, OnDrain)>,
}

impl TcpState {
    pub fn new(socket: Socket) -> TcpState {
        TcpState {
            socket: Some(socket),
            connecting: None,
            on_read: None,
            reading: false,
            queue: VecDeque::new(),
            queued_bytes: 0,
            shutdown: None,
            write_closed: false,
            registered: None,
            drain: None,
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
        let readable = self.reading;
        let writable = self.connecting.is_some() || !self.queue.is_empty();
        (readable || writable).then_some(Interest { readable, writable })
    }

    fn busy(&self) -> bool {
        self.wanted().is_some() || self.shutdown.is_some()
    }
}

pub(super) fn closed_error(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        format!("{what}: the stream was closed first"),
    )
}

impl Loop {
    pub(super) fn stream(&mut self, h: Handle) -> Option<&mut TcpState> {
        match self.handles.state_mut(h) {
            Some(State::Tcp(t)) if t.socket.is_some() => Some(t),
            _ => None,
        }
    }

    /// Bring the poller registration and the active flag in line with the stream's state.
    pub(super) fn sync_interest(&mut self, h: Handle) {
        let Some(t) = self.stream(h) else { return };
        let (wanted, had, busy) = (t.wanted(), t.registered, t.busy());
        let Some(fd) = t.fd() else { return };
        if wanted != had {
            let token = h.token();
            let result = match (had, wanted) {
                (None, Some(i)) => self.poller.register(fd, token, i),
                (Some(_), Some(i)) => self.poller.reregister(fd, token, i),
                (Some(_), None) => self.poller.deregister(fd),
                (None, None) => Ok(()),
            };
            match result {
                Ok(()) => {
                    if let Some(t) = self.stream(h) {
                        t.registered = wanted;
                    }
                }
                Err(e) => {
                    eprintln!("looplab: updating the poller for tcp {h} (fd {fd}) failed: {e}")
                }
            }
        }
        self.handles.set_active(h, busy);
    }

    /// Start delivering reads to `cb`. Tries a read in the next pending phase too: data
    /// that arrived while reading was stopped is not reported again by an edge-triggered
    /// poller.
    pub fn read_start(
        &mut self,
        conn: Tcp,
        cb: impl FnMut(&mut Loop, Tcp, Read<'_>) + 'static,
    ) -> io::Result<()> {
        let h: Handle = conn.into();
        let t = self
            .stream(h)
            .ok_or_else(|| crate::error::stale("read_start", h))?;
        t.on_read = Some(Box::new(cb));
        self.resume_reading(h)
    }

    /// Stop reading (backpressure): the kernel buffers, then the peer's sends block.
    pub fn read_stop(&mut self, conn: Tcp) -> bool {
        let h: Handle = conn.into();
        let Some(t) = self.stream(h) else {
            return false;
        };
        t.reading = false;
        self.sync_interest(h);
        true
    }

    /// Read again with the callback given to the last `read_start`.
    pub fn read_resume(&mut self, conn: Tcp) -> io::Result<()> {
        self.resume_reading(conn.into())
    }

    fn resume_reading(&mut self, h: Handle) -> io::Result<()> {
        let t = self
            .stream(h)
            .ok_or_else(|| crate::error::stale("read_resume", h))?;
        if t.on_read.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("tcp {h}: read_resume before read_start"),
            ));
        }
        let was_reading = std::mem::replace(&mut t.reading, true);
        self.sync_interest(h);
        if !was_reading {
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

    /// Read until WouldBlock, EOF, an error, the callback stopping us, or the budget.
    fn read_some(&mut self, h: Handle) {
        let mut buf = std::mem::take(&mut self.read_buf);
        for _ in 0..READ_BUDGET {
            let Some(t) = self.stream(h) else { break };
            if !t.reading {
                break;
            }
            let Some(socket) = t.socket.as_ref() else {
                break;
            };
            let outcome = match (&mut &*socket).read(&mut buf) {
                Ok(0) => Some(Read::Eof),
                Ok(n) => Some(Read::Data(&buf[..n])),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Some(Read::Error(e)),
            };
            let Some(outcome) = outcome else {
                self.read_buf = buf;
                return;
            };
            let last = !matches!(outcome, Read::Data(_));
            if last {
                t.reading = false;
            }
            let Some(mut cb) = t.on_read.take() else {
                break;
            };
            cb(self, Tcp(h), outcome);
            if let Some(t) = self.stream(h) {
                if t.on_read.is_none() {
                    t.on_read = Some(cb);
                }
            }
            if last {
                self.sync_interest(h);
                self.read_buf = buf;
                return;
            }
        }
        self.read_buf = buf;
        // Out of budget while still reading: more may be waiting and an edge-triggered
        // poller will not tell us again, so look once more next tick.
        if self.stream(h).is_some_and(|t| t.reading) {
            self.defer(move |lp| lp.read_some(h));
        }
    }

    /// Write `bytes`. The kernel gets them at once if it takes them; the rest is copied to
    /// the stream's queue and sent when writable. `cb` runs when all are handed to the
    /// kernel, or with the error if one comes later; never inside this call. An error the
    /// kernel gives at once (the peer is gone) is returned instead, and `cb` is not called:
    /// each failure is reported exactly once.
    pub fn write<F>(&mut self, conn: Tcp, bytes: impl AsRef<[u8]>, cb: Option<F>) -> io::Result<()>
    where
        F: FnOnce(&mut Loop, io::Result<()>) + 'static,
    {
        let h: Handle = conn.into();
        let bytes = bytes.as_ref();
        let t = self
            .stream(h)
            .ok_or_else(|| crate::error::stale("write", h))?;
        if t.write_closed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("write on tcp {h} after shutdown"),
            ));
        }
        let mut written = 0;
        if t.queue.is_empty() {
            let Some(socket) = t.socket.as_ref() else {
                return Err(crate::error::stale("write", h));
            };
            while written < bytes.len() {
                match send(socket, &bytes[written..]) {
                    Ok(n) => written += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // Reported once, here; `cb` is dropped uncalled.
                    Err(e) => return Err(crate::error::context(format!("writing to tcp {h}"), e)),
                }
            }
            if written == bytes.len() {
                if let Some(cb) = cb {
                    self.defer(move |lp| cb(lp, Ok(())));
                }
                return Ok(());
            }
        }
        let rest = bytes[written..].to_vec();
        t.queued_bytes += rest.len();
        t.queue.push_back(WriteReq {
            data: rest,
            written: 0,
            done: cb.map(|f| Box::new(f) as OnDone),
        });
        self.sync_interest(h);
        Ok(())
    }

    /// Bytes accepted by `write` that the kernel has not taken yet.
    pub fn write_queue_len(&self, conn: Tcp) -> usize {
        match self.handles.get(conn.into()).map(|s| &s.state) {
            Some(State::Tcp(t)) => t.queued_bytes,
            _ => 0,
        }
    }

    /// Writable: send queued bytes until the queue is empty or the kernel is full.
    fn flush(&mut self, h: Handle) {
        let mut finished: Vec<(OnDone, io::Result<()>)> = Vec::new();
        let Some(t) = self.stream(h) else { return };
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
                        if let Some(done) = t.queue.pop_front().and_then(|r| r.done) {
                            finished.push((done, Ok(())));
                        }
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
        if let Some(e) = failure {
            // The peer is gone (EPIPE, ECONNRESET) or the socket failed: every queued
            // write fails with the same error, and the reader hears of it too.
            let kind = e.kind();
            let msg = format!("writing to tcp {h}: {e}");
            for req in t.queue.drain(..) {
                if let Some(done) = req.done {
                    finished.push((done, Err(io::Error::new(kind, msg.clone()))));
                }
            }
            t.queued_bytes = 0;
            t.write_closed = true;
            if let Some(done) = t.shutdown.take() {
                finished.push((done, Err(io::Error::new(kind, msg.clone()))));
            }
            if !is_disconnect(&e) {
                eprintln!("looplab: {msg}");
            }
        } else if t.queue.is_empty() {
            if let Some(done) = t.shutdown.take() {
                let r = t
                    .socket
                    .as_ref()
                    .map_or(Ok(()), |s| s.shutdown(std::net::Shutdown::Write));
                finished.push((done, r));
            }
        }
        let drained = match t.drain.take() {
            Some((low, cb)) if t.queued_bytes <= low => Some(cb),
            other => {
                t.drain = other;
                None
            }
        };
        self.sync_interest(h);
        for (done, r) in finished {
            done(self, r);
        }
        if let Some(cb) = drained {
            cb(self, Tcp(h));
        }
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
        let t = self
            .stream(h)
            .ok_or_else(|| crate::error::stale("on_drain", h))?;
        if t.queued_bytes <= low_water {
            t.drain = None;
            self.defer(move |lp| cb(lp, conn));
        } else {
            t.drain = Some((low_water, Box::new(cb)));
        }
        Ok(())
    }

    /// Close the write side once the queue has drained (a TCP FIN: the peer reads EOF).
    /// `cb` gets the result; never inside this call.
    pub fn shutdown(
        &mut self,
        conn: Tcp,
        cb: impl FnOnce(&mut Loop, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        let h: Handle = conn.into();
        let t = self
            .stream(h)
            .ok_or_else(|| crate::error::stale("shutdown", h))?;
        if std::mem::replace(&mut t.write_closed, true) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("tcp {h} is already shut down"),
            ));
        }
        if t.queue.is_empty() {
            let r = t
                .socket
                .as_ref()
                .map_or(Ok(()), |s| s.shutdown(std::net::Shutdown::Write));
            self.defer(move |lp| cb(lp, r));
        } else {
            t.shutdown = Some(Box::new(cb));
            self.sync_interest(h);
        }
        Ok(())
    }

    /// close(): deregister and close the fd now; queued writes, a pending connect or
    /// shutdown get an error in the next pending phase (before the close callback).
    pub(crate) fn stop_socket(&mut self, h: Handle) {
        match self.handles.get(h).map(|s| s.kind()) {
            Some(HandleKind::Listener) => return self.stop_listener(h),
            Some(HandleKind::Tcp) => {}
            _ => return,
        }
        let Some(State::Tcp(t)) = self.handles.state_mut(h) else {
            return;
        };
        let socket = t.socket.take();
        let registered = t.registered.take().is_some();
        let mut owed: Vec<OnDone> = t.queue.drain(..).filter_map(|r| r.done).collect();
        owed.extend(t.shutdown.take());
        t.queued_bytes = 0;
        t.on_read = None;
        t.reading = false;
        t.drain = None;
        let connect = t.connecting.take();
        if let (Some(s), true) = (&socket, registered) {
            let _ = self.poller.deregister(s.as_raw_fd());
        }
        drop(socket);
        for done in owed {
            self.defer(move |lp| done(lp, Err(closed_error("write"))));
        }
        if let Some(cb) = connect {
            self.defer(move |lp| cb(lp, Err(closed_error("connect"))));
        }
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
