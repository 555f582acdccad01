//! `looplab longpoll --loops N`: a long-poll server on every loop of a group, one log.
//!
//! The design choice: the message log lives on one loop, the owner (loop 0, see
//! `group/owner.rs`), and nowhere else; every loop keeps its own held polls (its
//! waiters). No lock: the loops talk only through their mailboxes ([`Hop`]s), so
//! each hop is a message a reader can count in the trace and in `/stats`.
//!
//! ```text
//!   POST /publish on loop k         owner (loop 0)                  every other loop j
//!   Publish ──────────────────────► rate limit, 409, append
//!   201 to the client ◄──────────── Published
//!                                   answers its own waiters
//!                                   Latest{prev, latest, answer} ─► answers its waiters
//!                                                                   at cursor `prev`;
//!   GET /poll?cursor=c on loop j (c behind what j knows):           the rest: Ask
//!   Ask ──────────────────────────► Owed{answer or nothing} ──────► answer, or hold
//! ```
//!
//! A publish on the owner costs one hop per other loop; elsewhere two more. Most
//! waiters are up to date, at cursor `prev`, and are answered from the `Latest`
//! broadcast itself, which carries their answer, built once on the owner.
//!
//! Order makes it correct: one loop's posts reach another in the order they were made,
//! so an `Owed{nothing}` (hold) always arrives before the `Latest` that follows it.
//! The limits are the server's, not each loop's: with N loops, each holds at most
//! 1/N of `max_waiters` and of `max_conns` (rounded up). A loop at its share sheds
//! (503, or accept-and-close) even if another has room: no loop asks another.
//!
//! A hop refused because a mailbox is full ([`crate::group::MAILBOX_CAPACITY`]) is
//! answered 503 when a client waits on it; a lost `Latest` is healed by the next one
//! (each names the newest id), or the poll's own timeout answers.

mod hops;
mod owner;

pub use hops::Hop;

pub use owner::OWNER;

use super::{answer, params, stats, LongPollConfig, LongPollStats, Reply, Request, Routes, Wire};
use crate::group::{GroupBuilder, LoopCtx, LoopGroup, Postbox};
use crate::servers::http::Response;
use crate::{Loop, Tcp, Timer};
use serde_json::json;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::rc::Rc;
use std::time::Duration;

/// How long a request that needs the owner waits for its answer before it gets 503.
pub const OWNER_WAIT: Duration = Duration::from_secs(5);

/// What one loop of the group did, when it ends.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoopReport {
    /// The loop's index.
    pub index: usize,
    /// Its server's counters.
    pub stats: LongPollStats,
    /// Hops it posted to other loops.
    pub hops_sent: u64,
}

/// A poll or publish whose answer waits on the owner (or a held poll).
struct Pending {
    reply: Reply,
    cursor: u64,
    /// How long the poll is to be held if the owner says nothing is owed yet.
    hold_for: Duration,
    timer: Timer,
}

/// One loop's side: its waiters and its requests in flight to the owner.
struct Local {
    index: usize,
    cfg: LongPollConfig,
    postbox: Postbox<Hop>,
    owner: Option<owner::Owner>,
    /// The newest id this loop has heard of (the owner's is its log's).
    known_latest: u64,
    waiters: HashMap<Tcp, Pending>,
    asking: HashMap<Tcp, Pending>,
    publishing: HashMap<Tcp, Pending>,
    stats: super::ChatStats,
    hops_sent: u64,
    shutting_down: bool,
}

#[derive(Clone)]
struct GroupRoutes(Rc<RefCell<Local>>);

/// Start the long-poll server on every loop of `group`, listening on `cfg.addr`.
pub fn spawn(group: GroupBuilder, cfg: LongPollConfig) -> io::Result<LoopGroup<Hop, LoopReport>> {
    group
        .listen(cfg.addr)
        .spawn(move |lp, ctx| start(lp, ctx, cfg.clone()))
}

