//! The io_uring echo through real sockets on 127.0.0.1: the scenarios every echo passes
//! (tests/util/echo_cases.rs), and what only a completion server has to get right:
//! closing connections with a recv in flight. Where io_uring is refused (a seccomp
//! profile, kernel.io_uring_disabled) each test says so on stderr and passes.
#![cfg(target_os = "linux")]

mod util;

use looplab::servers::echo::{EchoConfig, HIGH_WATER};
use looplab::servers::echo_uring::{self, Fallbacks, UringStats};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use util::echo_cases::{
    a_reset_does_not_disturb_others, five_hundred_clients, half_close_returns_everything_then_eof,
    over_max_conns_is_shed, thirty_two_mib_from_a_client_that_reads_late,
};
use util::{connect, round_trip};

/// A uring echo on its own thread (the ring is made there), stopped by a flag.
struct UringEcho {
    addr: SocketAddr,
    fallbacks: Fallbacks,
    stop: Arc<AtomicBool>,
    live: Arc<Mutex<UringStats>>,
    thread: JoinHandle<std::io::Result<UringStats>>,
}

impl UringEcho {
    fn start(fallbacks: Fallbacks, max_conns: usize) -> UringEcho {
        let (stop, live) = (Arc::new(AtomicBool::new(false)), Arc::default());
        let (s, l) = (stop.clone(), Arc::clone(&live));
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let config = EchoConfig {
                addr: "127.0.0.1:0".parse().unwrap(),
                max_conns,
                idle_timeout: None,
            };
            echo_uring::serve_with(&config, fallbacks, &s, &l, |addr, _| tx.send(addr).unwrap())
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the uring echo says where it listens");
        UringEcho {
            addr,
            fallbacks,
            stop,
            live,
            thread,
        }
    }

    fn stats(&self) -> UringStats {
        self.live.lock().unwrap().clone()
    }

    /// Wait (10 s at most) until no connection is open, and return the stats then.
    fn wait_for_no_connections(&self) -> UringStats {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.stats();
            if s.echo.open == 0 || Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stop, and return the final stats: the server returns only once the kernel has
    /// answered every operation it had in flight.
    fn stop(self) -> UringStats {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .expect("the server thread ends cleanly")
            .expect("the server ends without an error")
    }
}

/// Run `test` on a fresh server on each path: the newest features this kernel has, then
/// single-shot recvs into the buffer ring, then the oldest (own read buffers, one accept
/// and one recv at a time, plain fds). Where io_uring cannot be
/// set up at all, say why on stderr (past the harness's capture: a skip must be seen)
/// and pass.
fn on_every_path(name: &str, max_conns: usize, test: impl Fn(UringEcho)) {
    if let Err(e) = looplab::sys::uring::available() {
        let _ = writeln!(std::io::stderr(), "{name}: skipped: {e}");
        return;
    }
    let single_recv = Fallbacks {
        single_recv: true,
        ..Fallbacks::default()
    };
    let oldest = Fallbacks {
        own_read_buffers: true,
        single_accept: true,
        single_recv: true,
        plain_fds: true,
    };
    for fallbacks in [Fallbacks::default(), single_recv, oldest] {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            test(UringEcho::start(fallbacks, max_conns))
        }));
        if let Err(e) = result {
            eprintln!("-- failed with {fallbacks:?} --");
            std::panic::resume_unwind(e);
        }
    }
}

#[test]
fn uring_echo_serves_500_clients() {
    on_every_path("uring_echo_serves_500_clients", 100_000, |server| {
        five_hundred_clients(server.addr);
        let s = server.wait_for_no_connections();
        // Each path is the one it says: the newer features used unless turned off.
        let f = server.fallbacks;
        assert_eq!(s.features.buf_ring, !f.own_read_buffers, "{s:?}");
        assert_eq!(s.multishot_accept, !f.single_accept, "{s:?}");
        assert_eq!(s.multishot_recv, !f.single_recv, "{s:?}");
        assert_eq!(s.registered_files > 0, !f.plain_fds, "{s:?}");
        assert_eq!(s.echo.open, 0, "{s:?}");
        assert_eq!(s.echo.accepted, 500);
        assert_eq!(s.echo.bytes, 500 * 100 * 64);
        assert_eq!(s.echo.errors, 0, "{s:?}");
        let last = server.stop();
        assert_eq!(last.in_flight, 0, "operations left in flight: {last:?}");
    });
}

