//! The benchmark's output: a table on stdout, `results.json` with every figure and the
//! machine it ran on, and `echo.svg`: three panels (throughput, p99 latency, RSS against
//! connections, one line per server) under a caption that names the machine and the
//! settings, so the picture is never read without them.

use super::runner::{BenchConfig, Row};
use plotters::coord::ranged1d::ValueFormatter;
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
    /// The CPU's model name (`/proc/cpuinfo`), "unknown" elsewhere.
    #[serde(default)]
    pub cpu: String,
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
            cpu: cpu_model(),
        }
    }

    /// "2 cores (Intel(R) Xeon(R) Processor), linux 6.18, release build": one line.
    pub fn describe(&self) -> String {
        let cpu = if self.cpu.is_empty() || self.cpu == "unknown" {
            String::new()
        } else {
            format!(" ({})", self.cpu)
        };
        format!(
            "{} cores{cpu}, {} {}, {} build",
            self.cores, self.os, self.kernel, self.build_profile
        )
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|rest| rest.split(':').nth(1))
                .map(|name| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
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

impl Report {
    /// The settings in one line: what was measured, how, and where the two sides ran.
    pub fn settings(&self) -> String {
        let pinning = if self.server_cpus.is_empty() {
            "not pinned".to_string()
        } else {
            format!(
                "load generator on core(s) {}, server on {}",
                cores(&self.client_cpus),
                cores(&self.server_cpus)
            )
        };
        format!(
            "{} B messages, {} s window after {} s warmup ({} ms per connection at least), {} client thread(s), median of {} round(s); {pinning}",
            self.size,
            self.duration_s,
            self.warmup_s,
            super::runner::WARMUP_PER_CONN.as_secs_f64() * 1000.0,
            self.client_threads,
            self.rounds
        )
    }
}

fn cores(list: &[usize]) -> String {
    let shown: Vec<String> = list.iter().map(usize::to_string).collect();
    shown.join(",")
}

/// The table, as text.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "echo: {}\n{}\n",
        report.settings(),
        report.machine.describe()
    );
    if report.server_cpus.is_empty() {
        out.push_str("not pinned: the scheduler places the client and the server\n");
    }
    if report.rounds > 1 {
        out.push_str("spread: (highest - lowest rt/s of the rounds) / the median\n");
    }
    out.push_str(&format!(
        "{:<8} {:>6} {:>10} {:>7} {:>6} {:>7} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8} {:>7} {:>9} {:>9} {:>6} {:>10}\n",
        "server", "conns", "rt/s", "vs raw", "spread", "MB/s", "p50 ms", "p99 ms", "p99.9ms", "max ms", "errors", "RSS MiB", "KiB/conn", "threads", "vol csw", "invol csw", "cpu s", "rt/cpu-s"
    ));
    for r in &report.rows {
        let vs = r.vs_raw.map_or("-".to_string(), |v| format!("{v:.2}x"));
        let spread = if r.rounds > 1 && r.rt_per_s > 0.0 {
            format!(
                "{:.0}%",
                (r.rt_per_s_max - r.rt_per_s_min) / r.rt_per_s * 100.0
            )
        } else {
            "-".to_string()
        };
        out.push_str(&format!(
            "{:<8} {:>6} {:>10.0} {:>7} {:>6} {:>7.2} {:>8.3} {:>8.3} {:>8.3} {:>8.1} {:>6} {:>8.1} {:>8.1} {:>7} {:>9} {:>9} {:>6.2} {:>10.0}\n",
            r.server,
            r.conns,
            r.rt_per_s,
            vs,
            spread,
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

/// Each server's colour, the same in every panel and every plot: a reader who learns
/// that red is `threads` can trust it in the next picture too.
fn color_of(server: &str) -> RGBColor {
    match server {
        "threads" => RGBColor(214, 39, 40),
        "epoll" => RGBColor(31, 119, 180),
        "kqueue" => RGBColor(148, 103, 189),
        "mio" => RGBColor(44, 160, 44),
        "raw" => RGBColor(90, 90, 90),
        "tokio" => RGBColor(255, 127, 14),
        _ => BLACK,
    }
}

/// Text of at least this many pixels: axis numbers stay legible when the image is shown
/// at half its width.
const TEXT_PX: u32 = 15;
const SIZE: (u32, u32) = (1500, 600);
const CAPTION_HEIGHT: u32 = 110;

/// A panel: its title, the unit of its y axis, the figure it plots, and whether the y
/// axis is logarithmic (latency spans four decades between 10 and 5000 connections).
type Panel = (&'static str, &'static str, fn(&Row) -> f64, bool);

/// The throughput panel also draws each cell's range over its rounds, lowest to highest.
const PANELS: [Panel; 3] = [
    (
        THROUGHPUT,
        "round trips / s (bars: lowest to highest round)",
        |r| r.rt_per_s,
        false,
    ),
    ("p99 latency", "ms (log scale)", |r| r.p99_ms, true),
    (
        "Server memory (peak RSS)",
        "MiB",
        |r| r.peak_rss_kib as f64 / 1024.0,
        false,
    ),
];
const THROUGHPUT: &str = "Throughput";

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// Write `echo.svg`: a caption (settings, machine, one legend), then three panels
/// against connections on a log axis with a tick at every measured count.
pub fn write_svg(report: &Report, path: &Path) -> io::Result<()> {
    let err =
        |e: &dyn std::fmt::Display| io::Error::other(format!("drawing {}: {e}", path.display()));
    let mut servers: Vec<&str> = Vec::new();
    for r in &report.rows {
        if !servers.contains(&r.server.as_str()) {
            servers.push(&r.server);
        }
    }
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (top, bottom) = root.split_vertically(CAPTION_HEIGHT);
    caption(&top, report, &servers).map_err(|e| err(&e))?;
    for (area, panel) in bottom.split_evenly((1, 3)).iter().zip(PANELS) {
        draw_panel(area, report, &servers, panel).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// The title, the settings, the machine, and the one legend for all three panels.
fn caption(area: &Area, report: &Report, servers: &[&str]) -> DrawResult {
    let title = ("sans-serif", 22).into_font().style(FontStyle::Bold);
    let text = ("sans-serif", TEXT_PX).into_font();
    area.draw(&Text::new(
        "looplab bench: echo round trips, thread per connection against the event loop",
        (20, 12),
        title,
    ))?;
    area.draw(&Text::new(report.settings(), (20, 44), text.clone()))?;
    area.draw(&Text::new(
        format!("machine: {}", report.machine.describe()),
        (20, 66),
        text.clone(),
    ))?;
    let mut x = 20;
    for server in servers {
        let color = color_of(server);
        area.draw(&PathElement::new(
            vec![(x, 97), (x + 34, 97)],
            color.stroke_width(3),
        ))?;
        area.draw(&Circle::new((x + 17, 97), 4, color.filled()))?;
        area.draw(&Text::new(server.to_string(), (x + 42, 89), text.clone()))?;
        x += 52 + 10 * server.len() as i32 + 20;
    }
    Ok(())
}

/// 1, 2, 5, 10, 20, 50 ... within [lo, hi]: ticks a log axis reads well with.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let t = decade * m;
            if t >= lo && t <= hi {
                ticks.push(t);
            }
        }
        decade *= 10.0;
    }
    ticks
}

fn draw_panel(area: &Area, report: &Report, servers: &[&str], panel: Panel) -> DrawResult {
    let (title, unit, value, log_y) = panel;
    let mut conns: Vec<f64> = report.rows.iter().map(|r| r.conns as f64).collect();
    conns.sort_by(f64::total_cmp);
    conns.dedup();
    let (lo, hi) = match (conns.first(), conns.last()) {
        (Some(&lo), Some(&hi)) => (lo.max(1.0), hi.max(lo.max(1.0) * 2.0)),
        _ => (1.0, 10.0),
    };
    // Room beyond the first and last count, so no point sits on the frame.
    let x_range = (lo / 1.6..hi * 1.6).log_scale().with_key_points(conns);
    let ranges = title == THROUGHPUT;
    let values: Vec<f64> = report.rows.iter().map(value).filter(|v| *v > 0.0).collect();
    let highest = |r: &Row| {
        if ranges {
            r.rt_per_s_max.max(value(r))
        } else {
            value(r)
        }
    };
    let top = report
        .rows
        .iter()
        .map(highest)
        .fold(0.0f64, f64::max)
        .max(1e-3);
    let bottom = values.iter().copied().fold(top, f64::min);
    let label = ("sans-serif", TEXT_PX);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(50)
        .y_label_area_size(70);
    let points = |server: &str| -> Vec<(f64, f64)> {
        report
            .rows
            .iter()
            .filter(|r| r.server == server && value(r) > 0.0)
            .map(|r| (r.conns as f64, value(r)))
            .collect()
    };
    if log_y {
        let y_range = (bottom / 2.0..top * 2.0).log_scale();
        let ticks = log_ticks(bottom / 2.0, top * 2.0);
        let mut chart = builder.build_cartesian_2d(x_range, y_range.with_key_points(ticks))?;
        mesh(&mut chart, unit, label)?;
        for server in servers {
            series(&mut chart, points(server), color_of(server))?;
        }
    } else {
        let mut chart = builder.build_cartesian_2d(x_range, 0f64..top * 1.1)?;
        mesh(&mut chart, unit, label)?;
        if ranges {
            // Behind the lines, each server's bar a little to the side of the others'.
            let bars = report.rows.iter().filter(|r| r.rounds > 1).map(|r| {
                let i = servers.iter().position(|s| *s == r.server).unwrap_or(0) as f64;
                let x = r.conns as f64 * 1.07f64.powf(i - (servers.len() as f64 - 1.0) / 2.0);
                let line = vec![(x, r.rt_per_s_min), (x, r.rt_per_s_max)];
                PathElement::new(line, color_of(&r.server).mix(0.45).stroke_width(3))
            });
            chart.draw_series(bars)?;
        }
        for server in servers {
            series(&mut chart, points(server), color_of(server))?;
        }
    }
    Ok(())
}

fn mesh<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    unit: &str,
    label: (&str, u32),
) -> DrawResult
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(BLACK.mix(0.08))
        .label_style(label)
        .axis_desc_style(label)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| short_number(*y))
        .x_desc("connections (log scale)")
        .y_desc(unit)
        .draw()
}

