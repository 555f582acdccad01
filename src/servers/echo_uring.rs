//! The echo server on io_uring: completion instead of readiness (`looplab echo --backend
//! uring`, chapter 14). Linux only; the ring and its unsafe live in `sys/uring.rs`.
//!
//! The epoll echo asks "which sockets may I read?" and then reads. This one says "read
//! this socket, and tell me when you have": one recv and at most one send in flight per
//! connection, each named by its `user_data`:
//!
//! ```text
//!  63          32 31        8 7    0
//! +--------------+-----------+------+
//! |  generation  | slab key  |  op  |     op: accept, recv, send, tick, cancel of one
//! +--------------+-----------+------+
//! ```
//!
//! **Buffers.** A recv names no buffer: the kernel takes one from the provided-buffer ring
//! when data arrives (5.19), so a thousand idle connections hold no read buffer. We copy
//! the bytes into the connection's outgoing `Vec` and give the buffer back at once. A send
//! *moves* that `Vec` into the ring: the kernel reads it until the send completes, so new
//! bytes go to a second `Vec` meanwhile. Without a buffer ring, each connection lends the
//! kernel its own read buffer for as long as its recv is in flight.
//!
//! **Close with an operation in flight.** Closing the fd does not end a pending recv: the
//! ring holds its own reference to the socket. So close drops the connection's slot and
//! fd, and asks the kernel to cancel what is in flight. The cancel may lose the race (the
//! recv had just completed): either way the recv's completion still comes, for a slot
//! that is gone or already serves a new connection under a new generation. It is
//! recognised by its generation and dropped, its buffer given back.
//!
//! **Bounds.** At most `max_conns` connections (more are accepted and closed at once); a
//! connection's queued echo at most [`QUEUE_BOUND`]: no new recv past [`HIGH_WATER`]
//! until it drains to [`LOW_WATER`] (plus, with a multishot recv, what arrived before
//! its cancel landed); a fixed pool of provided buffers (a recv that finds none,
//! `ENOBUFS`, is retried once buffers come back).
//!
//! **Fewer lookups.** A multishot recv (6.0) stays armed across arrivals: a round trip
//! submits only its send. Each connection's socket is a registered file (a slot in the
//! ring's file table), so an operation names the slot and the kernel skips the fd lookup
//! and reference count it would make per operation.
//!
//! **Accept.** One multishot accept (5.19) answers every connection; on a kernel that
//! refuses it (`EINVAL`) we fall back to one accept per connection. Out of fds, accept is
//! re-armed on the next tick (100 ms): no spare-fd trick here, the clients wait queued.

mod conn;
mod user_data;

use super::echo::{EchoConfig, EchoStats, HIGH_WATER, LOW_WATER};
use crate::sys::uring::{Completion, Features, Ring, Target};
use conn::Conn;
use slab::Slab;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use user_data::{name, parse, Op, SERVER};

/// Submission queue entries; the completion queue is 8x as large.
const ENTRIES: u32 = 4096;
/// Provided buffers (a power of two) and their size: 4 MiB in all.
const BUFS: u16 = 1024;
const BUF_SIZE: usize = 4096;
/// The most a connection's echo queue can hold. A multishot recv is stopped by a cancel
/// once the queue passes HIGH_WATER, and what the kernel delivered before the cancel
/// landed is kept: at most the buffers it could fill between two of our reaps, which is
/// all of them. Measured overshoot is a few dozen buffers (the kernel retries a
/// multishot recv up to 32 times per wakeup).
pub const QUEUE_BOUND: usize = HIGH_WATER + BUFS as usize * BUF_SIZE;
/// Registered-file slots at most (the kernel also caps them at the open-file limit).
const MAX_SLOTS: u32 = 1 << 16;
/// How often the loop wakes with nothing to do, to see the stop flag and retry accept.
const TICK: Duration = Duration::from_millis(100);
/// A stop waits this long for the kernel to hand back every borrowed buffer.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Slab keys must fit in 24 bits of user_data, and the last one is the server's own.
pub const MAX_CONNS: usize = (1 << 24) - 1;

/// What the server has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UringStats {
    /// The same figures as the loop's echo (`idle_closed` stays 0: no idle timeout here).
    pub echo: EchoStats,
    /// What the kernel offered the ring.
    pub features: Features,
    /// Accept is multishot (false once the kernel refused it).
    pub multishot_accept: bool,
    /// Recv is multishot, with a buffer ring (false once the kernel refused it).
    pub multishot_recv: bool,
    /// Slots of registered files: sockets the kernel finds without a lookup per operation.
    pub registered_files: u32,
    /// Completions for a connection already closed (its slot freed or reused): dropped.
    pub stale: u64,
    /// Cancels asked for, and of them those that lost the race (the operation had
    /// completed or was completing: its result came anyway).
    pub cancels: u64,
    /// Cancels that found nothing left to cancel.
    pub cancels_lost: u64,
    /// Recvs that found no provided buffer free (`ENOBUFS`) and were retried.
    pub no_buffer: u64,
    /// Operations in flight now (an accept and a tick when idle).
    pub in_flight: usize,
}

