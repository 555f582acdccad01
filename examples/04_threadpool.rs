//! # 04 — What cannot be polled goes to the thread pool
//!
//! **What it shows.** A regular file is always "ready" as far as the kernel's readiness
//! APIs are concerned (epoll refuses to watch one), and `getaddrinfo` has no fd at all:
//! both block the calling thread. So `looplab::fs` and `looplab::dns` ship the call to a
//! pool thread; when it finishes, the worker writes a byte into the loop's self-pipe and
//! the loop runs the callback on its own thread.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example 04_threadpool`
//!
//! **Look for** on stdout `queued 4 jobs; alive because: ref'd: 4 work`: pool work holds
//! the loop (as a libuv request does, even on an unref'd handle). In the trace,
//! `poll waited 0.3ms | events: wake-pipe fd 4 r`, the callbacks' own lines, then
//! `done | self-pipe: 1 drain(s), 4 pool completion(s)`: one wakeup can deliver several
//! completions (wakes coalesce; jobs that finish far apart take more wakes, up to one each).
//! The fs and dns callbacks take `(lp, result)`, like Node's `fs.readFile`.
//!
//! **In production** libuv does the same for fs, dns and zlib (`UV_THREADPOOL_SIZE`).

use looplab::{dns, fs, Loop, RunMode};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("04_threadpool: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let mut lp = Loop::builder().threadpool_size(2).build()?;
    let me = std::env::current_exe()?;
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");

    fs::read(&mut lp, manifest, |_, r| match r {
        Ok(bytes) => println!(
            "read Cargo.toml: {} bytes, first line {:?}",
            bytes.len(),
            first_line(&bytes)
        ),
        Err(e) => println!("read failed: {e}"),
    });
    fs::stat(&mut lp, &me, |_, r| match r {
        Ok(meta) => println!("stat of this example's binary: {} bytes", meta.len()),
        Err(e) => println!("stat failed: {e}"),
    });
    fs::read(&mut lp, "/no/such/file", |_, r| {
        if let Err(e) = r {
            println!("an error names its path: {e}");
        }
    });
    dns::lookup(&mut lp, "localhost", 8080, |_, r| match r {
        Ok(addrs) => println!("localhost resolves to {addrs:?}"),
        Err(e) => println!("lookup failed: {e}"),
    });

    println!("queued 4 jobs; alive because: {}", lp.explain_alive());
    lp.run(RunMode::Default)?;
    let m = lp.metrics();
    println!(
        "pool: {} threads, {} jobs done, mean wait in queue {:.2}ms; {} completions in {} self-pipe drain(s)",
        m.pool.threads,
        m.pool.done,
        m.pool.wait_mean.as_secs_f64() * 1000.0,
        m.completions,
        m.wake_drains
    );
    Ok(())
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}
