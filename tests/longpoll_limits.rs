//! The long-poll server against clients that mean harm, in process over real sockets:
//! one test per observation of the hardening issue (odd numbers, a client that never
//! reads, a reply never read, smuggling, the smaller holes), each failing on the server
//! that trusted its peers.

mod longpoll_server;
mod util;

use longpoll_server::{exchange, ids, small_window_client, statuses, Server};
use looplab::servers::longpoll::{LongPoll, LongPollConfig};
use looplab::{Backend, Loop, RunMode};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};
use util::http::{get, Client};

const WAIT: Duration = Duration::from_secs(3);

fn backend() -> Backend {
    Backend::default_for_os()
}

fn body_of(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string())
}

/// Observation 1: Numbers a client sends are parsed checked: `timeout=1e20` used to panic
/// the whole process. Each odd value is a 400 naming the field, the connection closes, and
/// the server goes on serving.
#[test]
fn odd_numbers_in_a_poll_are_400s_naming_the_field() {
    let server = Server::start(backend(), |_| {});
    let odd = [
        ("timeout=1e20", "timeout"),
        ("timeout=NaN", "timeout"),
        ("timeout=inf", "timeout"),
        ("timeout=-1", "timeout"),
        ("timeout=120.5", "timeout"),
        ("timeout=1.", "timeout"),
        ("timeout=0x10", "timeout"),
        ("timeout=18446744073709551616", "timeout"),
        ("cursor=99999999999999999999999", "cursor"),
        ("cursor=-1", "cursor"),
        ("cursor=+1", "cursor"),
        ("cursor=1&cursor=2", "cursor"),
    ];
    for (query, field) in odd {
        let raw = format!("GET /poll?{query} HTTP/1.1\r\nHost: t\r\n\r\n");
        let (bytes, closed) = exchange(server.addr, raw.as_bytes(), WAIT);
        assert_eq!(statuses(&bytes), vec![400], "{query}");
        assert!(
            body_of(&bytes).starts_with(&format!("{field}: ")),
            "{query}"
        );
        assert!(closed, "{query}: a 400 closes the connection");
        assert!(server.alive(), "the server died on {query}");
    }
    let fine = get(server.addr, "/poll?cursor=0&timeout=0.05");
    assert_eq!((fine.status, ids(&fine.json())), (200, vec![]));
    assert_eq!(server.stats()["bad_requests"], odd.len());
    server.stop();
}

/// Observation 2: A client that pipelines requests and never reads used to be answered into
/// an unbounded queue (8 MiB of `GET /` took the server to 862 MB). Now the server stops
/// reading it once its queue is over the high-water mark, so the client's own sends stall;
/// when it reads, every request it sent is answered, in order.
#[test]
fn a_client_that_never_reads_stops_being_read() {
    let server = Server::start(backend(), |_| {});
    let page = get(server.addr, "/").body.len();
    let req = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(1000)
    );
    let limit = 24 << 20;
    let mut c = Client::connect(server.addr);
    c.stream.set_nonblocking(true).unwrap();
    let (mut sent, mut last_progress, start) = (0usize, Instant::now(), Instant::now());
    while sent < limit && last_progress.elapsed() < Duration::from_secs(1) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "sending took too long"
        );
        let at = sent % req.len();
        match c.stream.write(&req.as_bytes()[at..]) {
            Ok(n) => {
                sent += n;
                last_progress = Instant::now();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("sending: {e}"),
        }
    }
    assert!(
        sent < limit,
        "the server read all {sent} bytes from a client that reads nothing"
    );
    let stats = server.stats(); // another client is answered meanwhile
    assert!(stats["paused_for_output"].as_u64() >= Some(1), "{stats}");
    c.stream.set_nonblocking(false).unwrap();
    let whole = sent / req.len();
    for i in 0..whole {
        let r = c
            .read_response()
            .unwrap_or_else(|e| panic!("answer {i}: {e}"));
        assert_eq!((i, r.status, r.body.len()), (i, 200, page));
    }
    server.stop();
}

/// Observation 3: A reply that is never read used to be held forever. Now it closes its
/// connection after the send timeout, never before, and is counted.
#[test]
fn a_reply_never_read_times_out() {
    let server = Server::start(backend(), |c| c.send_timeout = Duration::from_millis(500));
    let mut s = small_window_client(server.addr);
    let t = Instant::now();
    // (The server may stop reading, then close, before taking it all.)
    let _ = s.write_all(&b"GET / HTTP/1.1\r\nHost: t\r\n\r\n".repeat(3000));
    let stats = server.wait_for("the send timeout", |s| s["send_timeouts"] == 1);
    assert!(t.elapsed() >= Duration::from_millis(500), "closed early");
    assert_eq!(stats["connections"], 1, "only the /stats client is left");
    let mut sink = Vec::new();
    let end = s.read_to_end(&mut sink);
    assert!(
        end.is_ok() || end.is_err_and(|e| e.kind() == io::ErrorKind::ConnectionReset),
        "the client sees its connection end"
    );
    assert_eq!(server.stop().wire.send_timeouts, 1);
}

