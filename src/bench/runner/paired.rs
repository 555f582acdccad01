//! Server CPU per round trip, each server against the first of `--servers`, paired by
//! round. The servers of one round run back to back, so a ratio taken inside a round
//! cancels what drifts between rounds (other load on a shared machine, the host of a
//! virtual one); the median of those ratios is steadier than the ratio of two medians,
//! each taken over rounds the machine treated differently. With the median comes its 95%
//! confidence interval, so a reader can tell a difference the rounds resolve from one
//! they do not (two servers whose interval holds 1 were not told apart).

use super::{Row, ServerKind};
use serde::{Deserialize, Serialize};

/// One server at one connection count, against the reference server.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Paired {
    /// The server compared.
    pub server: String,
    /// The first of `--servers`.
    pub reference: String,
    /// Connections in the cell.
    pub conns: usize,
    /// Median over rounds of (this server's CPU per round trip / the reference's, in
    /// the same round); above 1 costs more.
    pub median: f64,
    /// The lowest of those ratios.
    pub low: f64,
    /// The highest of those ratios.
    pub high: f64,
    /// A 95% confidence interval for the median (`median_interval`): its low end.
    #[serde(default)]
    pub ci_low: f64,
    /// Its high end.
    #[serde(default)]
    pub ci_high: f64,
    /// Rounds in which both servers were measured.
    pub rounds: usize,
}

/// The paired ratios of every server but the first, at each connection count.
pub fn paired_cpu(rows: &[Row], servers: &[ServerKind], conns: &[usize]) -> Vec<Paired> {
    let Some((reference, others)) = servers.split_first() else {
        return Vec::new();
    };
    let cpu_per_rt = |server: &ServerKind, c: usize, round: usize| {
        rows.iter()
            .find(|r| r.server == server.name() && r.conns == c && r.round == round)
            .filter(|r| r.rt_per_cpu_s > 0.0)
            .map(|r| 1.0 / r.rt_per_cpu_s)
    };
    let mut out = Vec::new();
    for server in others {
        for &c in conns {
            let mut ratios: Vec<f64> = rows
                .iter()
                .filter(|r| r.server == server.name() && r.conns == c)
                .filter_map(|r| {
                    Some(cpu_per_rt(server, c, r.round)? / cpu_per_rt(reference, c, r.round)?)
                })
                .collect();
            if ratios.is_empty() {
                continue;
            }
            ratios.sort_by(f64::total_cmp);
            let (ci_low, ci_high) = median_interval(&ratios);
            out.push(Paired {
                server: server.name().to_string(),
                reference: reference.name().to_string(),
                conns: c,
                median: median(&ratios),
                low: ratios[0],
                high: ratios[ratios.len() - 1],
                ci_low,
                ci_high,
                rounds: ratios.len(),
            });
        }
    }
    out
}

/// A 95% confidence interval for the median of sorted, non-empty `v`, from the order
/// statistics alone (no assumption about how the ratios are spread): the number of
/// ratios below the true median is Binomial(n, 1/2), so the ones at ranks
/// n/2 -/+ 1.96 sqrt(n)/2 bound it 95% of the time. With fewer than about 6 rounds it
/// is the whole range.
fn median_interval(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let half_width = 1.96 * n.sqrt() / 2.0;
    // 1-based ranks, clamped to the ratios there are.
    let lo = ((n / 2.0 - half_width).floor() as usize).max(1);
    let hi = ((n / 2.0 + half_width).ceil() as usize).min(v.len());
    (v[lo - 1], v[hi - 1])
}

/// The median of sorted, non-empty `v` (the mean of the middle two for an even count).
fn median(v: &[f64]) -> f64 {
    let mid = v.len() / 2;
    if v.len() % 2 == 0 {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(server: &str, conns: usize, round: usize, rt_per_cpu_s: f64) -> Row {
        Row {
            server: server.into(),
            conns,
            round,
            rt_per_cpu_s,
            ..Row::default()
        }
    }

    /// Round 2 ran on a machine twice as slow for both servers: paired, it changes
    /// nothing; the ratio of the medians would have mixed rounds.
    #[test]
    fn ratios_are_taken_inside_each_round() {
        let servers = [ServerKind::Raw, ServerKind::Async];
        let rows = vec![
            row("raw", 100, 1, 100.0),
            row("async", 100, 1, 80.0),
            row("raw", 100, 2, 50.0),
            row("async", 100, 2, 40.0),
            row("raw", 100, 3, 100.0),
            row("async", 100, 3, 100.0),
        ];
        let p = paired_cpu(&rows, &servers, &[100]);
        assert_eq!(p.len(), 1);
        let p = &p[0];
        assert_eq!((p.server.as_str(), p.reference.as_str()), ("async", "raw"));
        assert_eq!(p.rounds, 3);
        assert!((p.median - 1.25).abs() < 1e-9, "{p:?}");
        assert!(
            (p.low - 1.0).abs() < 1e-9 && (p.high - 1.25).abs() < 1e-9,
            "{p:?}"
        );
    }

    /// Eleven rounds: the interval is the 2nd and 9th of the sorted ratios; a hundred:
    /// the 40th and 60th; three: all of them.
    #[test]
    fn the_medians_interval_comes_from_its_ranks() {
        let sorted = |n: usize| (1..=n).map(|i| i as f64).collect::<Vec<f64>>();
        assert_eq!(median_interval(&sorted(11)), (2.0, 9.0));
        assert_eq!(median_interval(&sorted(100)), (40.0, 60.0));
        assert_eq!(median_interval(&sorted(3)), (1.0, 3.0));
        assert_eq!(median_interval(&sorted(1)), (1.0, 1.0));
    }

    /// A round where either server failed (no row, or no CPU measured) is left out.
    #[test]
    fn a_round_missing_either_side_is_skipped() {
        let servers = [ServerKind::Raw, ServerKind::Async];
        let rows = vec![
            row("raw", 100, 1, 100.0),
            row("async", 100, 1, 50.0),
            row("async", 100, 2, 50.0),
            row("raw", 100, 3, 0.0),
            row("async", 100, 3, 50.0),
        ];
        let p = paired_cpu(&rows, &servers, &[100, 1000]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].rounds, 1);
        assert!((p[0].median - 2.0).abs() < 1e-9);
    }
}
