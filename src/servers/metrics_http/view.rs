//! One window as JSON: what `/loop/poll` answers, what the `/loop` page draws and what
//! `looplab top` reads back (the same types, serialized here, deserialized there).
//! Times are in microseconds unless a field says otherwise.

use crate::metrics::{phase_key, Histogram, LoopWindow, PhaseTimes, PHASES};
use crate::watchdog::Phase;
use crate::Loop;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;

/// A window, drawn.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WindowView {
    /// The window's number (from 0): ask `/loop/poll?since=ID` for the next.
    pub id: u64,
    /// The poller.
    pub backend: String,
    /// Whether the loop times its phases (`LOOPLAB_METRICS=0` turns it off).
    pub metrics_on: bool,
    /// Seconds since the loop was built, at the window's end.
    pub uptime_s: f64,
    /// The window's length, ms.
    pub window_ms: f64,
    /// Ticks, events and callbacks in it.
    pub ticks: u64,
    /// Readiness events.
    pub events: u64,
    /// Callbacks run.
    pub callbacks: u64,
    /// 1 − idle/total, 0..=1.
    pub utilization: f64,
    /// The phase keys, in tick order, with the labels to show.
    pub phase_keys: Vec<String>,
    /// Labels for `phase_keys`.
    pub phase_labels: Vec<String>,
    /// Time per phase over the window, µs, in `phase_keys` order.
    pub phase_us: Vec<f64>,
    /// The last ticks, oldest first.
    pub recent_ticks: Vec<TickView>,
    /// The tick that kept the loop busiest.
    pub longest_tick: Option<TickView>,
    /// Timer lateness, µs.
    pub lag: Quantiles,
    /// Events per poll (counts, not µs).
    pub events_per_tick: Quantiles,
    /// The slowest callback.
    pub slowest: Option<SlowView>,
    /// The thread pool.
    pub pool: PoolView,
    /// What keeps the loop alive.
    pub alive: AliveView,
    /// The last windows, oldest first: the minute behind this one.
    pub history: Vec<HistoryPoint>,
}

/// One tick's phase times, µs, in `phase_keys` order.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TickView {
    /// The tick's number.
    pub tick: u64,
    /// µs per phase.
    pub us: Vec<f64>,
}

/// A histogram read as its count and three quantiles.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Quantiles {
    /// Values counted.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// The slowest callback of the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SlowView {
    /// How long it ran, µs.
    pub us: f64,
    /// Its phase's key and label.
    pub phase: String,
    /// The label to show.
    pub phase_label: String,
    /// Its handle's kind ("deferred" for a callback of no handle).
    pub kind: String,
    /// Its handle (`#slot.generation`), empty for none.
    pub handle: String,
    /// The tick it ran in.
    pub tick: u64,
}

/// The pool: threads, queue, and its jobs' times in the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PoolView {
    /// Workers (0 before the first job).
    pub threads: usize,
    /// Jobs waiting now.
    pub depth: usize,
    /// The most that waited at once in the window.
    pub max_depth: usize,
    /// Queue wait, µs.
    pub queue_wait: Quantiles,
    /// Run time, µs.
    pub run: Quantiles,
    /// Worker's finish to `done` on the loop, µs.
    pub wake: Quantiles,
}

/// Handles by kind, and the loop's own answer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AliveView {
    /// `explain_alive()`, in words.
    pub why: String,
    /// Deferred callbacks waiting.
    pub pending: usize,
    /// Per kind.
    pub kinds: Vec<KindView>,
}

/// Handles of one kind.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KindView {
    /// The kind.
    pub kind: String,
    /// Active and ref'd.
    pub refd: usize,
    /// Active and unref'd.
    pub unrefd: usize,
    /// Neither active nor closing.
    pub inactive: usize,
    /// Closing.
    pub closing: usize,
    /// Requests in flight.
    pub requests: u64,
    /// How many hold the loop.
    pub holding: usize,
}

/// One past window, for the minute-long lines.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct HistoryPoint {
    /// The window's number.
    pub id: u64,
    /// Its utilization.
    pub utilization: f64,
    /// Its lag p99 and max, µs.
    pub lag_p99: f64,
    /// Largest lag.
    pub lag_max: f64,
    /// The pool's queue at its end.
    pub pool_depth: usize,
    /// Ticks in it.
    pub ticks: u64,
}

