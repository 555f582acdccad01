//! `looplab longpoll` against hostile clients, black-box: the built binary as a child
//! process, one test per observation of issue 10 (1: a number that kills the process;
//! 2: memory a client that does not read can make the server hold; 3: replies never
//! read, and shutdown; 4: request smuggling; 5: the smaller HTTP points). Memory is read
//! from /proc/PID/status; every socket has a timeout, so a misbehaving server fails a
//! test instead of hanging it, and a server that grows is stopped at the bound.

mod util;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::attack::*;
use util::wire::{self, publish_request, request, Wire};

/// Publishes without the rate limit getting in the way of the attack being tested.
const NO_RATE_LIMIT: [&str; 4] = ["--publish-rate", "100000", "--publish-burst", "100000"];

/// Observation 1: a number a client sends never kills the process. Each bad query value
/// gets 400 with a body naming the field; a poll held meanwhile on another connection
/// survives and is answered by the next publish.
#[test]
fn obs1_bad_numbers_get_400_and_the_server_lives() {
    let mut server = longpoll(&[]);
    let addr = server.addr;
    let mut held = Wire::connect(addr, PROMPT).unwrap();
    held.send(&request("GET", "/poll?cursor=0&timeout=60", &[], ""))
        .unwrap();
    let bad = [
        ("timeout", "1e20"),
        ("timeout", "NaN"),
        ("timeout", "inf"),
        ("timeout", "-1"),
        ("timeout", "1e309"),
        ("cursor", "99999999999999999999999"),
        ("cursor", "-1"),
        ("cursor", "1e3"),
    ];
    let mut wrong = Vec::new();
    for (field, value) in bad {
        let target = format!("/poll?{field}={value}");
        let r = wire::get(addr, &target, PROMPT);
        let ok = matches!(&r, Ok(a) if a.status == 400 && a.text().contains(field));
        if !ok {
            wrong.push(format!("{target}: {}", describe(&r)));
        }
    }
    let state = alive(&mut server);
    assert!(
        wrong.is_empty(),
        "want 400 naming the field; got:\n  {}\n{state}",
        wrong.join("\n  ")
    );
    assert_eq!(stats(addr)["published"], 0);
    let published = wire::once(addr, &publish_request("still here"), PROMPT);
    assert!(
        matches!(&published, Ok(a) if a.status == 201),
        "{published:?}"
    );
    let answer = held.answer();
    assert!(
        matches!(&answer, Ok(a) if a.status == 200 && a.text().contains("still here")),
        "the poll held through it all: {}",
        describe(&answer)
    );
}

