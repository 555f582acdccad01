//! The wire's flow control: deadlines, output backpressure, the pipeline's turn, the
//! closing handshake and the shutdown grace. Every path that ends a connection goes
//! through `drop_conn`; no path clears more than the one deadline it is about.

use super::{Conn, Deadline, Phase, Wire, HIGH_WATER, LINGER};
use crate::servers::http::Response;
use crate::{Loop, Tcp};

impl Wire {
    /// After a pass over the buffer: the one read-side deadline the state asks for.
    /// (Closing and Lingering keep theirs.)
    pub(super) fn settle(&self, lp: &mut Loop, conn: Tcp) {
        let state = self.with_conn(lp, conn, |c| {
            let want = match c.phase {
                Phase::Reading if !c.buf.is_empty() => Some(Deadline::Header),
                // Idle starts once the answers are flushed (`on_drained` settles again).
                Phase::Reading if c.send_deadline.is_none() => Some(Deadline::Idle),
                Phase::Reading | Phase::Held => None,
                Phase::Closing | Phase::Lingering | Phase::Closed => return None,
            };
            Some((want, c.deadline.map(|(k, _)| k)))
        });
        let Some((want, current)) = state.flatten() else {
            return;
        };
        match want {
            Some(Deadline::Idle) if self.shutting_down() => self.drop_conn(lp, conn),
            // A running Header deadline keeps running: a head sent slowly does not
            // get a fresh allowance with every byte.
            Some(k) if current != Some(k) => self.arm(lp, conn, k),
            Some(_) => {}
            None => self.clear_deadline(lp, conn),
        }
    }

    pub(super) fn arm(&self, lp: &mut Loop, conn: Tcp, kind: Deadline) {
        self.clear_deadline(lp, conn);
        let cfg = self.cfg();
        let after = match kind {
            Deadline::Header => cfg.header_timeout,
            Deadline::Idle => cfg.idle_timeout,
            Deadline::Linger => LINGER,
        };
        let w = self.clone();
        let timer = lp.set_timeout(after, move |lp, _| w.on_deadline(lp, conn, kind));
        if self
            .with_conn(lp, conn, |c| c.deadline = Some((kind, timer)))
            .is_none()
        {
            lp.clear_timer(timer);
        }
    }

    pub(super) fn clear_deadline(&self, lp: &mut Loop, conn: Tcp) {
        if let Some((_, t)) = self.with_conn(lp, conn, |c| c.deadline.take()).flatten() {
            lp.clear_timer(t);
        }
    }

    fn on_deadline(&self, lp: &mut Loop, conn: Tcp, kind: Deadline) {
        let phase = self.with_conn(lp, conn, |c| {
            c.deadline = None;
            c.phase
        });
        match (kind, phase) {
            (_, None) => {}
            (Deadline::Header, Some(Phase::Reading)) => {
                let resp = Response::text(408, "the request head did not arrive in time");
                self.reject(lp, conn, &resp);
            }
            (Deadline::Header, Some(_)) => {}
            (Deadline::Idle | Deadline::Linger, Some(_)) => self.drop_conn(lp, conn),
        }
    }

    /// After a write: arm the send deadline if bytes are left queued, and stop reading
    /// this client while its queue is over the high-water mark.
    pub(super) fn after_write(&self, lp: &mut Loop, conn: Tcp) {
        let queued = lp.write_queue_len(conn);
        if queued == 0 {
            return;
        }
        let full = queued > HIGH_WATER;
        let (arm, newly_full) = match self.with_conn(lp, conn, |c| {
            let newly_full = full && !c.output_full;
            c.output_full |= full;
            (c.send_deadline.is_none(), newly_full)
        }) {
            Some(v) => v,
            None => return,
        };
        if newly_full {
            self.count(|st| st.paused_for_output += 1);
            self.sync_reading(lp, conn);
        }
        if !arm {
            return;
        }
        let scope = self.send_scope(lp, conn);
        self.with_conn(lp, conn, |c| c.send_deadline = Some(scope));
        // Armed while anything is queued, the drain is also how a client we stopped
        // reading (output full) is heard to reset: its queued writes fail.
        let w = self.clone();
        let armed = lp.on_drain(conn, 0, move |lp, conn, r| match r {
            Ok(()) => w.on_drained(lp, conn),
            Err(_) => {
                if w.with_conn(lp, conn, |_| ()).is_some() {
                    w.count(|st| st.write_errors += 1);
                    w.drop_conn(lp, conn);
                }
            }
        });
        if armed.is_err() {
            self.drop_conn(lp, conn);
        }
    }

    /// Everything queued reached the kernel: the send deadline is met, reading resumes,
    /// and pipelined requests that waited are taken up.
    fn on_drained(&self, lp: &mut Loop, conn: Tcp) {
        let Some((timer, phase)) = self.with_conn(lp, conn, |c| {
            c.output_full = false;
            (c.send_deadline.take(), c.phase)
        }) else {
            return;
        };
        if let Some(s) = timer {
            lp.end_scope(s);
        }
        self.sync_reading(lp, conn);
        if phase == Phase::Reading {
            self.process(lp, conn);
        }
    }

