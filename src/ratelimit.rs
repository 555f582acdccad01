//! Rate limiting: a token bucket per key (a client address, a user), on the loop's
//! clock, with a bounded table.
//!
//! **The bucket.** Each key may take `rate` tokens a second, and save up at most
//! `burst`. The classic form keeps a token count and a time and refills lazily on each
//! take. Here a bucket is *one timestamp*: the moment it will be full again
//! (`full_at`). Taking a token pushes it one token's time (`every = 1 / rate`) further;
//! a take is allowed while `full_at` is at most `burst - 1` tokens' time ahead of now.
//! It is the same bucket (the property test in tests/ratelimit.rs checks it against a
//! token counter), in whole nanoseconds: the rate is rounded once, to one token's time
//! in ns, and after that no float rounding decides a take.
//! A bucket with `full_at <= now` is full: forgetting it loses nothing, since a key
//! seen for the first time starts with a full bucket.
//!
//! **On the wheel.** [`RateLimiter`] reads the time from `lp.now()` (the tick's cached
//! clock: no syscall per take) and keeps *one* timer on the wheel, not one per key:
//! every `burst × every` (the time an empty bucket takes to fill) it sweeps the table
//! and forgets the full buckets. The timer is unref'd (it never holds the loop open)
//! and is only armed while the table has keys.
//!
//! **At the bound.** At most `max_keys` keys are tracked. A key not in a full table is
//! refused ([`Limited::TableFull`]) until the next sweep makes room; keys already
//! tracked are untouched. Refusing the newcomer, rather than evicting someone, keeps a
//! flood of new addresses from resetting the buckets of the clients being limited.

use crate::event_loop::Loop;
use crate::handle::Timer;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

/// Rates are clamped to this range: slower than one token in 1000 s, or faster than
/// one a nanosecond, is not a rate this arithmetic can hold.
const MIN_RATE: f64 = 0.001;
const MAX_RATE: f64 = 1e9;
/// The sweep never runs more often than this, however fast the buckets refill.
const MIN_SWEEP: Duration = Duration::from_millis(10);

/// Why a take was refused, and when to try again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    /// The key's bucket is empty; a token is there after `retry_after`.
    Empty {
        /// How long until the next token.
        retry_after: Duration,
    },
    /// The key is new and the table holds `max_keys` already.
    TableFull {
        /// The sweep interval: by then, keys that went quiet are forgotten.
        retry_after: Duration,
    },
}

impl Limited {
    /// When to try again (for a `Retry-After` header).
    pub fn retry_after(&self) -> Duration {
        match *self {
            Limited::Empty { retry_after } | Limited::TableFull { retry_after } => retry_after,
        }
    }
}

/// The buckets' arithmetic, without a loop: the caller gives the time.
#[derive(Debug)]
pub struct Buckets<K> {
    every: Duration,
    burst: u32,
    max_keys: usize,
    full_at: HashMap<K, Instant>,
}

impl<K: Hash + Eq> Buckets<K> {
    /// `rate` tokens a second (clamped to 0.001..=1e9), at most `burst` (at least 1)
    /// saved up, at most `max_keys` keys (at least 1).
    pub fn new(rate: f64, burst: u32, max_keys: usize) -> Buckets<K> {
        let rate = if rate.is_nan() {
            MIN_RATE
        } else {
            rate.clamp(MIN_RATE, MAX_RATE)
        };
        Buckets {
            every: Duration::from_secs_f64(1.0 / rate).max(Duration::from_nanos(1)),
            burst: burst.max(1),
            max_keys: max_keys.max(1),
            full_at: HashMap::new(),
        }
    }

    /// One token's time: `1 / rate`, in whole nanoseconds.
    pub fn every(&self) -> Duration {
        self.every
    }

    /// The time an empty bucket takes to fill: the sweep interval.
    pub fn refill(&self) -> Duration {
        self.every.saturating_mul(self.burst)
    }

