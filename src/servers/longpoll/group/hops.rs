//! The hops: the messages between the loops of the long-poll group, what a loop does
//! with each, the owner's fan-out after a publish, and the group's shutdown on one loop.

use super::{answer, busy, GroupRoutes, Local, Pending, OWNER};
use crate::servers::http::Response;
use crate::{Loop, Tcp};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// A message from one loop of the group to another. `conn` is always a connection of
/// the loop that asked, and only ever used there.
pub enum Hop {
    /// To the owner: publish `text` for `conn` of loop `from` (client `peer`, for the
    /// rate limit; `after`, the optional ticket: 409 if the log has moved on).
    Publish {
        /// The loop that asks.
        from: usize,
        /// Its connection, to answer when `Published` comes back.
        conn: Tcp,
        /// The client's address.
        peer: IpAddr,
        /// The message.
        text: String,
        /// Publish only if this is still the latest id.
        after: Option<u64>,
    },
    /// From the owner: the answer to a `Publish` (201, 409 or 429).
    Published {
        /// The connection named in the `Publish`.
        conn: Tcp,
        /// What to send it.
        resp: Response,
    },
    /// To the owner: what is `cursor` owed (a poll of `conn` on loop `from`)?
    Ask {
        /// The loop that asks.
        from: usize,
        /// Its connection.
        conn: Tcp,
        /// The poll's cursor.
        cursor: u64,
    },
    /// From the owner: the answer to an `Ask`.
    Owed {
        /// The connection named in the `Ask`.
        conn: Tcp,
        /// The answer; `None`: nothing yet, hold the poll.
        resp: Option<Response>,
    },
    /// From the owner to every other loop: the log moved from `prev` to `latest`.
    Latest {
        /// The newest id before the publish.
        prev: u64,
        /// The newest id now.
        latest: u64,
        /// What a poll at cursor `prev` is owed now, built once for every loop.
        answer: Option<Arc<Response>>,
    },
}

impl Hop {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Hop::Publish { .. } => "publish",
            Hop::Published { .. } => "published",
            Hop::Ask { .. } => "ask",
            Hop::Owed { .. } => "owed",
            Hop::Latest { .. } => "latest",
        }
    }
}

type Table = fn(&mut Local) -> &mut HashMap<Tcp, Pending>;

impl GroupRoutes {
    pub(super) fn on_hop(&self, lp: &mut Loop, hop: Hop) {
        match hop {
            Hop::Publish {
                from,
                conn,
                peer,
                text,
                after,
            } => {
                let (resp, moved) = self.owner_publish(lp, peer, text, after);
                // Refused (that loop's mailbox is full): its client gets 503 after
                // OWNER_WAIT, though the message was published; the log stays right.
                self.post(lp, from, Hop::Published { conn, resp });
                self.fan_out(lp, moved);
            }
            Hop::Published { conn, resp } => {
                if let Some(p) = self.take(lp, conn, |l| &mut l.publishing) {
                    p.reply.send(lp, &resp);
                }
            }
            Hop::Ask { from, conn, cursor } => {
                let resp = self
                    .0
                    .borrow()
                    .owner
                    .as_ref()
                    .and_then(|o| o.owed_to_send(cursor));
                self.post(lp, from, Hop::Owed { conn, resp });
            }
            Hop::Owed { conn, resp } => {
                let Some(p) = self.take(lp, conn, |l| &mut l.asking) else {
                    return; // the client left, or OWNER_WAIT answered it
                };
                match resp {
                    Some(r) => {
                        self.0.borrow_mut().stats.answered_by_message += 1;
                        p.reply.send(lp, &r);
                    }
                    None => self.hold(lp, p.reply, p.cursor, p.hold_for),
                }
            }
            Hop::Latest {
                prev,
                latest,
                answer,
            } => self.on_latest(lp, prev, latest, answer),
        }
    }

    /// A request waiting in `table` for `conn`, its OWNER_WAIT timer cleared.
    fn take(&self, lp: &mut Loop, conn: Tcp, table: Table) -> Option<Pending> {
        let p = table(&mut self.0.borrow_mut()).remove(&conn)?;
        lp.clear_timer(p.timer);
        Some(p)
    }

