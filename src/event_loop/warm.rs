//! Warming a batch of events before running its callbacks.
//!
//! An event's callback reads a chain of objects, each found through the one before: the
//! handle's slot, the stream's state, the task side of the stream, the task's slot, the
//! task's future. Under load each is a cache miss (the kernel's own work for a thousand
//! sockets evicts them between two events of one connection), and each miss waits for
//! the one before it. One event after the other, a batch pays every miss in turn.
//!
//! So before the callbacks run, the loop walks the batch level by level: every event's
//! slot, then every event's stream state, and so on down. The misses of one level are
//! independent of each other, so the CPU fetches them all at once, and the batch waits
//! once per level instead of once per object. The walk reads and changes nothing the
//! callbacks depend on; the futures at the bottom are only prefetched.

use super::{Loop, State};
use crate::handle::Handle;
use crate::stream::{StreamState, TaskSide};
use crate::sys::prefetch::prefetch;

/// Events warmed per batch: the rest are dispatched cold, by then long after the walk.
const WARM: usize = 8;

/// Lines of a task's future prefetched (the echo's is four).
const FUTURE_LINES: usize = 6;

impl Loop {
    /// Warm what the next `WARM` events from `from` on will touch (see the module doc);
    /// returns the index after the last one warmed.
    pub(super) fn warm_batch(&self, from: usize) -> usize {
        let events = self.events.get(from..).unwrap_or_default();
        let events = &events[..events.len().min(WARM)];
        if events.len() < 2 {
            return from + events.len(); // nothing to overlap
        }
        // Each level walks the batch's own length, not the arrays': over a fixed eight,
        // LLVM unrolled the levels eight times (eight copies of the task level alone, a
        // line of code each), and the poll phase's loop ran through 28 lines of code per
        // event instead of 17.
        let n = events.len();
        let mut streams: [Option<&StreamState>; WARM] = [None; WARM];
        for (stream, ev) in streams[..n].iter_mut().zip(events) {
            let h = self.handles.handle_of_token(ev.token);
            if let Some(State::Stream(s)) = self.handles.get(h).map(|slot| &slot.state) {
                *stream = Some(&**s);
            }
        }
        let mut sides: [Option<&dyn TaskSide>; WARM] = [None; WARM];
        for (side, stream) in sides[..n].iter_mut().zip(&streams[..n]) {
            *side = stream.and_then(StreamState::warm_reader);
        }
        let mut tasks: [Option<Handle>; WARM] = [None; WARM];
        for (task, side) in tasks[..n].iter_mut().zip(&sides[..n]) {
            *task = side.and_then(|s| s.waiting_task());
        }
        for task in tasks[..n].iter().flatten() {
            if let Some(slot) = self.handles.get(*task) {
                // The slot's first line: a poll reads nothing of the second (executor.rs).
                prefetch(slot, 1);
                if let State::Task(t) = &slot.state {
                    t.prefetch_future(FUTURE_LINES);
                }
            }
        }
        from + events.len()
    }
}
