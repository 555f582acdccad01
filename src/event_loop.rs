//! The loop: one thread, one tick after another, each tick the same phases.
//!
//! ```text
//!   run(mode) ──► (Default only: update_time, run_timers: what was due before the first poll)
//!       while alive && !stopped:
//!       1. run_pending     callbacks deferred from the last tick (write results, re-reads)
//!       2. run_idle        idle handles (while any is active, the poll will not block)
//!       3. run_prepare     prepare handles: the last callbacks before the loop may sleep
//!       4. poll            block in the kernel for at most `poll_timeout()`, then dispatch
//!       5. run_tasks       poll the futures woken so far (src/task/executor.rs)
//!       6. run_check       immediates queued before this phase, then check handles
//!       7. run_closing     owed request callbacks, then close callbacks, in close() order
//!       8. update_time     cache `now` once, so every callback of the tick agrees on it
//!       9. run_timers      collect every due timer first, then run their callbacks
//! ```
//!
//! Idle and prepare come after the pending phase and before the poll timeout is chosen,
//! as in libuv's `uv_run`: what they start (a timer, an immediate) shapes this tick's
//! sleep. Check handles run after the immediates, so they see what the whole tick did.
//!
//! Tasks run right after the poll's callbacks, because those are what wake most of them
//! (a task's socket became readable, the pool finished a job), and before check,
//! so a task and an immediate queued by the same callback keep that order every tick.
//!
//! Timers run at the end of the tick, after the close phase, as libuv does since 1.45: so
//! `RunMode::Once` returns after one firing of a late interval instead of blocking again,
//! and a loop that is about to poll has just run everything that was due.
//!
//! [`Loop::alive`] is the whole exit rule: a handle that holds the loop (ref'd and active,
//! a request in flight, a close in progress) or a pending callback keeps it going.

mod async_handle;
mod builder;
mod guard;
mod immediates;
mod lifecycle;
mod per_tick;
mod signals;
mod timers;
mod warm;

pub use async_handle::AsyncSender;
pub use builder::LoopBuilder;

use crate::handle::{Handle, HandleKind, HandleTable};
use crate::metrics::{Meters, Site};
use crate::pool::{Pool, WorkState};
use crate::process::{Children, ProcessState};
use crate::stream::StreamState;
use crate::sys::selfpipe::SelfPipe;
use crate::sys::{Backend, Event, Poller, Trigger};
use crate::task::{Cause, Executor, TaskState};
use crate::tcp::ListenerState;
use crate::timer::{Expired, Wheel};
use crate::trace::{Counters, TimeoutRule, Tracer, SLOW_CALLBACK};
use crate::watchdog::{Phase, Watchdog};
use async_handle::AsyncState;
use crossbeam_channel::{Receiver, Sender};
use immediates::ImmediateState;
use per_tick::{PerTick, WatcherState};
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
    /// Run one tick, blocking in poll for an event if nothing else made progress.
    Once,
    /// Run one tick that polls with a zero timeout: never blocks.
    NoWait,
}

/// A callback deferred to a later phase.
pub(crate) type Deferred = Box<dyn FnOnce(&mut Loop)>;
/// A deferred callback, with the handle it acts for (for the metrics' slowest callback).
type PendingCallback = (Handle, Deferred);
/// A close callback: gets the loop and the handle that closed.
pub(crate) type OnClose = Box<dyn FnOnce(&mut Loop, Handle)>;

/// Per-kind state of a handle; the common flags live in the handle table. With a fixed
/// layout (the tag, then the variant's fields in their order), so the slot's first
/// cache line is known to hold the tag and the first 40 bytes of the variant.
#[repr(u8)]
pub(crate) enum State {
    Timer(TimerState),
    Immediate(ImmediateState),
    Signal(SignalState),
    Async(AsyncState),
    Work(WorkState),
    Listener(ListenerState),
    /// A `Tcp` or a `Pipe`: one stream implementation (src/stream.rs).
    Stream(Box<StreamState>),
    Process(Box<ProcessState>),
    /// A prepare, check or idle handle.
    Watcher(WatcherState),
    Task(TaskState),
}

/// A handle in the close phase's queue, with what it still owes.
pub(crate) struct Closing {
    handle: Handle,
    /// Callbacks of requests the close cut short (writes, shutdown, connect), each with
    /// its error: they run before the close callback, as in libuv.
    owed: VecDeque<Deferred>,
    then: Option<OnClose>,
}

/// Tokens that are never a handle's: generation 0 is never handed out.
pub(crate) const WAKE_TOKEN: u64 = 0;
pub(crate) const SIGNAL_TOKEN: u64 = 1;

