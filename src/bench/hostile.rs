//! `looplab bench --hostile`: `looplab longpoll` (a child process, as in the other
//! benches) against 100 hostile clients, beside normal clients whose service is
//! measured. The question is not speed but whether the server holds: a server that
//! trusts its peers lets one of them grow its memory without bound, or stalls everyone
//! else while it serves that one.
//!
//! The hostile clients, in three equal groups, none breaking a rule of TCP:
//! - **pipelining, never reading**: 8 MiB of `GET /` each;
//! - **`Connection: close`, never reading**: one poll for the whole ring, a small
//!   receive buffer, held open;
//! - **amplifying**: they fill the message ring with control characters (JSON escapes
//!   each as 6 bytes: 24 KiB a message, 24 MiB a ring) and pipeline 1470 polls from
//!   cursor 0, never reading.
//!
//! The normal clients publish a line, poll until caught up, pause, again; every message
//! one of them publishes must reach all the others (`lost` counts those that did not).
//! Reported: the server's peak RSS (sampled every 20 ms, and its VmHWM), the normal
//! clients' p50/p99, lost messages, and how the server took SIGINT with the hostile
//! clients still connected. Targets: peak RSS < 64 MiB, p99 < 50 ms, nothing lost.
//! The run stops early if the server passes [`RSS_CEILING_KIB`] or dies, and the server
//! is killed past [`RSS_KILL_KIB`].

mod clients;
mod server;

use clients::{Gathered, Normal};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
pub use server::{RSS_CEILING_KIB, RSS_KILL_KIB};
use std::collections::HashSet;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The targets the issue sets.
pub const TARGET_RSS_KIB: u64 = 64 << 10;
/// Normal clients' p99 target, ms.
pub const TARGET_P99_MS: f64 = 50.0;
/// What to run.
#[derive(Clone, Debug)]
pub struct HostileConfig {
    /// Hostile clients in all, split in three groups.
    pub hostile: usize,
    /// Normal clients.
    pub normal: usize,
    /// How long the attack and the normal traffic run together.
    pub duration: Duration,
    /// Messages in the server's ring, all filled with control characters first.
    pub ring: usize,
}

impl Default for HostileConfig {
    fn default() -> Self {
        HostileConfig {
            hostile: 100,
            normal: 20,
            duration: Duration::from_secs(10),
            ring: 1024,
        }
    }
}

/// Every figure of one run (also written as `hostile.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HostileReport {
    /// `release` or `debug`: figures only mean something from a release build.
    pub build: String,
    /// The attack's real length, seconds.
    pub duration_s: f64,
    /// Clients pipelining `GET /` and never reading.
    pub pipeliners: usize,
    /// Clients whose `Connection: close` poll is never read.
    pub close_non_readers: usize,
    /// Clients that filled the ring and pipeline polls from cursor 0.
    pub amplifiers: usize,
    /// Normal clients.
    pub normal_clients: usize,
    /// Control-character messages published to fill the ring.
    pub ring_messages: u64,
    /// Pipelined bytes the pipelining clients got the server's kernel to take.
    pub pipelined_bytes: u64,
    /// Server RSS before any client, KiB.
    pub idle_rss_kib: u64,
    /// The server's peak RSS, KiB (the higher of the samples and VmHWM).
    pub peak_rss_kib: u64,
    /// The run was stopped because RSS passed the ceiling.
    pub stopped_at_ceiling: bool,
    /// Seconds into the attack when RSS first passed 64 MiB (absent if it never did;
    /// 0 if it did before the attack began).
    pub over_target_after_s: Option<f64>,
    /// Normal requests timed (publishes and polls that should be answered at once).
    pub normal_requests: u64,
    /// Their median round trip, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// The slowest, ms (a failed request counts as the 2 s client timeout).
    pub max_ms: f64,
    /// Normal requests that failed or got an unexpected status.
    pub normal_errors: u64,
    /// Messages the normal clients published (201).
    pub published: u64,
    /// Of those, messages at least one other normal client never received.
    pub lost: u64,
    /// Poll answers to normal clients that said `reset`.
    pub resets: u64,
    /// The server's `/stats` at the end of the attack (null if it did not answer).
    pub server_stats: serde_json::Value,
    /// How the server took SIGINT with the hostile clients still connected.
    pub on_sigint: String,
    /// Seconds from SIGINT to exit (absent if it had to be killed).
    pub exit_s: Option<f64>,
    /// The last lines the server wrote to stderr.
    pub server_said: String,
    /// Peak RSS, p99 and lost all within the targets.
    pub targets_met: bool,
}

