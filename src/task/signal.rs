//! Signals as a stream: `let mut sigint = task::signal(SIGINT); sigint.next().await`.
//!
//! The first `next()` asks the loop to watch the signal (`Loop::signal`, whose callback
//! runs on the loop thread after the handler wrote the number into the signal pipe).
//! Deliveries that arrive between two `next()` calls are counted, not queued, so a
//! signal storm costs one integer. Dropping the stream stops watching.

use super::reactor::{self, Note, Reactor, Waiting};
use crate::handle::Signal;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Shared {
    handle: Option<Signal>,
    /// Deliveries not yet returned by `next()`.
    arrived: u32,
    error: Option<io::Error>,
    waker: Option<Waker>,
}

/// The deliveries of one signal, one `next().await` at a time.
pub struct Signals {
    signum: i32,
    asked: Option<(Rc<Reactor>, Rc<RefCell<Shared>>)>,
}

/// Watch `signum` (e.g. `libc::SIGINT`). Watching starts at the first `next()`.
pub fn signal(signum: i32) -> Signals {
    Signals {
        signum,
        asked: None,
    }
}

impl Signals {
    /// The next delivery of the signal: `Ok(signum)`, or why it cannot be watched.
    /// (The name streams use; it returns a future, so it cannot be `Iterator::next`.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> NextSignal<'_> {
        NextSignal {
            signals: self,
            note: None,
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        if let Some((r, shared)) = self.asked.take() {
            r.ask(move |lp| {
                if let Some(h) = shared.borrow_mut().handle.take() {
                    lp.close(h);
                }
            });
        }
    }
}

/// Ask the loop to watch `signum`: each delivery is counted in the cell, and wakes
/// the waker stored there.
fn watch(r: &Reactor, signum: i32) -> Rc<RefCell<Shared>> {
    let shared = Rc::new(RefCell::new(Shared::default()));
    let s = shared.clone();
    r.ask(move |lp| {
        let counted = s.clone();
        let watched = lp.signal(signum, move |_, _, _| {
            let mut c = counted.borrow_mut();
            c.arrived = c.arrived.saturating_add(1);
            if let Some(w) = c.waker.take() {
                w.wake();
            }
        });
        let mut c = s.borrow_mut();
        match watched {
            Ok(h) => c.handle = Some(h),
            Err(e) => {
                c.error = Some(e);
                if let Some(w) = c.waker.take() {
                    w.wake();
                }
            }
        }
    });
    shared
}

/// The future of [`Signals::next`].
pub struct NextSignal<'a> {
    signals: &'a mut Signals,
    /// What it told the loop it waits on, while it waits.
    note: Option<Note>,
}

impl Future for NextSignal<'_> {
    type Output = io::Result<i32>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<i32>> {
        let r = reactor::current("Signals::next")?;
        let signum = self.signals.signum;
        let shared = self
            .signals
            .asked
            .get_or_insert_with(|| (r.clone(), watch(&r, signum)))
            .1
            .clone();
        let mut c = shared.borrow_mut();
        if let Some(e) = c.error.take() {
            return Poll::Ready(Err(e));
        }
        if c.arrived > 0 {
            c.arrived -= 1;
            drop(c);
            return Poll::Ready(Ok(signum));
        }
        reactor::store_waker(&mut c.waker, cx);
        drop(c);
        self.note = Some(r.waits_on(Waiting::Signal(signum)));
        Poll::Pending
    }
}
