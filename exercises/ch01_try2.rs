//! # Chapter 1, Try 2 — how late is a 1 ms interval?
//!
//! `examples/01_timers.rs` with the interval at 1 ms, cleared after 1000 runs instead of
//! 4 (the other timers removed, so nothing else is measured).
//!
//! **Run it.** `cargo run --release --example ch01_try2`
//!
//! **Look for** the two figures side by side: 1000 runs take about 2000 ms, not 1000
//! (the period is about 2 ms), yet the worst lateness is under a millisecond or so on a quiet machine (a few ms when
//! other work shares the cores). Both
//! are true, because time is rounded up twice, and lateness is measured from the
//! rounded deadline:
//! 1. the interval re-arms at `now + 1 ms`, and `now` falls inside a millisecond (say
//!    at 5.3 ms): the wheel counts whole milliseconds and rounds the deadline UP, to 7,
//!    so that it never fires early;
//! 2. the poll timeout to that deadline (7 - 5.3 = 1.7 ms) is rounded UP to whole
//!    milliseconds for `epoll_wait`: 2 ms. The loop wakes at about 7.3 ms, 0.3 ms after
//!    the deadline: that 0.3 ms is the "lateness". The next deadline is 7.3 + 1, rounded
//!    up: 9.
//!
//! So a 1 ms interval fires every 2 ms, each time a fraction of a millisecond "late".
//! Node rounds the same way (its timers are whole milliseconds too).

use looplab::{Loop, RunMode};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const RUNS: u32 = 1000;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch01_try2: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let mut lp = Loop::new()?;
    let start = Instant::now();
    let mut runs = 0;
    lp.set_interval(Duration::from_millis(1), move |lp, me| {
        runs += 1;
        if runs == RUNS {
            lp.clear_timer(me); // without this, the interval runs forever
        }
    });
    lp.run(RunMode::Default)?;
    let took = start.elapsed();
    let m = lp.metrics();
    println!(
        "{} runs of a 1 ms interval in {:.0} ms: one every {:.2} ms",
        m.timers_fired,
        took.as_secs_f64() * 1000.0,
        took.as_secs_f64() * 1000.0 / m.timers_fired.max(1) as f64
    );
    println!(
        "worst lateness {:.2} ms, mean {:.2} ms: late only against the rounded-up deadline",
        m.timer_lateness_max.as_secs_f64() * 1000.0,
        m.timer_lateness_mean.as_secs_f64() * 1000.0
    );
    Ok(())
}
