//! The retained messages: a bounded ring, and what a cursor is owed.
//!
//! Ids start at 1 and only grow. A client's cursor is the last id it has seen; it is
//! owed every message after it. When the ring has already dropped some of those (the
//! client fell too far behind) or the cursor is from the future (the server restarted),
//! the answer says `reset` and carries everything retained, so the client starts over
//! instead of silently missing messages.

use std::collections::VecDeque;

/// One published message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Its id: 1, 2, 3, ...
    pub id: u64,
    /// What was said.
    pub text: String,
    /// When it was published, ms since the Unix epoch.
    pub ts: u64,
}

/// The ring of retained messages.
#[derive(Debug)]
pub struct MessageLog {
    ring: VecDeque<Message>,
    capacity: usize,
    latest: u64,
}

/// What a cursor is owed.
#[derive(Debug, PartialEq, Eq)]
pub struct Owed<'a> {
    /// The messages, oldest first.
    pub messages: Vec<&'a Message>,
    /// The cursor could not be honoured; these are all retained messages.
    pub reset: bool,
}

impl MessageLog {
    /// An empty log keeping at most `capacity` messages (at least 1).
    pub fn new(capacity: usize) -> MessageLog {
        MessageLog {
            ring: VecDeque::new(),
            capacity: capacity.max(1),
            latest: 0,
        }
    }

    /// The id of the newest message (0 when none was published).
    pub fn latest(&self) -> u64 {
        self.latest
    }

    /// Add a message; the oldest is dropped past capacity. Returns its id.
    pub fn append(&mut self, text: String, ts: u64) -> u64 {
        self.latest += 1;
        if self.ring.len() == self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(Message {
            id: self.latest,
            text,
            ts,
        });
        self.latest
    }

    /// Everything after `cursor`, or a reset with everything retained.
    pub fn since(&self, cursor: u64) -> Owed<'_> {
        let oldest = self
            .ring
            .front()
            .map_or(self.latest.saturating_add(1), |m| m.id);
        if cursor > self.latest || cursor.saturating_add(1) < oldest {
            return Owed {
                messages: self.ring.iter().collect(),
                reset: true,
            };
        }
        // oldest <= cursor + 1 <= latest + 1: the skip is at most the ring's length.
        let skip = usize::try_from(cursor + 1 - oldest).unwrap_or(usize::MAX);
        Owed {
            messages: self.ring.iter().skip(skip).collect(),
            reset: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(o: &Owed<'_>) -> Vec<u64> {
        o.messages.iter().map(|m| m.id).collect()
    }

    #[test]
    fn cursors_catch_up_and_reset() {
        let mut log = MessageLog::new(3);
        assert_eq!(ids(&log.since(0)), Vec::<u64>::new());
        for t in ["a", "b", "c", "d", "e"] {
            log.append(t.into(), 0);
        }
        assert_eq!(log.latest(), 5);
        assert_eq!(ids(&log.since(5)), Vec::<u64>::new());
        let caught_up = log.since(3);
        assert_eq!((ids(&caught_up), caught_up.reset), (vec![4, 5], false));
        let just_in = log.since(2);
        assert_eq!((ids(&just_in), just_in.reset), (vec![3, 4, 5], false));
        let behind = log.since(1);
        assert_eq!(
            (ids(&behind), behind.reset),
            (vec![3, 4, 5], true),
            "message 2 was dropped"
        );
        let future = log.since(99);
        assert!(future.reset);
    }
}
