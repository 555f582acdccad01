//! Streams for tasks: `read`, `write_all`, `shutdown` over a loop stream handle. One
//! implementation, [`Io`], generic over the loop's [`Stream`], is under both
//! `TcpStream` (a `Tcp`) and `PipeStream` (a `Pipe`, `task/pipe.rs`), as the loop's own
//! stream code is one implementation under `Tcp` and `Pipe`.
//!
//! Reading is by readiness, as tokio reads: the loop lends the stream its fd
//! (`Loop::lend_fd`; the loop takes it back before it closes the fd), and `read` calls
//! `recv(2)` itself (`read(2)` on a pipe), into the caller's buffer. Only when that
//! finds the socket empty does it store its waker and wait; the loop watches the
//! socket and, when the poller says readable, wakes the reader (`on_readable`), which
//! polls it there and then. No bytes are copied on the way and nothing is buffered
//! here: a task that stops reading leaves the bytes in the kernel's buffer, the loop
//! stops watching, and when that buffer fills the peer's sends block. A task reads at
//! most `READ_BUDGET` times per poll (`Reactor::spend_read`) before a read yields, so a
//! peer that never stops sending cannot keep the loop to itself.
//!
//! Writing shares one bounded buffer, the **outbox**, with the loop: when nothing waits
//! in it or in the loop's queue, `write_all` sends with the lent fd, as the loop's own
//! `write` would: no copy, no ask. What the kernel refuses is copied into the outbox (up
//! to [`OUTBOX_HIGH`]), and the loop is asked to flush it once per poll: it hands the
//! outbox to `Loop::write`, which queues what the kernel does not take; while that queue
//! is not empty the next flush waits for it (an empty `write_then` marks the moment), so
//! at most one outbox sits in the loop's queue. `write_all` returns once its bytes are
//! with the kernel or in the outbox: an error the kernel gives later is returned by the
//! next `write_all` or `shutdown`. `shutdown().await` returns when every byte is with the
//! kernel and the FIN is sent.
//!
//! Dropping a `read` that is waiting stops the loop watching (interest withdrawn); the
//! next `read` starts it again. Dropping the stream flushes the outbox and closes the
//! handle; bytes the kernel had not taken yet are dropped with it (as `close` does):
//! `shutdown().await` first to know they all went.

mod conn;

use crate::handle::{Handle, Tcp};
use crate::stream::write_what_fits;
use crate::stream::LentFd;
use crate::task::reactor::{self, NoteId, Reactor, Waiting};
use crate::Stream;
use conn::{
    ask_flush, ask_lend, ask_read_ended, ask_reading, flush, wake, Conn, Lent, Reader, Shared,
    Shut, Sticky,
};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// `write_all` waits while this much is waiting to be handed to the loop.
pub const OUTBOX_HIGH: usize = 64 * 1024;

/// A connected stream, used from a task. `read`, `write_all` and `shutdown` take
/// `&mut self`: one of each at a time, as with `std::net::TcpStream`.
pub struct TcpStream {
    io: Io<Tcp>,
}

impl TcpStream {
    /// Wrap a loop stream (accepted or connected), already unref'd: its task holds the loop.
    pub(crate) fn new(tcp: Tcp, peer: Option<SocketAddr>, reactor: Rc<Reactor>) -> TcpStream {
        TcpStream {
            io: Io::new(tcp, "TcpStream", peer, reactor),
        }
    }

    /// The peer's address, as it was when the connection was made.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.io.conn.borrow().peer
    }

    /// The loop handle underneath (for `handles()` and the trace).
    pub fn handle(&self) -> Tcp {
        self.io.handle()
    }

    /// Read what has arrived into `buf`: `Ok(n)` with `n > 0`, `Ok(0)` at end of
    /// stream (or for an empty `buf`), or the connection's error.
    pub fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> ReadFuture<'a> {
        self.io.read(buf)
    }

    /// Hand every byte of `buf` to the stream (see the module doc for when it returns).
    pub fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> WriteAll<'a> {
        self.io.write_all(buf)
    }

    /// Send everything written so far, then a FIN: the peer reads end of stream.
    /// Reading goes on. Later writes fail.
    pub fn shutdown(&mut self) -> Shutdown<'_> {
        self.io.shutdown()
    }
}

