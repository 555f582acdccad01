//! Connecting: a non-blocking `connect(2)` returns at once with `EINPROGRESS`; the
//! socket becomes writable when the handshake ends, and `SO_ERROR` then says whether it
//! succeeded (connection refused, unreachable) or not.

use super::new_socket;
use super::stream::{closed_error, TcpState};
use crate::event_loop::{Loop, State};
use crate::handle::{Handle, HandleKind, Tcp};
use std::io;
use std::net::SocketAddr;

impl Loop {
    /// Connect to `addr` without blocking; `cb` gets the stream once connected (or the
    /// error, e.g. connection refused). Errors creating the socket are returned here.
    pub fn tcp_connect(
        &mut self,
        addr: SocketAddr,
        cb: impl FnOnce(&mut Loop, io::Result<Tcp>) + 'static,
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
        self.sync_interest(h);
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
            None => Err(closed_error("connect")),
        };
        match outcome {
            Ok(()) => {
                if let Some(Err(e)) = t.socket.as_ref().map(|s| s.set_tcp_nodelay(true)) {
                    eprintln!("looplab: TCP_NODELAY on tcp {h} failed: {e}");
                }
                self.sync_interest(h);
                cb(self, Ok(Tcp(h)));
            }
            Err(e) => {
                self.close(h, None::<fn(&mut Loop)>);
                cb(self, Err(crate::error::context("connecting", e)));
            }
        }
    }
}
