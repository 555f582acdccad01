//! The reactor core's conformance suite: timers, immediates, the order of one tick and
//! its trace (docs/design.md), run on every backend this OS offers.

mod util;

use looplab::{Backend, Loop, RunMode, Trigger};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::trace::traced_loop;
use util::{new_loop, on_every_backend};

/// An empty loop has nothing to do: run returns without ever waiting in poll.
#[test]
fn empty_loop_returns_at_once() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        assert!(!lp.run(RunMode::Default).unwrap());
        assert_eq!(lp.metrics().idle, Duration::ZERO, "it waited in poll");
        assert_eq!(lp.backend(), b);
    });
}

/// A loop is built level- or edge-triggered as asked (its backend's own by default), and
/// says which; mio, which has no level mode, is refused with the reason.
#[test]
fn a_loop_reports_its_trigger_and_mio_refuses_level() {
    for backend in Backend::available() {
        let lp = Loop::builder().backend(backend).build().unwrap();
        assert_eq!(lp.trigger(), Trigger::default_for(backend), "{backend}");
        let lp = Loop::builder()
            .backend(backend)
            .trigger(Trigger::Edge)
            .build()
            .unwrap();
        assert_eq!(lp.trigger(), Trigger::Edge, "{backend}");
    }
    assert_eq!(
        Loop::new().unwrap().trigger(),
        Trigger::default_for(Backend::default_for_os())
    );
    let refused = Loop::builder()
        .backend(Backend::Mio)
        .trigger(Trigger::Level)
        .build();
    let e = refused.err().expect("mio built level-triggered");
    assert!(
        e.to_string().contains("mio poller (level-triggered)")
            && e.to_string().contains("no level-triggered mode"),
        "{e}"
    );
}

/// An unref'd timer does not hold the loop: it never fires, run returns at once.
#[test]
fn unrefd_timer_does_not_hold_the_loop() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let fired = Rc::new(Cell::new(false));
        let f = fired.clone();
        let t = lp.set_timeout(Duration::from_millis(200), move |_, _| f.set(true));
        assert!(lp.has_ref(t));
        lp.unref_handle(t);
        lp.unref_handle(t);
        assert!(!lp.has_ref(t));
        assert!(!lp.run(RunMode::Default).unwrap());
        assert_eq!(lp.metrics().idle, Duration::ZERO, "it waited for the timer");
        assert!(!fired.get());
        // ref/unref are flags: one ref after two unrefs holds the loop again.
        lp.ref_handle(t);
        assert!(lp.alive());
        lp.run(RunMode::Default).unwrap();
        assert!(fired.get());
    });
}

/// Timers with the same timeout fire in the order they were started.
#[test]
fn equal_deadlines_fire_in_start_order() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let order = Rc::new(RefCell::new(Vec::new()));
        // Same deadline even if the clock ticks over a millisecond between calls? Use a
        // timer started from one callback so they share `now`-relative deadlines closely.
        for i in 0..50 {
            let o = order.clone();
            lp.set_timeout(Duration::from_millis(20), move |_, _| {
                o.borrow_mut().push(i)
            });
        }
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*order.borrow(), (0..50).collect::<Vec<_>>());
    });
}

/// Random deadlines fire in the order of their absolute deadlines (set time + timeout,
/// to the wheel's millisecond) and never before them, however late the loop runs.
#[test]
fn random_deadlines_fire_in_order_and_never_early() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let fired = Rc::new(RefCell::new(Vec::new()));
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..200 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let after = Duration::from_millis(seed % 120);
            let before_set = Instant::now();
            let f = fired.clone();
            let slot = Rc::new(Cell::new(None));
            let s = slot.clone();
            lp.set_timeout(after, move |_, _| {
                let (earliest, latest) = s.get().unwrap();
                f.borrow_mut().push((i, earliest, latest, Instant::now()));
            });
            // The deadline was taken inside set_timeout: between these two instants.
            slot.set(Some((before_set + after, Instant::now() + after)));
        }
        lp.run(RunMode::Default).unwrap();
        let fired = fired.borrow();
        assert_eq!(fired.len(), 200);
        for (i, earliest, _, at) in fired.iter() {
            assert!(
                at >= earliest,
                "timer {i} fired {:?} early",
                *earliest - *at
            );
        }
        // a before b: a's deadline, rounded up to the wheel's ms, is at most b's.
        let ms = Duration::from_millis(1);
        for w in fired.windows(2) {
            let ((ia, earliest_a, _, _), (ib, _, latest_b, _)) = (w[0], w[1]);
            assert!(
                earliest_a < latest_b + ms,
                "timer {ia} fired before {ib}, whose deadline came {:?} earlier",
                earliest_a - latest_b
            );
        }
    });
}

/// An interval re-arms, and its own callback can clear it.
#[test]
fn interval_rearms_and_clears_itself() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let count = Rc::new(Cell::new(0));
        let c = count.clone();
        let t = lp.set_interval(Duration::from_millis(5), move |lp, me| {
            c.set(c.get() + 1);
            if c.get() == 5 {
                assert!(lp.clear_timer(me));
            }
        });
        let start = Instant::now();
        lp.run(RunMode::Default).unwrap();
        assert_eq!(count.get(), 5);
        assert!(start.elapsed() >= Duration::from_millis(25));
        assert!(
            !lp.clear_timer(t),
            "a cleared timer cannot be cleared again"
        );
    });
}

