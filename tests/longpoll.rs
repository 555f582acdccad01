//! The long-poll server through real sockets: the protocol, the early-close client that
//! crashes other servers, 1000 waiters, every limit, pipelining, graceful shutdown.

mod longpoll_server;
mod util;

use longpoll_server::{ids, Server};
use looplab::Backend;
use std::net::Shutdown;
use std::time::{Duration, Instant};
use util::http::{get, post, Client};
use util::on_every_backend;

/// A poll with nothing new is held, and answered as soon as a message is published.
#[test]
fn hold_and_release_on_publish() {
    on_every_backend(|b| {
        let server = Server::start(b, |_| {});
        let mut poller = Client::connect(server.addr);
        poller.send(b"GET /poll?cursor=0 HTTP/1.1\r\nHost: t\r\n\r\n");
        server.wait_for("one waiter", |s| s["waiters"] == 1);
        let published = post(server.addr, "/publish", r#"{"text":"hello"}"#);
        assert_eq!(
            (published.status, published.json()["id"].as_u64()),
            (201, Some(1))
        );
        let t = Instant::now();
        let answer = poller.read_response().unwrap();
        assert!(t.elapsed() < Duration::from_millis(200));
        assert_eq!(answer.status, 200);
        let body = answer.json();
        assert_eq!((body["cursor"].as_u64(), ids(&body)), (Some(1), vec![1]));
        assert_eq!(body["messages"][0]["text"], "hello");
        assert!(body["messages"][0]["ts"].as_u64().unwrap() > 1_700_000_000_000);
        // The connection is kept alive for the next poll, answered at once.
        let again = poller.get("/poll?cursor=0").json();
        assert_eq!(ids(&again), vec![1]);
        let stats = server.stop();
        assert_eq!((stats.chat.answered_by_message, stats.chat.aborted), (2, 0));
    });
}

/// With nothing published, a poll is answered empty, with the same cursor, at its timeout.
#[test]
fn timeout_answer() {
    on_every_backend(|b| {
        let server = Server::start(b, |c| c.poll_timeout = Duration::from_millis(400));
        let t = Instant::now();
        let short = get(server.addr, "/poll?cursor=0&timeout=0.2").json();
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_millis(390),
            "{took:?}"
        );
        assert_eq!((short["cursor"].as_u64(), ids(&short)), (Some(0), vec![]));
        let t = Instant::now();
        get(server.addr, "/poll?cursor=0");
        assert!(
            t.elapsed() >= Duration::from_millis(400),
            "the default timeout applies"
        );
        assert_eq!(server.stop().chat.answered_by_timeout, 2);
    });
}

