//! `looplab bench --loops 1,2,4`: the echo server as a loop group, per listen mode.
//!
//! Each cell starts `looplab echo --loops N --mode M` as a child, drives it with the
//! usual load generator, and stops it with SIGTERM, so it prints how many connections
//! each loop served: the imbalance. The figures per cell: round trips per second,
//! server CPU per round trip (user + system, from /proc over the window), p99, and the
//! connections per loop.
//!
//! On a machine with few cores the load generator takes a core of its own: read the
//! figures for what they can show (the balance, the CPU per round trip, what one more
//! loop costs), not for scaling that the cores are not there to give.

use super::loadgen::{self, LoadConfig, WindowObserver};
use super::procstat::{self, ProcSample};
use crate::group::ListenMode;
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to exit after SIGTERM before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// The sweep.
#[derive(Clone, Debug)]
pub struct LoopsConfig {
    /// Loop counts.
    pub loops: Vec<usize>,
    /// Listen modes.
    pub modes: Vec<ListenMode>,
    /// Connection counts.
    pub conns: Vec<usize>,
    /// Message size, bytes.
    pub size: usize,
    /// Recorded window per cell.
    pub duration: Duration,
    /// Unrecorded traffic before it.
    pub warmup: Duration,
    /// Load generator threads.
    pub client_threads: usize,
    /// (load generator cores, server cores), or `None`.
    pub pin: Option<(Vec<usize>, Vec<usize>)>,
    /// Sweeps; each cell reports its median round by rt/s.
    pub rounds: usize,
}

/// One cell's figures.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoopsRow {
    /// `reuseport` or `exclusive` (what the server says it used).
    pub mode: String,
    /// Loops.
    pub loops: usize,
    /// Connections asked for.
    pub conns: usize,
    /// Round trips per second in the window.
    pub rt_per_s: f64,
    /// Server CPU (user + system) per round trip, µs.
    pub cpu_us_per_rt: f64,
    /// 99th percentile round trip, ms.
    pub p99_ms: f64,
    /// Connections each loop accepted (empty if the server did not say).
    pub per_loop: Vec<u64>,
    /// The busiest loop's connections over the mean (1.0 is an even spread).
    pub imbalance: f64,
    /// Errors the load generator saw, and connections that got no echo in the window.
    pub errors: u64,
    /// Connections that got no echo in the window.
    pub stalled: usize,
    /// The lowest and highest rt/s among the cell's rounds.
    pub rt_per_s_range: (f64, f64),
}

/// Run every (mode, loops, conns) cell `rounds` times, whole sweeps one after another
/// (so drift in the machine's load touches every cell alike); each cell's median round
/// by rt/s, in (mode, loops, conns) order. A failed cell is an error.
pub fn run(cfg: &LoopsConfig, mut progress: impl FnMut(&str)) -> io::Result<Vec<LoopsRow>> {
    let mut cells: Vec<Vec<LoopsRow>> = Vec::new();
    for round in 1..=cfg.rounds.max(1) {
        let mut i = 0;
        for &mode in &cfg.modes {
            for &loops in &cfg.loops {
                for &conns in &cfg.conns {
                    let name = mode.name();
                    progress(&format!(
                        "round {round}: {name} x {loops} loop(s) x {conns} connections"
                    ));
                    let row = measure(cfg, mode, loops, conns)?;
                    match cells.get_mut(i) {
                        Some(cell) => cell.push(row),
                        None => cells.push(vec![row]),
                    }
                    i += 1;
                }
            }
        }
    }
    Ok(cells.into_iter().filter_map(median).collect())
}

/// The round with the median rt/s, with the range of all rounds beside it.
fn median(mut cell: Vec<LoopsRow>) -> Option<LoopsRow> {
    cell.sort_by(|a, b| a.rt_per_s.total_cmp(&b.rt_per_s));
    let range = (cell.first()?.rt_per_s, cell.last()?.rt_per_s);
    let mut m = cell.get(cell.len() / 2)?.clone();
    m.rt_per_s_range = range;
    Some(m)
}

struct Window {
    pid: u32,
    start: ProcSample,
    end: ProcSample,
}

impl WindowObserver for Window {
    fn window_start(&mut self) {
        self.start = procstat::sample(self.pid).unwrap_or_default();
    }
    fn window_end(&mut self) {
        self.end = procstat::sample(self.pid).unwrap_or_default();
    }
}

