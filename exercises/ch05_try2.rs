//! # Chapter 5, Try 2 — an async handle holds the loop
//!
//! `examples/02_when_does_the_loop_exit.rs` with
//! `let (a, _sender) = lp.async_handle(|_, _| {});` added. An async handle is active (any
//! thread may send to it at any time) and ref'd, so the loop cannot know that nobody will:
//! it waits for ever. `lp.unref_handle(a)` (here: `-- --unref`) says "do not wait for
//! this one", and the program ends as example 02 does.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example ch05_try2` (stop it with Ctrl-C), then
//! `LOOPLAB_TRACE=1 cargo run --example ch05_try2 -- --unref`.
//!
//! **Look for** the end of the trace's `done` lines once the timeout has fired:
//! `alive: ref'd: 1 async; unref'd: 1 timer`. The loop still wakes every 50 ms for the
//! unref'd heartbeat (an unref'd timer still sets the poll timeout; it only does not hold
//! the loop), and it never exits. The program prints `explain_alive()` before `run`:
//! `ref'd: 1 timer, 1 async; unref'd: 1 timer`. With `--unref`: `exit: nothing ref'd is
//! active (unref'd, not holding the loop: 1 timer, 1 async)`.

use looplab::{Loop, RunMode};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch05_try2: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let mut lp = Loop::new()?;
    let start = Instant::now();

    let heartbeat = lp.set_interval(Duration::from_millis(50), move |lp, _| {
        let at = lp.now().duration_since(start).as_millis();
        println!("{at:>4} ms heartbeat (the unref'd interval)");
    });
    lp.unref_handle(heartbeat);
    lp.set_timeout(Duration::from_millis(200), move |lp, _| {
        let at = lp.now().duration_since(start).as_millis();
        println!("{at:>4} ms the ref'd 200 ms timeout fired");
    });

    // Try 2: the added line. Keep the sender alive: it is what another thread would hold.
    let (a, _sender) = lp.async_handle(|_, _| {});
    if std::env::args().any(|a| a == "--unref") {
        lp.unref_handle(a);
    }

    println!("before run: {}", lp.explain_alive());
    lp.run(RunMode::Default)?;
    println!("after run:  {}", lp.explain_alive());
    Ok(())
}
