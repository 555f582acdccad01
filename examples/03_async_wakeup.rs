//! # 03 — Waking the loop from another thread (the self-pipe)
//!
//! **What it shows.** The loop thread is asleep in epoll_wait with no timer at all (the
//! trace says `sleeping until an event (infinite: no timer)`). Another thread calls
//! `AsyncSender::send()`, which writes one byte into the loop's self-pipe; the pipe's
//! read end becomes readable, epoll_wait returns, the loop drains the pipe and runs the
//! async callback *on the loop thread*. Sends that happen before the callback runs
//! coalesce into one callback. The callback gets its own `Async` handle, so it closes it
//! when the last item is in; nothing else holds the loop, and `run` returns.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example 03_async_wakeup`
//!
//! **Look for** in the trace `poll waited 20.0ms | events: wake-pipe fd 4 r` (woken by
//! the pipe), then the callback's own line, then `done | self-pipe: 1 drain(s)`; and in
//! the final figures: far fewer callbacks and pipe writes than sends (coalescing).
//!
//! **In production** this is how a worker thread, a channel or a GUI thread hands work
//! to an event loop (libuv's `uv_async_t`, tokio's waker). The callback must look at the
//! shared *state* (here the counter), never count its own calls.

use looplab::{Loop, RunMode};
use std::cell::Cell;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const BATCHES: usize = 10;
const PER_BATCH: usize = 100;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("03_async_wakeup: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let mut lp = Loop::new()?;
    let produced = Arc::new(AtomicUsize::new(0));
    let callbacks = Rc::new(Cell::new(0));

    let (p, c) = (produced.clone(), callbacks.clone());
    let (_handle, sender) = lp.async_handle(move |lp, me| {
        c.set(c.get() + 1);
        let seen = p.load(Ordering::SeqCst);
        println!("loop thread: woken, {seen} items produced so far");
        if seen == BATCHES * PER_BATCH {
            lp.close(me); // nothing else holds the loop: it exits
        }
    });

    let producer = std::thread::spawn(move || {
        for batch in 0..BATCHES {
            std::thread::sleep(Duration::from_millis(20));
            for _ in 0..PER_BATCH {
                produced.fetch_add(1, Ordering::SeqCst);
                sender.send();
            }
            println!("producer: batch {batch} sent ({PER_BATCH} sends)");
        }
    });

    lp.run(RunMode::Default)?;
    if producer.join().is_err() {
        eprintln!("the producer thread panicked");
    }
    let m = lp.metrics();
    println!(
        "{} sends -> {} callbacks; {} wake requests, {} bytes written to the pipe",
        BATCHES * PER_BATCH,
        callbacks.get(),
        m.wake_requests,
        m.wake_writes
    );
    Ok(())
}
