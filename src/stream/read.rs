//! Reading a stream: `read_start` and its callback (or the task layer's reader), when the
//! socket counts as emptied (`Drained`), and the budget that keeps one fast peer from
//! starving the others.

use super::{not_connected, typed, LentFd, ReadEvent, Stream, StreamState};
use crate::event_loop::Loop;
use crate::handle::Handle;
use crate::sys::Event;
use std::io as stdio;
use std::rc::Rc;

/// Reads per readiness event before other streams get their turn (16 x 64 KiB = 1 MiB).
/// A stream cut off by the budget is re-read in the next pending phase. A task's reads
/// have the same budget per poll (`Reactor::spend_read`).
pub(crate) const READ_BUDGET: usize = 16;

/// When a stream's socket counts as emptied, so the loop stops reading it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drained {
    /// A read found nothing (`WouldBlock`). The only sure sign, and the rule wherever
    /// the poller may not report the stream again: a re-read that no event asked for
    /// (after a budget ran out, after `read_start`), or a peer that has closed.
    WouldBlock,
    /// A read filled less than the buffer: the kernel gave all it had. Anything that
    /// arrives later (bytes, a FIN) is reported anew, even by an edge-triggered poller,
    /// so the `recv` that would find `EAGAIN` is saved: one read per message.
    ShortRead,
}

