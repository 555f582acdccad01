//! The waker of a task: how anything, on any thread, says "poll this task again".
//!
//! One `Arc<TaskWaker>` per task, made at spawn and handed to every poll, so
//! `Waker::will_wake` holds across polls and a leaf future can skip re-storing it.
//!
//! **The `scheduled` flag** is the whole protocol, the same one async handles use:
//! - a wake flips it from clear to set; only the wake that flipped it queues the task
//!   (10 000 wakes before the next poll queue it once);
//! - the loop clears it *before* it polls the task. A wake that lands during the poll
//!   finds it clear, queues the task again, and the task is polled once more: no wake
//!   is lost. Cleared after the poll instead, such a wake would find it still set, do
//!   nothing, and be forgotten (the classic lost wakeup).
//!
//! A wake on the loop thread only queues: the loop is not asleep (it is running the code
//! that woke), and its poll timeout is zero while tasks are ready. A wake from another
//! thread also writes the self-pipe, because the loop may be asleep in `epoll_wait`; the
//! flag coalesces those writes too.
//!
//! **The ready list** is a `Vec` behind a mutex, not a channel: the loop takes the whole
//! list at once (exactly "the tasks that were ready when the phase began"), and an
//! uncontended lock is two atomic operations. A crossbeam channel, tried first, cost
//! about 400 instructions per wake and poll in the echo benchmark (docs/benchmarks.md).

use super::cause::Cause;
use crate::handle::Handle;
use crate::sys::selfpipe::SelfPipe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Wake;
use std::thread::{self, ThreadId};

thread_local! {
    /// This thread's id, read once (`thread::current()` clones an `Arc` every call).
    static THIS_THREAD: ThreadId = thread::current().id();
}

/// What the ready list holds: the task, and what woke it (for the trace).
pub(crate) type Ready = (Handle, Cause);

/// Tasks woken and not yet taken by the loop, oldest first.
#[derive(Default)]
pub(crate) struct ReadyList(Mutex<Vec<Ready>>);

impl ReadyList {
    fn lock(&self) -> MutexGuard<'_, Vec<Ready>> {
        // Nothing panics while holding it (a push, a swap): poison carries no meaning.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Move every entry to the end of `out` (both keep their allocations).
    pub fn drain_into(&self, out: &mut Vec<Ready>) {
        out.append(&mut self.lock());
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

pub(crate) struct TaskWaker {
    task: Handle,
    scheduled: AtomicBool,
    ready: Arc<ReadyList>,
    pipe: Arc<SelfPipe>,
    /// A `Loop` is `!Send`: the thread that made it is its thread for good.
    loop_thread: ThreadId,
}

impl TaskWaker {
    pub fn new(task: Handle, ready: Arc<ReadyList>, pipe: Arc<SelfPipe>) -> Arc<TaskWaker> {
        Arc::new(TaskWaker {
            task,
            scheduled: AtomicBool::new(false),
            ready,
            pipe,
            loop_thread: THIS_THREAD.with(|t| *t),
        })
    }

    /// Called by the loop just before polling: from now on a wake queues the task again.
    /// AcqRel: pairs with the waker's swap, so what the waker wrote is seen by the poll.
    pub fn unschedule(&self) {
        self.scheduled.swap(false, Ordering::AcqRel);
    }

    /// Whether a wake is queued that the loop has not taken yet.
    pub fn is_scheduled(&self) -> bool {
        self.scheduled.load(Ordering::Acquire)
    }

    fn schedule(&self, cause: Cause) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return; // already queued: this wake coalesces into that one
        }
        let on_loop_thread = THIS_THREAD.with(|t| *t == self.loop_thread);
        let cause = if on_loop_thread {
            cause
        } else {
            Cause::OtherThread
        };
        self.ready.lock().push((self.task, cause));
        if !on_loop_thread {
            // A full pipe is a wake already pending; any other error means the loop is gone.
            let _ = self.pipe.wake();
        }
    }

    /// The first poll of a new task.
    pub fn schedule_spawned(&self) {
        self.schedule(Cause::Spawned);
    }
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.schedule(Cause::now());
    }
}
