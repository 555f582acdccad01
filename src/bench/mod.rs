//! The benchmark: thread-per-connection against the event loop, and the timer wheel
//! against a heap.
//!
//! - [`loadgen`]: the closed-loop client on looplab's own loop, every byte checked;
//! - [`procstat`]: a server's memory, threads, context switches and CPU from /proc;
//! - [`runner`]: a child process per (server, connections), measured side by side;
//! - [`scrape`]: a loop server's `/metrics` read at the window's start and end;
//! - [`report`]: the table, `results.json` and the three-panel `echo.svg`;
//! - [`timers`], [`timer_heap`]: the wheel against a binary heap;
//! - [`waiters`]: held polls on the long-poll server, answered by one publish;
//! - [`hostile`]: the long-poll server against hostile clients, beside normal ones.

pub mod hostile;
pub mod loadgen;
pub mod loops;
pub mod procstat;
pub mod report;
pub mod runner;
pub mod scrape;
pub mod timer_heap;
pub mod timers;
pub mod waiters;
