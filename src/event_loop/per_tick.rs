//! Prepare, check and idle handles: a callback that runs once in *every* tick, at a fixed
//! place in it (libuv's "loop watchers", `src/unix/loop-watcher.c`).
//!
//! ```text
//!   pending ─► idle ─► prepare ─► poll ─► check: immediates, then check handles ─► close ─► timers
//! ```
//!
//! - **prepare** runs right before the poll: the last moment to act before the loop may
//!   sleep (flush a batch of writes, make a note of the time).
//! - **check** runs right after the poll's callbacks: see what the I/O of this tick did.
//!   Immediates run in the same phase, first; the check handles see what they left.
//! - **idle** runs before prepare, and while one is active the poll does not block (its
//!   own rule in the trace, `N idle`): work done a slice per tick, with I/O served in
//!   between. Despite the name, it runs in every tick, not when the loop is idle.
//!
//! Each is active and ref'd from the start and holds the loop until `close`. An unref'd
//! idle handle still keeps the poll from blocking while something else holds the loop,
//! as in libuv. Handles of one kind run in the order they were made (libuv runs the
//! newest first); one made during its own phase first runs in the next tick.

use super::{Loop, State};
use crate::handle::{Check, Handle, HandleKind, Idle, Prepare};
use crate::metrics::Site;
use crate::watchdog::Phase;

type OnTick = Box<dyn FnMut(&mut Loop, Handle)>;

pub(crate) struct WatcherState {
    /// `None` only while it runs (taken out, see handle.rs).
    callback: Option<OnTick>,
}

/// The live watchers of each kind, in the order they were made.
#[derive(Default)]
pub(crate) struct PerTick {
    idle: Vec<Handle>,
    prepare: Vec<Handle>,
    check: Vec<Handle>,
}

impl PerTick {
    fn list(&mut self, kind: HandleKind) -> Option<&mut Vec<Handle>> {
        match kind {
            HandleKind::Idle => Some(&mut self.idle),
            HandleKind::Prepare => Some(&mut self.prepare),
            HandleKind::Check => Some(&mut self.check),
            _ => None,
        }
    }

    /// Idle handles that keep the poll from blocking.
    pub fn idle_count(&self) -> usize {
        self.idle.len()
    }
}

impl Loop {
    /// Run `cb` in every tick, right before the poll (libuv's `uv_prepare_t`), until
    /// `close`. Active and ref'd: it holds the loop.
    pub fn prepare(&mut self, mut cb: impl FnMut(&mut Loop, Prepare) + 'static) -> Prepare {
        Prepare(self.start_watcher(
            HandleKind::Prepare,
            Box::new(move |lp, h| cb(lp, Prepare(h))),
        ))
    }

    /// Run `cb` in every tick, right after the poll and the tick's immediates (libuv's
    /// `uv_check_t`), until `close`. Active and ref'd: it holds the loop.
    pub fn check(&mut self, mut cb: impl FnMut(&mut Loop, Check) + 'static) -> Check {
        Check(self.start_watcher(HandleKind::Check, Box::new(move |lp, h| cb(lp, Check(h)))))
    }

    /// Run `cb` in every tick, before prepare, and poll without blocking while it lives
    /// (libuv's `uv_idle_t`): the loop spins, serving I/O between calls, until `close`.
    /// Active and ref'd: it holds the loop.
    pub fn idle(&mut self, mut cb: impl FnMut(&mut Loop, Idle) + 'static) -> Idle {
        Idle(self.start_watcher(HandleKind::Idle, Box::new(move |lp, h| cb(lp, Idle(h)))))
    }

    fn start_watcher(&mut self, kind: HandleKind, cb: OnTick) -> Handle {
        let state = State::Watcher(WatcherState { callback: Some(cb) });
        let h = self.handles.insert(kind, state, true, true);
        if let Some(list) = self.per_tick.list(kind) {
            list.push(h);
        }
        h
    }

    /// close(): it runs no more, from this moment.
    pub(crate) fn stop_watcher(&mut self, h: Handle, kind: HandleKind) {
        if let Some(list) = self.per_tick.list(kind) {
            list.retain(|&w| w != h);
        }
    }

    /// Before prepare: the idle handles.
    pub(super) fn run_idle(&mut self) {
        self.enter(Phase::Prepare);
        let ran = self.run_watchers(HandleKind::Idle);
        self.tracer.per_tick(HandleKind::Idle, ran);
    }

    /// Right before the poll timeout is chosen: the prepare handles.
    pub(super) fn run_prepare(&mut self) {
        self.enter(Phase::Prepare);
        let ran = self.run_watchers(HandleKind::Prepare);
        self.tracer.per_tick(HandleKind::Prepare, ran);
    }

    /// In the check phase, after the immediates: the check handles.
    pub(super) fn run_check_handles(&mut self) {
        self.enter(Phase::Check);
        let ran = self.run_watchers(HandleKind::Check);
        self.tracer.per_tick(HandleKind::Check, ran);
    }

    /// One call of each watcher of `kind` that was live when the phase began and is not
    /// closed by the time its turn comes. Returns how many ran.
    fn run_watchers(&mut self, kind: HandleKind) -> usize {
        let batch = self
            .per_tick
            .list(kind)
            .map(|l| l.clone())
            .unwrap_or_default();
        let mut ran = 0;
        for h in batch {
            // Closed by an earlier callback of this batch: its slot lives until the close
            // phase, but it runs no more.
            if self.handles.get(h).is_none_or(|s| s.is_closing()) {
                continue;
            }
            let Some(State::Watcher(w)) = self.handles.state_mut(h) else {
                continue;
            };
            let Some(cb) = w.callback.take() else {
                continue;
            };
            ran += 1;
            let what = move |_: &Loop| format!("{kind} {h}");
            self.timed(Site::of(kind, h), what, |lp| {
                lp.call_taken(
                    cb,
                    |lp, cb| cb(lp, h),
                    |lp, cb| {
                        if let Some(State::Watcher(w)) = lp.handles.state_mut(h) {
                            w.callback = Some(cb);
                        }
                    },
                )
            });
        }
        ran
    }
}
