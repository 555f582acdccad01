//! `shield(fut)`: work no cancel above it can stop, for the goodbye write of a server
//! that is shutting down.
//!
//! In Rust a future is cancelled by being dropped, and nothing can refuse a drop. So a
//! shield does not protect `fut` where it stands: it moves it into a task of its own
//! (spawned at the shield's first poll), which no scope above owns. The shield's own
//! future only waits for that task's output; dropping it detaches the task. The
//! nursery it was started in (if any) waits for it, even once cancelled: a scope does
//! not finish while its shielded work runs. It runs under no deadline, as in Trio.

use super::{current, Frame, Framed};
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// The output of the shielded task, and who waits for it.
struct Slot<T> {
    out: Option<io::Result<T>>,
    waiter: Option<Waker>,
}

/// The future of [`shield`].
pub struct Shield<F: Future<Output = io::Result<T>>, T> {
    fut: Option<F>,
    slot: Rc<RefCell<Slot<T>>>,
}

/// Run `fut` so that no cancel or deadline above it can stop it; its output.
pub fn shield<F, T>(fut: F) -> Shield<F, T>
where
    F: Future<Output = io::Result<T>> + 'static,
    T: 'static,
{
    Shield {
        fut: Some(fut),
        slot: Rc::new(RefCell::new(Slot {
            out: None,
            waiter: None,
        })),
    }
}

impl<F, T> Future for Shield<F, T>
where
    F: Future<Output = io::Result<T>> + 'static,
    T: 'static,
{
    type Output = io::Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        // `fut` is only moved out, never polled in place: `Shield` is Unpin (below).
        let this = Pin::into_inner(self);
        if let Some(fut) = this.fut.take() {
            let slot = this.slot.clone();
            let nursery = current().nursery;
            let task = crate::task::spawn(Framed {
                frame: Frame::default(), // no deadline, no nursery to be dropped by
                fut: Box::pin(async move {
                    let out = fut.await;
                    let mut s = slot.borrow_mut();
                    s.out = Some(out);
                    if let Some(w) = s.waiter.take() {
                        w.wake();
                    }
                }),
            });
            if let Some(inner) = nursery.and_then(|n| n.upgrade()) {
                inner.borrow_mut().shielded.push(task);
            }
        }
        let mut s = this.slot.borrow_mut();
        match s.out.take() {
            Some(out) => Poll::Ready(out),
            None => {
                s.waiter = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Sound without `unsafe`: `fut` is never pinned here, only moved into its own task.
impl<F: Future<Output = io::Result<T>>, T> Unpin for Shield<F, T> {}
