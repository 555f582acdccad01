//! # 03 — Waking the loop from another thread (the self-pipe)
//!
//! **What it shows.** The loop thread is asleep in epoll_wait with no timer at all (the
//! trace says `poll forever (infinite: no timer)`). Another thread calls
//! `AsyncSender::send()`, which writes one byte into the loop's self-pipe; the pipe's
//! read end becomes readable, epoll_wait returns, the loop drains the pipe and runs the
//! async callback *on the loop thread*. Sends that happen before the callback runs
//! coalesce into one callback.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example 03_async_wakeup`
//!
//! **Look for** `events: wake-pipe fd N r` and `self-pipe: 1 drain(s)` in the trace, and
//! in the final figures: far fewer pipe writes than sends (coalescing).
//!
//! **In production** this is how a worker thread, a channel or a GUI thread hands work
//! to an event loop (libuv's `uv_async_t`, tokio's waker).

use looplab::{CloseDone, Loop, RunMode};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let mut lp = Loop::new()?;
    let produced = Arc::new(AtomicUsize::new(0));
    let callbacks = Rc::new(Cell::new(0));
    let me = Rc::new(Cell::new(None));

    let (p, c, m) = (produced.clone(), callbacks.clone(), me.clone());
    let (handle, sender) = lp.async_handle(move |lp| {
        c.set(c.get() + 1);
        let seen = p.load(Ordering::SeqCst);
        println!("loop thread: woken, {seen} items produced so far");
        if seen == 1000 {
            if let Some(h) = m.get() {
                lp.close(h, None::<CloseDone>); // nothing else holds the loop: it exits
            }
        }
    });
    me.set(Some(handle));

    let producer = std::thread::spawn(move || {
        for batch in 0..10 {
            std::thread::sleep(Duration::from_millis(20));
            for _ in 0..100 {
                produced.fetch_add(1, Ordering::SeqCst);
                sender.send();
            }
            println!("producer: batch {batch} sent (100 sends)");
        }
    });

    lp.run(RunMode::Default)?;
    producer.join().expect("the producer thread finished");
    let m = lp.metrics();
    println!(
        "1000 sends -> {} callbacks; {} wake requests, {} bytes written to the pipe",
        callbacks.get(),
        m.wake_requests,
        m.wake_writes
    );
    Ok(())
}
