//! The write side of a stream: the queue, backpressure (`on_drain`), shutdown, and the
//! results of requests.
//!
//! A write, a shutdown and a connect are **requests**: each ends in exactly one callback,
//! never inside the call that made it. A request that finishes is queued on its stream
//! (`done`) and called back in the next pending phase; `close` moves everything still
//! owed (finished, queued, in flight) into the close phase, ahead of the close callback.

use super::{canceled, not_connected, typed, Stream, StreamState};
use crate::event_loop::{Deferred, Loop, State};
use crate::handle::{Handle, HandleKind};
use std::collections::VecDeque;
use std::io;

/// A request's callback, with the bare handle (the typed one is rebuilt by the adapter
/// each public method wraps around the user's callback).
pub(crate) type OnDone = Box<dyn FnOnce(&mut Loop, Handle, io::Result<()>)>;
type OnDrain = Box<dyn FnOnce(&mut Loop, Handle, io::Result<()>)>;

struct WriteReq {
    data: Vec<u8>,
    written: usize,
    done: Option<OnDone>,
}

#[derive(Default)]
pub(super) struct WriteSide {
    queue: VecDeque<WriteReq>,
    queued_bytes: usize,
    shutdown: Option<OnDone>,
    /// The write side is shut (or shutting): no more writes.
    closed: bool,
    /// An earlier write failed (the peer is gone): what it failed with, for later writes.
    failed: Option<(io::ErrorKind, String)>,
    /// Run once when the queue falls to this many bytes (Node's 'drain').
    drain: Option<(usize, OnDrain)>,
    /// Finished requests waiting for the pending phase, oldest first.
    done: VecDeque<(Option<OnDone>, io::Result<()>)>,
}

impl WriteSide {
    pub fn wants_writable(&self) -> bool {
        !self.queue.is_empty() || self.shutdown.is_some()
    }

    pub fn shutting_down(&self) -> bool {
        self.shutdown.is_some()
    }

    pub fn requests(&self) -> usize {
        self.queue.len() + self.done.len() + usize::from(self.shutdown.is_some())
    }

    pub fn take_requests(&mut self) -> Vec<OnDone> {
        let mut owed: Vec<OnDone> = self.queue.drain(..).filter_map(|r| r.done).collect();
        owed.extend(self.shutdown.take());
        self.queued_bytes = 0;
        owed
    }

    /// close(): everything owed goes to the close phase, in order: finished requests with
    /// their results, then queued writes and the shutdown, cancelled.
    pub fn stop(&mut self, h: Handle, kind: HandleKind, owed: &mut VecDeque<Deferred>) {
        for (done, r) in self.done.drain(..) {
            if let Some(done) = done {
                owed.push_back(Box::new(move |lp| done(lp, h, r)));
            }
        }
        // The errors are made now: a scope's cancel puts its cause in them only during close.
        for done in self.queue.drain(..).filter_map(|r| r.done) {
            let e = canceled("write", kind, h);
            owed.push_back(Box::new(move |lp| done(lp, h, Err(e))));
        }
        if let Some(done) = self.shutdown.take() {
            let e = canceled("shutdown", kind, h);
            owed.push_back(Box::new(move |lp| done(lp, h, Err(e))));
        }
        self.queued_bytes = 0;
        self.drain = None;
    }
}

/// Wrap a typed request callback for storage.
fn erase<S: Stream>(cb: impl FnOnce(&mut Loop, S, io::Result<()>) + 'static) -> OnDone {
    Box::new(move |lp, h, r| cb(lp, typed::<S>(h), r))
}

impl Loop {
    /// Write `bytes`. The kernel gets them at once if it takes them; the rest is copied to
    /// the stream's queue and sent when writable (writes made while connecting wait for
    /// the connection). An error the kernel gives at once (the peer is gone) is returned,
    /// and that is the only report of it.
    pub fn write(&mut self, conn: impl Stream, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        self.write_request(conn.into(), bytes.as_ref(), None)
    }

