//! One loop per core (src/group.rs): N loops accept and serve, messages cross between
//! loops only through their mailboxes, a stop ends every loop, and what each listen mode
//! does with a loop that stalls. Loopback only; every wait has a bound.

#[path = "util/exercise.rs"]
mod exercise;
mod util;

use looplab::group::echo;
use looplab::group::{ListenMode, LoopGroup, PostError};
use looplab::servers::echo::EchoConfig;
use looplab::Backend;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;
use util::child::ServerChild;
use util::group::{answer, client_per_loop, publish, stall_and_connect, texts, CLIENTS};

const ANY_PORT: &str = "127.0.0.1:0";

fn any_port() -> SocketAddr {
    ANY_PORT.parse().unwrap()
}

fn echo_group(loops: usize, mode: ListenMode) -> LoopGroup<(), looplab::servers::echo::EchoStats> {
    let config = EchoConfig {
        addr: any_port(),
        ..EchoConfig::default()
    };
    let group = LoopGroup::builder().loops(loops).mode(mode);
    echo::spawn(group, config, |i, e| panic!("loop {i}: {e}")).expect("starting the group")
}

/// Two reuseport loops, 32 clients one after another: each gets its echo, and the kernel's
/// hash gave both loops some of them (the count per loop is what `bench --loops` prints).
#[test]
fn reuseport_loops_each_accept_and_serve_a_share() {
    let group = echo_group(2, ListenMode::Reuseport);
    let addr = group.local_addr().unwrap();
    for i in 0..CLIENTS {
        let mut c = util::connect(addr);
        let msg = format!("hello {i}");
        assert_eq!(util::round_trip(&mut c, msg.as_bytes()), msg.as_bytes());
    }
    group.stop();
    let stats: Vec<_> = group.join().into_iter().map(|r| r.unwrap()).collect();
    let per_loop: Vec<u64> = stats.iter().map(|s| s.accepted).collect();
    assert_eq!(per_loop.iter().sum::<u64>(), CLIENTS as u64, "{per_loop:?}");
    assert!(
        per_loop.iter().all(|&n| n > 0),
        "one loop got nothing: {per_loop:?}"
    );
}

/// Exclusive mode serves every client too, on one shared socket (how they spread is the
/// bench's question: whichever loop waits first wins).
#[test]
fn exclusive_loops_serve_from_one_shared_socket() {
    let group = echo_group(2, ListenMode::Exclusive);
    assert_eq!(group.mode(), ListenMode::Exclusive, "{:?}", group.note());
    let addr = group.local_addr().unwrap();
    for i in 0..CLIENTS {
        let mut c = util::connect(addr);
        let msg = format!("hello {i}");
        assert_eq!(util::round_trip(&mut c, msg.as_bytes()), msg.as_bytes());
    }
    group.stop();
    let served: u64 = group.join().into_iter().map(|r| r.unwrap().accepted).sum();
    assert_eq!(served, CLIENTS as u64);
}

/// mio cannot ask for EPOLLEXCLUSIVE: the group says so and uses reuseport instead.
#[test]
fn exclusive_on_mio_falls_back_to_reuseport_with_a_note() {
    let group = LoopGroup::builder()
        .loops(2)
        .mode(ListenMode::Exclusive)
        .make_loop(|_| looplab::Loop::builder().backend(Backend::Mio).build())
        .listen(any_port())
        .spawn(|lp, ctx: &mut looplab::group::LoopCtx<()>| {
            ctx.listen(lp, |lp, _, c| {
                if let Ok(c) = c {
                    lp.close(c);
                }
            })?;
            Ok(|_: &mut looplab::Loop| ())
        })
        .unwrap();
    assert_eq!(group.mode(), ListenMode::Reuseport);
    let note = group.note().expect("a note about the fallback");
    assert!(
        note.contains("mio") && note.contains("SO_REUSEPORT"),
        "{note}"
    );
    group.stop();
    assert!(group.join().iter().all(|r| r.is_ok()));
}

/// `.pin(true)`: loop i runs on core i alone (read from the thread's own
/// /proc/thread-self/status), modulo the cores there are.
#[test]
fn pinned_loops_each_run_on_their_own_core() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let group = LoopGroup::builder()
        .loops(2)
        .pin(true)
        .spawn(|_, ctx: &mut looplab::group::LoopCtx<()>| {
            let status = std::fs::read_to_string("/proc/thread-self/status")?;
            let allowed = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string());
            let me = ctx.index();
            Ok(move |_: &mut looplab::Loop| (me, allowed))
        })
        .unwrap();
    group.stop();
    for r in group.join() {
        let (me, allowed) = r.unwrap();
        assert_eq!(allowed, Some((me % cores).to_string()), "loop {me}");
    }
}