/// Observation 3: ...and a reply never read no longer holds shutdown: held polls are
/// answered, then what is left after the grace is cut and counted.
#[test]
fn shutdown_cuts_what_is_left_after_the_grace() {
    let server = Server::start(backend(), |c| c.shutdown_grace = Duration::from_millis(300));
    let mut stuck = small_window_client(server.addr);
    // Answers to pile up, the last one closing: the flush of a `Connection: close`
    // answer once waited for as long as the client pleased.
    let mut pipeline = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n".repeat(2999);
    pipeline.extend_from_slice(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let _ = stuck.write_all(&pipeline);
    let mut waiter = Client::connect(server.addr);
    waiter.send(b"GET /poll?cursor=0 HTTP/1.1\r\nHost: t\r\n\r\n");
    server.wait_for("a paused client and a waiter", |s| {
        s["paused_for_output"].as_u64() >= Some(1) && s["waiters"] == 1
    });
    let t = Instant::now();
    let (stats, in_time) = server.stop_within(Duration::from_secs(5), || drop(stuck));
    assert!(in_time, "shutdown waited on a client that does not read");
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "cut before the grace"
    );
    assert_eq!(stats.wire.cut_at_shutdown, 1);
    let answer = waiter.read_response().unwrap();
    assert_eq!(answer.json()["shutdown"], true);
}

/// Observation 4: Request smuggling: a `POST /publish` hidden in the body of a `GET /stats`
/// (by two Content-Lengths, a signed one, one beside Transfer-Encoding) was executed. Every
/// such request is now one 400 (or 501) and a close; nothing behind it runs.
#[test]
fn framing_two_readers_could_read_two_ways_is_refused_and_closed() {
    let server = Server::start(backend(), |_| {});
    let hidden: &[u8] = b"POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"text\":\"hid\"}";
    let n = hidden.len();
    let heads = [
        (format!("Content-Length: 0\r\nContent-Length: {n}"), 400),
        (format!("Content-Length: {n}\r\nContent-Length: 0"), 400),
        (format!("Content-Length: {n}\r\nContent-Length: {n}"), 400),
        (format!("Content-Length: +{n}"), 400),
        (format!("Content-Length: {n}x"), 400),
        ("Content-Length: -1".to_string(), 400),
        ("Content-Length: 99999999999999999999999".to_string(), 400),
        (
            format!("Content-Length: {n}\r\nTransfer-Encoding: chunked"),
            400,
        ),
        ("Transfer-Encoding: chunked".to_string(), 501),
    ];
    for (framing, status) in heads {
        let mut raw = format!("GET /stats HTTP/1.1\r\nHost: t\r\n{framing}\r\n\r\n").into_bytes();
        raw.extend_from_slice(hidden);
        let (bytes, closed) = exchange(server.addr, &raw, WAIT);
        assert_eq!(statuses(&bytes), vec![status], "{framing:?}");
        assert!(closed, "{framing:?}: the connection closes");
    }
    // After any 400, even one whose framing was clear, nothing more is read.
    let mut raw = b"GET /poll?cursor=x HTTP/1.1\r\nHost: t\r\n\r\n".to_vec();
    raw.extend_from_slice(hidden);
    let (bytes, closed) = exchange(server.addr, &raw, WAIT);
    assert_eq!((statuses(&bytes), closed), (vec![400], true));
    let stats = server.stats();
    assert_eq!(
        (stats["published"].as_u64(), stats["latest"].as_u64()),
        (Some(0), Some(0))
    );
    server.stop();
}

/// Observation 5: HTTP/1.1 without Host was accepted.
#[test]
fn http11_without_host_is_a_400() {
    let server = Server::start(backend(), |_| {});
    let (bytes, closed) = exchange(server.addr, b"GET /stats HTTP/1.1\r\n\r\n", WAIT);
    assert_eq!((statuses(&bytes), closed), (vec![400], true));
    let (bytes, _) = exchange(server.addr, b"GET /stats HTTP/1.0\r\n\r\n", WAIT);
    assert_eq!(statuses(&bytes), vec![200], "HTTP/1.0 needs no Host");
    server.stop();
}

/// Observation 5: HEAD got 405. Now every GET route answers HEAD with the GET's headers,
/// its Content-Length included, and no body.
#[test]
fn head_gets_the_get_headers_and_no_body() {
    let server = Server::start(backend(), |_| {});
    for path in ["/", "/stats"] {
        let get_len = get(server.addr, path).body.len();
        let raw = format!("HEAD {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let (bytes, closed) = exchange(server.addr, raw.as_bytes(), WAIT);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && closed, "{text}");
        assert!(
            text.ends_with("\r\n\r\n"),
            "a HEAD answer has no body: {text}"
        );
        let len: usize = text
            .split("\r\n")
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.parse().ok())
            .unwrap();
        // /stats changes between the two requests by a digit or two.
        assert!(
            len.abs_diff(get_len) <= 4,
            "{path}: HEAD says {len}, GET sent {get_len}"
        );
    }
    server.stop();
}

