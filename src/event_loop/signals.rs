//! Signal handles on the loop: the callback runs on the loop thread, in the poll phase,
//! when the signal pipe (written by the handler in `sys/signal.rs`) becomes readable.
//!
//! Signal handles are unref'd when created, as in Node: listening for SIGINT must not
//! keep a program alive that has nothing else to do.

use super::{Loop, State, SIGNAL_TOKEN};
use crate::handle::{Handle, HandleKind, Signal};
use crate::metrics::Site;
use crate::sys::selfpipe::SelfPipe;
use crate::sys::{signal as sys_signal, Interest};
use std::io;

/// The loop's own pipe for signal numbers, registered in the process-wide table.
pub(crate) struct SignalPipe {
    pipe: SelfPipe,
    slot: usize,
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        // Stop the handler writing here before the fds close.
        sys_signal::remove_pipe(self.slot);
    }
}

type SignalCallback = Box<dyn FnMut(&mut Loop, Signal, i32)>;

pub(crate) struct SignalState {
    signum: i32,
    /// Registered with the process-wide table until close (or the loop's drop).
    watching: bool,
    callback: Option<SignalCallback>,
}

impl Loop {
    /// Run `cb` on the loop thread each time `signum` arrives. Unref'd by default.
    pub fn signal(
        &mut self,
        signum: i32,
        cb: impl FnMut(&mut Loop, Signal, i32) + 'static,
    ) -> io::Result<Signal> {
        let slot = self.ensure_signal_pipe()?;
        sys_signal::watch(slot, signum)
            .map_err(|e| crate::error::context(format!("watching signal {signum}"), e))?;
        let state = SignalState {
            signum,
            watching: true,
            callback: Some(Box::new(cb)),
        };
        let h = self
            .handles
            .insert(HandleKind::Signal, State::Signal(state), true, false);
        Ok(Signal(h))
    }

    /// Send `signum` to this loop's signal pipe without a handle: the loop's own use
    /// (SIGCHLD for child processes), which never holds the loop. One `unwatch_internal`
    /// per call.
    pub(crate) fn watch_internal(&mut self, signum: i32) -> io::Result<()> {
        let slot = self.ensure_signal_pipe()?;
        sys_signal::watch(slot, signum)
            .map_err(|e| crate::error::context(format!("watching signal {signum}"), e))
    }

    pub(crate) fn unwatch_internal(&mut self, signum: i32) {
        if let Some(sp) = &self.signal_pipe {
            sys_signal::unwatch(sp.slot, signum);
        }
    }

    fn ensure_signal_pipe(&mut self) -> io::Result<usize> {
        if let Some(sp) = &self.signal_pipe {
            return Ok(sp.slot);
        }
        let pipe =
            SelfPipe::new().map_err(|e| crate::error::context("creating the signal pipe", e))?;
        self.poller
            .register(pipe.read_fd(), SIGNAL_TOKEN, Interest::READABLE)?;
        let slot = sys_signal::add_pipe(pipe.write_fd())?;
        self.signal_pipe = Some(SignalPipe { pipe, slot });
        Ok(slot)
    }

    /// Stop watching (close, or the loop is dropped). Idempotent per handle.
    pub(crate) fn stop_signal(&mut self, h: Handle) {
        let slot = self.signal_pipe.as_ref().map(|sp| sp.slot);
        if let (Some(State::Signal(s)), Some(slot)) = (self.handles.state_mut(h), slot) {
            if std::mem::replace(&mut s.watching, false) {
                sys_signal::unwatch(slot, s.signum);
            }
        }
    }

    /// Phase 4, signal pipe readable: each byte is one delivered signal number.
    #[inline(never)]
    pub(super) fn on_signal_pipe(&mut self) {
        let mut signums = Vec::new();
        if let Some(sp) = &self.signal_pipe {
            if let Err(e) = sp.pipe.read_into(&mut signums) {
                self.tracer
                    .note(format!("reading the signal pipe failed: {e}"));
            }
        }
        // The loop's own SIGCHLD watch first, once per batch, however many SIGCHLDs
        // coalesced into it; then the handles watching signals.
        if signums.contains(&(libc::SIGCHLD as u8)) && self.children.unreaped() > 0 {
            self.reap_children();
        }
        for signum in signums {
            let watchers: Vec<Handle> = self
                .handles
                .infos()
                .filter(|i| i.kind == HandleKind::Signal && !i.closing)
                .map(|i| i.handle)
                .collect();
            for h in watchers {
                self.run_signal_callback(h, i32::from(signum));
            }
        }
    }

    fn run_signal_callback(&mut self, h: Handle, signum: i32) {
        let Some(State::Signal(s)) = self.handles.state_mut(h) else {
            return;
        };
        if s.signum != signum || !s.watching {
            return;
        }
        let Some(cb) = s.callback.take() else {
            return;
        };
        let site = Site::of(HandleKind::Signal, h);
        self.timed(
            site,
            |_| format!("signal {h}"),
            |lp| {
                lp.call_taken(
                    cb,
                    |lp, cb| cb(lp, Signal(h), signum),
                    |lp, cb| {
                        if let Some(State::Signal(s @ SignalState { callback: None, .. })) =
                            lp.handles.state_mut(h)
                        {
                            s.callback = Some(cb);
                        }
                    },
                )
            },
        );
    }
}