fn measure(
    cfg: &LoopsConfig,
    mode: ListenMode,
    loops: usize,
    conns: usize,
) -> io::Result<LoopsRow> {
    if let Some((_, server_cpus)) = &cfg.pin {
        crate::sys::affinity::pin_current_thread(server_cpus)?;
    }
    let started = start_server(mode, loops);
    if let Some((client_cpus, _)) = &cfg.pin {
        crate::sys::affinity::pin_current_thread(client_cpus)?;
    }
    let (mut child, addr) = started?;
    let load = LoadConfig {
        addr,
        conns,
        size: cfg.size,
        warmup: super::runner::warmup_for(conns, cfg.warmup),
        duration: cfg.duration,
        threads: cfg.client_threads,
    };
    let mut w = Window {
        pid: child.id(),
        start: ProcSample::default(),
        end: ProcSample::default(),
    };
    let result = loadgen::run(&load, &mut w);
    let said = stop_server(&mut child);
    let r = result?;
    let (user, sys) = procstat::cpu_between(&w.start, &w.end);
    let per_loop = per_loop(&said);
    Ok(LoopsRow {
        mode: said_mode(&said, mode).name().to_string(),
        loops,
        conns,
        rt_per_s: r.round_trips as f64 / r.window.as_secs_f64().max(1e-9),
        cpu_us_per_rt: (user + sys) * 1e6 / (r.round_trips.max(1) as f64),
        p99_ms: r.latency.value_at_quantile(0.99) as f64 / 1000.0,
        imbalance: imbalance(&per_loop),
        per_loop,
        errors: r.errors + r.connect_failures as u64,
        stalled: r.stalled,
        rt_per_s_range: (0.0, 0.0),
    })
}

fn start_server(mode: ListenMode, loops: usize) -> io::Result<(Child, SocketAddr)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["echo", "--addr=127.0.0.1:0"])
        .arg(format!("--loops={loops}"))
        .arg(format!("--mode={}", mode.name()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line)?;
    }
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok());
    match addr {
        Some(a) => Ok((child, a)),
        None => {
            let said = stop_server(&mut child);
            Err(io::Error::other(format!(
                "echo --loops {loops} did not start: {line:?} {said}"
            )))
        }
    }
}

/// SIGTERM, a bounded wait for the exit, then what it said on stderr.
fn stop_server(child: &mut Child) -> String {
    let _ = crate::sys::process::kill(child.id(), libc::SIGTERM);
    let deadline = Instant::now() + EXIT_WAIT;
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut said = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut said);
    }
    said
}

/// "echo: connections per loop: 3,5" (a group), or "echo: served 8 connections" (one loop).
fn per_loop(said: &str) -> Vec<u64> {
    for line in said.lines() {
        if let Some(list) = line.strip_prefix("echo: connections per loop: ") {
            return list
                .split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect();
        }
        if let Some(rest) = line.strip_prefix("echo: served ") {
            return rest
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .into_iter()
                .collect();
        }
    }
    Vec::new()
}

/// The fallback note names the mode really used.
fn said_mode(said: &str, asked: ListenMode) -> ListenMode {
    if said.contains("instead") {
        ListenMode::Reuseport
    } else {
        asked
    }
}

/// The busiest loop's share over the mean; 1.0 when even (or nothing to compare).
pub fn imbalance(per_loop: &[u64]) -> f64 {
    let total: u64 = per_loop.iter().sum();
    let max = per_loop.iter().copied().max().unwrap_or(0);
    if total == 0 {
        return 1.0;
    }
    max as f64 * per_loop.len() as f64 / total as f64
}

/// The table `bench --loops` prints.
pub fn table(rows: &[LoopsRow]) -> String {
    let mut out = format!(
        "{:<10} {:>5} {:>6} {:>10} {:>17} {:>10} {:>8} {:>10}  {}\n",
        "mode",
        "loops",
        "conns",
        "rt/s",
        "(rounds' range)",
        "cpu µs/rt",
        "p99 ms",
        "imbalance",
        "connections per loop"
    );
    for r in rows {
        let per: Vec<String> = r.per_loop.iter().map(u64::to_string).collect();
        out.push_str(&format!(
            "{:<10} {:>5} {:>6} {:>10.0} {:>17} {:>10.2} {:>8.2} {:>10.2}  {}{}\n",
            r.mode,
            r.loops,
            r.conns,
            r.rt_per_s,
            format!("{:.0}-{:.0}", r.rt_per_s_range.0, r.rt_per_s_range.1),
            r.cpu_us_per_rt,
            r.p99_ms,
            r.imbalance,
            per.join(" / "),
            if r.errors + r.stalled as u64 > 0 {
                format!("  ({} errors, {} stalled)", r.errors, r.stalled)
            } else {
                String::new()
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_loop_counts_and_imbalance_from_what_the_server_said() {
        let said = "echo loop 0: ...\necho: connections per loop: 30,10\n";
        assert_eq!(per_loop(said), [30, 10]);
        assert_eq!(imbalance(&[30, 10]), 1.5);
        assert_eq!(per_loop("echo: served 8 connections, 9 bytes, shed 0"), [8]);
        assert_eq!(imbalance(&[8]), 1.0);
        assert_eq!(imbalance(&[0, 0]), 1.0);
        assert_eq!(imbalance(&[40, 0]), 2.0);
    }
}
