//! TCP on the loop: listeners that accept until `EAGAIN`, streams with a read callback,
//! a write queue with backpressure, shutdown and close.
//!
//! The rules that make a non-blocking stream correct under level- *and* edge-triggered
//! polling (see `listener.rs` and `stream.rs` for each in place):
//! - read until `WouldBlock`, or until a per-event budget, and then remember that the
//!   stream may still be readable (a deferred re-read), because an edge-triggered poller
//!   will not say so again;
//! - `write` tries the kernel at once; only what it refuses is queued, and only while the
//!   queue is non-empty is the stream registered for writability (a level-triggered
//!   poller would otherwise report "writable" every tick: a busy loop);
//! - one read buffer per loop, lent to the callback: no allocation per read;
//! - `SIGPIPE` never fires: `MSG_NOSIGNAL` and/or `SO_NOSIGPIPE`, per OS (`sys/net.rs`);
//! - a stream is *active* (holds the loop, if ref'd) while reading, writing, connecting or
//!   shutting down, as a libuv stream is; its requests (connect, queued writes, shutdown)
//!   hold the loop even when it is unref'd;
//! - a stream is closed only by `close` (a failed connect leaves it open and failed, as in
//!   libuv); what `close` cuts short is called back with an error before the close callback.

mod connect;
mod listener;
mod stream;

pub(crate) use listener::ListenerState;
pub(crate) use stream::TcpState;

use socket2::{Domain, Socket, Type};
use std::io;
use std::net::SocketAddr;

/// What a read callback is told.
#[derive(Debug)]
pub enum ReadEvent<'a> {
    /// Bytes from the peer. The slice is the loop's buffer, valid during the callback.
    Data(&'a [u8]),
    /// The peer closed its sending side; reading has stopped. Writing may go on.
    Eof,
    /// The connection failed (reset, timed out); reading has stopped.
    Error(io::Error),
}

/// A non-blocking, close-on-exec socket for `addr`'s family.
pub(crate) fn new_socket(addr: SocketAddr) -> io::Result<Socket> {
    // socket2 sets close-on-exec on creation on every Unix.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    crate::sys::net::no_sigpipe(&socket)?;
    Ok(socket)
}

/// send(2) that never raises SIGPIPE.
pub(crate) fn send(socket: &Socket, buf: &[u8]) -> io::Result<usize> {
    socket.send_with_flags(buf, crate::sys::net::SEND_FLAGS)
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
