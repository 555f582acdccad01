//! The waker of a task: how anything, on any thread, says "poll this task again".
//!
//! One `Arc<TaskWaker>` per task, made at spawn with the one `Waker` made from it that
//! every poll gets, so `Waker::will_wake` holds across polls and a leaf future can skip
//! re-storing it.
//!
//! **The `queued` flags** are the whole protocol, the same one async handles use:
//! - a wake flips a flag from clear to set; only the wake that flipped it queues the task
//!   (10 000 wakes before the next poll queue it once);
//! - the loop clears the flags *before* it polls the task. A wake that lands during the
//!   poll finds its flag clear, queues the task again, and the task is polled once more:
//!   no wake is lost. Cleared after the poll instead, such a wake would find it still
//!   set, do nothing, and be forgotten (the classic lost wakeup).
//!
//! There are two flags, one per kind of waker, and a third way in with none:
//! - `queued_here` is set by a wake on the loop thread and cleared by the loop: one
//!   thread only, so a plain load and store do, in program order.
//! - `queued_remote` is set by a wake from another thread with an atomic swap, and
//!   swapped back by the loop. Such a wake also writes the self-pipe, since the loop
//!   may be asleep in `epoll_wait`; the flag coalesces those writes too. (A wake on the
//!   loop thread only queues: the loop is running the code that woke, and its poll
//!   timeout is zero while tasks are ready.)
//! - A stream's read callback wakes the task that waits to read **directly**, by its
//!   handle, not through its `Waker` (`ReadyList::push_direct`): no flag, and no touch
//!   of this struct. The stream's reader slot is the flag: the wake takes the handle
//!   out of it, so it queues the task once until the task waits to read again.
//!
//! Each entry of the ready list says which way it came (`Via`), and the loop clears
//! only that way's flag before the poll. Under load nearly every wake is a read waking
//! its reader, and that wake and its poll then touch no line of this struct and run no
//! locked instruction. With one flag for all, each wake and poll ran two swaps, the
//! first on a line just fetched from memory: a locked instruction waits for its line
//! and for every store before it, and lets no later load start meanwhile. (A task woken
//! two ways before its poll is queued twice and polled once more: a spurious poll,
//! which every future allows.)
//!
//! **The ready list** has two halves. A wake on the loop thread (a read callback waking
//! its reader: nearly every wake under load) pushes onto a plain `Vec` in a
//! thread-local, marked with the loop it is for: no lock. A wake from another thread
//! pushes onto a `Vec` behind a mutex, and the loop takes that lock only when a flag
//! says the `Vec` is not empty. The loop takes both whole at once, its own thread's
//! first: exactly "the tasks that were ready when the phase began". A crossbeam
//! channel, tried first, cost about 400 instructions per wake and poll in the echo
//! benchmark; a mutex taken by every wake cost four locked instructions per round trip.

use super::cause::{Cause, Woke};
use crate::handle::Handle;
use crate::sys::selfpipe::SelfPipe;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Wake;
use std::thread::{self, ThreadId};

thread_local! {
    /// This thread's id, read once (`thread::current()` clones an `Arc` every call).
    static THIS_THREAD: ThreadId = thread::current().id();
    /// Wakes made on this thread for a loop of this thread, with the loop they are for
    /// (its `ReadyList::id`). One thread may run several loops, one at a time: a wake
    /// for another loop while these wait takes that loop's locked path instead.
    static LOCAL: RefCell<(usize, Vec<Ready>)> = const { RefCell::new((0, Vec::new())) };
}

/// What the ready list holds: the task, what woke it (for the trace), and which way.
pub(crate) type Ready = (Handle, Woke, Via);

/// Which way a task was queued, so the loop clears that way's flag before the poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    /// By a stream's read callback, with the task's handle: no flag to clear.
    Direct,
    /// By its `Waker`, on the loop thread (`queued_here`).
    Here,
    /// By its `Waker`, from another thread (`queued_remote`).
    Remote,
}

/// Tasks woken and not yet taken by the loop: those woken on the loop's thread (in
/// `LOCAL`), then those woken from other threads, each half oldest first.
#[derive(Default)]
pub(crate) struct ReadyList {
    remote: Mutex<Vec<Ready>>,
    /// `remote` may be non-empty: the loop locks it only then.
    remote_waiting: AtomicBool,
}

impl ReadyList {
    fn lock(&self) -> MutexGuard<'_, Vec<Ready>> {
        // Nothing panics while holding it (a push, a swap): poison carries no meaning.
        self.remote.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The tag of this list's entries in `LOCAL`: its address, unique while it lives
    /// (the executor removes its entries before the list can go, see `forget_local`).
    fn id(&self) -> usize {
        self as *const ReadyList as usize
    }

    #[inline]
    fn push_local(&self, ready: Ready) {
        let id = self.id();
        // Fails only while the thread exits (dropping its loops): the wake is moot then.
        let pushed = LOCAL.try_with(|l| {
            let (owner, list) = &mut *l.borrow_mut();
            let mine = *owner == id || list.is_empty();
            if mine {
                *owner = id;
                list.push(ready);
            }
            mine
        });
        if pushed == Ok(false) {
            self.push_remote(ready);
        }
    }

    /// Queue `task`, woken on the loop thread by what stood in for its waker (a stream's
    /// reader slot, see the module doc).
    #[inline]
    pub fn push_direct(&self, task: Handle, cause: Woke) {
        self.push_local((task, cause, Via::Direct));
    }

