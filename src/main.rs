//! `looplab`: run the servers and the benchmark from the command line.

use clap::{Parser, Subcommand};
use looplab::bench::report::{self, Report};
use looplab::bench::runner::{self, BenchConfig, ServerKind};
use looplab::group::{GroupBuilder, ListenMode, LoopGroup};
use looplab::servers::echo::{Echo, EchoConfig};
use looplab::servers::echo_async::EchoAsync;
use looplab::servers::echo_threads::{EchoThreads, EchoThreadsConfig, Notice, ACCEPT_BACKOFF};
use looplab::servers::longpoll::{LongPoll, LongPollConfig};
use looplab::servers::metrics_http::{MetricsConfig, MetricsServer};
use looplab::{Backend, Loop, RunMode};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "looplab",
    version,
    about = "An event loop you can read: servers and a benchmark on it"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Echo server on looplab's event loop (one thread for all connections).
    Echo {
        /// Address to listen on; port 0 picks a free port (printed on the first line).
        #[arg(long, default_value = "127.0.0.1:7878")]
        addr: SocketAddr,
        /// Poller: epoll, kqueue or mio (default: the raw one for this OS); or uring, the
        /// io_uring completion echo (Linux; exits with the reason if io_uring is refused).
        #[arg(long)]
        backend: Option<EchoBackend>,
        /// Connections over this are accepted and closed at once.
        #[arg(long, default_value_t = 100_000)]
        max_conns: usize,
        /// Close a connection that sent nothing for this long (e.g. 30s; default: off).
        #[arg(long, value_parser = parse_duration)]
        idle_timeout: Option<Duration>,
        /// Also serve GET /metrics (Prometheus) and the live /loop page here, on the
        /// server's own loop (e.g. 127.0.0.1:9100; watch it with `looplab top ADDR`).
        #[arg(long)]
        metrics_addr: Option<SocketAddr>,
        #[command(flatten)]
        group: GroupArgs,
    },
    /// The same echo written as `async fn` tasks on the loop (looplab::task).
    EchoAsync {
        /// Address to listen on; port 0 picks a free port (printed on the first line).
        #[arg(long, default_value = "127.0.0.1:7878")]
        addr: SocketAddr,
        /// Poller: epoll, kqueue or mio (default: the raw one for this OS).
        #[arg(long)]
        backend: Option<Backend>,
        /// Connections over this are accepted and closed at once.
        #[arg(long, default_value_t = 100_000)]
        max_conns: usize,
        /// Close a connection that sent nothing for this long (e.g. 30s; default: off).
        #[arg(long, value_parser = parse_duration)]
        idle_timeout: Option<Duration>,
    },
    /// Echo server with one OS thread per connection.
    EchoThreads {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:7878")]
        addr: SocketAddr,
        /// Connections over this are accepted and closed at once.
        #[arg(long, default_value_t = 100_000)]
        max_conns: usize,
        /// Close a connection idle this long, e.g. 30s (default: never). Ends the
        /// thread a half-open peer (one that never sends its FIN) would hold forever.
        #[arg(long, value_parser = parse_duration)]
        idle_timeout: Option<Duration>,
        /// Refused: thread-per-connection has no event loop to watch.
        #[arg(long)]
        metrics_addr: Option<SocketAddr>,
    },
    /// The hand-written libc epoll echo (the ladder's rung and the benchmark's floor).
    EchoRaw {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:7878")]
        addr: SocketAddr,
        /// Refused: the hand-written rung keeps no metrics; use echo.
        #[arg(long)]
        metrics_addr: Option<SocketAddr>,
    },
    /// Long-poll chat server: open http://ADDR/ in a browser.
    Longpoll {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// How long a poll is held when the client does not ask. The server holds a poll
        /// at most 120s: a longer value is lowered to that, and the server says so.
        #[arg(long, default_value = "25s", value_parser = parse_duration)]
        poll_timeout: Duration,
        /// Held polls at most; more get 503 with Retry-After.
        #[arg(long, default_value_t = 10_000)]
        max_waiters: usize,
        /// Connections at most; more are accepted and closed.
        #[arg(long, default_value_t = 100_000)]
        max_conns: usize,
        /// Messages retained (older cursors get "reset").
        #[arg(long, default_value_t = 1024)]
        log_size: usize,
        /// Publishes per second per client address (429 beyond).
        #[arg(long, default_value_t = 20.0)]
        publish_rate: f64,
        /// Publishes a client may burst.
        #[arg(long, default_value_t = 40.0)]
        publish_burst: f64,
        /// A request head must arrive within this (408).
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        header_timeout: Duration,
        /// Idle keep-alive connections close after this.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        idle_timeout: Duration,
        /// A reply left unread (queued, not drained) this long closes its connection.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        send_timeout: Duration,
        /// On SIGINT/SIGTERM, connections still open after this are cut.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        shutdown_grace: Duration,
        /// Poller: epoll, kqueue or mio.
        #[arg(long)]
        backend: Option<Backend>,
        /// Also serve GET /metrics (Prometheus) and the live /loop page here, on the
        /// server's own loop (e.g. 127.0.0.1:9100; watch it with `looplab top ADDR`).
        #[arg(long)]
        metrics_addr: Option<SocketAddr>,
        #[command(flatten)]
        group: GroupArgs,
    },
    /// Echo server on tokio's current_thread runtime (the bench's Rust peer).
    #[cfg(feature = "peer-tokio")]
    EchoTokio {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:7878")]
        addr: SocketAddr,
    },
    /// Thread-per-connection against the event loop: a table, results.json and echo.svg.
    Bench(BenchArgs),
    /// Watch a server's loop in the terminal: the --metrics-addr of echo or longpoll
    /// (phases, utilization, lag, the pool, why alive; once a second; q quits).
    Top {
        /// The server's --metrics-addr, e.g. 127.0.0.1:9100 (or http://127.0.0.1:9100/).
        addr: String,
    },
}

