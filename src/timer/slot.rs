//! One slot of the wheel: its timers as a doubly linked list threaded through the
//! wheel's slab (insert and cancel in O(1), no allocation per timer), and the one fact
//! `Wheel::next_deadline` needs from it, its earliest timer, kept without walking it.
//!
//! A timer joins at the tail, so a slot stays in (deadline, insertion) order as long as
//! timers join in that order, as timeouts of one length started as time goes on do.
//! `earliest` is updated as timers join. When it is cancelled, a slot in order hands
//! the title to its new head; a slot out of order forgets it, and the wheel decides
//! what to do (sort the slot, or walk it once: see `Wheel::cancel`).

use slab::Slab;

/// Marks the end of a list, or no timer; slab keys never reach it.
pub(super) const NIL: usize = usize::MAX;

/// What orders timers: (deadline, seq). Equal deadlines fire in insertion order.
pub(super) type When = (u64, u64);

/// A timer, and its links in its slot's list.
pub(super) struct Entry<T> {
    pub deadline: u64,
    pub seq: u64,
    pub value: T,
    pub prev: usize,
    pub next: usize,
    pub level: u8,
    pub slot: u8,
}

impl<T> Entry<T> {
    pub fn when(&self) -> When {
        (self.deadline, self.seq)
    }
}

#[derive(Clone, Copy)]
pub(super) struct Slot {
    pub head: usize,
    tail: usize,
    /// Head to tail in `When` order (then `earliest` is `head`).
    in_order: bool,
    /// The key of the earliest timer here; `NIL` when the slot is empty, or when the
    /// earliest was cancelled out of order and the next has not been looked for.
    pub earliest: usize,
    /// Its `When`, kept here so a timer joining the slot is compared without a second
    /// cache miss.
    earliest_at: When,
}

impl Slot {
    pub const EMPTY: Slot = Slot {
        head: NIL,
        tail: NIL,
        in_order: true,
        earliest: NIL,
        earliest_at: (0, 0),
    };

    fn one(key: usize, at: When) -> Slot {
        Slot {
            head: key,
            tail: key,
            in_order: true,
            earliest: key,
            earliest_at: at,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.head == NIL
    }

    /// Append `key` at the tail: O(1), noting whether the list is still in order and
    /// whether `key` is its new earliest.
    pub fn push_back<T>(&mut self, entries: &mut Slab<Entry<T>>, key: usize) {
        let at = entries[key].when();
        (entries[key].prev, entries[key].next) = (self.tail, NIL);
        if self.tail == NIL {
            *self = Slot::one(key, at);
            return;
        }
        let tail = &mut entries[self.tail];
        tail.next = key;
        self.in_order &= tail.when() < at;
        if self.earliest != NIL && at < self.earliest_at {
            (self.earliest, self.earliest_at) = (key, at);
        }
        self.tail = key;
    }

    /// Take `key` out of the list. True if that made the slot forget its earliest (it
    /// was the earliest, and the list is out of order).
    pub fn remove<T>(&mut self, entries: &mut Slab<Entry<T>>, key: usize) -> bool {
        let (prev, next) = (entries[key].prev, entries[key].next);
        match prev {
            NIL => self.head = next,
            p => entries[p].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => entries[n].prev = prev,
        }
        if self.head == NIL {
            *self = Slot::EMPTY;
            return false;
        }
        if self.earliest != key {
            return false;
        }
        if self.in_order {
            (self.earliest, self.earliest_at) = (self.head, entries[self.head].when());
            return false;
        }
        self.earliest = NIL;
        true
    }

    /// Find the earliest timer by walking the list once: O(k) for k timers.
    pub fn find_earliest<T>(&mut self, entries: &Slab<Entry<T>>) {
        let mut key = self.head;
        while key != NIL {
            let e = &entries[key];
            if self.earliest == NIL || e.when() < self.earliest_at {
                (self.earliest, self.earliest_at) = (key, e.when());
            }
            key = e.next;
        }
    }

    /// Put the list in `When` order, so that its head is its earliest and, while no
    /// timer joins out of order, each next earliest is found in O(1) too. O(k log k) for
    /// k timers; O(k) when a few late arrivals are all that is out of place (a stable
    /// sort merges runs). `scratch` is the wheel's, kept to reuse its allocation.
    pub fn sort<T>(&mut self, entries: &mut Slab<Entry<T>>, scratch: &mut Vec<(When, usize)>) {
        scratch.clear();
        let mut key = self.head;
        while key != NIL {
            scratch.push((entries[key].when(), key));
            key = entries[key].next;
        }
        scratch.sort_by_key(|&(at, _)| at);
        let mut prev = NIL;
        for &(_, k) in scratch.iter() {
            entries[k].prev = prev;
            if prev != NIL {
                entries[prev].next = k;
            }
            prev = k;
        }
        if let Some(&(at, head)) = scratch.first() {
            entries[prev].next = NIL;
            *self = Slot {
                tail: prev,
                ..Slot::one(head, at)
            };
        }
    }
}
