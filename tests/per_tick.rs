//! Prepare, check and idle handles: where they run in a tick, against libuv's order, and
//! what idle does to the poll timeout; on every backend.
//!
//! libuv's order, from its handle pages on docs.libuv.org and `uv_run` in
//! src/unix/core.c: pending callbacks; idle handles ("once per loop iteration, right
//! before the uv_prepare_t handles"; while one is active "the loop will perform a zero
//! timeout poll"); prepare handles ("right before polling for i/o"); the poll timeout is
//! computed and the loop polls, running the I/O callbacks; check handles ("right after
//! polling for i/o"); close callbacks; timers (at the end of the iteration since 1.45).
//! Node's immediates run in the check phase. Within one kind libuv runs the newest
//! handle first (src/unix/loop-watcher.c); looplab runs them in the order they were made.

mod util;

use looplab::{HandleKind, Loop, ReadEvent, RunMode};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
use util::trace::{assert_in_order, traced_loop};
use util::{new_loop, on_every_backend};

type Log = Rc<RefCell<Vec<&'static str>>>;

/// `what` happened in tick `tick`: logged only for the tick under test.
fn note(lp: &Loop, log: &Log, tick: u64, what: &'static str) {
    if lp.metrics().ticks == tick {
        log.borrow_mut().push(what);
    }
}

/// One tick with something in every phase runs them in libuv's order: pending, idle,
/// prepare, the poll's I/O callback, immediates then check handles, close callbacks,
/// timers. Tick 2 is the one watched: tick 1 leaves a write result for its pending
/// phase, and its prepare callback writes the byte its poll then reads.
#[test]
fn one_tick_runs_every_phase_in_libuvs_order() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let log: Log = Rc::default();
        let (reader, writer) = lp.pipe_pair().unwrap();
        let (spare_a, spare_b) = lp.pipe_pair().unwrap();
        let l = log.clone();
        let idle = lp.idle(move |lp, _| note(lp, &l, 2, "idle"));
        let l = log.clone();
        let prepare = lp.prepare(move |lp, _| {
            note(lp, &l, 2, "prepare");
            if lp.metrics().ticks == 2 {
                lp.write(writer, b"x").unwrap();
            }
        });
        let l = log.clone();
        let check = lp.check(move |lp, _| {
            note(lp, &l, 2, "check");
            if lp.metrics().ticks == 1 {
                let l = l.clone();
                let done = move |lp: &mut Loop, _, r: std::io::Result<()>| {
                    r.unwrap();
                    note(lp, &l, 2, "pending");
                };
                lp.write_then(spare_a, b"p", done).unwrap();
            }
        });
        let l = log.clone();
        lp.read_start(reader, move |lp, _, ev| {
            assert!(matches!(ev, ReadEvent::Data(b"x")), "{ev:?}");
            note(lp, &l, 2, "io");
            let l2 = l.clone();
            lp.set_immediate(move |lp, _| note(lp, &l2, 2, "immediate"));
            let l2 = l.clone();
            let doomed = lp.set_interval(Duration::from_secs(60), |_, _| {});
            lp.close_then(doomed, move |lp, _| note(lp, &l2, 2, "close"));
            let l2 = l.clone();
            lp.set_timeout(Duration::ZERO, move |lp, _| {
                note(lp, &l2, 2, "timer");
                let all: [looplab::Handle; 4] =
                    [idle.into(), prepare.into(), check.into(), reader.into()];
                for h in all {
                    lp.close(h);
                }
                for p in [writer, spare_a, spare_b] {
                    lp.close(p);
                }
            });
        })
        .unwrap();
        lp.run(RunMode::Default).unwrap();
        assert_eq!(
            *log.borrow(),
            [
                "pending",
                "idle",
                "prepare",
                "io",
                "immediate",
                "check",
                "close",
                "timer"
            ]
        );
    });
}

