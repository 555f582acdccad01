//! How finished work comes back: a worker sends a `Completion` on the done channel and
//! writes a byte to the self-pipe; the poll wakes, and the loop drains the channel and
//! runs each `done` on the loop thread.

use super::{AnyResult, WorkError};
use crate::event_loop::Loop;
use crate::handle::{Handle, HandleKind, Work};
use crate::metrics::Site;
use std::time::{Duration, Instant};

/// A finished job, sent from its worker to the loop.
pub(super) struct Completion {
    pub handle: Handle,
    pub result: Result<AnyResult, WorkError>,
    /// Stamped by the worker, for the loop's metrics: time queued, time running, and
    /// when it finished (the start of the wake the loop measures).
    pub waited: Duration,
    pub ran: Duration,
    pub finished: Instant,
}

impl Loop {
    /// After a wake: every finished job's `done`, on the loop thread. Returns how many.
    pub(crate) fn run_pool_completions(&mut self) -> usize {
        let mut n = 0;
        loop {
            let Some(c) = self.pool.as_ref().and_then(|p| p.done.try_recv().ok()) else {
                break;
            };
            n += 1;
            // Counted before the callback runs: a panicking `done` is still a completion.
            self.counters.completions += 1;
            if self.handles.get(c.handle).is_none_or(|s| s.is_closing()) {
                self.meters.pool_done(c.waited, c.ran, None);
                continue; // closed while it ran: the result has no one to go to
            }
            if let Some(crate::event_loop::State::Work(mut ws)) = self.handles.remove(c.handle) {
                if let Some(done) = ws.done.take() {
                    // The wake ends as `done` starts: one clock read, also the start
                    // of the callback's own time.
                    let at = self.meters.on().then(Instant::now);
                    let wake = at.map(|at| at.saturating_duration_since(c.finished));
                    self.meters.pool_done(c.waited, c.ran, wake);
                    if let Some(at) = at {
                        self.meters.read_at(at);
                    }
                    let (h, result) = (c.handle, c.result);
                    let site = Site::of(HandleKind::Work, h);
                    self.timed(
                        site,
                        |_| format!("work {h} done"),
                        |lp| done(lp, Work(h), result),
                    );
                }
            }
        }
        n
    }
}
