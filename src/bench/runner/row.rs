//! The figures of one (server, connections) cell, and what is made of a sweep's cells:
//! the median of its rounds, and each server's throughput against the raw floor.

use super::{Sampler, ServerKind};
use crate::bench::loadgen::LoadResult;
use crate::bench::procstat::ProcSample;
use crate::bench::scrape;
use serde::{Deserialize, Serialize};

/// Every figure for one (server, connections) cell.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Row {
    /// Server name.
    pub server: String,
    /// Connections asked for.
    pub conns: usize,
    /// Connections that connected, and of them the ones that got no service.
    pub connected: usize,
    /// Connections that got no echo in the window.
    pub stalled: usize,
    /// Round trips in the window.
    pub round_trips: u64,
    /// The real window, seconds.
    pub window_s: f64,
    /// Round trips per second.
    pub rt_per_s: f64,
    /// Throughput relative to `raw` at the same connections (when raw ran).
    pub vs_raw: Option<f64>,
    /// Echoed payload, MB/s (10^6 bytes).
    pub mb_per_s: f64,
    /// Latency percentiles, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Worst round trip, ms.
    pub max_ms: f64,
    /// Corrupted echoes, dropped connections, failed connects.
    pub errors: u64,
    /// Peak RSS of the server process, KiB (VmHWM).
    pub peak_rss_kib: u64,
    /// RSS growth per connection, KiB: (RSS at the window's end - RSS before any client) / conns.
    pub rss_per_conn_kib: f64,
    /// Server threads at the window's end.
    pub threads: u64,
    /// Context switches of the server during the window.
    pub voluntary_csw: u64,
    /// Involuntary context switches during the window.
    pub involuntary_csw: u64,
    /// Server CPU seconds during the window.
    pub cpu_user_s: f64,
    /// Kernel-mode CPU seconds during the window.
    pub cpu_sys_s: f64,
    /// Round trips per server CPU-second: work per unit of CPU.
    pub rt_per_cpu_s: f64,
    /// What the server said on stderr, if anything (e.g. it could not start a thread).
    pub server_said: String,
    /// A loop server's seconds per phase in the window (from its `/metrics`).
    #[serde(default)]
    pub phase_s: Vec<(String, f64)>,
    /// A loop server's utilization in the window (1 − idle/total).
    #[serde(default)]
    pub loop_utilization: Option<f64>,
    /// Pool job finish → its `done` on the loop, µs, median (the metrics probe's jobs).
    #[serde(default)]
    pub pool_wake_p50_us: Option<f64>,
    /// The same, 99th percentile.
    #[serde(default)]
    pub pool_wake_p99_us: Option<f64>,
    /// Pool jobs those figures are over.
    #[serde(default)]
    pub pool_wakes: u64,
    /// Which round measured this row (1 up); in a median row, the median round's.
    #[serde(default)]
    pub round: usize,
    /// Rounds measured for this cell, and the lowest and highest rt/s among them.
    pub rounds: usize,
    /// Lowest rt/s of the rounds.
    pub rt_per_s_min: f64,
    /// Highest rt/s of the rounds.
    pub rt_per_s_max: f64,
}

impl Row {
    /// The row for one measured cell: the load's figures, the server's `/proc` over the
    /// window, and what its `/metrics` said.
    pub(super) fn measured(
        kind: ServerKind,
        conns: usize,
        r: &LoadResult,
        before: &ProcSample,
        s: &Sampler,
        said: String,
    ) -> Row {
        let window = r.window.as_secs_f64().max(1e-9);
        let (cpu_user, cpu_sys) = super::super::procstat::cpu_between(&s.start, &s.end);
        let cpu = cpu_user + cpu_sys;
        let pct = |q: f64| r.latency.value_at_quantile(q) as f64 / 1000.0;
        let empty = r.latency.is_empty();
        Row {
            server: kind.name().to_string(),
            conns,
            connected: r.connected,
            stalled: r.stalled,
            round_trips: r.round_trips,
            window_s: window,
            rt_per_s: r.round_trips as f64 / window,
            vs_raw: None,
            mb_per_s: r.bytes as f64 / window / 1e6,
            p50_ms: if empty { 0.0 } else { pct(0.50) },
            p99_ms: if empty { 0.0 } else { pct(0.99) },
            p999_ms: if empty { 0.0 } else { pct(0.999) },
            max_ms: r.latency.max() as f64 / 1000.0,
            errors: r.errors + r.connect_failures as u64,
            peak_rss_kib: s.end.hwm_kib,
            rss_per_conn_kib: s.end.rss_kib.saturating_sub(before.rss_kib) as f64
                / conns.max(1) as f64,
            threads: s.end.threads,
            voluntary_csw: s.end.voluntary.saturating_sub(s.start.voluntary),
            involuntary_csw: s.end.involuntary.saturating_sub(s.start.involuntary),
            cpu_user_s: cpu_user,
            cpu_sys_s: cpu_sys,
            rt_per_cpu_s: if cpu > 0.0 {
                r.round_trips as f64 / cpu
            } else {
                0.0
            },
            server_said: said.lines().take(3).collect::<Vec<_>>().join(" / "),
            rounds: 1,
            rt_per_s_min: r.round_trips as f64 / window,
            rt_per_s_max: r.round_trips as f64 / window,
            ..scrape::row_figures(&s.scrapes)
        }
    }
}

/// Fill `vs_raw` for every row with a `raw` row at the same connection count.
pub fn relate_to_raw(rows: &mut [Row]) {
    let raw: Vec<(usize, f64)> = rows
        .iter()
        .filter(|r| r.server == "raw")
        .map(|r| (r.conns, r.rt_per_s))
        .collect();
    for r in rows.iter_mut() {
        r.vs_raw = raw
            .iter()
            .find(|(c, rate)| *c == r.conns && *rate > 0.0)
            .map(|(_, rate)| r.rt_per_s / rate);
    }
}

/// One row per (server, conns), in table order: the median round by rt/s, with the
/// spread of all rounds recorded beside it.
pub fn median_rounds(rows: Vec<Row>, servers: &[ServerKind], conns: &[usize]) -> Vec<Row> {
    let mut out = Vec::new();
    for s in servers {
        for &c in conns {
            let mut cell: Vec<&Row> = rows
                .iter()
                .filter(|r| r.server == s.name() && r.conns == c)
                .collect();
            if cell.is_empty() {
                continue;
            }
            cell.sort_by(|a, b| a.rt_per_s.total_cmp(&b.rt_per_s));
            let mut median = cell[cell.len() / 2].clone();
            median.rounds = cell.len();
            median.rt_per_s_min = cell[0].rt_per_s;
            median.rt_per_s_max = cell[cell.len() - 1].rt_per_s;
            out.push(median);
        }
    }
    out
}
