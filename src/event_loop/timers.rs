//! Timers and immediates on the loop: `set_timeout`, `set_interval`, `clear_timer`,
//! `set_immediate`, and phase 2 (run due timers).

use super::{Loop, State};
use crate::handle::{Handle, HandleKind, Immediate, Timer};
use crate::timer::Expired;
use crate::watchdog::Phase;
use std::time::{Duration, Instant};

pub(crate) enum TimerCallback {
    Once(Box<dyn FnOnce(&mut Loop)>),
    Repeat(Box<dyn FnMut(&mut Loop)>),
}

pub(crate) struct TimerState {
    /// The wheel entry while armed; `None` once it has fired or been collected.
    wheel_key: Option<usize>,
    interval: Option<Duration>,
    /// Taken out while the callback runs, so the callback may clear its own timer.
    callback: Option<TimerCallback>,
}

impl Loop {
    /// Run `cb` once, `after` from now. A timeout is measured from the real clock at the
    /// call (libuv measures from the tick's cached time, which lets a timer started late
    /// in a long tick fire early relative to the call; looplab never fires early).
    pub fn set_timeout(&mut self, after: Duration, cb: impl FnOnce(&mut Loop) + 'static) -> Timer {
        self.start_timer(after, None, TimerCallback::Once(Box::new(cb)))
    }

    /// Run `cb` every `every`, until `clear_timer` or `close`. It re-arms from the tick's
    /// cached `now` before the callback runs, so a late tick delays every later firing.
    /// A zero interval is treated as 1 ms, so an interval can never spin the loop.
    pub fn set_interval(&mut self, every: Duration, cb: impl FnMut(&mut Loop) + 'static) -> Timer {
        let every = every.max(Duration::from_millis(1));
        self.start_timer(every, Some(every), TimerCallback::Repeat(Box::new(cb)))
    }

    fn start_timer(
        &mut self,
        after: Duration,
        interval: Option<Duration>,
        callback: TimerCallback,
    ) -> Timer {
        let state = TimerState {
            wheel_key: None,
            interval,
            callback: Some(callback),
        };
        let h = self
            .handles
            .insert(HandleKind::Timer, State::Timer(state), true, true);
        let deadline = self.ms_since_epoch_ceil(Instant::now(), after);
        let key = self.wheel.insert(deadline, h);
        if let Some(State::Timer(t)) = self.handles.state_mut(h) {
            t.wheel_key = Some(key);
        }
        Timer(h)
    }

    /// Stop a timer. False if it already fired (one-shot), was cleared, or closed.
    pub fn clear_timer(&mut self, t: Timer) -> bool {
        let h: Handle = t.into();
        if self.handles.get(h).is_none_or(|s| s.is_closing()) {
            return false;
        }
        self.disarm_timer(h);
        self.handles.remove(h).is_some()
    }

    /// Take a timer off the wheel (used by clear and close).
    pub(crate) fn disarm_timer(&mut self, h: Handle) {
        if let Some(State::Timer(t)) = self.handles.state_mut(h) {
            if let Some(key) = t.wheel_key.take() {
                self.wheel.cancel(key);
            }
        }
    }

    /// Queue `cb` for the check phase of this tick (after poll), or the next one if
    /// called from the check phase itself.
    pub fn set_immediate(&mut self, cb: impl FnOnce(&mut Loop) + 'static) -> Immediate {
        let h = self.handles.insert(
            HandleKind::Immediate,
            State::Immediate(Some(Box::new(cb))),
            true,
            true,
        );
        self.immediates.push_back(h);
        Immediate(h)
    }

    /// Phase 2. Collect every due timer first, then run the callbacks: a timer started
    /// (even with 0 ms) from a callback is not in this batch and fires next tick.
    pub(super) fn run_timers(&mut self) {
        self.enter(Phase::Timers);
        let now_ms = self.now_ms();
        let mut due: Vec<Expired<Handle>> = Vec::new();
        self.wheel.advance(now_ms, &mut due);
        // Their wheel keys are free now and may be reused by timers the callbacks start.
        for e in &due {
            if let Some(State::Timer(t)) = self.handles.state_mut(e.value) {
                t.wheel_key = None;
            }
        }
        for e in due {
            self.fire_timer(e.value, e.deadline, now_ms);
        }
        if self.tracer.enabled {
            self.tracer.tick.next_due = self.wheel.next_deadline().map(|(ms, h)| {
                let at = self.instant_of_ms(ms).unwrap_or(self.now());
                (h.id(), at.saturating_duration_since(self.now()))
            });
        }
    }

    fn fire_timer(&mut self, h: Handle, deadline_ms: u64, now_ms: u64) {
        // Cleared or closed by an earlier callback of this batch.
        let Some(State::Timer(t)) = self.handles.state_mut(h) else {
            return;
        };
        let Some(callback) = t.callback.take() else {
            return;
        };
        let interval = t.interval;
        let late = Duration::from_millis(now_ms.saturating_sub(deadline_ms));
        self.counters.timers_fired += 1;
        self.counters.lateness_total += late;
        self.counters.lateness_max = self.counters.lateness_max.max(late);
        if self.tracer.enabled {
            self.tracer.tick.fired.push(h.id());
        }
        match (callback, interval) {
            (TimerCallback::Repeat(mut cb), Some(every)) => {
                let next = self.ms_since_epoch_ceil(self.now(), every);
                let key = self.wheel.insert(next, h);
                if let Some(State::Timer(t)) = self.handles.state_mut(h) {
                    t.wheel_key = Some(key);
                }
                cb(self);
                // Put it back unless the callback cleared or closed its own timer.
                match self.handles.state_mut(h) {
                    Some(State::Timer(t)) if t.callback.is_none() => {
                        t.callback = Some(TimerCallback::Repeat(cb))
                    }
                    _ => {}
                }
            }
            (TimerCallback::Once(cb), _) => {
                self.handles.remove(h);
                cb(self);
            }
            (TimerCallback::Repeat(_), None) => {
                self.handles.remove(h);
            }
        }
    }
}