/// The reader that stalls: the queued echo stays under the bound (the high-water mark
/// plus what a multishot recv delivers before its cancel lands, at most the buffer
/// ring), and the recv is paused while it drains.
#[test]
fn uring_echo_bounds_memory_for_a_client_that_reads_late() {
    on_every_path("uring_echo_bounds_memory", 100_000, |server| {
        thirty_two_mib_from_a_client_that_reads_late(server.addr);
        let s = server.wait_for_no_connections();
        let bound = echo_uring::QUEUE_BOUND;
        assert!(
            bound < 8 * HIGH_WATER,
            "a bound that allows the whole 32 MiB is none"
        );
        assert!(
            s.echo.max_queue <= bound,
            "queue reached {} > {bound}",
            s.echo.max_queue
        );
        assert!(s.echo.paused > 0, "backpressure never engaged: {s:?}");
        server.stop();
    });
}

#[test]
fn uring_echo_survives_a_reset() {
    on_every_path("uring_echo_survives_a_reset", 100_000, |server| {
        a_reset_does_not_disturb_others(server.addr);
        let s = server.wait_for_no_connections();
        assert_eq!(s.echo.open, 0, "{s:?}");
        assert!(s.echo.errors >= 1, "the reset was not seen: {s:?}");
        server.stop();
    });
}

#[test]
fn uring_echo_half_close() {
    on_every_path("uring_echo_half_close", 100_000, |server| {
        half_close_returns_everything_then_eof(server.addr);
        assert_eq!(server.wait_for_no_connections().echo.open, 0);
        server.stop();
    });
}

#[test]
fn uring_echo_sheds_over_max_conns() {
    on_every_path("uring_echo_sheds_over_max_conns", 2, |server| {
        let clients = over_max_conns_is_shed(server.addr);
        let s = server.stats();
        drop(clients);
        assert_eq!(
            (s.echo.shed, s.echo.open, s.echo.accepted),
            (1, 2, 2),
            "{s:?}"
        );
        server.stop();
    });
}

/// Stopping with 20 idle connections closes each with its recv in flight: 20 cancels,
/// and every cancelled recv's completion still comes back (nothing is left in flight
/// when `serve` returns), for a slot already freed, so each is dropped as stale.
#[test]
fn uring_echo_stop_cancels_every_recv_in_flight() {
    on_every_path("uring_echo_stop_cancels", 100, |server| {
        let mut clients: Vec<_> = (0..20).map(|_| connect(server.addr)).collect();
        for c in &mut clients {
            assert_eq!(round_trip(c, b"ping"), b"ping");
        }
        let last = server.stop();
        assert_eq!(last.in_flight, 0, "{last:?}");
        assert_eq!(last.cancels, 20, "{last:?}");
        assert_eq!(last.stale, 20, "every recv completes, late: {last:?}");
        assert!(last.cancels_lost <= 20, "{last:?}");
        for mut c in clients {
            let mut buf = [0u8; 1];
            let n = std::io::Read::read(&mut c, &mut buf).unwrap_or(0);
            assert_eq!(n, 0, "a client got data after the server stopped");
        }
    });
}

// ---------------------------------------------------------------------------------------
// What chapter 14 and example 23 quote, checked against what the programs print.
// ---------------------------------------------------------------------------------------

#[path = "util/exercise.rs"]
mod exercise;

const CHAPTER: &str = "docs/14-readiness-or-completion.md";

/// Example 23 with two clients of two messages (the chapter's commands): the buffer's
/// round trip, one line per completion, in the order the chapter and the header quote,
/// and the example stops by itself after the two connections close.
#[test]
fn example_23_shows_the_buffer_going_back_and_forth() {
    if looplab::sys::uring::available().is_err() {
        let _ = writeln!(std::io::stderr(), "example 23: skipped: io_uring refused");
        return;
    }
    let mut server =
        exercise::run_example("23_uring_echo", &["127.0.0.1:0", "--exit-after", "2"], &[]);
    let addr = server.listening_on().to_string();
    let mut client = exercise::run_example("12_echo_client", &[&addr, "2", "2"], &[]);
    assert!(
        client.finish(Duration::from_secs(20)).success(),
        "{}",
        client.transcript()
    );
    assert!(
        server.finish(Duration::from_secs(20)).success(),
        "{}",
        server.transcript()
    );
    let out = server.stdout();
    let quoted = [
        "conn 1: accepted",
        "conn 1: recv -> 64 bytes (the buffer is ours again)",
        "conn 1: send -> 64 bytes",
        "conn 1: recv -> 0 (EOF): closed",
    ];
    let mut at = 0;
    for line in quoted {
        exercise::says(CHAPTER, line);
        if !line.ends_with("accepted") {
            exercise::says("examples/23_uring_echo.rs", line);
        }
        let found = out[at..]
            .find(line)
            .unwrap_or_else(|| panic!("{line:?} not in order in:\n{out}"));
        at += found + line.len();
    }
    assert_eq!(
        out.matches("(the buffer is ours again)").count(),
        4,
        "{out}"
    );
    assert!(!out.contains("readable"), "{out}");
}

