//! # 05 — Pool contention: the numbers behind "increase UV_THREADPOOL_SIZE"
//!
//! **What it shows.** 200 jobs that each block for 20 ms (standing in for a slow disk or
//! a slow DNS server) on pools of 1, 4 and 16 threads. With n threads the 200 jobs take
//! about 200 x 20 ms / n, and most of each job's latency is *waiting in the queue*, not
//! running. That wait is what a Node server feels when a burst of `dns.lookup` or `fs`
//! calls meets the default pool of 4.
//!
//! **Run it.** `cargo run --release --example 05_pool_contention` (pools of 1, 4 and 16),
//! or name the pool sizes: `cargo run --release --example 05_pool_contention -- 2 8`.
//!
//! **Look for** total time falling roughly 4x from 1 to 4 threads, and the p50/p99 queue
//! wait falling with it; with 16 threads the 2-core machine is not the limit, because
//! the jobs sleep rather than compute. The total is never below 200 x 20 ms / threads:
//! that is the work, spread as thin as the pool allows.
//!
//! **In production** more threads help only blocking-but-idle work like this; CPU-bound
//! jobs stop scaling at the number of cores.

use looplab::{Loop, RunMode};
use std::cell::RefCell;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

const JOBS: usize = 200;
const JOB_TIME: Duration = Duration::from_millis(20);

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("05_pool_contention: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    println!("{JOBS} jobs of {} ms each", JOB_TIME.as_millis());
    println!(
        "{:>7} {:>10} {:>14} {:>14} {:>14}",
        "threads", "total", "wait p50", "wait p99", "wait max"
    );
    for threads in pool_sizes()? {
        let mut lp = Loop::builder().threadpool_size(threads).build()?;
        let waits = Rc::new(RefCell::new(Vec::with_capacity(JOBS)));
        let start = Instant::now();
        for _ in 0..JOBS {
            let queued_at = Instant::now();
            let w = waits.clone();
            lp.queue_work(
                move || {
                    let waited = queued_at.elapsed();
                    std::thread::sleep(JOB_TIME);
                    waited
                },
                move |_, _work, r| match r {
                    Ok(waited) => w.borrow_mut().push(waited),
                    Err(e) => eprintln!("a job produced nothing: {e}"),
                },
            );
        }
        lp.run(RunMode::Default)?;
        let total = start.elapsed();
        let mut waits = waits.borrow().clone();
        waits.sort();
        // Nearest rank; an empty list (every job failed) reads as zero.
        let pct = |p: f64| {
            let rank = (waits.len().saturating_sub(1) as f64 * p) as usize;
            waits.get(rank).copied().unwrap_or_default().as_millis()
        };
        println!(
            "{threads:>7} {:>8} ms {:>11} ms {:>11} ms {:>11} ms",
            total.as_millis(),
            pct(0.50),
            pct(0.99),
            pct(1.0)
        );
    }
    Ok(())
}

/// The pool sizes named on the command line, or 1, 4 and 16.
fn pool_sizes() -> std::io::Result<Vec<usize>> {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| match a.parse() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("pool sizes are whole numbers above zero, not {a:?}"),
            )),
        })
        .collect::<std::io::Result<_>>()?;
    Ok(if sizes.is_empty() {
        vec![1, 4, 16]
    } else {
        sizes
    })
}