    /// `write`, then `cb(lp, conn, result)` once every byte is handed to the kernel, or
    /// with the error if one comes later; never inside this call. If `write_then` itself
    /// returns an error, `cb` is not called: each failure is reported exactly once.
    pub fn write_then<S: Stream>(
        &mut self,
        conn: S,
        bytes: impl AsRef<[u8]>,
        cb: impl FnOnce(&mut Loop, S, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        self.write_request(conn.into(), bytes.as_ref(), Some(erase(cb)))
    }

    fn write_request(&mut self, h: Handle, bytes: &[u8], done: Option<OnDone>) -> io::Result<()> {
        let t = self.stream_for("write", h)?;
        let kind = t.kind;
        if t.failed {
            return Err(not_connected("write", kind, h));
        }
        if let Some((err_kind, why)) = &t.w.failed {
            return Err(io::Error::new(
                *err_kind,
                format!("write on {kind} {h}: an earlier write failed ({why})"),
            ));
        }
        if t.w.closed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("write on {kind} {h} after shutdown"),
            ));
        }
        let mut written = 0;
        if t.w.queue.is_empty() && t.connecting.is_none() {
            let Some(io) = t.io.as_ref() else {
                return Err(crate::error::stale("write", h));
            };
            written = super::io::write_what_fits(bytes, |b| io.write(b))
                .map_err(|e| crate::error::context(format!("writing to {kind} {h}"), e))?;
            if written == bytes.len() {
                if done.is_some() {
                    self.complete(h, done, Ok(()));
                }
                return Ok(());
            }
        }
        let rest = bytes[written..].to_vec();
        t.w.queued_bytes += rest.len();
        t.w.queue.push_back(WriteReq {
            data: rest,
            written: 0,
            done,
        });
        if let Err(e) = self.sync_interest(h) {
            // Never sent and never will be: take it back and say so now, once.
            if let Some(t) = self.stream(h) {
                if let Some(req) = t.w.queue.pop_back() {
                    t.w.queued_bytes -= req.data.len() - req.written;
                }
            }
            return Err(e);
        }
        Ok(())
    }

    /// A request finished: its callback runs in the next pending phase (or in the close
    /// phase, if the stream is closed first).
    pub(crate) fn complete(&mut self, h: Handle, done: Option<OnDone>, r: io::Result<()>) {
        let Some(t) = self.stream(h) else { return };
        t.w.done.push_back((done, r));
        let _ = self.sync_interest(h); // the request count only
        self.defer(h, move |lp| lp.deliver_done(h));
    }

    /// One finished request's callback (each `complete` defers one of these).
    fn deliver_done(&mut self, h: Handle) {
        let Some((done, r)) = self.stream(h).and_then(|t| t.w.done.pop_front()) else {
            return; // closed meanwhile: the close phase delivered it
        };
        let _ = self.sync_interest(h);
        if let Some(done) = done {
            done(self, h, r);
        }
    }

    /// Bytes accepted by `write` that the kernel has not taken yet.
    pub fn write_queue_len(&self, conn: impl Stream) -> usize {
        match self.handles.get(conn.into()).map(|s| &s.state) {
            Some(State::Stream(t)) => t.w.queued_bytes,
            _ => 0,
        }
    }

    /// Writable: send queued bytes until the queue is empty or the kernel is full.
    #[inline(never)]
    pub(crate) fn flush(&mut self, h: Handle) {
        let Some(t) = self.stream(h) else { return };
        if t.connecting.is_some() {
            return;
        }
        let (finished, failure) = send_queued(t);
        let shut = if failure.is_none() && t.w.queue.is_empty() {
            t.w.shutdown.take().map(|done| {
                let r = t.io.as_ref().map_or(Ok(()), |io| io.shutdown_write());
                (done, r)
            })
        } else {
            None
        };
        let drained = match t.w.drain.take() {
            Some((low, cb)) if t.w.queued_bytes <= low && failure.is_none() => Some(cb),
            other => {
                t.w.drain = other;
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
            cb(self, h, Ok(()));
        }
    }

    /// The peer is gone (EPIPE, ECONNRESET) or the stream failed: every queued write and
    /// a pending shutdown fail with the same error, and no more writes are taken.
    fn fail_writes(&mut self, h: Handle, e: &io::Error) {
        let Some(t) = self.stream(h) else { return };
        let kind = e.kind();
        let msg = format!("writing to {} {h}: {e}", t.kind);
        let owed = t.w.take_requests();
        t.w.closed = true;
        t.w.failed = Some((kind, e.to_string()));
        let drain = t.w.drain.take();
        if !crate::tcp::is_disconnect(e) {
            self.tracer.note(msg.clone());
        }
        for done in owed {
            self.complete(h, Some(done), Err(io::Error::new(kind, msg.clone())));
        }
        // The drain will never come: its callback hears why instead, so a stream that
        // stopped reading (backpressure) still learns its peer is gone.
        if let Some((_, cb)) = drain {
            let e = io::Error::new(kind, msg);
            self.defer(h, move |lp| cb(lp, h, Err(e)));
        }
        let _ = self.sync_interest(h); // only ever narrows what is watched
    }

    /// Run `cb(lp, conn, Ok(()))` once when the write queue has fallen to `low_water`
    /// bytes or fewer: the moment to resume reading after backpressure (Node's 'drain'
    /// event). If it already has, `cb` runs in the next pending phase. If the queued
    /// writes fail instead (the peer reset), `cb` gets that error: a stream that stopped
    /// reading hears of its peer's end this way. Replaces an earlier `on_drain`; a close
    /// drops it uncalled.
    pub fn on_drain<S: Stream>(
        &mut self,
        conn: S,
        low_water: usize,
        cb: impl FnOnce(&mut Loop, S, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        let h: Handle = conn.into();
        let t = self.stream_for("on_drain", h)?;
        if t.w.queued_bytes <= low_water {
            t.w.drain = None;
            self.defer(h, move |lp| cb(lp, conn, Ok(())));
        } else {
            t.w.drain = Some((
                low_water,
                Box::new(move |lp, h, r| cb(lp, typed::<S>(h), r)),
            ));
        }
        Ok(())
    }

    /// Close the write side once the queue has drained (a TCP FIN: the peer reads EOF).
    /// `cb(lp, conn, result)` runs later, never inside this call. A pipe fd (not a
    /// socket) cannot be half-closed: `cb` then gets `Unsupported`; close it instead.
    pub fn shutdown<S: Stream>(
        &mut self,
        conn: S,
        cb: impl FnOnce(&mut Loop, S, io::Result<()>) + 'static,
    ) -> io::Result<()> {
        let h: Handle = conn.into();
        let t = self.stream_for("shutdown", h)?;
        if t.failed {
            return Err(not_connected("shutdown", t.kind, h));
        }
        if std::mem::replace(&mut t.w.closed, true) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} {h} is already shut down", t.kind),
            ));
        }
        t.w.shutdown = Some(erase(cb));
        if t.w.queue.is_empty() && t.connecting.is_none() {
            self.flush(h);
            return Ok(());
        }
        self.sync_interest(h)
    }
}

/// Send from the front of the queue until it is empty, the kernel is full, or a write
/// fails. Returns the callbacks of the writes that finished, and the failure.
fn send_queued(t: &mut StreamState) -> (Vec<Option<OnDone>>, Option<io::Error>) {
    let mut finished = Vec::new();
    while let Some(req) = t.w.queue.front_mut() {
        let Some(io) = t.io.as_ref() else {
            break;
        };
        match io.write(&req.data[req.written..]) {
            Ok(n) => {
                req.written += n;
                t.w.queued_bytes -= n;
                if req.written == req.data.len() {
                    finished.extend(t.w.queue.pop_front().map(|r| r.done));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return (finished, Some(e)),
        }
    }
    (finished, None)
}
