//! The wire: read requests off each connection, frame them, hand whole ones to the
//! routes, write the one answer each gets, keep every deadline, and hold each
//! connection's output to a bound. It knows nothing of chat: the routes are a [`Routes`]
//! given at start (dependencies go one way, routes → wire).
//!
//! One connection's life:
//!
//! ```text
//!              accept (Header deadline)
//!                 │
//!                 ▼        whole request: the routes answer at once (keep-alive)
//!   ┌───────► Reading ◄──────────────────────────────────────────────┐
//!   │             │  └── the routes keep the Reply ──► Held ── answer ┘ (pipeline
//!   │             │      (a poll)                       │    resumes in the check
//!   │             │                                     │    phase; answered early
//!   │             │                                     │    if a request's worth
//!   │             │                                     │    is pipelined behind)
//!   │             │ 400 / 408 / 413 / 431 / 501,        │ same, when the answer says
//!   │             │ Connection: close, shutdown         │ Connection: close
//!   │             ▼                                     │
//!   │          Closing ◄────────────────────────────────┘
//!   │             │ queue flushed, FIN sent
//!   │             ▼
//!   │         Lingering ── EOF, LINGER passed, or shutdown ──► closed
//!   │
//!   └ any state ── EOF / reset / Idle deadline / send timeout / grace cut ──► closed
//! ```
//!
//! A connection's state (`Conn`) rides on its handle (`lp.set_data`, libuv's
//! `handle->data`) and goes with it; the wire keeps only the set of open connections,
//! for `/stats` and for shutdown.
//!
//! Beside the phase, two flags stop reading (Node's `socket.pause()`): `output_full`
//! (more than [`HIGH_WATER`] bytes queued for a client that does not read: reading and
//! pipelined requests wait for the drain) and `yielded` (one connection answered
//! [`PIPELINE_TURN`] requests, or [`TURN_BYTES`] of answers, in a row: the rest wait for
//! the check phase, so one pipelining client cannot starve the others).
//!
//! Deadlines are separate, never cleared together: the read side has one timer of
//! Header (a request head must arrive in time: 408), Idle (keep-alive with nothing
//! asked) or Linger (after our FIN, until the client's); the write side has the send
//! deadline, a cancel scope armed while anything is queued: a client that leaves a
//! reply unread for `send_timeout` is closed, whatever state it is in. Every request's
//! scope (the send deadlines here, the held polls' in the routes) is a child of the
//! server's scope, whose deadline is the shutdown grace (`conn/scopes.rs`).

use crate::servers::http::{parse_head, Head, Limits, Parsed, Response};
use crate::{Loop, ReadEvent, Scope, Tcp, Timer};
use std::cell::RefCell;
use std::collections::HashSet;
use std::io;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

mod flow;
mod reply;
mod scopes;

pub use reply::Reply;

/// Queued output above which a connection stops being read (Node's default
/// `highWaterMark` for sockets is 16 KiB; we answer in bigger pieces).
pub const HIGH_WATER: usize = 64 * 1024;
/// Requests answered in a row for one connection before it yields to the others.
pub const PIPELINE_TURN: usize = 32;
/// Bytes of answers written in a row for one connection before it yields: 32 small
/// answers are cheap, 32 capped poll answers (2 MiB to build and copy) are not.
pub const TURN_BYTES: usize = 64 * 1024;
/// How long after our FIN we keep reading (and discarding) before closing: closing a
/// socket with unread input sends a RST, which can destroy the answer we just sent.
pub const LINGER: Duration = Duration::from_secs(2);

/// What the routes give the wire.
pub trait Routes {
    /// A whole request: answer it through `reply`, now or later (a held poll).
    fn request(&self, lp: &mut Loop, wire: &Wire, reply: Reply, req: Request);
    /// The connection is gone (client left, deadline, shutdown cut): drop any `Reply`
    /// kept for it, unsent, and its timer.
    fn closed(&self, lp: &mut Loop, conn: Tcp);
    /// More than one request's worth of bytes is pipelined behind the held `Reply` of
    /// `conn`: answer it now, so the client's later requests can be read.
    fn release(&self, lp: &mut Loop, conn: Tcp);
}

/// One request, whole.
#[derive(Debug)]
pub struct Request {
    /// Request line and headers.
    pub head: Head,
    /// Exactly `Content-Length` bytes.
    pub body: Vec<u8>,
    /// The client's address.
    pub peer: IpAddr,
}

/// The wire's limits and timeouts.
#[derive(Clone, Copy, Debug)]
pub struct WireConfig {
    /// Request size limits.
    pub limits: Limits,
    /// A request head must be complete this soon after it starts (408).
    pub header_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    pub idle_timeout: Duration,
    /// Queued output must drain within this, or the connection is closed.
    pub send_timeout: Duration,
    /// Connections at most; more are accepted and closed.
    pub max_conns: usize,
    /// At shutdown, connections still open after this are cut.
    pub shutdown_grace: Duration,
}

