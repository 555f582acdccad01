//! A hierarchical timing wheel: timers in O(1), the next deadline from a few bit scans
//! and the first slot's remembered earliest.
//!
//! Time is whole milliseconds since the wheel was made. The wheel has [`LEVELS`] levels of
//! 64 slots. Level 0 has one slot per millisecond of the current 64 ms block; each slot of
//! level 1 covers 64 ms of the current 4096 ms block; level `n` covers `64^n` ms a slot.
//! A timer goes to the level of the highest 6-bit digit in which its deadline differs from
//! the wheel's current time (`level_for`), and to the slot named by that digit
//! (`slot_for`). So every timer on level `n` is later than every timer on levels below,
//! and within a level the slots are in time order from the current position: the earliest
//! timer is in the first occupied slot of the first non-empty level. Each level keeps a
//! 64-bit occupancy mask, so that slot is found with `trailing_zeros`, not by scanning.
//!
//! When time reaches the start of a slot on a higher level, its timers are *cascaded*:
//! re-inserted relative to the new time, which puts them on lower levels, closer to
//! firing. A timer moves down at most `LEVELS` times in its life.
//!
//! Insert and cancel are O(1): each slot is a doubly linked list threaded through a slab
//! (`timer/slot.rs`). Eleven levels cover all 64 bits (11 x 6 = 66), so any deadline
//! fits and a huge timeout saturates at `u64::MAX` ms instead of wrapping. Tokio's wheel
//! (`runtime/time/wheel`) uses the same digits; this one is smaller and single-threaded.
//!
//! **Each slot knows its earliest timer.** `next_deadline` is asked every tick (it is
//! the poll timeout), so it must not cost more as timers pile up: it reads the first
//! occupied slot's `earliest`, kept up to date in O(1) as timers join. Cancelling the
//! earliest moves it to the next in line when the slot is in (deadline, insertion)
//! order. In a slot out of order (a timer joined behind a later one) it is forgotten:
//! if that slot is the first, it is sorted at once, so that the next earliest, and the
//! one after, are each its head; any other slot is walked once, if and when it becomes
//! the first. Timers of one timeout started as time goes on join in order, and a
//! level-0 slot is a single millisecond, so both are rare. Before this, every tick
//! walked the whole first slot: 5000 timeouts due in one 64 ms slot were 5000 steps.
//!
//! Timers due in the same `advance` are returned sorted by deadline, then by the order in
//! which they were inserted, so equal deadlines fire in start order.

mod slot;

use slab::Slab;
use slot::{Entry, Slot, When, NIL};

/// 64 slots a level: a power of two, so a level's digit is a shift and a mask.
const SLOT_BITS: u32 = 6;
const SLOTS: usize = 1 << SLOT_BITS;
const SLOT_MASK: u64 = (SLOTS as u64) - 1;
/// Enough levels that every u64 deadline has one (11 x 6 = 66 >= 64 bits).
pub const LEVELS: usize = 11;

/// The level a deadline belongs on, seen from `elapsed`: the 6-bit digit of the highest
/// bit in which they differ. `| SLOT_MASK` puts equal values on level 0.
fn level_for(elapsed: u64, deadline: u64) -> usize {
    let masked = (elapsed ^ deadline) | SLOT_MASK;
    let highest_bit = 63 - masked.leading_zeros();
    (highest_bit / SLOT_BITS) as usize
}

/// The slot of `deadline` on `level`: its 6-bit digit there.
fn slot_for(deadline: u64, level: usize) -> usize {
    ((deadline >> (level as u32 * SLOT_BITS)) & SLOT_MASK) as usize
}

/// The first millisecond of `slot` on `level`, in the block that contains `elapsed`.
fn slot_start(elapsed: u64, level: usize, slot: usize) -> u64 {
    let shift = level as u32 * SLOT_BITS;
    let block_bits = shift + SLOT_BITS;
    let block_start = if block_bits >= 64 {
        0
    } else {
        elapsed & !((1u64 << block_bits) - 1)
    };
    block_start + ((slot as u64) << shift)
}

struct Level {
    /// Bit `i` is set while slot `i` holds at least one timer.
    occupied: u64,
    slots: [Slot; SLOTS],
}

/// The wheel. `T` is what a timer carries back when it fires (the loop stores a handle).
pub struct Wheel<T> {
    entries: Slab<Entry<T>>,
    levels: Vec<Level>,
    /// The current time of the wheel in ms: every timer's deadline is at or after it.
    elapsed: u64,
    next_seq: u64,
    /// The slot being sorted, kept to reuse its allocation.
    scratch: Vec<(When, usize)>,
}

/// What `insert` returns and `cancel` takes: the entry's index and the sequence number
/// it was inserted with. Entries are reused like handle slots, so the index alone could
/// cancel a newer timer; the sequence number makes an old key miss instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimerKey {
    index: usize,
    seq: u64,
}

