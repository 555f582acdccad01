//! Futures on the loop: `async`/`await` over the same reactor the callbacks use.
//!
//! A future is a callback you poll. Where a callback says "call me when the socket is
//! readable", a future says "poll me again when I might make progress", and hands over
//! a **waker** to say so with. `Future::poll` returns `Ready(value)` or `Pending`; a
//! future that returns `Pending` must first have stored `cx.waker()` where the event it
//! waits for will find it, or nothing will ever poll it again.
//!
//! ```no_run
//! use looplab::{task, Loop};
//! use std::time::Duration;
//!
//! let mut lp = Loop::new()?;
//! let out = lp.block_on(async {
//!     task::sleep(Duration::from_millis(50)).await?;
//!     Ok::<_, std::io::Error>("slept")
//! })??;
//! assert_eq!(out, "slept");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! How the pieces fit (each in its file):
//!
//! | piece | what it is | file |
//! |---|---|---|
//! | task | a future in a handle slot, ref'd, polled in the **tasks phase** | `task/executor.rs` |
//! | waker | one `Arc` per task; a queued flag per kind of wake, so no wake is lost or doubled | `task/waker.rs` |
//! | reactor | how a leaf future *asks* the loop to act (it gets no `&mut Loop`) | `task/reactor.rs` |
//! | wake cause | what the loop was dispatching when a task woke (for the trace) | `task/cause.rs` |
//! | `JoinHandle` | a task's output, or its panic; `abort()` | `task/join.rs` |
//! | `sleep`, `timeout`, `yield_now` | the timing wheel | `task/time.rs` |
//! | `race` | the first of two wins, the loser is dropped (cancelled) | `task/race.rs` |
//! | `scope`, `move_on_after`, `fail_after`, `shield` | nurseries and deadlines (Trio's) | `task/scope.rs`, `task/scope/*.rs` |
//! | `first_ok`, `replicate` | the first `Ok` of N wins, the rest are dropped | `task/replicate.rs` |
//! | `connect_happy` | happy eyeballs: staggered connects, first connected wins | `task/eyeballs.rs` |
//! | `TcpListener`, `TcpStream` | accept, connect, read, write_all, shutdown | `task/net.rs`, `task/net/stream.rs` |
//! | `offload`, `fs`, `dns` | blocking work on the thread pool | `task/pool.rs` |
//! | `signal` | a signal as a stream | `task/signal.rs` |
//! | `PipeStream`, `UnixListener`, `Lines` | the same stream futures over a pipe; Unix sockets; lines | `task/pipe.rs` |
//! | `process::Child` | spawn, `wait`, `kill`, `output`; its stdio as `PipeStream`s | `task/process.rs` |
//!
//! **The path of one wake**, readable with `LOOPLAB_TRACE=1`: a task awaits
//! `conn.read(&mut buf)`; the read future finds the socket empty, stores the waker in
//! the stream's shared cell, asks the loop to watch the socket, and returns `Pending`.
//! The loop polls epoll; fd 9 is readable; the loop tells the stream, which wakes the
//! stored waker: the task is queued with the cause "fd 9 readable" and polled at once;
//! `read` calls `recv(2)` into the task's buffer and returns `Ready(n)`. The trace line:
//! `tasks: polled 1 — #4.1 woken by fd 9 readable`.
//!
//! **Cancellation is drop.** Every leaf future undoes its work when dropped before it
//! finished: a `Sleep` clears its timer, a waiting `read` or `accept` withdraws its
//! interest, a pool future cancels its job if no worker has started it, a `connect`
//! closes the half-made stream. So `race` and `timeout` cancel the loser by dropping it.
//!
//! Leaf futures polled outside a looplab task (another executor, a bare `poll`) return
//! an error saying so: they need a loop to act for them.

mod cause;
mod executor;
mod eyeballs;
mod join;
mod net;
mod pipe;
mod pool;
pub mod process;
mod race;
pub(crate) mod reactor;
mod replicate;
mod scope;
mod signal;
mod time;
mod waker;

pub(crate) use cause::Cause;
pub(crate) use executor::{Executor, TaskState};
pub use eyeballs::{connect_first, connect_happy, connect_happy_with, ConnectFirst, STAGGER};
pub use join::{JoinError, JoinHandle};
pub use net::{
    Accept, Bind, Connect, ReadFuture, Shutdown, TcpListener, TcpStream, WriteAll, ACCEPT_BACKLOG,
    OUTBOX_HIGH,
};
pub use pipe::{Lines, PipeStream, UnixAccept, UnixBind, UnixConnect, UnixListener, MAX_LINE};
pub use pool::{dns, fs, offload, OnPool};
pub use race::{race, Either, Race};
pub(crate) use replicate::note as trace_note;
pub use replicate::{first_ok, replicate, Failures, FirstOk};
pub use scope::{
    current_deadline, fail_after, move_on_after, scope, shield, Deadline, Nursery, Scoped, Shield,
};
pub use signal::{signal, NextSignal, Signals};
pub use time::{sleep, timeout, yield_now, Sleep, YieldNow};

use std::future::Future;

/// Spawn `fut` from inside a task (where there is no `&mut Loop`; elsewhere use
/// `Loop::spawn`). The loop makes the task right after the current poll returns, and
/// polls it in the next tasks phase. Panics if called outside a looplab task, since
/// there is then no loop to run it on.
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + 'static,
{
    let r = match reactor::current("task::spawn") {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let cell = join::new_cell::<F::Output>();
    let c = cell.clone();
    r.ask(move |lp| {
        let h = lp.spawn_task(Box::pin(fut), c.clone());
        join::set_task(&c, h);
    });
    JoinHandle::new(cell, r)
}
