//! The executor: tasks are handles, and ready tasks are polled in the tasks phase.
//!
//! A task is a future boxed in a handle slot (`HandleKind::Task`): ref'd by default,
//! so it holds the loop while it lives; `unref_handle` lets it run without holding it;
//! `close` drops it. It is polled only when its waker says so, in the **tasks phase**,
//! which comes right after the poll phase's callbacks (they are what wakes most tasks:
//! a socket became readable, a timer fired) and before check:
//!
//! ```text
//!   poll ─► I/O callbacks, self-pipe, signals   (wakers called here queue their task)
//!   tasks ─► act on asks made outside a poll; poll each task that was ready when the
//!            phase began; after each poll, act on what it asked (arm, read, write...)
//!   check ─► immediates
//! ```
//!
//! Tasks woken during the phase wait for the next tick (the poll timeout is then 0):
//! a task that wakes itself in every poll cannot starve I/O, the same rule as
//! immediates. A task's panic is caught around its poll: it ends that task (its
//! `JoinHandle` gets the panic) and the loop goes on.
//!
//! **Checkpoints.** After an event that told a task's stream it is readable, and at the
//! end of the task layer's other I/O callbacks (an accept, a connect, a drained write),
//! the loop runs `task_checkpoint`: the tasks they woke are polled there and then, still
//! in the poll phase, while the stream's state is in the cache and before the loop
//! looks at the next event. (For a read it runs once the event's dispatch has returned,
//! from the poll phase's own loop: see `Loop::dispatch`.) Only wakes caused by I/O are
//! polled at a checkpoint; the rest (timers, the pool, a task waking itself) wait for
//! the tasks phase. A tasks
//! phase alone makes a second pass over every connection's state each tick; in the echo
//! benchmark at 1000 connections the checkpoint took a third of the L1 misses per round
//! trip away (cachegrind: 31.8 to 20.8), and the echo leaves before the next read.

mod spawn;

use super::cause::{Cause, Woke};
use super::join::{Failure, Job};
use super::reactor::{self, Ask, Reactor, Waiting};
use super::waker::{Ready, ReadyList, TaskWaker, Via};
use crate::event_loop::{Loop, State};
use crate::handle::Handle;
use crate::sys::selfpipe::SelfPipe;
use crate::watchdog::Phase;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// How a task's future ended (the outcome itself is in its `JoinHandle`'s cell).
pub(crate) enum Ended {
    Finished,
    Panicked,
}

/// A task, in its handle slot. In C's order: what every poll reads or writes (the
/// future, and the notes it leaves) comes first, in the slot's first cache line; the
/// rest is read by address only (the waker), on a wake from elsewhere (its flags), or
/// when the task ends (its cell), so a poll touches one line of the slot, not two.
#[repr(C)]
pub(crate) struct TaskState {
    /// The user's future, boxed as it is; `None` once it ended or `close` dropped it.
    future: Option<Pin<Box<dyn Job>>>,
    /// What its leaf futures said they wait on in its last poll: the first, and how
    /// many more.
    note: Option<Waiting>,
    more_notes: u16,
    /// The one `Waker` every poll gets, made from `shared` at spawn: `will_wake` holds
    /// across polls, and a poll costs no reference count (a clone and a drop of the
    /// `Arc` per poll were two locked instructions).
    waker: Waker,
    /// The wake flag and ready list this task's waker reaches.
    shared: Arc<TaskWaker>,
    /// Its `JoinHandle`'s cell (only the future's `Job` impl knows its type).
    cell: Rc<dyn Any>,
}

/// The references a task holds to its own waker (`shared`, and the `waker` made from
/// it). If there are no others after a `Pending` poll, nothing can ever wake the task.
const OWN_WAKER_REFS: usize = 2;

impl TaskState {
    /// Prefetch the task's future (see `event_loop/warm.rs`): at most `lines` of it.
    pub(crate) fn prefetch_future(&self, lines: usize) {
        if let Some(future) = &self.future {
            crate::sys::prefetch::prefetch(&**future, lines);
        }
    }
}

