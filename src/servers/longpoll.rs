//! The long-poll chat server: HTTP/1.1 on the loop, correct by construction.
//!
//! The bug it is built against: a client opens a long poll and closes it at once; the
//! server's error path answers and finishes the response; later the poll's timer fires
//! and writes onto the finished response, and the process dies. Here that cannot happen:
//! - a [`Reply`] is the right to answer one request; sending consumes it, so a second
//!   send does not compile;
//! - a held poll's `Reply` lives only in the waiter table; when the connection ends
//!   (EOF, reset, error) the waiter is removed in that same tick and its timer cleared,
//!   so neither a publish nor a timeout can find it again;
//! - read interest stays on while a poll is held, so the client's FIN is seen at once
//!   (a server that stops reading after the headers never notices the client leave).
//!
//! Every number it holds has a bound with a documented answer at the bound: header size
//! and count (431), body (413), header time (408), idle keep-alive (close), waiters (503
//! with Retry-After, accepted waiters untouched), connections (accept and close),
//! publishes per client (429 with Retry-After), retained messages (a ring: old cursors
//! get `reset`).

mod conn;
mod log;
mod ratelimit;

pub use conn::Reply;
pub use log::{Message, MessageLog};
pub use ratelimit::RateLimiter;

use super::http::{Head, Limits, Response};
use crate::{Listener, Loop, Tcp, Timer};
use conn::{drop_conn, on_connection, process, send, Conn, Phase};
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
            publish_rate: 20.0,
            publish_burst: 40.0,
            limits: Limits::default(),
        }
    }
}

/// What the server has done (also served as `GET /stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LongPollStats {
    /// Connections accepted in all.
    pub accepted: u64,
    /// Messages published.
    pub published: u64,
    /// Polls answered because a message came.
    pub answered_by_message: u64,
    /// Polls answered empty when their timeout passed.
    pub answered_by_timeout: u64,
    /// Held polls whose client went away first: never written to.
    pub aborted: u64,
    /// Polls refused with 503 (too many waiters).
    pub shed_polls: u64,
    /// Connections accepted and closed at once (too many connections).
    pub shed_connections: u64,
    /// Publishes refused with 429.
    pub rate_limited: u64,
    /// Requests refused with 431, 413 or 408.
    pub limit_rejections: u64,
    /// Writes that failed (the peer vanished without a FIN); counted, not crashed on.
    pub write_errors: u64,
}

struct Waiter {
    reply: Reply,
    cursor: u64,
    timer: Timer,
}

struct Server {
    cfg: LongPollConfig,
    log: MessageLog,
    conns: HashMap<Tcp, Conn>,
    waiters: HashMap<Tcp, Waiter>,
    limiter: RateLimiter,
    stats: LongPollStats,
    shutting_down: bool,
}

type Shared = Rc<RefCell<Server>>;

/// A running long-poll server.
#[derive(Clone)]
pub struct LongPoll {
    listener: Listener,
    shared: Shared,
}

impl LongPoll {
    /// Listen on `cfg.addr` and serve on `lp`.
    pub fn listen(lp: &mut Loop, cfg: LongPollConfig) -> io::Result<LongPoll> {
        let shared: Shared = Rc::new(RefCell::new(Server {
            log: MessageLog::new(cfg.log_size),
            limiter: RateLimiter::new(cfg.publish_rate, cfg.publish_burst),
            cfg: cfg.clone(),
            conns: HashMap::new(),
            waiters: HashMap::new(),
            stats: LongPollStats::default(),
            shutting_down: false,
        }));
        let sh = shared.clone();
        let listener = lp.tcp_listen(cfg.addr, move |lp, _, r| {
            // A failed accept (out of fds: the listener backs off by itself) has no client
            // to answer; the server goes on.
            if let Ok(conn) = r {
                on_connection(lp, &sh, conn)
            }
        })?;
        Ok(LongPoll { listener, shared })
    }

    /// The bound address.
    pub fn local_addr(&self, lp: &Loop) -> io::Result<SocketAddr> {
        lp.local_addr(self.listener)
    }

    /// The counters so far.
    pub fn stats(&self) -> LongPollStats {
        self.shared.borrow().stats.clone()
    }

    /// Polls held right now.
    pub fn waiters(&self) -> usize {
        self.shared.borrow().waiters.len()
    }

