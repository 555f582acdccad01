//! Pipes on the loop: byte streams that are not TCP. A [`Pipe`] is read, written, shut
//! down and closed with the very methods a `Tcp` is (`read_start`, `write`, `on_drain`,
//! `shutdown`, `close`: `src/stream.rs`); this file only makes them.
//!
//! Two kinds of fd stand behind a `Pipe`, as behind libuv's `uv_pipe_t`:
//! - **an OS pipe end** (`pipe(2)`): one-way, and not a socket, so it cannot be
//!   half-closed (`shutdown` reports `Unsupported`; closing the write end is how its
//!   reader gets EOF) and a write to it is guarded against SIGPIPE by hand
//!   (`sys/pipe.rs`);
//! - **a Unix-domain stream socket**: two-way, with `shutdown`. A child's stdio pipes are
//!   these (`socketpair(2)`, as libuv and Node make them), and so is [`Loop::pipe_pair`].
//!
//! Both are registered with the poller like any socket: a pipe is as pollable as TCP.
//! A Unix-domain socket path is connected to with [`Loop::unix_connect`] and listened
//! on with [`Loop::unix_listen`] (`pipe/listen.rs`).

mod listen;

use crate::event_loop::Loop;
use crate::handle::{HandleKind, Pipe};
use crate::stream::StreamIo;
use socket2::{SockAddr, Socket};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileTypeExt as _;
use std::os::unix::io::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

impl Loop {
    /// A one-way OS pipe, both ends on this loop: `(read end, write end)`. What is written
    /// to the second is read from the first; closing the write end gives the reader EOF.
    pub fn pipe(&mut self) -> io::Result<(Pipe, Pipe)> {
        let (read, write) = crate::sys::selfpipe::nonblocking_pipe()
            .map_err(|e| crate::error::context("creating a pipe", e))?;
        let r = self.insert_stream(StreamIo::Fd(File::from(read)), HandleKind::Pipe);
        let w = self.insert_stream(StreamIo::Fd(File::from(write)), HandleKind::Pipe);
        Ok((Pipe(r), Pipe(w)))
    }

    /// Two connected Unix-domain stream sockets, both on this loop: each end reads what
    /// the other writes, and `shutdown` on one gives the other EOF.
    pub fn pipe_pair(&mut self) -> io::Result<(Pipe, Pipe)> {
        let (a, b) =
            socket_pair().map_err(|e| crate::error::context("creating a socketpair", e))?;
        let a = self.insert_stream(StreamIo::Socket(a), HandleKind::Pipe);
        let b = self.insert_stream(StreamIo::Socket(b), HandleKind::Pipe);
        Ok((Pipe(a), Pipe(b)))
    }

    /// Put an fd you own on the loop as a `Pipe` (libuv's `uv_pipe_open`): an OS pipe end,
    /// a Unix-domain socket, anything stream-like (a `UnixStream`, a `ChildStdout`, a
    /// `File` of a FIFO). It is made non-blocking; the loop closes it at `close`.
    /// `O_NONBLOCK` belongs to the open file, not the fd: every copy of it (a terminal
    /// your process shares with its parent, for one) turns non-blocking too.
    pub fn pipe_open(&mut self, fd: impl Into<OwnedFd>) -> io::Result<Pipe> {
        let fd: OwnedFd = fd.into();
        let raw = fd.as_raw_fd();
        let ctx = |e| crate::error::context(format!("opening fd {raw} as a pipe"), e);
        let file = File::from(fd);
        let io = if file.metadata().map_err(ctx)?.file_type().is_socket() {
            let socket = Socket::from(OwnedFd::from(file));
            socket.set_nonblocking(true).map_err(ctx)?;
            crate::sys::net::no_sigpipe(&socket).map_err(ctx)?;
            StreamIo::Socket(socket)
        } else {
            crate::sys::pipe::set_nonblocking(raw).map_err(ctx)?;
            StreamIo::Fd(file)
        };
        Ok(Pipe(self.insert_stream(io, HandleKind::Pipe)))
    }

    /// Connect to the Unix-domain socket at `path` without blocking (libuv's
    /// `uv_pipe_connect`); `cb(lp, pipe, result)` hears how it went, as `tcp_connect`'s
    /// does. A listener whose backlog is full refuses at once (an error here).
    pub fn unix_connect(
        &mut self,
        path: impl AsRef<Path>,
        cb: impl FnOnce(&mut Loop, Pipe, io::Result<()>) + 'static,
    ) -> io::Result<Pipe> {
        let path = path.as_ref();
        let ctx = |e| crate::error::context(format!("connecting to {}", path.display()), e);
        let to = SockAddr::unix(path).map_err(ctx)?;
        let socket =
            Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).map_err(ctx)?;
        socket.set_nonblocking(true).map_err(ctx)?;
        crate::sys::net::no_sigpipe(&socket).map_err(ctx)?;
        let cb = Box::new(move |lp: &mut Loop, h, r| cb(lp, Pipe(h), r));
        self.start_connect(socket, &to, HandleKind::Pipe, cb)
            .map(Pipe)
            .map_err(ctx)
    }
}

/// A connected pair of non-blocking, close-on-exec Unix-domain stream sockets, with
/// SIGPIPE off where that is a socket option.
pub(crate) fn socket_pair() -> io::Result<(Socket, Socket)> {
    // std sets close-on-exec on both ends.
    let (a, b) = UnixStream::pair()?;
    let (a, b) = (
        Socket::from(OwnedFd::from(a)),
        Socket::from(OwnedFd::from(b)),
    );
    for s in [&a, &b] {
        s.set_nonblocking(true)?;
        crate::sys::net::no_sigpipe(s)?;
    }
    Ok((a, b))
}