/// A setup that fails on one loop fails `spawn` with its error, and one that panics
/// fails it too, instead of leaving the spawner waiting; the other loops are stopped.
#[test]
fn a_loop_that_cannot_start_fails_the_whole_group() {
    let failing =
        LoopGroup::builder()
            .loops(3)
            .spawn(|_, ctx: &mut looplab::group::LoopCtx<()>| {
                if ctx.index() == 1 {
                    return Err(std::io::Error::other("loop 1 refuses"));
                }
                Ok(|_: &mut looplab::Loop| ())
            });
    let e = failing.err().expect("spawn fails");
    assert!(e.to_string().contains("loop 1 refuses"), "{e}");
    let panicking =
        LoopGroup::builder()
            .loops(2)
            .spawn(|_, ctx: &mut looplab::group::LoopCtx<()>| {
                assert!(ctx.index() == 0, "loop {} panics in its setup", ctx.index());
                Ok(|_: &mut looplab::Loop| ())
            });
    assert!(panicking.is_err());
    // Without listen(addr), a loop has no socket to accept on: an error, not a panic.
    let no_addr = LoopGroup::builder().spawn(|lp, ctx: &mut looplab::group::LoopCtx<()>| {
        ctx.listen(lp, |_, _, _| {})?;
        Ok(|_: &mut looplab::Loop| ())
    });
    assert!(no_addr.err().unwrap().to_string().contains("listen(addr)"));
}

/// A message posted to each loop runs on that loop's own thread, and the hops are
/// counted; a post to a loop that does not exist comes back.
#[test]
fn a_message_runs_on_the_loop_it_was_posted_to() {
    let (seen_tx, seen) = mpsc::channel::<(usize, String)>();
    let group = LoopGroup::builder()
        .loops(3)
        .spawn(move |_, ctx| {
            let (me, tx) = (ctx.index(), seen_tx.clone());
            ctx.on_message(move |_, from: usize| {
                let thread = std::thread::current().name().unwrap_or("").to_string();
                tx.send((me, format!("{from}->{thread}"))).unwrap();
            });
            Ok(|_: &mut looplab::Loop| ())
        })
        .unwrap();
    let postbox = group.postbox();
    for to in 0..3 {
        postbox.post(to, 9).unwrap();
    }
    assert!(matches!(postbox.post(3, 9), Err(PostError::Closed(9))));
    let mut got: Vec<_> = (0..3)
        .map(|_| seen.recv_timeout(Duration::from_secs(10)).unwrap())
        .collect();
    got.sort();
    for (i, (me, what)) in got.iter().enumerate() {
        assert_eq!(
            (*me, what.as_str()),
            (i, format!("9->looplab-loop-{i}").as_str())
        );
    }
    assert!(postbox
        .hops()
        .iter()
        .all(|h| h.posted == 1 && h.delivered == 1));
    group.stop();
    assert_eq!(group.join().len(), 3);
}

/// Reuseport: the kernel keeps hashing new connections to the stalled loop; they wait
/// in its backlog and are answered (by loop 1) only once it is released. Whatever was
/// answered during the stall came from loop 0.
#[test]
fn reuseport_keeps_giving_a_stalled_loop_its_share() {
    let (group, release, mut clients) = stall_and_connect(ListenMode::Reuseport);
    let during: Vec<Option<u8>> = clients
        .iter_mut()
        .map(|c| answer(c, Duration::from_millis(300)))
        .collect();
    assert!(during.iter().flatten().all(|&i| i == 0), "{during:?}");
    release.send(()).unwrap();
    let mut by_stalled = 0;
    for (c, got) in clients.iter_mut().zip(&during) {
        let i = got.or_else(|| answer(c, Duration::from_secs(10)));
        by_stalled += usize::from(i.expect("every client is answered at last") == 1);
    }
    assert!(
        by_stalled > 0,
        "no connection was hashed to the stalled loop"
    );
    assert!(
        during.iter().any(Option::is_none),
        "all answered while loop 1 stalled"
    );
    group.stop();
    assert!(group.join().iter().all(|r| r.is_ok()));
}

