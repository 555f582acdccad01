//! `GET /metrics`: the loop's figures in the Prometheus text exposition format (version
//! 0.0.4), the ecosystem's convention: counters that only grow (`_total`), gauges, and
//! histograms as cumulative `_bucket{le=".."}` lines, then `_sum` and `_count`.
//!
//! The histograms are the loop's own (src/metrics/histogram.rs), exported at powers of
//! two: `le` is `2^k − 1` nanoseconds (or events), the top of a bucket, so every count is
//! exact rather than interpolated. Durations are in seconds, as Prometheus expects.

use crate::metrics::{phase_key, Histogram, LoopTotals, SlowCallback};
use crate::Loop;
use std::fmt::Write as _;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Duration buckets: 2^10 − 1 ns (~1 µs) up to 2^35 − 1 ns (~34 s).
const DURATION_BITS: std::ops::RangeInclusive<u32> = 10..=35;
/// Events-per-poll buckets: 0, 1, 3, 7, ... 2^14 − 1.
const COUNT_BITS: std::ops::RangeInclusive<u32> = 0..=14;

/// What the endpoint adds to the loop's own figures.
pub struct Extra {
    /// Utilization of the last window (0 before the first).
    pub utilization: f64,
    /// The last window's slowest callback.
    pub slowest: Option<SlowCallback>,
}

/// The whole exposition.
pub fn render(lp: &Loop, extra: &Extra) -> String {
    let t = lp.loop_totals();
    let m = lp.metrics();
    let mut out = String::with_capacity(8 * 1024);
    let o = &mut out;
    counter(
        o,
        "looplab_ticks_total",
        "Loop iterations run.",
        t.ticks as f64,
    );
    counter(
        o,
        "looplab_events_total",
        "Readiness events the poller delivered.",
        t.events as f64,
    );
    counter(
        o,
        "looplab_callbacks_total",
        "Callbacks run (each timed).",
        t.callbacks as f64,
    );
    counter(
        o,
        "looplab_timers_fired_total",
        "Timer callbacks run.",
        m.timers_fired as f64,
    );
    phases(o, &t);
    counter(
        o,
        "looplab_idle_seconds_total",
        "Time blocked in a poll that could block.",
        t.idle.as_secs_f64(),
    );
    gauge(
        o,
        "looplab_utilization",
        "Event-loop utilization of the last window: 1 - idle/total.",
        extra.utilization,
    );
    histogram(
        o,
        "looplab_lag_seconds",
        "How late timer callbacks started after their deadline.",
        &t.lag,
        Unit::Seconds,
    );
    histogram(
        o,
        "looplab_events_per_tick",
        "Events per poll.",
        &t.events_per_tick,
        Unit::Count,
    );
    handles(o, lp);
    gauge(
        o,
        "looplab_pending_callbacks",
        "Deferred callbacks waiting for the next pending phase.",
        lp.pending_callbacks() as f64,
    );
    pool(o, &t, &m.pool);
    slowest(o, extra.slowest.as_ref());
    out
}

