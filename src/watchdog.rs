//! The watchdog: a heartbeat that notices a blocked loop.
//!
//! One loop thread means one slow callback stalls every connection. The watchdog is
//! a second thread that looks at which phase the loop entered and when; if the loop has
//! been in one phase other than waiting in poll for longer than the threshold, it says so
//! once on stderr ("a callback has blocked the loop for 312 ms in the timers phase").
//! Waiting in poll is idleness, not blocking, and is never reported.

use crate::handle::Handle;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::io::Write;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where the loop is in its tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Between ticks, or outside `run`.
    Idle = 0,
    /// Running due timers.
    Timers,
    /// Running deferred callbacks.
    Pending,
    /// Blocked in the kernel, waiting: idle, never reported.
    Poll,
    /// Running I/O callbacks after poll.
    PollCallbacks,
    /// Running immediates and check handles.
    Check,
    /// Running close callbacks.
    Closing,
    /// Running idle and prepare handles, before the poll.
    Prepare,
    /// Polling tasks (futures).
    Tasks,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            1 => Phase::Timers,
            2 => Phase::Pending,
            3 => Phase::Poll,
            4 => Phase::PollCallbacks,
            5 => Phase::Check,
            6 => Phase::Closing,
            7 => Phase::Prepare,
            8 => Phase::Tasks,
            _ => Phase::Idle,
        }
    }

    /// How the watchdog names the phase.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Timers => "timers",
            Phase::Pending => "pending callbacks",
            Phase::Poll => "poll",
            Phase::PollCallbacks => "poll (I/O callbacks)",
            Phase::Check => "check (immediates, check handles)",
            Phase::Closing => "close callbacks",
            Phase::Prepare => "idle and prepare handles",
            Phase::Tasks => "tasks",
        }
    }
}

struct Heartbeat {
    epoch: Instant,
    phase: AtomicU8,
    /// When the current phase was entered, in µs since `epoch`.
    since_us: AtomicU64,
    /// In the tasks phase: the token of the task being polled (0: none).
    task: AtomicU64,
    reports: Mutex<Vec<String>>,
}

pub(crate) struct Watchdog {
    beat: Arc<Heartbeat>,
    /// Dropping it wakes the thread at once so it can exit.
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Watch with `threshold`; reports go to `out` (stderr unless the builder was given
    /// another writer: like the trace, output the caller asked for).
    pub fn start(threshold: Duration, out: Box<dyn Write + Send>) -> std::io::Result<Watchdog> {
        let beat = Arc::new(Heartbeat {
            epoch: Instant::now(),
            phase: AtomicU8::new(Phase::Idle as u8),
            since_us: AtomicU64::new(0),
            task: AtomicU64::new(0),
            reports: Mutex::new(Vec::new()),
        });
        let (stop, stopped) = crossbeam_channel::bounded(0);
        let watched = beat.clone();
        let thread = std::thread::Builder::new()
            .name("looplab-watchdog".into())
            .spawn(move || watch(&watched, threshold, &stopped, out))?;
        Ok(Watchdog {
            beat,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn enter(&self, phase: Phase) {
        self.beat.task.store(0, Ordering::Release);
        let us = self.beat.epoch.elapsed().as_micros() as u64;
        self.beat.since_us.store(us, Ordering::Release);
        self.beat.phase.store(phase as u8, Ordering::Release);
    }

    /// One task's poll begins: a report then names the task, and measures this poll.
    pub fn enter_task(&self, h: Handle) {
        self.enter(Phase::Tasks);
        self.beat.task.store(h.token(), Ordering::Release);
    }

    /// The phase the loop is in now.
    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.beat.phase.load(Ordering::Acquire))
    }

    pub fn tick_done(&self) {
        self.enter(Phase::Idle);
    }

    pub fn reports(&self) -> Vec<String> {
        self.beat
            .reports
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn watch(
    beat: &Heartbeat,
    threshold: Duration,
    stopped: &Receiver<()>,
    mut out: Box<dyn Write + Send>,
) {
    // Look often enough to report close to the threshold, not so often it costs anything.
    let period = (threshold / 4).clamp(Duration::from_millis(5), Duration::from_millis(250));
    let mut reported_episode = u64::MAX;
    loop {
        match stopped.recv_timeout(period) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let phase = Phase::from_u8(beat.phase.load(Ordering::Acquire));
        let since = beat.since_us.load(Ordering::Acquire);
        if matches!(phase, Phase::Idle | Phase::Poll) || since == reported_episode {
            continue;
        }
        let stuck =
            Duration::from_micros((beat.epoch.elapsed().as_micros() as u64).saturating_sub(since));
        if stuck >= threshold {
            reported_episode = since;
            let task = beat.task.load(Ordering::Acquire);
            let msg = if phase == Phase::Tasks && task != 0 {
                format!(
                    "looplab watchdog: task #{}.{} has run {} ms in one poll, blocking the loop in the tasks phase",
                    task & u64::from(u32::MAX),
                    task >> 32,
                    stuck.as_millis()
                )
            } else {
                format!(
                    "looplab watchdog: a callback has blocked the loop for {} ms in the {} phase",
                    stuck.as_millis(),
                    phase.name()
                )
            };
            // A report that cannot be written is still kept for `watchdog_reports`.
            let _ = writeln!(out, "{msg}");
            if let Ok(mut r) = beat.reports.lock() {
                r.push(msg);
            }
        }
    }
}

impl crate::Loop {
    /// What the watchdog has reported so far (empty without a watchdog).
    pub fn watchdog_reports(&self) -> Vec<String> {
        self.watchdog_ref().map(|w| w.reports()).unwrap_or_default()
    }
}
