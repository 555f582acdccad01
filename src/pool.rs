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

use crate::event_loop::{Deferred, Loop};
use crate::handle::{Handle, HandleKind, Work};
use crate::metrics::Site;
use crate::sys::selfpipe::SelfPipe;
use crossbeam_channel::{select, Receiver, Sender};
use std::any::Any;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use std::{fmt, io};

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const CANCELED: u8 = 2;

/// Why a piece of work produced no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkError {
    /// `cancel()` took it off the queue before a worker started it.
    Canceled,
    /// It panicked on a worker (the panic's message); the worker lives on.
    Panicked(String),
    /// The pool's threads could not be started (the OS refused a thread).
    NoPool(String),
    /// The scope it was opened under was cancelled (`Loop::cancel_scope`, a deadline):
    /// queued, it never runs; running, its result is thrown away.
    Scope(crate::scope::Cancel),
}

impl fmt::Display for WorkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkError::Canceled => f.write_str("work was canceled before it started"),
            WorkError::Panicked(msg) => write!(f, "work panicked on a pool thread: {msg}"),
            WorkError::NoPool(msg) => write!(f, "the thread pool could not start: {msg}"),
            WorkError::Scope(cause) => cause.fmt(f),
        }
    }
}

impl std::error::Error for WorkError {}

impl From<WorkError> for io::Error {
    /// For fs and dns, whose callbacks take `io::Result`: the kind is `Other` (never
    /// `Interrupted`, which std users read as "retry"), the `WorkError` is the source.
    fn from(e: WorkError) -> io::Error {
        match e {
            // A scope's cause keeps its own kind: TimedOut for a deadline.
            WorkError::Scope(cause) => cause.into(),
            e => io::Error::other(e),
        }
    }
}

/// Which channel a job waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    Fast,
    Slow,
}

type AnyResult = Box<dyn Any + Send>;
type DoneFn = Box<dyn FnOnce(&mut Loop, Work, Result<AnyResult, WorkError>)>;

struct Job {
    handle: Handle,
    state: Arc<AtomicU8>,
    queued_at: Instant,
    run: Box<dyn FnOnce() -> AnyResult + Send>,
}

struct Completion {
    handle: Handle,
    result: Result<AnyResult, WorkError>,
    /// Stamped by the worker, for the loop's metrics: time queued, time running, and
    /// when it finished (the start of the wake the loop measures).
    waited: Duration,
    ran: Duration,
    finished: Instant,
}

pub(crate) struct WorkState {
    job: Arc<AtomicU8>,
    done: Option<DoneFn>,
}

/// Pool figures for `metrics()`: the contention the classic talks warn about.
#[derive(Clone, Debug, Default)]
pub struct PoolMetrics {
    /// Worker threads (0 until the first job starts the pool).
    pub threads: usize,
    /// Jobs waiting for a worker now.
    pub queue_depth: usize,
    /// The most jobs that ever waited at once.
    pub max_queue_depth: usize,
    /// Jobs a worker has finished.
    pub done: u64,
    /// How long a job waited in the queue before a worker took it: mean and max.
    pub wait_mean: Duration,
    /// The longest any job waited.
    pub wait_max: Duration,
}