fn header(o: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn counter(o: &mut String, name: &str, help: &str, v: f64) {
    header(o, name, help, "counter");
    let _ = writeln!(o, "{name} {v}");
}

fn gauge(o: &mut String, name: &str, help: &str, v: f64) {
    header(o, name, help, "gauge");
    let _ = writeln!(o, "{name} {v}");
}

fn phases(o: &mut String, t: &LoopTotals) {
    let name = "looplab_phase_seconds_total";
    header(o, name, "Time spent in each phase of the tick.", "counter");
    for (phase, d) in t.phases.iter() {
        let key = phase_key(phase);
        let _ = writeln!(o, "{name}{{phase=\"{key}\"}} {}", d.as_secs_f64());
    }
}

#[derive(Clone, Copy)]
enum Unit {
    Seconds,
    Count,
}

fn histogram(o: &mut String, name: &str, help: &str, h: &Histogram, unit: Unit) {
    header(o, name, help, "histogram");
    let (bits, scale) = match unit {
        Unit::Seconds => (DURATION_BITS, 1e-9),
        Unit::Count => (COUNT_BITS, 1.0),
    };
    for b in bits {
        let top = (1u64 << b) - 1;
        let le = match unit {
            Unit::Seconds => seconds_of_ns(top),
            Unit::Count => top.to_string(),
        };
        let n = h.count_below_pow2(b);
        let _ = writeln!(o, "{name}_bucket{{le=\"{le}\"}} {n}");
    }
    let _ = writeln!(o, "{name}_bucket{{le=\"+Inf\"}} {}", h.count());
    let _ = writeln!(o, "{name}_sum {}", h.sum() as f64 * scale);
    let _ = writeln!(o, "{name}_count {}", h.count());
}

fn handles(o: &mut String, lp: &Loop) {
    let name = "looplab_handles";
    header(
        o,
        name,
        "Live handles by kind and state (refd and unrefd are active).",
        "gauge",
    );
    let counts = lp.handle_counts();
    for c in &counts {
        let kind = c.kind.name();
        for (state, n) in [
            ("refd", c.refd),
            ("unrefd", c.unrefd),
            ("inactive", c.inactive),
            ("closing", c.closing),
        ] {
            let _ = writeln!(o, "{name}{{kind=\"{kind}\",state=\"{state}\"}} {n}");
        }
    }
    let name = "looplab_requests_in_flight";
    header(
        o,
        name,
        "Requests in flight by handle kind: each holds the loop.",
        "gauge",
    );
    for c in &counts {
        let _ = writeln!(o, "{name}{{kind=\"{}\"}} {}", c.kind.name(), c.requests);
    }
}

fn pool(o: &mut String, t: &LoopTotals, p: &crate::PoolMetrics) {
    gauge(
        o,
        "looplab_pool_threads",
        "Pool worker threads (0 until the first job).",
        p.threads as f64,
    );
    gauge(
        o,
        "looplab_pool_queue_depth",
        "Pool jobs waiting for a worker now.",
        p.queue_depth as f64,
    );
    counter(
        o,
        "looplab_pool_jobs_total",
        "Pool jobs finished by a worker.",
        p.done as f64,
    );
    let seconds = Unit::Seconds;
    histogram(
        o,
        "looplab_pool_queue_wait_seconds",
        "Time a pool job waited for a worker.",
        &t.pool.queue_wait,
        seconds,
    );
    histogram(
        o,
        "looplab_pool_run_seconds",
        "Time a pool job ran on its worker.",
        &t.pool.run,
        seconds,
    );
    histogram(
        o,
        "looplab_pool_wake_seconds",
        "Time from a pool job's finish to its done callback starting on the loop.",
        &t.pool.wake,
        seconds,
    );
}

fn slowest(o: &mut String, s: Option<&SlowCallback>) {
    let name = "looplab_slowest_callback_seconds";
    header(
        o,
        name,
        "The slowest callback of the last window, with its phase and handle.",
        "gauge",
    );
    if let Some(s) = s {
        let kind = s.site.kind.map_or("deferred", |k| k.name());
        let handle = s.site.handle.map_or(String::new(), |h| h.to_string());
        let _ = writeln!(
            o,
            "{name}{{phase=\"{}\",kind=\"{kind}\",handle=\"{}\"}} {}",
            phase_key(s.phase),
            escape(&handle),
            s.took.as_secs_f64()
        );
    }
}

/// Whole nanoseconds as decimal seconds, exactly ("0.000001023"): `le` values are
/// compared as numbers, and a float's rounding would make 2^12 − 1 ns read 4.095000000000001 µs.
fn seconds_of_ns(ns: u64) -> String {
    let s = format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A label value: backslash, double quote and line feed escaped, as the format asks.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
