//! Connecting: a non-blocking `connect(2)` returns at once with `EINPROGRESS`; the
//! socket becomes writable when the handshake ends, and `SO_ERROR` then says whether it
//! succeeded (connection refused, unreachable) or not. TCP (`tcp_connect`) and Unix-domain
//! sockets (`unix_connect`) share it.
//!
//! As in libuv: writes made meanwhile wait in the queue; the connect callback hears the
//! real outcome first, then the queued writes are sent (or failed, after it); a failed
//! stream stays open until its owner calls `close`.

use super::{OnDone, StreamIo};
use crate::event_loop::Loop;
use crate::handle::{Handle, HandleKind};
use socket2::{SockAddr, Socket};
use std::io;

impl Loop {
    /// Start connecting `socket` (non-blocking) to `to`, as a new stream handle of `kind`
    /// whose connect request ends in `cb`. An error that connect(2) gives at once is
    /// returned, and no handle is made.
    pub(crate) fn start_connect(
        &mut self,
        socket: Socket,
        to: &SockAddr,
        kind: HandleKind,
        cb: OnDone,
    ) -> io::Result<Handle> {
        match socket.connect(to) {
            Ok(()) => {}
            Err(e)
                if e.raw_os_error() == Some(libc::EINPROGRESS)
                    || (kind == HandleKind::Tcp && e.kind() == io::ErrorKind::WouldBlock) => {}
            // A Unix socket says EAGAIN when the listener's backlog is full: that is a
            // refusal (try again later), not a connect in progress.
            Err(e) => return Err(e),
        }
        let h = self.insert_stream(StreamIo::Socket(socket), kind);
        if let Some(t) = self.stream(h) {
            t.connecting = Some(cb);
        }
        if let Err(e) = self.sync_interest(h) {
            self.handles.remove(h);
            return Err(e);
        }
        Ok(h)
    }

    /// The connecting socket became writable: connected, or failed (SO_ERROR says which).
    #[inline(never)]
    pub(crate) fn finish_connect(&mut self, h: Handle) {
        let Some(t) = self.stream(h) else { return };
        let Some(cb) = t.connecting.take() else {
            return;
        };
        let kind = t.kind;
        let socket = t.io.as_ref().and_then(StreamIo::socket);
        let outcome = match socket.map(|s| (s.take_error(), s.peer_addr())) {
            Some((Ok(None), Ok(_))) => Ok(()),
            Some((Ok(Some(e)) | Err(e), _)) | Some((Ok(None), Err(e))) => Err(e),
            None => Err(super::canceled("connect", kind, h)),
        };
        let nodelay = match (&outcome, socket) {
            (Ok(()), Some(s)) if kind == HandleKind::Tcp => s.set_tcp_nodelay(true),
            _ => Ok(()),
        };
        match outcome {
            Ok(()) => {
                if let Err(e) = nodelay {
                    self.tracer
                        .note(format!("TCP_NODELAY on tcp {h} failed: {e}"));
                }
                cb(self, h, Ok(()));
                // Writes queued while connecting go now; reads started meanwhile begin.
                self.flush(h);
                if self.stream(h).is_some_and(|t| t.reading) {
                    self.defer(h, move |lp| lp.read_some(h, super::Drained::WouldBlock));
                }
            }
            Err(e) => {
                // Queued now, delivered after the connect callback (in the pending phase,
                // or in the close phase if the callback closes the stream), as in libuv.
                for done in self.fail_connect(h) {
                    self.complete(h, Some(done), Err(not_sent(kind, h)));
                }
                let e = crate::error::context(format!("connecting {kind} {h}"), e);
                cb(self, h, Err(e));
            }
        }
    }

    /// Mark the stream failed, stop watching it, and take its queued requests.
    fn fail_connect(&mut self, h: Handle) -> Vec<OnDone> {
        let Some(t) = self.stream(h) else {
            return Vec::new();
        };
        t.failed = true;
        let queued = t.take_requests();
        // Narrowing to nothing: deregistering cannot leave the fd more watched than before.
        let _ = self.sync_interest(h);
        queued
    }
}

fn not_sent(kind: HandleKind, h: Handle) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        format!("write on {kind} {h} canceled: the connect failed"),
    )
}
