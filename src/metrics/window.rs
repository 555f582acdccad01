//! What a reader gets: one window of figures ([`LoopWindow`]), the totals since the loop
//! was built ([`LoopTotals`]), a tick's time split by phase ([`PhaseTimes`]), the slowest
//! callback and where it was registered ([`SlowCallback`]), handles by kind ([`KindCount`]).

use super::Histogram;
use crate::handle::{Handle, HandleKind};
use crate::watchdog::Phase;
use std::time::Duration;

/// The phases a tick's time is split into, in the order a tick runs them.
pub const PHASES: [Phase; 8] = [
    Phase::Pending,
    Phase::Prepare,
    Phase::Poll,
    Phase::PollCallbacks,
    Phase::Tasks,
    Phase::Check,
    Phase::Closing,
    Phase::Timers,
];

/// Where `phase` is kept in a [`PhaseTimes`]; `None` for time outside the ticks.
pub(crate) fn slot(phase: Phase) -> Option<usize> {
    match phase {
        Phase::Idle => None,
        Phase::Pending => Some(0),
        Phase::Prepare => Some(1),
        Phase::Poll => Some(2),
        Phase::PollCallbacks => Some(3),
        Phase::Tasks => Some(4),
        Phase::Check => Some(5),
        Phase::Closing => Some(6),
        Phase::Timers => Some(7),
    }
}

/// A phase's short name: a Prometheus label value, a JSON key.
pub fn phase_key(phase: Phase) -> &'static str {
    match phase {
        Phase::Idle => "outside",
        Phase::Pending => "pending",
        Phase::Prepare => "prepare",
        Phase::Poll => "poll_wait",
        Phase::PollCallbacks => "poll_io",
        Phase::Tasks => "tasks",
        Phase::Check => "check",
        Phase::Closing => "close",
        Phase::Timers => "timers",
    }
}

/// Time spent in each phase, over one tick or many.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhaseTimes {
    /// The tick's number (for one tick), or the last tick counted (for many).
    pub tick: u64,
    /// Nanoseconds per phase: adding integers costs less than adding `Duration`s.
    times: [u64; PHASES.len()],
}

impl PhaseTimes {
    /// Time in `phase` (zero for `Phase::Idle`, which is outside the ticks).
    pub fn get(&self, phase: Phase) -> Duration {
        slot(phase).map_or(Duration::ZERO, |i| Duration::from_nanos(self.times[i]))
    }

    /// Every phase with its time, in tick order.
    pub fn iter(&self) -> impl Iterator<Item = (Phase, Duration)> + '_ {
        PHASES.iter().map(|&p| (p, self.get(p)))
    }

    /// All phases together: the tick's wall time.
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.times.iter().fold(0, |a, &t| a.saturating_add(t)))
    }

    pub(crate) fn add_ns(&mut self, i: usize, ns: u64) {
        self.times[i] = self.times[i].saturating_add(ns);
    }

    pub(crate) fn add(&mut self, other: &PhaseTimes) {
        for (mine, theirs) in self.times.iter_mut().zip(other.times) {
            *mine = mine.saturating_add(theirs);
        }
        self.tick = self.tick.max(other.tick);
    }
}

/// Where a callback was registered: the handle it belongs to, if it has one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Site {
    /// The handle's kind; `None` for a deferred callback (a write's or connect's
    /// result), which belongs to no handle of its own.
    pub kind: Option<HandleKind>,
    /// The handle.
    pub handle: Option<Handle>,
}

impl Site {
    /// A callback of handle `h`.
    pub fn of(kind: HandleKind, h: Handle) -> Site {
        Site {
            kind: Some(kind),
            handle: Some(h),
        }
    }
}

/// The longest-running callback of a window, and where it ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowCallback {
    /// How long it ran.
    pub took: Duration,
    /// The phase it ran in.
    pub phase: Phase,
    /// Its handle's kind and id.
    pub site: Site,
    /// The tick it ran in.
    pub tick: u64,
}

