//! The body of a poll answer, capped.
//!
//! One answer carries at most [`MAX_ANSWER_MESSAGES`] messages and about
//! [`MAX_ANSWER_BYTES`] of them; when more is owed it says `"more": true` and its cursor
//! is the last message it carries, so the client's next poll (sent at once, as always)
//! gets the rest. Uncapped, one 31-byte `GET /poll?cursor=0` against a ring of 1024
//! messages of control characters (each escaped to 6 bytes) was a 24 MiB answer.
//! Messages are encoded per answer, not cached encoded: a message of 4096 control
//! characters is 24 KiB as JSON, and a ring of 1024 of them would hold 24 MiB.
//!
//! A publish answers every held poll at once ([`answer_all`]), on one loop's server and
//! on each loop of a group alike.

use super::log::MessageLog;
use super::Reply;
use crate::servers::http::Response;
use crate::Loop;
use serde_json::json;
use std::collections::HashMap;
use std::rc::Rc;

/// Messages in one answer at most.
pub const MAX_ANSWER_MESSAGES: usize = 100;
/// Message bytes in one answer at most (one message is always carried, however big:
/// at most `max_text` escaped, 24 KiB with the default 4096). The same as the wire's
/// high-water mark, so an answer never more than doubles a connection's queue.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What `cursor` is owed now, as a poll answer's JSON; `None` if nothing yet.
pub fn owed(log: &MessageLog, cursor: u64) -> Option<String> {
    let owed = log.since(cursor);
    if owed.messages.is_empty() && !owed.reset {
        return None;
    }
    let mut list = String::new();
    let (mut count, mut last) = (0, None);
    for m in &owed.messages {
        let json = json!({ "id": m.id, "text": m.text, "ts": m.ts }).to_string();
        let room = count < MAX_ANSWER_MESSAGES && list.len() + json.len() <= MAX_ANSWER_BYTES;
        if last.is_some() && !room {
            break;
        }
        if last.is_some() {
            list.push(',');
        }
        list.push_str(&json);
        count += 1;
        last = Some(m.id);
    }
    let more = count < owed.messages.len();
    let cursor = match last {
        Some(id) if more => id,
        _ => log.latest(),
    };
    let mut body = format!("{{\"cursor\":{cursor},\"messages\":[{list}]");
    if owed.reset {
        body.push_str(",\"reset\":true");
    }
    if more {
        body.push_str(",\"more\":true");
    }
    body.push('}');
    Some(body)
}

/// Distinct cursors whose answer is kept (each at most about 64 KiB).
pub const CACHED_ANSWERS: usize = 16;

/// Poll answers already built, by cursor, for the newest message: the ten thousand
/// waiters a publish frees mostly share one cursor, and a client that asks for the
/// same old cursor again and again costs a copy, not a JSON encoding, each time. Any
/// publish makes every answer stale: the cache empties when `latest` moves on.
#[derive(Default)]
pub struct AnswerCache {
    latest: u64,
    by_cursor: HashMap<u64, Rc<Response>>,
}

impl AnswerCache {
    /// The answer `cursor` is owed now (`None` if nothing yet).
    pub fn get(&mut self, log: &MessageLog, cursor: u64) -> Option<Rc<Response>> {
        if self.latest != log.latest() {
            self.by_cursor.clear();
            self.latest = log.latest();
        }
        if let Some(r) = self.by_cursor.get(&cursor) {
            return Some(r.clone());
        }
        let r = Rc::new(Response::json_text(200, owed(log, cursor)?));
        if self.by_cursor.len() < CACHED_ANSWERS {
            self.by_cursor.insert(cursor, r.clone());
        }
        Some(r)
    }
}

/// An answer with no message: the poll's time ran out (or it was released early, or
/// the server is shutting down).
pub fn empty(cursor: u64, shutdown: bool) -> String {
    let end = if shutdown { ",\"shutdown\":true}" } else { "}" };
    format!("{{\"cursor\":{cursor},\"messages\":[]{end}")
}

/// Answer a held poll with no message: its time ran out, it was released early, or
/// (`shutdown`) the server is stopping.
pub(super) fn send_empty(lp: &mut Loop, reply: Reply, cursor: u64, shutdown: bool) {
    reply.send(lp, &Response::json_text(200, empty(cursor, shutdown)));
}

/// A message came: answer every held poll, now, in this tick, each with what its cursor
/// is owed (`owed`: built once per cursor, by an [`AnswerCache`]) or, owed nothing (its
/// cursor is ahead), an empty answer. Each poll's `hold` (its scope, or its timer) is
/// returned for the caller to let go of after every answer has gone out: with ten
/// thousand waiters, clearing each timer before its send delayed the last answer by ~8%.
pub(super) fn answer_all<H>(
    lp: &mut Loop,
    polls: Vec<(Reply, u64, H)>,
    mut owed: impl FnMut(u64) -> Option<Rc<Response>>,
) -> Vec<H> {
    let mut holds = Vec::with_capacity(polls.len());
    for (reply, cursor, hold) in polls {
        let resp =
            owed(cursor).unwrap_or_else(|| Rc::new(Response::json_text(200, empty(cursor, false))));
        reply.send(lp, &resp);
        holds.push(hold);
    }
    holds
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn answers_are_capped_and_say_more() {
        let mut log = MessageLog::new(1024);
        for i in 0..250 {
            log.append(format!("m{i}"), 0);
        }
        let first = parse(&owed(&log, 0).unwrap());
        assert_eq!(
            first["messages"].as_array().unwrap().len(),
            MAX_ANSWER_MESSAGES
        );
        assert_eq!(
            (first["cursor"].as_u64(), first["more"].as_bool()),
            (Some(100), Some(true))
        );
        let last = parse(&owed(&log, 200).unwrap());
        assert_eq!(
            (last["cursor"].as_u64(), last.get("more")),
            (Some(250), None)
        );
        assert!(owed(&log, 250).is_none());
    }

    #[test]
    fn big_messages_are_capped_by_bytes_and_one_always_fits() {
        let mut log = MessageLog::new(64);
        for _ in 0..40 {
            log.append("\u{1}".repeat(4096), 0); // 6 bytes each once escaped
        }
        let body = owed(&log, 0).unwrap();
        assert!(body.len() <= MAX_ANSWER_BYTES + 100, "{}", body.len());
        let v = parse(&body);
        let n = v["messages"].as_array().unwrap().len();
        assert!((1..40).contains(&n) && v["more"] == true, "{n}");
        let mut tiny = MessageLog::new(4);
        tiny.append("x".repeat(MAX_ANSWER_BYTES * 2), 0);
        let one = parse(&owed(&tiny, 0).unwrap());
        assert_eq!(
            (one["messages"].as_array().unwrap().len(), one.get("more")),
            (1, None)
        );
    }

    #[test]
    fn a_capped_reset_continues_from_its_cursor() {
        let mut log = MessageLog::new(300);
        for i in 0..400 {
            log.append(format!("m{i}"), 0);
        }
        let reset = parse(&owed(&log, 5).unwrap());
        assert_eq!(
            (reset["reset"].as_bool(), reset["more"].as_bool()),
            (Some(true), Some(true))
        );
        assert_eq!(reset["messages"][0]["id"].as_u64(), Some(101));
        let next = parse(&owed(&log, reset["cursor"].as_u64().unwrap()).unwrap());
        assert_eq!(
            (next.get("reset"), next["messages"][0]["id"].as_u64()),
            (None, Some(201))
        );
    }
}