/// The loop's part of running tasks. In C's order: what a checkpoint and a poll read
/// first (see `Loop`'s own order).
#[repr(C)]
pub(crate) struct Executor {
    pub reactor: Rc<Reactor>,
    pub(crate) ready: Arc<ReadyList>,
    /// A batch is being polled (a checkpoint must not start another inside it).
    in_batch: bool,
    pub polled: u64,
    /// Wakes that wait for the tasks phase (not caused by the event of a checkpoint).
    later: Vec<Ready>,
    /// The batch being polled (kept to reuse its allocation).
    batch: Vec<Ready>,
    pipe: Arc<SelfPipe>,
    /// The task `block_on` is waiting for, and whether it was found unwakeable.
    root: Option<Handle>,
    root_stuck: bool,
    /// The asks being acted on (kept to reuse its allocation).
    acting: Vec<Ask>,
    /// With the trace on: this tick's polls, for its "tasks:" line.
    traced: Vec<String>,
    traced_polls: u64,
    pub spawned: u64,
}

impl Executor {
    pub fn new(pipe: Arc<SelfPipe>) -> Executor {
        Executor {
            reactor: Reactor::new(),
            ready: Arc::default(),
            pipe,
            root: None,
            root_stuck: false,
            later: Vec::new(),
            batch: Vec::new(),
            in_batch: false,
            acting: Vec::new(),
            traced: Vec::new(),
            traced_polls: 0,
            spawned: 0,
            polled: 0,
        }
    }

    /// Tasks woken and asks queued: the poll phase must not sleep while there are any.
    pub fn runnable(&self) -> usize {
        self.ready.len() + self.later.len() + self.reactor.asks_waiting()
    }
}

impl Drop for Executor {
    /// Wakes of this loop's tasks still in the thread's local list go with it.
    fn drop(&mut self) {
        self.ready.forget_local();
    }
}

impl Loop {
    /// The tasks phase (see the module doc): the wakes that waited for it, then every
    /// task woken since; wakes during the phase wait for the next tick.
    pub(crate) fn run_tasks(&mut self) {
        self.enter(Phase::Tasks);
        self.act_on_asks();
        let mut batch = std::mem::take(&mut self.tasks.batch);
        batch.append(&mut self.tasks.later);
        self.tasks.ready.drain_into(&mut batch);
        self.poll_batch(batch);
        if self.tracer.enabled && self.tasks.traced_polls > 0 {
            let seen = std::mem::take(&mut self.tasks.traced);
            let polls = std::mem::take(&mut self.tasks.traced_polls);
            self.tracer.tasks(phase_line(polls, &seen));
        }
    }

    /// At the end of a task layer's I/O callback (a read, an accept, a connect): poll
    /// the tasks that callback woke, now, while their stream's state is in the cache.
    /// Node drains its microtasks after each callback for the same reason. Only wakes
    /// caused by I/O are polled here; every other wake (a timer, the pool, a task waking
    /// itself) waits for the tasks phase.
    pub(crate) fn task_checkpoint(&mut self) {
        self.task_checkpoint_inlined();
    }

    /// `task_checkpoint`, inlined into the poll phase's loop (`Loop::poll`), where it
    /// runs for every read.
    #[inline(always)]
    pub(crate) fn task_checkpoint_inlined(&mut self) {
        if self.tasks.in_batch {
            return; // a callback run by an ask of a task being polled: the phase decides
        }
        let phase = self.watchdog_ref().map(|w| w.phase());
        if let Some((h, cause, via)) = self.tasks.ready.take_only() {
            // The usual checkpoint: the read just made woke its one reader. Taken alone,
            // no `Vec` moves between the ready list, the batch and the executor.
            if cause.by_io() {
                self.poll_alone(h, cause, via);
            } else {
                self.tasks.later.push((h, cause, via));
            }
        } else {
            self.checkpoint_batch();
        }
        if let Some(phase) = phase {
            self.enter(phase);
        }
    }

    /// `task_checkpoint` with several wakes (or some from another thread) to sort.
    #[inline(never)]
    fn checkpoint_batch(&mut self) {
        let mut woken = std::mem::take(&mut self.tasks.batch);
        self.tasks.ready.drain_into(&mut woken);
        if woken.is_empty() {
            self.tasks.batch = woken;
            return;
        }
        if woken.iter().any(|(_, cause, _)| !cause.by_io()) {
            let later = &mut self.tasks.later;
            woken.retain(|&(h, cause, via)| {
                let now = cause.by_io();
                if !now {
                    later.push((h, cause, via));
                }
                now
            });
        }
        self.poll_batch(woken);
    }

