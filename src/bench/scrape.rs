//! The benchmark reads a loop server's `/metrics` at the start and the end of the
//! recorded window (the server runs with `--metrics-addr`): the difference is what the
//! loop did during the window, in its own terms (time per phase, the pool's wake).
//!
//! This reader only takes what our own endpoint writes (`name{labels} value` lines);
//! the strict parser of the format lives with the tests (tests/util/prometheus.rs).

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One scrape: every sample by its series (`name{labels}` as written).
#[derive(Clone, Debug, Default)]
pub struct Scrape(HashMap<String, f64>);

/// A scrape is a few KiB; more is not our endpoint.
const MAX_SCRAPE: u64 = 1024 * 1024;

/// GET /metrics from `addr`.
pub fn scrape(addr: SocketAddr) -> io::Result<Scrape> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")?;
    let mut raw = String::new();
    s.take(MAX_SCRAPE).read_to_string(&mut raw)?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(|| io::Error::other("/metrics: no HTTP answer"))?;
    let samples = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(series, v)| Some((series.to_string(), v.parse().ok()?)))
        .collect();
    Ok(Scrape(samples))
}

impl Scrape {
    /// A sample's value (0 if absent).
    pub fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }
}

/// What the loop did between two scrapes.
#[derive(Clone, Debug, Default)]
pub struct LoopFigures {
    /// Seconds per phase (`phase` label → seconds).
    pub phase_s: Vec<(String, f64)>,
    /// Utilization over the window: 1 − idle/total.
    pub utilization: f64,
    /// Pool finish → `done`, µs: median and 99th percentile, and how many.
    pub wake_p50_us: f64,
    /// 99th percentile.
    pub wake_p99_us: f64,
    /// Jobs measured.
    pub wakes: u64,
}

/// The figures between `start` and `end`.
pub fn between(start: &Scrape, end: &Scrape) -> LoopFigures {
    let delta = |series: &str| (end.get(series) - start.get(series)).max(0.0);
    let phases = [
        "pending",
        "prepare",
        "poll_wait",
        "poll_io",
        "check",
        "close",
        "timers",
    ];
    let phase_s: Vec<(String, f64)> = phases
        .iter()
        .map(|p| {
            let series = format!("looplab_phase_seconds_total{{phase=\"{p}\"}}");
            (p.to_string(), delta(&series))
        })
        .collect();
    let total: f64 = phase_s.iter().map(|(_, s)| s).sum();
    let idle = delta("looplab_idle_seconds_total");
    let wake = "looplab_pool_wake_seconds";
    LoopFigures {
        utilization: if total > 0.0 { 1.0 - idle / total } else { 0.0 },
        phase_s,
        wake_p50_us: quantile(start, end, wake, 0.5) * 1e6,
        wake_p99_us: quantile(start, end, wake, 0.99) * 1e6,
        wakes: delta(&format!("{wake}_count")) as u64,
    }
}

/// Prometheus's `histogram_quantile` over the window: the bucket holding rank `q` of
/// the window's values, interpolated linearly inside it.
fn quantile(start: &Scrape, end: &Scrape, name: &str, q: f64) -> f64 {
    let prefix = format!("{name}_bucket{{le=\"");
    let mut buckets: Vec<(f64, f64)> = end
        .0
        .iter()
        .filter_map(|(series, v)| {
            let le = series.strip_prefix(&prefix)?.strip_suffix("\"}")?;
            let le: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, v - start.get(series)))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let Some(&(_, count)) = buckets.last() else {
        return 0.0;
    };
    if count <= 0.0 {
        return 0.0;
    }
    let rank = q * count;
    let (mut lower, mut below) = (0.0, 0.0);
    for (le, cum) in buckets {
        if cum >= rank {
            if le.is_infinite() {
                return lower; // past the last finite bound: say the bound
            }
            let inside = (cum - below).max(1e-12);
            return lower + (le - lower) * ((rank - below) / inside);
        }
        (lower, below) = (le, cum);
    }
    lower
}
