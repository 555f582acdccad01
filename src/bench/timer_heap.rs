//! The baseline the wheel is measured against: a binary heap of (deadline, seq, id) with
//! lazy deletion. Insert is O(log n); cancel only marks the id, and a marked entry is
//! thrown away when it reaches the top. This is what most runtimes start with (libuv
//! uses a min-heap; Node keeps sorted lists per duration).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A min-heap timer queue with lazy cancellation.
#[derive(Default)]
pub struct HeapTimers {
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    /// Indexed by timer id: true once cancelled (or fired).
    dead: Vec<bool>,
    live: usize,
}

impl HeapTimers {
    /// An empty queue.
    pub fn new() -> HeapTimers {
        HeapTimers::default()
    }

    /// Add a timer due at `deadline`; returns its id.
    pub fn insert(&mut self, deadline: u64) -> u64 {
        let id = self.dead.len() as u64;
        self.dead.push(false);
        self.heap.push(Reverse((deadline, id)));
        self.live += 1;
        id
    }

    /// Cancel by id: O(1), the entry stays in the heap until it surfaces.
    pub fn cancel(&mut self, id: u64) -> bool {
        match self.dead.get_mut(id as usize) {
            Some(d) if !*d => {
                *d = true;
                self.live -= 1;
                true
            }
            _ => false,
        }
    }

    /// Pop every timer due at or before `now` into `out` as (deadline, id).
    pub fn advance(&mut self, now: u64, out: &mut Vec<(u64, u64)>) {
        while let Some(Reverse((deadline, id))) = self.heap.peek().copied() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            if !std::mem::replace(&mut self.dead[id as usize], true) {
                self.live -= 1;
                out.push((deadline, id));
            }
        }
    }

    /// Timers still to fire.
    pub fn len(&self) -> usize {
        self.live
    }

    /// No timer left to fire.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
}