    /// Poll each task of `batch` once. The batch stays in the executor while it runs, so
    /// a panic escaping a poll (from a drop, say) leaves the rest queued for next time.
    fn poll_batch(&mut self, mut batch: Vec<Ready>) {
        if batch.is_empty() {
            self.tasks.batch = batch;
            return;
        }
        if let [(h, cause, via)] = batch[..] {
            batch.clear();
            self.tasks.batch = batch;
            self.poll_alone(h, cause, via);
            return;
        }
        // The guard keeps its own reference if it switched (no clone of the `Rc` here).
        let _entered = reactor::enter(&self.tasks.reactor);
        self.tasks.in_batch = true;
        self.call_taken(
            (batch, 0),
            |lp, (batch, next)| {
                while let Some(&(h, cause, via)) = batch.get(*next) {
                    *next += 1;
                    lp.poll_one(h, cause, via);
                }
            },
            |lp, (mut batch, next)| {
                lp.tasks.in_batch = false;
                // All polled, unless a panic cut the batch short: the rest go first next time.
                if next < batch.len() {
                    lp.tasks.later.extend(batch.drain(next..));
                }
                batch.clear();
                lp.tasks.batch = batch;
            },
        );
    }

    /// A batch of one: nothing is queued behind the task for a panic to leave behind.
    /// Inlined into the checkpoint, the read's path makes one call fewer.
    #[inline(always)]
    fn poll_alone(&mut self, h: Handle, cause: Woke, via: Via) {
        let _entered = reactor::enter(&self.tasks.reactor);
        self.tasks.in_batch = true;
        self.call_taken(
            (),
            |lp, ()| lp.poll_one(h, cause, via),
            |lp, ()| lp.tasks.in_batch = false,
        );
    }

    /// Poll `h` once (queued `via`), act on what it asked, and settle its handle.
    #[inline(always)]
    fn poll_one(&mut self, h: Handle, cause: Woke, via: Via) {
        let why = self.tracer.enabled.then(|| self.why_polled(h, cause));
        if self.watchdog_ref().is_some() {
            self.watch_task(h);
        }
        // What the poll and the acts on its asks wake, this task woke.
        let _cause = Cause::Task(h).enter();
        let outcome = if self.meters.on() || self.tracer.enabled {
            self.poll_timed(h, via)
        } else {
            // What `timed` does with both off, without its closure: `timed` calls that
            // from three places, so it was a call of its own, not inlined here. (`timed`
            // split into an inlined check and an out-of-line rest, for every caller, cost
            // the async echo 30 instructions per round trip more: callgrind, 1174 vs 1145.)
            self.poll_in_place(h, via)
        };
        let Some((outcome, stuck)) = outcome else {
            return; // ended or closed since it was woken
        };
        self.tasks.polled += 1;
        self.act_on_asks();
        if let Some(why) = why {
            self.trace_poll(h, &why, &outcome);
        }
        match outcome {
            Poll::Pending if stuck => self.report_stuck(h),
            Poll::Pending => {}
            Poll::Ready(_) => self.task_ended(h),
        }
    }

    // The rest of a poll, out of line: what runs only with the trace or the watchdog on,
    // or once per task. `poll_one` runs for every wake; kept to its usual path, it
    // spans fewer lines of the instruction cache (docs/benchmarks.md, step 12).

    #[cold]
    fn why_polled(&self, h: Handle, cause: Woke) -> String {
        cause.cause().describe(self, h)
    }

    #[cold]
    fn watch_task(&self, h: Handle) {
        if let Some(w) = self.watchdog_ref() {
            w.enter_task(h);
        }
    }

    #[cold]
    fn trace_poll(&mut self, h: Handle, why: &str, outcome: &Poll<Ended>) {
        self.tasks.traced_polls += 1;
        if self.tasks.traced.len() < TRACE_TASKS + 1 {
            self.tasks.traced.push(polled_line(h, why, outcome));
        }
    }

    #[inline(never)]
    fn task_ended(&mut self, h: Handle) {
        self.tasks.reactor.drop_notes();
        self.handles.remove(h);
        if self.tasks.root == Some(h) {
            self.stop();
        }
    }

