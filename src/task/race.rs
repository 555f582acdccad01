//! `race(a, b)`: the first of two futures to finish wins; the other is dropped.
//!
//! Written by hand because it is the lesson of cancellation in Rust: there is no
//! "cancel" call. A future that is no longer polled does nothing; a future that is
//! *dropped* runs its `Drop`, and every leaf future here undoes its work there (clears
//! its timer, stops reading, cancels its queued job). So the loser of a race is
//! cancelled by the one line that drops it.
//!
//! Both futures are boxed, which makes `Race` `Unpin`: polling a field of a pinned
//! struct would otherwise need `unsafe` pin projection (or a crate that writes it).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Which side of a [`race`] finished first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Either<L, R> {
    /// The first future won.
    Left(L),
    /// The second future won.
    Right(R),
}

impl<T> Either<T, T> {
    /// The winner's output, when both sides give the same type.
    pub fn into_inner(self) -> T {
        match self {
            Either::Left(v) | Either::Right(v) => v,
        }
    }
}

/// The future of [`race`].
pub struct Race<A: Future, B: Future> {
    a: Option<Pin<Box<A>>>,
    b: Option<Pin<Box<B>>>,
}

/// Poll `a` and `b` until one finishes; return its output and drop the other at once
/// (which cancels what it was waiting on). `a` is polled first each time, so if both are
/// ready in the same poll, `a` wins: a documented bias, like tokio's `biased;` select.
pub fn race<A: Future, B: Future>(a: A, b: B) -> Race<A, B> {
    Race {
        a: Some(Box::pin(a)),
        b: Some(Box::pin(b)),
    }
}

impl<A: Future, B: Future> Future for Race<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Some(a) = self.a.as_mut() {
            if let Poll::Ready(out) = a.as_mut().poll(cx) {
                self.b = None; // the loser is dropped here: its Drop cancels its work
                self.a = None;
                return Poll::Ready(Either::Left(out));
            }
        }
        if let Some(b) = self.b.as_mut() {
            if let Poll::Ready(out) = b.as_mut().poll(cx) {
                self.a = None;
                self.b = None;
                return Poll::Ready(Either::Right(out));
            }
        }
        // Both stored `cx.waker()` (each leaf future does): whichever is ready first
        // wakes this task, and the next poll finds it.
        Poll::Pending
    }
}