/// One loop per core (src/group.rs): `--loops N` threads, each its own loop.
#[derive(clap::Args, Clone, Copy)]
struct GroupArgs {
    /// Loops (threads), each with its own event loop; 1 is the ordinary server.
    #[arg(long, default_value_t = 1)]
    loops: usize,
    /// How the loops share the address: reuseport (a socket each) or exclusive (one
    /// socket, EPOLLEXCLUSIVE; raw epoll only, else reuseport with a note).
    #[arg(long, default_value = "reuseport")]
    mode: ListenMode,
    /// Pin loop i to core i.
    #[arg(long)]
    pin: bool,
}

impl GroupArgs {
    fn builder(self, backend: Option<Backend>) -> GroupBuilder {
        LoopGroup::builder()
            .loops(self.loops)
            .mode(self.mode)
            .pin(self.pin)
            .make_loop(move |_| server_loop(backend))
    }
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Servers to compare: threads, epoll, kqueue, mio, async, raw, uring (io_uring,
    /// Linux), and tokio with the `peer-tokio` feature (comma-separated).
    #[arg(long, value_delimiter = ',')]
    servers: Option<Vec<ServerKind>>,
    /// Connection counts (default 10,100,1000,5000; with --full 1,10,100,1000,5000,10000).
    #[arg(long, value_delimiter = ',')]
    conns: Option<Vec<usize>>,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Recorded window per cell, e.g. 3s or 500ms (default 800ms; 3s with --full).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Traffic before the window (default 200ms; 1s with --full), and at least 0.2 ms
    /// per connection, so that every connection is served before the window opens.
    #[arg(long, value_parser = parse_duration)]
    warmup: Option<Duration>,
    /// Load generator threads.
    #[arg(long, default_value_t = 1)]
    clients_threads: usize,
    /// Directory for results.json and echo.svg (overwritten).
    #[arg(long, default_value = "bench-out")]
    out: PathBuf,
    /// Run the sweep this many times and keep each cell's median round (by rt/s), so one
    /// disturbed cell cannot make the table: three short rounds by default.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Redraw the table and echo.svg from OUT/results.json, measuring nothing.
    #[arg(long)]
    replot: bool,
    /// Do not pin the load generator and the server to separate cores.
    #[arg(long)]
    no_pin: bool,
    /// The full sweep, to 10000 connections.
    #[arg(long)]
    full: bool,
    /// Instead: the timing wheel against a binary heap at 10^4, 10^5, 10^6 timers.
    #[arg(long)]
    timers: bool,
    /// Instead: hold this many polls on `looplab longpoll`, then publish once: the
    /// server's memory per held poll and the time to answer them all.
    #[arg(long)]
    waiters: Option<usize>,
    /// Instead: `looplab longpoll` against 100 hostile clients (pipelining, replies
    /// never read, amplified polls) beside 20 normal ones for --duration (default 10s):
    /// server peak RSS, normal p50/p99, lost messages; writes OUT/hostile.json.
    #[arg(long)]
    hostile: bool,
    /// Instead: `looplab echo --loops N` for each N here (e.g. 1,2,4), in each --modes:
    /// rt/s, server CPU per round trip, p99 and connections per loop; OUT/loops.json.
    #[arg(long, value_delimiter = ',')]
    loops: Option<Vec<usize>>,
    /// With --loops: the listen modes to compare (default reuseport,exclusive).
    #[arg(long, value_delimiter = ',')]
    modes: Option<Vec<ListenMode>>,
}

/// "3s", "500ms", "1.5s", "2m", "1h"; a bare number is seconds. Between 1 ms and 1 h:
/// anything outside is an error naming the range, never quietly moved into it.
fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (try 3s or 500ms)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{s}' (use ms, s, m or h)"
            ))
        }
    };
    if !(0.001..=3600.0).contains(&secs) {
        return Err(format!("'{s}' must be between 1ms and 1h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Echo {
            addr,
            backend,
            max_conns,
            idle_timeout,
            metrics_addr,
            group,
        } => {
            let config = EchoConfig {
                addr,
                max_conns,
                idle_timeout,
            };
            let loop_backend = match backend {
                Some(EchoBackend::Loop(b)) => Some(b),
                _ => None,
            };
            match backend {
                Some(EchoBackend::Uring) if group.loops > 1 => {
                    Err("--backend uring is one ring on one thread: use it without --loops".into())
                }
                Some(EchoBackend::Uring) => no_loop_to_watch("echo --backend uring", metrics_addr)
                    .and_then(|()| run_echo_uring(config)),
                _ if group.loops > 1 => {
                    run_echo_group(group.builder(loop_backend), config, metrics_addr)
                }
                _ => run_echo(loop_backend, config, metrics_addr),
            }
        }
        Command::EchoAsync {
            addr,
            backend,
            max_conns,
            idle_timeout,
        } => run_echo_async(
            backend,
            EchoConfig {
                addr,
                max_conns,
                idle_timeout,
            },
        ),
        Command::EchoThreads {
            addr,
            max_conns,
            idle_timeout,
            metrics_addr,
        } => no_loop_to_watch("echo-threads", metrics_addr).and_then(|()| {
            run_echo_threads(EchoThreadsConfig {
                addr,
                max_conns,
                idle_timeout,
            })
        }),
        Command::EchoRaw { addr, metrics_addr } => {
            no_loop_to_watch("echo-raw", metrics_addr).and_then(|()| run_echo_raw(addr))
        }
        Command::Longpoll {
            addr,
            poll_timeout,
            max_waiters,
            max_conns,
            log_size,
            publish_rate,
            publish_burst,
            header_timeout,
            idle_timeout,
            send_timeout,
            shutdown_grace,
            backend,
            metrics_addr,
            group,
        } => {
            let max = looplab::servers::longpoll::MAX_POLL_TIMEOUT;
            if poll_timeout > max {
                eprintln!(
                    "looplab: --poll-timeout {poll_timeout:?} is over the server's maximum; polls are held at most {max:?}"
                );
            }
            let cfg = LongPollConfig {
                addr,
                poll_timeout: poll_timeout.min(max),
                max_waiters,
                max_conns,
                log_size,
                publish_rate,
                publish_burst,
                header_timeout,
                idle_timeout,
                send_timeout,
                shutdown_grace,
                ..LongPollConfig::default()
            };
            if group.loops > 1 {
                run_longpoll_group(cfg, group.builder(backend), metrics_addr)
            } else {
                run_longpoll(cfg, backend, metrics_addr)
            }
        }
        #[cfg(feature = "peer-tokio")]
        Command::EchoTokio { addr } => {
            raise_fd_limit();
            looplab::servers::echo_tokio::serve(addr, |bound| println!("listening on {bound}"))
                .map_err(Into::into)
        }
        Command::Bench(args) => run_bench(args),
        Command::Top { addr } => looplab::top::run(&addr).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // looplab's errors already say what failed and the OS's answer ("binding
            // 127.0.0.1:80: Permission denied"); printing source() too would repeat it.
            eprintln!("looplab: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Servers hold one fd per connection: take all the fds the hard limit allows.
fn raise_fd_limit() {
    if let Err(e) = looplab::raise_nofile_limit() {
        eprintln!("looplab: could not raise the open-file limit: {e}");
    }
}

/// A server's loop: the fd limit raised, the chosen (or the OS's) backend.
fn server_loop(backend: Option<Backend>) -> std::io::Result<Loop> {
    raise_fd_limit();
    let mut builder = Loop::builder();
    if let Some(b) = backend {
        builder = builder.backend(b);
    }
    builder.build()
}

/// SIGINT and SIGTERM run `shutdown`, which closes what the server holds; then only the
/// (unref'd) signal handles are left, so the loop exits by itself and we return 0.
fn on_shutdown_signals(
    lp: &mut Loop,
    shutdown: impl Fn(&mut Loop) + Clone + 'static,
) -> std::io::Result<()> {
    for signum in [libc::SIGINT, libc::SIGTERM] {
        let f = shutdown.clone();
        lp.signal(signum, move |lp, _, _| f(lp))?;
    }
    Ok(())
}

/// `--metrics-addr`: the endpoint on the server's loop; `announce_metrics` says where, on
/// the line after "listening on" (what the bench and the tests read first).
fn start_metrics(lp: &mut Loop, addr: Option<SocketAddr>) -> Result<Option<MetricsServer>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let cfg = MetricsConfig {
        addr,
        ..MetricsConfig::default()
    };
    let m = MetricsServer::listen(lp, cfg).map_err(|e| format!("--metrics-addr {addr}: {e}"))?;
    Ok(Some(m))
}

/// The second line, after `listening on`: where the metrics are.
fn announce_metrics(lp: &Loop, metrics: Option<&MetricsServer>) -> Result {
    if let Some(m) = metrics {
        let at = m.local_addr(lp)?;
        // Whoever started us may read only the first line: a closed stdout is no error.
        let _ = writeln!(
            std::io::stdout(),
            "metrics on http://{at}/metrics and http://{at}/loop"
        );
    }
    Ok(())
}

fn no_loop_to_watch(server: &str, metrics_addr: Option<SocketAddr>) -> Result {
    match metrics_addr {
        None => Ok(()),
        Some(_) => Err(format!(
            "--metrics-addr: {server} has no event loop to watch; use it with echo or longpoll"
        )
        .into()),
    }
}

fn run_echo(backend: Option<Backend>, config: EchoConfig, metrics: Option<SocketAddr>) -> Result {
    let mut lp = server_loop(backend)?;
    let echo = Echo::listen(&mut lp, config)?;
    echo.on_error(|e| eprintln!("echo: {e}"));
    let metrics = start_metrics(&mut lp, metrics)?;
    let (e, m) = (echo.clone(), metrics.clone());
    on_shutdown_signals(&mut lp, move |lp| {
        e.shutdown(lp);
        if let Some(m) = &m {
            m.shutdown(lp);
        }
    })?;
    // Said once the signals are handled: a script may send SIGINT as soon as it reads it.
    println!("listening on {}", echo.local_addr(&lp)?);
    announce_metrics(&lp, metrics.as_ref())?;
    lp.run(RunMode::Default)?;
    let s = echo.stats();
    eprintln!(
        "echo: served {} connections, {} bytes, shed {}",
        s.accepted, s.bytes, s.shed
    );
    Ok(())
}

fn run_echo_group(group: GroupBuilder, config: EchoConfig, metrics: Option<SocketAddr>) -> Result {
    if metrics.is_some() {
        return Err("--metrics-addr watches one loop; use it with --loops 1".into());
    }
    raise_fd_limit();
    let group = looplab::group::echo::spawn(group, config, |i, e| eprintln!("echo loop {i}: {e}"))?;
    if let Some(note) = group.note() {
        eprintln!("looplab: {note}");
    }
    let addr = group.local_addr().ok_or("the group has no listener")?;
    // Said once the signals are handled: a script may send SIGTERM as soon as it reads it.
    let ended = group.run_until_signal(|| println!("listening on {addr}"))?;
    let mut per_loop = Vec::new();
    for (i, r) in ended.into_iter().enumerate() {
        let s = r.map_err(|e| format!("loop {i}: {e}"))?;
        eprintln!(
            "echo loop {i}: served {} connections, {} bytes, shed {}",
            s.accepted, s.bytes, s.shed
        );
        per_loop.push(s.accepted.to_string());
    }
    // One line the benchmark reads: how evenly the kernel spread the connections.
    eprintln!("echo: connections per loop: {}", per_loop.join(","));
    Ok(())
}

/// `echo --backend`: one of the loop's pollers, or the io_uring echo, which is not a
/// poller of the loop but a completion loop of its own (`servers/echo_uring.rs`).
#[derive(Clone, Copy, Debug)]
enum EchoBackend {
    Loop(Backend),
    Uring,
}

impl std::str::FromStr for EchoBackend {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "uring" => Ok(EchoBackend::Uring),
            other => other
                .parse()
                .map(EchoBackend::Loop)
                .map_err(|e| format!("{e}, or uring")),
        }
    }
}

