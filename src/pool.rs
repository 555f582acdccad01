//! The thread pool: where blocking calls go so the loop never waits on them.
//!
//! Files and `getaddrinfo` cannot be polled: a read from disk or a DNS lookup blocks the
//! calling thread. So the loop ships them to a fixed set of worker threads (libuv's
//! threadpool, `UV_THREADPOOL_SIZE`), and the worker sends the result back:
//!
//! ```text
//!  loop thread                        worker thread
//!  queue_work ──► job channel ──────► run the job (may block)
//!                                     send result ──► done channel
//!  poll wakes ◄── self-pipe byte ◄─── waker.wake()  (coalesced)
//!  drain done channel, run each `done` callback ON THE LOOP THREAD
//! ```
//!
//! **Two lanes.** Slow work (DNS) goes to a second channel that only (n+1)/2 of the n
//! workers read, so a burst of slow lookups can never take every worker and starve file
//! work (the fix libuv made after users' pools filled with getaddrinfo calls).
//!
//! **Cancel.** A job is queued, running or cancelled, decided by one compare-and-swap:
//! `cancel` wins only while the job is still queued, and then no worker will run it.
//! Both sides of it are here: `Worker::run` and `withdraw`.
//!
//! Here: the queue and the workers, and the job's three states. The loop's side is in
//! `pool/work.rs` (queue, cancel, close), the way results come back in
//! `pool/completion.rs`, the figures in `pool/metrics.rs`, and what can go wrong in
//! `pool/error.rs`.

mod completion;
mod error;
mod metrics;
mod work;

pub(crate) use error::panic_message;
pub use error::WorkError;
pub use metrics::PoolMetrics;
pub(crate) use work::WorkState;

use crate::handle::Handle;
use crate::sys::selfpipe::SelfPipe;
use completion::Completion;
use crossbeam_channel::{select, Receiver, Sender};
use metrics::Stats;
use std::any::Any;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// A job's states: it leaves `QUEUED` exactly once, to whichever side wins the swap.
const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const CANCELED: u8 = 2;

/// Which channel a job waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    Fast,
    Slow,
}

type AnyResult = Box<dyn Any + Send>;

/// A job as the queue carries it: its result is boxed as `Any`, the loop's side knows
/// the type and unboxes it for `done`.
struct Job {
    handle: Handle,
    state: Arc<AtomicU8>,
    queued_at: Instant,
    run: Box<dyn FnOnce() -> AnyResult + Send>,
}

/// The workers and the channels to and from them; started by the first job.
pub(crate) struct Pool {
    fast: Option<Sender<Job>>,
    slow: Option<Sender<Job>>,
    done: Receiver<Completion>,
    workers: Vec<JoinHandle<()>>,
    stats: Arc<Stats>,
    shutdown: Arc<AtomicBool>,
}

impl Pool {
    fn start(size: usize, waker: Arc<SelfPipe>) -> io::Result<Pool> {
        let (fast_tx, fast_rx) = crossbeam_channel::unbounded::<Job>();
        let (slow_tx, slow_rx) = crossbeam_channel::unbounded::<Job>();
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let stats = Arc::new(Stats::default());
        let shutdown = Arc::new(AtomicBool::new(false));
        let slow_workers = size.div_ceil(2);
        let mut pool = Pool {
            fast: Some(fast_tx),
            slow: Some(slow_tx),
            done: done_rx,
            workers: Vec::new(),
            stats,
            shutdown,
        };
        for i in 0..size {
            let worker = Worker {
                fast: fast_rx.clone(),
                slow: (i < slow_workers).then(|| slow_rx.clone()),
                done: done_tx.clone(),
                waker: waker.clone(),
                stats: pool.stats.clone(),
                shutdown: pool.shutdown.clone(),
            };
            let t = std::thread::Builder::new()
                .name(format!("looplab-pool-{i}"))
                .spawn(move || worker.run())?;
            pool.workers.push(t);
        }
        Ok(pool)
    }

    fn submit(&self, lane: Lane, job: Job) -> bool {
        let depth = self.stats.depth.fetch_add(1, Ordering::Relaxed) + 1;
        self.stats.max_depth.fetch_max(depth, Ordering::Relaxed);
        let tx = match lane {
            Lane::Fast => &self.fast,
            Lane::Slow => &self.slow,
        };
        let sent = tx.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        if !sent {
            self.stats.depth.fetch_sub(1, Ordering::Relaxed);
        }
        sent
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Queued jobs are dropped unrun; running ones finish; then every worker exits.
        self.shutdown.store(true, Ordering::Release);
        self.fast = None;
        self.slow = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

struct Worker {
    fast: Receiver<Job>,
    slow: Option<Receiver<Job>>,
    done: Sender<Completion>,
    waker: Arc<SelfPipe>,
    stats: Arc<Stats>,
    shutdown: Arc<AtomicBool>,
}

impl Worker {
    fn run(self) {
        while let Some(job) = self.next_job() {
            if self.shutdown.load(Ordering::Acquire) {
                return;
            }
            if job
                .state
                .compare_exchange(QUEUED, RUNNING, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue; // cancelled while queued: the loop already told its owner
            }
            self.stats.depth.fetch_sub(1, Ordering::Relaxed);
            let started = Instant::now();
            let waited = started.saturating_duration_since(job.queued_at);
            let waited_us = waited.as_micros() as u64;
            self.stats
                .wait_total_us
                .fetch_add(waited_us, Ordering::Relaxed);
            self.stats
                .wait_max_us
                .fetch_max(waited_us, Ordering::Relaxed);
            let result = catch_unwind(AssertUnwindSafe(job.run))
                .map_err(|p| WorkError::Panicked(panic_message(&*p)));
            let finished = Instant::now();
            self.stats.done.fetch_add(1, Ordering::Relaxed);
            if self
                .done
                .send(Completion {
                    handle: job.handle,
                    result,
                    waited,
                    ran: finished.saturating_duration_since(started),
                    finished,
                })
                .is_err()
            {
                return;
            }
            // wake() treats a full pipe as woken and retries EINTR; an error left means the
            // loop's pipe is gone, and the loop with it.
            let _ = self.waker.wake();
        }
    }

    /// The next job from either lane this worker serves; `None` once the pool is gone.
    fn next_job(&self) -> Option<Job> {
        match &self.slow {
            None => self.fast.recv().ok(),
            Some(slow) => select! {
                recv(self.fast) -> j => j.ok(),
                recv(slow) -> j => j.ok(),
            },
        }
    }
}

/// The loop's side of the one compare-and-swap: take a still-queued job off the queue,
/// so no worker will run it. False once a worker has started it (or it was already
/// withdrawn).
fn withdraw(pool: Option<&Pool>, job: &AtomicU8) -> bool {
    let won = job
        .compare_exchange(QUEUED, CANCELED, Ordering::AcqRel, Ordering::Acquire)
        .is_ok();
    if let (true, Some(p)) = (won, pool) {
        p.stats.depth.fetch_sub(1, Ordering::Relaxed);
    }
    won
}
