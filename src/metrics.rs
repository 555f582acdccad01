//! Watching the loop live: where each tick's time goes, measured cheaply enough to leave on.
//!
//! The trace explains one tick; a server runs ten thousand a second. So the loop also
//! keeps figures that add up over a **window** (a second, say) and are read once per
//! window by whoever watches (`looplab top`, the `/loop` page, `/metrics`):
//!
//! - **time per phase** per tick: pending, idle+prepare, poll wait, poll I/O callbacks, tasks,
//!   check, close, timers. The loop already reads the clock three times a tick (before
//!   and after its poll, before the timers); with metrics on it reads it once more after
//!   each callback, and nowhere else. Each read charges the time since the previous
//!   read to the phase the loop is in: a callback's time, plus the loop's bookkeeping
//!   since the last read (a few nanoseconds to microseconds; an empty phase's
//!   bookkeeping goes to the next phase that reads). A phase boundary costs nothing.
//! - **event-loop utilization**, 1 − idle/total, where idle is the time blocked in a poll
//!   that could block (Node's `eventLoopUtilization`, libuv's `uv_metrics_idle_time`);
//! - **loop lag**: how late each timer's callback started, as a histogram that starts
//!   empty every window (Node's `monitorEventLoopDelay` never resets, so one bad minute
//!   hides in a day);
//! - **events per poll**, and the last ticks' phase times, for the bars that move;
//! - **the pool**: each job's queue wait and run time, and the time from its finish on
//!   the worker to its `done` starting on the loop (the self-pipe wake);
//! - **the slowest callback** of the window, with its phase and its handle's kind and
//!   id: the one to look at when the loop stalls (tokio-console's question).
//!
//! [`Loop::take_window`] ends a window and starts the next; [`Loop::loop_totals`] sums
//! every window so far (what Prometheus wants: counters that only grow).
//!
//! **Off unless watched.** One clock read per callback is cheap, not free: on the echo
//! benchmark at 1000 connections the mechanism costs about 150 instructions per round
//! trip (callgrind), and `--metrics-addr` with its probes about as much again
//! (docs/benchmarks.md). So
//! a loop keeps no metrics unless asked: `LoopBuilder::metrics(true)`,
//! `LOOPLAB_METRICS=1`, or [`Loop::set_metrics`], which the metrics endpoint calls.
//! Off, the loop reads the clock only where it always did.
//!
//! Everything here runs on the loop thread: pool workers stamp their times into the
//! completion they send back, and the loop records them when it drains it.

mod histogram;
mod window;

pub use histogram::{Histogram, MAX_VALUE};
pub use window::{
    phase_key, KindCount, LoopTotals, LoopWindow, PhaseTimes, PoolTimes, Site, SlowCallback, PHASES,
};

use crate::handle::HandleKind;
use crate::watchdog::Phase;
use crate::Loop;
use std::time::{Duration, Instant};
use window::slot;

/// How many of the last ticks a window keeps whole, for the per-tick bars.
pub const RECENT_TICKS: usize = 60;

/// What accumulates over one window.
#[derive(Clone, Default)]
struct Acc {
    ticks: u64,
    events: u64,
    callbacks: u64,
    phases: PhaseTimes,
    idle: Duration,
    lag: Histogram,
    events_per_tick: Histogram,
    pool: PoolTimes,
    longest_tick: Option<PhaseTimes>,
    slowest: Option<SlowCallback>,
    /// `slowest`'s time in ns, compared without making a `Duration` per callback.
    slowest_ns: u64,
}

impl Acc {
    fn absorb(&mut self, w: &Acc) {
        self.ticks += w.ticks;
        self.events += w.events;
        self.callbacks += w.callbacks;
        self.phases.add(&w.phases);
        self.idle += w.idle;
        self.lag.add(&w.lag);
        self.events_per_tick.add(&w.events_per_tick);
        self.pool.add(&w.pool);
    }
}

