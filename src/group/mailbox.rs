//! A typed mailbox per loop: a bounded crossbeam channel carries the messages, the
//! loop's own async handle wakes it. This is the only way one loop of a group reaches
//! another: the sender gives a message away (it must be `Send`), the receiving loop
//! runs its handler on its own thread, between its own callbacks. Nothing is shared
//! behind a loop's back, so no loop state needs a lock.
//!
//! Why both a channel and an async handle: an async handle's sends coalesce (ten sends
//! before the loop looks are one callback), so it can say "look in your mailbox" but
//! cannot carry the letters. The channel carries them, in order per sender.
//!
//! The channel is bounded ([`MAILBOX_CAPACITY`]): a loop that stalls does not let the
//! others queue without end. A post to a full mailbox is refused and hands the message
//! back ([`PostError::Full`]); the sender decides (the long-poll group answers 503).
//!
//! Stopping is a flag beside the channel, not a message in it, so a full mailbox
//! cannot delay a stop.

use crate::handle::Async;
use crate::{AsyncSender, Loop};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Messages a mailbox holds at most; a post past this is refused.
pub const MAILBOX_CAPACITY: usize = 4096;
/// Messages one wake of the mailbox handles before the loop's other work gets its turn;
/// what is left waits for the next tick (the handle wakes itself again).
const BATCH: usize = 256;

/// Why a post did not go through; the message comes back.
#[derive(Debug)]
pub enum PostError<M> {
    /// That loop's mailbox holds [`MAILBOX_CAPACITY`] messages already.
    Full(M),
    /// That loop has stopped (or never started), or there is no loop with that index.
    Closed(M),
}

/// How many messages crossed into one loop (the "cross-loop hops").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hops {
    /// Posts accepted into its mailbox.
    pub posted: u64,
    /// Messages handed to its handler (counted as each starts).
    pub delivered: u64,
    /// Posts refused because its mailbox was full.
    pub refused: u64,
}

#[derive(Default)]
pub(crate) struct Counts {
    posted: AtomicU64,
    delivered: AtomicU64,
    refused: AtomicU64,
}

/// The sending side of one loop's mailbox.
pub(crate) struct Peer<M> {
    pub tx: Sender<M>,
    pub wake: AsyncSender,
    pub stop: Arc<AtomicBool>,
    pub counts: Arc<Counts>,
}

/// Posts to any loop of the group: `Send + Clone` (if `M: Send`), cheap to clone.
pub struct Postbox<M> {
    peers: Arc<Vec<Peer<M>>>,
}

impl<M> Clone for Postbox<M> {
    fn clone(&self) -> Self {
        Postbox {
            peers: self.peers.clone(),
        }
    }
}

impl<M: Send> Postbox<M> {
    pub(crate) fn new(peers: Vec<Peer<M>>) -> Postbox<M> {
        Postbox {
            peers: Arc::new(peers),
        }
    }

    /// How many loops the group has.
    pub fn loops(&self) -> usize {
        self.peers.len()
    }

    /// Give `msg` to loop `to`; its handler runs on that loop's thread soon after.
    pub fn post(&self, to: usize, msg: M) -> Result<(), PostError<M>> {
        let Some(peer) = self.peers.get(to) else {
            return Err(PostError::Closed(msg));
        };
        if peer.stop.load(Ordering::Acquire) {
            return Err(PostError::Closed(msg));
        }
        // Counted before it is sent, so a count of delivered never passes it.
        peer.counts.posted.fetch_add(1, Ordering::Relaxed);
        let refused = match peer.tx.try_send(msg) {
            Ok(()) => None,
            Err(TrySendError::Full(m)) => {
                peer.counts.refused.fetch_add(1, Ordering::Relaxed);
                Some(PostError::Full(m))
            }
            Err(TrySendError::Disconnected(m)) => Some(PostError::Closed(m)),
        };
        if let Some(e) = refused {
            peer.counts.posted.fetch_sub(1, Ordering::Relaxed);
            return Err(e);
        }
        // The message is in the channel before the wake, so the handler finds it. A post
        // that races with a stop is dropped with the mailbox, like every unread message.
        peer.wake.send();
        Ok(())
    }

