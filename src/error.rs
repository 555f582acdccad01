//! Errors with context: what was being done, on which handle, path or fd, and the OS
//! error underneath. They travel as `io::Error` (the public API returns `io::Result`),
//! with an [`Error`] inside, so `kind()` still tells WouldBlock from ConnectionReset and
//! `source()` still reaches the kernel's answer.

use crate::handle::Handle;
use std::io;

/// An `io::Error` with a sentence of context in front of it.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct Error {
    what: String,
    #[source]
    source: io::Error,
}

impl Error {
    /// What was being done when it failed ("reading /etc/hosts on the pool").
    pub fn what(&self) -> &str {
        &self.what
    }
}

/// Wrap `source` with a description of what failed; the kind is kept.
pub(crate) fn context(what: impl Into<String>, source: io::Error) -> io::Error {
    io::Error::new(
        source.kind(),
        Error {
            what: what.into(),
            source,
        },
    )
}

/// The error for an operation on a handle that is closed, or was never this kind.
pub(crate) fn stale(op: &str, h: Handle) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{op}: handle {h:?} is closed, closing, or not of the right kind"),
    )
}
