//! Why a piece of work produced no value, and how a worker's panic becomes a message.

use std::any::Any;
use std::{fmt, io};

/// Why a piece of work produced no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkError {
    /// `cancel()` took it off the queue before a worker started it.
    Canceled,
    /// It panicked on a worker (the panic's message); the worker lives on.
    Panicked(String),
    /// The pool's threads could not be started (the OS refused a thread).
    NoPool(String),
    /// The scope it was opened under was cancelled (`Loop::cancel_scope`, a deadline):
    /// queued, it never runs; running, its result is thrown away.
    Scope(crate::scope::Cancel),
}

impl fmt::Display for WorkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkError::Canceled => f.write_str("work was canceled before it started"),
            WorkError::Panicked(msg) => write!(f, "work panicked on a pool thread: {msg}"),
            WorkError::NoPool(msg) => write!(f, "the thread pool could not start: {msg}"),
            WorkError::Scope(cause) => cause.fmt(f),
        }
    }
}

impl std::error::Error for WorkError {}

impl From<WorkError> for io::Error {
    /// For fs and dns, whose callbacks take `io::Result`: the kind is `Other` (never
    /// `Interrupted`, which std users read as "retry"), the `WorkError` is the source.
    fn from(e: WorkError) -> io::Error {
        match e {
            // A scope's cause keeps its own kind: TimedOut for a deadline.
            WorkError::Scope(cause) => cause.into(),
            e => io::Error::other(e),
        }
    }
}

/// The message of a caught panic, whatever its payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}
