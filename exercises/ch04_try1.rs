//! # Chapter 4, Try 1 — a timer an hour away
//!
//! `examples/01_timers.rs` with one more timer: `set_timeout(3600 s)`.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example ch04_try1`, and again with
//! `-- --unref`.
//!
//! **Look for** the poll timeouts while the near timers run: `sleeping up to 30.8ms (next
//! timer #2.3 ...)`, never an hour: the wheel's next deadline is the *earliest* one, so a
//! far timer costs nothing until it is next. When the near timers are done, the trace's
//! last line is `sleeping up to 3599864.8ms (next timer #3.4 due in 3599864.8ms)`: the
//! loop will sleep for an hour, because a ref'd timer holds it. That line is printed
//! *before* the sleep, so the program has not hung: it is waiting, and says for what.
//! Press Ctrl-C. With `--unref` the far timer is unref'd, and the run ends with the others:
//! `exit: nothing ref'd is active (unref'd, not holding the loop: 1 timer)`.

use looplab::{Loop, RunMode};
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch04_try1: {e}");
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
            println!("{} the near timers are done", at());
        }
    });

    // Try 1: the far timer.
    let far = lp.set_timeout(Duration::from_secs(3600), move |_, _| {
        println!("{} an hour has passed", at())
    });
    if std::env::args().any(|a| a == "--unref") {
        lp.unref_handle(far);
    }

    lp.run(RunMode::Default)?;
    println!("run returned");
    Ok(())
}