    /// On the owner: publish, counting; the answer and the log's move, if any.
    pub(super) fn owner_publish(
        &self,
        lp: &mut Loop,
        peer: IpAddr,
        text: String,
        after: Option<u64>,
    ) -> (Response, Option<(u64, u64)>) {
        // The limiter arms its sweep timer on `lp`; nothing it does calls back into us.
        let mut l = self.0.borrow_mut();
        let Some(done) = l.owner.as_mut().map(|o| o.publish(lp, peer, text, after)) else {
            return (busy("this loop does not own the log"), None);
        };
        match done.moved {
            Some((_, latest)) => {
                l.stats.published += 1;
                l.known_latest = latest;
            }
            None if done.resp.status == 429 => l.stats.rate_limited += 1,
            None => {}
        }
        (done.resp, done.moved)
    }

    /// On the owner, after an append: answer this loop's waiters, then tell the others,
    /// with the answer most of their waiters (those at `prev`) are owed.
    pub(super) fn fan_out(&self, lp: &mut Loop, moved: Option<(u64, u64)>) {
        let Some((prev, latest)) = moved else { return };
        let polls: Vec<_> = {
            let mut l = self.0.borrow_mut();
            l.stats.answered_by_message += l.waiters.len() as u64;
            let held = l.waiters.drain().map(|(_, w)| (w.reply, w.cursor, w.timer));
            held.collect()
        };
        let owed = |cursor| {
            let mut l = self.0.borrow_mut();
            l.owner.as_mut().and_then(|o| o.owed(cursor))
        };
        for timer in answer::answer_all(lp, polls, owed) {
            lp.clear_timer(timer);
        }
        let (loops, answer) = {
            let l = self.0.borrow();
            let answer = l.owner.as_ref().and_then(|o| o.owed_to_send(prev));
            (l.postbox.loops(), answer.map(Arc::new))
        };
        for to in (0..loops).filter(|&j| j != OWNER) {
            let answer = answer.clone();
            self.post(
                lp,
                to,
                Hop::Latest {
                    prev,
                    latest,
                    answer,
                },
            );
        }
    }

    /// Not the owner: the log moved. Waiters at `prev` get the answer that came with
    /// the news; waiters further behind (a `Latest` was lost) ask the owner.
    fn on_latest(&self, lp: &mut Loop, prev: u64, latest: u64, answer: Option<Arc<Response>>) {
        let (behind, from) = {
            let mut l = self.0.borrow_mut();
            l.known_latest = l.known_latest.max(latest);
            let behind: Vec<Tcp> = l
                .waiters
                .iter()
                .filter(|(_, w)| w.cursor < latest)
                .map(|(c, _)| *c)
                .collect();
            (behind, l.index)
        };
        for conn in behind {
            let Some(w) = self.take(lp, conn, |l| &mut l.waiters) else {
                continue;
            };
            match &answer {
                Some(resp) if w.cursor == prev => {
                    self.0.borrow_mut().stats.answered_by_message += 1;
                    w.reply.send(lp, resp);
                }
                _ => {
                    let hop = Hop::Ask {
                        from,
                        conn,
                        cursor: w.cursor,
                    };
                    let held = (w.cursor, w.hold_for);
                    self.await_owner(lp, w.reply, held, hop, |l| &mut l.asking);
                }
            }
        }
    }

    /// The group stops: held polls are answered `"shutdown": true`, requests waiting on
    /// the owner 503; new polls are refused (the wire is shutting down too).
    pub(super) fn shutdown(&self, lp: &mut Loop) {
        let (held, publishing) = {
            let mut l = self.0.borrow_mut();
            l.shutting_down = true;
            if let Some(o) = l.owner.as_ref() {
                o.stop(lp);
            }
            let mut held: Vec<Pending> = l.waiters.drain().map(|(_, w)| w).collect();
            held.extend(l.asking.drain().map(|(_, w)| w));
            let publishing: Vec<Pending> = l.publishing.drain().map(|(_, w)| w).collect();
            (held, publishing)
        };
        for w in held {
            lp.clear_timer(w.timer);
            answer::send_empty(lp, w.reply, w.cursor, true);
        }
        for p in publishing {
            lp.clear_timer(p.timer);
            p.reply.send(lp, &busy("the server is shutting down"));
        }
    }
}