/// Run the benchmark.
pub fn run(
    cfg: &HostileConfig,
    pin: Option<&(Vec<usize>, Vec<usize>)>,
) -> io::Result<HostileReport> {
    let mut server = server::Server::start(pin)?;
    let addr = server.addr;
    let mut r = HostileReport {
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
        pipeliners: cfg.hostile.div_ceil(3),
        close_non_readers: cfg.hostile / 3,
        normal_clients: cfg.normal,
        idle_rss_kib: server.rss_kib(),
        ..HostileReport::default()
    };
    r.amplifiers = cfg.hostile - r.pipeliners - r.close_non_readers;
    let stop = Arc::new(AtomicBool::new(false));
    let watch = server.watch(stop.clone());
    let (mut threads, ring_messages) = clients::start_amplifiers(addr, r.amplifiers, cfg.ring);
    r.ring_messages = ring_messages;
    let cursor = latest(addr);
    threads.extend(clients::start_attackers(
        addr,
        r.pipeliners,
        r.close_non_readers,
        &stop,
    ));
    threads.extend(clients::start_normal(addr, cfg.normal, cursor, &stop));
    let t0 = Instant::now();
    while t0.elapsed() < cfg.duration && !stop.load(Ordering::SeqCst) && !server.exited() {
        std::thread::sleep(Duration::from_millis(20));
    }
    r.duration_s = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::SeqCst);
    let mut got = Gathered::default();
    for t in threads {
        let g = t
            .join()
            .map_err(|_| io::Error::other("a client thread panicked"))?;
        got.sockets.extend(g.sockets);
        got.pipelined += g.pipelined;
        got.normals.extend(g.normals);
    }
    r.server_stats = stats(addr).unwrap_or_default();
    r.pipelined_bytes = got.pipelined;
    (r.on_sigint, r.exit_s) = server.interrupt(&watch);
    drop(got.sockets);
    r.server_said = server.said();
    r.peak_rss_kib = watch.peak_kib.load(Ordering::SeqCst);
    r.stopped_at_ceiling = watch.at_ceiling.load(Ordering::SeqCst);
    r.over_target_after_s = watch
        .over_target_at
        .lock()
        .ok()
        .and_then(|at| *at)
        .map(|at| at.saturating_duration_since(t0).as_secs_f64());
    tally(&mut r, &got.normals);
    Ok(r)
}

fn stats(addr: SocketAddr) -> Option<serde_json::Value> {
    let mut s = TcpStream::connect_timeout(&addr, clients::IO_TIMEOUT).ok()?;
    s.set_read_timeout(Some(clients::IO_TIMEOUT)).ok()?;
    io::Write::write_all(
        &mut s,
        b"GET /stats HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n",
    )
    .ok()?;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let at = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    serde_json::from_slice(&out[at + 4..]).ok()
}

fn latest(addr: SocketAddr) -> u64 {
    stats(addr).and_then(|s| s["latest"].as_u64()).unwrap_or(0)
}

/// Percentiles over every normal request, and the messages some client never saw.
fn tally(r: &mut HostileReport, normals: &[Normal]) {
    let Ok(mut h) = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3) else {
        return; // constant bounds: cannot fail
    };
    for n in normals {
        for &us in &n.latencies_us {
            let _ = h.record(us.max(1));
        }
        r.normal_errors += n.errors;
        r.resets += n.resets;
        r.published += n.published.len() as u64;
    }
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    r.normal_requests = h.len();
    (r.p50_ms, r.p99_ms, r.max_ms) = (ms(0.5), ms(0.99), h.max() as f64 / 1000.0);
    let mut lost: HashSet<&str> = HashSet::new();
    for (i, n) in normals.iter().enumerate() {
        for text in &n.published {
            let missed = normals
                .iter()
                .enumerate()
                .any(|(j, other)| j != i && !other.seen.contains(text));
            if missed {
                lost.insert(text);
            }
        }
    }
    r.lost = lost.len() as u64;
    r.targets_met = r.peak_rss_kib < TARGET_RSS_KIB
        && r.p99_ms < TARGET_P99_MS
        && r.lost == 0
        && r.published > 0
        && r.normal_requests > 0
        && r.normal_errors == 0;
}

