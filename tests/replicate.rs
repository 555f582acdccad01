//! Replicated requests (`task::first_ok`, `task::replicate`, and the callback form
//! `replicate::first_answer`) with 0, 1 and N failing replicas: the first good answer
//! wins, the losers' sockets are closed at once (the replicas themselves see the client
//! leave), and when all fail the error names each.

mod util;

use looplab::replicate;
use looplab::task::{self, Failures};
use looplab::{HandleKind, Loop, RunMode};
use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::Duration;
use util::replicas::{ask, dead_addr, replica, Saw};
use util::trace::{assert_in_order, traced_loop};
use util::{fail_after, new_loop, on_every_backend};

const GUARD: Duration = Duration::from_secs(30);
/// Longer than any test may take: a replica this slow only answers if nobody cancelled it.
const NEVER: Duration = Duration::from_secs(60);

/// Streams that are open and not on their way out.
fn open_streams(lp: &Loop) -> usize {
    let h = lp.handles();
    h.iter()
        .filter(|h| h.kind == HandleKind::Tcp && !h.closing)
        .count()
}

/// After the closes run, the loop holds nothing but the test's guard timer.
fn assert_all_freed(lp: &mut Loop) {
    lp.run(RunMode::Default).unwrap();
    let left: Vec<_> = lp
        .handles()
        .into_iter()
        .filter(|h| h.kind != HandleKind::Timer)
        .collect();
    assert!(left.is_empty(), "{left:?}\n{}", lp.explain_alive());
}

/// No replica fails: the fast one wins and both slow ones are cancelled: their
/// connections closed in the same tick, which the replicas see as the client leaving.
#[test]
fn none_failing_the_fastest_wins_and_the_rest_are_closed() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let slow1 = replica(NEVER, "slow 1");
        let fast = replica(Duration::from_millis(20), "fast");
        let slow2 = replica(NEVER, "slow 2");
        let addrs = [slow1.addr, fast.addr, slow2.addr];
        let (i, answer) = lp
            .block_on(task::replicate(3, move |i| ask(addrs[i])))
            .unwrap()
            .unwrap();
        assert_eq!((i, answer.as_str()), (1, "fast"));
        assert_eq!(
            open_streams(&lp),
            0,
            "the losers' streams are closing: {:?}",
            lp.handles()
        );
        assert_eq!(slow1.saw(), Saw::Left);
        assert_eq!(slow2.saw(), Saw::Left);
        assert_eq!(fast.saw(), Saw::Answered);
        assert_all_freed(&mut lp);
    });
}

/// One fails (refused at once): its error takes it out of the race but does not end
/// it, as it would end a plain `race`; the good replica, listed after it, still wins.
#[test]
fn one_failing_an_error_does_not_win() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let good = replica(Duration::from_millis(20), "good");
        let slow = replica(NEVER, "slow");
        let futs = vec![ask(dead_addr()), ask(good.addr), ask(slow.addr)];
        let (i, answer) = lp.block_on(task::first_ok(futs)).unwrap().unwrap();
        assert_eq!((i, answer.as_str()), (1, "good"));
        assert_eq!(slow.saw(), Saw::Left);
        assert_all_freed(&mut lp);
    });
}

/// All fail, each its own way: the error lists every replica with its error, and its
/// kind is `Other` since they differ; all refused, the kind is the shared one.
#[test]
fn all_failing_the_error_names_each_replica() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let hangs_up = replica(Duration::from_millis(10), "");
        let futs = vec![ask(dead_addr()), ask(hangs_up.addr)];
        let err = lp.block_on(task::first_ok(futs)).unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Other, "{err}");
        let failures = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<Failures>())
            .unwrap();
        let mut who: Vec<&str> = failures.each.iter().map(|(w, _)| w.as_str()).collect();
        who.sort_unstable();
        assert_eq!(who, ["#0", "#1"]);
        let text = err.to_string();
        assert!(
            text.starts_with("asking 2 replica(s): all 2 failed: #"),
            "{text}"
        );
        assert!(text.contains("hung up without an answer"), "{text}");
        let refused = lp
            .block_on(task::replicate(3, |_| ask(dead_addr())))
            .unwrap()
            .unwrap_err();
        assert_eq!(
            refused.kind(),
            io::ErrorKind::ConnectionRefused,
            "{refused}"
        );
        assert_all_freed(&mut lp);
    });
}

/// Hedging, as chapter 16 writes it: the second copy is sent only after a delay; the
/// first replica is stuck, so the hedge answers, and the stuck request is dropped.
#[test]
fn a_hedged_request_asks_the_second_replica_late() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let stuck = replica(NEVER, "stuck");
        let hedge = replica(Duration::ZERO, "hedge");
        let (addrs, p95) = ([stuck.addr, hedge.addr], Duration::from_millis(50));
        let started = std::time::Instant::now();
        let (i, answer) = lp
            .block_on(task::replicate(2, |i| async move {
                if i == 1 {
                    task::sleep(p95).await?; // dropped with the rest if the first answers in time
                }
                ask(addrs[i]).await
            }))
            .unwrap()
            .unwrap();
        assert_eq!((i, answer.as_str()), (1, "hedge"));
        assert!(started.elapsed() >= p95, "the hedge went early");
        assert_eq!(stuck.saw(), Saw::Left);
        assert_all_freed(&mut lp);
    });
}

