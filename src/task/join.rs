//! `JoinHandle`: the other end of a spawned task. Await it for the task's output, or
//! `abort()` it.
//!
//! The task and its handle share one small cell. The task writes its output there when
//! it finishes and wakes whoever awaits the handle; the loop writes the failure there
//! when the task panics or is dropped before finishing (abort, close). A dropped
//! `JoinHandle` detaches: the task runs on.

use super::reactor::{self, Note, Reactor, Waiting};
use crate::handle::{Handle, Task};
use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Why a task produced no output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JoinError {
    /// It panicked (the panic's message). The loop went on.
    Panicked(String),
    /// It was dropped before it finished: `abort()`, or `close` on its handle.
    Aborted,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(msg) => write!(f, "the task panicked: {msg}"),
            JoinError::Aborted => f.write_str("the task was aborted before it finished"),
        }
    }
}

impl std::error::Error for JoinError {}

impl From<JoinError> for io::Error {
    fn from(e: JoinError) -> io::Error {
        io::Error::other(e)
    }
}

/// How a task ended without output; the panic payload is kept so `block_on` can
/// resume the very panic of its future.
pub(crate) enum Failure {
    Panicked(Box<dyn Any + Send>),
    Aborted,
}

pub(crate) struct JoinCell<T> {
    /// `Handle::NONE` until the loop has made the task (see `task::spawn`).
    task: Handle,
    result: Option<Result<T, Failure>>,
    /// The outcome was set (it may have been taken since).
    ended: bool,
    waiter: Option<Waker>,
}

pub(crate) type SharedCell<T> = Rc<RefCell<JoinCell<T>>>;

pub(crate) fn new_cell<T>() -> SharedCell<T> {
    Rc::new(RefCell::new(JoinCell {
        task: Handle::NONE,
        result: None,
        ended: false,
        waiter: None,
    }))
}

/// The loop made the task: the handle goes into its cell (for `JoinHandle::task`).
pub(crate) fn set_task<T>(cell: &SharedCell<T>, h: Handle) {
    cell.borrow_mut().task = h;
}

/// The task's outcome into its cell (the first one counts), and a wake for the awaiter.
fn finish<T>(cell: &RefCell<JoinCell<T>>, outcome: Result<T, Failure>) {
    let mut c = cell.borrow_mut();
    if !c.ended {
        c.ended = true;
        c.result = Some(outcome);
    }
    let waiter = c.waiter.take();
    drop(c);
    if let Some(w) = waiter {
        w.wake();
    }
}

/// A spawned future as the executor keeps it: its type is erased, but its own impl still
/// knows the type of its `JoinHandle`'s cell, where its output goes. So the executor can
/// box the user's future as it is: a wrapper future holding it would need a second box
/// (a field of a pinned struct cannot be polled without `unsafe` pin projection), and
/// an `async` block around it would hold it twice (rustc keeps the captured future and
/// the awaited one apart).
pub(crate) trait Job {
    /// Poll; when it finishes, hand the output to `cell`.
    fn poll_job(self: Pin<&mut Self>, cx: &mut Context<'_>, cell: &Rc<dyn Any>) -> Poll<()>;
    /// It ended without output (it panicked, or is being dropped unfinished).
    fn fail(&self, cell: &dyn Any, why: Failure);
}

impl<F: Future> Job for F
where
    F::Output: 'static,
{
    fn poll_job(self: Pin<&mut Self>, cx: &mut Context<'_>, cell: &Rc<dyn Any>) -> Poll<()> {
        match self.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(out) => {
                if let Some(cell) = (**cell).downcast_ref::<RefCell<JoinCell<F::Output>>>() {
                    finish(cell, Ok(out));
                }
                Poll::Ready(())
            }
        }
    }

    fn fail(&self, cell: &dyn Any, why: Failure) {
        if let Some(cell) = cell.downcast_ref::<RefCell<JoinCell<F::Output>>>() {
            finish(cell, Err(why));
        }
    }
}

/// The output of a spawned task, as a future; `abort()` cancels the task.
pub struct JoinHandle<T> {
    cell: SharedCell<T>,
    reactor: Rc<Reactor>,
    /// What it told the loop it waits on, while it waits.
    note: Option<Note>,
}

impl<T> JoinHandle<T> {
    pub(crate) fn new(cell: SharedCell<T>, reactor: Rc<Reactor>) -> JoinHandle<T> {
        JoinHandle {
            cell,
            reactor,
            note: None,
        }
    }

    /// The task's handle, for `unref_handle`, `close`, `handles()`. A task spawned with
    /// `task::spawn` gets it right after the spawning task's poll; `None` before.
    pub fn task(&self) -> Option<Task> {
        let h = self.cell.borrow().task;
        (h != Handle::NONE).then_some(Task(h))
    }

    /// Whether the task has ended (finished, panicked or aborted).
    pub fn is_finished(&self) -> bool {
        self.cell.borrow().ended
    }
}

impl<T: 'static> JoinHandle<T> {
    /// Drop the task at its next suspension point: at once if it is waiting, right after
    /// its poll if it is running (it cannot be stopped in the middle of one). Its
    /// `JoinHandle` then gives `Err(JoinError::Aborted)`; a task that already ended is
    /// not touched. The loop acts on it in its next tasks phase, or right after the
    /// poll of the task that calls this.
    pub fn abort(&self) {
        let cell = self.cell.clone();
        self.reactor.ask(move |lp| {
            let h = cell.borrow().task;
            lp.close(Task(h));
        });
    }
}

impl<T> JoinHandle<T> {
    /// Take the result if the task has ended (the panic as a payload, for `block_on`).
    pub(crate) fn take_result(&self) -> Option<Result<T, Failure>> {
        self.cell.borrow_mut().result.take()
    }
}

impl<T> From<&JoinHandle<T>> for Handle {
    fn from(j: &JoinHandle<T>) -> Handle {
        j.cell.borrow().task
    }
}

impl<T> From<JoinHandle<T>> for Handle {
    fn from(j: JoinHandle<T>) -> Handle {
        Handle::from(&j)
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut c = self.cell.borrow_mut();
        if let Some(result) = c.result.take() {
            drop(c);
            return Poll::Ready(result.map_err(|f| match f {
                Failure::Panicked(p) => JoinError::Panicked(crate::pool::panic_message(&*p)),
                Failure::Aborted => JoinError::Aborted,
            }));
        }
        reactor::store_waker(&mut c.waiter, cx);
        let task = c.task;
        drop(c);
        // Awaiting a handle needs no loop, only its cell; inside a task it is recorded.
        if let Ok(r) = reactor::current("JoinHandle") {
            self.note = Some(r.waits_on(Waiting::Join(task)));
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinHandle({})", self.cell.borrow().task)
    }
}