/// The event loop. See the crate docs for a tour of one tick.
///
/// In C's order, what the poll phase reads for every event first: the batch and the
/// cursor into it, the wake pipe's flag, the handle table, the executor, and the
/// switches of the watchdog, the trace and the meters. Left to Rust's order they lay
/// on ten cache lines of this struct, each fetched again after the kernel's work of a
/// round trip had evicted it (docs/benchmarks.md, step 13).
#[repr(C)]
pub struct Loop {
    /// The last wait's events, and how many of them have been dispatched.
    events: Vec<Event>,
    dispatched: usize,
    /// Woken by pool workers and async senders from other threads.
    pub(crate) waker: Arc<SelfPipe>,
    /// Every live handle: its flags, its callback(s), its user data.
    pub(crate) handles: HandleTable<State>,
    /// Futures on the loop: the ready queue and what leaf futures asked for.
    pub(crate) tasks: Executor,
    /// The blocked-loop watchdog thread, if asked for.
    watchdog: Option<Watchdog>,
    /// The per-tick trace (`LOOPLAB_TRACE=1`).
    pub(crate) tracer: Tracer,
    /// Time per phase, per callback, per window (src/metrics.rs).
    pub(crate) meters: Meters,
    /// The poller family, chosen at build time.
    pub(crate) backend: Backend,
    /// Level- or edge-triggered: every registration of this loop's poller is one or
    /// the other.
    trigger: Trigger,
    /// epoll, kqueue or mio: where the loop blocks.
    pub(crate) poller: Poller,
    /// Armed timers, keyed by deadline in whole ms since `epoch`.
    pub(crate) wheel: Wheel<Handle>,
    /// Timers collected as due whose callbacks have not run yet: empty between ticks,
    /// unless a timer callback panicked (the rest then run next time).
    pub(crate) due: VecDeque<Expired<Handle>>,
    /// The instant wheel time 0 stands for.
    epoch: Instant,
    /// The cached time of this tick (`now()`).
    now: Instant,
    /// Immediates in the order they were set, for the check phase.
    pub(crate) immediates: VecDeque<Handle>,
    /// Callbacks deferred to the next pending phase.
    pub(crate) pending: VecDeque<PendingCallback>,
    /// Handles whose close callbacks run in the close phase, in close() order.
    pub(crate) closing: VecDeque<Closing>,
    /// `stop()` was called: return after this tick.
    stop_flag: bool,
    /// Inside `run`: a nested `run` from a callback is refused.
    running: bool,
    /// Async handles that were sent to, in send order (the self-pipe says "look here").
    pub(crate) async_queue: (Sender<Handle>, Receiver<Handle>),
    /// The pipe the signal handler writes signal numbers into, once a signal is watched.
    pub(crate) signal_pipe: Option<signals::SignalPipe>,
    /// The thread pool, started by the first piece of work.
    pub(crate) pool: Option<Pool>,
    /// How many workers the pool will have.
    pub(crate) pool_size: usize,
    /// One read buffer for every stream of the loop: reading allocates nothing.
    pub(crate) read_buf: Vec<u8>,
    /// What `metrics()` reports.
    pub(crate) counters: Counters,
    /// Prepare, check and idle handles, in the order they were made.
    pub(crate) per_tick: PerTick,
    /// Child processes to `waitpid` when SIGCHLD comes.
    pub(crate) children: Children,
    /// Cancel scopes and what each holds (src/scope.rs).
    pub(crate) scopes: crate::scope::Scopes,
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
    /// nothing holds it and another `run` would return at once. An error if called from
    /// inside one of this loop's callbacks: `run` is not reentrant (libuv's `uv_run`
    /// neither); return from the callback and let the running loop go on.
    pub fn run(&mut self, mode: RunMode) -> io::Result<bool> {
        if self.running {
            return Err(io::Error::other(
                "Loop::run called from inside a callback of the same loop: run is not \
                 reentrant; return from the callback instead",
            ));
        }
        self.running = true;
        // The thread-local of the task layer points at this loop's reactor for the whole
        // run, so each batch of polls (one per read, at a checkpoint) need not set it.
        let reactor = self.tasks.reactor.clone();
        let _entered = crate::task::reactor::enter(&reactor);
        self.call_guarded(|lp| lp.run_ticks(mode), Loop::leave_run)
    }