/// Nothing to ask is an error, not a future that never ends.
#[test]
fn no_replicas_is_invalid_input() {
    let mut lp = Loop::new().unwrap();
    let none: Vec<std::future::Ready<io::Result<()>>> = Vec::new();
    let err = lp.block_on(task::first_ok(none)).unwrap().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

/// The trace says who won and how many were dropped, and the losers' streams are
/// closed in the same tick.
#[test]
fn the_trace_shows_the_winner_and_the_closes() {
    on_every_backend(|b| {
        let (mut lp, trace) = traced_loop(b);
        fail_after(&mut lp, GUARD);
        let fast = replica(Duration::from_millis(10), "fast");
        let slow = replica(NEVER, "slow");
        let futs = vec![ask(fast.addr), ask(slow.addr)];
        lp.block_on(task::first_ok(futs)).unwrap().unwrap();
        lp.run(RunMode::Default).unwrap();
        let text = trace.text();
        let line = text
            .lines()
            .find(|l| l.contains("replicas: #0 answered first; dropped 1 other(s)"))
            .unwrap_or_else(|| panic!("no winner note in:\n{text}"));
        assert_in_order(
            line,
            &["closed #".to_string(), "note: replicas: #0".to_string()],
        );
        assert_eq!(slow.saw(), Saw::Left);
    });
}

#[path = "util/exercise.rs"]
mod exercise;
#[path = "util/quoted.rs"]
mod quoted;

/// Every line the header of example 19 and chapter 16 quote from its run (its output,
/// its trace) is a line the run printed, by shape. `localhost` resolves differently on
/// other machines: that one line is left out.
fn assert_quotes_of_19(run: &exercise::Run, chapter_markers: &[&str]) {
    let all: Vec<String> = run.out.iter().chain(&run.err).cloned().collect();
    let file = "examples/19_replicated_requests.rs";
    for line in quoted::quoted_blocks(file).concat() {
        if !line.starts_with("localhost:") {
            quoted::assert_quoted_line(&line, &all, file);
        }
    }
    let chapter = "docs/16-replicas-and-stewards.md";
    for block in quoted::quoted_blocks(chapter) {
        if block
            .iter()
            .any(|l| chapter_markers.iter().any(|m| l.contains(m)))
        {
            for line in block {
                quoted::assert_quoted_line(&line, &all, chapter);
            }
        }
    }
}

/// Example 19 prints what its header says: fast wins, slow sees its client leave long
/// before its answer was due, the all-failed error names each, and happy eyeballs
/// falls back from ::1 to 127.0.0.1; with the trace, the winner's note and the loser's
/// close share a tick.
#[test]
fn example_19_runs_as_its_header_says() {
    let mut run = exercise::run_example("19_replicated_requests", &[], &[("LOOPLAB_TRACE", "1")]);
    run.wait_for("the winner", GUARD, |l| {
        l.starts_with("first_ok: #0 (fast) answered \"echo: request\" after ")
    });
    let left = run.seen_or_wait_for("slow cancelled", GUARD, |l| {
        l.starts_with("  (slow: the client left after ")
    });
    let ms: u64 = left["  (slow: the client left after ".len()..]
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        ms < 2000,
        "slow was cancelled before its answer was due: {left}"
    );
    run.wait_for("the failures", GUARD, |l| {
        l.starts_with("only the failing ones: asking 2 replica(s): all 2 failed: #")
            && l.matches("Connection refused").count() == 2
    });
    run.wait_for("the race list", GUARD, |l| {
        l.starts_with("happy eyeballs over ") && l.contains("[::1]:") && l.contains("127.0.0.1:")
    });
    run.wait_for("the eyeballs", GUARD, |l| {
        l.starts_with("happy eyeballs: connected to 127.0.0.1:")
    });
    assert!(run.finish(GUARD).success());
    assert_quotes_of_19(&run, &["note: replicas:", "happy eyeballs: [::1]"]);
    let winner = run
        .err
        .iter()
        .find(|l| l.contains("note: replicas: #0 answered first; dropped 1 other(s)"))
        .unwrap_or_else(|| panic!("no winner note:\n{}", run.err.join("\n")));
    assert!(winner.contains("| closed #"), "{winner}");
    let fell_back = run.err.iter().any(|l| {
        l.contains("happy eyeballs: [::1]:")
            && l.contains("failed")
            && l.contains("attempt 2 to 127.0.0.1:")
    });
    assert!(fell_back, "{}", run.err.join("\n"));
}

// ---------------------------------------------------------------------------------------
// The callback form: `looplab::replicate::first_answer`.
// ---------------------------------------------------------------------------------------

