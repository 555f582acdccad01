//! The long-poll chat server: the routes, on top of the wire in [`conn`].
//!
//! The bug it is built against: a client opens a long poll and closes it at once; the
//! server's error path answers and finishes the response; later the poll's timer fires
//! and writes onto the finished response, and the process dies. Here that cannot happen:
//! - a [`Reply`] is the right to answer one request; sending consumes it, so a second
//!   send does not compile;
//! - a held poll's `Reply` lives only in the waiter table; when the connection ends
//!   (EOF, reset, a deadline) the wire tells the routes (`Routes::closed`) in that same
//!   tick and the waiter is removed with its timer, so neither a publish nor a timeout
//!   can find it again;
//! - read interest stays on while a poll is held, so the client's FIN is seen at once
//!   (a server that stops reading after the headers never notices the client leave).
//!
//! And it holds against clients that mean harm: every number a client sends is parsed
//! checked (400 naming the field); framing is strict (see `http.rs`); each connection's
//! output is bounded and unread replies time out (see `conn.rs`); one poll answer is
//! capped (`"more": true`); shutdown has a deadline. Every number it holds has a bound
//! with a documented answer at the bound: header size and count (431), body (413),
//! header time (408), idle keep-alive (close), waiters (503 with Retry-After, accepted
//! waiters untouched), connections (accept and close), publishes per client (429 with
//! Retry-After), retained messages (a ring: old cursors get `reset`).

mod answer;
mod conn;
mod log;
pub mod params;
mod ratelimit;

pub use answer::{MAX_ANSWER_BYTES, MAX_ANSWER_MESSAGES};
pub use conn::{Reply, Request, WireStats, HIGH_WATER, LINGER, PIPELINE_TURN, TURN_BYTES};
pub use log::{Message, MessageLog};
pub use ratelimit::RateLimiter;

use super::http::{Limits, Response};
use crate::{Listener, Loop, Tcp, Timer};
use conn::{Routes, Wire, WireConfig};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The chat page, served from the binary.
const CHAT_PAGE: &str = include_str!("chat.html");
/// The longest hold a client may ask for.
pub const MAX_POLL_TIMEOUT: Duration = Duration::from_secs(120);

/// How the server is set up; every limit has a flag on the command line.
#[derive(Clone, Debug)]
pub struct LongPollConfig {
    /// Where to listen.
    pub addr: SocketAddr,
    /// How long a poll is held when the client does not say (at most 120 s).
    pub poll_timeout: Duration,
    /// Held polls at most; more get 503.
    pub max_waiters: usize,
    /// Connections at most; more are accepted and closed.
    pub max_conns: usize,
    /// Messages retained.
    pub log_size: usize,
    /// Longest message text, bytes; longer gets 413.
    pub max_text: usize,
    /// A request head must be complete this soon after it starts (408).
    pub header_timeout: Duration,
    /// An idle keep-alive connection is closed after this.
    pub idle_timeout: Duration,
    /// A reply left unread this long closes its connection.
    pub send_timeout: Duration,
    /// At shutdown, connections still open after this are cut.
    pub shutdown_grace: Duration,
    /// Publishes per second per client address, and the burst allowed (429).
    pub publish_rate: f64,
    /// The burst of publishes a client may save up.
    pub publish_burst: f64,
    /// Request size limits.
    pub limits: Limits,
}

impl Default for LongPollConfig {
    fn default() -> Self {
        LongPollConfig {
            addr: ([127, 0, 0, 1], 8080).into(),
            poll_timeout: Duration::from_secs(25),
            max_waiters: 10_000,
            max_conns: 100_000,
            log_size: 1024,
            max_text: 4096,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            publish_rate: 20.0,
            publish_burst: 40.0,
            limits: Limits::default(),
        }
    }
}

impl LongPollConfig {
    fn wire(&self) -> WireConfig {
        WireConfig {
            limits: self.limits,
            header_timeout: self.header_timeout,
            idle_timeout: self.idle_timeout,
            send_timeout: self.send_timeout,
            max_conns: self.max_conns,
            shutdown_grace: self.shutdown_grace,
        }
    }
}

/// What the routes counted (the wire's counters are in [`WireStats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChatStats {
    /// Messages published.
    pub published: u64,
    /// Polls answered because a message came (or was already there).
    pub answered_by_message: u64,
    /// Polls answered empty when their timeout passed.
    pub answered_by_timeout: u64,
    /// Held polls answered empty at once because the client pipelined more than one
    /// request's worth of bytes behind them.
    pub answered_early: u64,
    /// Held polls whose client went away first: never written to.
    pub aborted: u64,
    /// Polls refused with 503 (too many waiters).
    pub shed_polls: u64,
    /// Publishes refused with 429.
    pub rate_limited: u64,
}

/// What the server has done (also served as `GET /stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LongPollStats {
    /// The routes' counters.
    pub chat: ChatStats,
    /// The wire's counters.
    pub wire: WireStats,
}

