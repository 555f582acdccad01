//! The echo server on the loop: every byte a client sends comes back, in order.
//!
//! What makes it production-correct rather than a demo:
//! - **Backpressure.** A client that sends but does not read would make us queue its
//!   echo without bound. Once a connection's write queue passes the high-water mark we
//!   stop reading from it (the kernel buffers fill, and the client's sends block), and we
//!   resume when the queue falls to the low-water mark. Memory per connection is bounded
//!   by the high-water mark plus one read.
//! - **Half-close.** EOF while echoes are still queued: flush them, send our FIN, close.
//! - **Load shedding.** Past `max_conns` a new connection is accepted and closed at once,
//!   so the ones already accepted keep their service. A connection counts until the
//!   server has closed it: after its FIN is sent, the close comes a phase later, so a
//!   client that reconnects the moment it reads EOF may find its old slot still held.
//! - **Peers that vanish** (reset, broken pipe) close only their own connection.

use crate::handle::{Listener, Tcp, Timer};
use crate::{Loop, ReadEvent};
use std::cell::RefCell;
use std::collections::HashSet;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Stop reading a connection whose echo queue holds more than this...
pub const HIGH_WATER: usize = 1024 * 1024;
/// ...and read again once it has drained to this.
pub const LOW_WATER: usize = 256 * 1024;
// Resuming above the mark that paused would flap between the two on every write.
const _: () = assert!(LOW_WATER < HIGH_WATER);

/// How an echo server is set up.
#[derive(Clone, Debug)]
pub struct EchoConfig {
    /// Where to listen (port 0: any free port).
    pub addr: SocketAddr,
    /// More connections than this are accepted and closed at once.
    pub max_conns: usize,
    /// Close a connection that has sent nothing for this long (off when `None`): a peer
    /// that vanished without a FIN would otherwise hold its connection forever.
    pub idle_timeout: Option<Duration>,
}

impl Default for EchoConfig {
    fn default() -> Self {
        EchoConfig {
            addr: ([127, 0, 0, 1], 7878).into(),
            max_conns: 100_000,
            idle_timeout: None,
        }
    }
}

/// What the server has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EchoStats {
    /// Connections accepted and served.
    pub accepted: u64,
    /// Connections open now.
    pub open: usize,
    /// Connections closed at once because `max_conns` were open.
    pub shed: u64,
    /// Bytes echoed.
    pub bytes: u64,
    /// Times a connection was paused for backpressure.
    pub paused: u64,
    /// The largest write queue any connection reached, in bytes.
    pub max_queue: usize,
    /// Connections that ended with an error (reset, broken pipe).
    pub errors: u64,
    /// Connections closed by the idle timeout.
    pub idle_closed: u64,
    /// Accepts that failed (out of fds: once per episode).
    pub accept_errors: u64,
}

/// What the server keeps per connection, on the connection's handle (`set_data`).
struct EchoConn {
    last_active: Instant,
}

type OnError = Box<dyn FnMut(&io::Error)>;
/// What a listener runs for each accepted connection.
pub type OnConnection = Box<dyn FnMut(&mut Loop, Listener, io::Result<Tcp>)>;

struct Shared {
    config: EchoConfig,
    stats: EchoStats,
    conns: HashSet<Tcp>,
    on_error: Option<OnError>,
}

/// A running echo server: its listener, its connections and its stats.
#[derive(Clone)]
pub struct Echo {
    listener: Listener,
    shared: Rc<RefCell<Shared>>,
}

impl Echo {
    /// Listen on `config.addr` and echo on `lp`.
    pub fn listen(lp: &mut Loop, config: EchoConfig) -> io::Result<Echo> {
        let addr = config.addr;
        Echo::listen_with(lp, config, |lp, on_conn| lp.tcp_listen(addr, on_conn))
    }

    /// Echo on the listener `listen` makes (a loop group's socket: src/group/echo.rs).
    pub fn listen_with(
        lp: &mut Loop,
        config: EchoConfig,
        listen: impl FnOnce(&mut Loop, OnConnection) -> io::Result<Listener>,
    ) -> io::Result<Echo> {
        let shared = Rc::new(RefCell::new(Shared {
            config: config.clone(),
            stats: EchoStats::default(),
            conns: HashSet::new(),
            on_error: None,
        }));
        let s = shared.clone();
        let on_conn: OnConnection = Box::new(move |lp, _, r| match r {
            Ok(conn) => on_connection(lp, &s, conn),
            Err(e) => report(&s, &e),
        });
        let listener = listen(lp, on_conn)?;
        Ok(Echo { listener, shared })
    }

    /// Tell `f` about errors no client sees (a failed accept); the library prints nothing.
    pub fn on_error(&self, f: impl FnMut(&io::Error) + 'static) {
        self.shared.borrow_mut().on_error = Some(Box::new(f));
    }

