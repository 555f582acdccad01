//! The report as a text table on stdout: one line per (server, connections), with a
//! line under a loop server's row saying where its loop's time went, and one under any
//! row whose server did not hold or serve every connection; then each server's CPU per
//! round trip against the first server's, paired by round.

use super::Report;
use crate::bench::runner::{Paired, Row};

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
    let w = name_width(
        report.rows.iter().map(|r| r.server.as_str()),
        "server".len(),
    );
    out.push_str(&format!(
        "{:<w$} {:>6} {:>10} {:>7} {:>6} {:>7} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>8} {:>7} {:>9} {:>9} {:>6} {:>10}\n",
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
            "{:<w$} {:>6} {:>10.0} {:>7} {:>6} {:>7.2} {:>8.3} {:>8.3} {:>8.3} {:>8.1} {:>6} {:>8.1} {:>8.1} {:>7} {:>9} {:>9} {:>6.2} {:>10.0}\n",
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
    out.push_str(&paired_table(&report.paired));
    out
}

/// The server column's width: the longest of `names` ("async-level"), at least `min`,
/// so the columns line up.
fn name_width<'a>(names: impl Iterator<Item = &'a str>, min: usize) -> usize {
    names.map(str::len).max().unwrap_or(0).max(min)
}

/// "server CPU per round trip against epoll-bare, paired by round": one line per
/// server, a column per connection count, each the median ratio and its range.
fn paired_table(paired: &[Paired]) -> String {
    let Some(first) = paired.first() else {
        return String::new();
    };
    let w = name_width(paired.iter().map(|p| p.server.as_str()), 10);
    let mut conns: Vec<usize> = paired.iter().map(|p| p.conns).collect();
    conns.sort_unstable();
    conns.dedup();
    let mut out = format!(
        "server CPU per round trip / {}'s in the same round (median of the rounds' ratios [its 95% interval] (lowest-highest); above 1 costs more):\n{:<w$}",
        first.reference, "server"
    );
    for c in &conns {
        out.push_str(&format!(" {:>34}", format!("{c} conns")));
    }
    out.push('\n');
    let mut servers: Vec<&str> = paired.iter().map(|p| p.server.as_str()).collect();
    servers.dedup();
    for server in servers {
        out.push_str(&format!("{server:<w$}"));
        for &c in &conns {
            let cell = paired
                .iter()
                .find(|p| p.server == server && p.conns == c)
                .map_or("-".to_string(), |p| {
                    format!(
                        "{:.2} [{:.2}-{:.2}] ({:.2}-{:.2})",
                        p.median, p.ci_low, p.ci_high, p.low, p.high
                    )
                });
            out.push_str(&format!(" {cell:>34}"));
        }
        out.push('\n');
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
