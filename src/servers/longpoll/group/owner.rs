//! The one place the group's messages live: the log, its answer cache and the publish
//! rate limit, on the owner loop (loop 0). Other loops reach it only by message.

use super::super::answer::{self, AnswerCache};
use super::super::{now_ms, LongPollConfig, MessageLog, RateLimiter};
use crate::servers::http::Response;
use crate::Loop;
use serde_json::json;
use std::net::IpAddr;
use std::rc::Rc;

/// The loop that owns the log.
pub const OWNER: usize = 0;

pub(super) struct Owner {
    log: MessageLog,
    answers: AnswerCache,
    limiter: RateLimiter,
}

/// What a publish did: the answer for its client, and the log's move if it appended.
pub(super) struct Published {
    pub resp: Response,
    /// (the latest id before, the new latest id)
    pub moved: Option<(u64, u64)>,
}

impl Owner {
    pub fn new(cfg: &LongPollConfig) -> Owner {
        Owner {
            log: MessageLog::new(cfg.log_size),
            answers: AnswerCache::default(),
            limiter: RateLimiter::new(cfg.publish_rate, cfg.publish_burst),
        }
    }

    pub fn latest(&self) -> u64 {
        self.log.latest()
    }

    /// Forget every client and clear the limiter's sweep timer (at shutdown).
    pub fn stop(&self, lp: &mut Loop) {
        self.limiter.stop(lp);
    }

    /// The rate limit (per client address, across every loop: the limiter is here),
    /// the `after` ticket (409), then the append: the same rules as one loop's server.
    pub fn publish(
        &mut self,
        lp: &mut Loop,
        peer: IpAddr,
        text: String,
        after: Option<u64>,
    ) -> Published {
        if let Err(limited) = self.limiter.take(lp, peer) {
            let secs = limited.retry_after().as_secs().saturating_add(1);
            let resp = Response::json(429, &json!({ "error": "too many publishes; slow down" }))
                .with_header("Retry-After", secs.to_string());
            return Published { resp, moved: None };
        }
        let prev = self.log.latest();
        if after.is_some_and(|a| a != prev) {
            let resp = Response::json(409, &json!({ "latest": prev }));
            return Published { resp, moved: None };
        }
        let id = self.log.append(text, now_ms());
        Published {
            resp: Response::json(201, &json!({ "id": id })),
            moved: Some((prev, id)),
        }
    }

    /// What `cursor` is owed now, for this loop's own polls (cached, as one server's).
    pub fn owed(&mut self, cursor: u64) -> Option<Rc<Response>> {
        self.answers.get(&self.log, cursor)
    }

    /// What `cursor` is owed, built to cross to another loop.
    pub fn owed_to_send(&self, cursor: u64) -> Option<Response> {
        answer::owed(&self.log, cursor).map(|body| Response::json_text(200, body))
    }
}
