//! The steward with callbacks (`Steward::watch_handles`): a ward of loop handles is
//! closed when it misses its deadline and opened again, at most the bound of restarts;
//! `stop` ends the watch; `done` is called exactly once; nothing is left on the loop.

mod util;

use looplab::steward::Steward;
use looplab::{Loop, RunMode};
use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::Duration;
use util::trace::{assert_in_order, traced_loop};
use util::{new_loop, on_every_backend};

const GUARD: Duration = Duration::from_secs(30);
/// Far above the beats' 20 ms spacing: a late timer on a busy machine is not a wedge.
const DEADLINE: Duration = Duration::from_millis(250);

/// An unref'd guard timer, returned so the checks can leave it out.
fn guard(lp: &mut Loop) -> looplab::Timer {
    let t = lp.set_timeout(GUARD, |lp, _| {
        panic!("still waiting: {}", lp.explain_alive())
    });
    lp.unref_handle(t);
    t
}

fn left_but(lp: &Loop, guard: looplab::Timer) -> Vec<looplab::HandleInfo> {
    let g: looplab::Handle = guard.into();
    lp.handles().into_iter().filter(|h| h.handle != g).collect()
}

type Outcome = Rc<RefCell<Vec<io::Result<u32>>>>;

/// A ward of one interval that beats twice, then keeps running without beating: each
/// time the steward closes it and opens a new one, twice (its bound), then gives up.
/// The loop then exits by itself: no wedged interval and no steward timer is left; the
/// trace tells each step.
#[test]
fn callbacks_a_wedged_ward_is_closed_and_restarted_at_most_its_bound() {
    on_every_backend(|b| {
        let (mut lp, trace) = traced_loop(b);
        let g = guard(&mut lp);
        let (starts, outcome): (Rc<RefCell<u32>>, Outcome) = Default::default();
        let (s, o) = (starts.clone(), outcome.clone());
        Steward::new("interval")
            .deadline(DEADLINE)
            .max_restarts(2, Duration::from_secs(60))
            .backoff(Duration::from_millis(10), Duration::from_millis(40))
            .watch_handles(
                &mut lp,
                move |lp, hb| {
                    *s.borrow_mut() += 1;
                    let mut beats = 0;
                    let t = lp.set_interval(Duration::from_millis(20), move |_, _| {
                        beats += 1;
                        if beats <= 2 {
                            hb.beat();
                        }
                    });
                    Ok(vec![t.into()])
                },
                move |_, r| o.borrow_mut().push(r),
            );
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*starts.borrow(), 3, "the first run and 2 restarts");
        let mut all: Vec<_> = outcome.borrow_mut().drain(..).collect();
        assert_eq!(all.len(), 1, "done is called once: {all:?}");
        let err = all.remove(0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains("gave up: 2 restart(s)"), "{err}");
        assert!(left_but(&lp, g).is_empty(), "{:?}", lp.handles());
        let steps = [
            "steward \"interval\": ward started (run 1)",
            "ward missed its heartbeat (silent ",
            "stopped; restart 1/2 in 10 ms",
            "ward started (run 2)",
            "restart 2/2 in 20 ms",
            "ward started (run 3)",
            "giving up",
        ];
        assert_in_order(&trace.text(), &steps.map(String::from));
    });
}

/// A healthy ward runs until `stop`: then its handles close, `done` gets `Ok(0)`, once.
#[test]
fn callbacks_stop_ends_the_watch_once() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let g = guard(&mut lp);
        let outcome: Outcome = Default::default();
        let o = outcome.clone();
        let watched = Steward::new("healthy").deadline(DEADLINE).watch_handles(
            &mut lp,
            |lp, hb| {
                Ok(vec![lp
                    .set_interval(Duration::from_millis(20), move |_, _| hb.beat())
                    .into()])
            },
            move |_, r| o.borrow_mut().push(r),
        );
        let w = watched.clone();
        lp.set_timeout(DEADLINE * 3, move |lp, _| {
            w.stop(lp);
            w.stop(lp); // a second stop does nothing
        });
        lp.run(RunMode::Default).unwrap();
        let got: Vec<u32> = outcome.borrow_mut().drain(..).map(Result::unwrap).collect();
        assert_eq!(got, [0]);
        assert_eq!(watched.restarts(), 0);
        assert!(left_but(&lp, g).is_empty(), "{:?}", lp.handles());
    });
}

/// `start` failing counts as a failure: restarted up to the bound, then the error
/// carries the ward's own error kind.
#[test]
fn callbacks_a_ward_that_cannot_start_is_given_up_on() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let g = guard(&mut lp);
        let (starts, outcome): (Rc<RefCell<u32>>, Outcome) = Default::default();
        let (s, o) = (starts.clone(), outcome.clone());
        Steward::new("no db")
            .max_restarts(3, Duration::from_secs(60))
            .backoff(Duration::from_millis(1), Duration::from_millis(4))
            .watch_handles(
                &mut lp,
                move |_, _| {
                    *s.borrow_mut() += 1;
                    Err(io::Error::new(io::ErrorKind::ConnectionRefused, "db down"))
                },
                move |_, r| o.borrow_mut().push(r),
            );
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*starts.borrow(), 4);
        let mut all: Vec<_> = outcome.borrow_mut().drain(..).collect();
        assert_eq!(all.len(), 1, "done is called once: {all:?}");
        let err = all.remove(0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
        assert!(
            err.to_string().contains("last: ward failed: db down"),
            "{err}"
        );
        assert!(left_but(&lp, g).is_empty(), "{:?}", lp.handles());
    });
}

/// `stop` called from inside `start` (its second run: the first wedged) ends the watch
/// there: the handle that run opened is closed, no timer is armed, `done` is called
/// once with the one restart.
#[test]
fn callbacks_stop_from_inside_start() {
    let mut lp = Loop::new().unwrap();
    let g = guard(&mut lp);
    let outcome: Outcome = Default::default();
    let o = outcome.clone();
    let me: Rc<RefCell<Option<looplab::steward::Stewarded>>> = Default::default();
    let m = me.clone();
    let w = Steward::new("quits")
        .deadline(Duration::from_millis(50))
        .backoff(Duration::from_millis(1), Duration::from_millis(1))
        .watch_handles(
            &mut lp,
            move |lp, _| {
                // Never beats: the first run wedges.
                let t = lp.set_interval(Duration::from_millis(10), |_, _| {});
                if let Some(w) = m.borrow().as_ref() {
                    w.stop(lp);
                }
                Ok(vec![t.into()])
            },
            move |_, r| o.borrow_mut().push(r),
        );
    *me.borrow_mut() = Some(w.clone());
    lp.run(RunMode::Default).unwrap();
    let got: Vec<u32> = outcome.borrow_mut().drain(..).map(Result::unwrap).collect();
    assert_eq!(got, [1]);
    *me.borrow_mut() = None; // the watch and its `start` hold each other
    assert!(left_but(&lp, g).is_empty(), "{:?}", lp.handles());
}