    fn run_ticks(&mut self, mode: RunMode) -> io::Result<bool> {
        let mut alive = self.alive();
        self.update_time();
        // What was due before the first poll runs first (libuv keeps this for Default);
        // after that, timers run at the end of each tick.
        if mode == RunMode::Default && alive && !self.stop_flag {
            self.run_timers();
        }
        while alive && !self.stop_flag {
            // Counted as it starts: callbacks of tick N see `metrics().ticks == N`, as the
            // trace numbers it.
            self.counters.ticks += 1;
            let ran_pending = self.run_pending();
            self.run_idle();
            self.run_prepare();
            let (timeout, rule) = self.poll_timeout(mode, ran_pending);
            self.poll(timeout, rule, ran_pending)?;
            self.run_tasks();
            self.run_check();
            self.run_check_handles();
            self.run_closing();
            self.update_time();
            self.run_timers();
            alive = self.alive();
            self.finish_tick(alive);
            if mode != RunMode::Default {
                break;
            }
        }
        Ok(alive)
    }

    /// Whatever way `run` ends (return, error or a callback's panic).
    fn leave_run(&mut self) {
        self.running = false;
        self.stop_flag = false;
        self.enter(Phase::Idle);
    }

    /// The exit rule, whole: a handle that holds the loop (counted by the handle table:
    /// ref'd and active, a request in flight, a close in progress), a deferred callback,
    /// or an ask a future left for the loop (a dropped stream's close, for one).
    pub fn alive(&self) -> bool {
        self.handles.holding() > 0
            || !self.pending.is_empty()
            || self.tasks.reactor.asks_waiting() > 0
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

    /// Whether the poller reports fds level- or edge-triggered (`LoopBuilder::trigger`).
    pub fn trigger(&self) -> Trigger {
        self.trigger
    }

    /// One clock read per phase boundary; every callback of a phase sees the same `now`.
    fn update_time(&mut self) {
        self.set_time(Instant::now());
    }

    fn set_time(&mut self, now: Instant) {
        self.now = now;
        self.meters.read_at(now);
    }

    /// Phase 1. Callbacks deferred by the last tick. Ones deferred while this runs wait
    /// for the next tick, so a callback that re-defers itself cannot starve the poll.
    /// Returns how many ran.
    fn run_pending(&mut self) -> usize {
        self.enter(Phase::Pending);
        let batch = self.pending.len();
        let _cause = Cause::Pending.enter();
        for _ in 0..batch {
            match self.pending.pop_front() {
                Some((h, cb)) => {
                    // The handle may be gone (a work's early result): then no kind.
                    let kind = self.handles.get(h).map(|s| s.kind());
                    let site = Site {
                        kind,
                        handle: Some(h),
                    };
                    self.timed(site, |_| "a pending callback".into(), cb)
                }
                None => break,
            }
        }
        batch
    }

    /// The poll phase's rules, in order; the first that applies chooses the timeout.
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
        // An idle handle runs every tick, so the poll must not sleep (unref'd ones too,
        // as in libuv: they do not hold the loop, but while it runs they run).
        let idle = self.per_tick.idle_count();
        if idle > 0 {
            return (zero, TimeoutRule::Idle(idle));
        }
        let tasks = self.tasks.runnable();
        if tasks > 0 {
            return (zero, TimeoutRule::Tasks(tasks));
        }
        self.timer_timeout()
    }

