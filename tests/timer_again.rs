//! Restarting a timer (`timer_again`, libuv's `uv_timer_again`, Node's `refresh()`) and
//! changing a period (`set_repeat`), on every backend. What is asserted is order and
//! "never early", never how soon after its deadline a timer fires.

mod util;

use looplab::{RunMode, Timer};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::{new_loop, on_every_backend};

/// The idle-timeout pattern: a 100 ms one-shot refreshed by a 30 ms interval three times
/// fires once, and never earlier than 100 ms after the last refresh. Once it has fired,
/// it cannot be restarted (it is gone, as a fired `set_timeout` is).
#[test]
fn again_on_a_timeout_pushes_it_back() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let fired = Rc::new(RefCell::new(Vec::<Instant>::new()));
        let f = fired.clone();
        let timeout = lp.set_timeout(Duration::from_millis(100), move |_, _| {
            f.borrow_mut().push(Instant::now())
        });
        let last_refresh = Rc::new(Cell::new(Instant::now()));
        let (refreshes, lr) = (Rc::new(Cell::new(0)), last_refresh.clone());
        let r = refreshes.clone();
        lp.set_interval(Duration::from_millis(30), move |lp, me| {
            assert!(
                lp.timer_again(timeout),
                "the timeout fired before its refresh"
            );
            lr.set(Instant::now());
            r.set(r.get() + 1);
            if r.get() == 3 {
                lp.clear_timer(me);
            }
        });
        lp.run(RunMode::Default).unwrap();
        let fired = fired.borrow();
        assert_eq!(fired.len(), 1);
        let waited = fired[0] - last_refresh.get();
        assert!(
            waited >= Duration::from_millis(100),
            "fired early: {waited:?}"
        );
        assert!(!lp.timer_again(timeout), "a fired timeout was restarted");
    });
}

/// `again` on an interval restarts its period from now; the interval goes on after.
#[test]
fn again_on_an_interval_restarts_its_period() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let fired = Rc::new(RefCell::new(Vec::<Instant>::new()));
        let f = fired.clone();
        let interval = lp.set_interval(Duration::from_millis(80), move |lp, me| {
            f.borrow_mut().push(Instant::now());
            if f.borrow().len() == 2 {
                lp.clear_timer(me);
            }
        });
        let again_at = Rc::new(Cell::new(None));
        let a = again_at.clone();
        lp.set_timeout(Duration::from_millis(40), move |lp, _| {
            assert!(lp.timer_again(interval));
            a.set(Some(Instant::now()));
        });
        lp.run(RunMode::Default).unwrap();
        let (fired, again_at) = (fired.borrow(), again_at.get().unwrap());
        assert_eq!(fired.len(), 2);
        assert!(fired[0] - again_at >= Duration::from_millis(80), "early");
        assert!(fired[1] - fired[0] >= Duration::from_millis(80), "early");
    });
}

/// `set_repeat` from a callback changes the period from the *next* re-arm, as in libuv:
/// the firing already scheduled keeps the old period. A is a 20 ms interval that sets
/// its period to 500 ms in its first callback; B fires once at 300 ms. So A fires
/// again before B (its old 20 ms period), and a third time only after B.
#[test]
fn set_repeat_takes_effect_at_the_next_rearm() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        lp.set_interval(Duration::from_millis(20), move |lp, me| {
            l.borrow_mut().push("A");
            match l.borrow().iter().filter(|&&e| e == "A").count() {
                1 => {
                    assert_eq!(lp.timer_repeat(me), Some(Duration::from_millis(20)));
                    assert!(lp.set_repeat(me, Duration::from_millis(500)));
                    assert_eq!(lp.timer_repeat(me), Some(Duration::from_millis(500)));
                }
                3 => {
                    lp.clear_timer(me);
                }
                _ => {}
            }
        });
        let l = log.clone();
        lp.set_timeout(Duration::from_millis(300), move |_, _| {
            l.borrow_mut().push("B")
        });
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*log.borrow(), ["A", "A", "B", "A"]);
    });
}

/// A one-shot timer has no period to change; a stale timer is refused by all three.
#[test]
fn set_repeat_refuses_a_timeout_and_stale_timers() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let t = lp.set_timeout(Duration::from_millis(10), |_, _| {});
        assert!(!lp.set_repeat(t, Duration::from_millis(5)));
        assert_eq!(lp.timer_repeat(t), None);
        let i = lp.set_interval(Duration::from_millis(10), |_, _| {});
        assert!(lp.set_repeat(i, Duration::ZERO), "a zero period is 1 ms");
        assert_eq!(lp.timer_repeat(i), Some(Duration::from_millis(1)));
        lp.clear_timer(i);
        assert!(!lp.set_repeat(i, Duration::from_millis(5)));
        assert!(!lp.timer_again(i));
        assert_eq!(lp.timer_repeat(i), None);
        lp.run(RunMode::Default).unwrap();
    });
}

/// Two timers due in the same batch: the first restarts the second, which then does not
/// fire in this batch (the restart set a new deadline), but once, a full delay after the
/// restart. Both are made overdue before `run`, so they are collected together.
#[test]
fn again_from_an_earlier_timer_of_the_batch_postpones_a_due_one() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let second: Rc<Cell<Option<Timer>>> = Rc::default();
        let restarted_at = Rc::new(Cell::new(None));
        let (s, r) = (second.clone(), restarted_at.clone());
        lp.set_timeout(Duration::from_millis(5), move |lp, _| {
            assert!(lp.timer_again(s.get().unwrap()));
            r.set(Some(Instant::now()));
        });
        let fired = Rc::new(RefCell::new(Vec::new()));
        let f = fired.clone();
        second.set(Some(
            lp.set_timeout(Duration::from_millis(6), move |_, _| {
                f.borrow_mut().push(Instant::now())
            }),
        ));
        std::thread::sleep(Duration::from_millis(20));
        lp.run(RunMode::Default).unwrap();
        let fired = fired.borrow();
        assert_eq!(fired.len(), 1, "the restarted timer fired twice, or never");
        let after = fired[0] - restarted_at.get().unwrap();
        assert!(
            after >= Duration::from_millis(6),
            "fired {after:?} after restart"
        );
    });
}
