//! # 02 — When does the loop exit? ref and unref
//!
//! **What it shows.** `run` returns when nothing *ref'd* is active. Here a ref'd 200 ms
//! timeout holds the loop; a 50 ms interval is unref'd with `lp.unref_handle(heartbeat)`
//! (Node's `setInterval(..).unref()`): it keeps firing while the loop runs for other
//! reasons, but it does not hold the loop. When the timeout fires, only the unref'd
//! interval is left, and the loop exits, with the interval still armed.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example 02_when_does_the_loop_exit`
//!
//! **Look for** at the end of each `done` line of the trace:
//! `alive: ref'd: 1 timer; unref'd: 1 timer` while the timeout is pending, then on the
//! last tick `timers fired #1.2 | exit: nothing ref'd is active (unref'd, not holding the
//! loop: 1 timer)`. The program prints `explain_alive()` before and after `run`: the same
//! answer as text.
//!
//! **In production** this is how a server lets a metrics interval or a signal watcher
//! run without keeping the process alive after the real work is done.

use looplab::{Loop, RunMode};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("02_when_does_the_loop_exit: {e}");
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
        println!("{at:>4} ms the ref'd 200 ms timeout fired: nothing ref'd is left");
    });

    println!("before run: {}", lp.explain_alive());
    let still_alive = lp.run(RunMode::Default)?;
    println!("after run:  {}", lp.explain_alive());
    println!(
        "run returned alive = {still_alive}; the interval is still armed: {}",
        lp.handles().len() == 1
    );
    Ok(())
}
