//! The accept side of a task's listener, for any stream kind: the bounded backlog the
//! listener's callback fills, and the `accept` poll that empties it. `TcpListener`
//! (`task/net.rs`) and `UnixListener` (`task/pipe/unix.rs`) are thin shells over it.

use super::super::reactor::{self, Reactor};
use super::ACCEPT_BACKLOG;
use crate::event_loop::Loop;
use crate::handle::{Handle, Listener};
use crate::Stream;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// An accepted stream (already unref'd: its task holds the loop) and its peer, if an
/// IP one.
pub(crate) type Accepted<S> = io::Result<(S, Option<SocketAddr>)>;

/// What a listener's accept callback and its futures share.
pub(crate) struct Listen<S> {
    pub listener: Listener,
    /// Accepted and not yet taken by `accept`.
    backlog: VecDeque<Accepted<S>>,
    /// The loop watches the listening socket.
    accepting: bool,
    acceptor: Option<Waker>,
}

pub(crate) type SharedListen<S> = Rc<RefCell<Listen<S>>>;

/// The shared state of a listener about to be made (its handle is set once it is).
pub(crate) fn shared<S>() -> SharedListen<S> {
    Rc::new(RefCell::new(Listen {
        listener: Listener(Handle::NONE),
        backlog: VecDeque::new(),
        accepting: true,
        acceptor: None,
    }))
}

/// The listener's callback, on the loop: queue the connection, wake the acceptor. Past
/// `ACCEPT_BACKLOG` the loop stops watching and the kernel's backlog takes over.
pub(crate) fn on_connection<S: Stream>(lp: &mut Loop, shared: &SharedListen<S>, r: Accepted<S>) {
    if let Ok((conn, _)) = &r {
        lp.unref_handle(*conn);
    }
    let mut s = shared.borrow_mut();
    s.backlog.push_back(r);
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

/// The next accepted stream, or `Pending` with the waker stored (and the listener
/// watched again if a full backlog or a dropped `accept` had paused it).
pub(crate) fn poll_accept<S: Stream>(
    shared: &SharedListen<S>,
    r: &Reactor,
    cx: &Context<'_>,
) -> Poll<Accepted<S>> {
    let mut s = shared.borrow_mut();
    if let Some(next) = s.backlog.pop_front() {
        return Poll::Ready(next);
    }
    reactor::store_waker(&mut s.acceptor, cx);
    if !s.accepting {
        let shared = shared.clone();
        r.ask(move |lp| {
            let mut s = shared.borrow_mut();
            if !s.accepting {
                s.accepting = lp.set_accepting(s.listener.0, true).is_ok();
            }
        });
    }
    Poll::Pending
}

/// An accept dropped while waiting withdraws its interest: the loop stops watching the
/// listener until the next `accept`.
pub(crate) fn withdraw<S: Stream>(shared: &SharedListen<S>, r: &Reactor) {
    shared.borrow_mut().acceptor = None;
    let shared = shared.clone();
    r.ask(move |lp| {
        let mut s = shared.borrow_mut();
        if s.accepting && s.acceptor.is_none() {
            s.accepting = false;
            let _ = lp.set_accepting(s.listener.0, false);
        }
    });
}

/// The listener is dropped: close it and every connection nobody accepted.
pub(crate) fn close<S: Stream>(shared: &SharedListen<S>, r: &Reactor) {
    let shared = shared.clone();
    r.ask(move |lp| {
        let mut s = shared.borrow_mut();
        lp.close(s.listener);
        for (conn, _) in s.backlog.drain(..).flatten() {
            lp.close(conn);
        }
    });
}