/// The figures as a table.
pub fn table(r: &HostileReport) -> String {
    let mib = |k: u64| k as f64 / 1024.0;
    let mut t = format!(
        "hostile clients against `looplab longpoll` ({} build, {:.1} s): {} pipelining GET / \
         never reading, {} Connection: close never reading, {} amplifying (a ring of {} \
         control-character messages); {} normal clients\n",
        r.build,
        r.duration_s,
        r.pipeliners,
        r.close_non_readers,
        r.amplifiers,
        r.ring_messages,
        r.normal_clients
    );
    t += &format!("  {:<24} {:>20}   {:<12}\n", "", "measured", "target");
    let ceiling = match (r.over_target_after_s, r.stopped_at_ceiling) {
        (Some(s), true) => format!(" (past 64 MiB at {s:.1} s; run stopped at 2 GiB)"),
        (Some(s), false) => format!(" (past 64 MiB at {s:.1} s)"),
        (None, _) => String::new(),
    };
    let rss = format!("{:.1} MiB", mib(r.peak_rss_kib));
    row(
        &mut t,
        "server peak RSS",
        &rss,
        "< 64 MiB",
        r.peak_rss_kib < TARGET_RSS_KIB,
        &ceiling,
    );
    let p = format!("{:.1} / {:.1} ms", r.p50_ms, r.p99_ms);
    row(
        &mut t,
        "normal p50 / p99",
        &p,
        "p99 < 50 ms",
        r.p99_ms < TARGET_P99_MS,
        "",
    );
    let lost = format!("{} of {}", r.lost, r.published);
    let none_lost = r.lost == 0 && r.published > 0;
    row(&mut t, "normal messages lost", &lost, "0", none_lost, "");
    let failed = format!("{} of {}", r.normal_errors, r.normal_requests);
    row(
        &mut t,
        "normal requests failed",
        &failed,
        "0",
        r.normal_errors == 0,
        "",
    );
    t += &format!(
        "  idle RSS {:.1} MiB; slowest normal request {:.1} ms; {} resets; {:.1} MiB of \
         pipelined requests written (the kernel's buffers take ~4 MiB a connection)\n",
        mib(r.idle_rss_kib),
        r.max_ms,
        r.resets,
        r.pipelined_bytes as f64 / (1 << 20) as f64
    );
    t += &format!(
        "  SIGINT with the hostile clients connected: {}\n",
        r.on_sigint
    );
    if !r.server_said.is_empty() {
        t += &format!("  server said: {}\n", r.server_said);
    }
    t
}

fn row(t: &mut String, name: &str, measured: &str, target: &str, met: bool, note: &str) {
    let verdict = if met { "ok" } else { "MISSED" };
    *t += &format!("  {name:<24} {measured:>20}   {target:<12} {verdict}{note}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(published: &[&str], seen: &[&str]) -> Normal {
        Normal {
            latencies_us: vec![1000, 2000],
            published: published.iter().map(|s| s.to_string()).collect(),
            seen: seen.iter().map(|s| s.to_string()).collect(),
            ..Normal::default()
        }
    }

    #[test]
    fn a_message_one_other_client_missed_is_lost() {
        let normals = [
            client(&["n0-0", "n0-1"], &["n0-0", "n0-1", "n1-0"]),
            client(&["n1-0"], &["n0-0", "n1-0"]),
            client(&[], &["n0-0", "n0-1", "n1-0"]),
        ];
        let mut r = HostileReport::default();
        tally(&mut r, &normals);
        assert_eq!((r.published, r.lost, r.normal_requests), (3, 1, 6));
        assert!(!r.targets_met, "a lost message misses the target");
        let mut all_seen = HostileReport::default();
        tally(&mut all_seen, &normals[..1]);
        assert_eq!(all_seen.lost, 0);
        assert!(all_seen.targets_met, "{all_seen:?}");
        assert!(table(&all_seen).contains("normal messages lost"));
    }
}
