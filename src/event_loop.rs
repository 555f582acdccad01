//! The loop: one thread, one tick after another, each tick the same six phases.
//!
//! ```text
//!   run(mode) ──► while alive && !stopped:
//!       1. update_time     cache `now` once, so every callback of the tick agrees on it
//!       2. run_timers      collect every due timer first, then run their callbacks
//!       3. run_pending     callbacks deferred from the last tick (write results, re-reads)
//!       4. poll            block in the kernel for at most `poll_timeout()`
//!       5. run_check       immediates queued before this phase
//!       6. run_closing     close callbacks, in the order close() was called
//! ```
//!
//! [`Loop::alive`] is the whole exit rule: a ref'd active handle, queued or running pool
//! work, a close in progress or a pending callback keeps the loop going; nothing else does.

mod async_handle;
mod builder;
mod lifecycle;
mod signals;
mod timers;

pub use async_handle::AsyncSender;
pub use builder::LoopBuilder;

use crate::handle::{Handle, HandleKind, HandleTable};
use crate::pool::{Pool, WorkState};
use crate::sys::selfpipe::SelfPipe;
use crate::sys::{Backend, Event, Poller};
use crate::tcp::{ListenerState, TcpState};
use crate::timer::Wheel;
use crate::trace::{Counters, TimeoutRule, Tracer};
use crate::watchdog::{Phase, Watchdog};
use async_handle::AsyncState;
use crossbeam_channel::{Receiver, Sender};
use signals::SignalState;
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timers::TimerState;

/// How `run` decides when to return (libuv's `uv_run_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// Run ticks until nothing is alive or `stop()` is called.
    Default,
    /// Run one tick, blocking in poll for at least one event if nothing else is due.
    Once,
    /// Run one tick that polls with a zero timeout: never blocks.
    NoWait,
}

/// A callback deferred to a later phase.
pub(crate) type Deferred = Box<dyn FnOnce(&mut Loop)>;

/// Per-kind state of a handle; the common flags live in the handle table.
pub(crate) enum State {
    Timer(TimerState),
    Immediate(Option<Deferred>),
    Signal(SignalState),
    Async(AsyncState),
    Work(WorkState),
    Listener(ListenerState),
    Tcp(Box<TcpState>),
}

/// Tokens that are never a handle's: generation 0 is never handed out.
pub(crate) const WAKE_TOKEN: u64 = 0;
pub(crate) const SIGNAL_TOKEN: u64 = 1;

/// The event loop. See the crate docs for a tour of one tick.
pub struct Loop {
    pub(crate) backend: Backend,
    pub(crate) poller: Poller,
    pub(crate) handles: HandleTable<State>,
    pub(crate) wheel: Wheel<Handle>,
    epoch: Instant,
    now: Instant,
    pub(crate) immediates: VecDeque<Handle>,
    pub(crate) pending: VecDeque<Deferred>,
    pub(crate) closing: VecDeque<(Handle, Option<Deferred>)>,
    stop_flag: bool,
    /// Woken by pool workers and async senders from other threads.
    pub(crate) waker: Arc<SelfPipe>,
    pub(crate) async_queue: (Sender<Handle>, Receiver<Handle>),
    pub(crate) signal_pipe: Option<signals::SignalPipe>,
    pub(crate) pool: Option<Pool>,
    pub(crate) pool_size: usize,
    /// One read buffer for every stream of the loop: reading allocates nothing.
    pub(crate) read_buf: Vec<u8>,
    events: Vec<Event>,
    pub(crate) tracer: Tracer,
    pub(crate) counters: Counters,
    watchdog: Option<Watchdog>,
}

impl Loop {
    /// A loop on the OS's raw backend, pool size from `LOOPLAB_THREADPOOL_SIZE` or 4,
    /// trace on if `LOOPLAB_TRACE=1`.
    pub fn new() -> io::Result<Loop> {
        Loop::builder().build()
    }

    /// Choose backend, pool size, trace and watchdog before building.
    pub fn builder() -> LoopBuilder {
        LoopBuilder::default()
    }

    /// Run ticks as `mode` says. Returns whether the loop is still alive: `false` means
    /// nothing holds it and another `run` would return at once.
    pub fn run(&mut self, mode: RunMode) -> io::Result<bool> {
        let mut alive = self.alive();
        if !alive {
            self.update_time();
        }
        while alive && !self.stop_flag {
            self.update_time();
            self.run_timers();
            let ran_pending = self.run_pending();
            let (timeout, rule) = self.poll_timeout(mode, ran_pending);
            self.poll(timeout, rule)?;
            self.run_check();
            self.run_closing();
            if mode == RunMode::Once {
                // Once promises progress: if poll woke for a timer, fire it now (as libuv).
                self.update_time();
                self.run_timers();
            }
            alive = self.alive();
            self.finish_tick(alive);
            if mode != RunMode::Default {
                break;
            }
        }
        self.stop_flag = false;
        self.enter(Phase::Idle);
        Ok(alive)
    }