struct Server {
    ring: Ring,
    listener: TcpListener,
    conns: Slab<Conn>,
    /// Registered-file slots: connection `key` uses slot `key` when `key < slots`.
    slots: u32,
    next_gen: u32,
    max_conns: usize,
    /// Connections whose recv found no buffer: armed again after this batch.
    starved: Vec<(usize, u32)>,
    accepting: bool,
    accept_after: Option<Instant>,
    stopping: Option<Instant>,
    stats: UringStats,
}

/// The older paths, forced on a kernel that has the newer ones, so both are tested.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fallbacks {
    /// No provided-buffer ring: every connection lends the kernel its own read buffer.
    pub own_read_buffers: bool,
    /// One accept per connection instead of a multishot accept.
    pub single_accept: bool,
    /// One recv per arrival instead of a multishot recv.
    pub single_recv: bool,
    /// Plain fds in every operation, no registered files.
    pub plain_fds: bool,
}

/// Listen on `config.addr`, call `ready` with the bound address and what the kernel
/// offered, and echo until `stop` is set (seen within 100 ms). `live` gets the stats
/// after every batch of completions. The ring is made here, on the thread that runs it.
pub fn serve(
    config: &EchoConfig,
    stop: &AtomicBool,
    live: &Mutex<UringStats>,
    ready: impl FnOnce(SocketAddr, &UringStats),
) -> io::Result<UringStats> {
    serve_with(config, Fallbacks::default(), stop, live, ready)
}

/// [`serve`], with some of the newer kernel features left unused.
pub fn serve_with(
    config: &EchoConfig,
    fallbacks: Fallbacks,
    stop: &AtomicBool,
    live: &Mutex<UringStats>,
    ready: impl FnOnce(SocketAddr, &UringStats),
) -> io::Result<UringStats> {
    if config.idle_timeout.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "the uring echo has no idle timeout; use --backend epoll",
        ));
    }
    let max_conns = config.max_conns.min(MAX_CONNS);
    let (ring, slots) = make_ring(fallbacks, max_conns)?;
    let listener = listen(config.addr)?;
    let mut s = Server {
        stats: UringStats {
            features: ring.features(),
            multishot_accept: !fallbacks.single_accept,
            multishot_recv: !fallbacks.single_recv,
            registered_files: slots,
            ..UringStats::default()
        },
        ring,
        listener,
        conns: Slab::new(),
        next_gen: 0,
        max_conns,
        slots,
        starved: Vec::new(),
        accepting: false,
        accept_after: None,
        stopping: None,
    };
    s.arm_accept()?;
    s.ring.tick(TICK, name(SERVER, 0, Op::Tick))?;
    ready(s.listener.local_addr()?, &s.stats);
    s.run(stop, live)?;
    Ok(s.stats)
}

/// The ring with what `fallbacks` leaves on: its buffer ring, and registered-file slots.
fn make_ring(fallbacks: Fallbacks, max_conns: usize) -> io::Result<(Ring, u32)> {
    let bufs = if fallbacks.own_read_buffers { 0 } else { BUFS };
    let mut ring = Ring::new(ENTRIES, bufs, BUF_SIZE)?;
    let slots = if fallbacks.plain_fds {
        0
    } else {
        ring.register_files(u32::try_from(max_conns).unwrap_or(MAX_SLOTS).min(MAX_SLOTS))
    };
    Ok((ring, slots))
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    let setup = || -> io::Result<()> {
        sock.set_reuse_address(true)?;
        sock.set_cloexec(true)?;
        sock.bind(&addr.into())?;
        sock.listen(1024)
    };
    setup().map_err(|e| crate::error::context(format!("listening on {addr}"), e))?;
    Ok(sock.into())
}

impl Server {
    fn run(&mut self, stop: &AtomicBool, live: &Mutex<UringStats>) -> io::Result<()> {
        let mut done = Vec::new();
        loop {
            self.ring.wait(&mut done)?;
            for c in done.drain(..) {
                self.on_completion(c);
            }
            self.retry_starved();
            if stop.load(Ordering::Relaxed) && self.stopping.is_none() {
                self.begin_stop();
            }
            self.publish(live);
            if let Some(since) = self.stopping {
                if self.ring.in_flight() == 0 || since.elapsed() > STOP_GRACE {
                    return Ok(());
                }
            }
        }
    }

