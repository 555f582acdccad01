//! The benchmark: thread-per-connection against the event loop, and the timer wheel
//! against a heap.

pub mod timer_heap;
pub mod timers;
