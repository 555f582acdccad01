//! `looplab top`'s screen: one window drawn with ratatui. Everything is text first (the
//! bars of the last ticks are letters, one per phase), so it reads over ssh, in a
//! terminal without colour, and in `tmux capture-pane`.

use crate::servers::metrics_http::view::{Quantiles, WindowView};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Sparkline};
use ratatui::Frame;

/// What the screen shows: the newest window, or why there is none.
#[derive(Default)]
pub struct Screen {
    /// Where the windows come from.
    pub addr: String,
    /// The newest window.
    pub last: Option<WindowView>,
    /// The last fetch error, cleared by the next window.
    pub error: Option<String>,
}

/// A phase's colour and the letter its time is drawn with in the tick bars.
fn phase_style(key: &str) -> (Color, char) {
    match key {
        "pending" => (Color::Magenta, 'p'),
        "prepare" => (Color::LightMagenta, 'r'),
        "poll_wait" => (Color::DarkGray, '.'),
        "poll_io" => (Color::Blue, 'i'),
        "check" => (Color::Green, 'c'),
        "close" => (Color::Yellow, 'x'),
        "timers" => (Color::Red, 't'),
        _ => (Color::White, '?'),
    }
}

fn us(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} s", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} ms", v / 1e3)
    } else {
        format!("{v:.0} µs")
    }
}

fn quantiles(q: &Quantiles) -> String {
    if q.count == 0 {
        return "none".to_string();
    }
    format!("p50 {} p99 {} max {}", us(q.p50), us(q.p99), us(q.max))
}

/// Draw the whole screen.
pub fn screen(f: &mut Frame, s: &Screen) {
    let [title, body, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(10),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let status = match (&s.last, &s.error) {
        (_, Some(e)) => format!("looplab top {}: {e}", s.addr),
        (Some(w), None) => format!(
            "looplab top {} | window {} | {} | up {:.0} s{}",
            s.addr,
            w.id,
            w.backend,
            w.uptime_s,
            if w.metrics_on { "" } else { " | metrics OFF" }
        ),
        (None, None) => format!("looplab top {}: waiting for the first window...", s.addr),
    };
    let bold = Style::default().add_modifier(Modifier::BOLD);
    f.render_widget(Paragraph::new(Line::styled(status, bold)), title);
    f.render_widget(Paragraph::new("q quits; one window a second"), help);
    if let Some(w) = &s.last {
        window(f, w, body);
    }
}

fn window(f: &mut Frame, w: &WindowView, area: Rect) {
    let ticks_shown = w.recent_ticks.len().min(6) as u16;
    let [figures, phases, ticks, rest, lines] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(w.phase_keys.len() as u16 + 2),
        Constraint::Length(ticks_shown + 2),
        Constraint::Length(6),
        Constraint::Min(4),
    ])
    .areas(area);
    let per_s = 1000.0 / w.window_ms.max(1.0);
    let head = vec![
        Line::from(format!(
            "utilization {:.1}%   ticks/s {:.0}   events/tick p50 {} p99 {}   callbacks/s {:.0}",
            w.utilization * 100.0,
            w.ticks as f64 * per_s,
            w.events_per_tick.p50,
            w.events_per_tick.p99,
            w.callbacks as f64 * per_s,
        )),
        Line::from(format!("loop lag (timer lateness) {}", quantiles(&w.lag))),
    ];
    f.render_widget(Paragraph::new(head), figures);
    f.render_widget(phase_shares(w, phases.width), phases);
    f.render_widget(tick_bars(w, ticks.width), ticks);
    f.render_widget(details(w), rest);
    history(f, w, lines);
}