struct Waiter {
    reply: Reply,
    cursor: u64,
    timer: Timer,
}

struct Chat {
    cfg: LongPollConfig,
    log: MessageLog,
    answers: answer::AnswerCache,
    waiters: HashMap<Tcp, Waiter>,
    limiter: RateLimiter,
    stats: ChatStats,
}

/// The routes, as the wire sees them.
#[derive(Clone)]
struct ChatRoutes(Rc<RefCell<Chat>>);

/// A running long-poll server.
#[derive(Clone)]
pub struct LongPoll {
    listener: Listener,
    wire: Wire,
    chat: ChatRoutes,
}

impl LongPoll {
    /// Listen on `cfg.addr` and serve on `lp`.
    pub fn listen(lp: &mut Loop, cfg: LongPollConfig) -> io::Result<LongPoll> {
        let chat = ChatRoutes(Rc::new(RefCell::new(Chat {
            log: MessageLog::new(cfg.log_size),
            answers: answer::AnswerCache::default(),
            limiter: RateLimiter::new(cfg.publish_rate, cfg.publish_burst),
            waiters: HashMap::new(),
            stats: ChatStats::default(),
            cfg: cfg.clone(),
        })));
        let wire = Wire::new(cfg.wire(), Rc::new(chat.clone()));
        let w = wire.clone();
        let listener = lp.tcp_listen(cfg.addr, move |lp, _, accepted| w.accept(lp, accepted))?;
        Ok(LongPoll {
            listener,
            wire,
            chat,
        })
    }

    /// The bound address.
    pub fn local_addr(&self, lp: &Loop) -> io::Result<SocketAddr> {
        lp.local_addr(self.listener)
    }

    /// The counters so far.
    pub fn stats(&self) -> LongPollStats {
        LongPollStats {
            chat: self.chat.0.borrow().stats,
            wire: self.wire.stats(),
        }
    }

    /// Polls held right now.
    pub fn waiters(&self) -> usize {
        self.chat.0.borrow().waiters.len()
    }

    /// Stop with a deadline: no more accepts; every held poll is answered (200, empty,
    /// `"shutdown":true`, `Connection: close`); idle connections close now; the rest
    /// may finish within `shutdown_grace`, then are cut (counted in `cut_at_shutdown`).
    /// Called again, it cuts at once.
    pub fn shutdown(&self, lp: &mut Loop) {
        lp.close(self.listener);
        self.wire.shutdown(lp);
        let waiters: Vec<Waiter> = self
            .chat
            .0
            .borrow_mut()
            .waiters
            .drain()
            .map(|(_, w)| w)
            .collect();
        for w in waiters {
            lp.clear_timer(w.timer);
            let body = answer::empty(w.cursor, true);
            w.reply.send(lp, &Response::json_text(200, body));
        }
    }
}

impl Routes for ChatRoutes {
    fn request(&self, lp: &mut Loop, wire: &Wire, reply: Reply, req: Request) {
        const GET_ROUTES: &str = "GET, HEAD";
        let (path, method) = (req.head.path.as_str(), req.head.method.as_str());
        let allowed = match path {
            "/" | "/poll" | "/stats" => GET_ROUTES,
            "/publish" => "POST",
            _ => {
                let resp = Response::text(404, &format!("no such path: {path}"));
                return reply.send(lp, &resp);
            }
        };
        let get = matches!(method, "GET" | "HEAD");
        if (allowed == GET_ROUTES && !get) || (allowed == "POST" && method != "POST") {
            let msg = format!("{method} is not allowed on {path}; use {allowed}");
            let resp = Response::text(405, &msg).with_header("Allow", allowed);
            return reply.send(lp, &resp);
        }
        match path {
            "/" => reply.send(lp, &Response::html(CHAT_PAGE)),
            "/poll" => self.poll(lp, wire, reply, &req),
            "/publish" => self.publish(lp, reply, &req),
            _ => {
                let body = self.stats_json(lp, wire);
                reply.send(lp, &Response::json(200, &body));
            }
        }
    }

    fn closed(&self, lp: &mut Loop, conn: Tcp) {
        let gone = self.0.borrow_mut().waiters.remove(&conn);
        if let Some(w) = gone {
            self.0.borrow_mut().stats.aborted += 1;
            lp.clear_timer(w.timer);
        }
    }

