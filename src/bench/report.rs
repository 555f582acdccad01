//! The benchmark's output: a table on stdout, `results.json` with every figure and the
//! machine it ran on, and `echo.svg` with three panels (throughput, p99 latency, RSS
//! against connections, one line per server).

use super::runner::{BenchConfig, Row};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::Path;

/// Facts about the machine, so a figure is never read without its context.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    /// Logical CPUs.
    pub cores: usize,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// The OS.
    pub os: String,
    /// The loop backend `looplab echo` uses by default here.
    pub default_backend: String,
    /// `release` or `debug`: debug figures are not worth comparing.
    pub build_profile: String,
}

impl Machine {
    /// Read the facts of this machine.
    pub fn here() -> Machine {
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".into(), |s| s.trim().to_string()),
            os: std::env::consts::OS.to_string(),
            default_backend: crate::Backend::default_for_os().to_string(),
            build_profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
            .to_string(),
        }
    }
}

/// Everything `results.json` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Where it ran.
    pub machine: Machine,
    /// Message size, bytes.
    pub size: usize,
    /// Configured window and warmup, seconds.
    pub duration_s: f64,
    /// Warmup, seconds.
    pub warmup_s: f64,
    /// Load generator threads.
    pub client_threads: usize,
    /// Sweeps run; rows are each cell's median round.
    pub rounds: usize,
    /// The cores the load generator and the server were pinned to (empty: not pinned).
    pub client_cpus: Vec<usize>,
    /// The server's cores.
    pub server_cpus: Vec<usize>,
    /// One row per (server, connections).
    pub rows: Vec<Row>,
}

impl Report {
    /// Assemble a report for `rows` measured under `cfg` on `machine` (read it before
    /// pinning: the core count a pinned thread sees is its own mask's).
    pub fn new(machine: Machine, cfg: &BenchConfig, rows: Vec<Row>) -> Report {
        Report {
            machine,
            size: cfg.size,
            duration_s: cfg.duration.as_secs_f64(),
            warmup_s: cfg.warmup.as_secs_f64(),
            client_threads: cfg.client_threads,
            rounds: cfg.rounds,
            client_cpus: cfg.pin.as_ref().map(|p| p.0.clone()).unwrap_or_default(),
            server_cpus: cfg.pin.as_ref().map(|p| p.1.clone()).unwrap_or_default(),
            rows,
        }
    }
}

/// The table, as text.
pub fn table(report: &Report) -> String {
    let m = &report.machine;
    let mut out = format!(
        "echo, {} B messages, {:.1} s window after {:.1} s warmup, {} client thread(s), median of {} round(s); {} cores, {} {}, {} build\n",
        report.size, report.duration_s, report.warmup_s, report.client_threads, report.rounds, m.cores, m.os, m.kernel, m.build_profile
    );
    if report.server_cpus.is_empty() {
        out.push_str("not pinned: the scheduler places the client and the server\n");
    } else {
        out.push_str(&format!(
            "load generator pinned to cores {:?}, server to {:?}\n",
            report.client_cpus, report.server_cpus
        ));
    }
    out.push_str(&format!(
        "{:<8} {:>6} {:>10} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8} {:>7} {:>9} {:>9} {:>6} {:>10}\n",
        "server", "conns", "rt/s", "vs raw", "MB/s", "p50 ms", "p99 ms", "p99.9ms", "max ms", "errors", "RSS MiB", "KiB/conn", "threads", "vol csw", "invol csw", "cpu s", "rt/cpu-s"
    ));
    for r in &report.rows {
        let vs = r.vs_raw.map_or("-".to_string(), |v| format!("{v:.2}x"));
        out.push_str(&format!(
            "{:<8} {:>6} {:>10.0} {:>7} {:>7.2} {:>8.3} {:>8.3} {:>8.3} {:>8.1} {:>6} {:>8.1} {:>8.1} {:>7} {:>9} {:>9} {:>6.2} {:>10.0}\n",
            r.server,
            r.conns,
            r.rt_per_s,
            vs,
            r.mb_per_s,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.max_ms,
            r.errors,
            r.peak_rss_kib as f64 / 1024.0,
            r.rss_per_conn_kib,
            r.threads,
            r.voluntary_csw,
            r.involuntary_csw,
            r.cpu_user_s + r.cpu_sys_s,
            r.rt_per_cpu_s
        ));
        if let Some(line) = loop_line(r) {
            out.push_str(&line);
        }
        if r.connected < r.conns || r.stalled > 0 {
            out.push_str(&format!(
                "         ^ held {} of {} connections; {} got no echo in the window{}\n",
                r.connected,
                r.conns,
                r.stalled,
                if r.server_said.is_empty() {
                    String::new()
                } else {
                    format!("; server said: {}", r.server_said)
                }
            ));
        }
    }
    out
}

