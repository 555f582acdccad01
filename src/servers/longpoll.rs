//! The long-poll chat server: the routes, on top of the wire in `longpoll/conn.rs`.
//!
//! The bug it is built against: a client opens a long poll and closes it at once; the
//! server's error path answers and finishes the response; later the poll's timer fires
//! and writes onto the finished response, and the process dies. Here that cannot happen:
//! - a [`Reply`] is the right to answer one request; sending consumes it, so a second
//!   send does not compile;
//! - a held poll's `Reply` lives only in the waiter table; when the connection ends
//!   (EOF, reset, a deadline) the wire tells the routes (`Routes::closed`) in that same
//!   tick and the waiter is removed with its scope (whose deadline, one timer, is the
//!   poll's timeout), so neither a publish nor a timeout can find it again;
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
mod config;
mod conn;
pub mod group;
mod log;
pub mod params;
mod ratelimit;
mod stats;

pub use answer::{MAX_ANSWER_BYTES, MAX_ANSWER_MESSAGES};
pub use config::LongPollConfig;
pub use conn::{Reply, Request, WireStats, HIGH_WATER, LINGER, PIPELINE_TURN, TURN_BYTES};
// The wire serves other routes too (the metrics endpoint, src/servers/metrics_http.rs).
pub use conn::{Routes, Wire, WireConfig};
pub use log::{Message, MessageLog};
pub use ratelimit::RateLimiter;
pub use stats::{ChatStats, LongPollStats};

use super::http::Response;
use crate::{Listener, Loop, Scope, Tcp};
use serde_json::json;
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

struct Waiter {
    reply: Reply,
    cursor: u64,
    /// The poll's scope: its deadline is the poll timeout (one timer on the wheel).
    scope: Scope,
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
        let limiter = self.chat.0.borrow().limiter.clone();
        limiter.stop(lp);
        let waiters: Vec<Waiter> = self
            .chat
            .0
            .borrow_mut()
            .waiters
            .drain()
            .map(|(_, w)| w)
            .collect();
        for w in waiters {
            lp.end_scope(w.scope);
            answer::send_empty(lp, w.reply, w.cursor, true);
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
                let now = {
                    let s = self.0.borrow();
                    stats::ChatNow {
                        stats: s.stats,
                        waiters: s.waiters.len(),
                        latest: s.log.latest(),
                    }
                };
                reply.send(lp, &Response::json(200, &stats::json(lp, wire, &now)));
            }
        }
    }

    fn closed(&self, lp: &mut Loop, conn: Tcp) {
        let gone = self.0.borrow_mut().waiters.remove(&conn);
        if let Some(w) = gone {
            self.0.borrow_mut().stats.aborted += 1;
            lp.end_scope(w.scope);
        }
    }

    fn release(&self, lp: &mut Loop, conn: Tcp) {
        let held = self.0.borrow_mut().waiters.remove(&conn);
        if let Some(w) = held {
            self.0.borrow_mut().stats.answered_early += 1;
            lp.end_scope(w.scope);
            answer::send_empty(lp, w.reply, w.cursor, false);
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
        let scope = wire.request_scope(lp, timeout, move |lp, s| me.on_poll_timeout(lp, conn, s));
        let waiter = Waiter {
            reply,
            cursor,
            scope,
        };
        self.0.borrow_mut().waiters.insert(conn, waiter);
    }

    fn on_poll_timeout(&self, lp: &mut Loop, conn: Tcp, scope: Scope) {
        let mut chat = self.0.borrow_mut();
        // Only the poll this scope was made for (a later poll on the connection has its own).
        if chat.waiters.get(&conn).is_none_or(|w| w.scope != scope) {
            return;
        }
        let Some(w) = chat.waiters.remove(&conn) else {
            return;
        };
        drop(chat);
        self.0.borrow_mut().stats.answered_by_timeout += 1;
        answer::send_empty(lp, w.reply, w.cursor, false);
    }

    fn publish(&self, lp: &mut Loop, reply: Reply, req: &Request) {
        let max_text = self.0.borrow().cfg.max_text;
        let p = match params::publish(&req.head, &req.body, max_text) {
            Ok(p) => p,
            Err(resp) => return reply.send(lp, &resp),
        };
        let limiter = self.0.borrow().limiter.clone();
        if let Err(limited) = limiter.take(lp, req.peer) {
            self.0.borrow_mut().stats.rate_limited += 1;
            let secs = limited.retry_after().as_secs().saturating_add(1);
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

    /// A message came: every held poll is answered now, in this tick (each distinct
    /// answer built once: waiters mostly share a cursor); their scopes, and the timers
    /// of their deadlines, end after the last answer has gone out.
    fn answer_waiters(&self, lp: &mut Loop) {
        let polls: Vec<(Reply, u64, Scope)> = {
            let mut s = self.0.borrow_mut();
            s.stats.answered_by_message += s.waiters.len() as u64;
            let held = s.waiters.drain().map(|(_, w)| (w.reply, w.cursor, w.scope));
            held.collect()
        };
        let started = Instant::now();
        let scopes = answer::answer_all(lp, polls, |cursor| self.owed(cursor));
        if !scopes.is_empty() {
            let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.0.borrow_mut().stats.last_fanout_us = us;
        }
        for s in scopes {
            lp.end_scope(s);
        }
    }
}
