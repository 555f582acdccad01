//! Replicated requests: ask N replicas the same thing, take the first good answer, and
//! drop (= cancel) the others.
//!
//! `race` takes the first future to finish, error or not; a replica that fails fast
//! (a refused connection answers in microseconds) would win every race. `first_ok`
//! waits for the first `Ok` instead: a replica's error only takes it out of the race,
//! and the request fails only when every replica has failed, with an error that names
//! each replica's failure ([`Failures`]).
//!
//! The losers are cancelled the Rust way: the moment a winner is known, the vector of
//! the others is cleared, so each loser's `Drop` runs in that poll. Every leaf future
//! undoes its work there (a connect closes its half-made stream, a read withdraws its
//! interest, a sleep clears its timer), so by the end of the tick the losers hold no
//! handle and no wheel entry. The trace says which replica won and how many were dropped.

use super::reactor;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Why each attempt failed, in the order they failed: the inner error of the
/// `io::Error` that [`first_ok`] (and `connect_happy`) return when all fail. Reach it
/// with `err.get_ref().and_then(|e| e.downcast_ref::<Failures>())`.
#[derive(Debug)]
pub struct Failures {
    /// What was attempted, in a few words ("3 replicas", "connecting to localhost:80").
    pub what: String,
    /// Each attempt's name (its index, or its address) and its error.
    pub each: Vec<(String, io::Error)>,
}

impl fmt::Display for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: all {} failed", self.what, self.each.len())?;
        for (i, (who, e)) in self.each.iter().enumerate() {
            let sep = if i == 0 { ": " } else { "; " };
            write!(f, "{sep}{who}: {e}")?;
        }
        Ok(())
    }
}

impl Error for Failures {}

impl Failures {
    /// The `io::Error` to return: the kind the attempts share (all timed out, all
    /// refused), else `Other`; this list as its inner error.
    pub fn into_error(self) -> io::Error {
        let kind = match self.each.first() {
            Some((_, first)) if self.each.iter().all(|(_, e)| e.kind() == first.kind()) => {
                first.kind()
            }
            Some(_) => io::ErrorKind::Other,
            None => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, self)
    }
}

type Replica<T> = Pin<Box<dyn Future<Output = io::Result<T>>>>;

/// The future of [`first_ok`] and [`replicate`].
pub struct FirstOk<T> {
    /// The replicas still running, with their index in the original order.
    running: Vec<(usize, Replica<T>)>,
    failed: Vec<(String, io::Error)>,
    total: usize,
}

/// Run every future of `replicas` at once; the first `Ok` wins, with the index of the
/// replica that gave it, and the others are dropped at once (which cancels what they
/// were waiting on). Errors only take a replica out; if all fail, the error lists
/// every replica's failure (see [`Failures`]). No replicas at all is an error of kind
/// `InvalidInput`. Replicas are polled in order, so of two answers ready in the same
/// poll, the lower index wins.
pub fn first_ok<T, F>(replicas: impl IntoIterator<Item = F>) -> FirstOk<T>
where
    F: Future<Output = io::Result<T>> + 'static,
{
    let running: Vec<(usize, Replica<T>)> = replicas
        .into_iter()
        .enumerate()
        .map(|(i, f)| (i, Box::pin(f) as Replica<T>))
        .collect();
    FirstOk {
        total: running.len(),
        running,
        failed: Vec::new(),
    }
}

/// `first_ok` over `n` replicas made by `make(0)`, `make(1)`, ... `make(n - 1)`.
pub fn replicate<T, F>(n: usize, make: impl FnMut(usize) -> F) -> FirstOk<T>
where
    F: Future<Output = io::Result<T>> + 'static,
{
    first_ok((0..n).map(make))
}

impl<T> Future for FirstOk<T> {
    type Output = io::Result<(usize, T)>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut i = 0;
        while i < this.running.len() {
            let (index, fut) = &mut this.running[i];
            let index = *index;
            match fut.as_mut().poll(cx) {
                Poll::Pending => i += 1,
                Poll::Ready(Ok(value)) => {
                    let losers = this.running.len() - 1;
                    // The losers' Drop runs here: this one line is the cancellation.
                    this.running.clear();
                    note(|| {
                        format!("replicas: #{index} answered first; dropped {losers} other(s)")
                    });
                    return Poll::Ready(Ok((index, value)));
                }
                Poll::Ready(Err(e)) => {
                    note(|| format!("replicas: #{index} failed: {e}"));
                    this.failed.push((format!("#{index}"), e));
                    drop(this.running.remove(i));
                }
            }
        }
        if !this.running.is_empty() {
            return Poll::Pending;
        }
        let what = format!("asking {} replica(s)", this.total);
        Poll::Ready(Err(if this.total == 0 {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: none to ask"))
        } else {
            Failures {
                what,
                each: std::mem::take(&mut this.failed),
            }
            .into_error()
        }))
    }
}

/// Put a line in the loop's trace, from inside a task (outside one there is no loop to
/// tell, and the line is not even built). The tracer drops it when the trace is off.
pub(crate) fn note(line: impl FnOnce() -> String) {
    let Ok(r) = reactor::current("trace note") else {
        return;
    };
    let line = line();
    r.ask(move |lp| lp.tracer.note(line));
}