    /// The exit rule, whole: something ref'd and active, pool work, a close in progress
    /// (all counted by the handle table), or a deferred callback still to run.
    pub fn alive(&self) -> bool {
        self.handles.holding() > 0 || !self.pending.is_empty()
    }

    /// Make `run` return after the current tick (before the first, if called outside).
    pub fn stop(&mut self) {
        self.stop_flag = true;
    }

    /// The time cached at the start of this tick (and refreshed after poll).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The poller this loop runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Phase 1. One clock read per tick; every callback of the tick sees the same `now`.
    fn update_time(&mut self) {
        self.now = Instant::now();
    }

    /// Milliseconds since the loop was made: the wheel's clock (rounded down, so a timer
    /// whose deadline is rounded up never fires early).
    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.now.duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// The Instant at which wheel time `ms` begins.
    pub(crate) fn instant_of_ms(&self, ms: u64) -> Option<Instant> {
        self.epoch.checked_add(Duration::from_millis(ms))
    }

    /// The wheel deadline for "`after` from `at`": rounded UP, so it never fires early.
    /// A zero wait is due at once, so it rounds down: any later time satisfies it, and a
    /// 0 ms timer started in a callback then fires in the very next tick.
    pub(crate) fn ms_since_epoch_ceil(&self, at: Instant, after: Duration) -> u64 {
        let target = at.duration_since(self.epoch).saturating_add(after);
        let whole = target.as_millis();
        let round_up = !after.is_zero() && target > Duration::from_millis(whole as u64);
        let ceil = if round_up { whole + 1 } else { whole };
        u64::try_from(ceil).unwrap_or(u64::MAX)
    }

    /// Phase 3. Callbacks deferred by the last tick. Ones deferred while this runs wait
    /// for the next tick, so a callback that re-defers itself cannot starve the poll.
    /// Returns how many ran.
    fn run_pending(&mut self) -> usize {
        self.enter(Phase::Pending);
        let batch = self.pending.len();
        if self.tracer.enabled {
            self.tracer.tick.pending = batch;
        }
        for _ in 0..batch {
            match self.pending.pop_front() {
                Some(cb) => cb(self),
                None => break,
            }
        }
        batch
    }

    /// Step 4's rules, in order; the first that applies chooses the timeout.
    fn poll_timeout(
        &mut self,
        mode: RunMode,
        ran_pending: usize,
    ) -> (Option<Duration>, TimeoutRule) {
        let zero = Some(Duration::ZERO);
        if mode == RunMode::NoWait {
            return (zero, TimeoutRule::NoWait);
        }
        // Once returns after this tick: if the pending phase already made progress (a
        // deferred read may have consumed what the caller waits for), sleeping in poll
        // could wait for an event that has already been handled. libuv does the same.
        if mode == RunMode::Once && ran_pending > 0 {
            return (zero, TimeoutRule::OnceRanPending(ran_pending));
        }
        if self.stop_flag {
            return (zero, TimeoutRule::Stopped);
        }
        if !self.alive() {
            return (zero, TimeoutRule::NotAlive);
        }
        if !self.pending.is_empty() {
            return (zero, TimeoutRule::Pending(self.pending.len()));
        }
        if !self.immediates.is_empty() {
            return (zero, TimeoutRule::Immediates(self.immediates.len()));
        }
        if !self.closing.is_empty() {
            return (zero, TimeoutRule::Closing(self.closing.len()));
        }
        match self.wheel.next_deadline() {
            Some((deadline_ms, handle)) => {
                let id = handle.id();
                // Measured from the real clock, not the cached `now`: time spent in this
                // tick's callbacks is already gone. The poller rounds it UP to whole ms.
                let due_in = self.instant_of_ms(deadline_ms).map_or(Duration::MAX, |at| {
                    at.saturating_duration_since(Instant::now())
                });
                let timeout = (due_in != Duration::MAX).then_some(due_in);
                (timeout, TimeoutRule::Timer { id, due_in })
            }
            None => (None, TimeoutRule::Infinite),
        }
    }

    /// Phase 4. Wait in the kernel, then hand each event to its handle.
    fn poll(&mut self, timeout: Option<Duration>, rule: TimeoutRule) -> io::Result<()> {
        self.enter(Phase::Poll);
        let mut events = std::mem::take(&mut self.events);
        let started = Instant::now();
        let waited = self.poller.wait(&mut events, timeout);
        let idle = started.elapsed();
        self.counters.idle += idle;
        if self.tracer.enabled {
            self.tracer.tick.timeout = Some((timeout, rule));
            self.tracer.tick.waited = idle;
        }
        waited.map_err(|e| {
            crate::error::context(format!("waiting for events ({})", self.backend), e)
        })?;
        self.update_time();
        self.enter(Phase::PollCallbacks);
        self.counters.events += events.len() as u64;
        for ev in &events {
            self.dispatch(*ev);
        }
        self.events = events;
        Ok(())
    }