/// The task side of one loop stream: the state shared with its loop callbacks, and the
/// reactor to ask. Dropped, it flushes what is in the outbox and closes the handle.
pub(crate) struct Io<S: Stream> {
    conn: Shared<S>,
    reactor: Rc<Reactor>,
    /// The handle, also kept here: a waiting `read` names it in its note, and the
    /// task's future is in the cache then, the cell's line with the handle is not.
    stream: S,
}

impl<S: Stream> Io<S> {
    /// Wrap `stream` (already unref'd: its task holds the loop); `name` is the task-side
    /// type, for messages.
    pub(crate) fn new(
        stream: S,
        name: &'static str,
        peer: Option<SocketAddr>,
        reactor: Rc<Reactor>,
    ) -> Io<S> {
        Io {
            conn: Conn::shared(stream, name, peer),
            reactor,
            stream,
        }
    }

    pub(crate) fn handle(&self) -> S {
        self.stream
    }

    pub(crate) fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> ReadFuture<'a, S> {
        ReadFuture {
            io: self,
            buf,
            note: None,
        }
    }

    pub(crate) fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> WriteAll<'a, S> {
        WriteAll {
            io: self,
            buf,
            done: 0,
            note: None,
        }
    }

    pub(crate) fn shutdown(&mut self) -> Shutdown<'_, S> {
        Shutdown {
            io: self,
            note: None,
        }
    }
}

/// Whether the stream may be used now: inside a poll of a task of its own loop
/// (`Reactor::inside`). The error names the stream's type and `op`.
#[inline]
fn check<S: Stream>(r: &Rc<Reactor>, conn: &Shared<S>, op: &str) -> io::Result<()> {
    if r.inside() {
        return Ok(());
    }
    Err(outside(conn, op))
}

#[cold]
fn outside<S: Stream>(conn: &Shared<S>, op: &str) -> io::Error {
    let name = conn.borrow().name;
    reactor::outside(&format!("{name}::{op}"))
}

impl<S: Stream> Drop for Io<S> {
    fn drop(&mut self) {
        let conn = self.conn.clone();
        self.reactor.ask(move |lp| {
            flush(lp, &conn);
            let stream = conn.borrow().stream;
            lp.close(stream);
        });
    }
}

/// A stream future's note of what it waits on is an id (`Reactor::note`), withdrawn by
/// the future itself: when it finishes, when it waits anew, and when it is dropped.
#[inline]
fn forget(r: &Reactor, note: &mut Option<NoteId>) {
    if let Some(old) = note.take() {
        r.withdraw(old);
    }
}

#[inline]
fn renote(r: &Reactor, note: &mut Option<NoteId>, what: Waiting) {
    forget(r, note);
    *note = Some(r.note(what));
}

/// The future of [`TcpStream::read`].
pub struct ReadFuture<'a, S: Stream = Tcp> {
    io: &'a Io<S>,
    buf: &'a mut [u8],
    /// While it waits (returned `Pending` and has not finished): what it told the loop.
    note: Option<NoteId>,
}

impl<S: Stream> Future for ReadFuture<'_, S> {
    type Output = io::Result<usize>;

    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let r = &this.io.reactor;
        check(r, &this.io.conn, "read")?;
        let mut c = this.io.conn.borrow_mut();
        if let Some(e) = &c.read_err {
            forget(r, &mut this.note);
            return Poll::Ready(Err(e.error()));
        }
        if c.eof || this.buf.is_empty() {
            forget(r, &mut this.note);
            return Poll::Ready(Ok(0));
        }
        match this.io.conn.lent.get() {
            Lent::Fd(fd) if c.readable => {
                if !r.spend_read() {
                    // This poll has read enough: let the others run, and come back.
                    drop(c);
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                if let Some(done) = read_now(r, &mut c, fd, this.buf) {
                    forget(r, &mut this.note);
                    return Poll::Ready(done);
                }
            }
            Lent::Gone => {
                forget(r, &mut this.note);
                return Poll::Ready(Err(closed(&c, "read")));
            }
            _ => {}
        }
        let by_handle = Reader::store(&mut c.reader, r, cx);
        ask_reading(r, &mut c, &this.io.conn);
        drop(c);
        forget(r, &mut this.note);
        // Waiting by the task's handle, the stream itself says what the task waits on
        // (`Loop::tasks_waiting_on`): the note is only counted.
        this.note = Some(if by_handle {
            r.note_by_handle()
        } else {
            r.note(Waiting::Readable(this.io.stream.into()))
        });
        Poll::Pending
    }
}

