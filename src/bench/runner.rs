//! `looplab bench`: every server in its own child process, every connection count, one
//! load generator, and the figures that matter side by side.
//!
//! [`measure`] runs one cell: it starts the server (`runner/child.rs`), pins the two
//! sides if asked, drives the load, samples the server's `/proc` and `/metrics` as the
//! window opens and closes, and turns it all into a [`Row`] (`runner/row.rs`, which
//! also takes the median of rounds). The servers it can start, and how, are in
//! `runner/server_kind.rs`.

pub(super) mod child;
mod paired;
mod row;
mod server_kind;

pub use paired::{paired_cpu, Paired};
pub use row::{median_rounds, relate_to_raw, Row};
pub use server_kind::ServerKind;

use super::loadgen::{self, LoadConfig, WindowObserver};
use super::procstat::{self, ProcSample};
use super::scrape::{self, Scrape};
use child::Server;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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

/// Watches the window for `measure`: the server's `/proc` figures and `/metrics` as it
/// opens and as it closes, so every figure in the row covers the same span.
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
    Ok(Row::measured(kind, conns, &r, &before, &sampler, said))
}

/// `servers` in the order round `round` (from 1) runs them: rotated by one per round,
/// so each server takes each place in turn.
pub fn in_turn<T>(servers: &[T], round: usize) -> impl Iterator<Item = &T> {
    let start = round.saturating_sub(1) % servers.len().max(1);
    servers[start..].iter().chain(&servers[..start])
}

#[cfg(test)]
mod turn_tests {
    use super::in_turn;

    #[test]
    fn each_server_takes_each_place_in_turn() {
        let servers = ["a", "b", "c"];
        let order = |round| in_turn(&servers, round).copied().collect::<Vec<_>>();
        assert_eq!(order(1), ["a", "b", "c"]);
        assert_eq!(order(2), ["b", "c", "a"]);
        assert_eq!(order(3), ["c", "a", "b"]);
        assert_eq!(order(4), ["a", "b", "c"]);
        assert!(in_turn::<&str>(&[], 5).next().is_none());
    }
}
