//! Timers on the loop: `set_timeout`, `set_interval`, `clear_timer`, restarting
//! (`timer_again`) and changing a period (`set_repeat`), the poll timeout they imply, and
//! the timers phase. The wheel itself (`src/timer.rs`) counts whole
//! milliseconds since the loop's epoch; the conversions between that and `Instant` live
//! here, next to the only code that needs them.

use super::{Loop, State};
use crate::handle::{Handle, HandleKind, Timer};
use crate::metrics::Site;
use crate::timer::{Expired, TimerKey};
use crate::trace::TimeoutRule;
use crate::watchdog::Phase;
use std::time::{Duration, Instant};

type OnTimeout = Box<dyn FnOnce(&mut Loop, Timer)>;
type OnInterval = Box<dyn FnMut(&mut Loop, Timer)>;

/// A one-shot timer runs its callback once; a repeating one carries its period, so a
/// period without a repeating callback (or the reverse) cannot be written.
pub(crate) enum TimerKind {
    Timeout(OnTimeout),
    /// The callback is `None` only while it runs (taken out, see handle.rs).
    Interval {
        every: Duration,
        callback: Option<OnInterval>,
    },
}

pub(crate) struct TimerState {
    /// The wheel entry while armed; `None` once collected as due.
    wheel_key: Option<TimerKey>,
    /// The delay it was started with: what `timer_again` waits again for a one-shot.
    after: Duration,
    kind: TimerKind,
}

impl TimerState {
    /// How long `timer_again` waits: the period of a repeating timer, the first delay of
    /// a one-shot one.
    fn again_after(&self) -> Duration {
        match &self.kind {
            TimerKind::Timeout(_) => self.after,
            TimerKind::Interval { every, .. } => *every,
        }
    }
}

impl Loop {
    /// Run `cb` once, `after` from now. A timeout is measured from the real clock at the
    /// call (libuv measures from the tick's cached time, which lets a timer started late
    /// in a long tick fire early relative to the call; looplab never fires early).
    pub fn set_timeout(
        &mut self,
        after: Duration,
        cb: impl FnOnce(&mut Loop, Timer) + 'static,
    ) -> Timer {
        self.start_timer(after, TimerKind::Timeout(Box::new(cb)))
    }

    /// Run `cb` every `every`, until `clear_timer` or `close` (the callback gets its own
    /// `Timer`, so it may clear itself). It re-arms from the tick's cached `now` before the
    /// callback runs, so a late tick delays every later firing. A zero interval is treated
    /// as 1 ms, so an interval can never spin the loop.
    pub fn set_interval(
        &mut self,
        every: Duration,
        cb: impl FnMut(&mut Loop, Timer) + 'static,
    ) -> Timer {
        let every = every.max(Duration::from_millis(1));
        let kind = TimerKind::Interval {
            every,
            callback: Some(Box::new(cb)),
        };
        self.start_timer(every, kind)
    }

    fn start_timer(&mut self, after: Duration, kind: TimerKind) -> Timer {
        let state = TimerState {
            wheel_key: None,
            after,
            kind,
        };
        let h = self
            .handles
            .insert(HandleKind::Timer, State::Timer(state), true, true);
        let deadline = self.ms_since_epoch_ceil(Instant::now(), after);
        self.arm(h, deadline);
        Timer(h)
    }

    fn arm(&mut self, h: Handle, deadline_ms: u64) {
        let key = self.wheel.insert(deadline_ms, h);
        if let Some(State::Timer(t)) = self.handles.state_mut(h) {
            t.wheel_key = Some(key);
        }
    }

    /// Stop a timer. False if it already fired (one-shot), was cleared, is closing, or is
    /// not this loop's.
    pub fn clear_timer(&mut self, t: Timer) -> bool {
        let h: Handle = t.into();
        if self.handles.get(h).is_none_or(|s| s.is_closing()) {
            return false;
        }
        self.disarm_timer(h);
        self.handles.remove(h).is_some()
    }

    /// Restart `t` from now (libuv's `uv_timer_again`; Node's `timeout.refresh()` for a
    /// one-shot): a repeating timer is next due one period from now, a one-shot timer that
    /// has not fired yet is due its first delay from now. The idle-timeout pattern: call
    /// it on every read. False if it already fired (one-shot), was cleared, is closing,
    /// or is not this loop's.
    pub fn timer_again(&mut self, t: Timer) -> bool {
        let h: Handle = t.into();
        if self.handles.get(h).is_none_or(|s| s.is_closing()) {
            return false;
        }
        let Some(State::Timer(state)) = self.handles.state_mut(h) else {
            return false;
        };
        let after = state.again_after();
        self.disarm_timer(h);
        let deadline = self.ms_since_epoch_ceil(Instant::now(), after);
        self.arm(h, deadline);
        true
    }

    /// Change the period of a repeating timer (libuv's `uv_timer_set_repeat`). As in
    /// libuv, the deadline already set stays: the new period counts from the next
    /// re-arm, after the next firing (call `timer_again` to start it now). A zero period
    /// is 1 ms, as for `set_interval`. False for a one-shot timer (its callback can run
    /// only once: start an interval instead), or a stale, closing or foreign one.
    pub fn set_repeat(&mut self, t: Timer, every: Duration) -> bool {
        let h: Handle = t.into();
        if self.handles.get(h).is_none_or(|s| s.is_closing()) {
            return false;
        }
        match self.handles.state_mut(h) {
            Some(State::Timer(TimerState {
                kind: TimerKind::Interval { every: period, .. },
                ..
            })) => {
                *period = every.max(Duration::from_millis(1));
                true
            }
            _ => false,
        }
    }

