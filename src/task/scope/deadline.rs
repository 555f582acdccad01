//! `move_on_after` and `fail_after`: a future against a deadline, Trio's two answers to
//! "what if it takes too long": carry on without it, or fail.
//!
//! Each is a race against a [`Sleep`](crate::task::Sleep), like `task::timeout`, with
//! two things more: the deadline is pushed as the enclosing one while the inner future
//! is polled (`current_deadline()`, and a nursery's children inherit it), and a deadline
//! that cannot come first (an enclosing one is earlier) arms no timer: the enclosing
//! one will drop this future before it could fire.

use super::{current, enter, Frame};
use crate::scope::Cancel;
use crate::task::{sleep, Sleep};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The deadline the current task's code runs under: the earliest of every enclosing
/// `move_on_after`/`fail_after` (and a nursery's, for its children). `None` outside one.
pub fn current_deadline() -> Option<Instant> {
    current().deadline
}

/// The future of [`move_on_after`] and [`fail_after`]: `Some(output)`, or `None` when
/// the deadline came first.
pub struct Deadline<F> {
    fut: Pin<Box<F>>,
    after: Duration,
    /// From the first poll: when, and the sleep (none if an enclosing one is earlier).
    armed: Option<(Instant, Option<Pin<Box<Sleep>>>)>,
}

impl<F: Future> Future for Deadline<F> {
    type Output = io::Result<Option<F::Output>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let frame = current();
        if self.armed.is_none() {
            let until = Instant::now() + self.after;
            let first = frame.deadline.is_none_or(|outer| until < outer);
            let timer = first.then(|| Box::pin(sleep(self.after)));
            self.armed = Some((until, timer));
        }
        let until = self.armed.as_ref().map(|(u, _)| *u);
        let deadline = match (until, frame.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let inner = {
            let _entered = enter(Frame { deadline, ..frame });
            self.fut.as_mut().poll(cx)
        };
        if let Poll::Ready(out) = inner {
            return Poll::Ready(Ok(Some(out)));
        }
        match self.armed.as_mut().and_then(|(_, s)| s.as_mut()) {
            Some(s) => match s.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => {
                    let after = self.after;
                    if let Ok(r) = crate::task::reactor::current("a deadline") {
                        r.ask(move |lp| {
                            let cause = Cancel::Deadline(after);
                            lp.tracer
                                .note(format!("{cause}: the future under it is dropped"))
                        });
                    }
                    Poll::Ready(Ok(None))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
            None => Poll::Pending,
        }
    }
}

/// Run `fut` for at most `after`: `Some(output)`, or `None` if `after` passed first
/// (then `fut` is dropped, which cancels what it waited on). Trio's `move_on_after`.
/// Outside a looplab task no timer can be armed: it gives `None` as soon as `fut` is
/// pending (`fail_after` gives the error that says why).
pub async fn move_on_after<F: Future>(after: Duration, fut: F) -> Option<F::Output> {
    deadline(after, fut).await.ok().flatten()
}

/// Run `fut` for at most `after`: its output, or an error of kind `TimedOut` whose
/// text is "deadline 5 s exceeded" and whose payload is a [`Cancel::Deadline`]. Trio's
/// `fail_after`.
pub async fn fail_after<F: Future>(after: Duration, fut: F) -> io::Result<F::Output> {
    match deadline(after, fut).await? {
        Some(out) => Ok(out),
        None => Err(Cancel::Deadline(after).into()),
    }
}

fn deadline<F: Future>(after: Duration, fut: F) -> Deadline<F> {
    Deadline {
        fut: Box::pin(fut),
        after,
        armed: None,
    }
}
