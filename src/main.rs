//! `looplab`: run the servers and the benchmark from the command line.

mod cli;

use clap::{Parser, Subcommand};
use cli::*;
use looplab::servers::echo::EchoConfig;
use looplab::servers::echo_threads::EchoThreadsConfig;
use looplab::servers::longpoll::LongPollConfig;
use looplab::{Backend, Trigger};
use std::net::SocketAddr;
use std::process::ExitCode;
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
        /// Poller registrations: level or edge (default: the backend's own, level for
        /// epoll and kqueue, edge for mio).
        #[arg(long)]
        trigger: Option<Trigger>,
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
        /// Poller registrations: edge (as tokio's: each read future keeps the
        /// readiness itself, so it needs to hear only of changes) or level.
        #[arg(long, default_value = "edge")]
        trigger: Trigger,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Echo {
            addr,
            backend,
            trigger,
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
                Some(EchoBackend::Uring) if trigger.is_some() => {
                    Err("--trigger: the uring echo has no poller; it is told of completions".into())
                }
                Some(EchoBackend::Uring) => no_loop_to_watch("echo --backend uring", metrics_addr)
                    .and_then(|()| run_echo_uring(config)),
                _ if group.loops > 1 => {
                    run_echo_group(group.builder(loop_backend, trigger), config, metrics_addr)
                }
                _ => run_echo(loop_backend, trigger, config, metrics_addr),
            }
        }
        Command::EchoAsync {
            addr,
            backend,
            trigger,
            max_conns,
            idle_timeout,
        } => run_echo_async(
            backend,
            trigger,
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
                run_longpoll_group(cfg, group.builder(backend, None), metrics_addr)
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

pub(crate) type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;
