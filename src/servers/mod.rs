//! Servers built on the loop, and the thread-per-connection baseline.
//!
//! - [`echo`]: the echo server on looplab's `Loop`, one thread for every connection.
//! - [`echo_async`]: the same server as `async fn` tasks on the same loop.
//! - [`echo_threads`]: the same protocol with a blocking accept loop and one OS thread
//!   per connection: the classic design the event loop is measured against.
//! - `echo_uring` (Linux): the same echo on io_uring, completion instead of readiness.
//! - [`raw_echo`]: the same protocol on raw epoll by hand, rung 3 of the ladder.
//! - [`metrics_http`]: `/metrics` and the live `/loop` page, beside any of them on its loop.

pub mod echo;
pub mod echo_async;
pub mod echo_threads;
#[cfg(feature = "peer-tokio")]
pub mod echo_tokio;
#[cfg(target_os = "linux")]
pub mod echo_uring;
pub mod http;
pub mod longpoll;
pub mod metrics_http;
// The one place outside src/sys with `unsafe`: rung 3 of the ladder exists to show the
// raw syscalls, so each of its unsafe blocks carries its own SAFETY line.
#[allow(unsafe_code)]
pub mod raw_echo;