    /// Phase 4. Wait in the kernel, then hand each event to its handle.
    fn poll(
        &mut self,
        timeout: Option<Duration>,
        rule: TimeoutRule,
        ran_pending: usize,
    ) -> io::Result<()> {
        self.enter(Phase::Poll);
        // Events a panicking callback left undispatched go first: with an edge-triggered
        // poller they would not be reported again.
        let mut woke = None;
        if self.dispatched == self.events.len() {
            let tick = self.counters.ticks;
            self.tracer
                .sleeping(self.since_epoch(), tick, ran_pending, timeout, &rule);
            let started = Instant::now();
            self.meters.read_at(started);
            let waited = self.poller.wait(&mut self.events, timeout);
            // One clock read for both the time blocked and the loop's new `now`.
            let after = Instant::now();
            woke = Some(after);
            let blocked = after.saturating_duration_since(started);
            self.dispatched = 0;
            // Idle is time the loop could have blocked: a zero-timeout poll is busy work.
            if timeout != Some(Duration::ZERO) {
                self.counters.idle += blocked;
            }
            waited.map_err(|e| {
                crate::error::context(format!("waiting for events ({})", self.backend), e)
            })?;
            self.counters.events += self.events.len() as u64;
            let could_block = timeout != Some(Duration::ZERO);
            self.meters
                .polled(self.events.len(), could_block.then_some(blocked));
            if self.tracer.enabled {
                let events: Vec<String> =
                    self.events.iter().map(|e| self.describe_event(e)).collect();
                let at = Instant::now().duration_since(self.epoch);
                self.tracer
                    .polled(at, tick, ran_pending, timeout, &rule, blocked, &events);
            }
        }
        match woke {
            Some(at) => self.set_time(at),
            None => self.update_time(),
        }
        self.enter(Phase::PollCallbacks);
        let mut warmed = self.dispatched;
        while let Some(&ev) = self.events.get(self.dispatched) {
            if self.dispatched >= warmed {
                warmed = self.warm_batch(self.dispatched);
            }
            // A finished pool job (or an async send) does not wait behind the rest of the
            // batch: before each event the loop looks at the wake pipe's flag (one load).
            // Under load a batch is hundreds of callbacks; a completion used to wait for
            // all of them. (The pipe's own event, when it comes, usually finds it empty:
            // one spare `read`, kept because a byte can land after a drain saw the flag.)
            // Looked at before `ev` counts as dispatched: if a `done` panics, `ev` is
            // still owed (the flag is set again, so the wake is not lost either).
            if self.waker.is_pending() {
                self.on_wake();
            }
            self.dispatched += 1;
            // The self-pipes carry other handles' callbacks (async, pool, signals,
            // children): each of those is timed alone, under its own handle.
            if matches!(ev.token, WAKE_TOKEN | SIGNAL_TOKEN) {
                self.dispatch(ev);
                continue;
            }
            let told = if self.meters.on() || self.tracer.enabled {
                self.dispatch_timed(ev)
            } else {
                self.dispatch(ev)
            };
            // A task's stream was readable: its reader is polled here, after the
            // dispatch has returned, not from inside it. The poll's `recv` and `send`
            // then run four calls shallower, and every call they return through after
            // the kernel has run is a return to predict and a stack line to find again
            // (so the checkpoint itself is inlined here: docs/benchmarks.md, step 13).
            if told {
                self.task_checkpoint_inlined();
            }
        }
        Ok(())
    }

    /// Run a callback of `site`, timed: with metrics on, from the last clock read to one
    /// after it (the window's slowest callback is kept with its phase and handle); with
    /// the trace on, one that ran longer than `SLOW_CALLBACK` is named in the tick's line.
    pub(crate) fn timed(
        &mut self,
        site: Site,
        what: impl FnOnce(&Loop) -> String,
        f: impl FnOnce(&mut Loop),
    ) {
        let took = if self.meters.on() {
            // Timed from the last clock read: one read per callback, after it.
            f(self);
            self.meters.callback_ended(site, self.counters.ticks)
        } else if self.tracer.enabled {
            let started = Instant::now();
            f(self);
            started.elapsed()
        } else {
            return f(self);
        };
        if self.tracer.enabled && took >= SLOW_CALLBACK {
            let what = what(self);
            self.tracer.slow(what, took);
        }
    }

    /// `dispatch`, timed under the event's handle for the metrics or the trace. Out of
    /// line: the poll phase's loop, run for every event, stays small enough to stay in
    /// the instruction cache when both are off (see docs/benchmarks.md, step 12).
    #[inline(never)]
    fn dispatch_timed(&mut self, ev: Event) -> bool {
        let h = self.handles.handle_of_token(ev.token);
        let site = self.handles.get(h).map(|s| Site::of(s.kind(), h));
        let site = site.unwrap_or_default();
        let mut told = false;
        self.timed(
            site,
            |lp| lp.describe_event(&ev),
            |lp| told = lp.dispatch(ev),
        );
        told
    }

    /// Time since the loop was made: the trace's clock.
    fn since_epoch(&self) -> Duration {
        Instant::now().duration_since(self.epoch)
    }

    /// Hand `ev` to its handle. True if it told a task's stream it is readable: the
    /// caller then polls the tasks that woke (`task_checkpoint`).
    fn dispatch(&mut self, ev: Event) -> bool {
        match ev.token {
            WAKE_TOKEN => {
                self.on_wake();
                false
            }
            SIGNAL_TOKEN => {
                let _cause = Cause::Signal.enter();
                self.on_signal_pipe();
                false
            }
            token => {
                let h = self.handles.handle_of_token(token);
                let readable = ev.readable || ev.hangup || ev.error;
                let _cause = Cause::Io {
                    handle: h,
                    readable,
                }
                .enter();
                match self.handles.get(h).map(|s| s.kind()) {
                    Some(HandleKind::Listener) => {
                        self.on_listener_ready(h);
                        false
                    }
                    Some(HandleKind::Tcp | HandleKind::Pipe) => self.on_stream_ready(h, ev),
                    // Stale: the handle closed earlier in this batch. Drop the event.
                    _ => false,
                }
            }
        }
    }

