//! `looplab bench`: every server in its own child process, every connection count, one
//! load generator, and the figures that matter side by side.

use super::loadgen::{self, LoadConfig, LoadResult, WindowObserver};
use super::procstat::{self, ProcSample};
use super::scrape::{self, Scrape};
use crate::Backend;
use serde::{Deserialize, Serialize};
use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A server the benchmark can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// `looplab echo-threads`: one OS thread per connection.
    Threads,
    /// `looplab echo` on one of the loop's backends, with `--metrics-addr`: its phase
    /// times and pool wake are read from `/metrics` at the window's start and end.
    Loop(Backend),
    /// The same with no endpoint and metrics off (`LOOPLAB_METRICS=0`, as by default):
    /// `epoll-bare` beside `epoll` is what watching the loop costs.
    LoopBare(Backend),
    /// `looplab echo-raw`: the hand-written libc epoll loop, the floor.
    Raw,
    /// `looplab echo-async`: the echo as `async fn` tasks on the loop (default backend).
    Async,
    /// `looplab echo-tokio`: tokio's current_thread runtime (feature `peer-tokio`).
    Tokio,
    /// `looplab echo --backend uring`: the io_uring completion echo (Linux).
    Uring,
}

impl ServerKind {
    /// The name used by `--servers` and in the table.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Threads => "threads",
            ServerKind::Loop(b) => b.name(),
            ServerKind::LoopBare(Backend::Epoll) => "epoll-bare",
            ServerKind::LoopBare(Backend::Kqueue) => "kqueue-bare",
            ServerKind::LoopBare(Backend::Mio) => "mio-bare",
            ServerKind::Raw => "raw",
            ServerKind::Async => "async",
            ServerKind::Tokio => "tokio",
            ServerKind::Uring => "uring",
        }
    }

    fn args(self) -> Vec<String> {
        let addr = "--addr=127.0.0.1:0".to_string();
        match self {
            ServerKind::Threads => vec!["echo-threads".into(), addr],
            ServerKind::Loop(b) => vec![
                "echo".into(),
                addr,
                format!("--backend={b}"),
                "--metrics-addr=127.0.0.1:0".into(),
            ],
            ServerKind::LoopBare(b) => vec!["echo".into(), addr, format!("--backend={b}")],
            ServerKind::Raw => vec!["echo-raw".into(), addr],
            ServerKind::Async => vec!["echo-async".into(), addr],
            ServerKind::Tokio => vec!["echo-tokio".into(), addr],
            ServerKind::Uring => vec!["echo".into(), addr, "--backend=uring".into()],
        }
    }
}

impl std::str::FromStr for ServerKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "threads" => Ok(ServerKind::Threads),
            "raw" => Ok(ServerKind::Raw),
            "async" => Ok(ServerKind::Async),
            "uring" => Ok(ServerKind::Uring),
            "tokio" if cfg!(feature = "peer-tokio") => Ok(ServerKind::Tokio),
            "tokio" => Err("the tokio peer needs a build with `--features peer-tokio`".to_string()),
            other => match other.strip_suffix("-bare") {
                Some(b) => b.parse::<Backend>().map(ServerKind::LoopBare),
                None => other.parse::<Backend>().map(ServerKind::Loop),
            }
            .map_err(|_| {
                format!(
                    "unknown server '{other}': expected threads, epoll, kqueue, mio, async, uring or raw \
                     (a backend with -bare: metrics off)"
                )
            }),
        }
    }
}

/// The sweep to run.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// Servers, in table order.
    pub servers: Vec<ServerKind>,
    /// Connection counts.
    pub conns: Vec<usize>,
    /// Message size in bytes.
    pub size: usize,
    /// Recorded window per cell.
    pub duration: Duration,
    /// Unrecorded traffic before it.
    pub warmup: Duration,
    /// Load generator threads.
    pub client_threads: usize,
    /// Sweeps to run; each cell reports its median round.
    pub rounds: usize,
    /// (load generator cores, server cores), or `None` to let the scheduler choose.
    pub pin: Option<(Vec<usize>, Vec<usize>)>,
    /// Where results.json and echo.svg go.
    pub out: PathBuf,
}

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
    /// Rounds measured for this cell, and the lowest and highest rt/s among them.
    pub rounds: usize,
    /// Lowest rt/s of the rounds.
    pub rt_per_s_min: f64,
    /// Highest rt/s of the rounds.
    pub rt_per_s_max: f64,
}

