//! One panel of `echo.svg`: a figure against connections on a log axis, with a tick at
//! every measured count, one line per server in its fixed colour.

use super::{color_of, Area, DrawResult, TEXT_PX};
use crate::bench::report::Report;
use crate::bench::runner::Row;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;

/// A panel: its title, the unit of its y axis, the figure it plots, and whether the y
/// axis is logarithmic (latency spans four decades between 10 and 5000 connections).
pub(super) type Panel = (&'static str, &'static str, fn(&Row) -> f64, bool);

/// The throughput panel also draws each cell's range over its rounds, lowest to highest.
pub(super) const PANELS: [Panel; 3] = [
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

/// Draw `panel` into `area`: its axes, then a line per server (and, for throughput, the
/// bars of each cell's rounds behind them).
pub(super) fn draw(area: &Area, report: &Report, servers: &[&str], panel: Panel) -> DrawResult {
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
