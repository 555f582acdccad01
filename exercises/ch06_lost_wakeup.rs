//! # Chapter 6 — the lost wakeup, reproduced
//!
//! The self-pipe of `src/sys/selfpipe.rs` in a few lines of safe Rust, with the order of
//! the drain as a switch. Four threads each queue an item and wake; the "loop" waits
//! until the pipe is readable, drains it, clears the flag and takes the queue.
//!
//! - **Right order** (as looplab does it): empty the pipe, *then* clear the flag. No
//!   wake is ever lost.
//! - **`--swapped`** (the bug looplab shipped for an hour): clear the flag, then empty the
//!   pipe. A waker that sets the flag and writes its byte between the two lines has its
//!   byte eaten by the drain; the flag stays set with no byte behind it, so every later
//!   waker writes nothing, and the loop waits with items queued.
//!
//! In looplab's real drain the window between the two lines is a few instructions wide,
//! so a stress test hits it only sometimes (the unit test in `src/sys/selfpipe.rs` caught
//! it in a few runs out of fifteen). Here the loop side pauses for 50 µs between the two
//! lines, standing for anything a loop does there; with the right order the same pause is
//! harmless, with the wrong one the race happens within a second, every run.
//!
//! **Run it.** `cargo run --release --example ch06_lost_wakeup`, then
//! `cargo run --release --example ch06_lost_wakeup -- --swapped`.
//!
//! **Look for** `no wake lost: 40000 items in N drains` with the right order; with
//! `--swapped`, `lost wake after N drains (1.04 s): M items queued, no byte in the pipe,
//! the flag still set`, and exit status 1.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAKERS: usize = 4;
const ITEMS_EACH: usize = 10_000;
/// Each waker rests this long between items, as a worker between jobs, so that wakes
/// keep arriving while the loop drains (all at once, they would all land in one drain).
const REST: Duration = Duration::from_micros(20);
/// No byte for this long, twice running, with the flag set: the wake is lost.
const PATIENCE: Duration = Duration::from_millis(500);
/// The loop side's pause between its two drain lines, to widen the window.
const BETWEEN: Duration = Duration::from_micros(50);

/// The waker's half: the pending flag and the pipe's write end.
struct Waker {
    pending: AtomicBool,
    write: UnixStream,
}

impl Waker {
    /// As `SelfPipe::wake`: only the first wake after a drain writes a byte.
    fn wake(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            // A full pipe means a wake is already pending: as good as written.
            let _ = (&self.write).write(&[1]);
        }
    }
}

fn main() -> ExitCode {
    let swapped = std::env::args().any(|a| a == "--swapped");
    match run(swapped) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("ch06_lost_wakeup: {e}");
            ExitCode::FAILURE
        }
    }
}

/// True if every item was seen; false if a wake was lost.
fn run(swapped: bool) -> io::Result<bool> {
    let (mut read, write) = UnixStream::pair()?;
    write.set_nonblocking(true)?;
    read.set_read_timeout(Some(PATIENCE))?;
    let waker = Arc::new(Waker {
        pending: AtomicBool::new(false),
        write,
    });
    let (tx, queue) = channel::<usize>();
    let threads = start_wakers(&waker, &tx);
    drop(tx);
    let order = if swapped {
        "clear the flag, then empty the pipe (swapped)"
    } else {
        "empty the pipe, then clear the flag"
    };
    println!("drain order: {order}");
    let (mut seen, mut drains, mut strikes) = (0usize, 0usize, 0);
    let started = Instant::now();
    while seen < WAKERS * ITEMS_EACH {
        if !readable(&read)? {
            // No byte for PATIENCE. With the flag clear, a waker is merely slow (it has
            // queued but not yet woken). With the flag set twice running, no byte will
            // ever come: every waker sees the flag and writes nothing.
            if !waker.pending.load(Ordering::SeqCst) {
                continue;
            }
            strikes += 1;
            if strikes == 2 {
                println!(
                    "lost wake after {drains} drains ({:.2} s): {} items queued, no byte in the pipe, the flag still set",
                    started.elapsed().as_secs_f64(),
                    take(&queue)
                );
                return Ok(false);
            }
            continue;
        }
        strikes = 0;
        if swapped {
            waker.pending.store(false, Ordering::SeqCst);
            std::thread::sleep(BETWEEN);
            empty(&mut read)?;
        } else {
            empty(&mut read)?;
            std::thread::sleep(BETWEEN);
            waker.pending.store(false, Ordering::SeqCst);
        }
        drains += 1;
        seen += take(&queue);
    }
    for t in threads {
        let _ = t.join();
    }
    println!(
        "no wake lost: {seen} items in {drains} drains ({:.2} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(true)
}

fn start_wakers(waker: &Arc<Waker>, tx: &Sender<usize>) -> Vec<std::thread::JoinHandle<()>> {
    (0..WAKERS)
        .map(|_| {
            let (w, tx) = (waker.clone(), tx.clone());
            std::thread::spawn(move || {
                for i in 0..ITEMS_EACH {
                    if tx.send(i).is_err() {
                        return; // the loop side gave up
                    }
                    w.wake();
                    std::thread::sleep(REST);
                }
            })
        })
        .collect()
}

/// The poll: wait (up to PATIENCE) until a byte is there. It takes that byte, where
/// epoll would only report it; the drain takes the rest, so the race is the same.
fn readable(mut read: &UnixStream) -> io::Result<bool> {
    match read.read(&mut [0u8; 1]) {
        Ok(n) => Ok(n > 0),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Read every byte waiting in the pipe.
fn empty(read: &mut UnixStream) -> io::Result<()> {
    read.set_nonblocking(true)?;
    let mut buf = [0u8; 256];
    let result = loop {
        match read.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
    };
    read.set_nonblocking(false)?;
    result
}

fn take(queue: &Receiver<usize>) -> usize {
    queue.try_iter().count()
}
