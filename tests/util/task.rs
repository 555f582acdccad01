//! Helpers for the task tests (`tests/task.rs`, `tests/task_leaves.rs`), included with
//! `#[path]` so the shared `tests/util` module stays as it is.

use looplab::{HandleInfo, HandleKind, Loop, Timer};
use std::time::Duration;

/// Long enough for a loaded machine; a hang fails here instead of never.
pub const GUARD: Duration = Duration::from_secs(20);

/// Fail the test instead of hanging if the loop still waits after `GUARD`; the timer is
/// unref'd (it never holds the loop) and returned, so checks can leave it out.
pub fn fail_after(lp: &mut Loop, limit: Duration) -> Timer {
    let t = lp.set_timeout(limit, move |lp, _| {
        panic!("still waiting after {limit:?}: {}", lp.explain_alive())
    });
    lp.unref_handle(t);
    t
}

/// Every handle but the guard timer.
pub fn left(lp: &Loop, guard: Timer) -> Vec<HandleInfo> {
    let guard: looplab::Handle = guard.into();
    lp.handles()
        .into_iter()
        .filter(|i| i.handle != guard)
        .collect()
}

pub fn kinds(lp: &Loop, guard: Timer, kind: HandleKind) -> Vec<HandleInfo> {
    left(lp, guard)
        .into_iter()
        .filter(|i| i.kind == kind)
        .collect()
}
