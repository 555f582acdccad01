//! # 01 — Timers on a timing wheel
//!
//! **What it shows.** Timeouts and an interval on one loop. Nothing else is running, so
//! between timers the loop sleeps in the kernel (epoll_wait) for exactly as long as the
//! timing wheel says the next timer is away, rounded up to a whole millisecond. Every
//! timer callback gets the loop and its own `Timer`, so the interval stops itself with
//! `lp.clear_timer(me)`.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example 01_timers`
//!
//! **Look for** in the trace (stderr), three lines per tick, printed as it happens, with
//! the program's own output between them. Handles are shown as `#slot.generation`.
//! - `tick 1 | sleeping up to 30.9ms (next timer #2.3 due in 30.9ms)`: the poll timeout,
//!   and the rule that chose it: the next timer (the interval); then
//!   `tick 1 | poll waited 31.1ms`: how long the kernel really kept us asleep;
//! - `tick 2 done | timers fired #0.1 #1.2`: timers run at the end of the tick, and two
//!   with the same deadline fire in the order they were started;
//! - `timers fired #3.4`, then on the next tick `poll 0ms (next timer #3.5 due in 0.0ms)`
//!   and `timers fired #3.5`: the 0 ms timer started by the 80 ms one waits for the next
//!   tick. It took slot 3 with a new generation: a one-shot timer is gone once fired;
//! - the last line, `exit: nothing ref'd is active`: why `run` returned.
//!
//! On stdout: the interval runs four times, at about 30, 60, 90 and 120 ms, then is gone.
//!
//! **In production** you would not print from timer callbacks, and you would keep the
//! `Timer` of a long-lived timer (or close it from its own callback) so shutdown can
//! clear it.

use looplab::{Loop, RunMode};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("01_timers: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let mut lp = Loop::new()?;
    let start = Instant::now();
    let at = move || format!("{:>4} ms", start.elapsed().as_millis());

    // Two timers with the same deadline: they fire in the order they were started.
    lp.set_timeout(Duration::from_millis(50), move |_, _| {
        println!("{} first 50 ms timeout", at())
    });
    lp.set_timeout(Duration::from_millis(50), move |_, _| {
        println!("{} second 50 ms timeout", at())
    });

    // An interval that clears itself after four runs: its callback is handed its own
    // `Timer`, as libuv's timer_cb is handed its uv_timer_t.
    let mut runs = 0;
    lp.set_interval(Duration::from_millis(30), move |lp, me| {
        runs += 1;
        println!("{} interval run {runs}", at());
        if runs == 4 {
            lp.clear_timer(me);
        }
    });

    // A timer that starts another from its callback: the new one waits for a later tick,
    // never the pass that is running now.
    lp.set_timeout(Duration::from_millis(80), move |lp, _| {
        println!("{} 80 ms timeout starts a 0 ms one", at());
        lp.set_timeout(Duration::ZERO, move |_, _| {
            println!("{} ...which fires on the next tick", at())
        });
    });

    lp.run(RunMode::Default)?;
    let m = lp.metrics();
    println!(
        "done: {} ticks, {} timers fired, worst lateness {}, {} asleep in poll",
        m.ticks,
        m.timers_fired,
        ms(m.timer_lateness_max),
        ms(m.idle)
    );
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}
