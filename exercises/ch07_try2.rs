//! # Chapter 7, Try 2 — a ref'd signal handle holds the loop
//!
//! `examples/06_signals.rs` with the timers removed and `lp.ref_handle(sigint)` on the
//! handle `lp.signal` returned. Nothing else is active, yet the loop runs on: a ref'd
//! signal handle holds it, waiting for the next Ctrl-C, and the next. Ctrl-C no longer
//! stops the program, because its SIGINT is now handled (by the callback).
//!
//! **Stop it** from another terminal: `kill -TERM $(pgrep -f ch07_try2)` (nothing
//! handles SIGTERM here, so it ends the process), or press Ctrl-\ (SIGQUIT).
//!
//! With `-- --close-self` the callback closes its own handle, its second argument
//! (`lp.close(me)`): one Ctrl-C, and the loop has nothing left to hold it.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example ch07_try2`, press Ctrl-C a few
//! times, then stop it as above; then `cargo run --example ch07_try2 -- --close-self`.
//!
//! **Look for** `got signal 2 (1 so far); still running: a ref'd signal handle holds the
//! loop` on each Ctrl-C, and in the trace `alive: ref'd: 1 signal`. With `--close-self`:
//! `got signal 2; closing my own handle`, then `loop exited`.

use looplab::{Loop, RunMode};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch07_try2: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let close_self = std::env::args().any(|a| a == "--close-self");
    let mut lp = Loop::new()?;
    let mut count = 0;
    let sigint = lp.signal(libc::SIGINT, move |lp, me, signum| {
        count += 1;
        if close_self {
            println!("got signal {signum}; closing my own handle");
            lp.close(me);
        } else {
            println!(
                "got signal {signum} ({count} so far); still running: a ref'd signal handle holds the loop"
            );
        }
    })?;
    // Try 2: the added line.
    lp.ref_handle(sigint);
    println!("waiting for Ctrl-C (pid {})", std::process::id());
    lp.run(RunMode::Default)?;
    println!("loop exited");
    Ok(())
}