/// While an idle handle lives the poll never blocks, and the trace names the rule; once
/// it is closed, the loop sleeps until its timer again.
#[test]
fn idle_makes_the_poll_not_block_while_it_lives() {
    on_every_backend(|b| {
        let (mut lp, buf) = traced_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let calls = Rc::new(Cell::new(0));
        let c = calls.clone();
        lp.idle(move |lp, me| {
            c.set(c.get() + 1);
            if c.get() == 5 {
                lp.close(me);
                lp.set_timeout(Duration::from_millis(30), |_, _| {});
            }
        });
        lp.run(RunMode::Default).unwrap();
        assert_eq!(calls.get(), 5);
        let text = buf.text();
        assert_eq!(text.matches("poll 0ms (1 idle)").count(), 4, "{text}");
        assert_in_order(
            &text,
            &[
                "idle 1 | alive: ref'd: 1 idle".into(),
                "poll 0ms (1 idle)".into(),
                "closed".into(),
                "sleeping up to".into(),
            ],
        );
    });
}

/// An unref'd idle handle does not hold the loop (alone, run returns without calling
/// it), but while something else does, it runs every tick and the poll does not block:
/// a 30 ms timer is waited for in zero-timeout polls, never in one sleep.
#[test]
fn an_unrefd_idle_does_not_hold_the_loop_but_still_spins_it() {
    on_every_backend(|b| {
        let (mut lp, buf) = traced_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let calls = Rc::new(Cell::new(0u32));
        let c = calls.clone();
        let idle = lp.idle(move |_, _| c.set(c.get() + 1));
        lp.unref_handle(idle);
        assert!(!lp.run(RunMode::Default).unwrap());
        assert_eq!(calls.get(), 0, "nothing held the loop, so no tick ran");
        assert!(lp
            .explain_alive()
            .contains("unref'd, not holding the loop: 1 timer, 1 idle"));
        lp.set_timeout(Duration::from_millis(30), |_, _| {});
        lp.run(RunMode::Default).unwrap();
        assert!(calls.get() >= 2, "idle ran {} times", calls.get());
        let text = buf.text();
        assert!(!text.contains("sleeping"), "a poll blocked:\n{text}");
        assert!(text.contains("poll 0ms (1 idle)"), "{text}");
        lp.close(idle);
        lp.run(RunMode::Default).unwrap();
    });
}

/// Watchers of one kind run in the order they were made; one closed by an earlier one
/// in the same phase does not run; one made during its own phase first runs next tick.
/// `explain_alive` and the trace name them.
#[test]
fn watchers_run_in_creation_order_and_closing_one_stops_it() {
    on_every_backend(|b| {
        let (mut lp, buf) = traced_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let log = Rc::new(RefCell::new(Vec::new()));
        let (l, second) = (log.clone(), Rc::new(Cell::new(None)));
        let s = second.clone();
        lp.prepare(move |lp, me| {
            l.borrow_mut().push(("first", lp.metrics().ticks));
            if let Some(second) = s.take() {
                lp.close(second);
                let l = l.clone();
                lp.prepare(move |lp, late| {
                    l.borrow_mut().push(("late", lp.metrics().ticks));
                    lp.close(late);
                    lp.close(me);
                });
            }
        });
        let l = log.clone();
        second.set(Some(
            lp.prepare(move |_, _| l.borrow_mut().push(("second", 0))),
        ));
        assert!(lp.explain_alive().contains("ref'd: 2 prepare"));
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*log.borrow(), [("first", 1), ("first", 2), ("late", 2)]);
        let left = lp.handles();
        assert!(left.iter().all(|h| h.kind == HandleKind::Timer), "{left:?}");
        assert!(buf.text().contains("| prepare 1 |"), "{}", buf.text());
    });
}

/// A check handle sees what the tick's immediates did: they run first in its phase.
#[test]
fn check_handles_run_after_the_immediates_of_their_tick() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let log: Log = Rc::default();
        let l = log.clone();
        lp.check(move |lp, me| {
            l.borrow_mut().push("check");
            lp.close(me);
        });
        for _ in 0..2 {
            let l = log.clone();
            lp.set_immediate(move |_, _| l.borrow_mut().push("immediate"));
        }
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*log.borrow(), ["immediate", "immediate", "check"]);
    });
}