    /// The period of a repeating timer (libuv's `uv_timer_get_repeat`); `None` for a
    /// one-shot or stale one.
    pub fn timer_repeat(&self, t: Timer) -> Option<Duration> {
        match &self.handles.get(t.into())?.state {
            State::Timer(TimerState {
                kind: TimerKind::Interval { every, .. },
                ..
            }) => Some(*every),
            _ => None,
        }
    }

    /// Take a timer off the wheel (used by clear and close).
    pub(crate) fn disarm_timer(&mut self, h: Handle) {
        if let Some(State::Timer(t)) = self.handles.state_mut(h) {
            if let Some(key) = t.wheel_key.take() {
                self.wheel.cancel(key);
            }
        }
    }

    /// The poll timeout the next timer asks for: the time to its deadline, from the real
    /// clock (time spent in this tick's callbacks is already gone); the poller rounds it
    /// UP to whole ms. Infinite without a timer.
    pub(super) fn timer_timeout(&self) -> (Option<Duration>, TimeoutRule) {
        match self.wheel.next_deadline() {
            Some((deadline_ms, handle)) => {
                let handle = *handle;
                let due_in = self.instant_of_ms(deadline_ms).map_or(Duration::MAX, |at| {
                    at.saturating_duration_since(Instant::now())
                });
                let timeout = (due_in != Duration::MAX).then_some(due_in);
                (timeout, TimeoutRule::Timer { handle, due_in })
            }
            None => (None, TimeoutRule::Infinite),
        }
    }

    /// The timers phase. Collect every due timer first, then run the callbacks: a timer
    /// started (even with 0 ms) from a callback is not in this batch and fires next tick.
    pub(super) fn run_timers(&mut self) {
        self.enter(Phase::Timers);
        let mut due: Vec<Expired<Handle>> = Vec::new();
        self.wheel.advance(self.now_ms(), &mut due);
        for e in &due {
            if let Some(State::Timer(t)) = self.handles.state_mut(e.value) {
                t.wheel_key = None;
            }
        }
        // Kept in the loop, not in a local: if a callback panics, the rest still fire.
        self.due.extend(due);
        while let Some(e) = self.due.pop_front() {
            let h = e.value;
            let _cause = crate::task::Cause::Timer(h).enter();
            let site = Site::of(HandleKind::Timer, h);
            self.timed(
                site,
                |_| format!("timer {h}"),
                |lp| lp.fire_timer(h, e.deadline),
            );
        }
    }

    fn fire_timer(&mut self, h: Handle, deadline_ms: u64) {
        // Cleared or closed by an earlier callback of this batch: no call (as libuv takes
        // a stopped timer off its queue).
        if self.handles.get(h).is_none_or(|s| s.is_closing()) {
            return;
        }
        let every = match self.handles.state_mut(h) {
            // Restarted by `timer_again` since it was collected: its new deadline rules.
            Some(State::Timer(t)) if t.wheel_key.is_some() => return,
            Some(State::Timer(t)) => match &t.kind {
                TimerKind::Timeout(_) => None,
                TimerKind::Interval { every, .. } => Some(*every),
            },
            _ => return,
        };
        self.count_lateness(deadline_ms);
        self.tracer.fired(h);
        let Some(every) = every else {
            if let Some(State::Timer(TimerState {
                kind: TimerKind::Timeout(cb),
                ..
            })) = self.handles.remove(h)
            {
                cb(self, Timer(h));
            }
            return;
        };
        let next = self.ms_since_epoch_ceil(self.now(), every);
        self.arm(h, next);
        let Some(cb) = self.interval_callback(h).and_then(Option::take) else {
            return;
        };
        self.call_taken(
            cb,
            |lp, cb| cb(lp, Timer(h)),
            |lp, cb| {
                // Back in its slot, unless the callback cleared or closed its own timer.
                if let Some(slot @ None) = lp.interval_callback(h) {
                    *slot = Some(cb);
                }
            },
        );
    }

    fn interval_callback(&mut self, h: Handle) -> Option<&mut Option<OnInterval>> {
        match self.handles.state_mut(h) {
            Some(State::Timer(TimerState {
                kind: TimerKind::Interval { callback, .. },
                ..
            })) => Some(callback),
            _ => None,
        }
    }

    /// Lateness is measured from the clock as each callback starts, not from the batch's
    /// cached time: a slow callback makes the ones after it late, and that must show.
    fn count_lateness(&mut self, deadline_ms: u64) {
        let due_at = self.instant_of_ms(deadline_ms).unwrap_or(self.now());
        let late = Instant::now().saturating_duration_since(due_at);
        self.counters.timers_fired += 1;
        self.counters.lateness_total += late;
        self.counters.lateness_max = self.counters.lateness_max.max(late);
        self.meters.lag(late);
    }

    /// Milliseconds since the loop was made: the wheel's clock (rounded down, so a timer
    /// whose deadline is rounded up never fires early).
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.now().duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// The Instant at which wheel time `ms` begins.
    pub(crate) fn instant_of_ms(&self, ms: u64) -> Option<Instant> {
        self.epoch.checked_add(Duration::from_millis(ms))
    }

    /// The wheel deadline for "`after` from `at`": rounded UP, so it never fires early.
    /// A zero wait is due at once, so it rounds down: any later time satisfies it, and a
    /// 0 ms timer started in a callback then fires in the very next tick.
    pub(crate) fn ms_since_epoch_ceil(&self, at: Instant, after: Duration) -> u64 {
        let target = at.duration_since(self.epoch).saturating_add(after);
        let whole = target.as_millis();
        let round_up = !after.is_zero() && target > Duration::from_millis(whole as u64);
        let ceil = if round_up { whole + 1 } else { whole };
        u64::try_from(ceil).unwrap_or(u64::MAX)
    }
}
