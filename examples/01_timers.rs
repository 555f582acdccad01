//! # 01 — Timers on a timing wheel
//!
//! **What it shows.** Timeouts and an interval on one loop. Nothing else is running, so
//! between timers the loop sleeps in the kernel (epoll_wait) for exactly as long as the
//! timing wheel says the next timer is away, rounded up to a whole millisecond.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example 01_timers`
//!
//! **Look for** in the trace (stderr), one line per tick:
//! - `poll 49.8ms (next timer #1 due in 49.8ms), waited 50.1ms`: the timeout was chosen
//!   by the "next timer" rule, and the kernel kept us about that long;
//! - `timers fired #0 #1`: timers with the same deadline fire in the order they started;
//! - the last line, `exit: nothing ref'd is active`: why `run` returned.
//!
//! **In production** you would not print from timer callbacks, and you would keep the
//! `Timer` ids of long-lived timers so you can `clear_timer` them on shutdown.

use looplab::{Loop, RunMode};
use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let mut lp = Loop::new()?;
    let start = Instant::now();
    let at = move || format!("{:>4} ms", start.elapsed().as_millis());

    // Two timers with the same deadline: they fire in the order they were started.
    lp.set_timeout(Duration::from_millis(50), move |_| {
        println!("{} first 50 ms timeout", at())
    });
    lp.set_timeout(Duration::from_millis(50), move |_| {
        println!("{} second 50 ms timeout", at())
    });

    // An interval that clears itself after four runs. The callback gets `&mut Loop`, so it
    // can act on the loop, including on its own timer.
    let mut runs = 0;
    let me = std::rc::Rc::new(std::cell::Cell::new(None));
    let me_inside = me.clone();
    let interval = lp.set_interval(Duration::from_millis(30), move |lp| {
        runs += 1;
        println!("{} interval run {runs}", at());
        if runs == 4 {
            if let Some(t) = me_inside.get() {
                lp.clear_timer(t);
            }
        }
    });
    me.set(Some(interval));

    // A timer that starts another from its callback: the new one waits for a later tick,
    // never the pass that is running now.
    lp.set_timeout(Duration::from_millis(80), move |lp| {
        println!("{} 80 ms timeout starts a 0 ms one", at());
        lp.set_timeout(Duration::ZERO, move |_| {
            println!("{} ...which fires on the next tick", at())
        });
    });

    lp.run(RunMode::Default)?;
    let m = lp.metrics();
    println!(
        "done: {} ticks, {} timers fired, worst lateness {:?}, {:?} asleep in poll",
        m.ticks, m.timers_fired, m.timer_lateness_max, m.idle
    );
    Ok(())
}
