//! The pool's figures for `Loop::metrics()`: queue depth (now and deepest) and how long
//! jobs waited for a worker, counted by the workers with relaxed atomics (figures, not
//! synchronisation).

use super::Pool;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

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

/// The counters behind [`PoolMetrics`], shared by the loop and every worker.
#[derive(Default)]
pub(super) struct Stats {
    pub depth: AtomicUsize,
    pub max_depth: AtomicUsize,
    pub done: AtomicU64,
    pub wait_total_us: AtomicU64,
    pub wait_max_us: AtomicU64,
}

impl Pool {
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
