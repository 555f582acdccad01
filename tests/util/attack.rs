//! What the hostile tests share: the long-poll binary as a child, a ring of messages
//! that JSON makes six times larger, clients that never read, and a watch on the
//! server's memory while another client checks it still answers.
#![allow(dead_code)]

use super::child::ServerChild;
use super::wire::{self, publish_request, request, Answer, NoAnswer, Wire};
use serde_json::Value;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The bound on the server's memory under every attack here.
pub const RSS_LIMIT_KIB: u64 = 64 * 1024;
/// Read timeout for a request that should be answered at once.
pub const PROMPT: Duration = Duration::from_secs(5);

/// `looplab longpoll --addr 127.0.0.1:0` and `extra`.
pub fn longpoll(extra: &[&str]) -> ServerChild {
    let mut args = vec!["longpoll", "--addr", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    ServerChild::start(&args)
}

pub fn stats(addr: SocketAddr) -> Value {
    match wire::get(addr, "/stats", PROMPT) {
        Ok(a) if a.status == 200 => a.json().unwrap_or(Value::Null),
        other => panic!("GET /stats: {other:?}"),
    }
}

/// Ask `/stats` every 20 ms until `ok` holds or `limit` passes; the last answer.
pub fn wait_for_stats(
    addr: SocketAddr,
    limit: Duration,
    mut ok: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let s = stats(addr);
        if ok(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Publish `n` messages of 4096 control characters: JSON escapes each as 6 bytes, so
/// every message is 24 KiB in a poll answer.
pub fn fill_ring(addr: SocketAddr, n: usize) {
    let mut w = Wire::connect(addr, PROMPT).unwrap();
    let req = publish_request(&"\\u0001".repeat(4096));
    for i in 0..n {
        w.send(&req).unwrap();
        let status = w.answer().map(|a| a.status);
        assert!(matches!(status, Ok(201)), "publish {i}: {status:?}");
    }
}

pub fn describe(r: &Result<Answer, NoAnswer>) -> String {
    match r {
        Ok(a) => format!(
            "{} {:?}",
            a.status,
            a.text().chars().take(80).collect::<String>()
        ),
        Err(e) => format!("no answer ({e:?})"),
    }
}

/// Whether the server is still running, for failure messages (a process that has
/// closed its listener may take a moment to be reaped).
pub fn alive(server: &mut ServerChild) -> String {
    match server.wait_for_exit(Duration::from_millis(500)) {
        Some(s) => format!("the server has exited ({s})"),
        None => "the server is running".to_string(),
    }
}

/// Sample the server's RSS every 20 ms while `busy` says the attack goes on (at most
/// `limit`), timing another client's `/stats` every 200 ms. Stops early past the RSS
/// bound. Returns (peak RSS KiB, slowest /stats, /stats that got no answer).
pub fn watch(
    server: &ServerChild,
    limit: Duration,
    busy: impl Fn() -> bool,
) -> (u64, Duration, u32) {
    let (mut peak, mut slowest, mut unanswered) = (0, Duration::ZERO, 0);
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < limit && busy() {
        peak = peak.max(server.rss_kib()).max(server.peak_rss_kib());
        if peak > RSS_LIMIT_KIB {
            break;
        }
        if n % 10 == 0 {
            let t = Instant::now();
            match wire::get(server.addr, "/stats", PROMPT) {
                Ok(a) if a.status == 200 => slowest = slowest.max(t.elapsed()),
                _ => unanswered += 1,
            }
        }
        n += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    (peak.max(server.peak_rss_kib()), slowest, unanswered)
}

/// A client pipelining `total` bytes of `GET /` and never reading, on its own thread.
/// It stops at `total`, when `stop` is set, or once its writes have made no progress
/// for a second (the server stopped reading: its backpressure at work). Returns the
/// bytes sent and the socket, still open.
pub fn pipeline_get(
    addr: SocketAddr,
    total: usize,
    stop: Arc<AtomicBool>,
) -> JoinHandle<(usize, TcpStream)> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let chunk = request("GET", "/", &[], "").repeat(2048);
        let (mut sent, mut progress) = (0, Instant::now());
        while sent < total
            && !stop.load(Ordering::SeqCst)
            && progress.elapsed() < Duration::from_secs(1)
        {
            match s.write(&chunk[sent % chunk.len()..]) {
                Ok(n) => {
                    sent += n;
                    progress = Instant::now();
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break, // closed by the server: its answer to us
            }
        }
        (sent, s)
    })
}

/// `n` clients, each pipelining `GET /` until its writes have made no progress for
/// half a second, then never reading: the server has stopped reading them, so answers
/// wait in its write queue (the kernel's buffers, some MiB a connection, are full).
/// Panics if a client never stalls within 64 MiB or 10 s: the server is not holding
/// back.
pub fn stalled_pipelines(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let writers: Vec<_> = (0..n)
        .map(|_| std::thread::spawn(move || stall_one(addr)))
        .collect();
    writers.into_iter().map(|w| w.join().unwrap()).collect()
}

fn stall_one(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let chunk = request("GET", "/", &[], "").repeat(2048);
    let (start, mut progress, mut sent) = (Instant::now(), Instant::now(), 0);
    while progress.elapsed() < Duration::from_millis(500) {
        assert!(
            sent < 64 << 20 && start.elapsed() < Duration::from_secs(10),
            "the server kept reading a client that never reads ({} KiB)",
            sent >> 10
        );
        if let Ok(n) = s.write(&chunk[sent % chunk.len()..]) {
            sent += n;
            progress = Instant::now();
        }
    }
    s
}

/// A client whose one `Connection: close` poll asks for the whole ring, with a small
/// receive buffer, never reading (the 40 clients holding 920 MB).
pub fn unread_close_poll(addr: SocketAddr) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&addr.into()).unwrap();
    let mut s: TcpStream = sock.into();
    s.write_all(&request(
        "GET",
        "/poll?cursor=0",
        &[("Connection", "close")],
        "",
    ))
    .unwrap();
    s
}

/// Sends `raw` on a fresh connection: the first answer, and whether the connection was
/// then closed with nothing more sent.
pub fn first_answer_then(addr: SocketAddr, raw: &[u8]) -> (Result<Answer, NoAnswer>, bool) {
    let mut w = Wire::connect(addr, Duration::from_secs(2)).unwrap();
    w.send(raw).unwrap();
    let first = w.answer();
    let closed_quietly = match w.answer() {
        Err(NoAnswer::Closed) => true,
        Ok(_) | Err(_) => false,
    };
    (first, closed_quietly)
}

/// A JSON publish of `body` with these framing headers (`{n}` stands for the body's
/// length).
pub fn framed(body: &str, headers: &[&str]) -> Vec<u8> {
    let mut head = "POST /publish HTTP/1.1\r\nHost: test\r\n".to_string();
    head.push_str("Content-Type: application/json\r\n");
    for h in headers {
        head.push_str(&h.replace("{n}", &body.len().to_string()));
        head.push_str("\r\n");
    }
    format!("{head}\r\n{body}").into_bytes()
}
