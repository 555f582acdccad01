//! Connecting: a non-blocking `connect(2)` returns at once with `EINPROGRESS`; the
//! socket becomes writable when the handshake ends, and `SO_ERROR` then says whether it
//! succeeded (connection refused, unreachable) or not.
//!
//! As in libuv: writes made meanwhile wait in the queue; the connect callback hears the
//! real outcome first, then the queued writes are sent (or failed, after it); a failed
//! stream stays open until its owner calls `close`.

use super::new_socket;
use super::stream::{OnDone, TcpState};
use crate::event_loop::{Loop, State};
use crate::handle::{Handle, HandleKind, Tcp};
use std::io;
use std::net::SocketAddr;

impl Loop {
    /// Connect to `addr` without blocking; `cb(lp, conn, result)` hears whether it
    /// connected (or the error, e.g. connection refused; then close `conn`). Errors
    /// creating the socket are returned here. The connect is a request: it holds the loop
    /// until its callback has run, even if `conn` is unref'd.
    pub fn tcp_connect(
        &mut self,
        addr: SocketAddr,
        cb: impl FnOnce(&mut Loop, Tcp, io::Result<()>) + 'static,
    ) -> io::Result<Tcp> {
        let socket = new_socket(addr)
            .map_err(|e| crate::error::context(format!("creating a socket for {addr}"), e))?;
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e)
                if e.raw_os_error() == Some(libc::EINPROGRESS)
                    || e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(crate::error::context(format!("connecting to {addr}"), e)),
        }
        let mut state = TcpState::new(socket);
        state.connecting = Some(Box::new(cb));
        let h = self
            .handles
            .insert(HandleKind::Tcp, State::Tcp(Box::new(state)), false, true);
        if let Err(e) = self.sync_interest(h) {
            self.handles.remove(h);
            return Err(crate::error::context(format!("connecting to {addr}"), e));
        }
        Ok(Tcp(h))
    }

    /// The connecting socket became writable: connected, or failed (SO_ERROR says which).
    pub(super) fn finish_connect(&mut self, h: Handle) {
        let Some(t) = self.stream(h) else { return };
        let Some(cb) = t.connecting.take() else {
            return;
        };
        let outcome = match t.socket.as_ref().map(|s| (s.take_error(), s.peer_addr())) {
            Some((Ok(None), Ok(_))) => Ok(()),
            Some((Ok(Some(e)) | Err(e), _)) | Some((Ok(None), Err(e))) => Err(e),
            None => Err(super::stream::canceled("connect", h)),
        };
        match outcome {
            Ok(()) => {
                if let Some(Err(e)) = t.socket.as_ref().map(|s| s.set_tcp_nodelay(true)) {
                    self.tracer
                        .note(format!("TCP_NODELAY on tcp {h} failed: {e}"));
                }
                cb(self, Tcp(h), Ok(()));
                // Writes queued while connecting go now; reads started meanwhile begin.
                self.flush(h);
                if self.stream(h).is_some_and(|t| t.reading) {
                    self.defer(move |lp| lp.read_some(h));
                }
            }
            Err(e) => {
                // Queued now, delivered after the connect callback (in the pending phase,
                // or in the close phase if the callback closes the stream), as in libuv.
                for done in self.fail_connect(h) {
                    self.complete(h, Some(done), Err(not_sent(h)));
                }
                let e = crate::error::context(format!("connecting tcp {h}"), e);
                cb(self, Tcp(h), Err(e));
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

fn not_sent(h: Handle) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        format!("write on tcp {h} canceled: the connect failed"),
    )
}
