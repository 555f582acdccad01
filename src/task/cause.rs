//! Wake causes: what the loop was dispatching when a task was woken, for the trace.
//!
//! A waker has no idea who calls it: a read callback, a timer, a pool completion or
//! another task all end in the same `wake()`. So the loop writes down what it is
//! dispatching in a thread-local `Cell` as it goes (one store per event, timer or
//! completion), and a wake on the loop thread copies that note into the ready queue
//! with the task. The trace then reads "#4.1 woken by fd 9 readable" instead of
//! "#4.1 woken". A wake from another thread cannot see the loop's note: it says
//! "another thread".

use crate::event_loop::Loop;
use crate::handle::Handle;
use std::cell::Cell;

/// What the loop was doing when a wake happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// Outside every phase: a spawn, or a wake from code around `run`.
    Outside,
    /// A readiness event for a socket handle.
    Io { handle: Handle, readable: bool },
    /// A timer callback.
    Timer(Handle),
    /// Pool completions drained from the self-pipe.
    Pool,
    /// An async handle's callback.
    Async(Handle),
    /// A signal delivered through the signal pipe.
    Signal,
    /// A deferred callback (a write result, a re-read) in the pending phase.
    Pending,
    /// An immediate in the check phase.
    Immediate,
    /// A close or an owed request callback in the close phase.
    Closing,
    /// Another task's poll (or what the loop did for it right after).
    Task(Handle),
    /// A thread that is not the loop's.
    OtherThread,
    /// The first poll of a new task.
    Spawned,
}

thread_local! {
    static DISPATCHING: Cell<Cause> = const { Cell::new(Cause::Outside) };
}

/// Restores the cause that was noted before, when the dispatch it covers ends.
pub(crate) struct Noted(Cause);

impl Drop for Noted {
    #[inline]
    fn drop(&mut self) {
        DISPATCHING.with(|c| c.set(self.0));
    }
}

impl Cause {
    /// Note `self` as what the loop dispatches until the returned guard drops.
    #[inline]
    pub(crate) fn enter(self) -> Noted {
        Noted(DISPATCHING.with(|c| c.replace(self)))
    }

    /// What the loop thread is dispatching now.
    #[inline]
    pub(crate) fn now() -> Cause {
        DISPATCHING.with(Cell::get)
    }

    /// In words, for the trace; `woken` is the task the cause woke.
    pub(crate) fn describe(self, lp: &Loop, woken: Handle) -> String {
        match self {
            Cause::Outside => "code outside the loop".into(),
            Cause::Io { handle, readable } => {
                let what = if readable { "readable" } else { "writable" };
                match lp.fd_of(handle) {
                    Some(fd) => format!("fd {fd} {what}"),
                    None => format!("{handle} {what}"),
                }
            }
            Cause::Timer(h) => format!("timer {h}"),
            Cause::Pool => "the pool".into(),
            Cause::Async(h) => format!("async {h}"),
            Cause::Signal => "a signal".into(),
            Cause::Pending => "a pending callback".into(),
            Cause::Immediate => "an immediate".into(),
            Cause::Closing => "a close".into(),
            Cause::Task(h) if h == woken => "itself".into(),
            Cause::Task(h) => format!("task {h}"),
            Cause::OtherThread => "another thread".into(),
            Cause::Spawned => "spawn".into(),
        }
    }
}