    /// `poll_in_place` timed for the metrics or the trace; out of line, so the untimed
    /// poll is the only copy inlined into `poll_one`.
    #[inline(never)]
    fn poll_timed(&mut self, h: Handle, via: Via) -> Option<(Poll<Ended>, bool)> {
        let mut outcome = None;
        self.timed(
            crate::metrics::Site::of(crate::handle::HandleKind::Task, h),
            |_| format!("task {h} (one poll)"),
            |lp| outcome = lp.poll_in_place(h, via),
        );
        outcome
    }

    /// The poll itself: the future stays in its slot (it gets no `&mut Loop`, so it
    /// cannot reach the table); the flag of the way it was queued (`via`) is cleared
    /// first, so a wake during the poll queues the task again. After `Pending`, what the
    /// task now waits on is kept with it, and whether it kept its waker anywhere (the
    /// second value: stuck if not).
    #[inline(always)]
    fn poll_in_place(&mut self, h: Handle, via: Via) -> Option<(Poll<Ended>, bool)> {
        let reactor = &*self.tasks.reactor;
        let Some(State::Task(t)) = self.handles.state_mut(h) else {
            return None;
        };
        let future = t.future.as_mut()?;
        t.shared.unqueue(via);
        let _polling = reactor.polling_task(h, &t.waker);
        let mut cx = Context::from_waker(&t.waker);
        // The `Rc` itself, not what it points to: the pointer is on the slot's second
        // line, loaded only by a poll that finishes.
        let cell = &t.cell;
        // A panic ends this task, not the loop: it goes to the task's JoinHandle.
        let polled = catch_unwind(AssertUnwindSafe(|| future.as_mut().poll_job(&mut cx, cell)));
        match polled {
            Ok(Poll::Pending) => {
                let by_handle = reactor.take_notes(&mut t.note, &mut t.more_notes);
                // A leaf of this crate that says what it waits on has stored the waker
                // (or the task's handle) first: only a task that noted nothing (a
                // hand-written future) is counted. The count is in the `Arc`'s header, a
                // cache line of its own.
                let stuck = t.note.is_none() && !by_handle && kept_no_waker(&t.shared);
                Some((Poll::Pending, stuck))
            }
            Ok(Poll::Ready(())) => Some((Poll::Ready(end_task(t, None)), false)),
            Err(payload) => Some((Poll::Ready(end_task(t, Some(payload))), false)),
        }
    }

    /// A task that kept its waker nowhere can never run again (a hand-written future
    /// that forgot to store `cx.waker()`): say so in the trace, and stop it holding the
    /// loop (`block_on` reports it as an error).
    fn report_stuck(&mut self, h: Handle) {
        if !matches!(self.handles.state_mut(h), Some(State::Task(t)) if t.future.is_some()) {
            return; // closed by its own ask
        }
        self.tracer.note(format!(
            "task {h} returned Pending but kept no waker: nothing can wake it again"
        ));
        if self.tasks.root == Some(h) {
            self.tasks.root_stuck = true;
            self.stop();
        } else {
            self.handles.set_active(h, false);
        }
    }

    /// Run every op asked so far, oldest first (an op may ask for more).
    #[inline(always)]
    pub(crate) fn act_on_asks(&mut self) {
        // Most polls in a busy echo ask nothing: checked here, inlined, they skip the
        // call and the frame of the rest.
        if self.tasks.reactor.asks_waiting() > 0 {
            self.act_on_waiting_asks();
        }
    }

    /// The asks, once there are some. Kept out of line: with `#[inline]` alone, LLVM
    /// merged the check above back into this frame.
    #[inline(never)]
    fn act_on_waiting_asks(&mut self) {
        // Most polls ask one thing (a stream's flush): run it without the batch and its
        // guard, which have nothing else to keep if it panics.
        if let Some(ask) = self.tasks.reactor.take_only_ask() {
            ask.run(self);
        }
        while self.tasks.reactor.asks_waiting() > 0 {
            let mut batch = std::mem::take(&mut self.tasks.acting);
            self.tasks.reactor.take_asks(&mut batch);
            // Kept in the executor while the ops run: one that panics leaves the rest
            // to run next time, in order, before anything asked since.
            self.call_taken(
                (batch, 0),
                |lp, (batch, next)| {
                    while *next < batch.len() {
                        let ask = std::mem::replace(&mut batch[*next], Ask::Done);
                        *next += 1;
                        ask.run(lp);
                    }
                },
                |lp, (mut batch, next)| {
                    if next < batch.len() {
                        lp.tasks.reactor.put_back(batch.drain(next..));
                    }
                    batch.clear();
                    lp.tasks.acting = batch;
                },
            );
        }
    }
}