/// Exclusive: one backlog, and only a loop waiting in epoll_wait is woken, so every
/// connection made while loop 1 stalls is served by loop 0, before loop 1 is released.
#[test]
fn exclusive_passes_over_a_stalled_loop() {
    let (group, release, mut clients) = stall_and_connect(ListenMode::Exclusive);
    for (n, c) in clients.iter_mut().enumerate() {
        let i = answer(c, Duration::from_secs(10));
        assert_eq!(i, Some(0), "client {n} while loop 1 stalls");
    }
    release.send(()).unwrap();
    group.stop();
    assert!(group.join().iter().all(|r| r.is_ok()));
}

/// The CLI: `echo --loops 2` runs two loop threads, serves, and on SIGTERM stops every
/// loop and exits 0, reporting the connections each loop served.
#[test]
fn echo_loops_cli_stops_every_loop_on_sigterm_and_exits_zero() {
    exercise::says(CHAPTER, "`echo: connections per loop:` line");
    for mode in ["reuseport", "exclusive"] {
        let mut server =
            ServerChild::start(&["echo", "--addr", ANY_PORT, "--loops", "2", "--mode", mode]);
        assert!(server.threads() >= 3, "main and two loop threads ({mode})");
        let mut held = util::connect(server.addr);
        for i in 0..8 {
            let mut c = util::connect(server.addr);
            assert_eq!(
                util::round_trip(&mut c, format!("m{i}").as_bytes()),
                format!("m{i}").as_bytes()
            );
        }
        assert_eq!(util::round_trip(&mut held, b"still here"), b"still here");
        server.signal("TERM");
        let status = server
            .wait_for_exit(Duration::from_secs(20))
            .expect("it exits");
        let said = server.stderr_at_exit();
        assert!(status.success(), "{mode}: {status}: {said}");
        let line = said
            .lines()
            .find_map(|l| l.strip_prefix("echo: connections per loop: "))
            .unwrap_or_else(|| panic!("{mode}: no per-loop line in {said}"));
        let counts: Vec<u64> = line.split(',').map(|n| n.parse().unwrap()).collect();
        assert_eq!(
            (counts.len(), counts.iter().sum::<u64>()),
            (2, 9),
            "{mode}: {said}"
        );
    }
}

/// `longpoll --loops 2`: a poll held on each loop; a publish on loop 1 (not the log's
/// owner) and then one on loop 0 each answer the polls of both loops, through hops the
/// mailboxes count; a poll far behind on loop 1 asks the owner and gets both messages;
/// a stop answers held polls `"shutdown": true` and every loop ends.
#[test]
fn a_publish_on_one_loop_answers_the_waiters_of_every_loop() {
    use looplab::servers::longpoll::{group, LongPollConfig};
    let cfg = LongPollConfig {
        addr: any_port(),
        ..LongPollConfig::default()
    };
    let g = group::spawn(LoopGroup::builder().loops(2), cfg).unwrap();
    let addr = g.local_addr().unwrap();
    let [mut on0, mut on1] = client_per_loop(addr);
    let [mut pub0, mut pub1] = client_per_loop(addr);
    for (cursor, text, publisher) in [(0, "from loop 1", &mut pub1), (1, "from loop 0", &mut pub0)]
    {
        let poll = format!("GET /poll?cursor={cursor}&timeout=30 HTTP/1.1\r\nHost: t\r\n\r\n");
        on0.send(poll.as_bytes());
        on1.send(poll.as_bytes());
        publish(publisher, text);
        for c in [&mut on0, &mut on1] {
            assert_eq!(texts(&c.read_response().unwrap()), [text]);
        }
    }
    let behind = on1.get("/poll?cursor=0");
    assert_eq!(texts(&behind), ["from loop 1", "from loop 0"]);
    let hops = g.postbox().hops();
    assert!(
        hops[0].delivered >= 1,
        "loop 1's publish reached the owner: {hops:?}"
    );
    assert!(hops[1].delivered >= 3, "published, latest, owed: {hops:?}");
    on1.send(b"GET /poll?cursor=2&timeout=30 HTTP/1.1\r\nHost: t\r\n\r\n");
    // Held once loop 1 counts it (pub1 is on loop 1 too), so the stop must answer it.
    let held = (0..1000).any(|_| {
        let n = pub1.get("/stats").json()["waiters"].as_u64();
        n == Some(1) || {
            std::thread::sleep(Duration::from_millis(10));
            false
        }
    });
    assert!(held, "loop 1 never held the poll");
    g.stop();
    let last = on1.read_response().unwrap().json();
    assert_eq!(last["shutdown"], true, "{last}");
    let reports: Vec<_> = g.join().into_iter().map(Result::unwrap).collect();
    assert_eq!(
        reports.iter().map(|r| r.stats.chat.published).sum::<u64>(),
        2
    );
}

