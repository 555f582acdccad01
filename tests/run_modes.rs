//! Run modes: Default runs until nothing holds the loop, Once runs one tick (blocking in
//! poll only if nothing else made progress), NoWait runs one tick that never blocks;
//! `stop()` ends a run after the current tick.

mod util;

use looplab::{Loop, RunMode};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::{new_loop, on_every_backend};

/// NoWait polls with a zero timeout even when a timer is far away: a hundred runs and
/// not a moment spent waiting in poll.
#[test]
fn nowait_never_blocks() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        lp.set_timeout(Duration::from_secs(10), |_, _| {});
        for _ in 0..100 {
            assert!(lp.run(RunMode::NoWait).unwrap());
        }
        let m = lp.metrics();
        assert_eq!(m.ticks, 100);
        assert_eq!(m.idle, Duration::ZERO, "a NoWait run waited in poll");
    });
}

/// Once blocks for one event (here a timer), never returns before it, and returns after
/// that tick: the later timer has not fired.
#[test]
fn once_returns_after_one_event() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let hits = Rc::new(Cell::new(0));
        let start = Instant::now();
        for ms in [30, 3000] {
            let h = hits.clone();
            lp.set_timeout(Duration::from_millis(ms), move |_, _| h.set(h.get() + 1));
        }
        assert!(
            lp.run(RunMode::Once).unwrap(),
            "the 3 s timer is still pending"
        );
        assert_eq!(hits.get(), 1);
        assert!(start.elapsed() >= Duration::from_millis(30));
    });
}

/// Once with an interval that came due twice over while nobody ran the loop: one firing,
/// and Once returns without waiting in poll (libuv returns at once after one call).
/// Issue 11, semantic 1.
#[test]
fn once_fires_a_late_interval_once_and_returns_without_blocking() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let fired = Rc::new(Cell::new(0));
        let f = fired.clone();
        lp.set_interval(Duration::from_millis(10), move |_, _| f.set(f.get() + 1));
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            lp.run(RunMode::Once).unwrap(),
            "the interval holds the loop"
        );
        assert_eq!(fired.get(), 1, "Once fired the interval more than once");
        assert_eq!(
            lp.metrics().idle,
            Duration::ZERO,
            "Once waited in poll after the timers made progress"
        );
    });
}

/// Once does not block in poll when the pending phase already made progress: a deferred
/// callback may have done what the caller was waiting for. Here the progress is a
/// cancelled job's result, which is delivered through the pending phase; had Once gone on
/// to sleep, only job A's end (which waits for us) could have woken it.
#[test]
fn once_does_not_sleep_after_pending_progress() {
    on_every_backend(|b| {
        let mut lp = Loop::builder()
            .backend(b)
            .threadpool_size(1)
            .build()
            .unwrap();
        let (release, blocked) = crossbeam_channel::bounded::<()>(0);
        let a_done = Rc::new(Cell::new(false));
        let a = a_done.clone();
        // The only worker takes A first (FIFO) and blocks in it, so B stays queued.
        lp.queue_work(
            move || blocked.recv_timeout(Duration::from_secs(10)).is_ok(),
            move |_, _, _| a.set(true),
        );
        let got = Rc::new(Cell::new(false));
        let g = got.clone();
        let b_job = lp.queue_work(|| (), move |_, _, r| g.set(r.is_err()));
        assert!(lp.cancel(b_job), "B was still queued behind A");
        assert!(lp.run(RunMode::Once).unwrap(), "A still holds the loop");
        assert!(got.get(), "B's cancellation was delivered in this tick");
        assert!(!a_done.get(), "Once slept in poll until A ended");
        release.send(()).unwrap();
        lp.run(RunMode::Default).unwrap();
        assert!(a_done.get());
    });
}

/// stop() from a callback ends run after the current tick; before run, run returns at
/// once without firing due timers.
#[test]
fn stop_from_a_callback_and_before_run() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let ticks = Rc::new(Cell::new(0));
        let t = ticks.clone();
        lp.set_interval(Duration::from_millis(1), move |lp, _| {
            t.set(t.get() + 1);
            if t.get() == 3 {
                lp.stop();
            }
        });
        assert!(
            lp.run(RunMode::Default).unwrap(),
            "the interval still holds the loop"
        );
        assert_eq!(ticks.get(), 3);
        std::thread::sleep(Duration::from_millis(5));
        lp.stop();
        assert!(lp.run(RunMode::Default).unwrap());
        assert_eq!(ticks.get(), 3, "stop() before run fires nothing");
    });
}
