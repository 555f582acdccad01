//! What the long-poll server counts, and `GET /stats`: the routes' counters, the
//! wire's, and the loop's own metrics.

use super::conn::{Wire, WireStats};
use crate::Loop;
use serde_json::{json, Value};

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
    /// How long the last publish that freed held polls took to write all their
    /// answers, µs (not a count: the fan-out cost, the server's share of
    /// `bench --waiters`).
    pub last_fanout_us: u64,
}

/// What the server has done (also served as `GET /stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LongPollStats {
    /// The routes' counters.
    pub chat: ChatStats,
    /// The wire's counters.
    pub wire: WireStats,
}

/// The chat's side of `/stats`, taken under its borrow.
pub(super) struct ChatNow {
    pub(super) stats: ChatStats,
    pub(super) waiters: usize,
    pub(super) latest: u64,
}

/// The `/stats` document.
pub(super) fn json(lp: &Loop, wire: &Wire, chat: &ChatNow) -> Value {
    let (st, ws, m) = (&chat.stats, wire.stats(), lp.metrics());
    json!({
        "connections": wire.connections(),
        "waiters": chat.waiters,
        "latest": chat.latest,
        "accepted": ws.accepted,
        "accept_errors": ws.accept_errors,
        "published": st.published,
        "answered_by_message": st.answered_by_message,
        "answered_by_timeout": st.answered_by_timeout,
        "answered_early": st.answered_early,
        "aborted": st.aborted,
        "shed_polls": st.shed_polls,
        "shed_connections": ws.shed_connections,
        "rate_limited": st.rate_limited,
        "last_fanout_us": st.last_fanout_us,
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
