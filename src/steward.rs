//! Heartbeats and a steward: notice a ward that has wedged, stop it, start it again,
//! and give up when restarting does not help.
//!
//! A **ward** is a task that does some work forever (a poller, a consumer, a cache
//! refresher) and says so on an interval: `heartbeat.beat()`. A ward that wedges (waits
//! on something that never comes, spins in a loop that yields) stops beating. Its
//! **steward** runs beside it and keeps *one* timer on the wheel, due at the last beat
//! plus the deadline; when it fires it looks again (a beat since then moves the timer,
//! it does not add one), and if no beat came, the ward is stopped and started afresh.
//!
//! Stopping is Rust's drop: the ward's future is dropped, and every leaf future it was
//! waiting on undoes its work (its streams close, its timers clear, its queued pool job
//! is cancelled). Tasks the ward spawned are its own to stop (hold their `JoinHandle`s
//! and `abort` them in a `Drop`); the steward only drops the ward.
//!
//! Restarting forever would hide a ward that can never work (a dead database): as in
//! Erlang/OTP's supervisors, at most `max_restarts` restarts within `window` are
//! allowed; one more and the steward gives up with an error naming the last failure.
//! Between restarts it waits, doubling the wait each time (exponential backoff), so a
//! crashing ward does not turn into a busy loop. Every step is in the trace
//! (`LOOPLAB_TRACE=1`): `note: steward "w": ward missed its heartbeat ...`.
//!
//! Two forms: [`Steward::watch`] for a ward that is a future (stopped by dropping it),
//! and [`Steward::watch_handles`] (in `steward/handles.rs`) for a ward made of loop
//! handles with callbacks (stopped by closing them).

mod handles;

pub use handles::Stewarded;

use crate::task::{self, race, trace_note, Either};
use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The ward's end of the watch: call [`Heartbeat::beat`] at least once per deadline.
#[derive(Clone)]
pub struct Heartbeat {
    last: Rc<Cell<Instant>>,
}

impl Heartbeat {
    fn new() -> Heartbeat {
        Heartbeat {
            last: Rc::new(Cell::new(Instant::now())),
        }
    }

    /// "Still working." Cheap: it stores the time; no timer moves.
    pub fn beat(&self) {
        self.last.set(Instant::now());
    }
}

/// How a steward watches and restarts its ward (see the module doc).
#[derive(Clone, Debug)]
pub struct Steward {
    name: String,
    deadline: Duration,
    max_restarts: u32,
    window: Duration,
    first_backoff: Duration,
    max_backoff: Duration,
}

/// Why a ward was stopped.
enum Failure {
    Missed(Duration),
    Failed(io::Error),
}