/// The io_uring echo until killed. Refused io_uring is an error with its reason (exit 1),
/// never a quiet fallback to epoll: a benchmark row labelled uring must be uring.
#[cfg(target_os = "linux")]
fn run_echo_uring(config: EchoConfig) -> Result {
    use looplab::servers::echo_uring::{self, UringStats};
    raise_fd_limit();
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(stop.clone())?;
    let live = std::sync::Mutex::new(UringStats::default());
    let s = echo_uring::serve(&config, &stop, &live, |addr, s| {
        let yes = |b: bool| if b { "yes" } else { "no" };
        eprintln!(
            "echo (uring): provided-buffer ring {}, multishot accept {} and recv {} (each falls back if refused), deferred task work {}, {} registered files",
            yes(s.features.buf_ring),
            yes(s.multishot_accept),
            yes(s.multishot_recv),
            yes(s.features.defer_taskrun),
            s.registered_files
        );
        println!("listening on {addr}");
    })?;
    eprintln!(
        "echo (uring): served {} connections, {} bytes, shed {}; {} late completions dropped",
        s.echo.accepted, s.echo.bytes, s.echo.shed, s.stale
    );
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn run_echo_uring(_config: EchoConfig) -> Result {
    Err("--backend uring: io_uring exists only on Linux".into())
}

fn run_echo_async(backend: Option<Backend>, config: EchoConfig) -> Result {
    let mut lp = server_loop(backend)?;
    let echo = EchoAsync::listen(&mut lp, config)?;
    println!("listening on {}", echo.local_addr());
    let e = echo.clone();
    on_shutdown_signals(&mut lp, move |lp| e.shutdown(lp))?;
    lp.run(RunMode::Default)?;
    let s = echo.stats();
    eprintln!(
        "echo-async: served {} connections, {} bytes, shed {}",
        s.accepted, s.bytes, s.shed
    );
    Ok(())
}

fn run_longpoll(
    cfg: LongPollConfig,
    backend: Option<Backend>,
    metrics: Option<SocketAddr>,
) -> Result {
    let mut lp = server_loop(backend)?;
    let server = LongPoll::listen(&mut lp, cfg)?;
    let metrics = start_metrics(&mut lp, metrics)?;
    // Held polls are answered with "shutdown": true before their connections close;
    // what is still open after the grace is cut (a second signal cuts at once).
    let (s, m) = (server.clone(), metrics.clone());
    on_shutdown_signals(&mut lp, move |lp| {
        s.shutdown(lp);
        if let Some(m) = &m {
            m.shutdown(lp);
        }
    })?;
    // Said once the signals are handled: a script may send SIGINT as soon as it reads it.
    println!("listening on http://{}/", server.local_addr(&lp)?);
    announce_metrics(&lp, metrics.as_ref())?;
    lp.run(RunMode::Default)?;
    let st = server.stats();
    eprintln!(
        "longpoll: {} published, {} polls answered by message, {} by timeout, {} aborted by clients",
        st.chat.published, st.chat.answered_by_message, st.chat.answered_by_timeout, st.chat.aborted
    );
    eprintln!(
        "longpoll: {} connection(s) cut at shutdown, {} closed by the send timeout",
        st.wire.cut_at_shutdown, st.wire.send_timeouts
    );
    Ok(())
}

fn run_longpoll_group(
    cfg: LongPollConfig,
    group: GroupBuilder,
    metrics: Option<SocketAddr>,
) -> Result {
    if metrics.is_some() {
        return Err("--metrics-addr watches one loop; use it with --loops 1".into());
    }
    raise_fd_limit();
    let group = looplab::servers::longpoll::group::spawn(group, cfg)?;
    if let Some(note) = group.note() {
        eprintln!("looplab: {note}");
    }
    let addr = group.local_addr().ok_or("the group has no listener")?;
    // Said once the signals are handled: a script may send SIGINT as soon as it reads it.
    let ended = group.run_until_signal(|| println!("listening on http://{addr}/"))?;
    for r in ended {
        let r = r?;
        let (c, w) = (r.stats.chat, r.stats.wire);
        eprintln!(
            "longpoll loop {}: {} connections, {} publishes appended (the owner, loop 0, appends every loop's), {} polls answered by message, {} by timeout, {} hops sent to other loops",
            r.index, w.accepted, c.published, c.answered_by_message, c.answered_by_timeout, r.hops_sent
        );
    }
    Ok(())
}

fn run_echo_threads(cfg: EchoThreadsConfig) -> Result {
    raise_fd_limit();
    // The connection threads need no loop; this one only waits for SIGINT or SIGTERM.
    // Built first, so its fds are taken before clients can use up the limit.
    let mut lp = Loop::new()?;
    for signum in [libc::SIGINT, libc::SIGTERM] {
        let s = lp.signal(signum, |lp, _, _| lp.stop())?;
        lp.ref_handle(s); // signal handles start unref'd; these are what the loop waits for
    }
    let server = EchoThreads::start_with(cfg, Arc::new(tell_thread_notice))?;
    println!("listening on {}", server.local_addr());
    // Returning ends the process, and with it the accept and connection threads.
    lp.run(RunMode::Default)?;
    let s = server.stats();
    eprintln!(
        "echo-threads: served {} connections, shed {}, {} closed idle, {} still open",
        s.accepted.load(Ordering::Relaxed),
        s.shed.load(Ordering::Relaxed),
        s.timed_out.load(Ordering::Relaxed),
        s.open.load(Ordering::Relaxed)
    );
    Ok(())
}

fn tell_thread_notice(notice: Notice) {
    match notice {
        Notice::OutOfFds(e) => eprintln!(
            "echo-threads: out of file descriptors ({e}); retrying accept every {} ms",
            ACCEPT_BACKOFF.as_millis()
        ),
        Notice::NoThread(e) => eprintln!(
            "echo-threads: cannot start a thread for a new connection ({e}); refusing connections until threads free up"
        ),
        Notice::Recovered { failures } => {
            eprintln!("echo-threads: accepting again after {failures} failed attempts")
        }
    }
}

fn run_echo_raw(addr: SocketAddr) -> Result {
    raise_fd_limit();
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signals(stop.clone())?;
    looplab::servers::raw_echo::serve(addr, |bound| println!("listening on {bound}"), &stop)?;
    Ok(())
}

/// The raw rung has no loop of ours to hear signals on: a small one on a thread of its
/// own sets `stop` on SIGINT or SIGTERM, which the raw loop checks between its 100 ms
/// waits. Returns once the handlers are in place, so "listening on" comes after.
fn stop_on_signals(stop: Arc<AtomicBool>) -> std::io::Result<()> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let watch = || -> std::io::Result<Loop> {
                let mut lp = Loop::builder().threadpool_size(1).build()?;
                for signum in [libc::SIGINT, libc::SIGTERM] {
                    let stop = stop.clone();
                    let s = lp.signal(signum, move |lp, _, _| {
                        stop.store(true, Ordering::Relaxed);
                        lp.stop();
                    })?;
                    lp.ref_handle(s); // this loop exists only to hear them
                }
                Ok(lp)
            };
            match watch() {
                Ok(mut lp) => {
                    let _ = ready_tx.send(Ok(()));
                    let _ = lp.run(RunMode::Default);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })?;
    ready_rx
        .recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the signal thread ended")))
}