/// The label a person reads for a phase.
pub fn phase_label(phase: Phase) -> &'static str {
    match phase {
        Phase::Idle => "outside",
        Phase::Pending => "pending",
        Phase::Prepare => "idle+prepare",
        Phase::Poll => "poll wait",
        Phase::PollCallbacks => "poll I/O",
        Phase::Tasks => "tasks",
        Phase::Check => "check",
        Phase::Closing => "close",
        Phase::Timers => "timers",
    }
}

/// µs to a tenth: enough for a person, and the JSON stays short.
fn us(d: Duration) -> f64 {
    tenth(d.as_secs_f64() * 1e6)
}

fn tenth(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Quantiles of a histogram of nanoseconds, in µs.
fn time_quantiles(h: &Histogram) -> Quantiles {
    Quantiles {
        count: h.count(),
        p50: tenth(h.value_at_quantile(0.5) as f64 / 1e3),
        p99: tenth(h.value_at_quantile(0.99) as f64 / 1e3),
        max: tenth(h.max() as f64 / 1e3),
    }
}

fn count_quantiles(h: &Histogram) -> Quantiles {
    Quantiles {
        count: h.count(),
        p50: h.value_at_quantile(0.5) as f64,
        p99: h.value_at_quantile(0.99) as f64,
        max: h.max() as f64,
    }
}

fn tick_view(t: &PhaseTimes) -> TickView {
    TickView {
        tick: t.tick,
        us: t.iter().map(|(_, d)| us(d)).collect(),
    }
}

/// The figure the history keeps of `w`.
pub fn history_point(w: &LoopWindow, pool_depth: usize) -> HistoryPoint {
    let lag = time_quantiles(&w.lag);
    HistoryPoint {
        id: w.id,
        utilization: w.utilization(),
        lag_p99: lag.p99,
        lag_max: lag.max,
        pool_depth,
        ticks: w.ticks,
    }
}

/// Draw window `w` of `lp`, with the minute behind it.
pub fn window(lp: &Loop, w: &LoopWindow, history: &VecDeque<HistoryPoint>) -> WindowView {
    let pool = lp.metrics().pool;
    let slowest = w.slowest.map(|s| SlowView {
        us: us(s.took),
        phase: phase_key(s.phase).to_string(),
        phase_label: phase_label(s.phase).to_string(),
        kind: s.site.kind.map_or("deferred", |k| k.name()).to_string(),
        handle: s.site.handle.map_or(String::new(), |h| h.to_string()),
        tick: s.tick,
    });
    let kinds = lp.handle_counts().into_iter().map(|c| KindView {
        kind: c.kind.name().to_string(),
        refd: c.refd,
        unrefd: c.unrefd,
        inactive: c.inactive,
        closing: c.closing,
        requests: c.requests,
        holding: c.holding,
    });
    WindowView {
        id: w.id,
        backend: lp.backend().name().to_string(),
        metrics_on: lp.metrics_enabled(),
        uptime_s: (w.started + w.length).as_secs_f64(),
        window_ms: w.length.as_secs_f64() * 1e3,
        ticks: w.ticks,
        events: w.events,
        callbacks: w.callbacks,
        utilization: w.utilization(),
        phase_keys: PHASES.iter().map(|&p| phase_key(p).to_string()).collect(),
        phase_labels: PHASES.iter().map(|&p| phase_label(p).to_string()).collect(),
        phase_us: w.phases.iter().map(|(_, d)| us(d)).collect(),
        recent_ticks: w.recent_ticks.iter().map(tick_view).collect(),
        longest_tick: w.longest_tick.as_ref().map(tick_view),
        lag: time_quantiles(&w.lag),
        events_per_tick: count_quantiles(&w.events_per_tick),
        slowest,
        pool: PoolView {
            threads: pool.threads,
            depth: pool.queue_depth,
            max_depth: w.pool.max_depth,
            queue_wait: time_quantiles(&w.pool.queue_wait),
            run: time_quantiles(&w.pool.run),
            wake: time_quantiles(&w.pool.wake),
        },
        alive: AliveView {
            why: lp.explain_alive(),
            pending: lp.pending_callbacks(),
            kinds: kinds.collect(),
        },
        history: history.iter().copied().collect(),
    }
}
