//! Immediates: `set_immediate` and the check phase (Node's `setImmediate`, libuv's check
//! handles): run once, after this tick's poll.

use super::{Loop, State};
use crate::handle::{HandleKind, Immediate};
use crate::metrics::Site;
use crate::watchdog::Phase;

type OnImmediate = Box<dyn FnOnce(&mut Loop, Immediate)>;

pub(crate) struct ImmediateState(OnImmediate);

impl Loop {
    /// Queue `cb` for the check phase of this tick (after poll), or the next one if
    /// called from the check phase itself. `close` or `clear_immediate` cancels it.
    pub fn set_immediate(&mut self, cb: impl FnOnce(&mut Loop, Immediate) + 'static) -> Immediate {
        let state = State::Immediate(ImmediateState(Box::new(cb)));
        let h = self
            .handles
            .insert(HandleKind::Immediate, state, true, true);
        self.immediates.push_back(h);
        Immediate(h)
    }

    /// Cancel an immediate that has not run. False if it ran, was cleared or is stale.
    pub fn clear_immediate(&mut self, i: Immediate) -> bool {
        let h = i.into();
        if self.handles.get(h).is_none_or(|s| s.is_closing()) {
            return false;
        }
        self.handles.remove(h).is_some()
    }

    /// The check phase. Immediates queued before it; new ones wait for the next tick (a
    /// callback that queues itself cannot starve I/O).
    pub(super) fn run_check(&mut self) {
        self.enter(Phase::Check);
        let batch = self.immediates.len();
        let mut ran = 0;
        for _ in 0..batch {
            let Some(h) = self.immediates.pop_front() else {
                break;
            };
            if self.handles.get(h).is_none_or(|s| s.is_closing()) {
                continue;
            }
            if let Some(State::Immediate(ImmediateState(cb))) = self.handles.remove(h) {
                ran += 1;
                let _cause = crate::task::Cause::Immediate.enter();
                let site = Site::of(HandleKind::Immediate, h);
                self.timed(
                    site,
                    |_| format!("immediate {h}"),
                    |lp| cb(lp, Immediate(h)),
                );
            }
        }
        self.tracer.immediates(ran);
    }
}
