//! TCP on the loop: listeners that accept until `EAGAIN` (`listener.rs`), and
//! non-blocking connects (`connect.rs`). A connected `Tcp` is a stream: reading, the
//! write queue with its backpressure, shutdown and close live in `src/stream.rs`, shared
//! with pipes.

mod listener;

pub use crate::stream::ReadEvent;
pub(crate) use listener::{ListenerState, BACKLOG};

use crate::event_loop::{Loop, State};
use crate::handle::{Handle, HandleKind, Tcp};
use crate::stream::StreamIo;
use socket2::{Domain, Socket, Type};
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
        let started = self.now();
        // The peer and the time taken go in front of a failed connect's error (a scope's
        // cancel already says how long, and on which handle).
        let cb = Box::new(move |lp: &mut Loop, h, r: io::Result<()>| {
            let r = r.map_err(|e| match crate::scope::cause_of(&e) {
                Some(_) => e,
                None => crate::Error::wrap_after(
                    format!("connecting to {addr}"),
                    lp.now().saturating_duration_since(started),
                    e,
                ),
            });
            cb(lp, Tcp(h), r)
        });
        self.start_connect(socket, &addr.into(), HandleKind::Tcp, cb)
            .map(Tcp)
            .map_err(|e| crate::error::context(format!("connecting to {addr}"), e))
    }

    /// The address of the peer of a connected stream.
    pub fn peer_addr(&self, conn: Tcp) -> io::Result<SocketAddr> {
        let h: Handle = conn.into();
        let socket = match self.handles.get(h).map(|s| &s.state) {
            Some(State::Stream(t)) => t.io.as_ref().and_then(StreamIo::socket),
            _ => None,
        };
        let socket = socket.ok_or_else(|| crate::error::stale("peer_addr", h))?;
        socket
            .peer_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket"))
    }
}

/// A non-blocking, close-on-exec socket for `addr`'s family.
pub(crate) fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    // socket2 sets close-on-exec on creation on every Unix.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    crate::sys::net::no_sigpipe(&socket)?;
    Ok(socket)
}

/// The peer is gone: the errors a dead connection gives, as opposed to a local fault.
pub(crate) fn is_disconnect(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::NotConnected
            | io::ErrorKind::TimedOut
    )
}
