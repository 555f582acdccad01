//! # Chapter 1, Try 1 — an immediate keeps the first poll from sleeping
//!
//! `examples/01_timers.rs` without its 80 ms timer and its totals line, and with one line
//! added before `lp.run`: `lp.set_immediate(|_, _| println!("immediate"));`
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example ch01_try1`
//!
//! **Look for** the first tick of the trace: `tick 1 | poll 0ms (1 immediates)` instead
//! of `sleeping up to ...`. An immediate waits for the check phase, which comes right
//! after the poll, so the poll must not block; then `tick 1 done | immediates 1`, and
//! from tick 2 on the trace is that of example 01's two timeouts and its interval.

use looplab::{Loop, RunMode};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch01_try1: {e}");
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
        if runs == 4 {
            lp.clear_timer(me);
        }
    });

    // Try 1: the added line.
    lp.set_immediate(move |_, _| println!("{} immediate", at()));

    lp.run(RunMode::Default)?;
    Ok(())
}