/// Pool figures over a window or since the start, measured per job.
#[derive(Clone, Debug, Default)]
pub struct PoolTimes {
    /// Time each job waited in the queue before a worker took it (ns).
    pub queue_wait: Histogram,
    /// Time each job ran on its worker (ns).
    pub run: Histogram,
    /// Time from a worker's finish to its `done` callback starting on the loop (ns):
    /// the self-pipe wake, and whatever the loop was busy with meanwhile.
    pub wake: Histogram,
    /// The most jobs that waited at once.
    pub max_depth: usize,
}

impl PoolTimes {
    pub(crate) fn add(&mut self, other: &PoolTimes) {
        self.queue_wait.add(&other.queue_wait);
        self.run.add(&other.run);
        self.wake.add(&other.wake);
        self.max_depth = self.max_depth.max(other.max_depth);
    }
}

/// What the loop measured over one window (see [`Loop::take_window`](crate::Loop::take_window)).
#[derive(Clone, Debug, Default)]
pub struct LoopWindow {
    /// Windows taken before this one (this one's number, from 0).
    pub id: u64,
    /// When it began, since the loop was built.
    pub started: Duration,
    /// Its length.
    pub length: Duration,
    /// Ticks that ended in it.
    pub ticks: u64,
    /// Readiness events the poller delivered.
    pub events: u64,
    /// Callbacks that ran (each timed).
    pub callbacks: u64,
    /// Time per phase, summed over its ticks.
    pub phases: PhaseTimes,
    /// Time blocked in a poll that could block (a zero-timeout poll is busy work).
    pub idle: Duration,
    /// Timer lateness: how long after its deadline each timer's callback started (ns).
    pub lag: Histogram,
    /// Events per poll.
    pub events_per_tick: Histogram,
    /// Pool jobs that finished in it.
    pub pool: PoolTimes,
    /// The last ticks' phase times, oldest first (at most [`RECENT_TICKS`](super::RECENT_TICKS)).
    pub recent_ticks: Vec<PhaseTimes>,
    /// The tick that took longest, poll wait excluded: where a stall shows.
    pub longest_tick: Option<PhaseTimes>,
    /// The callback that ran longest.
    pub slowest: Option<SlowCallback>,
}

impl LoopWindow {
    /// Event-loop utilization: the share of the loop's time not spent waiting in a poll
    /// that could block (Node's `performance.eventLoopUtilization()`). 0 for an empty window.
    pub fn utilization(&self) -> f64 {
        let total = self.phases.total().as_secs_f64();
        if total <= 0.0 {
            return 0.0;
        }
        (1.0 - self.idle.as_secs_f64() / total).clamp(0.0, 1.0)
    }
}

/// Everything counted since the loop was built: what `/metrics` exports as counters
/// and cumulative histograms.
#[derive(Clone, Debug, Default)]
pub struct LoopTotals {
    /// Ticks ended.
    pub ticks: u64,
    /// Readiness events.
    pub events: u64,
    /// Callbacks timed.
    pub callbacks: u64,
    /// Time per phase.
    pub phases: PhaseTimes,
    /// Time blocked in polls that could block.
    pub idle: Duration,
    /// Timer lateness (ns).
    pub lag: Histogram,
    /// Events per poll.
    pub events_per_tick: Histogram,
    /// Pool jobs.
    pub pool: PoolTimes,
}

/// Handles of one kind, by state: what `explain_alive` says, as numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindCount {
    /// The kind.
    pub kind: HandleKind,
    /// Active and ref'd: each holds the loop.
    pub refd: usize,
    /// Active and unref'd: working, not holding the loop.
    pub unrefd: usize,
    /// Neither active nor closing (a stopped timer, a paused stream).
    pub inactive: usize,
    /// Closing: they hold the loop until their close callbacks have run.
    pub closing: usize,
    /// Requests in flight (writes, connects, shutdowns): each holds the loop.
    pub requests: u64,
    /// How many of them hold the loop, by the alive rule.
    pub holding: usize,
}