/// Observation 2a: 8 MiB of pipelined `GET /` from a client that never reads. The
/// server stops reading while its answers wait (its RSS stays under 64 MiB; it was
/// 862 MB), and another client's `/stats` is still answered.
#[test]
fn obs2_pipelined_requests_never_read_keep_memory_bounded() {
    let server = longpoll(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let writer = pipeline_get(server.addr, 8 << 20, stop.clone());
    let busy = || !writer.is_finished();
    let (peak, slowest, unanswered) = watch(&server, Duration::from_secs(12), busy);
    // A second more after the writer ends, for the server to do what it will with it.
    let (peak_after, slowest_after, unanswered_after) =
        watch(&server, Duration::from_secs(1), || peak < RSS_LIMIT_KIB);
    let (peak, slowest, unanswered) = (
        peak.max(peak_after),
        slowest.max(slowest_after),
        unanswered + unanswered_after,
    );
    stop.store(true, Ordering::SeqCst);
    let (sent, hostile) = writer.join().unwrap();
    assert!(
        peak < RSS_LIMIT_KIB,
        "server RSS reached {} MiB (limit 64) after {} KiB of pipelined GET / never read",
        peak / 1024,
        sent / 1024
    );
    assert_eq!(unanswered, 0, "another client's /stats went unanswered");
    assert!(slowest < Duration::from_secs(2), "/stats took {slowest:?}");
    drop(hostile);
    assert_eq!(stats(server.addr)["published"], 0);
}

/// Observation 2b: with the ring full of control characters one 31-byte poll asked for
/// a 24 MiB answer. An answer is capped and says `"more": true`; following its cursor
/// loses nothing; 1470 such polls pipelined and never read keep RSS under 64 MiB (they
/// took it to 3 GiB in 7 s); and SIGINT still exits 0 once that client has left.
#[test]
fn obs2_amplified_poll_answers_are_capped() {
    let mut server = longpoll(&NO_RATE_LIMIT);
    let addr = server.addr;
    fill_ring(addr, 1024);
    let full = 1024 * 6 * 4096;
    let mut w = Wire::connect(addr, Duration::from_secs(20)).unwrap();
    let (mut cursor, mut ids, mut answers) = (0u64, Vec::new(), Vec::new());
    for _ in 0..2048 {
        w.send(&request(
            "GET",
            &format!("/poll?cursor={cursor}&timeout=0"),
            &[],
            "",
        ))
        .unwrap();
        let a = w
            .answer()
            .unwrap_or_else(|e| panic!("poll after {cursor}: {e:?}"));
        let body = a.json().unwrap_or_else(|| panic!("not JSON: {}", a.status));
        answers.push((a.body.len(), body["more"] == true));
        for m in body["messages"].as_array().into_iter().flatten() {
            ids.push(m["id"].as_u64().unwrap_or(0));
        }
        cursor = body["cursor"].as_u64().unwrap_or(0);
        if body["more"] != true {
            break;
        }
    }
    let (first_len, first_more) = answers[0];
    assert!(
        first_len < full && first_more,
        "the first answer to /poll?cursor=0 was {:.1} MiB with more={first_more}: not capped",
        first_len as f64 / (1 << 20) as f64
    );
    assert_eq!(
        ids,
        (1..=1024).collect::<Vec<u64>>(),
        "following the cursor loses nothing"
    );

    let mut hostile = TcpStream::connect(addr).unwrap();
    let poll = b"GET /poll?cursor=0 HTTP/1.1\r\nHost: test\r\n\r\n".repeat(1470);
    hostile.write_all(&poll).unwrap();
    let (peak, slowest, unanswered) = watch(&server, Duration::from_secs(3), || true);
    assert!(
        peak < RSS_LIMIT_KIB,
        "server RSS reached {} MiB (limit 64) with 1470 amplified polls never read",
        peak / 1024
    );
    assert_eq!(unanswered, 0, "another client's /stats went unanswered");
    assert!(slowest < Duration::from_secs(2), "/stats took {slowest:?}");
    drop(hostile);
    server.signal("INT");
    let status = server.wait_for_exit(Duration::from_secs(8));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "SIGINT: {status:?}");
}

/// Observation 3a: replies that are never read are cut after `--send-timeout` (never
/// before it) and counted in `/stats` as `send_timeouts`; the server lets go of their
/// fds. They used to be held for as long as the client stayed.
#[test]
fn obs3_unread_replies_are_cut_after_the_send_timeout() {
    let mut args = vec!["--send-timeout", "1s", "--shutdown-grace", "1s"];
    args.extend_from_slice(&NO_RATE_LIMIT);
    let server = longpoll(&args);
    let addr = server.addr;
    fill_ring(addr, 1024);
    let fds_before = server.fds();
    let t0 = Instant::now();
    let mut clients = stalled_pipelines(addr, 10);
    clients.extend((0..10).map(|_| unread_close_poll(addr)));
    let mut first_cut = None;
    let last = wait_for_stats(addr, Duration::from_secs(10), |s| {
        let cut = s["send_timeouts"].as_u64().unwrap_or(0);
        if cut > 0 && first_cut.is_none() {
            first_cut = Some(t0.elapsed());
        }
        // Only the /stats connection itself is left, and the fds are back.
        cut >= 10 && s["connections"] == 1 && server.fds() <= fds_before + 1
    });
    let cut = last["send_timeouts"].as_u64().unwrap_or(0);
    assert!(
        (10..=20).contains(&cut) && last["connections"] == 1,
        "10 s after 20 clients stopped reading: {last}; fds {} (before {fds_before})",
        server.fds()
    );
    // One fd of slack: the last /stats connection may not be closed yet.
    assert!(
        server.fds() <= fds_before + 1,
        "fds {} (before {fds_before})",
        server.fds()
    );
    let first = first_cut.unwrap_or_default();
    assert!(
        first >= Duration::from_secs(1),
        "cut before the send timeout: {first:?}"
    );
    drop(clients);
}