/// Observation 5: No Date and no `X-Content-Type-Options: nosniff`: now on every response,
/// errors included.
#[test]
fn every_response_has_date_and_nosniff() {
    let server = Server::start(backend(), |c| c.max_waiters = 0);
    let requests: [&[u8]; 5] = [
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"GET /poll?cursor=0 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        b"BREW / HTTP/1.1\r\n\r\n",
        b"\x00\x01garbage\r\n\r\n",
    ];
    for raw in requests {
        let (bytes, _) = exchange(server.addr, raw, WAIT);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        assert!(
            text.contains("\r\nX-Content-Type-Options: nosniff\r\n"),
            "{text}"
        );
        let date = text
            .split("\r\n")
            .find_map(|l| l.strip_prefix("Date: "))
            .unwrap_or_else(|| panic!("no Date: {text}"));
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        let parts: Vec<&str> = date.split(' ').collect();
        assert_eq!(
            (date.len(), parts.len(), parts[5]),
            (29, 6, "GMT"),
            "{date}"
        );
        assert!(parts[0].ends_with(',') && parts[4].len() == 8, "{date}");
    }
    server.stop();
}

/// Observation 5: A cross-site page could publish with a `text/plain` POST (which a browser
/// sends without asking). Only JSON is taken now.
#[test]
fn a_publish_that_is_not_json_is_a_415() {
    let server = Server::start(backend(), |_| {});
    let body = r#"{"text":"from another site"}"#;
    for ctype in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "",
        "application/jsonx",
    ] {
        let header = if ctype.is_empty() {
            String::new()
        } else {
            format!("Content-Type: {ctype}\r\n")
        };
        let raw = format!(
            "POST /publish HTTP/1.1\r\nHost: t\r\n{header}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let (bytes, _) = exchange(server.addr, raw.as_bytes(), WAIT);
        assert_eq!(statuses(&bytes), vec![415], "{ctype:?}");
    }
    let raw = format!(
        "POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: Application/JSON; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(
        statuses(&exchange(server.addr, raw.as_bytes(), WAIT).0),
        vec![201]
    );
    assert_eq!(server.stats()["published"], 1);
    server.stop();
}

/// Observation 5: More than 80 KiB pipelined behind a held poll closed the connection with
/// no status. Now the held poll is answered at once (empty, like a timeout) and the
/// pipelined requests after it, in order.
#[test]
fn bytes_pipelined_behind_a_held_poll_release_it() {
    let server = Server::start(backend(), |_| {});
    let mut c = Client::connect(server.addr);
    c.send(b"GET /poll?cursor=0 HTTP/1.1\r\nHost: t\r\n\r\n");
    server.wait_for("the held poll", |s| s["waiters"] == 1);
    let one = format!(
        "GET /nope HTTP/1.1\r\nHost: t\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(1000)
    );
    c.send(one.repeat(100).as_bytes());
    let first = c
        .read_response()
        .expect("the held poll is answered, not cut");
    assert_eq!((first.status, ids(&first.json())), (200, vec![]));
    for i in 0..100 {
        assert_eq!(
            c.read_response().map(|r| r.status).ok(),
            Some(404),
            "answer {i}"
        );
    }
    assert_eq!(server.stats()["answered_early"], 1);
    server.stop();
}

/// Observation 3: a second shutdown (the CLI's second Ctrl-C) cuts what is left at once,
/// without waiting for the grace.
#[test]
fn a_second_shutdown_cuts_at_once() {
    let mut lp = Loop::new().unwrap();
    let cfg = LongPollConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        shutdown_grace: Duration::from_secs(30),
        ..LongPollConfig::default()
    };
    let server = LongPoll::listen(&mut lp, cfg).unwrap();
    let addr = server.local_addr(&lp).unwrap();
    let writer = std::thread::spawn(move || {
        let mut stuck = small_window_client(addr);
        let _ = stuck.write_all(&b"GET / HTTP/1.1\r\nHost: t\r\n\r\n".repeat(3000));
        stuck // kept open, never read, until the test ends
    });
    for at in [500, 700] {
        let s = server.clone();
        lp.set_timeout(Duration::from_millis(at), move |lp, _| s.shutdown(lp));
    }
    let guard = lp.set_timeout(Duration::from_secs(10), |_, _| panic!("still running"));
    lp.unref_handle(guard);
    let t = Instant::now();
    lp.run(RunMode::Default).unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    lp.clear_timer(guard);
    assert!(lp.handles().is_empty(), "{:?}", lp.handles());
    assert_eq!(server.stats().wire.cut_at_shutdown, 1);
    drop(writer.join());
}