/// The refusal the chapter quotes is the one the CLI prints for EPERM, word for word.
#[test]
fn the_quoted_refusal_is_what_looplab_prints() {
    let e =
        looplab::sys::uring::explain_setup_error(std::io::Error::from_raw_os_error(libc::EPERM));
    exercise::says(CHAPTER, &format!("looplab: {e}"));
}

/// Try this 2: `looplab echo --backend uring` says which newer features it got, on its
/// first line of stderr, before it listens; SIGINT stops it cleanly.
#[test]
fn echo_backend_uring_says_what_the_kernel_gave_it() {
    if looplab::sys::uring::available().is_err() {
        let _ = writeln!(std::io::stderr(), "try this 2: skipped: io_uring refused");
        return;
    }
    let mut server = exercise::start(
        exercise::looplab(),
        &["echo", "--backend", "uring", "--addr", "127.0.0.1:0"],
        &[],
    );
    let addr = server.listening_on();
    let line = server.seen_or_wait_for("the features line", Duration::from_secs(10), |l| {
        l.starts_with("echo (uring): ")
    });
    exercise::says(
        CHAPTER,
        "echo (uring): provided-buffer ring yes, multishot accept yes",
    );
    assert!(
        line.contains("provided-buffer ring ") && line.contains("multishot accept "),
        "{line}"
    );
    let mut client = connect(addr);
    assert_eq!(round_trip(&mut client, b"try this"), b"try this");
    // SIGINT with the client still connected: its recv in flight is cancelled, its late
    // completion dropped, and the server exits 0.
    server.signal("INT");
    assert!(
        server.finish(Duration::from_secs(20)).success(),
        "{}",
        server.transcript()
    );
    let last = server.seen_or_wait_for("the summary", Duration::from_secs(5), |l| {
        l.contains("late completions dropped")
    });
    assert!(
        last.contains("served 1 connections, 8 bytes") && last.contains("; 1 late"),
        "{last}"
    );
}

/// `--backend uring` with what it cannot do is refused with the reason, not ignored.
#[test]
fn echo_backend_uring_refuses_what_it_lacks() {
    let mut run = exercise::start(
        exercise::looplab(),
        &[
            "echo",
            "--backend",
            "uring",
            "--addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
        ],
        &[],
    );
    assert!(!run.finish(Duration::from_secs(20)).success());
    assert!(
        run.stderr().contains("no event loop to watch"),
        "{}",
        run.transcript()
    );
}

/// `looplab bench --servers epoll,uring`: a uring row beside epoll's, every echo right,
/// every connection served, and CPU counted for it.
#[test]
fn the_bench_runs_a_uring_server() {
    if looplab::sys::uring::available().is_err() {
        let _ = writeln!(std::io::stderr(), "bench uring: skipped: io_uring refused");
        return;
    }
    let out = std::env::temp_dir().join(format!("looplab-uring-bench-{}", std::process::id()));
    let dir = out.to_string_lossy().into_owned();
    let args = [
        "bench",
        "--servers",
        "epoll,uring",
        "--conns",
        "20",
        "--duration",
        "500ms",
        "--rounds",
        "1",
        "--out",
        &dir,
    ];
    let mut run = exercise::start(exercise::looplab(), &args, &[]);
    assert!(
        run.finish(Duration::from_secs(60)).success(),
        "{}",
        run.transcript()
    );
    let text = std::fs::read_to_string(out.join("results.json")).expect("results.json");
    let _ = std::fs::remove_dir_all(&out);
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let rows = json["rows"].as_array().expect("rows");
    let uring = rows
        .iter()
        .find(|r| r["server"] == "uring")
        .expect("a uring row");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(uring["errors"], 0, "{uring}");
    assert_eq!(uring["stalled"], 0, "{uring}");
    assert!(uring["round_trips"].as_u64().unwrap_or(0) > 0, "{uring}");
}