/// One read into `buf` with the lent fd: what `read` returns, or `None` if the socket was
/// empty (`WouldBlock`; the caller waits for the poller to say readable). Always
/// inlined into `read`'s poll, as `write_what_fits` is into `write_all`'s: the kernel's
/// return from `recv` leaves the CPU's return predictions wiped, and each frame the
/// code returns through after it is a return mispredicted (docs/benchmarks.md, step 13).
#[inline(always)]
fn read_now<S: Stream>(
    r: &Reactor,
    c: &mut Conn<S>,
    fd: LentFd,
    buf: &mut [u8],
) -> Option<io::Result<usize>> {
    r.reads.set(r.reads.get() + 1);
    let read = loop {
        match fd.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            read => break read,
        }
    };
    match read {
        Ok(0) => {
            c.eof = true;
            ask_read_ended(r, c);
            Some(Ok(0))
        }
        Ok(n) => {
            // Short: the kernel gave all it had (see `Drained::ShortRead`).
            if n < buf.len() && !c.read_to_end {
                c.readable = false;
            }
            Some(Ok(n))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            r.reads_empty.set(r.reads_empty.get() + 1);
            c.readable = false;
            None
        }
        Err(e) => {
            let h: Handle = c.stream.into();
            let e = crate::error::context(format!("{}::read on {h}", c.name), e);
            c.read_err = Some(Sticky::of(&e));
            ask_read_ended(r, c);
            Some(Err(e))
        }
    }
}

/// A read or write on a stream the loop has closed under it (`close` on its handle).
#[cold]
fn closed<S: Stream>(c: &Conn<S>, op: &str) -> io::Error {
    let h: Handle = c.stream.into();
    io::Error::new(
        io::ErrorKind::NotConnected,
        format!("{}::{op} on {h}: the stream was closed", c.name),
    )
}

impl<S: Stream> Drop for ReadFuture<'_, S> {
    /// A read dropped while waiting (a lost race, a timeout) withdraws its interest.
    /// Inlined: every read that finishes is dropped here, with nothing to do.
    #[inline]
    fn drop(&mut self) {
        if let Some(note) = self.note.take() {
            self.dropped_waiting(note);
        }
    }
}

impl<S: Stream> ReadFuture<'_, S> {
    #[inline(never)]
    fn dropped_waiting(&mut self, note: NoteId) {
        self.io.reactor.withdraw(note);
        self.io.conn.borrow_mut().reader = None;
        let conn = self.io.conn.clone();
        self.io.reactor.ask(move |lp| {
            let mut c = conn.borrow_mut();
            // Not if another read started waiting since (in the same poll).
            if c.reading && c.reader.is_none() {
                c.reading = false;
                lp.read_stop(c.stream);
            }
        });
    }
}

/// The future of [`TcpStream::write_all`].
pub struct WriteAll<'a, S: Stream = Tcp> {
    io: &'a Io<S>,
    buf: &'a [u8],
    done: usize,
    /// What it told the loop it waits on, while it waits.
    note: Option<NoteId>,
}