fn run_hostile(
    duration: Option<Duration>,
    pin: Option<&(Vec<usize>, Vec<usize>)>,
    out: &std::path::Path,
) -> Result {
    use looplab::bench::hostile::{self, HostileConfig};
    if cfg!(debug_assertions) {
        eprintln!(
            "looplab bench: this is a debug build; figures are only meaningful with --release"
        );
    }
    let cfg = HostileConfig {
        duration: duration.unwrap_or(HostileConfig::default().duration),
        ..HostileConfig::default()
    };
    let report = hostile::run(&cfg, pin)?;
    print!("{}", hostile::table(&report));
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let json = out.join("hostile.json");
    let text = serde_json::to_string_pretty(&report)?;
    std::fs::write(&json, text).map_err(|e| format!("writing {}: {e}", json.display()))?;
    println!("wrote {}", json.display());
    Ok(())
}

fn run_loops_bench(loops: Vec<usize>, modes: Vec<ListenMode>, cfg: &BenchConfig) -> Result {
    use looplab::bench::loops::{self, LoopsConfig};
    if loops.contains(&0) || modes.is_empty() {
        return Err("--loops values must be above zero, and --modes non-empty".into());
    }
    let lc = LoopsConfig {
        loops,
        modes,
        conns: cfg.conns.clone(),
        size: cfg.size,
        duration: cfg.duration,
        warmup: cfg.warmup,
        client_threads: cfg.client_threads,
        pin: cfg.pin.clone(),
        rounds: cfg.rounds,
    };
    // Read before the cells pin this thread: a pinned thread sees only its own cores.
    let machine = report::Machine::here().describe();
    let rows = loops::run(&lc, |cell| eprintln!("looplab bench: {cell}"))?;
    println!("{machine}");
    print!("{}", loops::table(&rows));
    std::fs::create_dir_all(&cfg.out)
        .map_err(|e| format!("creating {}: {e}", cfg.out.display()))?;
    let json = cfg.out.join("loops.json");
    std::fs::write(&json, serde_json::to_string_pretty(&rows)?)
        .map_err(|e| format!("writing {}: {e}", json.display()))?;
    println!("wrote {}", json.display());
    Ok(())
}

