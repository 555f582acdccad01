//! A hostile client against the long-poll server after the scope change: what it found,
//! each pinned by a test that failed before its fix, and the strongest of the attacks
//! that found nothing, kept as a regression: every request scope (a held poll, a
//! pipelined request, a send deadline) ends when its client leaves. The echo servers'
//! are in `tests/attack_scopes_echo.rs`.

mod util;

use looplab::servers::longpoll::{LongPoll, LongPollConfig, LongPollStats};
use looplab::{AsyncSender, Backend, HandleKind, Loop, RunMode};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use util::attack::{self, PROMPT};
use util::{on_every_backend, wire};

/// What the long-poll server's loop holds, asked from the test's thread.
#[derive(Clone, Debug)]
struct Probe {
    /// Connection handles open (not closing).
    tcp: usize,
    /// Handles open, of every kind.
    handles: usize,
    scopes: usize,
    waiters: usize,
    stats: LongPollStats,
}

fn probe(lp: &Loop, server: &LongPoll) -> Probe {
    let open: Vec<_> = lp.handles().into_iter().filter(|h| !h.closing).collect();
    Probe {
        tcp: open.iter().filter(|h| h.kind == HandleKind::Tcp).count(),
        handles: open.len(),
        scopes: lp.scopes_open(),
        waiters: server.waiters(),
        stats: server.stats(),
    }
}

/// A long-poll server on its own loop thread, probed and stopped through async handles.
struct InLoop {
    addr: SocketAddr,
    ask: AsyncSender,
    answers: mpsc::Receiver<Probe>,
    stop: AsyncSender,
    /// Scopes and handles left when the loop returned.
    thread: std::thread::JoinHandle<(usize, usize)>,
}

