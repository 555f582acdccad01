//! # 07 — A blocked loop, caught by the watchdog
//!
//! **What it shows.** Everything on the loop shares one thread, so a callback that
//! blocks (here `thread::sleep(300 ms)`, in real code a synchronous file read, a mutex,
//! a heavy computation) stalls every other timer and socket. The opt-in watchdog is a
//! second thread that notices the loop has been stuck in one phase past a threshold and
//! says where. A 10 ms interval shows the damage: its lateness jumps.
//!
//! **Run it.** `cargo run --example 07_blocked_loop`
//!
//! **Look for** on stderr:
//! `looplab watchdog: a callback has blocked the loop for 1xx ms in the timers phase`
//! (reported once, while the block is still going on, when it passes the 100 ms
//! threshold), then the metrics line with the interval's worst lateness near 300 ms.
//! With `LOOPLAB_TRACE=1` the trace names the culprit after the fact:
//! `timers fired #1.2 | slow callback: timer #1.2 took 300.3ms`.
//!
//! **In production** move blocking calls to the pool (`queue_work`, `looplab::fs`).

use looplab::{Loop, RunMode};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("07_blocked_loop: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let mut lp = Loop::builder()
        .watchdog(Duration::from_millis(100))
        .build()?;
    let ticker = lp.set_interval(Duration::from_millis(10), |_, _| {});
    lp.set_timeout(Duration::from_millis(50), |_, _| {
        println!("a callback blocks the loop for 300 ms...");
        std::thread::sleep(Duration::from_millis(300));
        println!("...and returns");
    });
    lp.set_timeout(Duration::from_millis(500), move |lp, _| {
        lp.clear_timer(ticker);
    });
    lp.run(RunMode::Default)?;
    let m = lp.metrics();
    println!(
        "timers fired {}, worst lateness {:.1}ms (the interval waited out the block), watchdog reports: {}",
        m.timers_fired,
        m.timer_lateness_max.as_secs_f64() * 1000.0,
        lp.watchdog_reports().len()
    );
    Ok(())
}