    fn dispatch(&mut self, ev: Event) {
        if self.tracer.enabled {
            let line = self.describe_event(&ev);
            self.tracer.tick.events.push(line);
        }
        match ev.token {
            WAKE_TOKEN => self.on_wake(),
            SIGNAL_TOKEN => self.on_signal_pipe(),
            token => {
                let h = Handle::from_token(token);
                match self.handles.get(h).map(|s| s.kind()) {
                    Some(HandleKind::Listener) => self.on_listener_ready(h),
                    Some(HandleKind::Tcp) => self.on_stream_ready(h, ev),
                    // Stale: the handle closed earlier in this batch. Drop the event.
                    _ => {}
                }
            }
        }
    }

    /// The self-pipe was written: async sends and pool completions are waiting.
    fn on_wake(&mut self) {
        if let Err(e) = self.waker.drain() {
            eprintln!("looplab: draining the wake pipe failed: {e}");
        }
        self.counters.wake_drains += 1;
        if self.tracer.enabled {
            self.tracer.tick.drains += 1;
        }
        self.run_async_sends();
        let done = self.run_pool_completions();
        self.counters.completions += done as u64;
        self.counters.max_completions_per_drain =
            self.counters.max_completions_per_drain.max(done as u64);
        if self.tracer.enabled {
            self.tracer.tick.completions += done;
        }
    }

    fn describe_event(&self, ev: &Event) -> String {
        let mut flags = String::new();
        for (on, c) in [
            (ev.readable, 'r'),
            (ev.writable, 'w'),
            (ev.hangup, 'h'),
            (ev.error, 'e'),
        ] {
            if on {
                flags.push(c);
            }
        }
        match ev.token {
            WAKE_TOKEN => format!("wake-pipe fd {} {flags}", self.waker.read_fd()),
            SIGNAL_TOKEN => format!("signal-pipe {flags}"),
            token => {
                let h = Handle::from_token(token);
                let fd = self.fd_of(h).map_or("?".into(), |fd| fd.to_string());
                let kind = self.handles.get(h).map_or("stale", |s| s.kind().name());
                format!("fd {fd} {flags} -> {kind} {h}")
            }
        }
    }

    /// Phase 5. Immediates queued before the phase; new ones wait for the next tick
    /// (Node's setImmediate: a callback that queues itself cannot starve I/O).
    fn run_check(&mut self) {
        self.enter(Phase::Check);
        let batch = self.immediates.len();
        let mut ran = 0;
        for _ in 0..batch {
            let Some(h) = self.immediates.pop_front() else {
                break;
            };
            if self.handles.get(h).is_none_or(|s| s.is_closing()) {
                continue;
            }
            if let Some(State::Immediate(cb)) = self.handles.remove(h) {
                ran += 1;
                if let Some(cb) = cb {
                    cb(self);
                }
            }
        }
        if self.tracer.enabled {
            self.tracer.tick.immediates = ran;
        }
    }

    /// Phase 6. Close callbacks in the order close() was called (FIFO: a documented
    /// choice; libuv runs them LIFO). Closes requested here run next tick.
    fn run_closing(&mut self) {
        self.enter(Phase::Closing);
        let batch: Vec<_> = self.closing.drain(..).collect();
        for (h, cb) in batch {
            self.handles.remove(h);
            if self.tracer.enabled {
                self.tracer.tick.closes.push(h.id());
            }
            if let Some(cb) = cb {
                cb(self);
            }
        }
    }

    fn finish_tick(&mut self, alive: bool) {
        self.counters.ticks += 1;
        if let Some(w) = &self.watchdog {
            w.tick_done();
        }
        if self.tracer.enabled {
            let why = if alive {
                format!("alive: {}", self.explain_alive())
            } else if self.stop_flag {
                "stop() called".to_string()
            } else {
                format!("exit: {}", self.explain_alive())
            };
            let since = self.now.duration_since(self.epoch);
            self.tracer.finish_tick(self.counters.ticks, since, &why);
        }
    }

    pub(crate) fn watchdog_ref(&self) -> Option<&Watchdog> {
        self.watchdog.as_ref()
    }

    pub(crate) fn enter(&self, phase: Phase) {
        if let Some(w) = &self.watchdog {
            w.enter(phase);
        }
    }

    /// Run `cb` in the next pending phase: how results are delivered without ever calling
    /// a user callback from inside the call that caused it.
    pub(crate) fn defer(&mut self, cb: impl FnOnce(&mut Loop) + 'static) {
        self.pending.push_back(Box::new(cb));
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        // Release process-wide signal registrations and stop the pool's threads.
        let signal_handles: Vec<Handle> = self
            .handles
            .infos()
            .filter(|i| i.kind == HandleKind::Signal && !i.closing)
            .map(|i| i.handle)
            .collect();
        for h in signal_handles {
            self.stop_signal(h);
        }
        self.pool = None;
    }
}