fn start(
    lp: &mut Loop,
    ctx: &mut LoopCtx<Hop>,
    mut cfg: LongPollConfig,
) -> io::Result<impl FnOnce(&mut Loop) -> LoopReport> {
    // The limits are the whole server's: each loop holds its share of them.
    cfg.max_waiters = cfg.max_waiters.div_ceil(ctx.loops());
    cfg.max_conns = cfg.max_conns.div_ceil(ctx.loops());
    let index = ctx.index();
    let routes = GroupRoutes(Rc::new(RefCell::new(Local {
        index,
        owner: (index == OWNER).then(|| owner::Owner::new(&cfg)),
        cfg: cfg.clone(),
        postbox: ctx.postbox(),
        known_latest: 0,
        waiters: HashMap::new(),
        asking: HashMap::new(),
        publishing: HashMap::new(),
        stats: super::ChatStats::default(),
        hops_sent: 0,
        shutting_down: false,
    })));
    let wire = Wire::new(cfg.wire(), Rc::new(routes.clone()));
    let w = wire.clone();
    let listener = ctx.listen(lp, move |lp, _, accepted| w.accept(lp, accepted))?;
    let r = routes.clone();
    ctx.on_message(move |lp, hop| r.on_hop(lp, hop));
    let (r, w) = (routes.clone(), wire.clone());
    ctx.on_stop(move |lp| {
        lp.close(listener);
        w.shutdown(lp);
        r.shutdown(lp);
    });
    Ok(move |_: &mut Loop| {
        let l = routes.0.borrow();
        LoopReport {
            index,
            stats: LongPollStats {
                chat: l.stats,
                wire: wire.stats(),
            },
            hops_sent: l.hops_sent,
        }
    })
}

impl Routes for GroupRoutes {
    fn request(&self, lp: &mut Loop, wire: &Wire, reply: Reply, req: Request) {
        let (path, method) = (req.head.path.as_str(), req.head.method.as_str());
        let get = matches!(method, "GET" | "HEAD");
        let allowed = match path {
            "/" | "/poll" | "/stats" if get => return self.get(lp, wire, reply, &req),
            "/publish" if method == "POST" => return self.publish(lp, reply, &req),
            "/" | "/poll" | "/stats" => "GET, HEAD",
            "/publish" => "POST",
            _ => return reply.send(lp, &Response::text(404, &format!("no such path: {path}"))),
        };
        let msg = format!("{method} is not allowed on {path}; use {allowed}");
        reply.send(lp, &Response::text(405, &msg).with_header("Allow", allowed));
    }

    fn closed(&self, lp: &mut Loop, conn: Tcp) {
        let mut l = self.0.borrow_mut();
        let polls = [l.waiters.remove(&conn), l.asking.remove(&conn)];
        for p in polls.into_iter().flatten() {
            l.stats.aborted += 1; // a poll whose client left first
            lp.clear_timer(p.timer);
        }
        // A publish in flight still happens on the owner; only its answer has no one.
        if let Some(p) = l.publishing.remove(&conn) {
            lp.clear_timer(p.timer);
        }
    }

    fn release(&self, lp: &mut Loop, conn: Tcp) {
        let held = self.0.borrow_mut().waiters.remove(&conn);
        if let Some(w) = held {
            self.0.borrow_mut().stats.answered_early += 1;
            lp.clear_timer(w.timer);
            answer::send_empty(lp, w.reply, w.cursor, false);
        }
    }
}

impl GroupRoutes {
    fn get(&self, lp: &mut Loop, wire: &Wire, reply: Reply, req: &Request) {
        match req.head.path.as_str() {
            "/" => reply.send(lp, &Response::html(super::CHAT_PAGE)),
            "/poll" => self.poll(lp, reply, req),
            _ => {
                let (doc, hops) = {
                    let l = self.0.borrow();
                    let now = stats::ChatNow {
                        stats: l.stats,
                        waiters: l.waiters.len(),
                        latest: l.latest(),
                    };
                    (
                        stats::json(lp, wire, &now),
                        json!({ "loop": l.index, "sent": l.hops_sent }),
                    )
                };
                let mut doc = doc;
                if let Some(o) = doc.as_object_mut() {
                    o.insert("hops".into(), hops);
                }
                reply.send(lp, &Response::json(200, &doc));
            }
        }
    }

    fn poll(&self, lp: &mut Loop, reply: Reply, req: &Request) {
        let default_timeout = self.0.borrow().cfg.poll_timeout;
        let (cursor, timeout) = match params::poll(&req.head, default_timeout) {
            Ok(p) => p,
            Err(resp) => return reply.send(lp, &resp),
        };
        let mine = self.0.borrow_mut().owner.as_mut().map(|o| o.owed(cursor));
        match mine {
            Some(Some(resp)) => {
                self.0.borrow_mut().stats.answered_by_message += 1;
                reply.send(lp, &resp);
            }
            Some(None) => self.hold(lp, reply, cursor, timeout),
            // Up to date as far as this loop knows: hold; a `Latest` will answer it.
            None if cursor == self.0.borrow().known_latest => self.hold(lp, reply, cursor, timeout),
            None => {
                let from = self.0.borrow().index;
                let conn = reply.conn();
                let hop = Hop::Ask { from, conn, cursor };
                self.await_owner(lp, reply, (cursor, timeout), hop, |l| &mut l.asking);
            }
        }
    }