fn series<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    points: Vec<(f64, f64)>,
    color: RGBColor,
) -> DrawResult
where
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?;
    chart.draw_series(
        points
            .into_iter()
            .map(|p| Circle::new(p, 4, color.filled())),
    )?;
    Ok(())
}

/// 120000 -> "120k", 2.5 -> "2.5", 0.05 -> "0.05": axis labels a reader can take in at
/// a glance, down to the small latencies a log axis shows.
fn short_number(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 10.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        // 0.05, 0.1, 0.25: as many decimals as the value needs, at most three.
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(server: &str, conns: usize, p99_ms: f64) -> Row {
        Row {
            server: server.into(),
            conns,
            connected: conns,
            stalled: 0,
            round_trips: 1000,
            window_s: 1.0,
            rt_per_s: 1000.0 * conns as f64,
            vs_raw: None,
            mb_per_s: 0.064,
            p50_ms: p99_ms / 4.0,
            p99_ms,
            p999_ms: p99_ms * 1.5,
            max_ms: p99_ms * 2.0,
            errors: 0,
            peak_rss_kib: 4096 + conns as u64,
            rss_per_conn_kib: 1.0,
            threads: 1,
            voluntary_csw: 0,
            involuntary_csw: 0,
            cpu_user_s: 0.5,
            cpu_sys_s: 0.5,
            rt_per_cpu_s: 1000.0,
            server_said: String::new(),
            rounds: 3,
            rt_per_s_min: 900.0,
            rt_per_s_max: 1100.0,
            phase_s: Vec::new(),
            loop_utilization: None,
            pool_wake_p50_us: None,
            pool_wake_p99_us: None,
            pool_wakes: 0,
        }
    }

    fn report(servers: &[&str]) -> Report {
        let mut rows = Vec::new();
        for s in servers {
            for (c, p99) in [(10, 0.05), (100, 0.5), (1000, 20.0), (5000, 600.0)] {
                rows.push(row(s, c, p99));
            }
        }
        Report {
            machine: Machine::here(),
            size: 64,
            duration_s: 1.0,
            warmup_s: 0.3,
            client_threads: 1,
            rounds: 3,
            client_cpus: vec![0],
            server_cpus: vec![1],
            rows,
        }
    }

    /// The SVG's text nodes, and the stroke colour of the legend line drawn for `server`
    /// (the line just before its name in the caption).
    fn draw(servers: &[&str], name: &str) -> String {
        let path =
            std::env::temp_dir().join(format!("looplab-plot-{}-{name}.svg", std::process::id()));
        write_svg(&report(servers), &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        svg
    }

    /// What a reader needs of the plot (issue 13, observation 9): one legend naming each
    /// server once, the same colour for a server whatever its position, a tick at every
    /// measured connection count, text of 12 px or more, a log p99 axis that keeps 0.05 ms
    /// and 600 ms apart, and the machine and settings in the image.
    #[test]
    fn the_plot_has_one_legend_fixed_colours_every_tick_and_readable_text() {
        let a = draw(&["threads", "epoll", "raw"], "a");
        let b = draw(&["raw", "epoll", "threads"], "b");
        for svg in [&a, &b] {
            let doc = roxmltree::Document::parse(svg).expect("well-formed SVG");
            let texts: Vec<roxmltree::Node> = doc
                .descendants()
                .filter(|n| n.has_tag_name("text"))
                .collect();
            let said: Vec<&str> = texts
                .iter()
                .filter_map(|n| n.text())
                .map(str::trim)
                .collect();
            for server in ["threads", "epoll", "raw"] {
                assert_eq!(
                    said.iter().filter(|t| **t == server).count(),
                    1,
                    "{server}: {said:?}"
                );
            }
            // Each panel's x axis: a tick at every measured count (10 and 100 may also
            // be y labels; 1000 and 5000 are x ticks only).
            for tick in ["10", "100", "1000", "5000"] {
                let n = said.iter().filter(|t| **t == tick).count();
                assert!(n >= 3, "tick {tick} {n} times: {said:?}");
            }
            for tick in ["1000", "5000"] {
                assert_eq!(said.iter().filter(|t| **t == tick).count(), 3, "{said:?}");
            }
            for t in &texts {
                let px: f64 = t
                    .attribute("font-size")
                    .and_then(|v| v.trim_end_matches("px").parse().ok())
                    .unwrap_or(0.0);
                assert!(px >= 12.0, "text {:?} is {px} px", t.text());
            }
            assert!(said
                .iter()
                .any(|t| t.starts_with("machine: ") && t.contains("cores")));
            assert!(said.iter().any(|t| t.contains("median of 3 round(s)")));
            // Log p99: ticks below 0.1 ms and above 500 ms on one axis.
            assert!(said.contains(&"0.05") && said.contains(&"500"), "{said:?}");
        }
        // Fixed colours: threads is drawn in its red in both orders, raw in its grey.
        let red = "#D62728";
        let grey = "#5A5A5A";
        for svg in [&a, &b] {
            assert!(svg.to_uppercase().contains(red), "threads' red missing");
            assert!(svg.to_uppercase().contains(grey), "raw's grey missing");
        }
        let legend_colour = |svg: &str, server: &str| -> String {
            let doc = roxmltree::Document::parse(svg).unwrap();
            let at = doc
                .descendants()
                .find(|n| n.has_tag_name("text") && n.text().map(str::trim) == Some(server))
                .expect("legend entry")
                .range()
                .start;
            let before = &svg[..at];
            let stroke = before.rfind("stroke=\"").expect("a legend line");
            before[stroke + 8..stroke + 15].to_uppercase()
        };
        for server in ["threads", "epoll", "raw"] {
            assert_eq!(
                legend_colour(&a, server),
                legend_colour(&b, server),
                "{server}"
            );
        }
    }
}