    fn push_remote(&self, ready: Ready) {
        self.lock().push(ready);
        self.remote_waiting.store(true, Ordering::Release);
    }

    /// Move every entry to the end of `out` (call on the loop thread).
    #[inline]
    pub fn drain_into(&self, out: &mut Vec<Ready>) {
        let id = self.id();
        LOCAL.with_borrow_mut(|(owner, list)| {
            if *owner == id {
                if out.is_empty() {
                    std::mem::swap(out, list); // the usual case: no copy
                } else {
                    out.append(list);
                }
            }
        });
        // Loaded first: a swap is a locked instruction, and it is almost always false.
        if self.remote_waiting.load(Ordering::Relaxed)
            && self.remote_waiting.swap(false, Ordering::Acquire)
        {
            out.append(&mut self.lock());
        }
    }

    /// The one entry, if it is the only one waiting (call on the loop thread): what a
    /// checkpoint finds after a read woke its reader, taken without moving a `Vec`.
    #[inline]
    pub fn take_only(&self) -> Option<Ready> {
        // Relaxed, as in `drain_into`: a wake from another thread racing with this load
        // is taken by the next drain.
        if self.remote_waiting.load(Ordering::Relaxed) {
            return None;
        }
        let id = self.id();
        LOCAL.with_borrow_mut(|(owner, list)| {
            if *owner == id && list.len() == 1 {
                list.pop()
            } else {
                None
            }
        })
    }

    /// How many are waiting (call on the loop thread).
    pub fn len(&self) -> usize {
        let id = self.id();
        let local = LOCAL.with_borrow(|(owner, list)| if *owner == id { list.len() } else { 0 });
        let remote = if self.remote_waiting.load(Ordering::Acquire) {
            self.lock().len()
        } else {
            0
        };
        local + remote
    }

    /// Drop this list's entries from this thread's `LOCAL` (its loop is going away).
    pub fn forget_local(&self) {
        let id = self.id();
        let _ = LOCAL.try_with(|l| {
            let (owner, list) = &mut *l.borrow_mut();
            if *owner == id {
                list.clear();
            }
        });
    }
}

/// Aligned to a cache line: a wake reads and writes its flag, and at 40 bytes after the
/// `Arc`'s counts, at malloc's 16-byte alignment, it straddled two lines three times in
/// four.
/// (Its counts are then a line apart; a poll does not touch them, see `poll_in_place`.)
#[repr(align(64))]
pub(crate) struct TaskWaker {
    task: Handle,
    /// Queued by a wake on the loop thread; read and written on that thread only.
    queued_here: AtomicBool,
    /// Queued by a wake from another thread.
    queued_remote: AtomicBool,
    ready: Arc<ReadyList>,
    pipe: Arc<SelfPipe>,
    /// A `Loop` is `!Send`: the thread that made it is its thread for good.
    loop_thread: ThreadId,
}

impl TaskWaker {
    pub fn new(task: Handle, ready: Arc<ReadyList>, pipe: Arc<SelfPipe>) -> Arc<TaskWaker> {
        Arc::new(TaskWaker {
            task,
            queued_here: AtomicBool::new(false),
            queued_remote: AtomicBool::new(false),
            ready,
            pipe,
            loop_thread: THIS_THREAD.with(|t| *t),
        })
    }

    /// Called by the loop just before polling the task for an entry that came `via`:
    /// from now on a wake that way queues the task again.
    #[inline]
    pub fn unqueue(&self, via: Via) {
        match via {
            Via::Direct => {}
            // Only this thread writes it: Relaxed is program order here.
            Via::Here => self.queued_here.store(false, Ordering::Relaxed),
            // AcqRel: pairs with the waker's swap, so what the waker wrote is seen by the poll.
            Via::Remote => {
                self.queued_remote.swap(false, Ordering::AcqRel);
            }
        }
    }

    /// Whether a wake is queued that the loop has not taken yet (call on the loop thread).
    #[inline]
    pub fn is_queued(&self) -> bool {
        self.queued_here.load(Ordering::Relaxed) || self.queued_remote.load(Ordering::Acquire)
    }

    /// Inlined into `wake_by_ref`: a wake on the loop thread (a read waking its reader)
    /// makes one call, not two; a wake from another thread goes out of line.
    #[inline(always)]
    fn schedule(&self, cause: Woke) {
        if THIS_THREAD.with(|t| *t == self.loop_thread) {
            if self.queued_here.load(Ordering::Relaxed) {
                return; // already queued: this wake coalesces into that one
            }
            self.queued_here.store(true, Ordering::Relaxed);
            self.ready.push_local((self.task, cause, Via::Here));
        } else {
            self.schedule_remote();
        }
    }

    #[inline(never)]
    fn schedule_remote(&self) {
        if self.queued_remote.swap(true, Ordering::AcqRel) {
            return; // already queued from some thread: this wake coalesces into that one
        }
        self.ready
            .push_remote((self.task, Cause::OtherThread.into(), Via::Remote));
        // A full pipe is a wake already pending; any other error means the loop is gone.
        let _ = self.pipe.wake();
    }

    /// The first poll of a new task.
    pub fn schedule_spawned(&self) {
        self.schedule(Cause::Spawned.into());
    }
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    #[inline]
    fn wake_by_ref(self: &Arc<Self>) {
        self.schedule(Cause::now_packed());
    }
}