/// What the wire counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Connections accepted in all.
    pub accepted: u64,
    /// Accepts that failed (out of fds: the listener backs off by itself).
    pub accept_errors: u64,
    /// Connections accepted and closed at once (too many connections).
    pub shed_connections: u64,
    /// Requests refused with 431, 413 or 408.
    pub limit_rejections: u64,
    /// Requests answered 400 (each closes its connection).
    pub bad_requests: u64,
    /// Writes that failed (the peer vanished without a FIN).
    pub write_errors: u64,
    /// Connections closed because their output did not drain within the send timeout.
    pub send_timeouts: u64,
    /// Times a connection stopped being read because its output was over HIGH_WATER.
    pub paused_for_output: u64,
    /// Connections still open when the shutdown grace ran out, and closed.
    pub cut_at_shutdown: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Reading,
    Held,
    Closing,
    Lingering,
    /// Closed by the wire; the handle (and this state) goes in the close phase.
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Deadline {
    Header,
    Idle,
    Linger,
}

/// One connection's state, kept on its handle.
struct Conn {
    peer: IpAddr,
    buf: Vec<u8>,
    phase: Phase,
    /// Inside `Routes::request`: an answer sent now needs no resume.
    in_route: bool,
    deadline: Option<(Deadline, Timer)>,
    /// The send deadline's scope, while output is queued.
    send_deadline: Option<Scope>,
    /// What we last asked of the loop (read_resume / read_stop).
    reading: bool,
    output_full: bool,
    yielded: bool,
    /// Bytes of answers written in this turn.
    turn_bytes: usize,
    continue_sent: bool,
}

struct State {
    cfg: WireConfig,
    open: HashSet<Tcp>,
    stats: WireStats,
    shutting_down: bool,
    /// The server's scope: every request scope's parent; its deadline is the grace.
    scope: Option<Scope>,
    /// Connections whose pipelined requests are taken up in the next check phase.
    resume: Vec<Tcp>,
}

struct Inner {
    state: RefCell<State>,
    routes: Rc<dyn Routes>,
}

/// The connections of one server. Cheap to clone (one `Rc`).
#[derive(Clone)]
pub struct Wire(Rc<Inner>);

impl Wire {
    /// A wire that hands requests to `routes`.
    pub fn new(cfg: WireConfig, routes: Rc<dyn Routes>) -> Wire {
        let state = State {
            cfg,
            open: HashSet::new(),
            stats: WireStats::default(),
            shutting_down: false,
            scope: None,
            resume: Vec::new(),
        };
        Wire(Rc::new(Inner {
            state: RefCell::new(state),
            routes,
        }))
    }

    /// Open connections.
    pub fn connections(&self) -> usize {
        self.0.state.borrow().open.len()
    }

    /// The counters so far.
    pub fn stats(&self) -> WireStats {
        self.0.state.borrow().stats
    }

    /// Whether `shutdown` was called.
    pub fn shutting_down(&self) -> bool {
        self.0.state.borrow().shutting_down
    }

    fn cfg(&self) -> WireConfig {
        self.0.state.borrow().cfg
    }

    fn count(&self, f: impl FnOnce(&mut WireStats)) {
        f(&mut self.0.state.borrow_mut().stats);
    }

    /// The state of an open connection (`None` once the wire has closed it).
    fn with_conn<T>(&self, lp: &mut Loop, conn: Tcp, f: impl FnOnce(&mut Conn) -> T) -> Option<T> {
        lp.data_mut::<Conn>(conn)
            .filter(|c| c.phase != Phase::Closed)
            .map(f)
    }

    /// What the listener gives: a new connection, or the error of a failed accept.
    pub fn accept(&self, lp: &mut Loop, accepted: io::Result<Tcp>) {
        let Ok(conn) = accepted else {
            return self.count(|st| st.accept_errors += 1);
        };
        let Ok(peer) = lp.peer_addr(conn).map(|a| a.ip()) else {
            lp.close(conn);
            return;
        };
        {
            let mut s = self.0.state.borrow_mut();
            if s.shutting_down || s.open.len() >= s.cfg.max_conns {
                s.stats.shed_connections += 1;
                drop(s);
                lp.close(conn);
                return;
            }
            s.stats.accepted += 1;
            s.open.insert(conn);
        }
        if !lp.set_data(conn, Conn::new(peer)) {
            return self.drop_conn(lp, conn);
        }
        self.arm(lp, conn, Deadline::Header);
        let w = self.clone();
        if lp
            .read_start(conn, move |lp, conn, ev| w.on_read(lp, conn, ev))
            .is_err()
        {
            self.drop_conn(lp, conn);
        }
    }

