//! What the loop did and why: one trace line per tick, and counters for `metrics()`.
//!
//! The trace is the thing no production runtime shows you: for every tick, which timers
//! fired, the poll timeout and *which rule chose it*, how long the kernel really kept us
//! waiting, every event and whose handle it was for, pool completions and how many
//! self-pipe drains delivered them, immediates, closes, and why the loop goes on or exits.

use crate::handle::HandleKind;
use std::fmt::{self, Write as _};
use std::io::Write;
use std::time::Duration;

/// Why the poll phase waited as long as it did (DESIGN.md, "One tick", step 4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeoutRule {
    /// `RunMode::NoWait`: poll and never block.
    NoWait,
    /// `stop()` was called: finish this tick quickly.
    Stopped,
    /// Nothing holds the loop: this is the last tick.
    NotAlive,
    /// Deferred callbacks (write results, reads to retry) wait for the next tick.
    Pending(usize),
    /// `RunMode::Once` and the pending phase ran callbacks: that was this tick's progress.
    OnceRanPending(usize),
    /// Immediates are queued for the check phase.
    Immediates(usize),
    /// Handles are closing; their callbacks run in this tick's close phase.
    Closing(usize),
    /// Until the next timer, by its handle id.
    Timer {
        /// The handle id of the timer that fires first.
        id: u32,
        /// How long until it is due.
        due_in: Duration,
    },
    /// No timer at all: only I/O, a signal or a wakeup can end the wait.
    Infinite,
}

impl fmt::Display for TimeoutRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeoutRule::NoWait => f.write_str("NoWait"),
            TimeoutRule::Stopped => f.write_str("stop"),
            TimeoutRule::NotAlive => f.write_str("not alive"),
            TimeoutRule::Pending(n) => write!(f, "{n} pending"),
            TimeoutRule::OnceRanPending(n) => write!(f, "Once: {n} pending ran"),
            TimeoutRule::Immediates(n) => write!(f, "{n} immediates"),
            TimeoutRule::Closing(n) => write!(f, "{n} closing"),
            TimeoutRule::Timer { id, due_in } => {
                write!(f, "next timer #{id} due in {}", ms(*due_in))
            }
            TimeoutRule::Infinite => f.write_str("infinite: no timer"),
        }
    }
}

pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

/// Counters the loop keeps whether or not tracing is on.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counters {
    pub ticks: u64,
    pub events: u64,
    pub idle: Duration,
    pub timers_fired: u64,
    pub lateness_total: Duration,
    pub lateness_max: Duration,
    pub wake_drains: u64,
    pub completions: u64,
    pub max_completions_per_drain: u64,
}

/// A snapshot of the loop's counters (see [`Loop::metrics`](crate::Loop::metrics)).
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    /// Ticks (loop iterations) run so far.
    pub ticks: u64,
    /// Readiness events delivered by the poller.
    pub events: u64,
    /// Time spent blocked in the poller: the loop was idle.
    pub idle: Duration,
    /// Timer callbacks run.
    pub timers_fired: u64,
    /// How late timers fired after their deadline (loop lag): the worst case...
    pub timer_lateness_max: Duration,
    /// ...and the mean.
    pub timer_lateness_mean: Duration,
    /// Live handles, and of them the active and the ref'd-and-active ones.
    /// Live handles.
    pub handles: usize,
    /// Of them, the active ones.
    pub active_handles: usize,
    /// Of them, the active and ref'd ones: what holds the loop.
    pub ref_handles: usize,
    /// Self-pipe drains that delivered pool completions or async sends.
    pub wake_drains: u64,
    /// Wakes asked of the self-pipe (async sends, pool completions), and the bytes
    /// really written: the difference is wakes that coalesced.
    pub wake_requests: u64,
    /// Bytes written to the self-pipe.
    pub wake_writes: u64,
    /// Pool completions delivered.
    pub completions: u64,
    /// The most completions one drain delivered.
    pub max_completions_per_drain: u64,
    /// Thread pool figures (zero until the pool has started).
    pub pool: crate::pool::PoolMetrics,
}

