//! # 06 — Signals and the self-pipe trick
//!
//! **What it shows.** A signal handler may run on any thread at any moment and may call
//! almost nothing (no locks, no allocation). looplab's handler only writes the signal
//! number into a pipe; the loop sees the pipe readable and runs your callback on the loop
//! thread, where anything is allowed. Signal handles are **unref'd** by default, as in
//! Node: here a 5 s countdown holds the loop, and Ctrl-C (SIGINT) clears it; after that
//! only the unref'd signal handle is left, so the loop exits by itself.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example 06_signals`, then press Ctrl-C.
//! Without a terminal: `cargo run --example 06_signals -- --self-signal` raises SIGINT
//! from a thread after 300 ms.
//!
//! **Look for** `events: signal-pipe r` in the trace, then
//! `exit: nothing ref'd is active (unref'd, not holding the loop: 1 signal)`.
//!
//! **In production** this is how a server turns SIGTERM into a graceful shutdown
//! (`looplab echo` does exactly this).

use looplab::{Loop, RunMode};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("06_signals: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let mut lp = Loop::new()?;
    let countdown = lp.set_interval(Duration::from_secs(1), |_, _| {
        println!("waiting for Ctrl-C...")
    });
    let deadline = lp.set_timeout(Duration::from_secs(5), move |lp, _| {
        println!("no Ctrl-C within 5 s; stopping the countdown");
        lp.clear_timer(countdown);
    });
    lp.signal(libc::SIGINT, move |lp, _sigint, signum| {
        println!("got signal {signum} on the loop thread; clearing the timers");
        lp.clear_timer(countdown);
        lp.clear_timer(deadline);
    })?;
    if std::env::args().any(|a| a == "--self-signal") {
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            let _ = looplab::raise_signal(libc::SIGINT);
        });
    }
    lp.run(RunMode::Default)?;
    println!("loop exited: {}", lp.explain_alive());
    Ok(())
}
