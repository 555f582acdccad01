//! The loop's side of pool work: `queue_work` boxes a typed job and its typed `done`,
//! starts the pool on first use, and holds the loop until `done` has run; `cancel` and
//! `close` withdraw a job a worker has not started.

use super::{withdraw, AnyResult, Job, Lane, Pool, WorkError, QUEUED};
use crate::event_loop::{Deferred, Loop};
use crate::handle::{Handle, HandleKind, Work};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub(super) type DoneFn = Box<dyn FnOnce(&mut Loop, Work, Result<AnyResult, WorkError>)>;

/// What a `Work` handle holds on the loop: its job's state (shared with the worker)
/// and its `done`, until it runs.
pub(crate) struct WorkState {
    job: Arc<AtomicU8>,
    pub(super) done: Option<DoneFn>,
}

impl Loop {
    /// Run `work` on the pool; `done` gets its result on the loop thread. Pending work
    /// keeps the loop alive, ref'd or not.
    pub fn queue_work<T: Send + 'static>(
        &mut self,
        work: impl FnOnce() -> T + Send + 'static,
        done: impl FnOnce(&mut Loop, Work, Result<T, WorkError>) + 'static,
    ) -> Work {
        self.queue_work_in(Lane::Fast, work, done)
    }

    /// Like `queue_work`, for work that may block a long time (a resolver, a slow disk):
    /// it may occupy at most (n+1)/2 of the n workers, so fast work always finds one.
    pub fn queue_slow_work<T: Send + 'static>(
        &mut self,
        work: impl FnOnce() -> T + Send + 'static,
        done: impl FnOnce(&mut Loop, Work, Result<T, WorkError>) + 'static,
    ) -> Work {
        self.queue_work_in(Lane::Slow, work, done)
    }

    pub(crate) fn queue_work_in<T: Send + 'static>(
        &mut self,
        lane: Lane,
        work: impl FnOnce() -> T + Send + 'static,
        done: impl FnOnce(&mut Loop, Work, Result<T, WorkError>) + 'static,
    ) -> Work {
        let job_state = Arc::new(AtomicU8::new(QUEUED));
        let done: DoneFn = Box::new(move |lp, w, r| {
            let typed = r.and_then(|any| {
                any.downcast::<T>()
                    .map(|v| *v)
                    .map_err(|_| WorkError::Panicked("result of an unexpected type".into()))
            });
            done(lp, w, typed)
        });
        let state = WorkState {
            job: job_state.clone(),
            done: Some(done),
        };
        let h = self.handles.insert(
            HandleKind::Work,
            crate::event_loop::State::Work(state),
            true,
            true,
        );
        if self.pool.is_none() {
            match Pool::start(self.pool_size, self.waker.clone()) {
                Ok(p) => self.pool = Some(p),
                Err(e) => {
                    self.finish_work_early(h, WorkError::NoPool(e.to_string()));
                    return Work(h);
                }
            }
        }
        let job = Job {
            handle: h,
            state: job_state,
            queued_at: Instant::now(),
            run: Box::new(move || Box::new(work()) as AnyResult),
        };
        let sent = self.pool.as_ref().is_some_and(|p| p.submit(lane, job));
        if let Some(p) = &self.pool {
            self.meters
                .pool_depth(p.stats.depth.load(Ordering::Relaxed));
        }
        if !sent {
            self.finish_work_early(h, WorkError::NoPool("the pool has shut down".into()));
        }
        Work(h)
    }

    /// Cancel work that no worker has started: true, and its `done` gets
    /// `Err(WorkError::Canceled)` in the next pending phase. Running or finished work
    /// cannot be cancelled: false.
    pub fn cancel(&mut self, w: Work) -> bool {
        let h: Handle = w.into();
        let Some(crate::event_loop::State::Work(ws)) = self.handles.state_mut(h) else {
            return false;
        };
        if !withdraw(self.pool.as_ref(), &ws.job) {
            return false;
        }
        self.finish_work_early(h, WorkError::Canceled);
        true
    }

    /// Deliver `why` to the work's `done` in the next pending phase (never synchronously).
    fn finish_work_early(&mut self, h: Handle, why: WorkError) {
        if let Some(crate::event_loop::State::Work(mut ws)) = self.handles.remove(h) {
            if let Some(done) = ws.done.take() {
                self.defer(h, move |lp| done(lp, Work(h), Err(why)));
            }
        }
    }

    /// close() on work: cancel it if still queued. Its `done` is not called, unless a
    /// scope's cancel is closing it: then `done` is owed, with the scope's cause.
    pub(crate) fn stop_work(&mut self, h: Handle) -> VecDeque<Deferred> {
        let mut owed: VecDeque<Deferred> = VecDeque::new();
        if let Some(crate::event_loop::State::Work(ws)) = self.handles.state_mut(h) {
            let done = ws.done.take();
            withdraw(self.pool.as_ref(), &ws.job);
            if let (Some(done), Some(cause)) = (done, crate::scope::canceling()) {
                owed.push_back(Box::new(move |lp| {
                    done(lp, Work(h), Err(WorkError::Scope(cause)))
                }));
            }
        }
        owed
    }
}
