//! # Chapter 5, Try 1 — ref and unref are flags, not counters
//!
//! `examples/02_when_does_the_loop_exit.rs` with the interval unref'd twice, then ref'd
//! once. Were they counters, the interval would still be unref'd once; they are flags,
//! so one `ref_handle` makes it hold the loop again, exactly as if `unref_handle` had
//! never been called (the first half of the Try: remove the unref).
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example ch05_try1`; stop it with Ctrl-C.
//!
//! **Look for** `has_ref after unref, unref, ref: true`; then the 200 ms timeout fires and
//! the program goes on: the `done` lines end with `alive: ref'd: 1 timer`, the heartbeat
//! every 50 ms, for ever. Nothing ref'd is left but the interval, and it is enough.

use looplab::{Loop, RunMode};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch05_try1: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let mut lp = Loop::new()?;
    let start = Instant::now();

    let heartbeat = lp.set_interval(Duration::from_millis(50), move |lp, _| {
        let at = lp.now().duration_since(start).as_millis();
        println!("{at:>4} ms heartbeat (ref'd again: it holds the loop)");
    });
    // Try 1: unref twice, ref once.
    lp.unref_handle(heartbeat);
    lp.unref_handle(heartbeat);
    lp.ref_handle(heartbeat);
    println!("has_ref after unref, unref, ref: {}", lp.has_ref(heartbeat));

    lp.set_timeout(Duration::from_millis(200), move |lp, _| {
        let at = lp.now().duration_since(start).as_millis();
        println!("{at:>4} ms the ref'd 200 ms timeout fired; the interval still holds the loop");
    });

    lp.run(RunMode::Default)?;
    println!("run returned (it does not, until you stop it)");
    Ok(())
}