    /// The self-pipe was written: async sends and pool completions are waiting.
    #[inline(never)]
    fn on_wake(&mut self) {
        let bytes = self.waker.drain().unwrap_or_else(|e| {
            self.tracer
                .note(format!("draining the wake pipe failed: {e}"));
            0
        });
        // The pipe's byte is gone; if a callback below panics, what is still queued
        // behind it must not wait for a byte that will never come.
        let _rewake = guard::WakeOnUnwind(self.waker.clone());
        let sends = self.run_async_sends();
        let _cause = Cause::Pool.enter();
        let done = self.run_pool_completions();
        // The pipe's own event after a drain between callbacks (see `poll_and_dispatch`)
        // finds nothing: a spare read, not a drain.
        if bytes == 0 && sends == 0 && done == 0 {
            return;
        }
        self.counters.wake_drains += 1;
        self.counters.max_completions_per_drain =
            self.counters.max_completions_per_drain.max(done as u64);
        self.tracer.drained(done);
    }

    #[cold]
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
                let h = self.handles.handle_of_token(token);
                let fd = self.fd_of(h).map_or("?".into(), |fd| fd.to_string());
                let kind = self.handles.get(h).map_or("stale", |s| s.kind().name());
                format!("fd {fd} {flags} -> {kind} {h}")
            }
        }
    }

    /// Phase 7. For each handle closed, in the order close() was called (FIFO: a
    /// documented choice; libuv runs them LIFO): the callbacks of the requests the close
    /// cut short, then its close callback. Closes requested here run next tick.
    fn run_closing(&mut self) {
        self.enter(Phase::Closing);
        let _cause = Cause::Closing.enter();
        let mut left = self.closing.len();
        while left > 0 {
            let Some(front) = self.closing.front_mut() else {
                break;
            };
            // One owed callback at a time, the entry staying queued: if one panics, the
            // handle still finishes closing next time.
            if let Some(owed) = front.owed.pop_front() {
                let h = front.handle;
                let site = self.handles.get(h).map(|s| Site::of(s.kind(), h));
                let site = site.unwrap_or_default();
                self.timed(site, |_| format!("a request owed by {h}"), owed);
                continue;
            }
            let Some(c) = self.closing.pop_front() else {
                break;
            };
            left -= 1;
            let h = c.handle;
            let site = self.handles.get(h).map(|s| Site::of(s.kind(), h));
            let site = site.unwrap_or_default();
            self.tracer.closed(h);
            // The slot (and its data) lives through the close callback, the natural place
            // to look at `data` one last time; it goes even if the callback panics.
            match c.then {
                Some(then) => self.call_guarded(
                    |lp| lp.timed(site, |_| format!("close callback of {h}"), |lp| then(lp, h)),
                    |lp| drop(lp.handles.remove(h)),
                ),
                None => drop(self.handles.remove(h)),
            }
        }
    }

    fn finish_tick(&mut self, alive: bool) {
        if let Some(w) = &self.watchdog {
            w.tick_done();
        }
        self.meters.finish_tick(self.counters.ticks);
        if self.tracer.enabled {
            let why = if alive {
                format!("alive: {}", self.explain_alive())
            } else if self.stop_flag {
                "stop() called".to_string()
            } else {
                format!("exit: {}", self.explain_alive())
            };
            let at = self.since_epoch();
            self.tracer.finish_tick(at, self.counters.ticks, &why);
        }
    }

    pub(crate) fn watchdog_ref(&self) -> Option<&Watchdog> {
        self.watchdog.as_ref()
    }

    pub(crate) fn enter(&mut self, phase: Phase) {
        if let Some(w) = &self.watchdog {
            w.enter(phase);
        }
        self.meters.enter(phase);
    }

    /// Run `cb`, which acts for handle `h`, in the next pending phase: how results are
    /// delivered without ever calling a user callback from inside the call that caused it.
    pub(crate) fn defer(&mut self, h: Handle, cb: impl FnOnce(&mut Loop) + 'static) {
        self.pending.push_back((h, Box::new(cb)));
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        // Release process-wide signal registrations, leave no child a zombie, and stop
        // the pool's threads.
        let signal_handles: Vec<Handle> = self
            .handles
            .infos()
            .filter(|i| i.kind == HandleKind::Signal && !i.closing)
            .map(|i| i.handle)
            .collect();
        for h in signal_handles {
            self.stop_signal(h);
        }
        self.hand_over_children();
        self.pool = None;
    }
}