/// The task's future returned `Ready` (`panic: None`) or panicked: drop it, and give a
/// panic to its `JoinHandle`. Out of line: it runs once per task, not once per poll.
#[inline(never)]
fn end_task(t: &mut TaskState, panic: Option<Box<dyn Any + Send>>) -> Ended {
    let ended = match panic {
        None => Ended::Finished,
        Some(payload) => {
            if let Some(future) = t.future.as_mut() {
                future.fail(&*t.cell, Failure::Panicked(payload));
            }
            Ended::Panicked
        }
    };
    t.future = None;
    ended
}

/// Whether nothing but the task itself holds its waker, after a `Pending` poll. Asks
/// queued by the poll hold clones if they need one, so acting on them later cannot
/// change the answer.
fn kept_no_waker(shared: &Arc<TaskWaker>) -> bool {
    let refs = Arc::strong_count(shared);
    // Pairs with the Release of a waker clone's drop: a wake made before that drop is
    // then seen by `is_queued`, so a woken task is never taken for stuck.
    fence(Ordering::Acquire);
    refs <= OWN_WAKER_REFS && !shared.is_queued()
}

/// At most this many tasks are named on a trace line; the rest are counted.
const TRACE_TASKS: usize = 8;

/// "#4.1 woken by fd 9 readable", with how the poll ended if it did.
fn polled_line(h: Handle, why: &str, outcome: &Poll<Ended>) -> String {
    let end = match outcome {
        Poll::Pending => "",
        Poll::Ready(Ended::Finished) => " (finished)",
        Poll::Ready(Ended::Panicked) => " (panicked)",
    };
    format!("{h} by {why}{end}")
}

/// "polled 3 — #4.1 woken by fd 9 readable, #7.1 by timer #2.3, #2.1 by the pool".
fn phase_line(polled: u64, seen: &[String]) -> String {
    let mut shown: Vec<String> = seen.iter().take(TRACE_TASKS).cloned().collect();
    if let Some(first) = shown.first_mut() {
        *first = first.replacen(" by ", " woken by ", 1);
    }
    let named = shown.len() as u64;
    if polled > named {
        shown.push(format!("and {} more", polled - named));
    }
    format!("polled {polled} \u{2014} {}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    /// What a poll reads or writes of the task's slot (the state's tag, the future, the
    /// notes) lies in the slot's first cache line; the waker (read by address), its
    /// flags' `Arc` and the `JoinHandle`'s cell lie after it.
    #[test]
    fn a_poll_touches_one_line_of_the_slot() {
        let mut lp = Loop::new().expect("a loop");
        let join = lp.spawn(async {});
        let h: Handle = join.task().expect("a task, not yet polled").into();
        let Some(slot) = lp.handles.get(h) else {
            panic!("the task's slot is live");
        };
        let State::Task(t) = &slot.state else {
            panic!("the slot holds a task");
        };
        let base = slot as *const _ as usize;
        let end = |at: usize, size: usize| at + size - base;
        let hot = [
            ("the tag", end(&slot.state as *const _ as usize, 1)),
            (
                "future",
                end(
                    &t.future as *const _ as usize,
                    size_of::<Option<Pin<Box<dyn Job>>>>(),
                ),
            ),
            (
                "note",
                end(&t.note as *const _ as usize, size_of::<Option<Waiting>>()),
            ),
            ("more_notes", end(&t.more_notes as *const _ as usize, 2)),
        ];
        assert_eq!(base % 64, 0, "a slot starts a cache line");
        for (field, ends_at) in hot {
            assert!(ends_at <= 64, "{field} ends at byte {ends_at} of the slot");
        }
        for (field, at) in [
            ("waker", &t.waker as *const _ as usize),
            ("shared", &t.shared as *const _ as usize),
            ("cell", &t.cell as *const _ as usize),
        ] {
            assert!(at - base >= 64, "{field} is off the first line");
        }
    }
}
