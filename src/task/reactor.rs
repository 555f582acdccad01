//! How a leaf future talks to the loop: it asks, the loop acts.
//!
//! `Future::poll` gets a `Context`, and a `Context` carries a waker and nothing else: no
//! `&mut Loop`. So a leaf future (`sleep`, `read`, `accept`...) cannot arm a timer or
//! start reading itself. Instead, while a task is polled, the loop's `Reactor` is
//! reachable from a thread-local, and the future *asks*: it queues an op, a closure
//! that takes `&mut Loop` ("arm a 120 ms timer and wake me", "start reading this
//! stream", "clear that timer"). Right after the task's poll returns, the loop *acts*:
//! it runs each op with its ordinary callback API. The callbacks those ops register put
//! their results in small `Rc<RefCell<..>>` cells shared with the future, and wake the
//! waker stored there. The reactor is a system call interface: the future is user
//! space, the ops are the calls, the loop is the kernel.
//!
//! A leaf future also records what it waits on, for `explain_alive` ("tasks waiting on:
//! fd 9 readable, sleep 120 ms"); the record goes when the future finishes or is dropped.

use crate::event_loop::Loop;
use crate::handle::{Handle, Listener, Tcp};
use slab::Slab;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::time::Instant;

/// Something the loop does on a future's behalf, right after the poll that asked.
pub(crate) type Op = Box<dyn FnOnce(&mut Loop)>;

/// What a leaf future waits on, in words for `explain_alive`.
#[derive(Clone, Debug)]
pub(crate) enum Waiting {
    Sleep(Instant),
    Readable(Tcp),
    Writable(Tcp),
    Accept(Listener),
    Connect(std::net::SocketAddr),
    Shutdown(Tcp),
    Pool(&'static str),
    Signal(i32),
    Join(Handle),
    Listen(std::net::SocketAddr),
}

impl Waiting {
    pub(crate) fn describe(&self, lp: &Loop) -> String {
        let fd = |h: Handle| {
            lp.fd_of(h)
                .map_or_else(|| h.to_string(), |fd| format!("fd {fd}"))
        };
        match self {
            Waiting::Sleep(until) => {
                let left = until.saturating_duration_since(std::time::Instant::now());
                format!("sleep {} ms", left.as_millis())
            }
            Waiting::Readable(t) => format!("{} readable", fd(t.0)),
            Waiting::Writable(t) => format!("{} writable", fd(t.0)),
            Waiting::Accept(l) => format!("{} accept", fd(l.0)),
            Waiting::Connect(addr) => format!("connect to {addr}"),
            Waiting::Shutdown(t) => format!("{} shutdown", fd(t.0)),
            Waiting::Pool(what) => format!("the pool ({what})"),
            Waiting::Signal(n) => format!("signal {n}"),
            Waiting::Join(h) => format!("task {h}"),
            Waiting::Listen(addr) => format!("listen on {addr}"),
        }
    }
}

/// The per-loop context leaf futures reach while a task is polled.
pub(crate) struct Reactor {
    asks: RefCell<VecDeque<Op>>,
    /// The task being polled, if any.
    polling: Cell<Option<Handle>>,
    waits: RefCell<Slab<(Handle, Waiting)>>,
}

thread_local! {
    /// The reactor of the loop whose task is being polled on this thread.
    static CURRENT: RefCell<Option<Rc<Reactor>>> = const { RefCell::new(None) };
}

impl Reactor {
    pub fn new() -> Rc<Reactor> {
        Rc::new(Reactor {
            asks: RefCell::new(VecDeque::new()),
            polling: Cell::new(None),
            waits: RefCell::new(Slab::new()),
        })
    }

    /// Queue `op` for the loop: it runs right after the current poll returns (or, asked
    /// outside a poll, as the next tasks phase begins).
    pub fn ask(&self, op: impl FnOnce(&mut Loop) + 'static) {
        self.asks.borrow_mut().push_back(Box::new(op));
    }

    /// The oldest op not acted on yet. One at a time: an op may ask for more.
    pub fn next_ask(&self) -> Option<Op> {
        self.asks.borrow_mut().pop_front()
    }

    pub fn asks_waiting(&self) -> usize {
        self.asks.borrow().len()
    }

    /// The task being polled (`None` outside a poll).
    pub fn polling(&self) -> Option<Handle> {
        self.polling.get()
    }

    /// Record that the task being polled waits on `what`, until the record drops.
    pub fn wait(self: &Rc<Self>, what: Waiting) -> WaitRecord {
        let task = self.polling().unwrap_or(Handle::NONE);
        let key = self.waits.borrow_mut().insert((task, what));
        WaitRecord {
            reactor: self.clone(),
            key,
        }
    }

    /// What the tasks accepted by `include` wait on, in words.
    pub fn waits(&self, lp: &Loop, include: impl Fn(Handle) -> bool) -> Vec<String> {
        let waits = self.waits.borrow();
        waits
            .iter()
            .filter(|(_, (task, _))| include(*task))
            .map(|(_, (_, what))| what.describe(lp))
            .collect()
    }
}

/// One entry of "waiting on"; removed when dropped.
pub(crate) struct WaitRecord {
    reactor: Rc<Reactor>,
    key: usize,
}

impl WaitRecord {
    /// The future moved to another task (it was polled with that task's waker).
    pub fn retask(&self) {
        if let Some(task) = self.reactor.polling() {
            if let Some(w) = self.reactor.waits.borrow_mut().get_mut(self.key) {
                w.0 = task;
            }
        }
    }
}

impl Drop for WaitRecord {
    fn drop(&mut self) {
        let mut waits = self.reactor.waits.borrow_mut();
        if waits.contains(self.key) {
            waits.remove(self.key);
        }
    }
}

/// Keep `wait` up to date for a future that is about to return `Pending`.
pub(crate) fn waiting(wait: &mut Option<WaitRecord>, reactor: &Rc<Reactor>, what: Waiting) {
    match wait {
        Some(w) => w.retask(),
        None => *wait = Some(reactor.wait(what)),
    }
}

/// The reactor of the task being polled, or an error naming `what` was polled outside
/// one (a leaf future needs a looplab loop to act for it).
pub(crate) fn current(what: &str) -> io::Result<Rc<Reactor>> {
    CURRENT
        .with_borrow(|c| c.clone())
        .ok_or_else(|| outside(what))
}

pub(crate) fn outside(what: &str) -> io::Error {
    io::Error::other(format!(
        "{what} was polled outside a looplab task: run it with Loop::spawn or Loop::block_on"
    ))
}

/// While a task is polled: the thread-local points at its loop's reactor.
pub(crate) struct Entered {
    previous: Option<Rc<Reactor>>,
    previous_task: Option<Handle>,
}

/// Make `reactor` current for the poll of `task` (until the guard drops).
pub(crate) fn enter(reactor: &Rc<Reactor>, task: Handle) -> Entered {
    let previous_task = reactor.polling.replace(Some(task));
    let previous = CURRENT.with_borrow_mut(|c| c.replace(reactor.clone()));
    Entered {
        previous,
        previous_task,
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let mine = CURRENT.with_borrow_mut(|c| std::mem::replace(c, self.previous.take()));
        if let Some(r) = mine {
            r.polling.set(self.previous_task);
        }
    }
}

/// Store `cx`'s waker in `slot`, unless the one there wakes the same task already.
/// Replacing is what makes "only the latest waker is woken" true when a future moves
/// from one task to another between polls.
pub(crate) fn store_waker(slot: &mut Option<std::task::Waker>, cx: &std::task::Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}