    fn publish(&self, lp: &mut Loop, reply: Reply, req: &Request) {
        let max_text = self.0.borrow().cfg.max_text;
        let p = match params::publish(&req.head, &req.body, max_text) {
            Ok(p) => p,
            Err(resp) => return reply.send(lp, &resp),
        };
        let is_owner = self.0.borrow().owner.is_some();
        if is_owner {
            let (resp, moved) = self.owner_publish(lp, req.peer, p.text, p.after);
            reply.send(lp, &resp);
            return self.fan_out(lp, moved);
        }
        let (from, conn) = (self.0.borrow().index, reply.conn());
        let hop = Hop::Publish {
            from,
            conn,
            peer: req.peer,
            text: p.text,
            after: p.after,
        };
        self.await_owner(lp, reply, (0, Duration::ZERO), hop, |l| &mut l.publishing);
    }

    /// Send `hop` to the owner and keep `reply` in `table` until the answer comes (or
    /// [`OWNER_WAIT`] passes: 503).
    fn await_owner(
        &self,
        lp: &mut Loop,
        reply: Reply,
        (cursor, hold_for): (u64, Duration),
        hop: Hop,
        table: fn(&mut Local) -> &mut HashMap<Tcp, Pending>,
    ) {
        if !self.post(lp, OWNER, hop) {
            return reply.send(lp, &busy("the message log's loop is busy"));
        }
        let (me, conn) = (self.clone(), reply.conn());
        let timer = lp.set_timeout(OWNER_WAIT, move |lp, _| {
            let p = table(&mut me.0.borrow_mut()).remove(&conn);
            if let Some(p) = p {
                p.reply
                    .send(lp, &busy("the message log's loop did not answer in time"));
            }
        });
        let p = Pending {
            reply,
            cursor,
            hold_for,
            timer,
        };
        table(&mut self.0.borrow_mut()).insert(conn, p);
    }

    /// Post to loop `to`, counted and traced; false if its mailbox refused.
    fn post(&self, lp: &mut Loop, to: usize, hop: Hop) -> bool {
        let name = hop.name();
        let (from, postbox) = {
            let l = self.0.borrow();
            (l.index, l.postbox.clone())
        };
        if postbox.post(to, hop).is_err() {
            lp.tracer.note(format!(
                "hop {name}: loop {from} -> {to} refused (mailbox full)"
            ));
            return false;
        }
        let n = {
            let mut l = self.0.borrow_mut();
            l.hops_sent += 1;
            l.hops_sent
        };
        if lp.tracer.enabled {
            lp.tracer.note(format!(
                "hop {name}: loop {from} -> {to} ({n} sent by this loop)"
            ));
        }
        true
    }

    fn hold(&self, lp: &mut Loop, reply: Reply, cursor: u64, timeout: Duration) {
        let full = {
            let l = self.0.borrow();
            l.waiters.len() + l.asking.len() >= l.cfg.max_waiters || l.shutting_down
        };
        if full {
            self.0.borrow_mut().stats.shed_polls += 1;
            return reply.send(lp, &busy("too many held polls; retry shortly"));
        }
        let (me, conn) = (self.clone(), reply.conn());
        let timer = lp.set_timeout(timeout, move |lp, _| me.on_poll_timeout(lp, conn));
        let p = Pending {
            reply,
            cursor,
            hold_for: timeout,
            timer,
        };
        self.0.borrow_mut().waiters.insert(conn, p);
    }

    fn on_poll_timeout(&self, lp: &mut Loop, conn: Tcp) {
        let Some(w) = self.0.borrow_mut().waiters.remove(&conn) else {
            return;
        };
        self.0.borrow_mut().stats.answered_by_timeout += 1;
        answer::send_empty(lp, w.reply, w.cursor, false);
    }
}

fn busy(why: &str) -> Response {
    Response::text(503, why).with_header("Retry-After", "1")
}

impl Local {
    fn latest(&self) -> u64 {
        self.owner
            .as_ref()
            .map_or(self.known_latest, owner::Owner::latest)
    }
}