impl<S: Stream> Future for WriteAll<'_, S> {
    type Output = io::Result<()>;

    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let r = &this.io.reactor;
        check(r, &this.io.conn, "write_all")?;
        let mut c = this.io.conn.borrow_mut();
        if let Some(e) = &c.write_err {
            return Poll::Ready(Err(e.error()));
        }
        if c.shut != Shut::Open {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!(
                    "{}::write_all on {} after shutdown",
                    c.name,
                    Into::<Handle>::into(c.stream)
                ),
            )));
        }
        // Nothing waits before these bytes: give the kernel what it takes of them now,
        // as the loop's `write` would, without the outbox, the ask and the flush.
        if !c.flush_asked && !c.blocked && this.done < this.buf.len() {
            debug_assert!(
                c.outbox.is_empty(),
                "an outbox with bytes and no flush coming"
            );
            match this.io.conn.lent.get() {
                Lent::Fd(fd) => match write_what_fits(&this.buf[this.done..], |b| fd.write(b)) {
                    Ok(n) => this.done += n,
                    Err(e) => {
                        let h: Handle = c.stream.into();
                        let e = crate::error::context(format!("{}::write_all on {h}", c.name), e);
                        c.write_err = Some(Sticky::of(&e));
                        return Poll::Ready(Err(e));
                    }
                },
                Lent::NotAsked => ask_lend(r, &this.io.conn),
                Lent::Asked | Lent::Gone => {}
            }
            if this.done == this.buf.len() {
                return Poll::Ready(Ok(()));
            }
        }
        let room = OUTBOX_HIGH.saturating_sub(c.outbox.len());
        let take = room.min(this.buf.len() - this.done);
        c.outbox.push(r, &this.buf[this.done..this.done + take]);
        this.done += take;
        if take > 0 || !c.outbox.is_empty() {
            drop(c);
            ask_flush(r, &this.io.conn);
            c = this.io.conn.borrow_mut();
        }
        if this.done == this.buf.len() {
            drop(c);
            return Poll::Ready(Ok(()));
        }
        reactor::store_waker(&mut c.writer, cx);
        let h: Handle = c.stream.into();
        drop(c);
        renote(r, &mut this.note, Waiting::Writable(h));
        Poll::Pending
    }
}

impl<S: Stream> Drop for WriteAll<'_, S> {
    fn drop(&mut self) {
        forget(&self.io.reactor, &mut self.note);
    }
}

/// The future of [`TcpStream::shutdown`].
pub struct Shutdown<'a, S: Stream = Tcp> {
    io: &'a Io<S>,
    /// What it told the loop it waits on, while it waits.
    note: Option<NoteId>,
}

impl<S: Stream> Future for Shutdown<'_, S> {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = &self.io.reactor;
        check(r, &self.io.conn, "shutdown")?;
        let mut c = self.io.conn.borrow_mut();
        if c.shut == Shut::Done {
            let result = c.shut_err.as_ref().map_or(Ok(()), |e| Err(e.error()));
            drop(c);
            return Poll::Ready(result);
        }
        if let Some(e) = &c.write_err {
            return Poll::Ready(Err(e.error()));
        }
        let flushed = c.outbox.is_empty() && !c.blocked;
        if flushed && c.shut == Shut::Open {
            c.shut = Shut::Asked;
            let conn = self.io.conn.clone();
            r.ask(move |lp| {
                let stream = conn.borrow().stream;
                let done = conn.clone();
                let asked = lp.shutdown(stream, move |_, _, res| {
                    let mut c = done.borrow_mut();
                    c.shut = Shut::Done;
                    c.shut_err = res.err().map(|e| Sticky::of(&e));
                    wake(&mut c.writer);
                });
                if let Err(e) = asked {
                    let mut c = conn.borrow_mut();
                    c.shut = Shut::Done;
                    c.shut_err = Some(Sticky::of(&e));
                    wake(&mut c.writer);
                }
            });
        }
        reactor::store_waker(&mut c.writer, cx);
        let h: Handle = c.stream.into();
        drop(c);
        if !flushed {
            ask_flush(r, &self.io.conn);
        }
        renote(r, &mut self.note, Waiting::Shutdown(h));
        Poll::Pending
    }
}

impl<S: Stream> Drop for Shutdown<'_, S> {
    fn drop(&mut self) {
        forget(&self.io.reactor, &mut self.note);
    }
}
