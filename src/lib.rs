//! # looplab: an event loop you can read
//!
//! One thread, one loop, built the way libuv and Node are built. This page is the tour
//! of one loop iteration ("tick"); each step links to the file that does it.
//!
//! ```no_run
//! use looplab::{Loop, RunMode};
//! use std::time::Duration;
//!
//! let mut lp = Loop::new()?;
//! lp.set_timeout(Duration::from_millis(50), |lp, _timer| {
//!     println!("fired at {:?}", lp.now());
//! });
//! let still_alive = lp.run(RunMode::Default)?; // returns when nothing holds the loop
//! assert!(!still_alive);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Every callback gets the loop (so it can act: start a timer, write, close), then its
//! own handle, then what happened: `|lp, t: Timer|`, `|lp, conn: Tcp, ev: ReadEvent|`,
//! `|lp, conn: Tcp, r: io::Result<()>|`. No callback ever runs inside the call that
//! caused it.
//!
//! ## One tick
//!
//! 1. **Pending callbacks**: results deferred by the previous tick, such as a finished
//!    write or a read cut short by its budget.
//! 2. **Idle and prepare handles** ([`Loop::idle`], [`Loop::prepare`]): callbacks that
//!    run in every tick, just before the loop may sleep.
//! 3. **Poll**: block in the kernel (`epoll_wait`, `kevent`, or `mio::Poll`; [`sys`])
//!    for at most the time to the next timer, rounded *up* to a whole millisecond; not at
//!    all if immediates, pending callbacks, closes or idle handles are waiting; forever
//!    if there is no timer. Then run the callbacks of every ready stream, TCP or pipe
//!    ([`stream`], [`tcp`], [`pipe`]), the self-pipe's wakeups from the thread pool
//!    ([`pool`], [`fs`], [`dns`]) and async senders, and signals, among them SIGCHLD:
//!    exited child processes are reaped and reported ([`process`]).
//! 4. **Tasks**: futures whose wakers were called are polled once each; what they ask
//!    of the loop is done right after each poll ([`task`]: `async`/`await` on the same
//!    reactor). A task woken by a stream's read is polled at once, inside the poll
//!    phase, before the loop reads that socket again.
//! 5. **Check**: immediates ([`Loop::set_immediate`]), then check handles
//!    ([`Loop::check`]).
//! 6. **Close**: for each handle closed, in the order `close()` was called, the
//!    callbacks of the requests it cut short (with an error), then its close callback.
//! 7. **Update the time** once ([`Loop::now`] is cached: every timer callback of the
//!    tick agrees on it).
//! 8. **Run due timers** from the hierarchical timing wheel ([`timer`]): all due timers
//!    are collected first, then their callbacks run, so a timer started from a callback
//!    waits for the next tick. Timers come last, as in libuv since 1.45, so the timer
//!    whose deadline ended the poll fires in the same tick; `RunMode::Default` also runs
//!    the timers already due before its first poll.
//!
//! The loop repeats while it is **alive** ([`Loop::alive`]): while a ref'd, active handle,
//! a request in flight (a connect, a write, a shutdown, pool work: ref'd or not, as in
//! libuv), a close in progress or a deferred callback remains.
//! [`Loop::unref_handle`] lets a handle work without holding the loop, like Node's
//! `timer.unref()`.
//!
//! Per-connection state rides on the handle ([`Loop::set_data`], libuv's
//! `handle->data`). A closed handle, or another loop's, is refused by every method the
//! same way: `false`, or an error of kind `NotFound`. The repository's `docs/design.md`
//! has the whole contract, that table, and where looplab differs from libuv on purpose.
//!
//! Run anything with `LOOPLAB_TRACE=1` to see every tick explained on stderr ([`trace`]).
//!
//! ## Where each idea lives
//!
//! | concept                        | file                        |
//! |--------------------------------|-----------------------------|
//! | what every poller offers       | `src/sys/mod.rs`            |
//! | epoll / kqueue / mio           | `src/sys/{epoll,kqueue,mio}.rs` |
//! | self-pipe, signal handler      | `src/sys/{selfpipe,signal}.rs` |
//! | the timing wheel               | `src/timer.rs`              |
//! | handle ids, ref/unref, alive   | `src/handle.rs`             |
//! | the tick and its phases        | `src/event_loop.rs`         |
//! | take, call, put back (guard)   | `src/event_loop/guard.rs`   |
//! | timers, immediates, async, signals, close | `src/event_loop/*.rs` |
//! | thread pool, fs, dns           | `src/pool.rs`, `src/fs.rs`, `src/dns.rs` |
//! | TCP listeners and connects     | `src/tcp.rs`, `src/tcp/*.rs` |
//! | streams (TCP, pipes): read, write queue | `src/stream.rs`, `src/stream/*.rs` |
//! | pipes                          | `src/pipe.rs`               |
//! | child processes, SIGCHLD       | `src/process.rs`, `src/process/*.rs` |
//! | prepare, check, idle handles   | `src/event_loop/per_tick.rs` |
//! | trace and metrics              | `src/trace.rs`              |
//! | phase times, windows, histograms | `src/metrics.rs`, `src/metrics/*.rs` |
//! | blocked-loop watchdog          | `src/watchdog.rs`           |
//! | futures, wakers, async/await   | `src/task.rs`, `src/task/*.rs` |
//! | deadlines, cancel scopes       | `src/scope.rs`, `src/task/scope.rs` |
//! | errors with context            | `src/error.rs`              |
//! | replicated requests, happy eyeballs | `src/replicate.rs`, `src/task/{replicate,eyeballs}.rs` |
//! | heartbeats and a steward       | `src/steward.rs`, `src/steward/handles.rs` |
//! | token buckets per key          | `src/ratelimit.rs`          |
//! | one loop per core, mailboxes   | `src/group.rs`, `src/group/*.rs` |
//! | the echo servers, the bench    | `src/servers/`, `src/bench/` |

#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "tools")]
pub mod bench;
pub mod dns;
pub(crate) mod error;
mod event_loop;
pub mod fs;
pub mod group;
mod handle;
pub mod metrics;
pub mod pipe;
pub mod pool;
pub mod process;
pub mod ratelimit;
pub mod replicate;
pub mod scope;
#[cfg(feature = "tools")]
pub mod servers;
pub mod steward;
pub mod stream;
#[allow(unsafe_code)]
pub mod sys;
pub mod task;
pub mod tcp;
pub mod timer;
#[cfg(feature = "tools")]
pub mod top;
pub mod trace;
mod watchdog;

pub use error::Error;
pub use event_loop::{AsyncSender, Loop, LoopBuilder, RunMode};
pub use handle::{
    Async, Check, Handle, HandleInfo, HandleKind, Idle, Immediate, Listener, Pipe, Prepare,
    Process, Signal, Task, Tcp, Timer, Work,
};
pub use pool::{PoolMetrics, WorkError};
pub use process::ExitStatus;
pub use scope::{Cancel, Scope};
pub use stream::{ReadEvent, Stream};
pub use sys::rlimit::raise_nofile_limit;
pub use sys::signal::raise as raise_signal;
pub use sys::{Backend, Trigger};
pub use trace::{Metrics, TimeoutRule};
pub use watchdog::Phase;