    /// The bound address (the real port when listening on port 0).
    pub fn local_addr(&self, lp: &Loop) -> io::Result<SocketAddr> {
        lp.local_addr(self.listener)
    }

    /// A copy of the stats (`open` is read off the connection set, not kept twice).
    pub fn stats(&self) -> EchoStats {
        let s = self.shared.borrow();
        EchoStats {
            open: s.conns.len(),
            ..s.stats.clone()
        }
    }

    /// Graceful stop: no more accepts; every connection is closed. The loop then exits.
    pub fn shutdown(&self, lp: &mut Loop) {
        lp.close(self.listener);
        let conns: Vec<Tcp> = self.shared.borrow_mut().conns.drain().collect();
        for conn in conns {
            lp.close(conn);
        }
    }
}

fn report(shared: &Rc<RefCell<Shared>>, e: &io::Error) {
    let mut s = shared.borrow_mut();
    s.stats.accept_errors += 1;
    if let Some(f) = s.on_error.as_mut() {
        f(e);
    }
}

fn on_connection(lp: &mut Loop, shared: &Rc<RefCell<Shared>>, conn: Tcp) {
    let idle = {
        let mut s = shared.borrow_mut();
        if s.conns.len() >= s.config.max_conns {
            s.stats.shed += 1;
            drop(s);
            lp.close(conn);
            return;
        }
        s.conns.insert(conn);
        s.stats.accepted += 1;
        s.config.idle_timeout
    };
    lp.set_data(
        conn,
        EchoConn {
            last_active: lp.now(),
        },
    );
    if let Some(idle) = idle {
        watch_idle(lp, shared, conn, idle, idle);
    }
    let s = shared.clone();
    if lp
        .read_start(conn, move |lp, conn, ev| on_read(lp, &s, conn, ev))
        .is_err()
    {
        finish(lp, shared, conn, true);
    }
}

/// One timer per connection, re-armed lazily: a read only stamps `last_active`; when the
/// timer fires it closes the connection or sleeps for the rest of the idle window. No
/// timer operation per read.
fn watch_idle(
    lp: &mut Loop,
    shared: &Rc<RefCell<Shared>>,
    conn: Tcp,
    idle: Duration,
    wait: Duration,
) {
    let s = shared.clone();
    let timer: Timer = lp.set_timeout(wait, move |lp, _| {
        let Some(last) = lp.data::<EchoConn>(conn).map(|c| c.last_active) else {
            return; // closed meanwhile
        };
        let quiet = lp.now().saturating_duration_since(last);
        if quiet >= idle {
            s.borrow_mut().stats.idle_closed += 1;
            finish(lp, &s, conn, false);
        } else {
            watch_idle(lp, &s, conn, idle, idle - quiet);
        }
    });
    // The connection holds the loop, not its idle timer.
    lp.unref_handle(timer);
}

fn on_read(lp: &mut Loop, shared: &Rc<RefCell<Shared>>, conn: Tcp, ev: ReadEvent<'_>) {
    match ev {
        ReadEvent::Data(bytes) => {
            let now = lp.now();
            if let Some(c) = lp.data_mut::<EchoConn>(conn) {
                c.last_active = now;
            }
            if lp.write(conn, bytes).is_err() {
                return finish(lp, shared, conn, true);
            }
            let queued = lp.write_queue_len(conn);
            let mut s = shared.borrow_mut();
            s.stats.bytes += bytes.len() as u64;
            s.stats.max_queue = s.stats.max_queue.max(queued);
            if queued > HIGH_WATER {
                s.stats.paused += 1;
                drop(s);
                lp.read_stop(conn);
                // Paused, the drain is how we hear a reset too: not reading, nothing else
                // would tell us.
                let s = shared.clone();
                let resumed = lp.on_drain(conn, LOW_WATER, move |lp, conn, r| match r {
                    // Closed meanwhile: nothing to resume.
                    Ok(()) => {
                        let _ = lp.read_resume(conn);
                    }
                    Err(_) => finish(lp, &s, conn, true),
                });
                if resumed.is_err() {
                    finish(lp, shared, conn, true);
                }
            }
        }
        ReadEvent::Eof => {
            // Half-close: the echoes still queued go out first, then our FIN, then close.
            let s = shared.clone();
            let shut = lp.shutdown(conn, move |lp, conn, r| finish(lp, &s, conn, r.is_err()));
            if shut.is_err() {
                finish(lp, shared, conn, false);
            }
        }
        ReadEvent::Error(_) => finish(lp, shared, conn, true),
    }
}

fn finish(lp: &mut Loop, shared: &Rc<RefCell<Shared>>, conn: Tcp, failed: bool) {
    let mut s = shared.borrow_mut();
    if s.conns.remove(&conn) {
        if failed {
            s.stats.errors += 1;
        }
        drop(s);
        lp.close(conn);
    }
}
