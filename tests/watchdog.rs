//! The watchdog reports a callback that blocks the loop, and nothing on a healthy loop.

mod util;

use looplab::{Loop, RunMode};
use std::time::Duration;
use util::on_every_backend;

/// A timer callback that sleeps 300 ms is reported once, naming the timers phase.
#[test]
fn watchdog_reports_a_blocked_loop() {
    on_every_backend(|b| {
        let mut lp = Loop::builder()
            .backend(b)
            .watchdog(Duration::from_millis(100))
            .build()
            .unwrap();
        lp.set_timeout(Duration::from_millis(10), |_, _| {
            std::thread::sleep(Duration::from_millis(300))
        });
        lp.run(RunMode::Default).unwrap();
        let reports = lp.watchdog_reports();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(reports[0].contains("in the timers phase"), "{}", reports[0]);
        assert!(
            reports[0].contains("blocked the loop for"),
            "{}",
            reports[0]
        );
    });
}

/// A loop that waits in poll between short callbacks is never reported: ten firings of
/// an interval (counted, not timed), each a 2 ms callback, and no report.
#[test]
fn watchdog_is_silent_on_a_healthy_loop() {
    on_every_backend(|b| {
        let mut lp = Loop::builder()
            .backend(b)
            .watchdog(Duration::from_millis(100))
            .build()
            .unwrap();
        let runs = std::rc::Rc::new(std::cell::Cell::new(0));
        let r = runs.clone();
        lp.set_interval(Duration::from_millis(20), move |lp, me| {
            r.set(r.get() + 1);
            std::thread::sleep(Duration::from_millis(2));
            if r.get() == 10 {
                lp.clear_timer(me);
            }
        });
        lp.run(RunMode::Default).unwrap();
        assert_eq!(runs.get(), 10);
        assert!(
            lp.watchdog_reports().is_empty(),
            "{:?}",
            lp.watchdog_reports()
        );
    });
}
