//! `looplab bench --timers`: the timing wheel against the heap, on the workload a server
//! gives its timers (most are cancelled before they fire: request timeouts, keep-alive
//! timers). Insert `n` timers with deadlines spread over a minute, cancel every other one,
//! then advance time a millisecond at a time, as the loop's ticks do, until all have fired.

use super::timer_heap::HeapTimers;
use crate::timer::{Expired, TimerKey, Wheel};
use std::time::{Duration, Instant};

/// Deadlines fall within this many ms.
pub const SPREAD_MS: u64 = 60_000;

/// The deadlines of the workload: a fixed xorshift sequence, the same for both.
pub fn deadlines(n: usize) -> Vec<u64> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % SPREAD_MS
        })
        .collect()
}

/// How long each part of the workload took, and how many timers fired.
#[derive(Clone, Copy, Debug, Default)]
pub struct Phases {
    /// Inserting every timer.
    pub insert: Duration,
    /// Cancelling every other one.
    pub cancel: Duration,
    /// Advancing 1 ms at a time until the rest have fired.
    pub fire: Duration,
    /// Timers that fired (half of them).
    pub fired: usize,
}

impl Phases {
    /// All three parts.
    pub fn total(&self) -> Duration {
        self.insert + self.cancel + self.fire
    }
}

/// What the workload asks of a timer queue; one implementation a structure, so both
/// run the very same code. Monomorphised and `#[inline]`: the measured loops must stay
/// free of calls (without it, wheel inserts measured about 2x slower at 10 000).
trait Queue {
    type Key: Copy;
    fn insert(&mut self, deadline: u64, id: usize) -> Self::Key;
    fn cancel(&mut self, key: Self::Key);
    /// Move time to `now`: how many timers fired.
    fn advance(&mut self, now: u64) -> usize;
}

struct OnWheel(Wheel<usize>, Vec<Expired<usize>>);

impl Queue for OnWheel {
    type Key = TimerKey;
    #[inline]
    fn insert(&mut self, deadline: u64, id: usize) -> TimerKey {
        self.0.insert(deadline, id)
    }
    #[inline]
    fn cancel(&mut self, key: TimerKey) {
        self.0.cancel(key);
    }
    #[inline]
    fn advance(&mut self, now: u64) -> usize {
        self.1.clear();
        self.0.advance(now, &mut self.1);
        self.1.len()
    }
}

struct OnHeap(HeapTimers, Vec<(u64, u64)>);

impl Queue for OnHeap {
    type Key = u64;
    #[inline]
    fn insert(&mut self, deadline: u64, _: usize) -> u64 {
        self.0.insert(deadline)
    }
    #[inline]
    fn cancel(&mut self, id: u64) {
        self.0.cancel(id);
    }
    #[inline]
    fn advance(&mut self, now: u64) -> usize {
        self.1.clear();
        self.0.advance(now, &mut self.1);
        self.1.len()
    }
}

/// The workload on `q`: insert every deadline, cancel every other timer, then advance
/// a millisecond at a time until the rest have fired.
fn run(mut q: impl Queue, deadlines: &[u64]) -> Phases {
    let t = Instant::now();
    let keys: Vec<_> = deadlines
        .iter()
        .enumerate()
        .map(|(i, &d)| q.insert(d, i))
        .collect();
    let insert = t.elapsed();
    let t = Instant::now();
    for k in keys.iter().step_by(2) {
        q.cancel(*k);
    }
    let cancel = t.elapsed();
    let t = Instant::now();
    let fired = (0..=SPREAD_MS).map(|now| q.advance(now)).sum();
    Phases {
        insert,
        cancel,
        fire: t.elapsed(),
        fired,
    }
}

/// The workload on the wheel.
pub fn run_wheel(deadlines: &[u64]) -> Phases {
    run(OnWheel(Wheel::new(), Vec::new()), deadlines)
}

/// The same workload on the heap.
pub fn run_heap(deadlines: &[u64]) -> Phases {
    run(OnHeap(HeapTimers::new(), Vec::new()), deadlines)
}

/// Run both at each size (best of `rounds`) and print a table with heap/wheel ratios.
pub fn report(sizes: &[usize], rounds: usize) -> Vec<(usize, Phases, Phases)> {
    let best = |f: &dyn Fn() -> Phases| {
        (0..rounds.max(1))
            .map(|_| f())
            .min_by_key(|p| p.total())
            .unwrap_or_default()
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "timers: insert n, cancel n/2, advance 1 ms at a time over {} s (best of {rounds})",
        SPREAD_MS / 1000
    );
    println!(
        "{:>9} | {:>9} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9} {:>9} | {:>7}",
        "n",
        "wheel ins",
        "cancel",
        "fire",
        "total",
        "heap ins",
        "cancel",
        "fire",
        "total",
        "heap/wheel"
    );
    let mut rows = Vec::new();
    for &n in sizes {
        let d = deadlines(n);
        let w = best(&|| run_wheel(&d));
        let h = best(&|| run_heap(&d));
        assert_eq!(w.fired, h.fired, "both must fire the same timers");
        println!(
            "{n:>9} | {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}ms | {:>7.2}ms {:>7.2}ms {:>7.2}ms {:>7.2}ms | {:>8.2}x",
            ms(w.insert),
            ms(w.cancel),
            ms(w.fire),
            ms(w.total()),
            ms(h.insert),
            ms(h.cancel),
            ms(h.fire),
            ms(h.total()),
            h.total().as_secs_f64() / w.total().as_secs_f64().max(1e-9)
        );
        rows.push((n, w, h));
    }
    rows
}