impl Steward {
    /// A steward called `name` (in the trace and errors): a beat at least every second,
    /// at most 3 restarts within 10 s, waiting 100 ms before the first and doubling up to 5 s.
    pub fn new(name: &str) -> Steward {
        Steward {
            name: name.to_string(),
            deadline: Duration::from_secs(1),
            max_restarts: 3,
            window: Duration::from_secs(10),
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// The longest time between two beats before the ward counts as wedged.
    pub fn deadline(mut self, d: Duration) -> Steward {
        self.deadline = d;
        self
    }

    /// At most `n` restarts within any `window`; one more and the steward gives up.
    pub fn max_restarts(mut self, n: u32, window: Duration) -> Steward {
        self.max_restarts = n;
        self.window = window;
        self
    }

    /// Wait `first` before the first restart in a window, twice as long before each
    /// next one, never more than `max`.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Steward {
        self.first_backoff = first;
        self.max_backoff = max.max(first);
        self
    }

    /// Run wards made by `make` until one returns `Ok` (then: how many restarts it
    /// took), or until restarting is given up (then: an error naming the last failure).
    /// A ward that returns `Err` is restarted like one that missed its heartbeat.
    /// Run it as a task (`lp.spawn(steward.watch(..))`) or await it inside one.
    pub async fn watch<F, W>(self, mut make: F) -> io::Result<u32>
    where
        F: FnMut(Heartbeat) -> W,
        W: Future<Output = io::Result<()>>,
    {
        let mut recent: VecDeque<Instant> = VecDeque::new();
        let mut total = 0u32;
        loop {
            let hb = Heartbeat::new();
            let run = total + 1;
            trace_note(|| format!("steward {:?}: ward started (run {run})", self.name));
            let failure = match race(make(hb.clone()), missed(&hb, self.deadline)).await {
                Either::Left(Ok(())) => {
                    trace_note(|| format!("steward {:?}: ward finished", self.name));
                    return Ok(total);
                }
                Either::Left(Err(e)) => Failure::Failed(e),
                // The ward's future was dropped inside `race`: it is stopped.
                Either::Right(Ok(silent)) => Failure::Missed(silent),
                Either::Right(Err(e)) => return Err(e), // no timer: outside a looplab task
            };
            let wait = self.next_restart(&mut recent, failure, |line| trace_note(|| line))?;
            total += 1;
            task::sleep(wait).await?;
        }
    }

    /// Count one more restart in the window and return the wait before it, or give up
    /// if the window holds `max_restarts` already. `recent`: the restarts' times;
    /// `trace`: where the line saying which goes.
    fn next_restart(
        &self,
        recent: &mut VecDeque<Instant>,
        failure: Failure,
        mut trace: impl FnMut(String),
    ) -> io::Result<Duration> {
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|&at| now.duration_since(at) >= self.window)
        {
            recent.pop_front();
        }
        let why = self.describe(&failure);
        if recent.len() >= self.max_restarts as usize {
            trace(format!("steward {:?}: {why}; giving up", self.name));
            return Err(self.give_up(failure, why));
        }
        recent.push_back(now);
        let (nth, wait) = (recent.len(), self.backoff_for(recent.len()));
        trace(format!(
            "steward {:?}: {why}: stopped; restart {nth}/{} in {} ms",
            self.name,
            self.max_restarts,
            wait.as_millis()
        ));
        Ok(wait)
    }

    /// The wait before the `nth` restart of the window (1-based): first, 2×, 4×, ... max.
    fn backoff_for(&self, nth: usize) -> Duration {
        let doublings = u32::try_from(nth.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(20);
        self.first_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }

    fn describe(&self, failure: &Failure) -> String {
        match failure {
            Failure::Missed(silent) => format!(
                "ward missed its heartbeat (silent {} ms, deadline {} ms)",
                silent.as_millis(),
                self.deadline.as_millis()
            ),
            Failure::Failed(e) => format!("ward failed: {e}"),
        }
    }

    fn give_up(&self, failure: Failure, why: String) -> io::Error {
        let kind = match &failure {
            Failure::Missed(_) => io::ErrorKind::TimedOut,
            Failure::Failed(e) => e.kind(),
        };
        io::Error::new(
            kind,
            format!(
                "steward {:?} gave up: {} restart(s) within {} ms were not enough; last: {why}",
                self.name,
                self.max_restarts,
                self.window.as_millis()
            ),
        )
    }
}

/// Ready (with how long the ward was silent) once no beat has come for `deadline`.
/// One sleep at a time: each wakes at the last beat + deadline, and looks again.
async fn missed(hb: &Heartbeat, deadline: Duration) -> io::Result<Duration> {
    loop {
        let silent = hb.last.get().elapsed();
        if silent >= deadline {
            return Ok(silent);
        }
        task::sleep(deadline - silent).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::Steward;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let s = Steward::new("t").backoff(Duration::from_millis(100), Duration::from_millis(500));
        let got: Vec<u128> = (1..=5).map(|n| s.backoff_for(n).as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 500, 500]);
        assert_eq!(s.backoff_for(usize::MAX), Duration::from_millis(500));
    }
}