/// Huge timeouts saturate instead of overflowing: the loop waits on them (here until
/// another thread wakes it) without a panic, and they clear normally.
#[test]
fn huge_timeouts_saturate() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let far = lp.set_timeout(Duration::from_secs(1 << 40), |_, _| panic!("fired"));
        let never = lp.set_timeout(Duration::MAX, |_, _| panic!("fired"));
        let (_, sender) = lp.async_handle(move |lp, me| {
            assert!(lp.clear_timer(far) && lp.clear_timer(never));
            lp.close(me);
        });
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            sender.send();
        });
        assert!(!lp.run(RunMode::Default).unwrap());
        waker.join().unwrap();
    });
}

/// Immediates run after poll in the same tick, before the next tick's timers; an
/// immediate queued by an immediate waits for the next check phase.
#[test]
fn immediates_run_after_poll_before_next_timers() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        lp.set_timeout(Duration::ZERO, move |lp, _| {
            l.borrow_mut().push("timer 1");
            let l2 = l.clone();
            lp.set_timeout(Duration::ZERO, move |_, _| l2.borrow_mut().push("timer 2"));
            let l3 = l.clone();
            lp.set_immediate(move |lp, _| {
                l3.borrow_mut().push("immediate 1");
                let l4 = l3.clone();
                lp.set_immediate(move |_, _| l4.borrow_mut().push("immediate 2"));
            });
        });
        lp.run(RunMode::Default).unwrap();
        assert_eq!(
            *log.borrow(),
            ["timer 1", "immediate 1", "timer 2", "immediate 2"]
        );
    });
}

/// A 0 ms timer started from a timer callback fires in the next timers pass, not the same
/// one: the check phase (an immediate queued beside it) comes between, while the sibling
/// already due in the batch runs before both.
#[test]
fn zero_timer_from_a_timer_fires_next_tick() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        lp.set_timeout(Duration::ZERO, move |lp, _| {
            l.borrow_mut().push("first");
            let l2 = l.clone();
            lp.set_timeout(Duration::ZERO, move |_, _| {
                l2.borrow_mut().push("started by first")
            });
            let l3 = l.clone();
            lp.set_immediate(move |_, _| l3.borrow_mut().push("immediate"));
        });
        let l = log.clone();
        lp.set_timeout(Duration::ZERO, move |_, _| l.borrow_mut().push("sibling"));
        lp.run(RunMode::Default).unwrap();
        assert_eq!(
            *log.borrow(),
            ["first", "sibling", "immediate", "started by first"]
        );
    });
}

/// A callback may clear another timer due in the same pass, and close its own interval.
#[test]
fn callbacks_may_clear_timers_due_in_the_same_pass() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let fired = Rc::new(RefCell::new(Vec::new()));
        let victim = Rc::new(Cell::new(None));
        let (f, v) = (fired.clone(), victim.clone());
        lp.set_timeout(Duration::from_millis(10), move |lp, _| {
            f.borrow_mut().push("first");
            assert!(
                lp.clear_timer(v.get().unwrap()),
                "the second timer is still pending"
            );
            // Reuse the freed wheel slot at once: must not disturb anything.
            let f2 = f.clone();
            lp.set_timeout(Duration::from_millis(1), move |_, _| {
                f2.borrow_mut().push("new")
            });
        });
        let f = fired.clone();
        victim.set(Some(
            lp.set_timeout(Duration::from_millis(10), move |_, _| {
                f.borrow_mut().push("victim")
            }),
        ));
        let f = fired.clone();
        lp.set_interval(Duration::from_millis(3), move |lp, me| {
            f.borrow_mut().push("interval");
            lp.close(me);
        });
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*fired.borrow(), ["interval", "first", "new"]);
    });
}

/// The trace names the rule that chose each poll timeout and why the loop exits. Each
/// line below comes from a tick whose place in the order is forced (an immediate first,
/// the timer it starts, then the exit), not from when the scheduler lets us run.
#[test]
fn trace_explains_timeouts_and_exit() {
    on_every_backend(|b| {
        let (mut lp, buf) = traced_loop(b);
        let timer = Rc::new(Cell::new(None));
        let t = timer.clone();
        lp.set_immediate(move |lp, _| {
            t.set(Some(lp.set_timeout(Duration::from_millis(100), |_, _| {})));
        });
        let i = lp.set_interval(Duration::from_secs(600), |_, _| {});
        lp.unref_handle(i);
        lp.run(RunMode::Default).unwrap();
        let text = buf.text();
        let timer = looplab::Handle::from(timer.get().unwrap());
        let expected = [
            "(1 immediates)".to_string(),
            "alive: ref'd: 1 timer".to_string(),
            format!("(next timer {timer} due in"),
            format!("timers fired {timer}"),
            "exit: nothing ref'd is active (unref'd, not holding the loop: 1 timer)".to_string(),
        ];
        let mut from = 0;
        for e in &expected {
            let at = text[from..].find(e.as_str());
            assert!(at.is_some(), "{e:?} missing, or out of order, in:\n{text}");
            from += at.unwrap_or(0) + e.len();
        }
    });
}

/// Late timers are measured: a callback that blocks makes the next timer late, and the
/// lateness shows however the ticks fall (the sleep alone makes it at least 25 ms).
#[test]
fn metrics_count_ticks_and_lateness() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        lp.set_timeout(Duration::from_millis(1), |_, _| {
            std::thread::sleep(Duration::from_millis(30))
        });
        lp.set_timeout(Duration::from_millis(5), |_, _| {});
        lp.run(RunMode::Default).unwrap();
        let m = lp.metrics();
        assert_eq!(m.timers_fired, 2);
        assert!(m.timer_lateness_max >= Duration::from_millis(25), "{m:?}");
        assert!(m.timer_lateness_mean <= m.timer_lateness_max, "{m:?}");
        assert!(m.ticks >= 1 && m.handles == 0, "{m:?}");
    });
}