/// The record of one tick, filled as the phases run, printed at its end.
#[derive(Default)]
pub(crate) struct TickRecord {
    pub fired: Vec<u32>,
    pub next_due: Option<(u32, Duration)>,
    pub timeout: Option<(Option<Duration>, TimeoutRule)>,
    pub waited: Duration,
    pub events: Vec<String>,
    pub completions: usize,
    pub drains: usize,
    pub pending: usize,
    pub immediates: usize,
    pub closes: Vec<u32>,
    /// What went wrong that no caller could be told (a failed drain, a socket option).
    pub notes: Vec<String>,
}

pub(crate) struct Tracer {
    pub enabled: bool,
    pub tick: TickRecord,
    out: Box<dyn Write + Send>,
}

impl Tracer {
    pub fn new(enabled: bool, out: Option<Box<dyn Write + Send>>) -> Tracer {
        Tracer {
            enabled,
            tick: TickRecord::default(),
            out: out.unwrap_or_else(|| Box::new(std::io::stderr())),
        }
    }

    // One call per phase site, each a no-op when tracing is off.

    pub fn pending(&mut self, n: usize) {
        if self.enabled {
            self.tick.pending = n;
        }
    }

    pub fn polled(&mut self, timeout: Option<Duration>, rule: TimeoutRule, waited: Duration) {
        if self.enabled {
            self.tick.timeout = Some((timeout, rule));
            self.tick.waited = waited;
        }
    }

    pub fn drained(&mut self, completions: usize) {
        if self.enabled {
            self.tick.drains += 1;
            self.tick.completions += completions;
        }
    }

    pub fn fired(&mut self, id: u32) {
        if self.enabled {
            self.tick.fired.push(id);
        }
    }

    pub fn immediates(&mut self, n: usize) {
        if self.enabled {
            self.tick.immediates = n;
        }
    }

    pub fn closed(&mut self, id: u32) {
        if self.enabled {
            self.tick.closes.push(id);
        }
    }

    pub fn note(&mut self, note: String) {
        if self.enabled {
            self.tick.notes.push(note);
        }
    }

    /// Print this tick's line and start a fresh record. `alive` explains what holds the
    /// loop (or says why it exits).
    pub fn finish_tick(&mut self, tick: u64, since_start: Duration, alive: &str) {
        let t = std::mem::take(&mut self.tick);
        let mut line = format!("[looplab] tick {tick} @{}", ms(since_start));
        if !t.fired.is_empty() {
            let ids: Vec<String> = t.fired.iter().map(|id| format!("#{id}")).collect();
            let _ = write!(line, " | timers fired {}", ids.join(" "));
        }
        if let Some((id, due)) = t.next_due {
            let _ = write!(line, " | next timer #{id} in {}", ms(due));
        }
        if t.pending > 0 {
            let _ = write!(line, " | pending {}", t.pending);
        }
        if let Some((timeout, rule)) = &t.timeout {
            let chosen = timeout.map_or("forever".to_string(), ms);
            let _ = write!(line, " | poll {chosen} ({rule}), waited {}", ms(t.waited));
        }
        if !t.events.is_empty() {
            let _ = write!(line, " | events: {}", t.events.join(", "));
        }
        if t.drains > 0 || t.completions > 0 {
            let _ = write!(
                line,
                " | self-pipe: {} drain(s), {} pool completion(s)",
                t.drains, t.completions
            );
        }
        if t.immediates > 0 {
            let _ = write!(line, " | immediates {}", t.immediates);
        }
        if !t.closes.is_empty() {
            let ids: Vec<String> = t.closes.iter().map(|id| format!("#{id}")).collect();
            let _ = write!(line, " | closed {}", ids.join(" "));
        }
        for note in &t.notes {
            let _ = write!(line, " | note: {note}");
        }
        let _ = write!(line, " | {alive}");
        // A trace that cannot be written is not worth failing the loop for.
        let _ = writeln!(self.out, "{line}");
    }
}

/// "2 timer, 1 tcp": a count of handles by kind, in a stable order.
pub(crate) fn count_by_kind(kinds: impl Iterator<Item = HandleKind>) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for k in kinds {
        *counts.entry(k).or_insert(0usize) += 1;
    }
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    parts.join(", ")
}