    /// Ask every loop to stop: each runs its `on_stop` (or `Loop::stop`) and closes its
    /// mailbox, so it exits once what it still serves is done.
    pub fn stop_all(&self) {
        for peer in self.peers.iter() {
            peer.stop.store(true, Ordering::Release);
            peer.wake.send();
        }
    }

    /// Cross-loop hops into each loop so far, by loop index.
    pub fn hops(&self) -> Vec<Hops> {
        self.peers
            .iter()
            .map(|p| Hops {
                posted: p.counts.posted.load(Ordering::Relaxed),
                delivered: p.counts.delivered.load(Ordering::Relaxed),
                refused: p.counts.refused.load(Ordering::Relaxed),
            })
            .collect()
    }
}

type Handler<M> = Box<dyn FnMut(&mut Loop, M)>;
type OnStop = Box<dyn FnOnce(&mut Loop)>;

/// The receiving side, on the loop's thread: what to do with a message, and on stop.
pub(crate) struct Inbox<M> {
    pub handler: RefCell<Option<Handler<M>>>,
    pub on_stop: RefCell<Option<OnStop>>,
}

impl<M> Default for Inbox<M> {
    fn default() -> Self {
        Inbox {
            handler: RefCell::new(None),
            on_stop: RefCell::new(None),
        }
    }
}

/// Make `lp`'s mailbox: an async handle that drains `rx` into the inbox's handler. The
/// handle is ref'd: a group's loop lives until it is stopped.
pub(crate) fn install<M: 'static>(
    lp: &mut Loop,
    rx: Receiver<M>,
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    inbox: Rc<Inbox<M>>,
) -> AsyncSender {
    let me: Rc<RefCell<Option<AsyncSender>>> = Rc::default();
    let again = me.clone();
    let (_, wake) = lp.async_handle(move |lp, a| {
        if stop.load(Ordering::Acquire) {
            return stop_here(lp, a, &inbox);
        }
        let n = deliver(lp, &rx, &inbox, &counts);
        if lp.tracer.enabled && n > 0 {
            lp.tracer
                .note(format!("mailbox {}: {n} message(s) from other loops", a.0));
        }
        if !rx.is_empty() {
            if let Some(w) = again.borrow().as_ref() {
                w.send();
            }
        }
    });
    *me.borrow_mut() = Some(wake.clone());
    wake
}

/// At most [`BATCH`] messages to the handler; how many ran.
fn deliver<M>(lp: &mut Loop, rx: &Receiver<M>, inbox: &Inbox<M>, counts: &Counts) -> u64 {
    // Taken out while it runs, so a handler that panics leaves no borrow behind.
    let Some(mut handler) = inbox.handler.borrow_mut().take() else {
        return 0; // nobody listens: the messages wait (bounded) until someone does
    };
    let mut n = 0;
    while n < BATCH as u64 {
        let Ok(msg) = rx.try_recv() else { break };
        // Counted before it runs, so whoever sees what the handler did sees the count.
        counts.delivered.fetch_add(1, Ordering::Relaxed);
        handler(lp, msg);
        n += 1;
    }
    let mut slot = inbox.handler.borrow_mut();
    if slot.is_none() {
        *slot = Some(handler);
    }
    n
}

fn stop_here<M>(lp: &mut Loop, mailbox: Async, inbox: &Inbox<M>) {
    if !lp.close(mailbox) {
        return; // already stopping
    }
    lp.tracer
        .note(format!("mailbox {}: the group stops", mailbox.0));
    let on_stop = inbox.on_stop.borrow_mut().take();
    match on_stop {
        Some(f) => f(lp),
        None => lp.stop(),
    }
}