/// A timer that came due: its deadline and its value.
#[derive(Debug, PartialEq, Eq)]
pub struct Expired<T> {
    /// When it was due, in wheel ms.
    pub deadline: u64,
    /// What it carried.
    pub value: T,
}

impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Wheel<T> {
    /// An empty wheel at time 0.
    pub fn new() -> Wheel<T> {
        let levels = (0..LEVELS)
            .map(|_| Level {
                occupied: 0,
                slots: [Slot::EMPTY; SLOTS],
            })
            .collect();
        Wheel {
            entries: Slab::new(),
            levels,
            elapsed: 0,
            next_seq: 0,
            scratch: Vec::new(),
        }
    }

    /// The wheel's current time in ms (the `now` of the last `advance`).
    pub fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Timers waiting to fire.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No timer waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Add a timer due at `deadline` ms; a deadline in the past fires at the next
    /// `advance`. Returns a key for `cancel`, valid until the timer fires or is cancelled.
    pub fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        let deadline = deadline.max(self.elapsed);
        let seq = self.next_seq;
        self.next_seq += 1;
        let key = self.entries.insert(Entry {
            deadline,
            seq,
            value,
            prev: NIL,
            next: NIL,
            level: 0,
            slot: 0,
        });
        self.link(key);
        TimerKey { index: key, seq }
    }

    /// Remove a timer before it fires. `None` if the key's timer already fired or was
    /// cancelled (even if its entry now holds another timer).
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        if self.entries.get(key.index).is_none_or(|e| e.seq != key.seq) {
            return None;
        }
        let e = &self.entries[key.index];
        let (level, slot) = (e.level as usize, e.slot as usize);
        if self.unlink(key.index) && self.is_first(level, slot) {
            // The first slot's earliest went, out of order: sort it, so that the next
            // earliest, and the one after, are each its head (idle timeouts refreshed in
            // turn cancel the earliest every time).
            let list = &mut self.levels[level].slots[slot];
            list.sort(&mut self.entries, &mut self.scratch);
        }
        // The first slot may be empty now, and another one first.
        self.know_first_earliest();
        Some(self.entries.remove(key.index).value)
    }

    /// The earliest deadline and the value of the timer that will fire first: the first
    /// occupied slot's `earliest`. O(1) in the number of timers: no slot is walked.
    pub fn next_deadline(&self) -> Option<(u64, &T)> {
        if self.entries.is_empty() {
            return None; // without looking at each level's mask, a line of its own
        }
        let (level, slot, _) = self.next_slot()?;
        let earliest = self.levels[level].slots[slot].earliest;
        debug_assert_ne!(
            earliest, NIL,
            "first slot {slot} of level {level} lost its earliest"
        );
        let e = self.entries.get(earliest)?;
        Some((e.deadline, &e.value))
    }

    /// Move time forward to `now` ms and append every timer with a deadline at or before
    /// it to `out`, sorted by (deadline, insertion order). Time never moves backwards.
    pub fn advance(&mut self, now: u64, out: &mut Vec<Expired<T>>) {
        if self.entries.is_empty() {
            // Nothing to fire or cascade: the loop calls this every tick, and a busy
            // server without timers would read every level's mask (six lines) for it.
            self.elapsed = self.elapsed.max(now);
            return;
        }
        let first_new = out.len();
        let mut due: Vec<(u64, u64, T)> = Vec::new();
        while let Some((level, slot, start)) = self.next_slot() {
            if start > now {
                break;
            }
            debug_assert!(
                start >= self.elapsed,
                "slot start {start} before elapsed {}",
                self.elapsed
            );
            self.elapsed = start;
            let mut key = std::mem::replace(&mut self.levels[level].slots[slot], Slot::EMPTY).head;
            self.levels[level].occupied &= !(1u64 << slot);
            while key != NIL {
                let next = self.entries[key].next;
                if self.entries[key].deadline <= now {
                    let e = self.entries.remove(key);
                    due.push((e.deadline, e.seq, e.value));
                } else {
                    // Cascade: seen from `start`, it lands on a lower level.
                    self.link(key);
                }
                key = next;
            }
        }
        self.elapsed = self.elapsed.max(now);
        self.know_first_earliest();
        due.sort_by_key(|&(deadline, seq, _)| (deadline, seq));
        out.extend(
            due.into_iter()
                .map(|(deadline, _, value)| Expired { deadline, value }),
        );
        debug_assert!(out[first_new..]
            .windows(2)
            .all(|w| w[0].deadline <= w[1].deadline));
    }

    /// The first occupied slot in time order: (level, slot, the slot's first ms).
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        for (level, lv) in self.levels.iter().enumerate() {
            if lv.occupied == 0 {
                continue;
            }
            let position = slot_for(self.elapsed, level);
            debug_assert_eq!(
                lv.occupied & !(u64::MAX << position),
                0,
                "level {level} has slots behind its position {position}: {:#x}",
                lv.occupied
            );
            let slot = (lv.occupied & (u64::MAX << position)).trailing_zeros() as usize;
            return Some((level, slot, slot_start(self.elapsed, level, slot)));
        }
        None
    }

    /// Put `key` in the slot its deadline belongs to, seen from `elapsed`.
    fn link(&mut self, key: usize) {
        let deadline = self.entries[key].deadline;
        let level = level_for(self.elapsed, deadline);
        let slot = slot_for(deadline, level);
        (self.entries[key].level, self.entries[key].slot) = (level as u8, slot as u8);
        self.levels[level].slots[slot].push_back(&mut self.entries, key);
        self.levels[level].occupied |= 1u64 << slot;
    }

    /// Take `key` out of its slot. True if the slot forgot its earliest.
    fn unlink(&mut self, key: usize) -> bool {
        let e = &self.entries[key];
        let (level, slot) = (e.level as usize, e.slot as usize);
        let list = &mut self.levels[level].slots[slot];
        let forgot = list.remove(&mut self.entries, key);
        if list.is_empty() {
            self.levels[level].occupied &= !(1u64 << slot);
        }
        forgot
    }

    /// Whether this is the first occupied slot.
    fn is_first(&self, level: usize, slot: usize) -> bool {
        self.next_slot()
            .is_some_and(|(l, s, _)| (l, s) == (level, slot))
    }

    /// Keep the promise `next_deadline` relies on: the first occupied slot knows its
    /// earliest timer. Called after every change that can make another slot first; most
    /// calls cost a few bit scans. A slot that became first without knowing is walked
    /// once (it may be cascaded at once: sorting it would be wasted).
    fn know_first_earliest(&mut self) {
        if let Some((level, slot, _)) = self.next_slot() {
            let list = &mut self.levels[level].slots[slot];
            if list.earliest == NIL {
                list.find_earliest(&self.entries);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fire<T>(w: &mut Wheel<T>, now: u64) -> Vec<(u64, T)> {
        let mut out = Vec::new();
        w.advance(now, &mut out);
        out.into_iter().map(|e| (e.deadline, e.value)).collect()
    }

    #[test]
    fn digits_pick_level_and_slot() {
        assert_eq!(level_for(0, 0), 0);
        assert_eq!(level_for(0, 63), 0);
        assert_eq!(level_for(0, 64), 1);
        assert_eq!(
            level_for(60, 70),
            1,
            "crossing a 64 ms block boundary moves up a level"
        );
        assert_eq!(level_for(0, 4096), 2);
        assert_eq!(level_for(0, u64::MAX), 10);
        assert_eq!(slot_for(4096 + 65, 1), 1);
        assert_eq!(slot_start(70, 1, 3), 192);
        assert_eq!(slot_start(5, 10, 15), 15 << 60);
    }

    #[test]
    fn fires_at_deadline_never_before() {
        let mut w = Wheel::new();
        w.insert(100, "a");
        assert!(fire(&mut w, 99).is_empty());
        assert_eq!(fire(&mut w, 100), vec![(100, "a")]);
        assert!(w.is_empty());
    }

    #[test]
    fn equal_deadlines_fire_in_insertion_order_across_levels() {
        let mut w = Wheel::new();
        w.insert(100, 1); // level 1 now
        fire(&mut w, 90);
        w.insert(100, 2); // level 0 now
        w.insert(100, 3);
        assert_eq!(fire(&mut w, 100), vec![(100, 1), (100, 2), (100, 3)]);
    }

    #[test]
    fn next_deadline_looks_into_higher_levels() {
        let mut w = Wheel::new();
        w.insert(5000, 'b');
        w.insert(4500, 'a');
        assert_eq!(w.next_deadline(), Some((4500, &'a')));
        let k = w.insert(3, 'c');
        assert_eq!(w.next_deadline(), Some((3, &'c')));
        assert_eq!(w.cancel(k), Some('c'));
        assert_eq!(w.cancel(k), None, "a cancelled key is gone");
        let reused = w.insert(7, 'd');
        assert_eq!(reused.index, k.index, "the slab reused the entry");
        assert_eq!(
            w.cancel(k),
            None,
            "an old key does not cancel the new timer"
        );
        assert_eq!(w.cancel(reused), Some('d'));
        assert_eq!(w.next_deadline(), Some((4500, &'a')));
    }

    #[test]
    fn huge_deadlines_saturate_and_still_order() {
        let mut w = Wheel::new();
        w.insert(u64::MAX, "max");
        w.insert(1 << 40, "far");
        assert_eq!(w.next_deadline(), Some((1 << 40, &"far")));
        assert_eq!(fire(&mut w, 1 << 40), vec![(1 << 40, "far")]);
        assert_eq!(fire(&mut w, u64::MAX), vec![(u64::MAX, "max")]);
    }

    #[test]
    fn past_deadlines_fire_on_the_next_advance() {
        let mut w = Wheel::new();
        fire(&mut w, 1000);
        w.insert(10, "late");
        assert_eq!(fire(&mut w, 1000), vec![(1000, "late")]);
    }
}
