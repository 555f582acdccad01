//! One loop per core: N threads, each with its own [`Loop`], sharing one address.
//!
//! One loop is one core. When a server outgrows it, the field's answer (nginx
//! `reuseport`, Envoy's workers, seastar, glommio, monoio) is not threads inside the
//! loop but more loops, each alone on its thread, sharing nothing; the kernel spreads
//! the connections. Two ways to share a listening address, chosen with [`ListenMode`]:
//!
//! - **`Reuseport`**: every loop binds its own socket with `SO_REUSEPORT`. The kernel
//!   keeps one backlog per socket and puts each new connection in one of them by a
//!   hash of its addresses. No loop wakes for another's connection; but the hash does
//!   not know whether a loop is busy, so a stalled loop keeps receiving its share, and
//!   they wait in its backlog until it comes back.
//! - **`Exclusive`**: one socket, one backlog, watched by every loop's epoll with
//!   `EPOLLEXCLUSIVE` (Linux 4.5+), so a connection wakes one loop that is waiting in
//!   `epoll_wait`, not all of them (the thundering herd). A stalled loop is not waiting,
//!   so it is passed over. The price: whichever loop waits first gets the work, so
//!   the spread follows who is idle, not a hash. Raw epoll only: kqueue has no such
//!   flag and mio does not expose it, so with those backends the group falls back to
//!   `Reuseport` and says so in [`LoopGroup::note`].
//!
//! Loops talk only by messages: each has a typed mailbox (`group/mailbox.rs`), a bounded
//! channel plus its own async handle. A loop never touches another's state.
//!
//! ```text
//!   spawner                      loop thread i
//!   ───────                      ─────────────
//!   channels, stop flags ──────► build Loop, pin, install mailbox (async handle)
//!   collect every wake   ◄────── its AsyncSender, its backend
//!   choose mode, bind sockets
//!   postbox + socket i   ──────► setup(lp, ctx): listen, on_message, on_stop
//!   collect "up"         ◄────── Ok or the setup's error
//!   return LoopGroup              lp.run(Default) ... finish(lp) -> S
//! ```
//!
//! Stopping: [`Postbox::stop_all`] (from a signal, the caller, or any loop) sets each
//! loop's stop flag and wakes its mailbox; the loop runs its `on_stop`, closes its
//! mailbox and exits once its server has closed what it held.

mod ctx;
#[cfg(feature = "tools")]
pub mod echo;
pub mod mailbox;
mod start;

pub use ctx::LoopCtx;
pub use mailbox::{Hops, PostError, Postbox, MAILBOX_CAPACITY};

use crate::{Backend, Loop, RunMode};
use crossbeam_channel::{Receiver, Sender};
use mailbox::{Counts, Inbox, Peer};
use socket2::Socket;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::thread::JoinHandle;

/// How the loops of a group share one listening address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenMode {
    /// A socket per loop, `SO_REUSEPORT`: the kernel hashes connections over them.
    Reuseport,
    /// One shared socket, `EPOLLEXCLUSIVE` in each loop's epoll: one waiting loop wakes.
    Exclusive,
}

impl ListenMode {
    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ListenMode::Reuseport => "reuseport",
            ListenMode::Exclusive => "exclusive",
        }
    }
}

impl std::str::FromStr for ListenMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reuseport" => Ok(ListenMode::Reuseport),
            "exclusive" => Ok(ListenMode::Exclusive),
            other => Err(format!(
                "unknown mode '{other}': expected reuseport or exclusive"
            )),
        }
    }
}

type MakeLoop = Arc<dyn Fn(usize) -> io::Result<Loop> + Send + Sync>;

/// Settings for a [`LoopGroup`]; `LoopGroup::builder()`.
#[derive(Clone)]
pub struct GroupBuilder {
    loops: usize,
    pin: bool,
    mode: ListenMode,
    addr: Option<SocketAddr>,
    make_loop: MakeLoop,
}

/// N loops on N threads, running; see the module docs.
pub struct LoopGroup<M, S> {
    postbox: Postbox<M>,
    threads: Vec<JoinHandle<io::Result<S>>>,
    exited: Receiver<usize>,
    addr: Option<SocketAddr>,
    mode: ListenMode,
    note: Option<String>,
}

impl LoopGroup<(), ()> {
    /// One loop, reuseport, not pinned, no listener, `Loop::new()` for each loop.
    pub fn builder() -> GroupBuilder {
        GroupBuilder {
            loops: 1,
            pin: false,
            mode: ListenMode::Reuseport,
            addr: None,
            make_loop: Arc::new(|_| Loop::new()),
        }
    }
}

impl GroupBuilder {
    /// How many loops (threads); at least one.
    pub fn loops(mut self, n: usize) -> Self {
        self.loops = n.max(1);
        self
    }

    /// Pin loop i to core i (modulo the cores there are).
    pub fn pin(mut self, on: bool) -> Self {
        self.pin = on;
        self
    }

    /// How the loops share the listening address.
    pub fn mode(mut self, mode: ListenMode) -> Self {
        self.mode = mode;
        self
    }

