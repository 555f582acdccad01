//! `looplab`: run the servers and the benchmark from the command line.

use clap::{Parser, Subcommand};
use looplab::servers::echo::{Echo, EchoConfig};
use looplab::servers::echo_threads::EchoThreads;
use looplab::{Backend, Loop, RunMode};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

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
        /// Poller: epoll, kqueue or mio (default: the raw one for this OS).
        #[arg(long)]
        backend: Option<Backend>,
        /// Connections over this are accepted and closed at once.
        #[arg(long, default_value_t = 100_000)]
        max_conns: usize,
    },
    /// Echo server with one OS thread per connection.
    EchoThreads {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:7878")]
        addr: SocketAddr,
        /// Connections over this are accepted and closed at once.
        #[arg(long, default_value_t = 100_000)]
        max_conns: usize,
    },
    /// The hand-written libc epoll echo (the ladder's rung and the benchmark's floor).
    EchoRaw {
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, default_value = "127.0.0.1:7878")]
        addr: SocketAddr,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Echo {
            addr,
            backend,
            max_conns,
        } => run_echo(addr, backend, max_conns),
        Command::EchoThreads { addr, max_conns } => run_echo_threads(addr, max_conns),
        Command::EchoRaw { addr } => run_echo_raw(addr),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("looplab: {e}");
            let mut source = std::error::Error::source(&*e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}

type Result = std::result::Result<(), Box<dyn std::error::Error>>;

/// Servers hold one fd per connection: take all the fds the hard limit allows.
fn raise_fd_limit() {
    if let Err(e) = looplab::raise_nofile_limit() {
        eprintln!("looplab: could not raise the open-file limit: {e}");
    }
}

fn run_echo(addr: SocketAddr, backend: Option<Backend>, max_conns: usize) -> Result {
    raise_fd_limit();
    let mut builder = Loop::builder();
    if let Some(b) = backend {
        builder = builder.backend(b);
    }
    let mut lp = builder.build()?;
    let echo = Echo::listen(&mut lp, EchoConfig { addr, max_conns })?;
    println!("listening on {}", echo.local_addr(&lp)?);
    // SIGINT/SIGTERM: stop accepting, close every connection; the loop then has only
    // the (unref'd) signal handles left, so it exits and we return 0.
    for signum in [libc::SIGINT, libc::SIGTERM] {
        let e = echo.clone();
        lp.signal(signum, move |lp, _| e.shutdown(lp))?;
    }
    lp.run(RunMode::Default)?;
    let s = echo.stats();
    eprintln!(
        "echo: served {} connections, {} bytes, shed {}",
        s.accepted, s.bytes, s.shed
    );
    Ok(())
}

fn run_echo_threads(addr: SocketAddr, max_conns: usize) -> Result {
    raise_fd_limit();
    let server = EchoThreads::start(addr, max_conns)?;
    println!("listening on {}", server.local_addr());
    server.wait();
    Ok(())
}

fn run_echo_raw(addr: SocketAddr) -> Result {
    raise_fd_limit();
    let stop = AtomicBool::new(false);
    looplab::sys::raw_echo::serve(addr, |bound| println!("listening on {bound}"), &stop)?;
    Ok(())
}