/// The window's time by phase: a bar each, as a share of the window.
fn phase_shares(w: &WindowView, width: u16) -> Paragraph<'static> {
    let total: f64 = w.phase_us.iter().sum::<f64>().max(1e-9);
    let bar_width = usize::from(width.saturating_sub(34)).clamp(10, 60);
    let rows = w.phase_keys.iter().zip(&w.phase_labels).zip(&w.phase_us);
    let lines: Vec<Line> = rows
        .map(|((key, label), &t)| {
            let share = t / total;
            let full = (share * bar_width as f64).round() as usize;
            let (color, _) = phase_style(key);
            Line::from(vec![
                Span::raw(format!("{label:<13}")),
                Span::styled("█".repeat(full), Style::default().fg(color)),
                Span::raw(" ".repeat(bar_width - full.min(bar_width))),
                Span::raw(format!(" {:5.1}% {:>9}", share * 100.0, us(t))),
            ])
        })
        .collect();
    Paragraph::new(lines).block(Block::bordered().title(" phases: share of the window "))
}

/// The last ticks, one row each, a letter per phase, scaled to the longest shown.
fn tick_bars(w: &WindowView, width: u16) -> Paragraph<'static> {
    let shown = &w.recent_ticks[w.recent_ticks.len().saturating_sub(6)..];
    let longest = shown
        .iter()
        .map(|t| t.us.iter().sum::<f64>())
        .fold(1e-9, f64::max);
    let bar_width = usize::from(width.saturating_sub(24)).clamp(10, 70);
    let mut lines = Vec::new();
    for t in shown {
        let mut spans = vec![Span::raw(format!("#{:<9}", t.tick))];
        for (key, &v) in w.phase_keys.iter().zip(&t.us) {
            let n = (v / longest * bar_width as f64).round() as usize;
            let (color, letter) = phase_style(key);
            let fill = letter.to_string().repeat(n);
            spans.push(Span::styled(fill, Style::default().fg(color)));
        }
        spans.push(Span::raw(format!(" {}", us(t.us.iter().sum()))));
        lines.push(Line::from(spans));
    }
    let legend =
        " last ticks: p pending r prepare . poll wait i poll I/O c check x close t timers ";
    Paragraph::new(lines).block(Block::bordered().title(legend))
}

/// The slowest callback, the pool, and why the loop is alive.
fn details(w: &WindowView) -> Paragraph<'static> {
    let slowest = match &w.slowest {
        Some(s) => format!(
            "slowest callback: {} in {} | {} {} | tick {}",
            us(s.us),
            s.phase_label,
            s.kind,
            s.handle,
            s.tick
        ),
        None => "slowest callback: none ran".to_string(),
    };
    let p = &w.pool;
    let pool = format!(
        "pool: {} threads, depth {} (max {}) | wait {} | run {}",
        p.threads,
        p.depth,
        p.max_depth,
        quantiles(&p.queue_wait),
        quantiles(&p.run)
    );
    let wake = format!("pool finish -> done (the wake): {}", quantiles(&p.wake));
    let kinds: Vec<String> = w
        .alive
        .kinds
        .iter()
        .map(|k| format!("{} {}/{}", k.kind, k.refd, k.unrefd))
        .collect();
    let alive = format!("why alive: {}", w.alive.why);
    let table = format!("handles (ref'd/unref'd): {}", kinds.join(", "));
    Paragraph::new(vec![
        Line::from(slowest),
        Line::from(pool),
        Line::from(wake),
        Line::from(alive),
        Line::from(table),
    ])
}

/// Utilization and lag over the last minute.
fn history(f: &mut Frame, w: &WindowView, area: Rect) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let util: Vec<u64> = w
        .history
        .iter()
        .map(|h| (h.utilization * 1000.0).round() as u64)
        .collect();
    let lag: Vec<u64> = w.history.iter().map(|h| h.lag_p99.round() as u64).collect();
    let last_lag = w.history.last().map_or(0.0, |h| h.lag_p99);
    f.render_widget(
        Sparkline::default()
            .block(Block::bordered().title(" utilization, last minute "))
            .data(&util)
            .max(1000)
            .style(Style::default().fg(Color::Blue)),
        left,
    );
    f.render_widget(
        Sparkline::default()
            .block(
                Block::bordered().title(format!(" lag p99, last minute (now {}) ", us(last_lag))),
            )
            .data(&lag)
            .style(Style::default().fg(Color::Red)),
        right,
    );
}