/// The rate limit lives with the log, on the owner: a client's burst is one budget
/// whichever loops its connections land on (two publishes allowed, from two loops, then
/// 429 on both).
#[test]
fn the_publish_budget_is_one_for_the_whole_group() {
    use looplab::servers::longpoll::{group, LongPollConfig};
    let cfg = LongPollConfig {
        addr: any_port(),
        publish_rate: 0.001,
        publish_burst: 2.0,
        ..LongPollConfig::default()
    };
    let g = group::spawn(LoopGroup::builder().loops(2), cfg).unwrap();
    let [mut on0, mut on1] = client_per_loop(g.local_addr().unwrap());
    publish(&mut on0, "one");
    publish(&mut on1, "two");
    for c in [&mut on0, &mut on1] {
        let refused = c.post("/publish", "{\"text\":\"three\"}");
        assert_eq!(refused.status, 429, "{}", refused.text());
    }
    g.stop();
    let reports: Vec<_> = g.join().into_iter().map(Result::unwrap).collect();
    assert_eq!(
        reports[0].stats.chat.rate_limited, 2,
        "counted on the owner"
    );
}

/// The CLI: `longpoll --loops 2` serves and exits 0 on SIGINT.
#[test]
fn longpoll_loops_cli_exits_zero_on_sigint() {
    let mut server = ServerChild::start(&["longpoll", "--addr", ANY_PORT, "--loops", "2"]);
    let mut c = util::http::Client::connect(server.addr);
    publish(&mut c, "hi");
    assert_eq!(texts(&c.get("/poll?cursor=0")), ["hi"]);
    server.signal("INT");
    let status = server
        .wait_for_exit(Duration::from_secs(20))
        .expect("it exits");
    let said = server.stderr_at_exit();
    assert!(status.success(), "{status}: {said}");
    assert_eq!(said.matches("longpoll loop ").count(), 2, "{said}");
}

/// Example 22 prints what its header tells the reader to look for, in both modes.
#[test]
fn example_22_says_what_its_header_promises() {
    exercise::says(CHAPTER, "cargo run --example 22_loop_per_core");
    exercise::says(CHAPTER, "`answers by loop:`");
    exercise::says(
        "examples/22_loop_per_core.rs",
        "hops into loop 0: 20 posted, 20 delivered, 0 refused",
    );
    for mode in ["reuseport", "exclusive"] {
        let mut run = exercise::run_example("22_loop_per_core", &[mode], &[]);
        let status = run.finish(Duration::from_secs(60));
        let out = run.out.join("\n");
        assert!(status.success(), "{mode}: {out}");
        assert!(
            out.contains(&format!("mode: {mode}, listening on")),
            "{out}"
        );
        let answers = out
            .lines()
            .find_map(|l| l.strip_prefix("answers by loop: loop 0: "))
            .unwrap_or_else(|| panic!("{out}"));
        let (a, b) = answers.split_once(", loop 1: ").unwrap();
        assert_eq!(
            a.parse::<u32>().unwrap() + b.parse::<u32>().unwrap(),
            20,
            "{out}"
        );
        assert!(
            out.contains("loop 0 heard of 20 connections through its mailbox"),
            "{out}"
        );
        assert!(
            out.contains("hops into loop 0: 20 posted, 20 delivered, 0 refused"),
            "{out}"
        );
    }
}

const CHAPTER: &str = "docs/17-one-loop-per-core.md";

/// Chapter 17's Try 3: with `LOOPLAB_TRACE=1`, a publish on `longpoll --loops 2` shows
/// its hops in the trace: the owner's `latest` to loop 1, and the mailbox note of the
/// loop that received it.
#[test]
fn chapter_17_try_3_the_hops_are_in_the_trace() {
    exercise::says(CHAPTER, "hop latest: loop 0 -> 1 (3 sent by this loop)");
    exercise::says(CHAPTER, "mailbox N: K message(s) from other loops");
    let args = ["longpoll", "--addr", ANY_PORT, "--loops", "2"];
    let mut run = exercise::start(exercise::looplab(), &args, &[("LOOPLAB_TRACE", "1")]);
    let addr = run.listening_on();
    publish(&mut util::http::Client::connect(addr), "traced");
    let within = Duration::from_secs(20);
    run.seen_or_wait_for("the latest hop", within, |l| {
        // Its count is 1 if the publish came to loop 0, 2 if it came through loop 1.
        l.contains("hop latest: loop 0 -> 1 (") && l.contains(" sent by this loop)")
    });
    run.seen_or_wait_for("the mailbox note", within, |l| {
        l.contains("message(s) from other loops")
    });
}
