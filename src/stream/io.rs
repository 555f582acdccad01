//! What a stream reads from and writes to: a socket (TCP, or a Unix-domain socket such as
//! a child's stdio) or a plain fd (one end of an OS pipe).
//!
//! The two differ in exactly three places, and only here: a socket is written with
//! `send(MSG_NOSIGNAL)` (`sys/net.rs`), a pipe with `write(2)` while SIGPIPE is held off
//! (`sys/pipe.rs`: pipes have no such flag); a socket can be half-closed with
//! `shutdown(SHUT_WR)`, a pipe cannot (closing it is the only way to send EOF); and only a
//! socket has addresses.

use crate::sys::Fd;
use socket2::Socket;
use std::fs::File;
use std::io::{self, Read as _};
use std::os::unix::io::AsRawFd;

pub(crate) enum StreamIo {
    /// A connected stream socket: TCP, or a Unix-domain socket.
    Socket(Socket),
    /// One end of an OS pipe (or any other non-socket fd), held as a `File` because that
    /// is std's owner of a plain fd with `read(2)`.
    Fd(File),
}

impl StreamIo {
    pub fn fd(&self) -> Fd {
        match self {
            StreamIo::Socket(s) => s.as_raw_fd(),
            StreamIo::Fd(f) => f.as_raw_fd(),
        }
    }

    pub fn socket(&self) -> Option<&Socket> {
        match self {
            StreamIo::Socket(s) => Some(s),
            StreamIo::Fd(_) => None,
        }
    }

    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            StreamIo::Socket(s) => (&mut &*s).read(buf),
            StreamIo::Fd(f) => (&mut &*f).read(buf),
        }
    }

    /// One write that never raises SIGPIPE: a reader that is gone is `BrokenPipe`.
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            StreamIo::Socket(s) => s.send_with_flags(buf, crate::sys::net::SEND_FLAGS),
            StreamIo::Fd(f) => crate::sys::pipe::write_without_sigpipe(f.as_raw_fd(), buf),
        }
    }

    /// Send EOF to the peer and keep reading: a socket's `shutdown(SHUT_WR)`.
    pub fn shutdown_write(&self) -> io::Result<()> {
        match self {
            StreamIo::Socket(s) => s.shutdown(std::net::Shutdown::Write),
            StreamIo::Fd(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "a pipe cannot be half-closed (it is not a socket): close the handle to \
                 send EOF",
            )),
        }
    }
}

/// A stream's fd as lent to the task layer, so a task's `write_all` can give the kernel
/// its bytes itself instead of asking the loop to. The loop takes it back before it
/// closes the fd (`Loop::lend_fd`), so a lent fd always names this stream's file.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LentFd {
    fd: Fd,
    socket: bool,
}

impl LentFd {
    /// One read: `Ok(0)` is the end of the stream. A socket with `recv`, as the loop's
    /// own reads (`StreamIo::read`, through socket2).
    pub fn read(self, buf: &mut [u8]) -> io::Result<usize> {
        if self.socket {
            crate::sys::net::recv_on(self.fd, buf)
        } else {
            crate::sys::net::read_on(self.fd, buf)
        }
    }

    /// One write that never raises SIGPIPE, as [`StreamIo::write`].
    pub fn write(self, buf: &[u8]) -> io::Result<usize> {
        if self.socket {
            crate::sys::net::send_on(self.fd, buf)
        } else {
            crate::sys::pipe::write_without_sigpipe(self.fd, buf)
        }
    }
}

/// Write as much of `bytes` as the kernel takes now, with `write` (one system call a
/// try); `WouldBlock` ends it early. The loop's `write` and a task's `write_all` with a
/// lent fd both give the kernel their bytes this way. Always inlined: see `read_now`.
#[inline(always)]
pub(crate) fn write_what_fits(
    bytes: &[u8],
    mut write: impl FnMut(&[u8]) -> io::Result<usize>,
) -> io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match write(&bytes[written..]) {
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

impl StreamIo {
    pub fn lend(&self) -> LentFd {
        LentFd {
            fd: self.fd(),
            socket: matches!(self, StreamIo::Socket(_)),
        }
    }
}