/// The loop's meters: written at phase boundaries and after callbacks, read per window.
/// In C's order: the switch and the phase, which the loop reads and writes on every
/// event, first (see `Loop`'s own order).
#[repr(C)]
pub(crate) struct Meters {
    on: bool,
    /// The phase the loop is in: the next read's time is charged to it.
    phase: Phase,
    /// The last clock read, in ns since `epoch`: the next callback's time runs from
    /// there. Plain integers, not `Instant`s: `Instant` arithmetic (a checked
    /// `timespec` subtraction, a `Duration` carry) cost about 250 instructions per
    /// callback in the echo benchmark, more than the clock read itself (callgrind).
    mark: u64,
    /// The tick in progress.
    tick: PhaseTimes,
    window: Acc,
    window_started: Instant,
    windows_taken: u64,
    /// Every closed window, summed.
    closed: Acc,
    /// A ring of the last ticks; `recent_next` is where the next one goes.
    recent: Box<[PhaseTimes; RECENT_TICKS]>,
    recent_next: usize,
    recent_len: usize,
    epoch: Instant,
}

impl Meters {
    pub fn new(on: bool, epoch: Instant) -> Meters {
        Meters {
            on,
            phase: Phase::Idle,
            mark: 0,
            tick: PhaseTimes::default(),
            window: Acc::default(),
            window_started: epoch,
            windows_taken: 0,
            closed: Acc::default(),
            recent: Box::new([PhaseTimes::default(); RECENT_TICKS]),
            recent_next: 0,
            recent_len: 0,
            epoch,
        }
    }

    pub fn on(&self) -> bool {
        self.on
    }

    /// Turn timing on or off from now: the time since the last read is nobody's.
    pub fn set_on(&mut self, on: bool, now: Instant) {
        self.on = on;
        self.mark = self.ns(now);
    }

    /// `at` as ns since `epoch` (0 before it).
    fn ns(&self, at: Instant) -> u64 {
        let d = at.saturating_duration_since(self.epoch);
        d.as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(d.subsec_nanos()))
    }

    /// A phase boundary: no clock read, the next read charges this phase.
    pub fn enter(&mut self, phase: Phase) {
        self.phase = phase;
    }

    /// The clock read `at`: the time since the last read goes to the current phase
    /// (to nothing outside the ticks, `Phase::Idle`).
    pub fn read_at(&mut self, at: Instant) {
        if self.on {
            self.read_ns(self.ns(at));
        }
    }

    fn read_ns(&mut self, at: u64) {
        if let Some(i) = slot(self.phase) {
            self.tick.add_ns(i, at.saturating_sub(self.mark));
        }
        self.mark = self.mark.max(at);
    }

    /// A callback of `site` ran in tick `tick`, from the last clock read until now: the
    /// one clock read a callback costs. Returns how long it ran (zero when off).
    pub fn callback_ended(&mut self, site: Site, tick: u64) -> Duration {
        if !self.on {
            return Duration::ZERO;
        }
        let started = self.mark;
        let ended = self.ns(Instant::now());
        self.read_ns(ended);
        let took = ended.saturating_sub(started);
        self.window.callbacks += 1;
        if self.window.slowest.is_none() || took > self.window.slowest_ns {
            self.window.slowest_ns = took;
            self.window.slowest = Some(SlowCallback {
                took: Duration::from_nanos(took),
                phase: self.phase,
                site,
                tick,
            });
        }
        Duration::from_nanos(took)
    }

    /// A poll returned `events` events after blocking for `idle` (`None`: a zero timeout).
    pub fn polled(&mut self, events: usize, idle: Option<Duration>) {
        if self.on {
            self.window.events += events as u64;
            self.window.events_per_tick.record(events as u64);
            self.window.idle += idle.unwrap_or_default();
        }
    }

    /// A timer's callback started `late` after its deadline.
    pub fn lag(&mut self, late: Duration) {
        if self.on {
            self.window.lag.record_duration(late);
        }
    }

    /// A pool job waited `waited` and ran `ran`; its `done` started `wake` after it
    /// finished (`None` when no callback ran: the work was closed meanwhile).
    pub fn pool_done(&mut self, waited: Duration, ran: Duration, wake: Option<Duration>) {
        if self.on {
            let pool = &mut self.window.pool;
            pool.queue_wait.record_duration(waited);
            pool.run.record_duration(ran);
            if let Some(w) = wake {
                pool.wake.record_duration(w);
            }
        }
    }

    /// Jobs waiting right after a submit.
    pub fn pool_depth(&mut self, depth: usize) {
        if !self.on {
            return;
        }
        let max = &mut self.window.pool.max_depth;
        *max = (*max).max(depth);
    }

    /// The tick numbered `tick` ended: its phase times join the window. No clock read:
    /// what ran since the tick's last read is charged to the next tick.
    pub fn finish_tick(&mut self, tick: u64) {
        if !self.on {
            return;
        }
        let mut t = std::mem::take(&mut self.tick);
        t.tick = tick;
        self.window.ticks += 1;
        self.window.phases.add(&t);
        let busy = |p: &PhaseTimes| p.total().saturating_sub(p.get(Phase::Poll));
        if self.window.longest_tick.is_none_or(|l| busy(&t) > busy(&l)) {
            self.window.longest_tick = Some(t);
        }
        self.recent[self.recent_next] = t;
        self.recent_next = (self.recent_next + 1) % RECENT_TICKS;
        self.recent_len = (self.recent_len + 1).min(RECENT_TICKS);
    }

    /// The ring's ticks, oldest first.
    fn recent_ticks(&self) -> Vec<PhaseTimes> {
        let start = (self.recent_next + RECENT_TICKS - self.recent_len) % RECENT_TICKS;
        (0..self.recent_len)
            .map(|i| self.recent[(start + i) % RECENT_TICKS])
            .collect()
    }

    /// End the window now and start the next.
    pub fn take(&mut self, now: Instant) -> LoopWindow {
        let w = std::mem::take(&mut self.window);
        self.closed.absorb(&w);
        let window = LoopWindow {
            id: self.windows_taken,
            started: self.window_started.saturating_duration_since(self.epoch),
            length: now.saturating_duration_since(self.window_started),
            ticks: w.ticks,
            events: w.events,
            callbacks: w.callbacks,
            phases: w.phases,
            idle: w.idle,
            recent_ticks: self.recent_ticks(),
            longest_tick: w.longest_tick,
            slowest: w.slowest,
            lag: w.lag,
            events_per_tick: w.events_per_tick,
            pool: w.pool,
        };
        self.windows_taken += 1;
        self.window_started = now;
        self.recent_len = 0;
        window
    }

    /// Every window so far, the open one included.
    pub fn totals(&self) -> LoopTotals {
        let mut all = self.closed.clone();
        all.absorb(&self.window);
        LoopTotals {
            ticks: all.ticks,
            events: all.events,
            callbacks: all.callbacks,
            phases: all.phases,
            idle: all.idle,
            lag: all.lag,
            events_per_tick: all.events_per_tick,
            pool: all.pool,
        }
    }
}

