//! The steward: it notices a ward that stopped beating, stops it (drops it: its timers
//! and streams go; or, for a ward of handles, closes them) and starts it again, at most
//! its bound of restarts per window, with backoff, and says all of it in the trace.

mod util;

use looplab::steward::{Heartbeat, Steward};
use looplab::task;
use looplab::{HandleKind, Loop, RunMode};
use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::replicas::{replica, Saw};
use util::trace::{assert_in_order, traced_loop};
use util::{fail_after, new_loop, on_every_backend};

const GUARD: Duration = Duration::from_secs(30);
/// Far above the beats' 20-30 ms spacing: a late timer on a busy machine is not a wedge.
const DEADLINE: Duration = Duration::from_millis(250);

/// A ward that beats `beats` times every 20 ms, then wedges: waits an hour on a timer.
async fn wedges_after(hb: Heartbeat, beats: u32) -> io::Result<()> {
    for _ in 0..beats {
        hb.beat();
        task::sleep(Duration::from_millis(20)).await?;
    }
    task::sleep(Duration::from_secs(3600)).await
}

fn timers(lp: &Loop) -> usize {
    lp.handles()
        .iter()
        .filter(|h| h.kind == HandleKind::Timer)
        .count()
}

/// A ward that always wedges is restarted exactly its bound of times (3), then the
/// steward gives up with an error; each stop came no earlier than the deadline after
/// the ward's last beat, the backoff doubled (in the trace), and the wedged wards'
/// timers are all gone.
#[test]
fn a_wedged_ward_is_restarted_at_most_its_bound() {
    on_every_backend(|b| {
        let (mut lp, trace) = traced_loop(b);
        fail_after(&mut lp, GUARD);
        let starts = Rc::new(RefCell::new(Vec::new()));
        let s = starts.clone();
        let steward = Steward::new("wedger")
            .deadline(DEADLINE)
            .max_restarts(3, Duration::from_secs(60))
            .backoff(Duration::from_millis(10), Duration::from_millis(40));
        let err = lp
            .block_on(steward.watch(move |hb| {
                s.borrow_mut().push(Instant::now());
                wedges_after(hb, 2)
            }))
            .unwrap()
            .unwrap_err();
        assert_eq!(starts.borrow().len(), 4, "the first run and 3 restarts");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        let text = err.to_string();
        assert!(
            text.contains("steward \"wedger\" gave up: 3 restart(s)"),
            "{text}"
        );
        assert!(text.contains("missed its heartbeat"), "{text}");
        // Last beat 20 ms after a start; stopped >= DEADLINE later; then the backoff.
        for pair in starts.borrow().windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= Duration::from_millis(20) + DEADLINE,
                "restarted early: {gap:?}"
            );
        }
        assert_eq!(timers(&lp), 1, "only the guard is left: {:?}", lp.handles());
        let steps = [
            "restart 1/3 in 10 ms",
            "restart 2/3 in 20 ms",
            "restart 3/3 in 40 ms",
            "giving up",
        ];
        assert_in_order(&trace.text(), &steps.map(String::from));
        assert_eq!(trace.text().matches("giving up").count(), 1);
    });
}

/// A ward that wedges once, then works and finishes: one restart, and `Ok(1)`.
#[test]
fn a_ward_that_recovers_is_restarted_once() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let runs = Rc::new(RefCell::new(0));
        let r = runs.clone();
        let steward = Steward::new("flaky").deadline(DEADLINE);
        let restarts = lp
            .block_on(steward.watch(move |hb| {
                *r.borrow_mut() += 1;
                let first = *r.borrow() == 1;
                async move {
                    if first {
                        return wedges_after(hb, 1).await;
                    }
                    for _ in 0..5 {
                        hb.beat();
                        task::sleep(Duration::from_millis(30)).await?;
                    }
                    Ok(())
                }
            }))
            .unwrap()
            .unwrap();
        assert_eq!((restarts, *runs.borrow()), (1, 2));
    });
}

/// The bound is per window (as OTP's restart intensity): with at most 1 restart in
/// 50 ms and failures 100 ms apart, no window ever holds 2, so it never gives up; the
/// same ward with 1 restart in 60 s gives up at the second failure.
#[test]
fn restarts_outside_the_window_do_not_count() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let failing_thrice = |runs: Rc<RefCell<u32>>| {
            move |hb: Heartbeat| {
                *runs.borrow_mut() += 1;
                let n = *runs.borrow();
                async move {
                    hb.beat();
                    task::sleep(Duration::from_millis(100)).await?;
                    if n <= 3 {
                        return Err(io::Error::new(io::ErrorKind::ConnectionRefused, "db down"));
                    }
                    Ok(())
                }
            }
        };
        let wide = Steward::new("w")
            .deadline(Duration::from_secs(5))
            .max_restarts(1, Duration::from_millis(50))
            .backoff(Duration::from_millis(1), Duration::from_millis(1));
        let runs = Rc::new(RefCell::new(0));
        let done = lp
            .block_on(wide.watch(failing_thrice(runs.clone())))
            .unwrap();
        assert_eq!(done.unwrap(), 3);
        let narrow = Steward::new("n")
            .deadline(Duration::from_secs(5))
            .max_restarts(1, Duration::from_secs(60))
            .backoff(Duration::from_millis(1), Duration::from_millis(1));
        let runs = Rc::new(RefCell::new(0));
        let err = lp
            .block_on(narrow.watch(failing_thrice(runs.clone())))
            .unwrap()
            .unwrap_err();
        assert_eq!(*runs.borrow(), 2);
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(
            err.to_string().contains("last: ward failed: db down"),
            "{err}"
        );
    });
}