    /// The address every loop accepts on (`LoopCtx::listen`); port 0 picks one port
    /// for all of them.
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.addr = Some(addr);
        self
    }

    /// Build loop i with `f` (on its own thread) instead of `Loop::new()`.
    pub fn make_loop(
        mut self,
        f: impl Fn(usize) -> io::Result<Loop> + Send + Sync + 'static,
    ) -> Self {
        self.make_loop = Arc::new(f);
        self
    }

    /// Start the loops. On each loop's thread `setup(lp, ctx)` starts its server and
    /// returns what to run when that loop ends (`finish(lp) -> S`, e.g. its stats).
    /// Returns once every loop is set up, or the first error (the others are stopped).
    pub fn spawn<M, S, F, Fin>(self, setup: F) -> io::Result<LoopGroup<M, S>>
    where
        M: Send + 'static,
        S: Send + 'static,
        F: Fn(&mut Loop, &mut LoopCtx<M>) -> io::Result<Fin> + Send + Sync + 'static,
        Fin: FnOnce(&mut Loop) -> S + 'static,
    {
        start::spawn(self, Arc::new(setup))
    }
}

impl<M: Send + 'static, S> LoopGroup<M, S> {
    /// The address the loops accept on (the real port after port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The mode in force (`Exclusive` falls back to `Reuseport` off raw epoll).
    pub fn mode(&self) -> ListenMode {
        self.mode
    }

    /// Why the mode in force is not the one asked for, if it is not.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    /// Posts to any loop; `stop_all` stops the group.
    pub fn postbox(&self) -> Postbox<M> {
        self.postbox.clone()
    }

    /// Ask every loop to stop (see [`Postbox::stop_all`]).
    pub fn stop(&self) {
        self.postbox.stop_all();
    }

    /// Wait for every loop to end; each loop's `finish` result, or its error.
    pub fn join(self) -> Vec<io::Result<S>> {
        self.threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a loop's thread panicked")))
            })
            .collect()
    }

    /// Run until SIGINT or SIGTERM (which stops the group) or until every loop has
    /// ended by itself, then join. `watching` runs once the signals are handled: say
    /// "ready" there, since a signal sent before it would end the process the default
    /// way. The waiting is a loop too: the signals are its handles, and "every loop has
    /// exited" is pool work, since a channel cannot be polled.
    pub fn run_until_signal(self, watching: impl FnOnce()) -> io::Result<Vec<io::Result<S>>> {
        let mut lp = Loop::builder().threadpool_size(1).build()?;
        for signum in [libc::SIGINT, libc::SIGTERM] {
            let postbox = self.postbox.clone();
            lp.signal(signum, move |_, _, _| postbox.stop_all())?;
        }
        watching();
        let (exited, n) = (self.exited.clone(), self.threads.len());
        lp.queue_work(move || exited.iter().take(n).count(), |lp, _, _| lp.stop());
        lp.run(RunMode::Default)?;
        Ok(self.join())
    }
}

/// What one loop thread is given at spawn.
struct Seed<M> {
    index: usize,
    pin: Option<usize>,
    rx: Receiver<M>,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    exited: Sender<usize>,
}

/// What the spawner sends once every loop is built: the postbox and this loop's socket.
struct Start<M> {
    postbox: Postbox<M>,
    socket: Option<Socket>,
    mode: ListenMode,
}

/// The sockets for `loops` loops on `addr` in `mode`, and the address they took.
fn bind_sockets(
    addr: SocketAddr,
    loops: usize,
    mode: ListenMode,
) -> io::Result<(Vec<Socket>, SocketAddr)> {
    let reuse = mode == ListenMode::Reuseport;
    let first = crate::tcp::bind_listener(addr, reuse)?;
    let bound = first
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket"))?;
    let mut sockets = vec![first];
    for _ in 1..loops {
        let next = match mode {
            // Port 0 was resolved by the first bind: the others join that port's group.
            ListenMode::Reuseport => crate::tcp::bind_listener(bound, true)?,
            // A dup: the same socket and backlog under another fd, one per epoll.
            ListenMode::Exclusive => sockets[0].try_clone()?,
        };
        sockets.push(next);
    }
    Ok((sockets, bound))
}

/// Each loop's mailbox handle, and what the handler and `on_stop` will be.
fn install_mailbox<M: Send + 'static>(
    lp: &mut Loop,
    seed: &Seed<M>,
) -> (Rc<Inbox<M>>, crate::AsyncSender) {
    let inbox: Rc<Inbox<M>> = Rc::default();
    let wake = mailbox::install(
        lp,
        seed.rx.clone(),
        seed.stop.clone(),
        seed.counts.clone(),
        inbox.clone(),
    );
    (inbox, wake)
}

/// A peer for the postbox from the spawner's half and the loop's wake.
fn peer<M>(
    tx: Sender<M>,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    wake: crate::AsyncSender,
) -> Peer<M> {
    Peer {
        tx,
        wake,
        stop,
        counts,
    }
}

/// The backend every loop must have for `Exclusive`, and the note when one lacks it.
fn fallback(mode: ListenMode, backends: &[Backend]) -> (ListenMode, Option<String>) {
    match backends.iter().find(|b| **b != Backend::Epoll) {
        Some(b) if mode == ListenMode::Exclusive => {
            let why = match b {
                Backend::Mio => "mio does not expose EPOLLEXCLUSIVE",
                _ => "kqueue has no such flag",
            };
            let note = format!(
                "exclusive mode needs the raw epoll backend (EPOLLEXCLUSIVE), and this group \
                 runs on {b}: {why}; each loop gets its own SO_REUSEPORT socket instead"
            );
            (ListenMode::Reuseport, Some(note))
        }
        _ => (mode, None),
    }
}