fn run_bench(args: BenchArgs) -> Result {
    if args.replot {
        let json = args.out.join("results.json");
        let report = report::read_json(&json)?;
        print!("{}", report::table(&report));
        let svg = args.out.join("echo.svg");
        report::write_svg(&report, &svg)?;
        println!("redrew {}", svg.display());
        return Ok(());
    }
    if args.timers {
        looplab::bench::timers::report(&[10_000, 100_000, 1_000_000], 3);
        return Ok(());
    }
    raise_fd_limit();
    let default_servers = if cfg!(target_os = "linux") {
        vec![
            ServerKind::Threads,
            ServerKind::Loop(Backend::Epoll),
            ServerKind::Loop(Backend::Mio),
            ServerKind::Raw,
        ]
    } else {
        vec![
            ServerKind::Threads,
            ServerKind::Loop(Backend::default_for_os()),
            ServerKind::Loop(Backend::Mio),
        ]
    };
    let (conns, duration, warmup) = if args.full {
        (
            vec![1, 10, 100, 1000, 5000, 10_000],
            Duration::from_secs(3),
            Duration::from_secs(1),
        )
    } else {
        (
            vec![10, 100, 1000, 5000],
            Duration::from_millis(800),
            Duration::from_millis(200),
        )
    };
    let cfg = BenchConfig {
        servers: args.servers.unwrap_or(default_servers),
        conns: args.conns.unwrap_or(conns),
        size: args.size,
        duration: args.duration.unwrap_or(duration),
        warmup: args.warmup.unwrap_or(warmup),
        client_threads: args.clients_threads.max(1),
        rounds: args.rounds.max(1),
        pin: None,
        out: args.out,
    };
    let mut cfg = cfg;
    let machine = report::Machine::here();
    let cores = machine.cores;
    if !args.no_pin && cores >= 2 {
        // The client's threads get the first cores, the server the rest (at least one).
        let client = cfg.client_threads.min(cores - 1);
        cfg.pin = Some(((0..client).collect(), (client..cores).collect()));
    }
    if cfg.size == 0 || cfg.conns.contains(&0) || cfg.servers.is_empty() {
        return Err(
            "--size, every --conns value and --servers must be non-empty and above zero".into(),
        );
    }
    if args.hostile {
        return run_hostile(args.duration, cfg.pin.as_ref(), &cfg.out);
    }
    if let Some(loops) = args.loops {
        let modes = args
            .modes
            .unwrap_or(vec![ListenMode::Reuseport, ListenMode::Exclusive]);
        return run_loops_bench(loops, modes, &cfg);
    }
    if let Some(n) = args.waiters {
        let r = looplab::bench::waiters::run(n, cfg.pin.as_ref())?;
        looplab::bench::waiters::print(&r);
        return Ok(());
    }
    if cfg!(debug_assertions) {
        eprintln!("looplab bench: this is a debug build; figures are only meaningful with --release (make bench)");
    }
    std::fs::create_dir_all(&cfg.out)
        .map_err(|e| format!("creating {}: {e}", cfg.out.display()))?;
    let cells = (cfg.servers.len() * cfg.conns.len() * cfg.rounds) as u64;
    let bar = indicatif::ProgressBar::new(cells);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} {msg} [{elapsed}, ~{eta} left]",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    // Servers compared at one connection count run back to back, so drift in the
    // machine's state (other load, thermal) touches them alike.
    let mut rows = Vec::new();
    for round in 1..=cfg.rounds {
        for &conns in &cfg.conns {
            for &server in &cfg.servers {
                bar.set_message(format!(
                    "round {round}: {} x {conns} connections",
                    server.name()
                ));
                match runner::measure(server, conns, &cfg) {
                    Ok(row) => rows.push(row),
                    Err(e) => bar.suspend(|| {
                        eprintln!(
                            "looplab bench: {} at {conns} connections failed: {e}",
                            server.name()
                        )
                    }),
                }
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    let mut rows = runner::median_rounds(rows, &cfg.servers, &cfg.conns);
    runner::relate_to_raw(&mut rows);
    let report = Report::new(machine, &cfg, rows);
    print!("{}", report::table(&report));
    let json = cfg.out.join("results.json");
    let svg = cfg.out.join("echo.svg");
    report::write_json(&report, &json)?;
    report::write_svg(&report, &svg)?;
    println!("wrote {} and {}", json.display(), svg.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    /// Every unit the error message names is accepted; the range ends are errors, not
    /// clamps.
    #[test]
    fn durations_in_every_unit_and_out_of_range() {
        let ok = |s: &str| parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("3s"), Duration::from_secs(3));
        assert_eq!(ok("3"), Duration::from_secs(3));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("1ms"), Duration::from_millis(1));
        for bad in ["2h", "3601s", "0.5ms", "0s", "-1s", "1e3s", "5d", "s", ""] {
            let e = parse_duration(bad).expect_err(bad);
            assert!(
                e.contains("between 1ms and 1h")
                    || e.contains("unit")
                    || e.contains("not a duration"),
                "{bad}: {e}"
            );
        }
        assert!(parse_duration("5d").unwrap_err().contains("ms, s, m or h"));
    }
}
