//! What `metrics()` counts: idle time (only time the loop could have blocked) and timer
//! lateness (from the clock as each callback starts). The figures asserted are floors
//! that the test's own sleeps guarantee, never what a quiet machine would give.

mod util;

use looplab::{Loop, RunMode};
use std::time::Duration;
use util::{new_loop, on_every_backend};

/// Idle time counts only polls that could block: a stream of zero-timeout polls (NoWait
/// runs, ticks kept busy by immediates) adds nothing; one wait for a timer adds to it.
/// Issue 11, semantic 8.
#[test]
fn idle_grows_only_with_polls_that_could_block() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let guard = lp.set_timeout(Duration::from_secs(60), |_, _| {});
        for _ in 0..200 {
            lp.run(RunMode::NoWait).unwrap();
        }
        fn chain(lp: &mut Loop, left: u32) {
            if left > 0 {
                lp.set_immediate(move |lp, _| chain(lp, left - 1));
            }
        }
        chain(&mut lp, 200);
        lp.clear_timer(guard);
        lp.run(RunMode::Default).unwrap();
        let busy = lp.metrics();
        assert!(busy.ticks >= 400, "{busy:?}");
        assert_eq!(
            busy.idle,
            Duration::ZERO,
            "zero-timeout polls counted as idle"
        );
        lp.set_timeout(Duration::from_millis(20), |_, _| {});
        lp.run(RunMode::Default).unwrap();
        assert!(
            lp.metrics().idle > Duration::ZERO,
            "a wait for a timer is idle time"
        );
    });
}

/// Lateness is measured as each timer's callback starts: a 1 ms timer that sleeps 30 ms,
/// then a 5 ms timer in the same batch (both due before the loop first runs), shows the
/// second one's real lateness (at least 25 ms), not the batch's. Issue 11, semantic 9.
#[test]
fn lateness_counts_a_slow_callback_earlier_in_the_same_batch() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        lp.set_timeout(Duration::from_millis(1), |_, _| {
            std::thread::sleep(Duration::from_millis(30))
        });
        lp.set_timeout(Duration::from_millis(5), |_, _| {});
        std::thread::sleep(Duration::from_millis(10));
        lp.run(RunMode::Default).unwrap();
        let m = lp.metrics();
        assert_eq!(m.timers_fired, 2);
        assert!(
            m.timer_lateness_max >= Duration::from_millis(25),
            "the second timer started 30 ms after the batch: {m:?}"
        );
    });
}