impl Loop {
    /// End the current metrics window and start the next: what the loop measured since
    /// the last call (or since it was built). One reader per loop should take windows
    /// (the `--metrics-addr` endpoint takes one a second); [`Loop::loop_totals`] is
    /// unaffected. Empty figures when metrics are off.
    pub fn take_window(&mut self) -> LoopWindow {
        self.meters.take(Instant::now())
    }

    /// Everything measured since the loop was built: counters that only grow.
    pub fn loop_totals(&self) -> LoopTotals {
        self.meters.totals()
    }

    /// Whether the loop times its phases and callbacks (`LoopBuilder::metrics`).
    pub fn metrics_enabled(&self) -> bool {
        self.meters.on()
    }

    /// Start (or stop) timing phases and callbacks from now on; what a window holds
    /// from before is kept. The metrics endpoint turns it on for the loop it serves.
    pub fn set_metrics(&mut self, on: bool) {
        self.meters.set_on(on, Instant::now());
    }

    /// Live handles by kind and state, in a stable order: the alive rule as numbers.
    pub fn handle_counts(&self) -> Vec<KindCount> {
        let mut counts: Vec<KindCount> = Vec::new();
        for info in self.handles.infos() {
            let i = match counts.binary_search_by(|c| c.kind.cmp(&info.kind)) {
                Ok(i) => i,
                Err(i) => {
                    counts.insert(i, empty_count(info.kind));
                    i
                }
            };
            let c = &mut counts[i];
            match (info.closing, info.active, info.has_ref) {
                (true, _, _) => c.closing += 1,
                (false, true, true) => c.refd += 1,
                (false, true, false) => c.unrefd += 1,
                (false, false, _) => c.inactive += 1,
            }
            c.requests += u64::from(info.requests);
            c.holding += usize::from(info.holds_loop());
        }
        counts
    }

    /// Callbacks deferred to the next pending phase: they hold the loop too.
    pub fn pending_callbacks(&self) -> usize {
        self.pending.len()
    }
}

fn empty_count(kind: HandleKind) -> KindCount {
    KindCount {
        kind,
        refd: 0,
        unrefd: 0,
        inactive: 0,
        closing: 0,
        requests: 0,
        holding: 0,
    }
}