    /// Graceful stop: no more accepts; every held poll is answered (200, empty,
    /// `"shutdown":true`); every connection is closed once its answer is flushed.
    pub fn shutdown(&self, lp: &mut Loop) {
        lp.close(self.listener);
        let (waiters, idle): (Vec<Waiter>, Vec<Tcp>) = {
            let mut s = self.shared.borrow_mut();
            s.shutting_down = true;
            let waiters = s.waiters.drain().map(|(_, w)| w).collect();
            let idle = s
                .conns
                .iter()
                .filter(|(_, c)| c.phase == Phase::Reading)
                .map(|(t, _)| *t)
                .collect();
            (waiters, idle)
        };
        for w in waiters {
            lp.clear_timer(w.timer);
            let body = json!({ "cursor": w.cursor, "messages": [], "shutdown": true });
            let reply = Reply {
                keep_alive: false,
                ..w.reply
            };
            send(lp, &self.shared, reply, Response::json(200, &body));
        }
        for conn in idle {
            drop_conn(lp, &self.shared, conn);
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn route(lp: &mut Loop, sh: &Shared, reply: Reply, head: &Head, body: &[u8]) {
    let allowed = match head.path.as_str() {
        "/" | "/poll" | "/stats" => "GET",
        "/publish" => "POST",
        _ => {
            return send(
                lp,
                sh,
                reply,
                Response::text(404, &format!("no such path: {}", head.path)),
            )
        }
    };
    if head.method != allowed {
        let msg = format!(
            "{} is not allowed on {}; use {allowed}",
            head.method, head.path
        );
        return send(
            lp,
            sh,
            reply,
            Response::text(405, &msg).with_header("Allow", allowed),
        );
    }
    match head.path.as_str() {
        "/" => send(lp, sh, reply, Response::html(CHAT_PAGE)),
        "/poll" => poll(lp, sh, reply, head),
        "/publish" => publish(lp, sh, reply, body),
        _ => {
            let body = stats_json(lp, sh);
            send(lp, sh, reply, Response::json(200, &body))
        }
    }
}

fn messages_json(messages: &[&Message]) -> Value {
    Value::Array(
        messages
            .iter()
            .map(|m| json!({ "id": m.id, "text": m.text, "ts": m.ts }))
            .collect(),
    )
}

/// What a cursor is owed now, as a poll answer; `None` if nothing yet.
fn owed(s: &Server, cursor: u64) -> Option<Value> {
    let owed = s.log.since(cursor);
    if owed.messages.is_empty() && !owed.reset {
        return None;
    }
    let mut body = json!({ "cursor": s.log.latest(), "messages": messages_json(&owed.messages) });
    if owed.reset {
        body["reset"] = Value::Bool(true);
    }
    Some(body)
}

fn poll(lp: &mut Loop, sh: &Shared, reply: Reply, head: &Head) {
    let cursor = match head.param("cursor").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(c)) => c,
        Some(Err(_)) => {
            return send(
                lp,
                sh,
                reply,
                Response::text(400, "cursor must be a whole number"),
            )
        }
    };
    let default_timeout = sh.borrow().cfg.poll_timeout;
    let timeout = match head.param("timeout").map(str::parse::<f64>) {
        None => default_timeout,
        Some(Ok(t)) if t.is_finite() && t >= 0.0 => {
            Duration::from_secs_f64(t).min(MAX_POLL_TIMEOUT)
        }
        Some(_) => {
            return send(
                lp,
                sh,
                reply,
                Response::text(400, "timeout must be a number of seconds, 0 to 120"),
            )
        }
    };
    let ready = owed(&sh.borrow(), cursor);
    if let Some(body) = ready {
        sh.borrow_mut().stats.answered_by_message += 1;
        return send(lp, sh, reply, Response::json(200, &body));
    }
    let full = {
        let s = sh.borrow();
        s.waiters.len() >= s.cfg.max_waiters || s.shutting_down
    };
    if full {
        // Shed new work, honour accepted work: the held polls are untouched.
        sh.borrow_mut().stats.shed_polls += 1;
        let resp = Response::text(503, "too many held polls; retry shortly")
            .with_header("Retry-After", "1");
        return send(lp, sh, reply, resp);
    }
    let conn = reply.conn;
    let s2 = sh.clone();
    let timer = lp.set_timeout(timeout, move |lp, _| on_poll_timeout(lp, &s2, conn));
    let mut s = sh.borrow_mut();
    if let Some(c) = s.conns.get_mut(&conn) {
        c.phase = Phase::Held;
    }
    s.waiters.insert(
        conn,
        Waiter {
            reply,
            cursor,
            timer,
        },
    );
}

fn on_poll_timeout(lp: &mut Loop, sh: &Shared, conn: Tcp) {
    let Some(w) = sh.borrow_mut().waiters.remove(&conn) else {
        return;
    };
    sh.borrow_mut().stats.answered_by_timeout += 1;
    let body = json!({ "cursor": w.cursor, "messages": [] });
    send(lp, sh, w.reply, Response::json(200, &body));
    process(lp, sh, conn);
}

fn publish(lp: &mut Loop, sh: &Shared, reply: Reply, body: &[u8]) {
    let peer = sh.borrow().conns.get(&reply.conn).map(|c| c.peer);
    let limited = peer.and_then(|ip| sh.borrow_mut().limiter.take(ip, Instant::now()).err());
    if let Some(wait) = limited {
        sh.borrow_mut().stats.rate_limited += 1;
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let resp = Response::json(429, &json!({ "error": "too many publishes; slow down" }));
        return send(
            lp,
            sh,
            reply,
            resp.with_header("Retry-After", secs.to_string()),
        );
    }
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return send(
                lp,
                sh,
                reply,
                Response::json(400, &json!({ "error": format!("body is not JSON: {e}") })),
            )
        }
    };
    let Some(text) = request.get("text").and_then(Value::as_str) else {
        return send(
            lp,
            sh,
            reply,
            Response::json(400, &json!({ "error": "\"text\" must be a string" })),
        );
    };
    let max_text = sh.borrow().cfg.max_text;
    if text.len() > max_text {
        let msg = format!("text is {} bytes; the limit is {max_text}", text.len());
        return send(lp, sh, reply, Response::json(413, &json!({ "error": msg })));
    }
    if text.trim().is_empty() {
        return send(
            lp,
            sh,
            reply,
            Response::json(400, &json!({ "error": "text must not be empty" })),
        );
    }
    let latest = sh.borrow().log.latest();
    match request.get("after") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_u64() {
            Some(after) if after == latest => {}
            Some(_) => {
                return send(
                    lp,
                    sh,
                    reply,
                    Response::json(409, &json!({ "latest": latest })),
                )
            }
            None => {
                return send(
                    lp,
                    sh,
                    reply,
                    Response::json(400, &json!({ "error": "\"after\" must be a message id" })),
                )
            }
        },
    }
    let id = {
        let mut s = sh.borrow_mut();
        s.stats.published += 1;
        s.log.append(text.to_string(), now_ms())
    };
    send(lp, sh, reply, Response::json(201, &json!({ "id": id })));
    answer_waiters(lp, sh);
}

