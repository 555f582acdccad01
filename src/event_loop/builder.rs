//! `Loop::builder()`: backend, pool size, trace and watchdog, read from the environment
//! where the caller did not choose.

use super::{Loop, WAKE_TOKEN};
use crate::handle::HandleTable;
use crate::metrics::Meters;
use crate::sys::selfpipe::SelfPipe;
use crate::sys::{Backend, Interest, Poller, Trigger};
use crate::timer::Wheel;
use crate::trace::{Counters, Tracer};
use crate::watchdog::Watchdog;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Every loop of the process gets its own id; handles carry it.
static NEXT_LOOP_ID: AtomicU32 = AtomicU32::new(1);

/// libuv's bounds for UV_THREADPOOL_SIZE.
const DEFAULT_POOL_SIZE: usize = 4;
const MAX_POOL_SIZE: usize = 1024;
/// 64 KiB: one read takes what a loopback socket buffer typically holds at once.
const READ_BUFFER_SIZE: usize = 64 * 1024;

/// Chooses how a [`Loop`] is built. Unset options come from the environment.
#[derive(Default)]
pub struct LoopBuilder {
    backend: Option<Backend>,
    trigger: Option<Trigger>,
    threadpool_size: Option<usize>,
    trace: Option<bool>,
    trace_to: Option<Box<dyn Write + Send>>,
    watchdog: Option<(Duration, Option<Box<dyn Write + Send>>)>,
    metrics: Option<bool>,
}

impl LoopBuilder {
    /// Which poller to use (default: the raw one for this OS).
    pub fn backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Level- or edge-triggered registrations (default: the backend's own, level for
    /// epoll and kqueue, edge for mio; mio has no level mode, and `build` says so).
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = Some(trigger);
        self
    }

    /// Worker threads for `queue_work`, fs and dns (default: `LOOPLAB_THREADPOOL_SIZE`
    /// or 4). Clamped to 1..=1024 as libuv does.
    pub fn threadpool_size(mut self, n: usize) -> Self {
        self.threadpool_size = Some(n);
        self
    }

    /// Print one line per tick to stderr (default: `LOOPLAB_TRACE=1`).
    pub fn trace(mut self, on: bool) -> Self {
        self.trace = Some(on);
        self
    }

    /// Trace into `out` instead of stderr (implies `trace(true)`); tests read it back.
    pub fn trace_to(mut self, out: impl Write + Send + 'static) -> Self {
        self.trace = Some(true);
        self.trace_to = Some(Box::new(out));
        self
    }

    /// Report on stderr when one tick runs longer than `threshold`: which phase a
    /// callback is stuck in, and for how long.
    pub fn watchdog(mut self, threshold: Duration) -> Self {
        self.watchdog = Some((threshold, None));
        self
    }

    /// The watchdog, reporting into `out` instead of stderr; tests read it back.
    pub fn watchdog_to(mut self, threshold: Duration, out: impl Write + Send + 'static) -> Self {
        self.watchdog = Some((threshold, Some(Box::new(out))));
        self
    }

    /// Time every phase and callback for `take_window` and `loop_totals` (default: off,
    /// unless `LOOPLAB_METRICS=1`; a metrics endpoint turns it on with `set_metrics`).
    /// Off, the loop reads the clock only where it must.
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = Some(on);
        self
    }

    /// Build the loop: creates the poller and the wake pipe (threads start lazily).
    pub fn build(self) -> io::Result<Loop> {
        let backend = self.backend.unwrap_or_else(Backend::default_for_os);
        let pool_size = match self.threadpool_size {
            Some(n) => clamp_pool_size(n),
            None => pool_size_from_env()?,
        };
        let trace = self
            .trace
            .unwrap_or_else(|| std::env::var("LOOPLAB_TRACE").is_ok_and(|v| v == "1"));
        let metrics = self
            .metrics
            .unwrap_or_else(|| std::env::var("LOOPLAB_METRICS").is_ok_and(|v| v == "1"));
        let trigger = self
            .trigger
            .unwrap_or_else(|| Trigger::default_for(backend));
        let poller = Poller::new(backend, trigger).map_err(|e| {
            crate::error::context(
                format!("creating the {backend} poller ({trigger}-triggered)"),
                e,
            )
        })?;
        let waker = Arc::new(
            SelfPipe::new().map_err(|e| crate::error::context("creating the wake pipe", e))?,
        );
        poller.register(waker.read_fd(), WAKE_TOKEN, Interest::READABLE)?;
        let now = Instant::now();
        // Every handle carries its loop's id, so another loop's handle is refused like a
        // stale one. Wrapping after 2^32 loops is harmless: both would have to be alive.
        let id = NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed);
        Ok(Loop {
            backend,
            trigger,
            poller,
            handles: HandleTable::new(id),
            wheel: Wheel::new(),
            due: VecDeque::new(),
            epoch: now,
            now,
            immediates: VecDeque::new(),
            pending: VecDeque::new(),
            closing: VecDeque::new(),
            stop_flag: false,
            running: false,
            waker: waker.clone(),
            async_queue: crossbeam_channel::unbounded(),
            signal_pipe: None,
            pool: None,
            pool_size,
            read_buf: vec![0; READ_BUFFER_SIZE],
            events: Vec::with_capacity(1024),
            dispatched: 0,
            tracer: Tracer::new(trace, self.trace_to),
            counters: Counters::default(),
            meters: Meters::new(metrics, now),
            watchdog: self
                .watchdog
                .map(|(threshold, out)| {
                    let out = out.unwrap_or_else(|| Box::new(io::stderr()));
                    Watchdog::start(threshold, out)
                })
                .transpose()?,
            per_tick: Default::default(),
            children: Default::default(),
            tasks: crate::task::Executor::new(waker),
            scopes: Default::default(),
        })
    }
}

/// Out of range is clamped silently, as libuv does with UV_THREADPOOL_SIZE.
fn clamp_pool_size(n: usize) -> usize {
    n.clamp(1, MAX_POOL_SIZE)
}

fn pool_size_from_env() -> io::Result<usize> {
    match std::env::var("LOOPLAB_THREADPOOL_SIZE") {
        Err(_) => Ok(DEFAULT_POOL_SIZE),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) => Ok(clamp_pool_size(n)),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("LOOPLAB_THREADPOOL_SIZE={v:?} is not a number of threads (expected 1..={MAX_POOL_SIZE})"),
            )),
        },
    }
}
