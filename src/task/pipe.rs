//! Pipes for tasks: [`PipeStream`], a loop `Pipe` with `read`, `write_all` and
//! `shutdown`; [`UnixListener`] and [`PipeStream::connect`] for Unix-domain sockets
//! (`pipe/unix.rs`); and [`Lines`], a pipe read line by line.
//!
//! A `PipeStream` is a `TcpStream` over another kind of fd: the futures, reading by
//! readiness, the bounded outbox, the cancellation on drop are the very same code
//! (`task/net/stream.rs`, generic over the loop's `Stream`). What differs is the loop's
//! (`src/stream/io.rs`): an OS pipe end cannot be half-closed, so `shutdown` on one
//! fails with `Unsupported`; a child's stdio pipes and Unix-domain sockets can.

mod lines;
mod unix;

pub use lines::{Lines, MAX_LINE};
pub use unix::{UnixAccept, UnixBind, UnixConnect, UnixListener};

use super::net::{Io, ReadFuture, Shutdown, WriteAll};
use super::reactor::Reactor;
use crate::handle::Pipe;
use std::rc::Rc;

/// A pipe (a child's stdio, a Unix-domain socket, an fd put on the loop), used from a
/// task. `read`, `write_all` and `shutdown` take `&mut self`: one of each at a time.
/// Dropped, it flushes what `write_all` took and closes the pipe.
pub struct PipeStream {
    io: Io<Pipe>,
}

impl PipeStream {
    /// Wrap a loop pipe, already unref'd: its task holds the loop.
    pub(crate) fn new(pipe: Pipe, reactor: Rc<Reactor>) -> PipeStream {
        PipeStream {
            io: Io::new(pipe, "PipeStream", None, reactor),
        }
    }

    /// The loop handle underneath (for `handles()` and the trace).
    pub fn handle(&self) -> Pipe {
        self.io.handle()
    }

    /// Read what has arrived into `buf`: `Ok(n)` with `n > 0`, `Ok(0)` at end of
    /// stream (or for an empty `buf`), or the pipe's error.
    pub fn read<'a>(&'a mut self, buf: &'a mut [u8]) -> ReadFuture<'a, Pipe> {
        self.io.read(buf)
    }

    /// Hand every byte of `buf` to the pipe. It returns once they are in the stream's
    /// bounded outbox; an error the kernel gives later (the reader is gone: `BrokenPipe`)
    /// comes back from the next `write_all` or `shutdown`.
    pub fn write_all<'a>(&'a mut self, buf: &'a [u8]) -> WriteAll<'a, Pipe> {
        self.io.write_all(buf)
    }

    /// Send everything written so far, then end of stream: the reader (a child reading
    /// its stdin) reads EOF. On an OS pipe end, which cannot be half-closed, it fails
    /// with `Unsupported`: drop the stream instead.
    pub fn shutdown(&mut self) -> Shutdown<'_, Pipe> {
        self.io.shutdown()
    }

    /// Read it line by line (see [`Lines`]).
    pub fn lines(self) -> Lines {
        Lines::new(self)
    }
}