#[derive(Default)]
struct Stats {
    depth: AtomicUsize,
    max_depth: AtomicUsize,
    done: AtomicU64,
    wait_total_us: AtomicU64,
    wait_max_us: AtomicU64,
}

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

    pub fn metrics(&self) -> PoolMetrics {
        let s = &self.stats;
        let done = s.done.load(Ordering::Relaxed);
        let total = s.wait_total_us.load(Ordering::Relaxed);
        PoolMetrics {
            threads: self.workers.len(),
            queue_depth: s.depth.load(Ordering::Relaxed),
            max_queue_depth: s.max_depth.load(Ordering::Relaxed),
            done,
            wait_mean: Duration::from_micros(total.checked_div(done).unwrap_or(0)),
            wait_max: Duration::from_micros(s.wait_max_us.load(Ordering::Relaxed)),
        }
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

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

impl Loop {
    /// Run `work` on the pool; `done` gets its result on the loop thread. Pending work
    /// keeps the loop alive, ref'd or not.
    pub fn queue_work<T: Send + 'static>(
        &mut self,
        work: impl FnOnce() -> T + Send + 'static,
        done: impl FnOnce(&mut Loop, Work, Result<T, WorkError>) + 'static,
    ) -> Work {
        self.queue_work_in(Lane::Fast, work, done)
    }

    /// Like `queue_work`, for work that may block a long time (a resolver, a slow disk):
    /// it may occupy at most (n+1)/2 of the n workers, so fast work always finds one.
    pub fn queue_slow_work<T: Send + 'static>(
        &mut self,
        work: impl FnOnce() -> T + Send + 'static,
        done: impl FnOnce(&mut Loop, Work, Result<T, WorkError>) + 'static,
    ) -> Work {
        self.queue_work_in(Lane::Slow, work, done)
    }

    pub(crate) fn queue_work_in<T: Send + 'static>(
        &mut self,
        lane: Lane,
        work: impl FnOnce() -> T + Send + 'static,
        done: impl FnOnce(&mut Loop, Work, Result<T, WorkError>) + 'static,
    ) -> Work {
        let job_state = Arc::new(AtomicU8::new(QUEUED));
        let done: DoneFn = Box::new(move |lp, w, r| {
            let typed = r.and_then(|any| {
                any.downcast::<T>()
                    .map(|v| *v)
                    .map_err(|_| WorkError::Panicked("result of an unexpected type".into()))
            });
            done(lp, w, typed)
        });
        let state = WorkState {
            job: job_state.clone(),
            done: Some(done),
        };
        let h = self.handles.insert(
            HandleKind::Work,
            crate::event_loop::State::Work(state),
            true,
            true,
        );
        if self.pool.is_none() {
            match Pool::start(self.pool_size, self.waker.clone()) {
                Ok(p) => self.pool = Some(p),
                Err(e) => {
                    self.finish_work_early(h, WorkError::NoPool(e.to_string()));
                    return Work(h);
                }
            }
        }
        let job = Job {
            handle: h,
            state: job_state,
            queued_at: Instant::now(),
            run: Box::new(move || Box::new(work()) as AnyResult),
        };
        let sent = self.pool.as_ref().is_some_and(|p| p.submit(lane, job));
        if let Some(p) = &self.pool {
            self.meters
                .pool_depth(p.stats.depth.load(Ordering::Relaxed));
        }
        if !sent {
            self.finish_work_early(h, WorkError::NoPool("the pool has shut down".into()));
        }
        Work(h)
    }

    /// Cancel work that no worker has started: true, and its `done` gets
    /// `Err(WorkError::Canceled)` in the next pending phase. Running or finished work
    /// cannot be cancelled: false.
    pub fn cancel(&mut self, w: Work) -> bool {
        let h: Handle = w.into();
        let Some(crate::event_loop::State::Work(ws)) = self.handles.state_mut(h) else {
            return false;
        };
        if ws
            .job
            .compare_exchange(QUEUED, CANCELED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        if let Some(p) = &self.pool {
            p.stats.depth.fetch_sub(1, Ordering::Relaxed);
        }
        self.finish_work_early(h, WorkError::Canceled);
        true
    }

    /// Deliver `why` to the work's `done` in the next pending phase (never synchronously).
    fn finish_work_early(&mut self, h: Handle, why: WorkError) {
        if let Some(crate::event_loop::State::Work(mut ws)) = self.handles.remove(h) {
            if let Some(done) = ws.done.take() {
                self.defer(h, move |lp| done(lp, Work(h), Err(why)));
            }
        }
    }

    /// close() on work: cancel it if still queued. Its `done` is not called, unless a
    /// scope's cancel is closing it: then `done` is owed, with the scope's cause.
    pub(crate) fn stop_work(&mut self, h: Handle) -> VecDeque<Deferred> {
        let mut owed: VecDeque<Deferred> = VecDeque::new();
        if let Some(crate::event_loop::State::Work(ws)) = self.handles.state_mut(h) {
            let done = ws.done.take();
            if ws
                .job
                .compare_exchange(QUEUED, CANCELED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                if let Some(p) = &self.pool {
                    p.stats.depth.fetch_sub(1, Ordering::Relaxed);
                }
            }
            if let (Some(done), Some(cause)) = (done, crate::scope::canceling()) {
                owed.push_back(Box::new(move |lp| {
                    done(lp, Work(h), Err(WorkError::Scope(cause)))
                }));
            }
        }
        owed
    }

    /// After a wake: every finished job's `done`, on the loop thread. Returns how many.
    pub(crate) fn run_pool_completions(&mut self) -> usize {
        let mut n = 0;
        loop {
            let Some(c) = self.pool.as_ref().and_then(|p| p.done.try_recv().ok()) else {
                break;
            };
            n += 1;
            // Counted before the callback runs: a panicking `done` is still a completion.
            self.counters.completions += 1;
            if self.handles.get(c.handle).is_none_or(|s| s.is_closing()) {
                self.meters.pool_done(c.waited, c.ran, None);
                continue; // closed while it ran: the result has no one to go to
            }
            if let Some(crate::event_loop::State::Work(mut ws)) = self.handles.remove(c.handle) {
                if let Some(done) = ws.done.take() {
                    // The wake ends as `done` starts: one clock read, also the start
                    // of the callback's own time.
                    let at = self.meters.on().then(Instant::now);
                    let wake = at.map(|at| at.saturating_duration_since(c.finished));
                    self.meters.pool_done(c.waited, c.ran, wake);
                    if let Some(at) = at {
                        self.meters.read_at(at);
                    }
                    let (h, result) = (c.handle, c.result);
                    let site = Site::of(HandleKind::Work, h);
                    self.timed(
                        site,
                        |_| format!("work {h} done"),
                        |lp| done(lp, Work(h), result),
                    );
                }
            }
        }
        n
    }
}