/// A cursor gets what it missed; one older than the ring gets `reset` and all retained;
/// one from the future too.
#[test]
fn cursor_catch_up_and_reset() {
    let server = Server::start(Backend::default_for_os(), |c| c.log_size = 3);
    for t in ["a", "b", "c", "d", "e"] {
        assert_eq!(
            post(server.addr, "/publish", &format!(r#"{{"text":"{t}"}}"#)).status,
            201
        );
    }
    let caught_up = get(server.addr, "/poll?cursor=3").json();
    assert_eq!(
        (ids(&caught_up), caught_up.get("reset")),
        (vec![4, 5], None)
    );
    let behind = get(server.addr, "/poll?cursor=0").json();
    assert_eq!(
        (ids(&behind), behind["reset"].as_bool()),
        (vec![3, 4, 5], Some(true))
    );
    assert_eq!(behind["cursor"].as_u64(), Some(5));
    let future = get(server.addr, "/poll?cursor=99").json();
    assert_eq!(future["reset"].as_bool(), Some(true));
    assert_eq!(get(server.addr, "/poll?cursor=x").status, 400);
    server.stop();
}

/// A publish with a stale ticket is refused with the latest id; bad bodies say why.
#[test]
fn tickets_and_bad_publishes() {
    let server = Server::start(Backend::default_for_os(), |_| {});
    assert_eq!(
        post(server.addr, "/publish", r#"{"text":"first","after":0}"#).status,
        201
    );
    let stale = post(server.addr, "/publish", r#"{"text":"second","after":0}"#);
    assert_eq!(
        (stale.status, stale.json()["latest"].as_u64()),
        (409, Some(1))
    );
    assert_eq!(
        post(server.addr, "/publish", r#"{"text":"second","after":1}"#).status,
        201
    );
    let bad = post(server.addr, "/publish", "{not json");
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["error"].as_str().unwrap().contains("not JSON"),
        "{}",
        bad.text()
    );
    assert_eq!(post(server.addr, "/publish", r#"{"txt":"x"}"#).status, 400);
    assert_eq!(
        post(server.addr, "/publish", r#"{"text":"   "}"#).status,
        400
    );
    let long = format!(r#"{{"text":"{}"}}"#, "x".repeat(5000));
    assert_eq!(post(server.addr, "/publish", &long).status, 413);
    assert_eq!(server.stop().chat.published, 2);
}

/// The bug that crashed a production server: a client opens a poll and closes it at once.
/// The waiter is removed when the server learns of the close; the publish and the
/// timeout that follow find nothing to write to; the server stays healthy.
#[test]
fn early_close_client_is_never_written_to() {
    on_every_backend(|b| {
        let server = Server::start(b, |c| c.poll_timeout = Duration::from_millis(300));
        let mut quitter = Client::connect(server.addr);
        quitter.send(b"GET /poll?cursor=0 HTTP/1.1\r\nHost: t\r\n\r\n");
        quitter.stream.shutdown(Shutdown::Both).unwrap();
        drop(quitter);
        let s = server.wait_for("the abort", |s| s["aborted"] == 1);
        assert_eq!(s["waiters"], 0);
        assert_eq!(
            post(server.addr, "/publish", r#"{"text":"anyone?"}"#).status,
            201
        );
        std::thread::sleep(Duration::from_millis(500)); // past the poll's timeout
        let s = server.stats();
        assert_eq!(s["aborted"], 1);
        assert_eq!(
            s["answered_by_message"], 0,
            "nothing was written to the closed poll"
        );
        assert_eq!(s["answered_by_timeout"], 0, "its timer was cleared");
        assert_eq!(s["write_errors"], 0);
        let healthy = get(server.addr, "/poll?cursor=0").json();
        assert_eq!(ids(&healthy), vec![1]);
        server.stop();
    });
}

/// 1000 held polls, one publish: every one is answered with the message.
#[test]
fn a_thousand_waiters_answered_by_one_publish() {
    looplab::raise_nofile_limit().unwrap();
    on_every_backend(|b| {
        let server = Server::start(b, |_| {});
        let mut clients: Vec<Client> = (0..1000).map(|_| Client::connect(server.addr)).collect();
        for c in clients.iter_mut() {
            c.send(b"GET /poll?cursor=0 HTTP/1.1\r\nHost: t\r\n\r\n");
        }
        server.wait_for("1000 waiters", |s| s["waiters"] == 1000);
        let t = Instant::now();
        assert_eq!(
            post(server.addr, "/publish", r#"{"text":"to all"}"#).status,
            201
        );
        for c in clients.iter_mut() {
            let r = c.read_response().unwrap();
            assert_eq!(ids(&r.json()), vec![1]);
        }
        let took = t.elapsed();
        eprintln!("{b}: publish to the last of 1000 waiters read: {took:?}");
        assert_eq!(server.stop().chat.answered_by_message, 1000);
    });
}

/// Every limit answers with its status: 431, 413, 408, 404, 405, 429, 503.
#[test]
fn limits_and_errors() {
    let server = Server::start(Backend::default_for_os(), |c| {
        c.header_timeout = Duration::from_millis(300);
        c.publish_rate = 1.0;
        c.publish_burst = 3.0;
        c.max_waiters = 2;
    });
    let a = server.addr;
    // 431: a header section over 16 KiB, and over 100 headers; the connection closes.
    let mut big = Client::connect(a);
    big.send(
        format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
            "b".repeat(17 * 1024)
        )
        .as_bytes(),
    );
    assert_eq!(big.read_response().unwrap().status, 431);
    assert!(big.closed_by_server());
    let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let mut c = Client::connect(a);
    c.send(format!("GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n").as_bytes());
    assert_eq!(c.read_response().unwrap().status, 431);
    // 413: a body over 64 KiB is refused from its Content-Length alone.
    let mut c = Client::connect(a);
    c.send(b"POST /publish HTTP/1.1\r\nHost: t\r\nContent-Length: 70000\r\n\r\n");
    assert_eq!(c.read_response().unwrap().status, 413);
    // 408: a head that does not finish in time.
    let mut slow = Client::connect(a);
    slow.send(b"GET /poll?cursor=0 HTTP/1.1\r\nHost: x\r\n");
    let t = Instant::now();
    assert_eq!(slow.read_response().unwrap().status, 408);
    assert!(t.elapsed() >= Duration::from_millis(250));
    assert!(slow.closed_by_server());
    // 404 and 405 with Allow.
    assert_eq!(get(a, "/nowhere").status, 404);
    let wrong = post(a, "/poll", "");
    assert_eq!(
        (wrong.status, wrong.header("Allow")),
        (405, Some("GET, HEAD"))
    );
    assert_eq!(get(a, "/publish").header("Allow"), Some("POST"));
    // 429 with Retry-After once the burst of 3 is spent.
    for i in 0..3 {
        assert_eq!(
            post(a, "/publish", &format!(r#"{{"text":"m{i}"}}"#)).status,
            201
        );
    }
    let limited = post(a, "/publish", r#"{"text":"one too many"}"#);
    assert_eq!(limited.status, 429);
    assert!(limited.header("Retry-After").is_some());
    // 503 for a third waiter; the two accepted ones are still served.
    let mut w1 = Client::connect(a);
    let mut w2 = Client::connect(a);
    w1.send(b"GET /poll?cursor=3 HTTP/1.1\r\nHost: t\r\n\r\n");
    w2.send(b"GET /poll?cursor=3 HTTP/1.1\r\nHost: t\r\n\r\n");
    server.wait_for("two waiters", |s| s["waiters"] == 2);
    let shed = get(a, "/poll?cursor=3");
    assert_eq!((shed.status, shed.header("Retry-After")), (503, Some("1")));
    std::thread::sleep(Duration::from_millis(1100)); // a token for the publish
    assert_eq!(post(a, "/publish", r#"{"text":"for the two"}"#).status, 201);
    assert_eq!(ids(&w1.read_response().unwrap().json()), vec![4]);
    assert_eq!(ids(&w2.read_response().unwrap().json()), vec![4]);
    let stats = server.stop();
    assert_eq!(
        (
            stats.chat.shed_polls,
            stats.chat.rate_limited,
            stats.wire.limit_rejections
        ),
        (1, 1, 4)
    );
}

/// A request sent one byte at a time is answered like any other.
#[test]
fn a_request_byte_by_byte() {
    on_every_backend(|b| {
        let server = Server::start(b, |_| {});
        let mut c = Client::connect(server.addr);
        c.stream.set_nodelay(true).unwrap();
        for byte in b"POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"text\":\"slow\"}" {
            c.send(&[*byte]);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(c.read_response().unwrap().status, 201);
        server.stop();
    });
}

/// Pipelined requests are answered in order, even when the first is a held poll.
#[test]
fn pipelined_requests_answer_in_order() {
    on_every_backend(|b| {
        let server = Server::start(b, |_| {});
        let mut c = Client::connect(server.addr);
        c.send(b"GET /poll?cursor=0&timeout=0.2 HTTP/1.1\r\nHost: t\r\n\r\nGET /stats HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
        let first = c.read_response().unwrap();
        assert!(
            first.json().get("messages").is_some(),
            "the held poll first: {}",
            first.text()
        );
        let second = c.read_response().unwrap();
        assert!(
            second.json().get("connections").is_some(),
            "then the stats: {}",
            second.text()
        );
        assert_eq!(c.read_response().unwrap().status, 404);
        server.stop();
    });
}

/// `Expect: 100-continue` gets its interim answer, then the body is read.
#[test]
fn expect_continue() {
    let server = Server::start(Backend::default_for_os(), |_| {});
    let mut c = Client::connect(server.addr);
    c.send(b"POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 14\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(c.read_response().unwrap().status, 100);
    c.send(br#"{"text":"big"}"#);
    assert_eq!(c.read_response().unwrap().status, 201);
    server.stop();
}

/// HTTP/1.0 is answered and closed; idle keep-alive connections close after the timeout.
#[test]
fn http10_and_idle_keepalive() {
    let server = Server::start(Backend::default_for_os(), |c| {
        c.idle_timeout = Duration::from_millis(300)
    });
    let mut old = Client::connect(server.addr);
    old.send(b"GET /stats HTTP/1.0\r\n\r\n");
    let r = old.read_response().unwrap();
    assert_eq!((r.status, r.header("Connection")), (200, Some("close")));
    assert!(old.closed_by_server());
    let mut idle = Client::connect(server.addr);
    assert_eq!(idle.get("/stats").header("Connection"), Some("keep-alive"));
    let t = Instant::now();
    assert!(idle.closed_by_server());
    assert!(
        t.elapsed() >= Duration::from_millis(200),
        "closed too soon: {:?}",
        t.elapsed()
    );
    server.stop();
}

/// Graceful shutdown: held polls are answered with `"shutdown":true` and the loop exits
/// with no handle left, within a second.
#[test]
fn graceful_shutdown_answers_waiters() {
    on_every_backend(|b| {
        let server = Server::start(b, |_| {});
        let mut w = Client::connect(server.addr);
        w.send(b"GET /poll?cursor=0 HTTP/1.1\r\nHost: t\r\n\r\n");
        let mut idle = Client::connect(server.addr);
        idle.get("/stats");
        server.wait_for("one waiter", |s| s["waiters"] == 1);
        let t = Instant::now();
        let stats = server.stop();
        assert!(t.elapsed() < Duration::from_secs(1));
        let r = w.read_response().unwrap();
        assert_eq!(r.header("Connection"), Some("close"));
        assert_eq!(r.json()["shutdown"], true);
        assert!(idle.closed_by_server());
        assert_eq!(stats.chat.aborted, 0);
    });
}

/// A cursor far behind gets its messages in capped answers that say `"more": true`;
/// polling again from each answer's cursor (as the chat page does) gets them all, in
/// order, once.
#[test]
fn long_backlogs_come_in_capped_answers_with_more() {
    let server = Server::start(Backend::default_for_os(), |c| c.publish_burst = 300.0);
    let mut publisher = Client::connect(server.addr);
    for i in 0..250 {
        assert_eq!(
            publisher
                .post("/publish", &format!(r#"{{"text":"m{i}"}}"#))
                .status,
            201
        );
    }
    let mut poller = Client::connect(server.addr);
    let (mut cursor, mut seen, mut answers) = (0, Vec::new(), 0);
    loop {
        let body = poller.get(&format!("/poll?cursor={cursor}")).json();
        answers += 1;
        seen.extend(ids(&body));
        cursor = body["cursor"].as_u64().unwrap();
        if body.get("more").is_none() {
            break;
        }
        assert!(answers < 10, "more never ends");
    }
    assert_eq!(seen, (1..=250).collect::<Vec<u64>>());
    assert_eq!((answers, cursor), (3, 250));
    server.stop();
}

/// A client pipelining more requests than one turn allows (32) gets every answer, in
/// order: the rest of its pipeline is taken up in the check phase, not dropped.
#[test]
fn a_long_pipeline_is_answered_in_order_across_turns() {
    on_every_backend(|b| {
        let server = Server::start(b, |_| {});
        let mut c = Client::connect(server.addr);
        let batch: String = (0..100)
            .map(|i| format!("GET /poll?cursor=0&timeout=0&n={i} HTTP/1.1\r\nHost: t\r\n\r\n"))
            .collect();
        c.send(batch.as_bytes());
        for i in 0..100 {
            let r = c
                .read_response()
                .unwrap_or_else(|e| panic!("answer {i}: {e}"));
            assert_eq!((i, r.status), (i, 200));
        }
        c.send(b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");
        assert_eq!(c.read_response().unwrap().status, 404, "still served");
        server.stop();
    });
}
