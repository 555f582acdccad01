//! TCP for tasks: `TcpListener::bind`/`accept`, `TcpStream::connect`, and the stream's
//! `read`/`write_all`/`shutdown` (in `net/stream.rs`).
//!
//! Every future here is a thin shell over a loop handle: it asks the loop to listen,
//! connect or read with the callback API, and the callbacks fill a shared cell and
//! wake the waker stored in it. The loop handles are unref'd: the task that uses them
//! holds the loop (a task is ref'd by default), so unref'ing the task is enough.
//!
//! Accepted connections wait in a bounded backlog ([`ACCEPT_BACKLOG`]); when it is full
//! the listener stops watching and the kernel's own backlog takes over. Dropping an
//! `accept` that is waiting also stops watching (interest withdrawn); the next `accept`
//! starts again.

mod stream;

pub(crate) use stream::Io;
pub use stream::{ReadFuture, Shutdown, TcpStream, WriteAll, INBOX_HIGH, INBOX_LOW, OUTBOX_HIGH};

use super::reactor::{self, Note, Reactor, Waiting};
use crate::event_loop::Loop;
use crate::handle::{Handle, Listener, Tcp};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Connections accepted and not yet taken by `accept`, at most.
pub const ACCEPT_BACKLOG: usize = 1024;

/// What a listener's accept callback and its futures share.
struct Listen {
    listener: Listener,
    /// Accepted streams (already unref'd) with their peers' addresses.
    backlog: VecDeque<io::Result<(Tcp, Option<SocketAddr>)>>,
    /// The loop watches the listening socket.
    accepting: bool,
    acceptor: Option<Waker>,
}

/// A listening socket, used from a task.
pub struct TcpListener {
    shared: Rc<RefCell<Listen>>,
    local: SocketAddr,
    reactor: Rc<Reactor>,
}

/// A cell an ask fills once, and the waker to tell.
struct Outcome<T> {
    value: Option<io::Result<T>>,
    waker: Option<Waker>,
}

type OutcomeCell<T> = Rc<RefCell<Outcome<T>>>;

fn outcome<T>() -> OutcomeCell<T> {
    Rc::new(RefCell::new(Outcome {
        value: None,
        waker: None,
    }))
}

fn fill<T>(cell: &OutcomeCell<T>, value: io::Result<T>) {
    let mut c = cell.borrow_mut();
    c.value = Some(value);
    if let Some(w) = c.waker.take() {
        w.wake();
    }
}

/// Poll an outcome cell: its value, or `Pending` with the waker stored.
fn take<T>(cell: &OutcomeCell<T>, cx: &Context<'_>) -> Poll<io::Result<T>> {
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
        let shared = self.shared.clone();
        self.reactor.ask(move |lp| {
            let mut s = shared.borrow_mut();
            lp.close(s.listener);
            for (conn, _) in s.backlog.drain(..).flatten() {
                lp.close(conn);
            }
        });
    }
}

/// The listener's callback, on the loop: queue the connection, wake the acceptor.
fn on_connection(lp: &mut Loop, shared: &Rc<RefCell<Listen>>, r: io::Result<Tcp>) {
    let accepted = r.map(|tcp| {
        lp.unref_handle(tcp);
        (tcp, lp.peer_addr(tcp).ok())
    });
    let mut s = shared.borrow_mut();
    s.backlog.push_back(accepted);
    if s.backlog.len() >= ACCEPT_BACKLOG && s.accepting {
        s.accepting = false;
        // Failing to pause only means connections keep coming; the bound then is the
        // kernel's, one readiness batch at a time.
        let _ = lp.set_accepting(s.listener.0, false);
    }
    if let Some(w) = s.acceptor.take() {
        w.wake();
    }
    drop(s);
    lp.task_checkpoint();
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
    let shared = Rc::new(RefCell::new(Listen {
        listener: Listener(Handle::NONE),
        backlog: VecDeque::new(),
        accepting: true,
        acceptor: None,
    }));
    let s = shared.clone();
    let listener = lp.tcp_listen(addr, move |lp, _, r| on_connection(lp, &s, r))?;
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
        let mut s = self.listener.shared.borrow_mut();
        if let Some(next) = s.backlog.pop_front() {
            drop(s);
            self.note = None;
            return Poll::Ready(next.map(|(tcp, peer)| TcpStream::new(tcp, peer, r)));
        }
        reactor::store_waker(&mut s.acceptor, cx);
        let (listener, paused) = (s.listener, !s.accepting);
        drop(s);
        if paused {
            let shared = self.listener.shared.clone();
            r.ask(move |lp| {
                let mut s = shared.borrow_mut();
                if !s.accepting {
                    s.accepting = lp.set_accepting(s.listener.0, true).is_ok();
                }
            });
        }
        self.note = Some(r.waits_on(Waiting::Accept(listener)));
        Poll::Pending
    }
}