/// A message came: every held poll is answered now, in this tick.
fn answer_waiters(lp: &mut Loop, sh: &Shared) {
    let waiters: Vec<Waiter> = sh.borrow_mut().waiters.drain().map(|(_, w)| w).collect();
    // Waiters mostly share a cursor: build each distinct answer once, not once a waiter.
    let mut answers: HashMap<u64, Response> = HashMap::new();
    let mut freed = Vec::with_capacity(waiters.len());
    for w in waiters {
        lp.clear_timer(w.timer);
        let resp = answers
            .entry(w.cursor)
            .or_insert_with(|| {
                let body = owed(&sh.borrow(), w.cursor)
                    .unwrap_or_else(|| json!({ "cursor": w.cursor, "messages": [] }));
                Response::json(200, &body)
            })
            .clone();
        sh.borrow_mut().stats.answered_by_message += 1;
        freed.push(w.reply.conn);
        send(lp, sh, w.reply, resp);
    }
    // Requests pipelined behind the held polls are taken up in the check phase, in one
    // immediate, so one publish never recurses into a thousand connections' parsers.
    let s2 = sh.clone();
    lp.set_immediate(move |lp, _| {
        for conn in freed {
            process(lp, &s2, conn);
        }
    });
}

fn stats_json(lp: &Loop, sh: &Shared) -> Value {
    let s = sh.borrow();
    let st = &s.stats;
    let m = lp.metrics();
    json!({
        "connections": s.conns.len(),
        "waiters": s.waiters.len(),
        "latest": s.log.latest(),
        "accepted": st.accepted,
        "published": st.published,
        "answered_by_message": st.answered_by_message,
        "answered_by_timeout": st.answered_by_timeout,
        "aborted": st.aborted,
        "shed_polls": st.shed_polls,
        "shed_connections": st.shed_connections,
        "rate_limited": st.rate_limited,
        "limit_rejections": st.limit_rejections,
        "write_errors": st.write_errors,
        "loop": {
            "backend": lp.backend().name(),
            "ticks": m.ticks,
            "events": m.events,
            "idle_ms": m.idle.as_millis() as u64,
            "timers_fired": m.timers_fired,
            "timer_lateness_max_ms": m.timer_lateness_max.as_millis() as u64,
            "handles": m.handles,
        }
    })
}
