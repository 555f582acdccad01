//! TCP for tasks: `TcpListener::bind`/`accept`, `TcpStream::connect`, and the stream's
//! `read`/`write_all`/`shutdown` (in `net/stream.rs`).
//!
//! Every future here is a thin shell over a loop handle: it asks the loop to listen,
//! connect or read with the callback API, and the callbacks fill a shared cell and
//! wake the waker stored in it. The loop handles are unref'd: the task that uses them
//! holds the loop (a task is ref'd by default), so unref'ing the task is enough.
//!
//! The accept and connect logic is written once for any stream kind (`net/accept.rs`,
//! `net/connect.rs`) and shared with the Unix-domain side (`task/pipe/unix.rs`).
//!
//! Accepted connections wait in a bounded backlog ([`ACCEPT_BACKLOG`]); when it is full
//! the listener stops watching and the kernel's own backlog takes over. Dropping an
//! `accept` that is waiting also stops watching (interest withdrawn); the next `accept`
//! starts again.

pub(crate) mod accept;
pub(crate) mod connect;
mod stream;

use accept::SharedListen;
use connect::SharedConnect;

pub(crate) use stream::Io;
pub use stream::{ReadFuture, Shutdown, TcpStream, WriteAll, OUTBOX_HIGH};

use super::reactor::{self, Note, Reactor, Waiting};
use crate::event_loop::Loop;
use crate::handle::{Listener, Tcp};
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Connections accepted and not yet taken by `accept`, at most.
pub const ACCEPT_BACKLOG: usize = 1024;

/// A listening socket, used from a task.
pub struct TcpListener {
    shared: SharedListen<Tcp>,
    local: SocketAddr,
    reactor: Rc<Reactor>,
}

/// A cell an ask fills once, and the waker to tell.
pub(crate) struct Outcome<T> {
    value: Option<io::Result<T>>,
    waker: Option<Waker>,
}

pub(crate) type OutcomeCell<T> = Rc<RefCell<Outcome<T>>>;

pub(crate) fn outcome<T>() -> OutcomeCell<T> {
    Rc::new(RefCell::new(Outcome {
        value: None,
        waker: None,
    }))
}

pub(crate) fn fill<T>(cell: &OutcomeCell<T>, value: io::Result<T>) {
    let mut c = cell.borrow_mut();
    c.value = Some(value);
    if let Some(w) = c.waker.take() {
        w.wake();
    }
}

/// Poll an outcome cell: its value, or `Pending` with the waker stored.
pub(crate) fn take<T>(cell: &OutcomeCell<T>, cx: &Context<'_>) -> Poll<io::Result<T>> {
    let mut c = cell.borrow_mut();
    match c.value.take() {
        Some(v) => Poll::Ready(v),
        None => {
            reactor::store_waker(&mut c.waker, cx);
            Poll::Pending
        }
    }
}

impl TcpListener {
    /// Listen on `addr` (port 0: any free port; see `local_addr`).
    pub fn bind(addr: SocketAddr) -> Bind {
        Bind {
            addr,
            asked: None,
            note: None,
        }
    }

    /// The address it listens on (the real port after port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The loop handle underneath.
    pub fn handle(&self) -> Listener {
        self.shared.borrow().listener
    }

    /// The next connection: `Ok(stream)`, or an accept error (out of fds: the loop
    /// backs off by itself; keep accepting).
    pub fn accept(&self) -> Accept<'_> {
        Accept {
            listener: self,
            note: None,
        }
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        accept::close(&self.shared, &self.reactor);
    }
}

/// The future of [`TcpListener::bind`].
pub struct Bind {
    addr: SocketAddr,
    asked: Option<(Rc<Reactor>, OutcomeCell<TcpListener>)>,
    /// What it told the loop it waits on, while it waits.
    note: Option<Note>,
}

impl Future for Bind {
    type Output = io::Result<TcpListener>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let r = reactor::current("TcpListener::bind")?;
        let addr = self.addr;
        let (_, cell) = self.asked.get_or_insert_with(|| {
            let cell = outcome();
            let (done, me) = (cell.clone(), r.clone());
            r.ask(move |lp| fill(&done, listen(lp, addr, me)));
            (r.clone(), cell)
        });
        let polled = take(cell, cx);
        self.note = polled
            .is_pending()
            .then(|| r.waits_on(Waiting::Listen(Box::new(addr))));
        polled
    }
}

fn listen(lp: &mut Loop, addr: SocketAddr, reactor: Rc<Reactor>) -> io::Result<TcpListener> {
    let shared = accept::shared();
    let s = shared.clone();
    let listener = lp.tcp_listen(addr, move |lp, _, r| {
        let r = r.map(|tcp| (tcp, lp.peer_addr(tcp).ok()));
        accept::on_connection(lp, &s, r);
    })?;
    lp.unref_handle(listener);
    shared.borrow_mut().listener = listener;
    let local = lp.local_addr(listener)?;
    Ok(TcpListener {
        shared,
        local,
        reactor,
    })
}

/// The future of [`TcpListener::accept`].
pub struct Accept<'a> {
    listener: &'a TcpListener,
    /// While it waits (returned `Pending` and has not finished): what it told the loop.
    note: Option<Note>,
}

impl Future for Accept<'_> {
    type Output = io::Result<TcpStream>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let r = reactor::current("TcpListener::accept")?;
        match accept::poll_accept(&self.listener.shared, &r, cx) {
            Poll::Ready(next) => {
                self.note = None;
                Poll::Ready(next.map(|(tcp, peer)| TcpStream::new(tcp, peer, r)))
            }
            Poll::Pending => {
                let listener = self.listener.handle();
                self.note = Some(r.waits_on(Waiting::Accept(listener)));
                Poll::Pending
            }
        }
    }
}

impl Drop for Accept<'_> {
    /// An accept dropped while waiting withdraws its interest.
    fn drop(&mut self) {
        if self.note.take().is_some() {
            accept::withdraw(&self.listener.shared, &self.listener.reactor);
        }
    }
}

impl TcpStream {
    /// Connect to `addr`.
    pub fn connect(addr: SocketAddr) -> Connect {
        Connect {
            addr,
            asked: None,
            note: None,
        }
    }
}

/// The future of [`TcpStream::connect`]. Dropped before it connects, it closes the
/// half-made connection.
pub struct Connect {
    addr: SocketAddr,
    asked: Option<(Rc<Reactor>, SharedConnect<Tcp>)>,
    /// What it told the loop it waits on, while it waits.
    note: Option<Note>,
}

impl Future for Connect {
    type Output = io::Result<TcpStream>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let r = reactor::current("TcpStream::connect")?;
        let addr = self.addr;
        let (_, c) = self.asked.get_or_insert_with(|| {
            let start = move |lp: &mut Loop, done: connect::Connected| {
                lp.tcp_connect(addr, move |lp, _, res| done(lp, res))
            };
            (r.clone(), connect::ask(&r, start))
        });
        match connect::poll(c, &r, cx, &|| format!("connecting to {addr}")) {
            Poll::Ready(result) => {
                Poll::Ready(result.map(|tcp| TcpStream::new(tcp, Some(addr), r)))
            }
            Poll::Pending => {
                self.note = Some(r.waits_on(Waiting::Connect(Box::new(addr))));
                Poll::Pending
            }
        }
    }
}

impl Drop for Connect {
    fn drop(&mut self) {
        if let Some((r, c)) = self.asked.take() {
            connect::abandon(c, &r);
        }
    }
}