impl Drop for Accept<'_> {
    /// An accept dropped while waiting withdraws its interest: the loop stops watching
    /// the listener until the next `accept`.
    fn drop(&mut self) {
        if self.note.take().is_none() {
            return;
        }
        self.listener.shared.borrow_mut().acceptor = None;
        let shared = self.listener.shared.clone();
        self.listener.reactor.ask(move |lp| {
            let mut s = shared.borrow_mut();
            if s.accepting && s.acceptor.is_none() {
                s.accepting = false;
                let _ = lp.set_accepting(s.listener.0, false);
            }
        });
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

struct Connecting {
    tcp: Option<Tcp>,
    outcome: OutcomeCell<()>,
}

/// The future of [`TcpStream::connect`]. Dropped before it connects, it closes the
/// half-made connection.
pub struct Connect {
    addr: SocketAddr,
    asked: Option<(Rc<Reactor>, Rc<RefCell<Connecting>>)>,
    /// What it told the loop it waits on, while it waits.
    note: Option<Note>,
}

impl Future for Connect {
    type Output = io::Result<TcpStream>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let r = reactor::current("TcpStream::connect")?;
        let addr = self.addr;
        let connecting = self
            .asked
            .get_or_insert_with(|| {
                let c = Rc::new(RefCell::new(Connecting {
                    tcp: None,
                    outcome: outcome(),
                }));
                let asked = c.clone();
                r.ask(move |lp| start_connect(lp, addr, &asked));
                (r.clone(), c)
            })
            .1
            .clone();
        let cell = connecting.borrow().outcome.clone();
        let result = match take(&cell, cx) {
            Poll::Ready(result) => result,
            Poll::Pending => {
                self.note = Some(r.waits_on(Waiting::Connect(Box::new(addr))));
                return Poll::Pending;
            }
        };
        let tcp = connecting.borrow_mut().tcp.take();
        Poll::Ready(match (result, tcp) {
            (Ok(()), Some(tcp)) => Ok(TcpStream::new(tcp, Some(addr), r)),
            (result, tcp) => {
                if let Some(tcp) = tcp {
                    // A failed connect leaves the stream open (as libuv): close it.
                    r.ask(move |lp| {
                        lp.close(tcp);
                    });
                }
                Err(result.err().unwrap_or_else(|| {
                    io::Error::other(format!("connecting to {addr}: no stream was made"))
                }))
            }
        })
    }
}

fn start_connect(lp: &mut Loop, addr: SocketAddr, c: &Rc<RefCell<Connecting>>) {
    let done = c.borrow().outcome.clone();
    let cb_done = done.clone();
    let connected = lp.tcp_connect(addr, move |lp, _, r| {
        fill(&cb_done, r);
        lp.task_checkpoint();
    });
    match connected {
        Ok(tcp) => {
            lp.unref_handle(tcp);
            c.borrow_mut().tcp = Some(tcp);
        }
        Err(e) => fill(&done, Err(e)),
    }
}

impl Drop for Connect {
    fn drop(&mut self) {
        if let Some((r, c)) = self.asked.take() {
            // Finished: the stream took the handle. Not yet: close what was started.
            r.ask(move |lp| {
                if let Some(tcp) = c.borrow_mut().tcp.take() {
                    lp.close(tcp);
                }
            });
        }
    }
}
