//! The wire's cancel scopes: one for the server, whose deadline is the shutdown grace,
//! and under it one per request deadline (a send deadline here; a held poll's in the
//! routes). A deadline is then one timer per scope, and the trace says which scope
//! ran out and why (`scope 4.7 canceled after 30.0 s: deadline 30 s exceeded`).
//!
//! The scopes hold no handles: a deadline here answers (408, an empty poll) or closes
//! through the wire's own paths (`drop_conn`), which keep the counts and tell the
//! routes. What the scopes give is the tree: the grace's cancel reaches every request
//! scope, and ending the server's scope frees every request deadline with it.

use super::Wire;
use crate::{Cancel, Loop, Scope, Tcp};
use std::time::Duration;

impl Wire {
    /// The server's scope, made at first need (the wire is made without a loop).
    pub fn scope(&self, lp: &mut Loop) -> Scope {
        if let Some(s) = self.0.state.borrow().scope {
            return s;
        }
        let s = lp.scope();
        self.0.state.borrow_mut().scope = Some(s);
        s
    }

    /// A request scope under the server's: cancelled with it, its deadline `after`.
    /// `on_deadline` runs when its own deadline passes, not when the server's cancel
    /// reaches it (the server's own callback deals with every connection then). The
    /// scope ends after it; end it yourself when the request is done first.
    pub fn request_scope(
        &self,
        lp: &mut Loop,
        after: Duration,
        on_deadline: impl FnOnce(&mut Loop, Scope) + 'static,
    ) -> Scope {
        let server = self.scope(lp);
        let s = lp.child_scope(server).unwrap_or_else(|_| lp.scope());
        lp.set_deadline(s, after);
        lp.on_scope_cancel(s, move |lp, s, cause| {
            if matches!(cause, Cancel::Deadline(_)) {
                on_deadline(lp, s);
            }
            lp.end_scope(s); // its deadline is past: nothing is left to keep
        });
        s
    }

    /// The send deadline of `conn`: output queued must drain within `send_timeout`.
    pub(super) fn send_scope(&self, lp: &mut Loop, conn: Tcp) -> Scope {
        let after = self.cfg().send_timeout;
        let w = self.clone();
        self.request_scope(lp, after, move |lp, _| w.on_send_timeout(lp, conn))
    }

    /// Shutdown: the server's scope gets the grace as its deadline; when it passes,
    /// what is still open is cut.
    pub(super) fn arm_grace(&self, lp: &mut Loop, grace: Duration) {
        let s = self.scope(lp);
        lp.set_deadline(s, grace);
        let w = self.clone();
        lp.on_scope_cancel(s, move |lp, _, _| w.cut_all(lp));
    }

    /// Done: the grace's timer (if armed) and every request scope still open go.
    pub(super) fn end_server_scope(&self, lp: &mut Loop) {
        if let Some(s) = self.0.state.borrow_mut().scope.take() {
            lp.end_scope(s);
        }
    }
}