    fn release(&self, lp: &mut Loop, conn: Tcp) {
        let held = self.0.borrow_mut().waiters.remove(&conn);
        if let Some(w) = held {
            self.0.borrow_mut().stats.answered_early += 1;
            lp.clear_timer(w.timer);
            let body = answer::empty(w.cursor, false);
            w.reply.send(lp, &Response::json_text(200, body));
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ChatRoutes {
    fn poll(&self, lp: &mut Loop, wire: &Wire, reply: Reply, req: &Request) {
        let default_timeout = self.0.borrow().cfg.poll_timeout;
        let (cursor, timeout) = match params::poll(&req.head, default_timeout) {
            Ok(p) => p,
            Err(resp) => return reply.send(lp, &resp),
        };
        let ready = self.owed(cursor);
        if let Some(resp) = ready {
            self.0.borrow_mut().stats.answered_by_message += 1;
            return reply.send(lp, &resp);
        }
        let full = {
            let s = self.0.borrow();
            s.waiters.len() >= s.cfg.max_waiters || wire.shutting_down()
        };
        if full {
            // Shed new work, honour accepted work: the held polls are untouched.
            self.0.borrow_mut().stats.shed_polls += 1;
            let resp = Response::text(503, "too many held polls; retry shortly")
                .with_header("Retry-After", "1");
            return reply.send(lp, &resp);
        }
        let conn = reply.conn();
        let me = self.clone();
        let timer = lp.set_timeout(timeout, move |lp, _| me.on_poll_timeout(lp, conn));
        let waiter = Waiter {
            reply,
            cursor,
            timer,
        };
        self.0.borrow_mut().waiters.insert(conn, waiter);
    }

    fn on_poll_timeout(&self, lp: &mut Loop, conn: Tcp) {
        let Some(w) = self.0.borrow_mut().waiters.remove(&conn) else {
            return;
        };
        self.0.borrow_mut().stats.answered_by_timeout += 1;
        let body = answer::empty(w.cursor, false);
        w.reply.send(lp, &Response::json_text(200, body));
    }

    fn publish(&self, lp: &mut Loop, reply: Reply, req: &Request) {
        let max_text = self.0.borrow().cfg.max_text;
        let p = match params::publish(&req.head, &req.body, max_text) {
            Ok(p) => p,
            Err(resp) => return reply.send(lp, &resp),
        };
        let limited = self.0.borrow_mut().limiter.take(req.peer, Instant::now());
        if let Err(wait) = limited {
            self.0.borrow_mut().stats.rate_limited += 1;
            let secs = wait.as_secs().saturating_add(1);
            let resp = Response::json(429, &json!({ "error": "too many publishes; slow down" }))
                .with_header("Retry-After", secs.to_string());
            return reply.send(lp, &resp);
        }
        let latest = self.0.borrow().log.latest();
        if p.after.is_some_and(|after| after != latest) {
            return reply.send(lp, &Response::json(409, &json!({ "latest": latest })));
        }
        let id = {
            let mut s = self.0.borrow_mut();
            s.stats.published += 1;
            s.log.append(p.text, now_ms())
        };
        reply.send(lp, &Response::json(201, &json!({ "id": id })));
        self.answer_waiters(lp);
    }

    /// The answer `cursor` is owed now, if any: built once per cursor and message.
    fn owed(&self, cursor: u64) -> Option<Rc<Response>> {
        let s = &mut *self.0.borrow_mut();
        s.answers.get(&s.log, cursor)
    }

    /// A message came: every held poll is answered now, in this tick. Waiters mostly
    /// share a cursor: each distinct answer is built once, not once a waiter.
    fn answer_waiters(&self, lp: &mut Loop) {
        let waiters: Vec<Waiter> = self
            .0
            .borrow_mut()
            .waiters
            .drain()
            .map(|(_, w)| w)
            .collect();
        self.0.borrow_mut().stats.answered_by_message += waiters.len() as u64;
        for w in waiters {
            lp.clear_timer(w.timer);
            let resp = self.owed(w.cursor).unwrap_or_else(|| {
                Rc::new(Response::json_text(200, answer::empty(w.cursor, false)))
            });
            w.reply.send(lp, &resp);
        }
    }

    fn stats_json(&self, lp: &Loop, wire: &Wire) -> Value {
        let s = self.0.borrow();
        let (st, ws, m) = (&s.stats, wire.stats(), lp.metrics());
        json!({
            "connections": wire.connections(),
            "waiters": s.waiters.len(),
            "latest": s.log.latest(),
            "accepted": ws.accepted,
            "published": st.published,
            "answered_by_message": st.answered_by_message,
            "answered_by_timeout": st.answered_by_timeout,
            "answered_early": st.answered_early,
            "aborted": st.aborted,
            "shed_polls": st.shed_polls,
            "shed_connections": ws.shed_connections,
            "rate_limited": st.rate_limited,
            "limit_rejections": ws.limit_rejections,
            "bad_requests": ws.bad_requests,
            "write_errors": ws.write_errors,
            "send_timeouts": ws.send_timeouts,
            "paused_for_output": ws.paused_for_output,
            "cut_at_shutdown": ws.cut_at_shutdown,
            "loop": {
                "backend": lp.backend().name(),
                "ticks": m.ticks,
                "events": m.events,
                "idle_ms": u64::try_from(m.idle.as_millis()).unwrap_or(u64::MAX),
                "timers_fired": m.timers_fired,
                "timer_lateness_max_ms": u64::try_from(m.timer_lateness_max.as_millis()).unwrap_or(u64::MAX),
                "handles": m.handles,
            }
        })
    }
}
