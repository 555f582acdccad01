//! # Chapter 1, Try 3 — one slow callback makes every timer late
//!
//! `examples/01_timers.rs` without its 80 ms timer, and with
//! `std::thread::sleep(Duration::from_millis(40))` inside the interval's callback.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example ch01_try3`
//!
//! **Look for** the two 50 ms timeouts printing at about 70 ms instead of 50: they were
//! due while the interval's first run (at 30 ms) slept until 70. The interval re-arms
//! from the tick's cached time before its callback runs, so its next deadline (60 ms) has
//! passed by the time the callback returns: from then on the loop never sleeps (after the
//! tick of the overdue timeouts, `next timer #0.1`, every tick is `poll 0ms (next timer
//! #2.3 due in 0.0ms)`), and the runs follow each other
//! 40 ms apart, at about 30, 70, 110 and 150 ms. The trace names the culprit on each of
//! its ticks, `slow callback: timer #2.3 took 40.1ms`, and the final line's worst
//! lateness is 20 ms or more. One thread runs one callback at a time: chapter 6 moves
//! such work to the pool.

use looplab::{Loop, RunMode};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch01_try3: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let mut lp = Loop::new()?;
    let start = Instant::now();
    let at = move || format!("{:>4} ms", start.elapsed().as_millis());

    lp.set_timeout(Duration::from_millis(50), move |_, _| {
        println!("{} first 50 ms timeout", at())
    });
    lp.set_timeout(Duration::from_millis(50), move |_, _| {
        println!("{} second 50 ms timeout", at())
    });
    let mut runs = 0;
    lp.set_interval(Duration::from_millis(30), move |lp, me| {
        runs += 1;
        println!("{} interval run {runs}", at());
        // Try 3: the added line. The loop's only thread sleeps here.
        std::thread::sleep(Duration::from_millis(40));
        if runs == 4 {
            lp.clear_timer(me);
        }
    });

    lp.run(RunMode::Default)?;
    let m = lp.metrics();
    println!(
        "done: {} timers fired, worst lateness {:.2}ms",
        m.timers_fired,
        m.timer_lateness_max.as_secs_f64() * 1000.0
    );
    Ok(())
}
