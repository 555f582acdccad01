//! The command line's arguments that are more than a flag: loop groups, the bench's
//! options, durations, and which echo backend.

use super::*;
use looplab::bench::runner::ServerKind;
use looplab::group::{GroupBuilder, ListenMode, LoopGroup};
use looplab::{Backend, Trigger};
use std::path::PathBuf;
use std::time::Duration;

/// One loop per core (src/group.rs): `--loops N` threads, each its own loop.
#[derive(clap::Args, Clone, Copy)]
pub(crate) struct GroupArgs {
    /// Loops (threads), each with its own event loop; 1 is the ordinary server.
    #[arg(long, default_value_t = 1)]
    pub(crate) loops: usize,
    /// How the loops share the address: reuseport (a socket each) or exclusive (one
    /// socket, EPOLLEXCLUSIVE; raw epoll only, else reuseport with a note).
    #[arg(long, default_value = "reuseport")]
    pub(crate) mode: ListenMode,
    /// Pin loop i to core i.
    #[arg(long)]
    pub(crate) pin: bool,
}

impl GroupArgs {
    pub(crate) fn builder(
        self,
        backend: Option<Backend>,
        trigger: Option<Trigger>,
    ) -> GroupBuilder {
        LoopGroup::builder()
            .loops(self.loops)
            .mode(self.mode)
            .pin(self.pin)
            .make_loop(move |_| server_loop(backend, trigger))
    }
}

#[derive(clap::Args)]
pub(crate) struct BenchArgs {
    /// Servers to compare: threads, epoll, epoll-bare (epoll without its metrics), kqueue,
    /// mio, async (edge-triggered), async-level, raw, uring (io_uring, Linux), and tokio
    /// with the `peer-tokio` feature (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) servers: Option<Vec<ServerKind>>,
    /// Connection counts (default 10,100,1000,5000; with --full 1,10,100,1000,5000,10000).
    #[arg(long, value_delimiter = ',')]
    pub(crate) conns: Option<Vec<usize>>,
    /// Message size in bytes.
    #[arg(long, default_value_t = 64)]
    pub(crate) size: usize,
    /// Recorded window per cell, e.g. 3s or 500ms (default 600ms; 3s with --full).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) duration: Option<Duration>,
    /// Traffic before the window (default 150ms; 1s with --full), and at least 0.2 ms
    /// per connection, so that every connection is served before the window opens.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) warmup: Option<Duration>,
    /// Load generator threads.
    #[arg(long, default_value_t = 1)]
    pub(crate) clients_threads: usize,
    /// Directory for results.json and echo.svg (overwritten).
    #[arg(long, default_value = "bench-out")]
    pub(crate) out: PathBuf,
    /// Run the sweep this many times and keep each cell's median round (by rt/s), so one
    /// disturbed cell cannot make the table: three short rounds by default.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// Redraw the table and echo.svg from OUT/results.json, measuring nothing.
    #[arg(long)]
    pub(crate) replot: bool,
    /// Do not pin the load generator and the server to separate cores.
    #[arg(long)]
    pub(crate) no_pin: bool,
    /// The full sweep, to 10000 connections.
    #[arg(long)]
    pub(crate) full: bool,
    /// Instead: the timing wheel against a binary heap at 10^4, 10^5, 10^6 timers.
    #[arg(long)]
    pub(crate) timers: bool,
    /// Instead: hold this many polls on `looplab longpoll`, then publish once: the
    /// server's memory per held poll and the time to answer them all.
    #[arg(long)]
    pub(crate) waiters: Option<usize>,
    /// Instead: `looplab longpoll` against 100 hostile clients (pipelining, replies
    /// never read, amplified polls) beside 20 normal ones for --duration (default 10s):
    /// server peak RSS, normal p50/p99, lost messages; writes OUT/hostile.json.
    #[arg(long)]
    pub(crate) hostile: bool,
    /// Instead: `looplab echo --loops N` for each N here (e.g. 1,2,4), in each --modes:
    /// rt/s, server CPU per round trip, p99 and connections per loop; OUT/loops.json.
    #[arg(long, value_delimiter = ',')]
    pub(crate) loops: Option<Vec<usize>>,
    /// With --loops: the listen modes to compare (default reuseport,exclusive).
    #[arg(long, value_delimiter = ',')]
    pub(crate) modes: Option<Vec<ListenMode>>,
}

/// "3s", "500ms", "1.5s", "2m", "1h"; a bare number is seconds. Between 1 ms and 1 h:
/// anything outside is an error naming the range, never quietly moved into it.
pub(crate) fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
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

/// `echo --backend`: one of the loop's pollers, or the io_uring echo, which is not a
/// poller of the loop but a completion loop of its own (`servers/echo_uring.rs`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum EchoBackend {
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