/// A running server child; killed by its PID when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    /// Its `--metrics-addr`, announced on its second line.
    metrics: Option<SocketAddr>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    fn start(kind: ServerKind) -> io::Result<Server> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        match kind {
            ServerKind::LoopBare(_) => {
                cmd.env("LOOPLAB_METRICS", "0");
            }
            // The metrics' pool probe starts the pool: one worker is all it needs, so
            // the loop server runs two threads, the loop and that worker.
            ServerKind::Loop(_) => {
                cmd.env("LOOPLAB_THREADPOOL_SIZE", "1");
            }
            _ => {}
        }
        let mut child = cmd
            .args(kind.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let mut stderr = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("no stderr"))?;
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut server = Server {
            child,
            addr: ([127, 0, 0, 1], 0).into(),
            metrics: None,
            stderr: Some(stderr),
        };
        let mut line = String::new();
        let mut stdout = BufReader::new(stdout);
        stdout.read_line(&mut line)?;
        server.addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| {
                io::Error::other(format!(
                    "{} did not say where it listens (said {line:?})",
                    kind.name()
                ))
            })?;
        if matches!(kind, ServerKind::Loop(_)) {
            let mut second = String::new();
            stdout.read_line(&mut second)?;
            server.metrics = second
                .strip_prefix("metrics on http://")
                .and_then(|rest| rest.split('/').next())
                .and_then(|a| a.parse().ok());
        }
        Ok(server)
    }

    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Sampler {
    pid: u32,
    start: ProcSample,
    end: ProcSample,
    /// The loop server's endpoint, and its `/metrics` at the window's start and end.
    metrics: Option<SocketAddr>,
    scrapes: (Option<Scrape>, Option<Scrape>),
}

impl WindowObserver for Sampler {
    fn window_start(&mut self) {
        self.start = procstat::sample(self.pid).unwrap_or_default();
        self.scrapes.0 = self.metrics.and_then(|a| scrape::scrape(a).ok());
    }
    fn window_end(&mut self) {
        self.end = procstat::sample(self.pid).unwrap_or_default();
        self.scrapes.1 = self.metrics.and_then(|a| scrape::scrape(a).ok());
    }
}

/// Warmup per connection, at the least: every connection must have made a few round trips
/// before the window opens, and a server that accepts slowly must have accepted them all
/// (a connection whose handshake the server's full backlog dropped comes back about a
/// second later). 0.2 ms per connection gives 5000 connections a full second.
pub const WARMUP_PER_CONN: Duration = Duration::from_micros(200);

/// The warmup a cell of `conns` connections gets: `configured`, or more for many.
pub fn warmup_for(conns: usize, configured: Duration) -> Duration {
    let per_conn = WARMUP_PER_CONN.saturating_mul(u32::try_from(conns).unwrap_or(u32::MAX));
    configured.max(per_conn)
}

/// Measure one cell: a fresh server process, the load, the figures.
pub fn measure(kind: ServerKind, conns: usize, cfg: &BenchConfig) -> io::Result<Row> {
    // The server inherits the cores of the thread that starts it; the load generator's
    // threads inherit ours after we switch.
    if let Some((_, server_cpus)) = &cfg.pin {
        crate::sys::affinity::pin_current_thread(server_cpus)?;
    }
    let server = Server::start(kind);
    if let Some((client_cpus, _)) = &cfg.pin {
        crate::sys::affinity::pin_current_thread(client_cpus)?;
    }
    let server = server?;
    let pid = server.child.id();
    let before = procstat::sample(pid).unwrap_or_default();
    let load = LoadConfig {
        addr: server.addr,
        conns,
        size: cfg.size,
        warmup: warmup_for(conns, cfg.warmup),
        duration: cfg.duration,
        threads: cfg.client_threads,
    };
    let mut sampler = Sampler {
        pid,
        start: ProcSample::default(),
        end: ProcSample::default(),
        metrics: server.metrics,
        scrapes: (None, None),
    };
    let result = loadgen::run(&load, &mut sampler);
    let said = server.stop();
    let r = result?;
    Ok(row(kind, conns, &r, &before, &sampler, said))
}

fn row(
    kind: ServerKind,
    conns: usize,
    r: &LoadResult,
    before: &ProcSample,
    s: &Sampler,
    said: String,
) -> Row {
    let hz = crate::sys::clock::clock_ticks_per_second() as f64;
    let window = r.window.as_secs_f64().max(1e-9);
    let cpu_user = s.end.utime_ticks.saturating_sub(s.start.utime_ticks) as f64 / hz;
    let cpu_sys = s.end.stime_ticks.saturating_sub(s.start.stime_ticks) as f64 / hz;
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
        rss_per_conn_kib: s.end.rss_kib.saturating_sub(before.rss_kib) as f64 / conns.max(1) as f64,
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
