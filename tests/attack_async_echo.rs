//! `looplab echo-async` against hostile clients, the binary as a child process on
//! 127.0.0.1: clients that send and never read, thousands of idle connections, resets in
//! the middle of a blocked write, half-close, one-byte writes, `--max-conns`, signals.
//! What must hold is bounded memory, every fd given back, the others still served, and
//! exit status 0 on SIGINT/SIGTERM; no assertion here depends on how fast the machine is.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use util::child::ServerChild;
use util::echo_cases::{
    a_reset_does_not_disturb_others, half_close_returns_everything_then_eof, over_max_conns_is_shed,
};
use util::{connect, round_trip};

/// Long enough for a busy machine; a server that misbehaves misses it by forever.
const LIMIT: Duration = Duration::from_secs(20);

fn echo_async(extra: &[&str]) -> ServerChild {
    let mut args = vec!["echo-async", "--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    ServerChild::start(&args)
}

/// The server's fds with no client, once it is serving (its signal pipe may come after
/// its "listening on"): one served connection open, minus that one.
fn idle_fds(server: &ServerChild) -> usize {
    let mut c = connect(server.addr);
    assert_eq!(round_trip(&mut c, b"up?"), b"up?");
    server.fds() - 1
}

/// Wait until `cond` holds, up to `LIMIT`; whether it did.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + LIMIT;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// `n` clients that send until their sends stop going through (the server has stopped
/// reading them: its buffers and the kernel's are full) and never read. All are fed in
/// turn until none has taken a byte for 300 ms. Panics if the server closes one
/// meanwhile unless `may_close`.
fn never_reading(addr: SocketAddr, n: usize, may_close: bool) -> Vec<TcpStream> {
    let clients: Vec<TcpStream> = (0..n).map(|_| connect(addr)).collect();
    for c in &clients {
        c.set_nonblocking(true).unwrap();
    }
    let mut open = vec![true; n];
    let chunk = vec![b'n'; 64 * 1024];
    let (mut quiet_since, started) = (Instant::now(), Instant::now());
    while quiet_since.elapsed() < Duration::from_millis(300) {
        assert!(started.elapsed() < LIMIT, "the server never pushed back");
        for (c, open) in clients.iter().zip(open.iter_mut()).filter(|(_, o)| **o) {
            match (&*c).write(&chunk) {
                Ok(_) => quiet_since = Instant::now(),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) if may_close => *open = false,
                Err(e) => panic!("sending to the echo: {e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    clients
}

/// Close with RST (SO_LINGER 0) instead of FIN.
fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

/// SIGTERM sent the moment the server says where it listens stops it cleanly (exit 0),
/// as `looplab echo` and `looplab longpoll` do: a script that waits for that line and
/// then signals must not find the default action (death by the signal) still in place.
/// The server runs under looplab's own `task::process`, whose `kill` is kill(2) at once
/// (kill(1) would add a fork's time and mostly hide the window).
#[test]
fn sigterm_right_after_listening_on_exits_0() {
    use looplab::task::process::{Child, Command, Stdio};
    let mut lp = looplab::Loop::new().unwrap();
    let ended = lp
        .block_on(async {
            let mut ends = Vec::new();
            // A race, so many tries: without the fix 4 in 30 died of the signal when run
            // alone, 46 in 60 beside the other tests.
            for _ in 0..60 {
                let cmd = Command::new(env!("CARGO_BIN_EXE_looplab"))
                    .args(["echo-async", "--addr", "127.0.0.1:0"])
                    .stdout(Stdio::Pipe);
                let mut child = Child::spawn(cmd).await?;
                let mut lines = child.stdout.take().expect("piped").lines();
                let first = lines.next_line().await?.unwrap_or_default();
                assert!(first.starts_with("listening on "), "{first:?}");
                child.kill(libc::SIGTERM)?;
                let status = looplab::task::timeout(LIMIT, child.wait())
                    .await
                    .map_err(io_err)??;
                ends.push(status);
            }
            Ok::<_, std::io::Error>(ends)
        })
        .unwrap()
        .unwrap();
    let by_signal = ended.iter().filter(|s| !s.success()).count();
    assert_eq!(
        by_signal,
        0,
        "{by_signal} of {} runs ended by SIGTERM sent right after 'listening on'",
        ended.len()
    );
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// `--idle-timeout` closes a connection the server has read nothing from for that long,
/// as `looplab echo` does: the silent client, and also the one that sends and never
/// reads (the server stops reading it, and its task waits in `write_all` for good).
#[test]
fn idle_timeout_closes_a_client_that_never_reads() {
    let server = echo_async(&["--idle-timeout", "300ms"]);
    let base = idle_fds(&server);
    let silent = connect(server.addr);
    assert!(
        eventually(|| server.fds() == base + 1),
        "not accepted: {} fds",
        server.fds()
    );
    assert!(
        eventually(|| server.fds() == base),
        "the silent client was not closed: {} fds, base {base}",
        server.fds()
    );
    drop(silent);
    let stuck = never_reading(server.addr, 1, true);
    assert!(
        eventually(|| server.fds() == base),
        "a client that never reads is held past --idle-timeout: {} fds, base {base}",
        server.fds()
    );
    drop(stuck);
}

/// 50 clients send without reading: the server's memory stays within its per-connection
/// bounds (outbox and write queue of 64 KiB each, a 512-byte read buffer; what they
/// send waits in the kernel), and
/// when they reset in the middle of its blocked writes, every fd comes back and the
/// server still answers.
#[test]
fn clients_that_never_read_then_reset_cost_bounded_memory() {
    const CLIENTS: u64 = 50;
    let server = echo_async(&[]);
    let (base_fds, base_rss) = (idle_fds(&server), server.rss_kib());
    let hogs = never_reading(server.addr, CLIENTS as usize, false);
    let grew = server.peak_rss_kib().saturating_sub(base_rss);
    // Per connection ~200 KiB at most (measured: ~180); twice that and some slack.
    assert!(
        grew <= CLIENTS * 400 + 8 * 1024,
        "{grew} KiB for {CLIENTS} clients that never read"
    );
    for h in hogs {
        reset(h);
    }
    assert!(
        eventually(|| server.fds() == base_fds),
        "fds not given back after the resets: {} (base {base_fds})",
        server.fds()
    );
    let mut after = connect(server.addr);
    assert_eq!(round_trip(&mut after, b"still here"), b"still here");
}

/// The cases every echo passes (tests/echo.rs), against the async one.
#[test]
fn half_close_reset_and_shedding() {
    let server = echo_async(&[]);
    half_close_returns_everything_then_eof(server.addr);
    a_reset_does_not_disturb_others(server.addr);
    let limited = echo_async(&["--max-conns", "2"]);
    let kept = over_max_conns_is_shed(limited.addr);
    drop(kept);
    // The two slots come back: two new clients are served.
    assert!(eventually(|| {
        let mut c = connect(limited.addr);
        let _ = c.write_all(b"x");
        let mut b = [0u8; 1];
        matches!(c.read(&mut b), Ok(1))
    }));
}

/// A flood of connect-then-reset leaves nothing behind, and 10 000 idle connections (as
/// many as the fd limit allows) are each still served.
#[test]
fn reset_flood_and_ten_thousand_idle_connections() {
    let server = echo_async(&[]);
    let base = idle_fds(&server);
    for i in 0..5000 {
        let s = TcpStream::connect(server.addr).unwrap();
        if i % 2 == 1 {
            let _ = (&s).write_all(&[1u8; 100]);
        }
        reset(s);
    }
    assert!(eventually(|| server.fds() == base), "{} fds", server.fds());

    let (soft, _) = looplab::raise_nofile_limit().unwrap();
    let n = 10_000.min(soft.saturating_sub(500) as usize / 2);
    let idle: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    assert!(eventually(|| server.fds() == base + n), "{}", server.fds());
    for s in idle.iter().step_by(500) {
        s.set_read_timeout(Some(LIMIT)).unwrap();
        let mut s = s;
        s.write_all(b"ping").unwrap();
        let mut back = [0u8; 4];
        s.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"ping");
    }
    drop(idle);
    assert!(eventually(|| server.fds() == base), "{} fds", server.fds());
}

/// One-byte writes with Nagle off, from four clients at once: every byte comes back.
#[test]
fn one_byte_writes_all_come_back() {
    const PER: usize = 20_000;
    let server = echo_async(&[]);
    let clients: Vec<_> = (0..4u8)
        .map(|id| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let s = connect(addr);
                s.set_nodelay(true).unwrap();
                let mut r = s.try_clone().unwrap();
                let reader = std::thread::spawn(move || {
                    let mut got = vec![0u8; PER];
                    r.read_exact(&mut got).map(|()| got)
                });
                let mut w = &s;
                for _ in 0..PER {
                    w.write_all(&[id]).unwrap();
                }
                let got = reader.join().unwrap().unwrap();
                assert!(
                    got.iter().all(|b| *b == id),
                    "client {id} got foreign bytes"
                );
                s.shutdown(Shutdown::Both).ok();
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a one-byte client failed");
    }
}

/// SIGINT and SIGTERM under load (busy clients and clients that never read): exit 0,
/// no panic.
#[test]
fn sigint_and_sigterm_under_load_exit_0() {
    for signal in ["INT", "TERM"] {
        let mut server = echo_async(&[]);
        let addr = server.addr;
        let hogs = never_reading(addr, 5, false);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let busy: Vec<_> = (0..4)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut s = connect(addr);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        if s.write_all(&[7u8; 64]).is_err() {
                            return;
                        }
                        let mut b = [0u8; 64];
                        if s.read_exact(&mut b).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        server.signal(signal);
        let status = server.wait_for_exit(LIMIT);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for b in busy {
            let _ = b.join();
        }
        drop(hogs);
        let err = server.stderr_at_exit();
        let status = status.unwrap_or_else(|| panic!("SIG{signal}: still running\n{err}"));
        assert!(status.success(), "SIG{signal}: {status}\n{err}");
        assert!(!err.contains("panicked"), "SIG{signal}:\n{err}");
        assert!(err.contains("echo-async: served"), "{err}");
    }
}