/// Observation 3b: SIGINT with a held poll and ten clients whose replies are never
/// read: the poll is answered `"shutdown": true`, no new connection is served, and after
/// `--shutdown-grace` (never before) the rest are cut; the process exits 0 and says how
/// many it cut. It used to wait for as long as the clients stayed.
#[test]
fn obs3_sigint_cuts_unread_replies_after_the_grace() {
    let mut args = vec!["--send-timeout", "60s", "--shutdown-grace", "1s"];
    args.extend_from_slice(&NO_RATE_LIMIT);
    let mut server = longpoll(&args);
    let addr = server.addr;
    let mut waiter = Wire::connect(addr, PROMPT).unwrap();
    waiter
        .send(&request("GET", "/poll?cursor=0&timeout=60", &[], ""))
        .unwrap();
    let clients = stalled_pipelines(addr, 10);
    // Every client accepted (the poll, the ten, this /stats): one still in the backlog
    // would simply be refused when the listener closes, with nothing to cut.
    wait_for_stats(addr, PROMPT, |s| {
        s["waiters"] == 1 && s["connections"].as_u64() >= Some(12)
    });
    let t = Instant::now();
    server.signal("INT");
    let answer = waiter.answer();
    assert!(
        matches!(&answer, Ok(a) if a.json().is_some_and(|b| b["shutdown"] == true)),
        "the held poll is answered with shutdown: {}",
        describe(&answer)
    );
    let late = wire::get(addr, "/stats", Duration::from_millis(500));
    assert!(
        late.is_err(),
        "a connection after SIGINT was served: {late:?}"
    );
    let status = server.wait_for_exit(Duration::from_secs(5));
    let took = t.elapsed();
    let said = server.stderr_at_exit();
    let how = status.map_or("still running 5 s after SIGINT".into(), |s| s.to_string());
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{how}; stderr:\n{said}"
    );
    assert!(
        took >= Duration::from_secs(1),
        "cut before the grace: {took:?}; stderr:\n{said}"
    );
    let told = said.lines().any(|l| {
        l.to_ascii_lowercase().contains("cut")
            && l.split(|c: char| !c.is_ascii_digit()).any(|w| w == "10")
    });
    assert!(told, "the CLI says it cut 10 connections; stderr:\n{said}");
    drop(clients);
}

/// Observation 4: strict framing (RFC 9112 section 6.3). Duplicate or differing
/// Content-Length, a signed length, Content-Length with Transfer-Encoding: 400 and the
/// connection closed with nothing more read, so a request hidden in a body (a publish
/// inside a `GET /stats`) is never executed. After any 400 the connection is closed.
#[test]
fn obs4_framing_is_strict_and_nothing_is_smuggled() {
    let server = longpoll(&[]);
    let addr = server.addr;
    let hidden = publish_request("smuggled");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "a publish hidden behind two Content-Length",
            [
                format!("GET /stats HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\nContent-Length: {}\r\n\r\n", hidden.len()).into_bytes(),
                hidden.clone(),
            ]
            .concat(),
        ),
        (
            "two equal Content-Length",
            framed(
                r#"{"text":"twice"}"#,
                &["Content-Length: {n}", "Content-Length: {n}"],
            ),
        ),
        (
            "Content-Length: +15",
            framed(r#"{"text":"plus"}"#, &["Content-Length: +{n}"]),
        ),
        (
            "Content-Length with Transfer-Encoding",
            framed(
                r#"{"text":"chnk"}"#,
                &["Content-Length: {n}", "Transfer-Encoding: chunked"],
            ),
        ),
        (
            "a publish pipelined after a 400",
            [request("GET", "/poll?cursor=0&timeout=NaN", &[], ""), publish_request("after a 400")].concat(),
        ),
    ];
    let mut wrong = Vec::new();
    for (name, raw) in &cases {
        let (first, closed) = first_answer_then(addr, raw);
        if !matches!(&first, Ok(a) if a.status == 400) || !closed {
            wrong.push(format!(
                "{name}: {}, then closed: {closed}",
                describe(&first)
            ));
        }
    }
    let after = stats(addr);
    let log = wire::get(addr, "/poll?cursor=0&timeout=0", PROMPT)
        .map(|a| a.text())
        .unwrap_or_default();
    assert!(
        wrong.is_empty() && after["published"] == 0 && !log.contains("\"text\""),
        "want 400 and close for each:\n  {}\npublished: {} (want 0); messages: {log}",
        wrong.join("\n  "),
        after["published"]
    );
}

