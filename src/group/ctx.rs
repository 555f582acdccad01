//! What a loop of a group is given besides its `Loop`: who it is, its listening socket,
//! its mailbox, and the postbox to every other loop.

use super::mailbox::{Inbox, Postbox};
use super::ListenMode;
use crate::{Listener, Loop, Tcp};
use socket2::Socket;
use std::io;
use std::rc::Rc;

/// One loop's view of its group, handed to the setup closure on the loop's thread.
pub struct LoopCtx<M> {
    pub(crate) index: usize,
    pub(crate) postbox: Postbox<M>,
    pub(crate) socket: Option<Socket>,
    pub(crate) mode: ListenMode,
    pub(crate) inbox: Rc<Inbox<M>>,
}

impl<M: Send + 'static> LoopCtx<M> {
    /// This loop's index, 0 to `loops() - 1`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many loops the group has.
    pub fn loops(&self) -> usize {
        self.postbox.loops()
    }

    /// How the group's listener is shared (after any fallback).
    pub fn mode(&self) -> ListenMode {
        self.mode
    }

    /// Posts to any loop, this one included; clone it into callbacks.
    pub fn postbox(&self) -> Postbox<M> {
        self.postbox.clone()
    }

    /// Run `f` on this loop for every message posted to it, in the order each sender
    /// posted them.
    pub fn on_message(&mut self, f: impl FnMut(&mut Loop, M) + 'static) {
        *self.inbox.handler.borrow_mut() = Some(Box::new(f));
    }

    /// Run `f` when the group stops (a signal, or any loop's `stop_all`): close what the
    /// server holds, so the loop ends once its work is done. Without it, `Loop::stop`.
    pub fn on_stop(&mut self, f: impl FnOnce(&mut Loop) + 'static) {
        *self.inbox.on_stop.borrow_mut() = Some(Box::new(f));
    }

    /// Accept on the group's address: this loop's own SO_REUSEPORT socket, or its copy
    /// of the one socket all loops share (EPOLLEXCLUSIVE). Once per loop; an error if
    /// the group was built without `listen(addr)`.
    pub fn listen(
        &mut self,
        lp: &mut Loop,
        on_connection: impl FnMut(&mut Loop, Listener, io::Result<Tcp>) + 'static,
    ) -> io::Result<Listener> {
        let socket = self.socket.take().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "this loop has no listening socket: build the group with listen(addr), and \
                 call LoopCtx::listen once",
            )
        })?;
        let exclusive = self.mode == ListenMode::Exclusive;
        lp.listen_on(socket, exclusive, on_connection).map_err(|e| {
            crate::error::context(format!("loop {} watching its listener", self.index), e)
        })
    }
}
