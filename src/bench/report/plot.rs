//! `echo.svg`: a caption (title, settings, machine, one legend) over three panels
//! (throughput, p99 latency, RSS against connections, one line per server). What the
//! picture must show a reader is pinned down by the test below.

mod caption;
mod panel;

use super::Report;
use plotters::prelude::*;
use std::io;
use std::path::Path;

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

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

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
    caption::draw(&top, report, &servers).map_err(|e| err(&e))?;
    for (area, panel) in bottom.split_evenly((1, 3)).iter().zip(panel::PANELS) {
        panel::draw(area, report, &servers, panel).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::Machine;
    use crate::bench::runner::Row;

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
            round: 2,
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
            paired: Vec::new(),
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
