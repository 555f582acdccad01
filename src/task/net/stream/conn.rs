//! What a stream's futures share with the loop callbacks that do its I/O: what is known
//! of the socket's readability, the outbox, the stored wakers, and the callbacks
//! themselves (`on_readable`, `flush`).
//! Generic over the loop's [`Stream`]: a `Tcp` under a `TcpStream`, a `Pipe` under a
//! `PipeStream`; the loop's stream methods are the same for both.

use crate::event_loop::Loop;
use crate::handle::Handle;
use crate::stream::{Drained, LentFd, TaskSide};
use crate::task::cause::Cause;
use crate::task::reactor::{Act, Reactor};
use crate::Stream;
use std::cell::{Cell, RefCell};
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Context, Waker};

/// An error kept for every later call (an `io::Error` cannot be cloned); boxed, since
/// it is rare and a stream's state should stay small.
#[derive(Clone)]
pub(super) struct Sticky(Box<(io::ErrorKind, String)>);

impl Sticky {
    pub(super) fn of(e: &io::Error) -> Sticky {
        Sticky(Box::new((e.kind(), e.to_string())))
    }

    pub(super) fn error(&self) -> io::Error {
        io::Error::new(self.0 .0, self.0 .1.clone())
    }
}

/// Bytes in transit (the outbox), in a buffer borrowed from the reactor's
/// spares while it holds any and given back the moment it is empty. An idle stream then
/// holds no buffer at all, and a busy one writes into the buffer the last stream just
/// gave back, still in the CPU's cache (buffers kept per stream cost about 17 more L1
/// misses per round trip in the echo benchmark at 1000 connections, cachegrind).
#[derive(Default)]
pub(super) struct Bytes {
    buf: Vec<u8>,
    /// How much of `buf` was taken already.
    pos: usize,
}

