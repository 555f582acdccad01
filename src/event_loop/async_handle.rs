//! Async handles: another thread wakes the loop and a callback runs on the loop thread.
//!
//! `send()` sets a flag; only the send that flips it from clear to set queues the handle
//! and writes to the self-pipe. The loop clears the flag *before* running the callback,
//! so a send that races with the callback causes one more callback: sends coalesce, but
//! the callback always runs after the last send's effects are visible.

use super::{Loop, State};
use crate::handle::{Async, Handle, HandleKind};
use crate::metrics::Site;
use crate::sys::selfpipe::SelfPipe;
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

struct Shared {
    handle: Handle,
    pending: AtomicBool,
    closed: AtomicBool,
    queue: Sender<Handle>,
    waker: Arc<SelfPipe>,
}

type AsyncCallback = Box<dyn FnMut(&mut Loop, Async)>;

pub(crate) struct AsyncState {
    shared: Arc<Shared>,
    callback: Option<AsyncCallback>,
}

/// Wakes the loop from any thread. `Send + Clone`; cheap to clone.
#[derive(Clone)]
pub struct AsyncSender {
    shared: Arc<Shared>,
}

impl AsyncSender {
    /// Ask for the callback to run on the loop thread. Sends made before the callback
    /// starts coalesce into one run. Returns false once the handle is closed.
    pub fn send(&self) -> bool {
        let s = &self.shared;
        if s.closed.load(Ordering::Acquire) {
            return false;
        }
        // AcqRel: pairs with the loop's swap in `run_async_sends`, so whatever this thread
        // wrote before sending is visible to the callback.
        if !s.pending.swap(true, Ordering::AcqRel) {
            // The loop owns the receiver for as long as the handle can be sent to.
            let _ = s.queue.send(s.handle);
            // wake() treats a full pipe as woken and retries EINTR; what is left (a closed
            // pipe) means the loop is gone, and then there is no one to run the callback.
            let _ = s.waker.wake();
        }
        true
    }
}

impl Loop {
    /// A handle another thread can use to run `cb` on this loop. Active and ref'd: it
    /// keeps the loop alive until closed (or unref'd).
    pub fn async_handle(
        &mut self,
        cb: impl FnMut(&mut Loop, Async) + 'static,
    ) -> (Async, AsyncSender) {
        let mut sender = None;
        let h = self
            .handles
            .insert_with(HandleKind::Async, true, true, |h| {
                let shared = Arc::new(Shared {
                    handle: h,
                    pending: AtomicBool::new(false),
                    closed: AtomicBool::new(false),
                    queue: self.async_queue.0.clone(),
                    waker: self.waker.clone(),
                });
                sender = Some(AsyncSender {
                    shared: shared.clone(),
                });
                State::Async(AsyncState {
                    shared,
                    callback: Some(Box::new(cb)),
                })
            });
        let sender = sender.unwrap_or_else(|| unreachable!("insert_with calls its constructor"));
        (Async(h), sender)
    }

    pub(crate) fn stop_async(&mut self, h: Handle) {
        if let Some(State::Async(a)) = self.handles.state_mut(h) {
            a.shared.closed.store(true, Ordering::Release);
        }
    }

    /// After a wake: run the callback of every async handle that was sent to. Returns
    /// how many sends it found.
    pub(super) fn run_async_sends(&mut self) -> usize {
        let mut found = 0;
        while let Ok(h) = self.async_queue.1.try_recv() {
            found += 1;
            let Some(State::Async(a)) = self.handles.state_mut(h) else {
                continue;
            };
            a.shared.pending.swap(false, Ordering::AcqRel);
            if a.shared.closed.load(Ordering::Acquire) {
                continue;
            }
            let Some(cb) = a.callback.take() else {
                continue;
            };
            let _cause = crate::task::Cause::Async(h).enter();
            let site = Site::of(HandleKind::Async, h);
            self.timed(
                site,
                |_| format!("async {h}"),
                |lp| {
                    lp.call_taken(
                        cb,
                        |lp, cb| cb(lp, Async(h)),
                        |lp, cb| {
                            if let Some(State::Async(a @ AsyncState { callback: None, .. })) =
                                lp.handles.state_mut(h)
                            {
                                a.callback = Some(cb);
                            }
                        },
                    )
                },
            );
        }
        found
    }
}