    fn publish(&mut self, live: &Mutex<UringStats>) {
        self.stats.echo.open = self.conns.len();
        self.stats.in_flight = self.ring.in_flight();
        if let Ok(mut l) = live.lock() {
            l.clone_from(&self.stats);
        }
    }

    fn on_completion(&mut self, c: Completion) {
        let (key, gen, op) = parse(c.user_data);
        match op {
            Some(Op::Accept) => self.on_accept(c),
            Some(Op::Tick) => self.on_tick(),
            Some(Op::CancelRecv | Op::CancelSend | Op::CancelAccept | Op::CancelTick) => {
                if matches!(-c.result, libc::ENOENT | libc::EALREADY) {
                    self.stats.cancels_lost += 1;
                }
            }
            Some(op @ (Op::Recv | Op::Send)) => {
                if self.conns.get(key).is_some_and(|conn| conn.gen == gen) {
                    match op {
                        Op::Recv => self.on_recv(key, c),
                        _ => self.on_send(key, c),
                    }
                } else {
                    // Late: its connection closed (and the slot may serve another now).
                    self.stats.stale += 1;
                    if let Some(bid) = c.buffer {
                        self.ring.give_back(bid);
                    }
                }
            }
            None => {}
        }
    }

    fn arm_accept(&mut self) -> io::Result<()> {
        let fd = self.listener.as_raw_fd();
        let multishot = self.stats.multishot_accept;
        self.ring
            .accept(fd, multishot, name(SERVER, 0, Op::Accept))?;
        self.accepting = true;
        Ok(())
    }

    fn on_accept(&mut self, c: Completion) {
        if let Some(fd) = c.fd {
            if self.conns.len() >= self.max_conns {
                self.stats.echo.shed += 1;
                drop(fd); // load shedding: accepted and closed at once
            } else {
                self.stats.echo.accepted += 1;
                let gen = self.next_gen;
                self.next_gen = self.next_gen.wrapping_add(1);
                let entry = self.conns.vacant_entry();
                let slot = u32::try_from(entry.key()).ok().filter(|s| *s < self.slots);
                let target = slot.and_then(|s| {
                    let put = self.ring.set_slot(s, Some(fd.as_raw_fd()));
                    put.ok().map(|()| Target::Slot(s))
                });
                let key = entry.key();
                entry.insert(Conn::new(fd.into(), target, gen));
                self.arm_recv(key, false);
            }
        }
        if c.more {
            return;
        }
        self.accepting = false;
        match -c.result {
            libc::ECANCELED => return,
            libc::EINVAL if self.stats.multishot_accept => self.stats.multishot_accept = false,
            e if e > 0 && !matches!(e, libc::ECONNABORTED | libc::EINTR | libc::EAGAIN) => {
                // Out of fds (or worse): the connection stays queued; try again later.
                self.stats.echo.accept_errors += 1;
                self.accept_after = Some(Instant::now() + TICK);
                return;
            }
            _ => {}
        }
        if self.stopping.is_none() && self.arm_accept().is_err() {
            self.accept_after = Some(Instant::now() + TICK);
        }
    }

    fn on_tick(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        let due = self.accept_after.is_some_and(|t| Instant::now() >= t);
        if !self.accepting && due && self.arm_accept().is_ok() {
            self.accept_after = None;
        }
        // Without the tick the loop could sleep forever and never see the stop flag.
        let _ = self.ring.tick(TICK, name(SERVER, 0, Op::Tick));
    }

    fn retry_starved(&mut self) {
        if self.starved.is_empty() || self.ring.buffers_free() == 0 {
            return;
        }
        for (key, gen) in std::mem::take(&mut self.starved) {
            if self
                .conns
                .get(key)
                .is_some_and(|c| c.gen == gen && !c.reading)
            {
                self.arm_recv(key, false);
            }
        }
    }

    /// No more accepts, every connection closed; the loop ends once the kernel has
    /// answered every operation in flight (or after `STOP_GRACE`).
    fn begin_stop(&mut self) {
        self.stopping = Some(Instant::now());
        if self.accepting {
            let _ = self.ring.cancel(
                name(SERVER, 0, Op::Accept),
                name(SERVER, 0, Op::CancelAccept),
            );
        }
        let _ = self
            .ring
            .cancel(name(SERVER, 0, Op::Tick), name(SERVER, 0, Op::CancelTick));
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(key, false);
        }
    }
}