    pub(super) fn on_send_timeout(&self, lp: &mut Loop, conn: Tcp) {
        if let Some(s) = self.with_conn(lp, conn, |c| c.send_deadline.take()) {
            s.map(|s| lp.end_scope(s));
            self.count(|st| st.send_timeouts += 1);
            self.drop_conn(lp, conn);
        }
    }

    /// Read exactly when nothing holds the connection back.
    pub(super) fn sync_reading(&self, lp: &mut Loop, conn: Tcp) {
        let change = self.with_conn(lp, conn, |c: &mut Conn| {
            let want = !c.output_full && !c.yielded;
            (want != std::mem::replace(&mut c.reading, want)).then_some(want)
        });
        match change.flatten() {
            Some(true) if lp.read_resume(conn).is_err() => self.drop_conn(lp, conn),
            Some(false) => {
                lp.read_stop(conn);
            }
            _ => {}
        }
    }

    /// This connection had its turn: stop reading it and take up the rest of its
    /// pipeline in the check phase, after the other connections' events.
    pub(super) fn yield_turn(&self, lp: &mut Loop, conn: Tcp) {
        self.with_conn(lp, conn, |c| c.yielded = true);
        self.sync_reading(lp, conn);
        self.resume_later(lp, conn);
    }

    /// Take up `conn`'s buffered requests in the check phase. One immediate serves
    /// every connection queued in a tick, so one publish that frees ten thousand held
    /// polls does not recurse into ten thousand parsers.
    pub(super) fn resume_later(&self, lp: &mut Loop, conn: Tcp) {
        let first = {
            let mut s = self.0.state.borrow_mut();
            s.resume.push(conn);
            s.resume.len() == 1
        };
        if !first {
            return;
        }
        let w = self.clone();
        lp.set_immediate(move |lp, _| {
            let conns = std::mem::take(&mut w.0.state.borrow_mut().resume);
            for conn in conns {
                if w.with_conn(lp, conn, |c| c.yielded = false).is_some() {
                    w.sync_reading(lp, conn);
                    w.process(lp, conn);
                }
            }
        });
    }

    /// The last answer is written: send FIN once it is flushed, then linger.
    pub(super) fn begin_closing(&self, lp: &mut Loop, conn: Tcp) {
        self.clear_deadline(lp, conn);
        let w = self.clone();
        if lp
            .shutdown(conn, move |lp, conn, r| w.on_flushed(lp, conn, r))
            .is_err()
        {
            self.drop_conn(lp, conn);
        }
    }

    fn on_flushed(&self, lp: &mut Loop, conn: Tcp, r: std::io::Result<()>) {
        if r.is_err() {
            self.count(|st| st.write_errors += 1);
            return self.drop_conn(lp, conn);
        }
        if self.shutting_down() {
            return self.drop_conn(lp, conn); // the answer is out; no time to linger
        }
        if self
            .with_conn(lp, conn, |c| c.phase = Phase::Lingering)
            .is_some()
        {
            self.arm(lp, conn, Deadline::Linger);
            self.sync_reading(lp, conn);
        }
    }

    /// Stop: no new connections; idle and lingering ones close now, the others may
    /// finish their answer (always with `Connection: close`) within the grace; a second
    /// call, or the grace running out, cuts what is left.
    pub fn shutdown(&self, lp: &mut Loop) {
        let grace = {
            let mut s = self.0.state.borrow_mut();
            if std::mem::replace(&mut s.shutting_down, true) {
                None
            } else {
                Some(s.cfg.shutdown_grace)
            }
        };
        let Some(grace) = grace else {
            return self.cut_all(lp);
        };
        self.arm_grace(lp, grace);
        let open: Vec<Tcp> = self.0.state.borrow().open.iter().copied().collect();
        // Done with: idle (answered and flushed, nothing asked since) or lingering after
        // its last answer. A fresh connection is not idle: its first request may be in
        // the kernel, unread yet.
        let done = open.into_iter().filter(|&conn| {
            lp.data::<Conn>(conn).is_some_and(|c| {
                let waiting = matches!(c.deadline, Some((Deadline::Idle, _)));
                let idle = c.phase == Phase::Reading && c.buf.is_empty() && waiting;
                idle || c.phase == Phase::Lingering
            })
        });
        let done: Vec<Tcp> = done.collect();
        for conn in done {
            self.drop_conn(lp, conn);
        }
        if self.connections() == 0 {
            self.end_server_scope(lp);
        }
    }

    pub(super) fn cut_all(&self, lp: &mut Loop) {
        let left: Vec<Tcp> = {
            let mut s = self.0.state.borrow_mut();
            s.stats.cut_at_shutdown += s.open.len() as u64;
            s.open.iter().copied().collect()
        };
        for conn in left {
            self.drop_conn(lp, conn);
        }
        // Cut early by a second signal, the grace must not hold the loop; and the
        // request scopes still open end with the server's.
        self.end_server_scope(lp);
    }
}
