//! Cancel scopes for tasks: a nursery (`scope`), deadlines (`move_on_after`,
//! `fail_after`) and `shield`, in Trio's names, on Rust's one cancel: drop.
//!
//! ```no_run
//! use looplab::{task, Loop};
//! use std::time::Duration;
//!
//! let mut lp = Loop::new()?;
//! let out = lp.block_on(task::scope(|s| async move {
//!     s.spawn(async { task::sleep(Duration::from_millis(20)).await });
//!     s.spawn(async { task::sleep(Duration::from_millis(30)).await });
//!     Ok("both children done")            // returned only once they are
//! }))??;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! **The nursery** (`scope(|s| async move { .. })`): the block's future does not finish
//! before every child spawned with `s.spawn` has. A child that fails (returns `Err`,
//! or panics) cancels the rest: the block and its other children are dropped, and the
//! scope gives the first error. `s.cancel(reason)` does the same from inside. Dropping
//! the scope's future (an enclosing deadline, an aborted task) drops its children: no
//! task outlives the scope that started it.
//!
//! **Deadlines** (`src/task/scope/deadline.rs`): `move_on_after(d, fut)` gives `None`
//! when `d` passes first, `fail_after(d, fut)` an error of kind `TimedOut` ("deadline
//! 5 s exceeded"). Nested, the earlier wins, by construction: the enclosing one drops
//! everything inside it when it fires. One that cannot fire first (its deadline is
//! after the enclosing one's) arms no timer.
//!
//! **Shield** (`src/task/scope/shield.rs`): `shield(fut)` runs `fut` as its own task,
//! so no drop above it can stop it: the goodbye write of a server being shut down
//! completes. The nursery it was started in waits for it even when cancelled.

mod deadline;
mod shield;

pub use deadline::{current_deadline, fail_after, move_on_after, Deadline};
pub use shield::{shield, Shield};

use super::join::{JoinError, JoinHandle};
use crate::scope::Cancel;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// What the futures polled right now run under: the enclosing deadline and nursery.
/// A stack, since scopes nest within one poll; each frame lives for one poll.
#[derive(Clone, Default)]
struct Frame {
    deadline: Option<Instant>,
    nursery: Option<Weak<RefCell<Inner>>>,
}

thread_local! {
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

fn current() -> Frame {
    FRAMES.with(|f| f.borrow().last().cloned().unwrap_or_default())
}

/// Pops its frame when dropped, so a panicking poll leaves the stack as it found it.
struct Entered;

impl Drop for Entered {
    fn drop(&mut self) {
        FRAMES.with(|f| f.borrow_mut().pop());
    }
}

fn enter(frame: Frame) -> Entered {
    FRAMES.with(|f| f.borrow_mut().push(frame));
    Entered
}

/// A nursery's shared state: the block, its children and the scope's outcome.
#[derive(Default)]
struct Inner {
    children: Vec<JoinHandle<io::Result<()>>>,
    /// Shielded tasks started under this nursery: waited for even after a cancel.
    shielded: Vec<JoinHandle<()>>,
    /// The first failure, or the cancel's cause: once set, the block and the children
    /// are dropped.
    failed: Option<io::Error>,
    /// The nursery's task, to wake when a child is spawned from another task.
    waker: Option<Waker>,
    /// The deadline the block runs under, passed on to every child.
    deadline: Option<Instant>,
}

impl Inner {
    fn fail(&mut self, e: io::Error) {
        if self.failed.is_none() {
            let how = match crate::scope::cause_of(&e) {
                Some(_) => "canceled",
                None => "failed",
            };
            self.trace(format!("task scope {how}: {e}"));
            self.failed = Some(e);
        }
        for child in &self.children {
            child.abort();
        }
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

impl Inner {
    /// One trace line for a scope that stops: its cause, and what that drops.
    fn trace(&self, why: String) {
        let dropped = self.children.iter().filter(|c| !c.is_finished()).count();
        let shielded = self.shielded.iter().filter(|c| !c.is_finished()).count();
        if let Ok(r) = super::reactor::current("task::scope") {
            r.ask(move |lp| {
                lp.tracer.note(format!(
                    "{why}: {dropped} task(s) dropped, {shielded} shielded run on"
                ))
            });
        }
    }
}

/// The handle a nursery's block gets: spawn children, cancel them all.
#[derive(Clone)]
pub struct Nursery(Rc<RefCell<Inner>>);

impl Nursery {
    /// Start `fut` as a child task of this scope: the scope waits for it; if it fails,
    /// the scope cancels everything else; if the scope is cancelled, it is dropped. It
    /// runs under the scope's enclosing deadline (`current_deadline`). Panics outside
    /// a looplab task, as `task::spawn` does: there is no loop to run it on.
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = io::Result<()>> + 'static,
    {
        let frame = Frame {
            deadline: self.0.borrow().deadline,
            nursery: Some(Rc::downgrade(&self.0)),
        };
        let child = super::spawn(Framed {
            frame,
            fut: Box::pin(fut),
        });
        let mut inner = self.0.borrow_mut();
        if inner.failed.is_some() {
            child.abort(); // spawned after the cancel: dropped before its first poll
        }
        inner.children.push(child);
        if let Some(w) = inner.waker.take() {
            w.wake();
        }
    }

    /// Cancel the scope: its block and children are dropped; it gives an error of kind
    /// `ConnectionAborted` carrying "canceled: {reason}". Shielded work still finishes.
    pub fn cancel(&self, reason: impl Into<String>) {
        let cause = Cancel::Canceled(reason.into());
        self.0.borrow_mut().fail(cause.into());
    }

    /// Children not yet finished.
    pub fn children(&self) -> usize {
        self.0.borrow().children.len()
    }
}

/// A future polled under a frame: a nursery's child sees its deadline and nursery.
struct Framed<F: ?Sized> {
    frame: Frame,
    fut: Pin<Box<F>>,
}

impl<F: Future + ?Sized> Future for Framed<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _entered = enter(self.frame.clone());
        self.fut.as_mut().poll(cx)
    }
}

/// A nursery: run `body` with a [`Nursery`] to spawn children on; finish when the body
/// and every child have. The body's value, or the first error (a child's, the body's,
/// or the cancel's).
pub fn scope<B, Fut, T>(body: B) -> Scoped<Fut, T>
where
    B: FnOnce(Nursery) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let inner = Rc::new(RefCell::new(Inner::default()));
    Scoped {
        body: Some(Box::pin(body(Nursery(inner.clone())))),
        inner,
        value: None,
    }
}

