//! One long-poll connection: read requests off the wire, keep its deadlines, write the
//! one answer each request gets, and forget it cleanly when the client leaves.
//!
//! The [`Reply`] is the right to answer one request; [`send`] consumes it. A held poll's
//! `Reply` sits in the server's waiter table, and [`drop_conn`] removes it (unsent) in
//! the tick the loop learns the client is gone, with its timer: nothing can ever be
//! written to a finished connection.

use super::{route, Shared};
use crate::servers::http::{parse_head, Parsed, Response};
use crate::{Loop, ReadEvent, Tcp, Timer};
use std::net::IpAddr;

/// The right to answer one request. `send` consumes it: a request is answered once.
#[derive(Debug)]
pub struct Reply {
    pub(super) conn: Tcp,
    pub(super) keep_alive: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Reading (or between) requests.
    Reading,
    /// A poll is held: its Reply is in the waiter table.
    Held,
    /// A `Connection: close` answer is being flushed.
    Closing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Deadline {
    Header,
    Idle,
}

pub(super) struct Conn {
    pub(super) peer: IpAddr,
    buf: Vec<u8>,
    pub(super) phase: Phase,
    deadline: Option<(Deadline, Timer)>,
    continue_sent: bool,
}

pub(super) fn on_connection(lp: &mut Loop, sh: &Shared, conn: Tcp) {
    let peer = match lp.peer_addr(conn) {
        Ok(a) => a.ip(),
        Err(_) => return drop_unregistered(lp, conn),
    };
    {
        let mut s = sh.borrow_mut();
        if s.shutting_down || s.conns.len() >= s.cfg.max_conns {
            s.stats.shed_connections += 1;
            drop(s);
            return drop_unregistered(lp, conn);
        }
        s.stats.accepted += 1;
        s.conns.insert(
            conn,
            Conn {
                peer,
                buf: Vec::new(),
                phase: Phase::Reading,
                deadline: None,
                continue_sent: false,
            },
        );
    }
    arm_deadline(lp, sh, conn, Deadline::Header);
    let s2 = sh.clone();
    if lp
        .read_start(conn, move |lp, conn, ev| on_read(lp, &s2, conn, ev))
        .is_err()
    {
        drop_conn(lp, sh, conn);
    }
}

fn drop_unregistered(lp: &mut Loop, conn: Tcp) {
    lp.close(conn);
}

pub(super) fn on_read(lp: &mut Loop, sh: &Shared, conn: Tcp, ev: ReadEvent<'_>) {
    let data = match ev {
        ReadEvent::Data(d) => d,
        // The client is gone: a held poll is aborted this tick, never written to.
        ReadEvent::Eof | ReadEvent::Error(_) => return drop_conn(lp, sh, conn),
    };
    let (overflow, was_idle) = {
        let mut s = sh.borrow_mut();
        let cap = s.cfg.limits.max_header_bytes + s.cfg.limits.max_body + 1;
        let Some(c) = s.conns.get_mut(&conn) else {
            return;
        };
        if c.phase == Phase::Closing {
            return; // the answer that closes it is on its way; ignore the rest
        }
        c.buf.extend_from_slice(data);
        let overflow = c.phase == Phase::Held && c.buf.len() > cap;
        (overflow, matches!(c.deadline, Some((Deadline::Idle, _))))
    };
    if overflow {
        // More pipelined bytes than one request may have, while a poll is held.
        return drop_conn(lp, sh, conn);
    }
    if was_idle {
        arm_deadline(lp, sh, conn, Deadline::Header);
    }
    process(lp, sh, conn);
}

/// Take whole requests from the buffer while the connection is free to answer them.
pub(super) fn process(lp: &mut Loop, sh: &Shared, conn: Tcp) {
    loop {
        let (parsed, limits, buffered) = {
            let s = sh.borrow();
            let Some(c) = s.conns.get(&conn) else { return };
            if c.phase != Phase::Reading || c.buf.is_empty() {
                return;
            }
            (parse_head(&c.buf, &s.cfg.limits), s.cfg.limits, c.buf.len())
        };
        let head = match parsed {
            Parsed::Partial => return,
            Parsed::Invalid(resp) => return reject(lp, sh, conn, resp),
            Parsed::Head(h) => h,
        };
        if head.content_length > limits.max_body {
            let msg = format!(
                "body of {} bytes is over the {} byte limit",
                head.content_length, limits.max_body
            );
            return reject(lp, sh, conn, Response::text(413, &msg));
        }
        let whole = head.head_len + head.content_length;
        if buffered < whole {
            if head.expect_continue {
                send_continue(lp, sh, conn);
            }
            return;
        }
        let body = {
            let mut s = sh.borrow_mut();
            let Some(c) = s.conns.get_mut(&conn) else {
                return;
            };
            let req: Vec<u8> = c.buf.drain(..whole).collect();
            c.continue_sent = false;
            req[head.head_len..].to_vec()
        };
        clear_deadline(lp, sh, conn);
        let reply = Reply {
            conn,
            keep_alive: head.keep_alive,
        };
        route(lp, sh, reply, &head, &body);
    }
}

fn send_continue(lp: &mut Loop, sh: &Shared, conn: Tcp) {
    let already = sh
        .borrow_mut()
        .conns
        .get_mut(&conn)
        .map(|c| std::mem::replace(&mut c.continue_sent, true));
    if already == Some(false) && lp.write(conn, "HTTP/1.1 100 Continue\r\n\r\n").is_err() {
        drop_conn(lp, sh, conn);
    }
}

/// A request over a limit, or unparseable: answer and close.
pub(super) fn reject(lp: &mut Loop, sh: &Shared, conn: Tcp, resp: Response) {
    if matches!(resp.status, 408 | 413 | 431) {
        sh.borrow_mut().stats.limit_rejections += 1;
    }
    send(
        lp,
        sh,
        Reply {
            conn,
            keep_alive: false,
        },
        resp,
    );
}

/// Answer a request: the one place a response is written. Consumes the `Reply`.
pub(super) fn send(lp: &mut Loop, sh: &Shared, reply: Reply, resp: Response) {
    let Reply { conn, keep_alive } = reply;
    let keep_alive = keep_alive && !sh.borrow().shutting_down;
    if lp.write(conn, resp.encode(keep_alive)).is_err() {
        sh.borrow_mut().stats.write_errors += 1;
        return drop_conn(lp, sh, conn);
    }
    if !keep_alive {
        if let Some(c) = sh.borrow_mut().conns.get_mut(&conn) {
            c.phase = Phase::Closing;
        }
        clear_deadline(lp, sh, conn);
        let s2 = sh.clone();
        let flushed = lp.shutdown(conn, move |lp, conn, r| {
            if r.is_err() {
                s2.borrow_mut().stats.write_errors += 1;
            }
            drop_conn(lp, &s2, conn);
        });
        if flushed.is_err() {
            drop_conn(lp, sh, conn);
        }
        return;
    }
    let buffered = {
        let mut s = sh.borrow_mut();
        let Some(c) = s.conns.get_mut(&conn) else {
            return;
        };
        c.phase = Phase::Reading;
        !c.buf.is_empty()
    };
    arm_deadline(
        lp,
        sh,
        conn,
        if buffered {
            Deadline::Header
        } else {
            Deadline::Idle
        },
    );
}

pub(super) fn arm_deadline(lp: &mut Loop, sh: &Shared, conn: Tcp, kind: Deadline) {
    clear_deadline(lp, sh, conn);
    let after = {
        let s = sh.borrow();
        match kind {
            Deadline::Header => s.cfg.header_timeout,
            Deadline::Idle => s.cfg.idle_timeout,
        }
    };
    let s2 = sh.clone();
    let timer = lp.set_timeout(after, move |lp, _| on_deadline(lp, &s2, conn, kind));
    if let Some(c) = sh.borrow_mut().conns.get_mut(&conn) {
        c.deadline = Some((kind, timer));
    } else {
        lp.clear_timer(timer);
    }
}

pub(super) fn clear_deadline(lp: &mut Loop, sh: &Shared, conn: Tcp) {
    let old = sh
        .borrow_mut()
        .conns
        .get_mut(&conn)
        .and_then(|c| c.deadline.take());
    if let Some((_, t)) = old {
        lp.clear_timer(t);
    }
}

fn on_deadline(lp: &mut Loop, sh: &Shared, conn: Tcp, kind: Deadline) {
    if let Some(c) = sh.borrow_mut().conns.get_mut(&conn) {
        c.deadline = None;
    }
    match kind {
        Deadline::Header => reject(
            lp,
            sh,
            conn,
            Response::text(408, "the request head did not arrive in time"),
        ),
        Deadline::Idle => drop_conn(lp, sh, conn),
    }
}

/// Forget a connection and close it. A held poll on it is aborted: removed with its
/// timer, never written to.
pub(super) fn drop_conn(lp: &mut Loop, sh: &Shared, conn: Tcp) {
    let (known, waiter) = {
        let mut s = sh.borrow_mut();
        let known = s.conns.remove(&conn);
        let waiter = s.waiters.remove(&conn);
        if waiter.is_some() {
            s.stats.aborted += 1;
        }
        (known, waiter)
    };
    if let Some(w) = waiter {
        lp.clear_timer(w.timer);
    }
    if let Some(c) = known {
        if let Some((_, t)) = c.deadline {
            lp.clear_timer(t);
        }
        lp.close(conn);
    }
}