type Answer = Rc<RefCell<Option<io::Result<(usize, Vec<u8>)>>>>;

/// Run `first_answer` over `addrs` on `lp` until the loop is done; the one result.
fn answer_of(lp: &mut Loop, addrs: &[std::net::SocketAddr]) -> io::Result<(usize, Vec<u8>)> {
    let got: Answer = Rc::new(RefCell::new(None));
    let calls = Rc::new(RefCell::new(0));
    let (g, c) = (got.clone(), calls.clone());
    replicate::first_answer(lp, addrs, b"ping\n", move |_, r| {
        *c.borrow_mut() += 1;
        *g.borrow_mut() = Some(r);
    });
    lp.run(RunMode::Default).unwrap();
    assert_eq!(*calls.borrow(), 1, "done is called exactly once");
    let result = got.borrow_mut().take().unwrap();
    result
}

/// With callbacks: the fast replica wins, both slow ones see their connection closed,
/// and nothing is left on the loop (the run ended, so nothing held it either).
#[test]
fn callbacks_none_failing_the_fastest_wins_and_the_rest_are_closed() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let slow1 = replica(NEVER, "slow 1");
        let fast = replica(Duration::from_millis(20), "fast");
        let slow2 = replica(NEVER, "slow 2");
        let (i, answer) = answer_of(&mut lp, &[slow1.addr, fast.addr, slow2.addr]).unwrap();
        assert_eq!((i, answer.as_slice()), (1, &b"fast"[..]));
        assert_eq!((slow1.saw(), slow2.saw()), (Saw::Left, Saw::Left));
        assert_all_freed(&mut lp);
    });
}

/// With callbacks, one refused and one hanging up: the good one still wins; with only
/// failing ones, the error names each and every handle is closed.
#[test]
fn callbacks_one_and_all_failing() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let good = replica(Duration::from_millis(20), "good");
        let hangs_up = replica(Duration::from_millis(5), "");
        let (i, answer) = answer_of(&mut lp, &[dead_addr(), hangs_up.addr, good.addr]).unwrap();
        assert_eq!((i, answer.as_slice()), (2, &b"good"[..]));
        let hangs_up = replica(Duration::from_millis(5), "");
        let err = answer_of(&mut lp, &[dead_addr(), hangs_up.addr]).unwrap_err();
        let failures = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<Failures>())
            .unwrap();
        assert_eq!(failures.each.len(), 2, "{err}");
        assert!(
            err.to_string().contains("hung up without an answer"),
            "{err}"
        );
        let none = answer_of(&mut lp, &[]).unwrap_err();
        assert_eq!(none.kind(), io::ErrorKind::InvalidInput);
        assert_all_freed(&mut lp);
    });
}

/// `cancel` (a deadline here) closes every connection and reports once, `Interrupted`.
#[test]
fn callbacks_cancel_closes_everything_once() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let slow = replica(NEVER, "slow");
        let got: Answer = Rc::new(RefCell::new(None));
        let g = got.clone();
        let r = replicate::first_answer(&mut lp, &[slow.addr], b"ping\n", move |_, r| {
            assert!(g.borrow_mut().replace(r).is_none(), "done called twice");
        });
        lp.set_timeout(Duration::from_millis(50), move |lp, _| {
            r.cancel(lp, "deadline 50 ms")
        });
        lp.run(RunMode::Default).unwrap();
        let err = got.borrow_mut().take().unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Interrupted);
        assert_eq!(err.to_string(), "canceled: deadline 50 ms");
        assert_eq!(slow.saw(), Saw::Left);
        assert_all_freed(&mut lp);
    });
}

/// Example 19 with `--black-hole`: ::1 swallows the SYN, so 127.0.0.1 is tried when the
/// stagger's timer fires (never before 250 ms), wins, and the hanging attempt is closed.
#[test]
fn example_19_with_a_black_hole_waits_one_stagger() {
    let mut run = exercise::run_example(
        "19_replicated_requests",
        &["--black-hole"],
        &[("LOOPLAB_TRACE", "1")],
    );
    let line = run.wait_for("the eyeballs", GUARD, |l| {
        l.starts_with("happy eyeballs: connected to 127.0.0.1:")
    });
    let ms: u64 = line
        .rsplit("after ")
        .next()
        .and_then(|rest| rest.trim_end_matches(" ms").parse().ok())
        .unwrap();
    assert!(ms >= 250, "attempt 2 started before the stagger: {line}");
    assert!(run.finish(GUARD).success());
    let by_timer = run.err.iter().any(|l| {
        l.contains("woken by timer #")
            && l.contains("note: happy eyeballs: attempt 2 to 127.0.0.1:")
    });
    assert!(by_timer, "{}", run.err.join("\n"));
    let closed = run
        .err
        .iter()
        .any(|l| l.contains("connected first; closed 1 other attempt(s)"));
    assert!(closed, "{}", run.err.join("\n"));
}
