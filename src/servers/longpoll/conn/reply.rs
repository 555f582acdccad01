//! The one way out: a [`Reply`] is the right to answer one request, and `Wire::send` is
//! the one place a response is written.

use super::{Phase, Wire};
use crate::servers::http::{Head, Response};
use crate::{Loop, Tcp};

/// The right to answer one request. `send` consumes it: a request is answered once.
/// The routes must send it or keep it; the wire drops kept ones when the client leaves.
#[must_use = "a request must be answered, or kept to answer later"]
pub struct Reply {
    wire: Wire,
    conn: Tcp,
    keep_alive: bool,
    head_only: bool,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reply({:?}, keep_alive: {})", self.conn, self.keep_alive)
    }
}

impl Reply {
    pub(super) fn new(wire: Wire, conn: Tcp, head: &Head) -> Reply {
        Reply {
            wire,
            conn,
            keep_alive: head.keep_alive,
            head_only: head.method == "HEAD",
        }
    }

    /// The connection this answer goes to.
    pub fn conn(&self) -> Tcp {
        self.conn
    }

    /// Answer the request.
    pub fn send(self, lp: &mut Loop, resp: &Response) {
        let Reply {
            wire,
            conn,
            keep_alive,
            head_only,
        } = self;
        wire.send(lp, conn, keep_alive, head_only, resp);
    }
}

impl Wire {
    pub(super) fn send_continue(&self, lp: &mut Loop, conn: Tcp) {
        let already = self.with_conn(lp, conn, |c| std::mem::replace(&mut c.continue_sent, true));
        if already != Some(false) {
            return;
        }
        if lp.write(conn, "HTTP/1.1 100 Continue\r\n\r\n").is_err() {
            return self.drop_conn(lp, conn);
        }
        self.after_write(lp, conn);
    }

    /// A request over a limit, or unparseable: answer and close.
    pub(super) fn reject(&self, lp: &mut Loop, conn: Tcp, resp: &Response) {
        if matches!(resp.status, 408 | 413 | 431) {
            self.count(|st| st.limit_rejections += 1);
        }
        self.send(lp, conn, false, false, resp);
    }

    fn send(&self, lp: &mut Loop, conn: Tcp, keep_alive: bool, head_only: bool, resp: &Response) {
        // A 400 means this client's bytes are not to be trusted: never read on.
        let keep_alive = keep_alive && !self.shutting_down() && resp.status != 400;
        if resp.status == 400 {
            self.count(|st| st.bad_requests += 1);
        }
        let later = self.with_conn(lp, conn, |c| {
            if matches!(c.phase, Phase::Closing | Phase::Lingering) {
                return None; // answered for good already
            }
            let later = c.phase == Phase::Held && !c.in_route;
            c.phase = if keep_alive {
                Phase::Reading
            } else {
                Phase::Closing
            };
            Some(later)
        });
        let Some(later) = later.flatten() else {
            return;
        };
        let bytes = resp.encode(keep_alive, head_only);
        self.with_conn(lp, conn, |c| c.turn_bytes += bytes.len());
        if lp.write(conn, bytes).is_err() {
            self.count(|st| st.write_errors += 1);
            return self.drop_conn(lp, conn);
        }
        self.after_write(lp, conn);
        if !keep_alive {
            self.begin_closing(lp, conn);
        } else if later {
            self.resume_later(lp, conn);
        }
    }
}