impl Bytes {
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub(super) fn as_slice(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    #[inline]
    pub(super) fn push(&mut self, r: &Reactor, bytes: &[u8]) {
        if self.buf.capacity() == 0 {
            self.buf = r.buffer();
        }
        self.buf.extend_from_slice(bytes);
    }

    #[inline]
    pub(super) fn release(&mut self, r: &Reactor) {
        self.pos = 0;
        r.recycle(std::mem::take(&mut self.buf));
    }
}

/// What a stream's futures and its loop callbacks share. In C's order: what a read and
/// a write touch comes first, and with the fd before it (`ConnCell`) fills the cell's
/// first cache line exactly (`tests::hot_fields_share_one_line`); the rest is for the
/// rare paths. A round trip of the echo then touches one line of it, not three.
#[repr(C)]
pub(crate) struct Conn<S> {
    pub(super) reader: Option<Reader>,
    /// Bytes may wait in the kernel: the poller said readable, and no read has found the
    /// socket empty since. While false, `read` waits without a system call.
    pub(super) readable: bool,
    /// Read on until `WouldBlock` or the end: the event said the peer closed (its FIN
    /// may have come with the last bytes, and an edge-triggered poller will not report
    /// it again), so a short read does not mean empty.
    pub(super) read_to_end: bool,
    /// The loop watches the socket for readability.
    pub(super) reading: bool,
    pub(super) read_asked: bool,
    pub(super) eof: bool,
    /// A flush of the outbox is asked. The outbox is empty unless this, `blocked` or
    /// `write_err` is set: `write_all` tests these rather than the outbox itself, which
    /// lies on the cell's second line.
    pub(super) flush_asked: bool,
    /// The loop's write queue for this stream is not empty: the next flush waits.
    pub(super) blocked: bool,
    pub(super) shut: Shut,
    pub(super) read_err: Option<Sticky>,
    pub(super) write_err: Option<Sticky>,
    pub(super) outbox: Bytes,
    /// The task in `write_all` (outbox full) or `shutdown` (waiting for the flush).
    pub(super) writer: Option<Waker>,
    /// `read_start` was called once (later starts are `read_resume`). Read only once
    /// `reading` is false, so it is kept off the first line.
    pub(super) started: bool,
    /// How the shutdown failed, once `shut` is `Done`.
    pub(super) shut_err: Option<Sticky>,
    pub(super) stream: S,
    /// The task-side type, for messages ("TcpStream", "PipeStream").
    pub(super) name: &'static str,
    /// A TCP stream's peer, as it was when the connection was made.
    pub(super) peer: Option<SocketAddr>,
}

impl<S: Stream> Conn<S> {
    /// A stream's shared state, before any read or write.
    pub(super) fn shared(stream: S, name: &'static str, peer: Option<SocketAddr>) -> Shared<S> {
        Rc::new(ConnCell {
            lent: Cell::new(Lent::NotAsked),
            state: RefCell::new(Conn {
                stream,
                name,
                readable: false,
                read_to_end: false,
                reading: false,
                started: false,
                read_asked: false,
                eof: false,
                read_err: None,
                reader: None,
                outbox: Bytes::default(),
                flush_asked: false,
                blocked: false,
                write_err: None,
                writer: None,
                shut: Shut::Open,
                shut_err: None,
                peer,
            }),
        })
    }
}

/// The stream's fd, as far as the task side knows it.
#[derive(Clone, Copy)]
pub(super) enum Lent {
    NotAsked,
    /// Asked of the loop; writes go through it meanwhile.
    Asked,
    /// `write_all` hands its bytes to the kernel itself (when nothing waits before them).
    Fd(LentFd),
    /// Taken back (the stream closed), or there was none to lend: writes go through the
    /// loop, which reports what is wrong.
    Gone,
}

/// A stream's shared state, and the fd the loop lent it. The fd sits outside the
/// `RefCell`, so the loop can take it back from inside any call, borrowed or not.
#[repr(C, align(64))]
pub(crate) struct ConnCell<S> {
    pub(super) lent: Cell<Lent>,
    state: RefCell<Conn<S>>,
}

impl<S> std::ops::Deref for ConnCell<S> {
    type Target = RefCell<Conn<S>>;
    fn deref(&self) -> &RefCell<Conn<S>> {
        &self.state
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Shut {
    Open,
    Asked,
    /// Sent, or failed (`shut_err`).
    Done,
}

pub(super) type Shared<S> = Rc<ConnCell<S>>;

/// The task waiting to read, as the read callback will wake it.
pub(super) enum Reader {
    /// The task polled with its own waker: queued by its handle, which the wake takes
    /// out (`ReadyList::push_direct`). Neither the store nor the wake touches the
    /// task's waker, a cache line of its own fetched from memory in the echo at 1000
    /// connections (`perf record`: the costliest load of the round trip).
    Task(Handle),
    /// Polled by a combinator with a waker of its own: that waker, kept (not taken),
    /// so the reader's next `Pending` finds the same one there (`will_wake`) and
    /// stores nothing.
    Waker(Waker),
}

impl Reader {
    /// What to keep for the future being polled with `cx`, in `slot`. True if that is
    /// the task's handle.
    #[inline]
    pub(super) fn store(slot: &mut Option<Reader>, r: &Reactor, cx: &Context<'_>) -> bool {
        if let Some(task) = r.own_task(cx.waker()) {
            *slot = Some(Reader::Task(task));
            return true;
        }
        match slot {
            Some(Reader::Waker(w)) if w.will_wake(cx.waker()) => {}
            _ => *slot = Some(Reader::Waker(cx.waker().clone())),
        }
        false
    }

    /// Wake the reader, if any. A task is queued once: its handle is taken out until
    /// it waits again. A waker is kept: a wake when nobody reads is a spare poll, no more.
    #[inline]
    pub(super) fn wake(slot: &mut Option<Reader>, lp: &Loop) {
        match slot {
            Some(Reader::Task(task)) => {
                lp.tasks.ready.push_direct(*task, Cause::now_packed());
                *slot = None;
            }
            Some(Reader::Waker(w)) => w.wake_by_ref(),
            None => {}
        }
    }
}

#[inline]
pub(super) fn wake(slot: &mut Option<Waker>) {
    if let Some(w) = slot.take() {
        w.wake();
    }
}

/// The loop's side: told the socket is readable, and that its fd is taken back.
impl<S: Stream> TaskSide for ConnCell<S> {
    fn on_readable(&self, lp: &Loop, until: Drained) -> bool {
        on_readable(lp, self, until)
    }

    fn fd_taken_back(&self) {
        self.lent.set(Lent::Gone);
    }

    fn waiting_task(&self) -> Option<Handle> {
        match self.try_borrow().ok()?.reader {
            Some(Reader::Task(task)) => Some(task),
            _ => None,
        }
    }
}

/// Ask the loop for the stream's fd, for `write_all` to write with.
pub(super) fn ask_lend<S: Stream>(r: &Reactor, conn: &Shared<S>) {
    conn.lent.set(Lent::Asked);
    let conn = conn.clone();
    r.ask(move |lp| {
        let stream = conn.borrow().stream;
        lend(lp, &conn, stream);
    });
}

/// Have the loop lend `stream`'s fd, unless it did already. (`stream` is passed, not
/// read from `conn`: the caller may hold the state borrowed.)
fn lend<S: Stream>(lp: &mut Loop, conn: &Shared<S>, stream: S) {
    if matches!(conn.lent.get(), Lent::NotAsked | Lent::Asked) {
        let lent = lp.lend_fd(stream, conn.clone());
        conn.lent.set(lent.map_or(Lent::Gone, Lent::Fd));
    }
}

fn on_readable<S: Stream>(lp: &Loop, conn: &RefCell<Conn<S>>, until: Drained) -> bool {
    let mut c = conn.borrow_mut();
    // Reported again, and nobody has read the socket empty since the last report (the
    // task is busy elsewhere, or its budget ran out) nor waits to: stop watching it, or
    // a level-triggered poller reports it every tick. The kernel's buffer holds the
    // bytes meanwhile; when it fills, the peer's sends block. The task's next `read`
    // reads it directly, and watches again once it finds it empty. (Decided here, at
    // the second report, rather than after the first report's poll: that would touch
    // the stream's state again after the poll's system calls, a miss per event.)
    if c.readable && c.reading && !matches!(c.reader, Some(Reader::Task(_))) {
        c.reading = false;
        return true; // the loop stops watching it
    }
    c.readable = true;
    c.read_to_end = until == Drained::WouldBlock;
    Reader::wake(&mut c.reader, lp);
    // The reader runs next, while the socket is hot and before the next event (the
    // loop's checkpoint after this dispatch, as `read_or_tell` returns true): its echo
    // is on the wire before the loop polls again, as a read callback's would be.
    false
}

/// The reader found the end (EOF, or an error): the loop stops watching the socket, and
/// tells the child process whose output it is (as its own reads would).
pub(super) fn ask_read_ended<S: Stream>(r: &Reactor, c: &mut Conn<S>) {
    c.reading = false;
    c.readable = false;
    let stream = c.stream;
    r.ask(move |lp| lp.reader_ended(stream));
}

/// Ask the loop to (re)start reading, unless it is or will be (`c` is `conn`, borrowed).
pub(super) fn ask_reading<S: Stream>(r: &Reactor, c: &mut Conn<S>, conn: &Shared<S>) {
    if c.reading || c.read_asked || c.eof || c.read_err.is_some() {
        return;
    }
    c.read_asked = true;
    let conn = conn.clone();
    r.ask(move |lp| {
        let mut c = conn.borrow_mut();
        c.read_asked = false;
        if c.reading || c.eof || c.read_err.is_some() {
            return;
        }
        let started = if c.started {
            lp.read_resume(c.stream)
        } else {
            let reading = lp.read_start_reader(c.stream, conn.clone());
            // The first read is the usual first ask of a stream: lend its fd now, which
            // its reads need (and its writes use).
            if reading.is_ok() {
                lend(lp, &conn, c.stream);
            }
            reading
        };
        match started {
            Ok(()) => (c.started, c.reading) = (true, true),
            Err(e) => {
                c.read_err = Some(Sticky::of(&e));
                Reader::wake(&mut c.reader, lp);
            }
        }
    });
}

/// Hand the outbox to the loop, unless the loop's queue is still draining.
pub(super) fn flush<S: Stream>(lp: &mut Loop, conn: &Shared<S>) {
    let mut c = conn.borrow_mut();
    c.flush_asked = false;
    if c.blocked || c.outbox.is_empty() || c.write_err.is_some() {
        return;
    }
    let stream = c.stream;
    let sent = lp.write(stream, c.outbox.as_slice());
    c.outbox.release(&lp.tasks.reactor);
    let queued = lp.write_queue_len(stream) > 0;
    let marked = match sent {
        Ok(()) if queued => {
            // The kernel refused some: learn when the loop's queue has drained.
            let done = conn.clone();
            lp.write_then(stream, [], move |lp, _, r| drained(lp, &done, r))
        }
        other => other,
    };
    match marked {
        Ok(()) => c.blocked = queued,
        Err(e) => c.write_err = Some(Sticky::of(&e)),
    }
    wake(&mut c.writer);
}

/// The loop's write queue for the stream drained (or failed): flush what waited.
pub(super) fn drained<S: Stream>(lp: &mut Loop, conn: &Shared<S>, r: io::Result<()>) {
    let mut c = conn.borrow_mut();
    c.blocked = false;
    if let Err(e) = r {
        c.write_err = Some(Sticky::of(&e));
    }
    wake(&mut c.writer);
    drop(c);
    flush(lp, conn);
    lp.task_checkpoint();
}

pub(super) fn ask_flush<S: Stream>(r: &Reactor, conn: &Shared<S>) {
    let mut c = conn.borrow_mut();
    if c.flush_asked || c.blocked {
        return; // a flush is coming, or `drained` will do it
    }
    c.flush_asked = true;
    drop(c);
    r.ask_act(conn.clone());
}

/// The flush is asked in every poll that writes: as an object, it allocates nothing.
impl<S: Stream> Act for ConnCell<S> {
    fn act(self: Rc<Self>, lp: &mut Loop) {
        flush(lp, &self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::{HandleKind, HandleTable, Tcp};
    use std::mem::size_of;

    /// What a read and a write touch on every round trip (the fd, the borrow flag, the
    /// waker, the flags, the errors) lies in the cell's first cache line.
    #[test]
    fn hot_fields_share_one_line() {
        let mut table = HandleTable::new(1);
        let tcp = Tcp(table.insert(HandleKind::Tcp, (), true, true));
        let cell = Conn::shared(tcp, "TcpStream", None);
        let base = &*cell as *const ConnCell<Tcp> as usize;
        assert_eq!(base % 64, 0, "the cell starts a cache line");
        let c = cell.borrow();
        // The conn after the fd (8 bytes) and the `RefCell`'s borrow flag (8 bytes).
        assert_eq!(&*c as *const Conn<Tcp> as usize - base, 16);
        let end = |at: usize, size: usize| at + size - base;
        let hot = [
            (
                "lent",
                end(&cell.lent as *const _ as usize, size_of::<Cell<Lent>>()),
            ),
            (
                "reader",
                end(&c.reader as *const _ as usize, size_of::<Option<Reader>>()),
            ),
            ("shut", end(&c.shut as *const _ as usize, size_of::<Shut>())),
            (
                "read_err",
                end(
                    &c.read_err as *const _ as usize,
                    size_of::<Option<Sticky>>(),
                ),
            ),
            (
                "write_err",
                end(
                    &c.write_err as *const _ as usize,
                    size_of::<Option<Sticky>>(),
                ),
            ),
        ];
        for (field, ends_at) in hot {
            assert!(ends_at <= 64, "{field} ends at byte {ends_at} of the cell");
        }
    }
}
