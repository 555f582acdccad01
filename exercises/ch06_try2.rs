//! # Chapter 6, Try 2 — a thousand completions, far fewer wakeups
//!
//! `examples/04_threadpool.rs` with 1000 `fs::stat` calls queued at once, and
//! `lp.metrics()` printed at the end.
//!
//! **Run it.** `cargo run --release --example ch06_try2`
//!
//! **Look for** `1000 completions in N self-pipe drains`, with N well under 1000: a
//! worker that finishes while a wake is already pending writes no byte (wakes coalesce),
//! and the loop takes every finished job it finds in one drain. `max_completions_per_drain`
//! says how many one wakeup delivered at most. The exact figures change from run to run
//! with how the threads interleave; the ratio is the lesson.

use looplab::{fs, Loop, RunMode};
use std::cell::Cell;
use std::process::ExitCode;
use std::rc::Rc;

const CALLS: usize = 1000;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch06_try2: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let mut lp = Loop::builder().threadpool_size(4).build()?;
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let ok = Rc::new(Cell::new(0usize));
    for _ in 0..CALLS {
        let ok = ok.clone();
        fs::stat(&mut lp, manifest, move |_, r| {
            if r.is_ok() {
                ok.set(ok.get() + 1);
            }
        });
    }
    lp.run(RunMode::Default)?;
    let m = lp.metrics();
    println!("{} of {CALLS} stat calls succeeded", ok.get());
    println!(
        "{} completions in {} self-pipe drains; at most {} in one drain",
        m.completions, m.wake_drains, m.max_completions_per_drain
    );
    println!(
        "{} wakes asked for, {} bytes written to the pipe (the rest coalesced)",
        m.wake_requests, m.wake_writes
    );
    Ok(())
}
