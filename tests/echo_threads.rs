//! `looplab echo-threads` as a person runs it: a child process that exits 0 on SIGINT
//! and SIGTERM, tells an out-of-fds episode once (not once per retry), and with
//! `--idle-timeout` ends the thread a silent (half-open) peer would hold forever.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use util::child::ServerChild;

fn client(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connecting");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

fn echoes(s: &mut TcpStream, msg: &[u8]) -> bool {
    let mut back = vec![0; msg.len()];
    s.write_all(msg).is_ok() && s.read_exact(&mut back).is_ok() && back == msg
}

/// Poll `ok` every 20 ms for up to `limit`; true as soon as it holds.
fn within(limit: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    ok()
}

/// SIGINT and SIGTERM end the server with status 0, even with a client connected
/// (its thread blocked in read), and the server says what it served.
#[test]
fn sigint_and_sigterm_exit_zero() {
    for signal in ["INT", "TERM"] {
        let mut server = ServerChild::start(&["echo-threads", "--addr", "127.0.0.1:0"]);
        let mut c = client(server.addr);
        assert!(echoes(&mut c, b"hello"), "no echo before SIG{signal}");
        server.signal(signal);
        let status = server.wait_for_exit(Duration::from_secs(5));
        let said = server.stderr_at_exit();
        let how = status.map_or("still running after 5 s".to_string(), |s| s.to_string());
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "SIG{signal}: {how}; stderr:\n{said}"
        );
        assert!(said.contains("served 1 connections"), "stderr:\n{said}");
    }
}

/// Under `ulimit -n 64` with 80 clients, accept runs out of fds. Over 2 s of that the
/// server says so once (it used to say it every 100 ms), serves the clients it has,
/// and says it accepts again once fds are free, serving a client that waited.
#[test]
fn out_of_fds_is_told_once_per_episode() {
    if !cfg!(target_os = "linux") {
        return; // reads /proc and relies on ulimit in sh
    }
    let mut server = ServerChild::start_with_nofile(64, &["echo-threads", "--addr", "127.0.0.1:0"]);
    let mut clients: Vec<TcpStream> = (0..80).map(|_| client(server.addr)).collect();
    for c in &clients {
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    let served: Vec<usize> = (0..clients.len())
        .filter(|&i| echoes(&mut clients[i], b"ping"))
        .collect();
    assert!(
        served.len() > 20 && served.len() < 80,
        "served {} of 80 under ulimit -n 64",
        served.len()
    );
    let told = |s: &str| s.matches("out of file descriptors").count();
    assert!(
        within(Duration::from_secs(5), || told(&server.stderr_so_far())
            >= 1),
        "running out of fds was never told: {}",
        server.stderr_so_far()
    );
    let cpu_before = server.cpu_ticks();
    std::thread::sleep(Duration::from_secs(2));
    let steady = server.stderr_so_far();
    assert_eq!(
        told(&steady),
        1,
        "one episode, told once; stderr:\n{steady}"
    );
    let cpu = server.cpu_ticks() - cpu_before;
    assert!(cpu < 50, "{cpu} ticks of CPU in 2 s while out of fds");

    // Free every served client's fd: a waiting client is accepted and echoed.
    let mut waiting: Vec<TcpStream> = clients
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !served.contains(i))
        .map(|(_, c)| c)
        .collect();
    let first = &mut waiting[0];
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut back = [0u8; 4];
    assert!(
        first.read_exact(&mut back).is_ok() && &back == b"ping",
        "a waiting client was never served after fds were freed"
    );
    assert!(
        within(Duration::from_secs(5), || server
            .stderr_so_far()
            .contains("accepting again")),
        "the end of the episode was never told: {}",
        server.stderr_so_far()
    );
    let all = server.stderr_so_far();
    assert!(
        told(&all) <= all.matches("accepting again").count() + 1,
        "each episode told once; stderr:\n{all}"
    );
    // Out of fds again, SIGINT still ends it with 0: the signal's fds were taken first.
    let _more: Vec<TcpStream> = (0..60).map(|_| client(server.addr)).collect();
    server.signal("INT");
    let status = server.wait_for_exit(Duration::from_secs(5));
    let said = server.stderr_at_exit();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{status:?}; stderr:\n{said}"
    );
}

/// With `--idle-timeout 500ms`, five silent clients (no data, no FIN: what a vanished
/// peer looks like) lose their threads, never before the timeout; a client that keeps
/// talking keeps its thread past it.
#[test]
fn idle_timeout_frees_the_thread_of_a_silent_peer() {
    if !cfg!(target_os = "linux") {
        return; // counts threads in /proc
    }
    let server = ServerChild::start(&[
        "echo-threads",
        "--addr",
        "127.0.0.1:0",
        "--idle-timeout",
        "500ms",
    ]);
    let base = server.threads();
    let mut talker = client(server.addr);
    let mut silent: Vec<TcpStream> = (0..5).map(|_| client(server.addr)).collect();
    for c in silent.iter_mut() {
        assert!(echoes(c, b"hi"));
    }
    let last_word = Instant::now();
    assert!(echoes(&mut talker, b"hi"));
    assert!(
        within(Duration::from_secs(5), || server.threads() == base + 6),
        "one thread per client: {} threads, {base} before",
        server.threads()
    );
    // The talker speaks every 20 ms while the silent ones wait to be cut.
    let freed = within(Duration::from_secs(10), || {
        assert!(echoes(&mut talker, b"."), "the talking client was cut");
        server.threads() == base + 1
    });
    let took = last_word.elapsed();
    assert!(
        freed,
        "silent clients still hold threads: {} threads, {base} before",
        server.threads()
    );
    assert!(took >= Duration::from_millis(500), "cut early: {took:?}");
    for c in silent.iter_mut() {
        let mut b = [0u8; 1];
        assert!(
            matches!(c.read(&mut b), Ok(0)),
            "the server closed the idle connection"
        );
    }
    assert!(echoes(&mut talker, b"still here"));
}
