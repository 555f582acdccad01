//! Errors with context, as a chain: what was being done (and on which path, peer or
//! handle), after how long, and the cause underneath. They travel as `io::Error` (the
//! public API returns `io::Result`), with an [`Error`] inside, so `kind()` still tells
//! WouldBlock from ConnectionReset and `source()` still reaches the kernel's answer.
//!
//! One link per layer that knew something the layer below did not:
//!
//! ```text
//!   io::Error(TimedOut) ─ Error { what: "reading /x on the pool", after: 5 s }
//!                             └─ io::Error(TimedOut) ─ Cancel::Deadline(5 s)
//! ```
//!
//! `Display` walks the chain, so the CLI prints one line:
//! `reading /x on the pool: after 5.0 s: deadline 5 s exceeded`. Code walks it with
//! [`Error::chain`] (each link's own text) or `source()`.

use crate::handle::Handle;
use std::fmt;
use std::io;
use std::time::Duration;

/// An `io::Error` with a sentence of context in front of it (and how long it took).
#[derive(Debug)]
pub struct Error {
    what: String,
    after: Option<Duration>,
    source: io::Error,
}

impl Error {
    /// What was being done when it failed ("reading /etc/hosts on the pool").
    pub fn what(&self) -> &str {
        &self.what
    }

    /// How long it had been going when it failed, if the layer that wrapped it knew.
    pub fn after(&self) -> Option<Duration> {
        self.after
    }

    /// Wrap `source` with what was being done; the kind is kept. For code outside the
    /// crate (a server adding its own layer) as much as for the crate.
    pub fn wrap(what: impl Into<String>, source: io::Error) -> io::Error {
        context(what, source)
    }

    /// [`Error::wrap`], saying also how long it had been going.
    pub fn wrap_after(what: impl Into<String>, after: Duration, source: io::Error) -> io::Error {
        io::Error::new(
            source.kind(),
            Error {
                what: what.into(),
                after: Some(after),
                source,
            },
        )
    }

    /// Each link's own text, outermost first: `["reading /x on the pool", "after 5.0 s",
    /// "deadline 5 s exceeded"]`. `io::Error::source` skips the link it carries (it
    /// answers for its payload's source), so the walk looks inside each `io::Error`.
    pub fn chain(e: &io::Error) -> Vec<String> {
        let mut links = Vec::new();
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(cur) = next {
            let inner = cur
                .downcast_ref::<io::Error>()
                .and_then(|io| io.get_ref())
                .map(|r| r as &(dyn std::error::Error + 'static));
            let cur = inner.unwrap_or(cur);
            match cur.downcast_ref::<Error>() {
                Some(ctx) => {
                    links.push(ctx.what.clone());
                    if let Some(after) = ctx.after {
                        links.push(format!("after {}", seconds(after)));
                    }
                }
                None => links.push(cur.to_string()),
            }
            next = cur.source();
        }
        links
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)?;
        if let Some(after) = self.after {
            write!(f, ": after {}", seconds(after))?;
        }
        write!(f, ": {}", self.source)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// "5.0 s" from a second up, "52 ms" below: what a person reads in a one-line error.
pub(crate) fn seconds(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Wrap `source` with a description of what failed; the kind is kept.
pub(crate) fn context(what: impl Into<String>, source: io::Error) -> io::Error {
    io::Error::new(
        source.kind(),
        Error {
            what: what.into(),
            after: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_walks_the_chain_and_keeps_the_kind() {
        let os = io::Error::new(io::ErrorKind::TimedOut, "deadline 5 s exceeded");
        let e = Error::wrap_after("reading /x on the pool", Duration::from_secs(5), os);
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(
            e.to_string(),
            "reading /x on the pool: after 5.0 s: deadline 5 s exceeded"
        );
        let outer = context("serving GET /poll", e);
        assert_eq!(
            Error::chain(&outer),
            [
                "serving GET /poll",
                "reading /x on the pool",
                "after 5.0 s",
                "deadline 5 s exceeded"
            ]
        );
    }

    #[test]
    fn seconds_reads_like_a_person_writes() {
        assert_eq!(seconds(Duration::from_millis(52)), "52 ms");
        assert_eq!(seconds(Duration::from_millis(5049)), "5.0 s");
    }
}
