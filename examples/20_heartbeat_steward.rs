//! # 20 — A ward that wedges, and the steward that restarts it
//!
//! **What it shows.** A ward is a task that works forever and says so: every 100 ms it
//! does a step of work and calls `heartbeat.beat()`. Its steward
//! (`looplab::steward::Steward`) keeps one timer on the wheel, due a deadline (500 ms)
//! after the last beat. Then:
//! 1. `poller`'s first two runs wedge after three steps (they wait for an answer that
//!    never comes). Each time, the beats stop, the steward's timer finds the ward
//!    silent, **drops** it (its waiting timer is cleared with it) and starts a new one
//!    after a backoff that doubles: 100 ms, then 200 ms. The third run works through
//!    its five steps and finishes: two restarts, within the bound of three;
//! 2. `hopeless` wedges every time: after its bound of two restarts within 10 s, the
//!    steward gives up and returns an error saying why.
//!
//! **Run it.** `cargo run --example 20_heartbeat_steward`
//! (`LOOPLAB_TRACE=1` to see the steward's notes among the loop's ticks;
//! `-- --poller-restarts 1` to give the poller a bound it cannot keep).
//!
//! **It prints** (the milliseconds vary):
//! ```text
//! poller run 1: step 1, step 2, step 3, then wedged
//! poller run 2: step 1, step 2, step 3, then wedged
//! poller run 3: 5 steps, done
//! poller: finished after 2 restart(s) (bound: 3 within 10 s) in 2465 ms
//! hopeless run 1: step 1, step 2, step 3, then wedged
//! hopeless run 2: step 1, step 2, step 3, then wedged
//! hopeless run 3: step 1, step 2, step 3, then wedged
//! hopeless: steward "hopeless" gave up: 2 restart(s) within 10000 ms were not enough; last: ward missed its heartbeat (silent 501 ms, deadline 500 ms)
//! ```
//!
//! **Look for** in the trace: `note: steward "poller": ward missed its heartbeat
//! (silent 5.. ms, deadline 500 ms): stopped; restart 1/3 in 100 ms`, on the tick where
//! the steward's timer fired; then `restart 2/3 in 200 ms`; later `giving up`.
//!
//! **In production** the steward is one level of a tree (Erlang/OTP's supervisors):
//! what it cannot fix it reports to its own supervisor, up to a process restart. Keep
//! restarts cheap and the ward's state outside it (what a restart must not lose).

use looplab::steward::{Heartbeat, Steward};
use looplab::{task, Loop};
use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

const STEP: Duration = Duration::from_millis(100);

/// One run of a ward: three steps (five if it does not wedge), a beat after each.
async fn ward(name: &'static str, run: u32, wedges: bool, hb: Heartbeat) -> io::Result<()> {
    let mut line = format!("{name} run {run}:");
    let steps = if wedges { 3 } else { 5 };
    for step in 1..=steps {
        task::sleep(STEP).await?;
        hb.beat();
        if wedges {
            line += &format!(" step {step},");
        }
    }
    if !wedges {
        println!("{line} {steps} steps, done");
        return Ok(());
    }
    println!("{line} then wedged");
    // An answer that never comes: the steward drops this future (and its timer).
    task::sleep(Duration::from_secs(3600)).await
}

fn steward(name: &str, max_restarts: u32) -> Steward {
    Steward::new(name)
        .deadline(Duration::from_millis(500))
        .max_restarts(max_restarts, Duration::from_secs(10))
        .backoff(Duration::from_millis(100), Duration::from_secs(1))
}

/// `--poller-restarts N` (default 3): the poller's bound.
fn poller_bound() -> io::Result<u32> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => Ok(3),
        [flag, n] if flag == "--poller-restarts" => n
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{n:?}: {e}"))),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "usage: 20_heartbeat_steward [--poller-restarts N]",
        )),
    }
}

fn main() -> io::Result<()> {
    let bound = poller_bound()?;
    let mut lp = Loop::new()?;
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let t = Instant::now();
    let poller = steward("poller", bound).watch(move |hb| {
        r.set(r.get() + 1);
        ward("poller", r.get(), r.get() < 3, hb)
    });
    match lp.block_on(poller)? {
        Ok(restarts) => println!(
            "poller: finished after {restarts} restart(s) (bound: {bound} within 10 s) in {} ms",
            t.elapsed().as_millis()
        ),
        Err(e) => println!("poller: {e}"),
    }

    runs.set(0);
    let r = runs.clone();
    let hopeless = steward("hopeless", 2).watch(move |hb| {
        r.set(r.get() + 1);
        ward("hopeless", r.get(), true, hb)
    });
    match lp.block_on(hopeless)? {
        Ok(restarts) => println!("hopeless: finished?! after {restarts} restart(s)"),
        Err(e) => println!("hopeless: {e}"),
    }
    Ok(())
}