/// Under a loop server's row: where its loop's time went, and the pool's wake.
fn loop_line(r: &Row) -> Option<String> {
    let total: f64 = r.phase_s.iter().map(|(_, s)| s).sum();
    if total <= 0.0 {
        return None;
    }
    let shares: Vec<String> = r
        .phase_s
        .iter()
        .filter(|(_, s)| s / total >= 0.001)
        .map(|(p, s)| format!("{p} {:.1}%", 100.0 * s / total))
        .collect();
    let wake = match (r.pool_wake_p50_us, r.pool_wake_p99_us) {
        (Some(p50), Some(p99)) => {
            format!(
                "pool wake p50 {p50:.0} us p99 {p99:.0} us ({} jobs)",
                r.pool_wakes
            )
        }
        _ => "no pool jobs".to_string(),
    };
    let util = r.loop_utilization.unwrap_or(0.0) * 100.0;
    Some(format!(
        "         ^ loop {util:.0}% busy: {}; {wake}\n",
        shares.join(", ")
    ))
}

/// Read a `results.json` written earlier (for `--replot`).
pub fn read_json(path: &Path) -> io::Result<Report> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| crate::error::context(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a looplab results.json: {e}", path.display()),
        )
    })
}

/// Write `results.json`.
pub fn write_json(report: &Report, path: &Path) -> io::Result<()> {
    let json = serde_json::to_string_pretty(report).map_err(io::Error::other)?;
    std::fs::write(path, json + "\n")
}

/// The colours of the servers, in `--servers` order.
const COLORS: [RGBColor; 6] = [RED, BLUE, GREEN, MAGENTA, RGBColor(230, 140, 0), BLACK];

/// A panel: its title, the unit of its y axis, the figure it plots, and where its legend
/// sits clear of the lines (throughput falls to the right; latency and memory rise).
type Panel = (
    &'static str,
    &'static str,
    fn(&Row) -> f64,
    SeriesLabelPosition,
);

/// Write `echo.svg`: three panels against connections (log scale), one line per server.
pub fn write_svg(report: &Report, path: &Path) -> io::Result<()> {
    let err =
        |e: &dyn std::fmt::Display| io::Error::other(format!("drawing {}: {e}", path.display()));
    let mut servers: Vec<&str> = Vec::new();
    for r in &report.rows {
        if !servers.contains(&r.server.as_str()) {
            servers.push(&r.server);
        }
    }
    let max_conns = report
        .rows
        .iter()
        .map(|r| r.conns)
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    let min_conns = report
        .rows
        .iter()
        .map(|r| r.conns)
        .min()
        .unwrap_or(1)
        .max(1) as f64;
    let panels: [Panel; 3] = [
        (
            "Throughput",
            "round trips / s",
            |r| r.rt_per_s,
            SeriesLabelPosition::LowerRight,
        ),
        (
            "p99 latency",
            "ms",
            |r| r.p99_ms,
            SeriesLabelPosition::UpperLeft,
        ),
        (
            "Server memory (peak RSS)",
            "MiB",
            |r| r.peak_rss_kib as f64 / 1024.0,
            SeriesLabelPosition::UpperLeft,
        ),
    ];
    let root = SVGBackend::new(path, (1500, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let areas = root.split_evenly((1, 3));
    for (area, (title, unit, value, legend_at)) in areas.iter().zip(panels) {
        let top = report
            .rows
            .iter()
            .map(value)
            .fold(0.0f64, f64::max)
            .max(1e-3)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((min_conns..max_conns).log_scale(), 0f64..top)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_labels(8)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| short_number(*y))
            .x_desc("connections (log scale)")
            .y_desc(unit)
            .draw()
            .map_err(|e| err(&e))?;
        for (i, server) in servers.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let points: Vec<(f64, f64)> = report
                .rows
                .iter()
                .filter(|r| r.server == *server)
                .map(|r| (r.conns as f64, value(r)))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(*server)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(legend_at)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

/// 120000 -> "120k", 2.5 -> "2.5": axis labels a reader can take in at a glance.
fn short_number(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}