impl InLoop {
    fn start(backend: Backend, cfg: LongPollConfig) -> InLoop {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (answer_tx, answers) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut lp = util::new_loop(backend);
            let server = LongPoll::listen(&mut lp, cfg).unwrap();
            let addr = server.local_addr(&lp).unwrap();
            let s = server.clone();
            let (ask_h, ask) = lp.async_handle(move |lp, _| answer_tx.send(probe(lp, &s)).unwrap());
            lp.unref_handle(ask_h);
            // A lost wakeup fails the test, not hangs it; stopping clears the guard so
            // that every handle left at the end is the server's.
            let guard = lp.set_timeout(Duration::from_secs(60), |lp, _| {
                panic!("still waiting after 60 s: {}", lp.explain_alive())
            });
            lp.unref_handle(guard);
            let s = server.clone();
            let (stop_h, stop) = lp.async_handle(move |lp, me| {
                s.shutdown(lp);
                lp.clear_timer(guard);
                lp.close(ask_h);
                lp.close(me);
            });
            lp.unref_handle(stop_h);
            ready_tx.send((addr, ask, stop)).unwrap();
            lp.run(RunMode::Default).unwrap();
            (lp.scopes_open(), lp.handles().len())
        });
        let (addr, ask, stop) = ready_rx.recv().unwrap();
        InLoop {
            addr,
            ask,
            answers,
            stop,
            thread,
        }
    }

    fn probe(&self) -> Probe {
        self.ask.send();
        self.answers
            .recv_timeout(Duration::from_secs(10))
            .expect("the loop answers")
    }

    /// Probe every 10 ms until `ok` holds (at most 10 s); the last probe.
    fn wait(&self, ok: impl Fn(&Probe) -> bool) -> Probe {
        let limit = Instant::now() + Duration::from_secs(10);
        loop {
            let p = self.probe();
            if ok(&p) || Instant::now() > limit {
                return p;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stop(self) -> (usize, usize) {
        self.stop.send();
        self.thread.join().expect("the server's loop ends cleanly")
    }
}

fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

/// `n` connections, each with `raw` sent.
fn clients(addr: SocketAddr, n: usize, raw: &[u8]) -> Vec<TcpStream> {
    let one = |_| {
        let mut s = util::connect(addr);
        s.write_all(raw).unwrap();
        s
    };
    (0..n).map(one).collect()
}

/// Read one whole answer (head and `Content-Length` body) off `s`.
fn answer(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).to_string();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = s.read_exact(&mut body);
    head + &String::from_utf8_lossy(&body)
}

const HELD: &[u8] = b"GET /poll?cursor=0&timeout=60 HTTP/1.1\r\nHost: t\r\n\r\n";

/// Held polls that leave (half by FIN, half by RST), polls whose deadline passes, polls
/// a publish answers: each is a request scope under the server's, and each ends.
fn polls_come_and_go(srv: &InLoop) {
    let held = clients(srv.addr, 100, HELD);
    srv.wait(|p| p.waiters == 100);
    for (i, s) in held.into_iter().enumerate() {
        if i % 2 == 0 {
            reset(s);
        }
    }
    let p = srv.wait(|p| p.waiters == 0 && p.tcp == 0);
    assert_eq!((p.waiters, p.stats.chat.aborted), (0, 100), "{p:?}");

    let short = b"GET /poll?cursor=0&timeout=0.05 HTTP/1.1\r\nHost: t\r\n\r\n";
    let t0 = Instant::now();
    for mut s in clients(srv.addr, 50, short) {
        let a = answer(&mut s);
        assert!(a.starts_with("HTTP/1.1 200"), "{a}");
        // Never early: the deadline is the poll's timeout.
        assert!(t0.elapsed() >= Duration::from_millis(50), "{a}");
    }
    let held = clients(srv.addr, 50, HELD);
    srv.wait(|p| p.waiters == 50);
    let published = wire::once(srv.addr, &wire::publish_request("hi"), PROMPT);
    assert_eq!(published.map(|a| a.status).ok(), Some(201));
    for mut s in held {
        let a = answer(&mut s);
        assert!(a.contains(r#""text":"hi""#), "{a}");
    }
}

/// A held poll with more than a request's worth pipelined behind it is answered early;
/// the pipeline behind it (the last request says `Connection: close`) is all answered.
fn pipeline_behind_a_held_poll(addr: SocketAddr) {
    // About 136 KiB: well over the wire's bound of a head and a body (80 KiB).
    const BEHIND: usize = 4000;
    let mut s = util::connect(addr);
    let mut reader = s.try_clone().unwrap();
    let count = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = reader.read_to_end(&mut all);
        String::from_utf8_lossy(&all).matches("HTTP/1.1 ").count()
    });
    let mut raw = HELD.to_vec();
    for _ in 1..BEHIND {
        raw.extend(wire::request("GET", "/nope", &[], ""));
    }
    raw.extend(wire::request(
        "GET",
        "/nope",
        &[("Connection", "close")],
        "",
    ));
    s.write_all(&raw).unwrap();
    assert_eq!(count.join().unwrap(), BEHIND + 1);
}

/// Resets in the middle of a head and of a body.
fn resets_mid_request(addr: SocketAddr) {
    let body = b"POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"te";
    let mut cut = clients(addr, 20, b"GET /poll?cursor=0&time");
    cut.extend(clients(addr, 20, body));
    cut.into_iter().for_each(reset);
}

/// The strongest attack that found nothing: every way a request scope can end (the
/// client leaves, its deadline passes, a publish answers it, a pipeline releases it, the
/// send deadline cuts a client that never reads), and after it, with the clients gone,
/// the loop holds only the server's own scope and the handles it started with; after
/// shutdown, nothing.
#[test]
fn every_request_scope_ends_when_hostile_clients_leave() {
    on_every_backend(|backend| {
        let cfg = LongPollConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            send_timeout: Duration::from_millis(300),
            ..LongPollConfig::default()
        };
        let srv = InLoop::start(backend, cfg);
        let base = srv.probe();
        // Before any publish: with no message, the poll at cursor 0 is held.
        pipeline_behind_a_held_poll(srv.addr);
        polls_come_and_go(&srv);
        resets_mid_request(srv.addr);
        let stalled = attack::stalled_pipelines(srv.addr, 3);
        let cut = srv.wait(|p| p.stats.wire.send_timeouts >= 1);
        drop(stalled);
        // The publish rate limiter keeps one sweep timer while it remembers a publisher
        // (until its bucket is full again, burst/rate = 2 s): wait that out too.
        let p = srv.wait(|p| p.tcp == 0 && p.handles == base.handles);
        let chat = p.stats.chat;
        assert_eq!(chat.answered_by_timeout, 50, "{p:?}");
        assert_eq!(chat.answered_early, 1, "{p:?}");
        assert!(cut.stats.wire.send_timeouts >= 1, "{cut:?}");
        assert_eq!((p.tcp, p.waiters), (0, 0), "{p:?}");
        assert!(p.scopes <= 1, "request scopes left: {p:?}");
        assert_eq!(
            p.handles, base.handles,
            "handles left: {p:?} (at start {base:?})"
        );
        assert_eq!(srv.stop(), (0, 0), "scopes and handles after shutdown");
    });
}

/// The long-poll wire stops reading a client whose answers pile up (over HIGH_WATER);
/// if that client then resets, the next flush fails. Before the fix the wire heard
/// nothing until the send deadline (10 s by default) cut the connection and counted a
/// send timeout: a reset client held its fd and queue for the whole deadline.
#[test]
fn long_poll_closes_a_paused_client_that_resets() {
    on_every_backend(|backend| {
        let cfg = LongPollConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            // No deadline of its own may close it within the test's wait: only the
            // reset can (a pipelined head left in its buffer would otherwise get a
            // 408 at the header timeout, whose write then fails).
            send_timeout: Duration::from_secs(60),
            header_timeout: Duration::from_secs(60),
            ..LongPollConfig::default()
        };
        let srv = InLoop::start(backend, cfg);
        let stalled = attack::stalled_pipelines(srv.addr, 3);
        let paused = srv.wait(|p| p.stats.wire.paused_for_output == 3);
        assert_eq!(paused.stats.wire.paused_for_output, 3, "{paused:?}");
        stalled.into_iter().for_each(reset);
        let p = srv.wait(|p| p.tcp == 0);
        let wire = p.stats.wire;
        assert_eq!(p.tcp, 0, "reset clients still open 10 s later: {p:?}");
        assert_eq!((wire.send_timeouts, wire.write_errors), (0, 3), "{p:?}");
        assert_eq!(srv.stop(), (0, 0), "scopes and handles after shutdown");
    });
}
