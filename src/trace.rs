//! What the loop did and why: the trace, in time, and counters for `metrics()`.
//!
//! The trace is the thing no production runtime shows you: for every tick, the poll
//! timeout and *which rule chose it*, how long the kernel really kept us waiting, every
//! event and whose handle it was for, pool completions and how many self-pipe drains
//! delivered them, immediates, closes, timers fired, callbacks that ran long, and why the
//! loop goes on or exits. It is printed as it happens, so a callback's own output falls
//! between the lines that frame it:
//!
//! ```text
//! [looplab +12.3ms] tick 4 | sleeping up to 25000.0ms (next timer #4.2 due in 25000.0ms)
//! [looplab +25012.4ms] tick 4 | poll waited 25000.1ms | events: fd 9 r -> tcp #3.2
//! [looplab +25012.9ms] tick 4 done | closed #3.2 | timers fired #4.2 | alive: ref'd: 1 listener
//! ```
//!
//! Times are from the loop's creation; handles are `#slot.generation`, so a reused slot
//! is visibly a new handle.

use crate::handle::{Handle, HandleKind};
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
    /// Idle handles are active: the loop polls without blocking while they live.
    Idle(usize),
    /// Tasks were woken (or leaf futures asked the loop for something) since the tasks
    /// phase last ran.
    Tasks(usize),
    /// Until the next timer.
    Timer {
        /// The timer that fires first.
        handle: Handle,
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
            TimeoutRule::Idle(n) => write!(f, "{n} idle"),
            TimeoutRule::Tasks(n) => write!(f, "{n} tasks ready"),
            TimeoutRule::Timer { handle, due_in } => {
                write!(f, "next timer {handle} due in {}", ms(*due_in))
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
    pub reads: u64,
    pub reads_empty: u64,
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
    /// Tasks spawned so far.
    pub tasks_spawned: u64,
    /// Task polls so far (a task is polled once per wake, coalesced).
    pub tasks_polled: u64,
    /// Tasks that have not ended yet.
    pub tasks_alive: usize,
    /// Read system calls made on streams.
    pub reads: u64,
    /// Of them, the ones that found nothing to read (`WouldBlock`).
    pub reads_empty: u64,
}

/// A callback that runs longer than this is named in the trace line of its tick.
pub(crate) const SLOW_CALLBACK: Duration = Duration::from_millis(10);

/// What happened after the poll, printed at the end of the tick.
#[derive(Default)]
pub(crate) struct TickRecord {
    pub fired: Vec<Handle>,
    pub completions: usize,
    pub drains: usize,
    pub immediates: usize,
    /// Idle, prepare and check handles that ran, in that order.
    pub watchers: [usize; 3],
    /// Children reaped after a SIGCHLD: "pid 4242 exit 0".
    pub reaped: Vec<String>,
    /// The tasks phase: what was polled and what woke each.
    pub tasks: Option<String>,
    pub closes: Vec<Handle>,
    /// Callbacks that ran longer than [`SLOW_CALLBACK`].
    pub slow: Vec<(String, Duration)>,
    /// What went wrong that no caller could be told (a failed drain, a socket option).
    pub notes: Vec<String>,
}

#[repr(C)]
pub(crate) struct Tracer {
    /// First, in C's order: the loop reads it on every event (see `Loop`'s own order).
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

    fn line(&mut self, since_start: Duration, tick: u64, rest: &str) {
        // A trace that cannot be written is not worth failing the loop for.
        let _ = writeln!(self.out, "[looplab +{}] tick {tick}{rest}", ms(since_start));
        let _ = self.out.flush();
    }

    /// Before a poll that may block: said now, so a long sleep never looks like a hang.
    pub fn sleeping(
        &mut self,
        at: Duration,
        tick: u64,
        pending: usize,
        timeout: Option<Duration>,
        rule: &TimeoutRule,
    ) {
        if !self.enabled || timeout == Some(Duration::ZERO) {
            return;
        }
        let mut rest = String::new();
        if pending > 0 {
            let _ = write!(rest, " | pending {pending} ran");
        }
        match timeout {
            Some(t) => {
                let _ = write!(rest, " | sleeping up to {} ({rule})", ms(t));
            }
            None => {
                let _ = write!(rest, " | sleeping until an event ({rule})");
            }
        }
        self.line(at, tick, &rest);
    }

    /// Right after the poll, before any event is dispatched.
    #[allow(clippy::too_many_arguments)]
    pub fn polled(
        &mut self,
        at: Duration,
        tick: u64,
        pending: usize,
        timeout: Option<Duration>,
        rule: &TimeoutRule,
        waited: Duration,
        events: &[String],
    ) {
        if !self.enabled {
            return;
        }
        let mut rest = String::new();
        if timeout == Some(Duration::ZERO) {
            if pending > 0 {
                let _ = write!(rest, " | pending {pending} ran");
            }
            let _ = write!(rest, " | poll 0ms ({rule})");
        } else {
            let _ = write!(rest, " | poll waited {}", ms(waited));
        }
        if !events.is_empty() {
            let _ = write!(rest, " | events: {}", events.join(", "));
        }
        self.line(at, tick, &rest);
    }

    pub fn drained(&mut self, completions: usize) {
        if self.enabled {
            self.tick.drains += 1;
            self.tick.completions += completions;
        }
    }

    pub fn fired(&mut self, h: Handle) {
        if self.enabled {
            self.tick.fired.push(h);
        }
    }

    pub fn immediates(&mut self, n: usize) {
        if self.enabled {
            self.tick.immediates = n;
        }
    }

    /// Idle, prepare or check handles that ran this tick.
    pub fn per_tick(&mut self, kind: HandleKind, ran: usize) {
        let slot = match kind {
            HandleKind::Idle => 0,
            HandleKind::Prepare => 1,
            _ => 2,
        };
        if self.enabled {
            self.tick.watchers[slot] = ran;
        }
    }

    /// A child of this loop was reaped: `what` says which and how it ended.
    pub fn reaped(&mut self, what: String) {
        if self.enabled {
            self.tick.reaped.push(what);
        }
    }

    pub fn tasks(&mut self, line: String) {
        if self.enabled {
            self.tick.tasks = Some(line);
        }
    }

    pub fn closed(&mut self, h: Handle) {
        if self.enabled {
            self.tick.closes.push(h);
        }
    }

    pub fn slow(&mut self, what: String, took: Duration) {
        if self.enabled {
            self.tick.slow.push((what, took));
        }
    }

    pub fn note(&mut self, note: String) {
        if self.enabled {
            self.tick.notes.push(note);
        }
    }

    /// The end of the tick: what ran after the poll, and why the loop goes on or exits.
    pub fn finish_tick(&mut self, at: Duration, tick: u64, alive: &str) {
        let t = std::mem::take(&mut self.tick);
        let mut rest = String::from(" done");
        if t.drains > 0 || t.completions > 0 {
            let _ = write!(
                rest,
                " | self-pipe: {} drain(s), {} pool completion(s)",
                t.drains, t.completions
            );
        }
        // In the order they ran: idle and prepare before the poll, reaping in it, the
        // tasks after it, then immediates and check handles.
        let [idle, prepare, check] = t.watchers;
        for (n, what) in [(idle, "idle"), (prepare, "prepare")] {
            if n > 0 {
                let _ = write!(rest, " | {what} {n}");
            }
        }
        if !t.reaped.is_empty() {
            let _ = write!(rest, " | reaped {}", t.reaped.join(", "));
        }
        if let Some(tasks) = &t.tasks {
            let _ = write!(rest, " | tasks: {tasks}");
        }
        for (n, what) in [(t.immediates, "immediates"), (check, "check")] {
            if n > 0 {
                let _ = write!(rest, " | {what} {n}");
            }
        }
        if !t.closes.is_empty() {
            let _ = write!(rest, " | closed {}", handles(&t.closes));
        }
        if !t.fired.is_empty() {
            let _ = write!(rest, " | timers fired {}", handles(&t.fired));
        }
        for (what, took) in &t.slow {
            let _ = write!(rest, " | slow callback: {what} took {}", ms(*took));
        }
        for note in &t.notes {
            let _ = write!(rest, " | note: {note}");
        }
        let _ = write!(rest, " | {alive}");
        self.line(at, tick, &rest);
    }
}

fn handles(hs: &[Handle]) -> String {
    let shown: Vec<String> = hs.iter().map(|h| h.to_string()).collect();
    shown.join(" ")
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