/// Observation 5: HTTP/1.1 without Host is 400; HEAD is answered like GET without a
/// body; every response carries Date and `X-Content-Type-Options: nosniff`; a publish
/// that is not `application/json` (what a cross-site form sends) is 415.
#[test]
fn obs5_host_head_date_nosniff_and_json_only_publish() {
    let server = longpoll(&[]);
    let addr = server.addr;
    let mut wrong = Vec::new();
    let mut answers = Vec::new();
    let mut expect = |name: &str, raw: &[u8], status: u16| {
        let r = wire::once(addr, raw, PROMPT);
        if !matches!(&r, Ok(a) if a.status == status) {
            wrong.push(format!("{name}: want {status}, got {}", describe(&r)));
        }
        if let Ok(a) = r {
            answers.push((name.to_string(), a));
        }
    };
    expect("HTTP/1.1 without Host", b"GET /stats HTTP/1.1\r\n\r\n", 400);
    expect("HTTP/1.0 without Host", b"GET /stats HTTP/1.0\r\n\r\n", 200);
    expect("a JSON publish", &publish_request("hello"), 201);
    let plain = request(
        "POST",
        "/publish",
        &[("Content-Type", "text/plain")],
        r#"{"text":"xs"}"#,
    );
    expect("a text/plain publish", &plain, 415);
    let untyped = request("POST", "/publish", &[], r#"{"text":"xs"}"#);
    expect("a publish without Content-Type", &untyped, 415);
    expect(
        "a bad cursor",
        &request("GET", "/poll?cursor=x", &[], ""),
        400,
    );
    expect("no such path", &request("GET", "/nowhere", &[], ""), 404);
    expect("POST on /stats", &request("POST", "/stats", &[], ""), 405);

    // HEAD / then GET /stats on one connection: if HEAD sent a body, it would be read
    // where the second status line should be.
    let mut w = Wire::connect(addr, PROMPT).unwrap();
    w.send(
        &[
            request("HEAD", "/", &[], ""),
            request("GET", "/stats", &[], ""),
        ]
        .concat(),
    )
    .unwrap();
    match w.answer_to_head() {
        Ok(a) if a.status == 200 && a.header("Content-Length").is_some_and(|l| l != "0") => {
            let next = w.answer();
            if !matches!(&next, Ok(b) if b.status == 200 && b.json().is_some()) {
                wrong.push(format!(
                    "after HEAD /: {} (a body was sent?)",
                    describe(&next)
                ));
            }
            answers.push(("HEAD /".into(), a));
        }
        other => wrong.push(format!(
            "HEAD /: want 200 with Content-Length, got {}",
            describe(&other)
        )),
    }
    for (name, a) in &answers {
        if !a.header("Date").is_some_and(|d| d.ends_with(" GMT")) {
            wrong.push(format!("{name}: no Date header"));
        }
        if a.header("X-Content-Type-Options") != Some("nosniff") {
            wrong.push(format!("{name}: no X-Content-Type-Options: nosniff"));
        }
    }
    assert!(wrong.is_empty(), "\n  {}", wrong.join("\n  "));
    assert_eq!(stats(addr)["published"], 1, "only the JSON publish counted");
}

/// Observation 5, last point: 100 KiB of requests pipelined behind a poll that has
/// nothing to answer yet. Whether the server holds the poll (and stops reading behind
/// it) or answers it early so the pipeline can go on, every request gets its answer, in
/// order, once a message is published; the connection used to be closed with no status.
#[test]
fn obs5_requests_pipelined_behind_a_held_poll_are_answered() {
    let server = longpoll(&[]);
    let addr = server.addr;
    let mut w = Wire::connect(addr, PROMPT).unwrap();
    let behind = request("GET", "/stats", &[], "");
    let n = 100 * 1024 / behind.len() + 1;
    let poll = request("GET", "/poll?cursor=0&timeout=60", &[], "");
    w.send(&[poll, behind.repeat(n)].concat()).unwrap();
    // Publish once the poll is held, or after a second if it was answered early: a
    // message already there would answer it at once and test nothing.
    wait_for_stats(addr, Duration::from_secs(1), |s| s["waiters"] == 1);
    let published = wire::once(addr, &publish_request("release"), PROMPT);
    assert!(
        matches!(&published, Ok(a) if a.status == 201),
        "{published:?}"
    );
    let first = w.answer();
    assert!(
        matches!(&first, Ok(a) if a.status == 200 && a.json().is_some_and(|b| b["messages"].is_array())),
        "the poll: {}",
        describe(&first)
    );
    for i in 0..n {
        let r = w.answer();
        assert!(
            matches!(&r, Ok(a) if a.status == 200 && a.json().is_some_and(|b| b["waiters"].is_number())),
            "request {} of {n} behind the poll: {}",
            i + 1,
            describe(&r)
        );
    }
}