/// The future of [`scope`].
pub struct Scoped<Fut, T> {
    body: Option<Pin<Box<Fut>>>,
    inner: Rc<RefCell<Inner>>,
    value: Option<T>,
}

impl<Fut, T> Scoped<Fut, T>
where
    Fut: Future<Output = io::Result<T>>,
{
    fn poll_body(&mut self, cx: &mut Context<'_>) {
        if self.inner.borrow().failed.is_some() {
            self.body = None; // dropped: cancels whatever it was waiting on
        }
        let Some(body) = self.body.as_mut() else {
            return;
        };
        let _entered = enter(Frame {
            deadline: self.inner.borrow().deadline,
            nursery: Some(Rc::downgrade(&self.inner)),
        });
        if let Poll::Ready(out) = body.as_mut().poll(cx) {
            self.body = None;
            match out {
                Ok(v) => self.value = Some(v),
                Err(e) => self.inner.borrow_mut().fail(e),
            }
        }
    }

    /// Poll every child and shielded task; drop the finished ones. A child's failure
    /// fails the scope.
    fn poll_children(&mut self, cx: &mut Context<'_>) {
        let mut inner = self.inner.borrow_mut();
        let mut failures = Vec::new();
        inner
            .children
            .retain_mut(|child| match Pin::new(child).poll(cx) {
                Poll::Pending => true,
                Poll::Ready(Ok(Ok(()))) | Poll::Ready(Err(JoinError::Aborted)) => false,
                Poll::Ready(Ok(Err(e))) => {
                    failures.push(e);
                    false
                }
                Poll::Ready(Err(e)) => {
                    failures.push(e.into());
                    false
                }
            });
        inner
            .shielded
            .retain_mut(|t| Pin::new(t).poll(cx).is_pending());
        for e in failures {
            inner.fail(e);
        }
    }
}

impl<Fut, T> Future for Scoped<Fut, T>
where
    Fut: Future<Output = io::Result<T>>,
{
    type Output = io::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        // Boxed body, Rc state: `Scoped` is Unpin whatever `Fut` is.
        let this = Pin::into_inner(self);
        {
            let mut inner = this.inner.borrow_mut();
            inner.waker = Some(cx.waker().clone());
            if this.body.is_some() && inner.deadline.is_none() {
                inner.deadline = current().deadline;
            }
        }
        this.poll_body(cx);
        // A child failing may drop the body: round again until both settle in this poll.
        this.poll_children(cx);
        this.poll_body(cx);
        let inner = this.inner.borrow();
        if this.body.is_some() || !inner.children.is_empty() || !inner.shielded.is_empty() {
            return Poll::Pending;
        }
        drop(inner);
        let failed = this.inner.borrow_mut().failed.take();
        match (failed, this.value.take()) {
            (Some(e), _) => Poll::Ready(Err(e)),
            (None, Some(v)) => Poll::Ready(Ok(v)),
            (None, None) => Poll::Ready(Err(io::Error::other("scope polled after it finished"))),
        }
    }
}

impl<Fut, T> Unpin for Scoped<Fut, T> {}

impl<Fut, T> Drop for Scoped<Fut, T> {
    /// No child outlives its scope: dropped unfinished (an enclosing deadline), the
    /// scope aborts its children. Shielded tasks run on, detached.
    fn drop(&mut self) {
        let inner = self.inner.borrow();
        let unfinished = self.body.is_some() || inner.children.iter().any(|c| !c.is_finished());
        if unfinished && inner.failed.is_none() {
            inner.trace("task scope dropped unfinished (an enclosing deadline or abort)".into());
        }
        for child in &inner.children {
            child.abort();
        }
    }
}