/// `read_start`'s callback, as the loop keeps it.
type ReadCallback = Box<dyn FnMut(&mut Loop, Handle, ReadEvent<'_>)>;

/// Who is told of a stream's reads.
pub(super) enum OnRead {
    /// `read_start`'s callback.
    Callback(ReadCallback),
    /// The task layer's side of the stream, which reads for itself: the loop only says
    /// the socket is readable, and the future waiting in `read` calls `recv` with the
    /// fd the loop lent it, into the task's own buffer (readiness, as tokio reads).
    /// Told in place, with the loop shared (`TaskSide::on_readable` takes `&Loop`):
    /// neither taken out and put back, as a callback is, nor cloned (the `Rc`'s count
    /// is a write to a line of its own).
    Reader(Rc<dyn TaskSide>),
}

/// The task layer's side of a stream, held by the loop: told when the stream is
/// readable (see [`OnRead::Reader`]) and of the close that takes back a lent fd.
pub(crate) trait TaskSide {
    /// The poller reported the stream readable (or the loop looks again after
    /// `read_resume`); `until` says whether a short read empties it. True if the loop
    /// should stop watching the stream (nobody reads it).
    fn on_readable(&self, lp: &Loop, until: Drained) -> bool;
    /// The stream is closing: forget the fd it lent (`Loop::lend_fd`) now, before the
    /// loop closes it and the number can name another file.
    fn fd_taken_back(&self);
    /// The task that waits to read, if one does: what the event will poll (for
    /// `Loop::warm_batch`; it reads, and changes nothing).
    fn waiting_task(&self) -> Option<Handle>;
}

impl StreamState {
    /// The task side of this stream, if it is reading by readiness now.
    #[inline]
    fn waiting_reader(&self) -> Option<&dyn TaskSide> {
        match &self.on_read {
            Some(OnRead::Reader(reader)) if self.reading => Some(&**reader),
            _ => None,
        }
    }

    /// The task waiting to read this stream by its handle, if one is (what it waits
    /// on, for `Loop::tasks_waiting_on`: such a read leaves no note of its own).
    pub(crate) fn task_waiting_to_read(&self) -> Option<Handle> {
        match &self.on_read {
            Some(OnRead::Reader(side)) => side.waiting_task(),
            _ => None,
        }
    }

    /// Who this stream's read event calls, for `Loop::warm_batch`: the task side it
    /// tells (returned), or the callback it runs (its closure is prefetched here).
    pub(crate) fn warm_reader(&self) -> Option<&dyn TaskSide> {
        match &self.on_read {
            Some(OnRead::Reader(side)) if self.reading => Some(&**side),
            Some(OnRead::Callback(cb)) if self.reading => {
                crate::sys::prefetch::prefetch(&**cb, 2);
                None
            }
            _ => None,
        }
    }
}

impl Loop {
    /// Start delivering reads to `cb`. An error if the stream is already reading (libuv's
    /// `EALREADY`: a second reader would silently replace the first). Tries a read in the
    /// next pending phase too: data that arrived while reading was stopped is not reported
    /// again by an edge-triggered poller.
    pub fn read_start<S: Stream>(
        &mut self,
        conn: S,
        mut cb: impl FnMut(&mut Loop, S, ReadEvent<'_>) + 'static,
    ) -> stdio::Result<()> {
        let h: Handle = conn.into();
        let cb = OnRead::Callback(Box::new(move |lp, h, ev| cb(lp, typed::<S>(h), ev)));
        self.start_reading("read_start", h, cb)
    }

    /// Lend the stream's fd to the task layer's `side`, which the loop tells before the
    /// fd closes. `None` if it has none to lend: closed, or not connected yet.
    pub(crate) fn lend_fd(&mut self, conn: impl Stream, side: Rc<dyn TaskSide>) -> Option<LentFd> {
        let t = self.stream(conn.into())?;
        if t.failed || t.connecting.is_some() {
            return None;
        }
        let lent = t.io.as_ref()?.lend();
        t.lent_to = Some(side);
        Some(lent)
    }

    /// `read_start` for a reader the task layer shares with its futures.
    pub(crate) fn read_start_reader(
        &mut self,
        conn: impl Stream,
        reader: Rc<dyn TaskSide>,
    ) -> stdio::Result<()> {
        self.start_reading("read_start", conn.into(), OnRead::Reader(reader))
    }

    fn start_reading(&mut self, op: &str, h: Handle, on_read: OnRead) -> stdio::Result<()> {
        let t = self.stream_for(op, h)?;
        if t.reading {
            return Err(stdio::Error::new(
                stdio::ErrorKind::AlreadyExists,
                format!(
                    "{op}: {} {h} is already reading (EALREADY); read_stop first",
                    t.kind
                ),
            ));
        }
        t.on_read = Some(on_read);
        t.read_started = true;
        self.resume_reading(h)
    }

    /// Stop reading (backpressure): the kernel buffers, then the peer's sends block.
    /// False if the stream is stale or closed.
    pub fn read_stop(&mut self, conn: impl Stream) -> bool {
        self.stop_reading(conn.into())
    }

    /// `read_stop` by handle.
    fn stop_reading(&mut self, h: Handle) -> bool {
        let Some(t) = self.stream(h) else {
            return false;
        };
        t.reading = false;
        // Stopping watching cannot leave us reading; a failed deregister is harmless here.
        let _ = self.sync_interest(h);
        true
    }

    /// Read again with the callback given to the last `read_start` (Node's `resume()`).
    pub fn read_resume(&mut self, conn: impl Stream) -> stdio::Result<()> {
        self.resume_reading(conn.into())
    }

    fn resume_reading(&mut self, h: Handle) -> stdio::Result<()> {
        let t = self.stream_for("read_resume", h)?;
        if t.failed {
            return Err(not_connected("read", t.kind, h));
        }
        if !t.read_started {
            return Err(stdio::Error::new(
                stdio::ErrorKind::InvalidInput,
                format!("{} {h}: read_resume before read_start", t.kind),
            ));
        }
        let was_reading = std::mem::replace(&mut t.reading, true);
        if let Err(e) = self.sync_interest(h) {
            if let Some(t) = self.stream(h) {
                t.reading = was_reading;
            }
            return Err(e);
        }
        // A task's stream needs no look: its `read` found the socket empty just before
        // asking, and a poller told of a socket that is readable already reports it
        // (epoll_ctl and kevent check the socket as they add it, edge-triggered or not).
        let look = self.stream(h).is_some_and(|t| {
            t.connecting.is_none() && !matches!(t.on_read, Some(OnRead::Reader(_)))
        });
        if !was_reading && look {
            self.defer(h, move |lp| lp.read_some(h, Drained::WouldBlock));
        }
        Ok(())
    }

    /// Readiness for a stream: finish a connect, flush writes, read. True if it told a
    /// task's side the stream is readable (see `read_or_tell`).
    pub(crate) fn on_stream_ready(&mut self, h: Handle, ev: Event) -> bool {
        if self.stream(h).is_some_and(|t| t.connecting.is_some()) {
            if ev.writable || ev.error || ev.hangup {
                self.finish_connect(h);
            }
            return false;
        }
        if ev.writable || ev.error {
            self.flush(h);
        }
        if ev.readable || ev.hangup || ev.error {
            // A peer that closed (or failed) is read to the end, so its EOF or error is
            // not left to an edge that will not come again.
            let until = if ev.hangup || ev.error {
                Drained::WouldBlock
            } else {
                Drained::ShortRead
            };
            return self.read_or_tell(h, until);
        }
        false
    }

    /// `read_or_tell`, and for a task's stream what the event loop does after a
    /// dispatch: poll the tasks it woke.
    pub(crate) fn read_some(&mut self, h: Handle, until: Drained) {
        if self.read_or_tell(h, until) {
            self.task_checkpoint();
        }
    }

    /// Read with the loop's shared buffer, lent out through a guard (handle.rs); or, for
    /// a task's stream, say it is readable (its future reads for itself) and return
    /// true: the caller polls the tasks that woke.
    fn read_or_tell(&mut self, h: Handle, until: Drained) -> bool {
        // Told in place, with the loop shared: the task side only queues its reader, so
        // nothing is taken out and put back (two more lookups of the stream) and no
        // guard is needed for a callback that could do anything to the loop.
        let told = self
            .stream_ref(h)
            .and_then(StreamState::waiting_reader)
            .map(|reader| reader.on_readable(self, until));
        if let Some(stop) = told {
            if stop {
                self.stop_reading(h);
            }
            return true;
        }
        let buf = std::mem::take(&mut self.read_buf);
        let more = self.call_taken(
            buf,
            |lp, buf| lp.read_into(h, buf, until),
            |lp, buf| lp.read_buf = buf,
        );
        // Out of budget while still reading: more may be waiting and an edge-triggered
        // poller will not tell us again, so look once more next tick.
        if more {
            self.defer(h, move |lp| lp.read_some(h, Drained::WouldBlock));
        }
        false
    }

    /// A task's stream read its end (EOF or an error) itself: what `read_into` does when
    /// a callback's stream ends.
    pub(crate) fn reader_ended(&mut self, conn: impl Stream) {
        let h: Handle = conn.into();
        let Some(t) = self.stream(h) else {
            return;
        };
        t.reading = false;
        let owner = t.owner;
        self.reading_ended(h, owner);
    }

    /// A stream read to its end (EOF or an error): stop watching it, and tell `owner`,
    /// the process whose output it is, if any.
    fn reading_ended(&mut self, h: Handle, owner: Option<Handle>) {
        let _ = self.sync_interest(h); // only ever narrows what is watched
        if let Some(process) = owner {
            self.stdio_ended(process, h);
        }
    }

    /// Read until `until` says the socket is empty, EOF, an error, the callback stopping
    /// us, or the budget. True if the budget ran out while still reading.
    #[inline(never)]
    fn read_into(&mut self, h: Handle, buf: &mut [u8], until: Drained) -> bool {
        for _ in 0..READ_BUDGET {
            let Some(t) = self.stream(h) else {
                return false;
            };
            // A task's stream reads for itself (`read_some` tells it the stream is readable).
            let ours = t.reading && !matches!(t.on_read, Some(OnRead::Reader(_)));
            let Some(io) = t.io.as_ref().filter(|_| ours) else {
                return false;
            };
            let (event, drained) = match io.read(buf) {
                Ok(0) => (ReadEvent::Eof, true),
                Ok(n) => (
                    ReadEvent::Data(&buf[..n]),
                    until == Drained::ShortRead && n < buf.len(),
                ),
                Err(e) if e.kind() == stdio::ErrorKind::WouldBlock => {
                    self.counters.reads += 1;
                    self.counters.reads_empty += 1;
                    return false;
                }
                Err(e) if e.kind() == stdio::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let what = format!("reading {} {h}", t.kind);
                    (ReadEvent::Error(crate::error::context(what, e)), true)
                }
            };
            let last = !matches!(event, ReadEvent::Data(_));
            if last {
                t.reading = false;
            }
            let owner = t.owner.filter(|_| last);
            let Some(cb) = t.on_read.take() else {
                return false;
            };
            self.counters.reads += 1;
            self.call_taken(
                cb,
                |lp, cb| match cb {
                    OnRead::Callback(cb) => cb(lp, h, event),
                    OnRead::Reader(_) => {} // excluded above, before the read
                },
                |lp, cb| {
                    if let Some(t @ StreamState { on_read: None, .. }) = lp.stream(h) {
                        t.on_read = Some(cb);
                    }
                },
            );
            if last {
                self.reading_ended(h, owner);
                return false;
            }
            if drained {
                return false;
            }
        }
        self.stream(h).is_some_and(|t| t.reading)
    }
}