    /// Take a token for `key` at `now`.
    pub fn take(&mut self, key: K, now: Instant) -> Result<(), Limited> {
        let tracked = self.full_at.get(&key).copied();
        if tracked.is_none() && self.full_at.len() >= self.max_keys {
            let retry_after = self.refill();
            return Err(Limited::TableFull { retry_after });
        }
        // An untracked key has a full bucket: full since now.
        let full_at = tracked.map_or(now, |at| at.max(now));
        let ahead = full_at - now;
        let slack = self.every.saturating_mul(self.burst - 1);
        if ahead > slack {
            return Err(Limited::Empty {
                retry_after: ahead - slack,
            });
        }
        let Some(next) = full_at.checked_add(self.every) else {
            let retry_after = self.every;
            return Err(Limited::Empty { retry_after });
        };
        self.full_at.insert(key, next);
        Ok(())
    }

    /// Forget every bucket that is full at `now`; how many were forgotten.
    pub fn sweep(&mut self, now: Instant) -> usize {
        let before = self.full_at.len();
        self.full_at.retain(|_, full_at| *full_at > now);
        before - self.full_at.len()
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.full_at.len()
    }

    /// No key tracked.
    pub fn is_empty(&self) -> bool {
        self.full_at.is_empty()
    }

    /// Whether `key` has a bucket in the table.
    pub fn contains(&self, key: &K) -> bool {
        self.full_at.contains_key(key)
    }
}

struct Inner<K> {
    buckets: Buckets<K>,
    /// The one sweep timer, while armed.
    sweeper: Option<Timer>,
}

/// Token buckets per key on a loop: [`Buckets`] with `lp.now()` as the clock and one
/// sweep timer on the wheel (see the module doc). Cloning it shares the table.
pub struct RateLimiter<K> {
    inner: Rc<RefCell<Inner<K>>>,
}

impl<K> Clone for RateLimiter<K> {
    fn clone(&self) -> Self {
        RateLimiter {
            inner: self.inner.clone(),
        }
    }
}

impl<K: Hash + Eq + 'static> RateLimiter<K> {
    /// See [`Buckets::new`].
    pub fn new(rate: f64, burst: u32, max_keys: usize) -> RateLimiter<K> {
        RateLimiter {
            inner: Rc::new(RefCell::new(Inner {
                buckets: Buckets::new(rate, burst, max_keys),
                sweeper: None,
            })),
        }
    }

    /// Take a token for `key` now (the tick's time); the first key arms the sweep.
    pub fn take(&self, lp: &mut Loop, key: K) -> Result<(), Limited> {
        let mut inner = self.inner.borrow_mut();
        let taken = inner.buckets.take(key, lp.now());
        if inner.sweeper.is_none() && !inner.buckets.is_empty() {
            let every = inner.buckets.refill().max(MIN_SWEEP);
            inner.sweeper = Some(arm(lp, every, Rc::downgrade(&self.inner)));
        }
        taken
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.inner.borrow().buckets.len()
    }

    /// No key tracked.
    pub fn is_empty(&self) -> bool {
        self.inner.borrow().buckets.is_empty()
    }

    /// The sweep timer, while one is armed (for `handles()` and tests).
    pub fn sweeper(&self) -> Option<Timer> {
        self.inner.borrow().sweeper
    }

    /// Forget every key and clear the sweep timer (a server shutting down).
    pub fn stop(&self, lp: &mut Loop) {
        let mut inner = self.inner.borrow_mut();
        inner.buckets.full_at.clear();
        if let Some(t) = inner.sweeper.take() {
            lp.clear_timer(t);
        }
    }
}

/// Arm the sweep: a one-shot timer that forgets full buckets and re-arms itself while
/// keys remain. It holds the table weakly: a limiter dropped without `stop` leaves at
/// most this one unref'd timer, which does nothing when it fires.
fn arm<K: Hash + Eq + 'static>(
    lp: &mut Loop,
    every: Duration,
    table: Weak<RefCell<Inner<K>>>,
) -> Timer {
    let t = lp.set_timeout(every, move |lp, _| {
        let Some(inner) = table.upgrade() else {
            return;
        };
        let mut i = inner.borrow_mut();
        i.sweeper = None;
        let forgot = i.buckets.sweep(lp.now());
        let left = i.buckets.len();
        if lp.tracer.enabled {
            lp.tracer.note(format!(
                "rate limiter: swept {forgot} idle key(s), {left} left"
            ));
        }
        if left > 0 {
            i.sweeper = Some(arm(lp, every, Rc::downgrade(&inner)));
        }
    });
    lp.unref_handle(t);
    t
}
