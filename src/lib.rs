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
//! ## One tick
//!
//! 1. **Update the time** once ([`Loop::now`] is cached: every callback of the tick
//!    agrees on it).
//! 2. **Run due timers** from the hierarchical timing wheel ([`timer`]): all due timers
//!    are collected first, then their callbacks run, so a timer started from a callback
//!    waits for the next tick.
//! 3. **Pending callbacks**: results deferred by the previous tick, such as a finished
//!    write, so no callback ever runs inside the call that caused it.
//! 4. **Poll**: block in the kernel (`epoll_wait`, `kevent`, or `mio::Poll`; [`sys`])
//!    for at most the time to the next timer, rounded *up* to a whole millisecond; not at
//!    all if immediates, pending callbacks or closes are waiting; forever if there is no
//!    timer. Then run the callbacks of every ready socket ([`tcp`]), the self-pipe's
//!    wakeups from the thread pool ([`pool`], [`fs`], [`dns`]) and async senders, and
//!    signals.
//! 5. **Tasks**: futures whose wakers were called (mostly by the callbacks just run) are
//!    polled once each; what they ask of the loop is done right after each poll
//!    ([`task`]: `async`/`await` on the same reactor).
//! 6. **Check**: immediates ([`Loop::set_immediate`]).
//! 7. **Close callbacks**, in the order `close()` was called.
//!
//! The loop repeats while it is **alive** ([`Loop::alive`]): while a ref'd, active handle,
//! pool work, a close in progress or a deferred callback remains. [`Loop::unref`] lets a
//! handle work without holding the loop, like Node's `timer.unref()`.
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
//! | timers, async, signals on loop | `src/event_loop/*.rs`       |
//! | thread pool, fs, dns           | `src/pool.rs`, `src/fs.rs`, `src/dns.rs` |
//! | TCP streams and listeners      | `src/tcp.rs`, `src/tcp/*.rs` |
//! | trace and metrics              | `src/trace.rs`              |
//! | blocked-loop watchdog          | `src/watchdog.rs`           |
//! | futures, wakers, async/await   | `src/task.rs`, `src/task/*.rs` |
//! | the echo servers, the bench    | `src/servers/`, `src/bench/` |

#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "tools")]
pub mod bench;
pub mod dns;
pub(crate) mod error;
mod event_loop;
pub mod fs;
mod handle;
pub mod pool;
#[cfg(feature = "tools")]
pub mod servers;
#[allow(unsafe_code)]
pub mod sys;
pub mod task;
pub mod tcp;
pub mod timer;
pub mod trace;
mod watchdog;

pub use error::Error;
pub use event_loop::{AsyncSender, Loop, LoopBuilder, RunMode};
pub use handle::{
    Async, Handle, HandleInfo, HandleKind, Immediate, Listener, Signal, Task, Tcp, Timer, Work,
};
pub use pool::{PoolMetrics, WorkError};
pub use sys::rlimit::raise_nofile_limit;
pub use sys::signal::raise as raise_signal;
pub use sys::Backend;
pub use tcp::ReadEvent;
pub use trace::{Metrics, TimeoutRule};
pub use watchdog::Phase;