/// Stopping a ward is dropping it: a wedged ward's stream is closed, and the server it
/// was talking to sees it leave. The trace tells the story in order.
#[test]
fn a_stopped_ward_closes_its_stream_and_the_trace_says_why() {
    on_every_backend(|b| {
        let (mut lp, trace) = traced_loop(b);
        fail_after(&mut lp, GUARD);
        let server = replica(Duration::from_secs(60), "too late");
        let addr = server.addr;
        let steward = Steward::new("reader")
            .deadline(DEADLINE)
            .max_restarts(0, Duration::from_secs(60));
        let err = lp
            .block_on(steward.watch(move |hb| async move {
                hb.beat();
                // Waits on a server that never answers: wedged.
                util::replicas::ask(addr).await.map(drop)
            }))
            .unwrap()
            .unwrap_err();
        assert_eq!(server.saw(), Saw::Left);
        assert!(err.to_string().contains("0 restart(s)"), "{err}");
        lp.run(RunMode::Default).unwrap();
        let streams = lp
            .handles()
            .iter()
            .filter(|h| h.kind == HandleKind::Tcp)
            .count();
        assert_eq!(streams, 0, "{:?}", lp.handles());
        assert_in_order(
            &trace.text(),
            &[
                "steward \"reader\": ward started (run 1)".to_string(),
                "steward \"reader\": ward missed its heartbeat (silent ".to_string(),
                "deadline 250 ms); giving up".to_string(),
            ],
        );
    });
}

#[path = "util/exercise.rs"]
mod exercise;
#[path = "util/quoted.rs"]
mod quoted;

/// Example 20 prints what its header says: the poller restarted twice then done, the
/// hopeless ward run exactly three times (two restarts) before the steward gives up;
/// the trace has each restart with its doubling backoff.
#[test]
fn example_20_runs_as_its_header_says() {
    let mut run = exercise::run_example("20_heartbeat_steward", &[], &[("LOOPLAB_TRACE", "1")]);
    run.wait_for("the poller's end", GUARD, |l| {
        l.starts_with("poller: finished after 2 restart(s) (bound: 3 within 10 s) in ")
    });
    run.wait_for("the give-up", GUARD, |l| {
        l.starts_with("hopeless: steward \"hopeless\" gave up: 2 restart(s) within 10000 ms")
            && l.contains("last: ward missed its heartbeat (silent ")
    });
    assert!(run.finish(GUARD).success());
    let wedged = |name: &str| {
        let prefix = format!("{name} run ");
        let n = run.out.iter().filter(|l| l.starts_with(&prefix)).count();
        let w = run
            .out
            .iter()
            .filter(|l| l.starts_with(&prefix) && l.ends_with("then wedged"));
        (n, w.count())
    };
    assert_eq!(wedged("poller"), (3, 2), "{:?}", run.out);
    assert_eq!(wedged("hopeless"), (3, 3), "{:?}", run.out);
    let trace = run.err.join("\n");
    let steps = [
        "steward \"poller\": ward missed its heartbeat (silent ",
        "restart 1/3 in 100 ms",
        "restart 2/3 in 200 ms",
        "steward \"poller\": ward finished",
        "restart 2/2 in 200 ms",
        "steward \"hopeless\": ward missed its heartbeat",
        "giving up",
    ];
    assert_in_order(&trace, &steps.map(String::from));
    // What the header and chapter 16 quote of this run, by shape.
    let all: Vec<String> = run.out.iter().chain(&run.err).cloned().collect();
    let file = "examples/20_heartbeat_steward.rs";
    for line in quoted::quoted_blocks(file).concat() {
        quoted::assert_quoted_line(&line, &all, file);
    }
    let chapter = "docs/16-replicas-and-stewards.md";
    for block in quoted::quoted_blocks(chapter) {
        if block
            .iter()
            .any(|l| l.contains("steward \"poller\"") || l.contains("poller run"))
        {
            for line in block {
                quoted::assert_quoted_line(&line, &all, chapter);
            }
        }
    }
}

/// The chapter's exercise: with `--poller-restarts 1` the poller's second wedge is one
/// too many, and its steward gives up instead of starting run 3.
#[test]
fn example_20_with_a_bound_of_one_gives_up_on_the_poller() {
    let mut run = exercise::run_example("20_heartbeat_steward", &["--poller-restarts", "1"], &[]);
    run.wait_for("the poller's give-up", GUARD, |l| {
        l.starts_with("poller: steward \"poller\" gave up: 1 restart(s) within 10000 ms")
    });
    assert!(run.finish(GUARD).success());
    assert!(
        !run.out.iter().any(|l| l.starts_with("poller run 3")),
        "{:?}",
        run.out
    );
}