    fn on_read(&self, lp: &mut Loop, conn: Tcp, ev: ReadEvent<'_>) {
        let data = match ev {
            ReadEvent::Data(d) => d,
            // The client is gone: a held poll is dropped this tick, never written to.
            ReadEvent::Eof | ReadEvent::Error(_) => return self.drop_conn(lp, conn),
        };
        let bound = {
            let limits = self.cfg().limits;
            limits.max_header_bytes + limits.max_body
        };
        let step = self.with_conn(lp, conn, |c| match c.phase {
            Phase::Reading | Phase::Held => {
                c.buf.extend_from_slice(data);
                Some((c.phase, c.buf.len() > bound))
            }
            _ => None, // answered for good: discard
        });
        match step.flatten() {
            Some((Phase::Held, true)) => self.0.routes.clone().release(lp, conn),
            Some((Phase::Reading, _)) => self.process(lp, conn),
            _ => {}
        }
    }

    /// Take whole requests from the buffer while the connection may answer them.
    fn process(&self, lp: &mut Loop, conn: Tcp) {
        self.with_conn(lp, conn, |c| c.turn_bytes = 0);
        let mut taken = 0;
        while self.take_one(lp, conn) {
            taken += 1;
            let written = self.with_conn(lp, conn, |c| c.turn_bytes).unwrap_or(0);
            if taken == PIPELINE_TURN || written >= TURN_BYTES {
                self.yield_turn(lp, conn);
                break;
            }
        }
        self.settle(lp, conn);
    }

    /// Route one whole request; false when there is none to take now.
    fn take_one(&self, lp: &mut Loop, conn: Tcp) -> bool {
        let limits = self.cfg().limits;
        let parsed = match lp.data::<Conn>(conn) {
            Some(c)
                if c.phase == Phase::Reading
                    && !c.output_full
                    && !c.yielded
                    && !c.buf.is_empty() =>
            {
                parse_head(&c.buf, &limits)
            }
            _ => return false,
        };
        let head = match parsed {
            Parsed::Partial => return false,
            Parsed::Invalid(resp) => {
                self.reject(lp, conn, &resp);
                return false;
            }
            Parsed::Head(h) => h,
        };
        if head.content_length > limits.max_body {
            let msg = format!(
                "body of {} bytes is over the {} byte limit",
                head.content_length, limits.max_body
            );
            self.reject(lp, conn, &Response::text(413, &msg));
            return false;
        }
        let whole = head.head_len + head.content_length;
        let taken = self.with_conn(lp, conn, |c| {
            if c.buf.len() < whole {
                return None;
            }
            let body = c.buf[head.head_len..whole].to_vec();
            c.buf.drain(..whole);
            if c.buf.is_empty() {
                // Held polls and idle keep-alives wait with no buffer at all: ten thousand
                // of them would otherwise keep ten thousand small allocations.
                c.buf = Vec::new();
            }
            c.continue_sent = false;
            c.phase = Phase::Held;
            c.in_route = true;
            Some((body, c.peer))
        });
        let Some((body, peer)) = taken.flatten() else {
            if head.expect_continue {
                self.send_continue(lp, conn);
            }
            return false;
        };
        self.clear_deadline(lp, conn);
        let reply = Reply::new(self.clone(), conn, &head);
        let req = Request { head, body, peer };
        self.0.routes.clone().request(lp, self, reply, req);
        let phase = self.with_conn(lp, conn, |c| {
            c.in_route = false;
            c.phase
        });
        phase == Some(Phase::Reading)
    }

    /// Forget a connection and close it. A held poll on it is dropped by the routes,
    /// with its timer, never written to.
    fn drop_conn(&self, lp: &mut Loop, conn: Tcp) {
        let last = {
            let mut s = self.0.state.borrow_mut();
            if !s.open.remove(&conn) {
                return;
            }
            s.shutting_down && s.open.is_empty()
        };
        let deadlines = self.with_conn(lp, conn, |c| {
            c.phase = Phase::Closed;
            (c.deadline.take().map(|(_, t)| t), c.send_deadline.take())
        });
        if let Some((read_side, send)) = deadlines {
            read_side.map(|t| lp.clear_timer(t));
            send.map(|s| lp.end_scope(s));
        }
        self.0.routes.clone().closed(lp, conn);
        lp.close(conn);
        if last {
            self.end_server_scope(lp); // the grace's timer goes: the loop may exit now
        }
    }
}

impl Conn {
    fn new(peer: IpAddr) -> Conn {
        Conn {
            peer,
            buf: Vec::new(),
            phase: Phase::Reading,
            in_route: false,
            deadline: None,
            send_deadline: None,
            reading: true,
            output_full: false,
            yielded: false,
            turn_bytes: 0,
            continue_sent: false,
        }
    }
}
