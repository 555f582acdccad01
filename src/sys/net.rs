//! Sockets that never raise SIGPIPE.
//!
//! A send on a connection the peer has reset raises SIGPIPE, whose default action ends
//! the process: a library must not let a peer do that to the program that hosts it. The
//! systems offer two switches, each on a different set of OSes:
//!
//! | switch                          | where (as the libc crate defines them)              |
//! |---------------------------------|------------------------------------------------------|
//! | `MSG_NOSIGNAL`, a send flag     | Linux, Android, FreeBSD, DragonFly, NetBSD, OpenBSD  |
//! | `SO_NOSIGPIPE`, a socket option | Apple systems, FreeBSD, DragonFly, NetBSD            |
//!
//! looplab uses every switch the target has. Apple's headers define `MSG_NOSIGNAL` too,
//! but only recent releases know it; `SO_NOSIGPIPE` works on all of them, so Apple
//! sends with flags 0, as Rust's standard library does. With neither switch the send
//! reports EPIPE only if the host program ignores SIGPIPE, as Rust programs do by default.

use std::io;

/// The flags for every `send(2)` on a stream: `MSG_NOSIGNAL` where it is honoured.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
))]
pub(crate) const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;

/// The flags for every `send(2)` on a stream: none here (see the module doc).
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd",
    target_os = "openbsd"
)))]
pub(crate) const SEND_FLAGS: libc::c_int = 0;

/// Set `SO_NOSIGPIPE` on `socket` where the OS has it; elsewhere do nothing.
#[cfg(any(
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd"
))]
pub(crate) fn no_sigpipe(socket: &socket2::Socket) -> io::Result<()> {
    use std::os::unix::io::AsRawFd;
    let on: libc::c_int = 1;
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let value: *const libc::c_int = &on;
    // SAFETY: the fd is `socket`'s, open for the call; `value` points at a c_int of `len`
    // bytes that outlives the call, and setsockopt only reads it.
    let ret = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NOSIGPIPE,
            value.cast(),
            len,
        )
    };
    super::cvt(ret).map(drop)
}

/// Set `SO_NOSIGPIPE` on `socket` where the OS has it; elsewhere do nothing.
#[cfg(not(any(
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "dragonfly",
    target_os = "netbsd"
)))]
pub(crate) fn no_sigpipe(_socket: &socket2::Socket) -> io::Result<()> {
    Ok(())
}

/// `send(2)` on a socket known by its fd, with [`SEND_FLAGS`]: how a task's stream
/// writes without going through the loop (`task/net/stream/conn.rs`). The caller
/// holds the fd only while the loop's handle for it is open, so it names that socket.
pub(crate) fn send_on(fd: super::Fd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes during the call; any fd
    // value is memory-safe to pass (a closed one is EBADF).
    let n = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), SEND_FLAGS) };
    super::cvt(n).map(|n| n as usize)
}

/// `read(2)` on a pipe's fd known by its number: how a task's pipe stream reads without
/// going through the loop. The same rule as [`send_on`]: the caller holds the fd only
/// while the loop's handle for it is open.
pub(crate) fn read_on(fd: super::Fd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes during the call; any fd
    // value is memory-safe to pass (a closed one is EBADF).
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    super::cvt(n).map(|n| n as usize)
}

/// `recv(2)` on a socket known by its fd: [`read_on`] for sockets. Not `read(2)`, which
/// passes through the file layer (its permission and notification hooks) before it
/// reaches the socket; the loop's own reads (socket2) and tokio's use `recv` too.
pub(crate) fn recv_on(fd: super::Fd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: as in `read_on`.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    super::cvt(n).map(|n| n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::selfpipe::SelfPipe;
    use crate::sys::signal;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// One send on a socket whose peer has reset it: the send's error, and how many
    /// SIGPIPEs the registry's handler wrote into `seen` meanwhile.
    fn send_after_reset(seen: &SelfPipe, guarded: bool) -> (io::Error, usize) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer =
            socket2::Socket::from(TcpStream::connect(listener.local_addr().unwrap()).unwrap());
        let (conn, _) = listener.accept().unwrap();
        peer.set_linger(Some(Duration::ZERO)).unwrap();
        drop(peer); // closing with a zero linger sends an RST
        let mut conn = socket2::Socket::from(conn);
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Waits for the RST and takes its ECONNRESET, so the send below gets EPIPE.
        let _ = conn.read(&mut [0u8; 8]);
        if guarded {
            no_sigpipe(&conn).unwrap();
        }
        let flags = if guarded { SEND_FLAGS } else { 0 };
        let err = conn.send_with_flags(b"x", flags).unwrap_err();
        let mut signums = Vec::new();
        seen.read_into(&mut signums).unwrap();
        let sigpipes = signums
            .iter()
            .filter(|&&s| i32::from(s) == libc::SIGPIPE)
            .count();
        (err, sigpipes)
    }

    /// Rust programs ignore SIGPIPE, so the signal registry's handler stands in to see
    /// it (SIGPIPE goes to the sending thread, before send returns). The control, flags
    /// 0 on a plain socket, raises it; `SEND_FLAGS` after `no_sigpipe` raises nothing
    /// and reports EPIPE instead.
    #[test]
    fn a_send_to_a_reset_peer_is_an_error_not_a_signal() {
        let seen = SelfPipe::new().unwrap();
        let slot = signal::add_pipe(seen.write_fd()).unwrap();
        signal::watch(slot, libc::SIGPIPE).unwrap();
        let (control_err, control_sigpipes) = send_after_reset(&seen, false);
        let (err, sigpipes) = send_after_reset(&seen, true);
        signal::remove_pipe(slot);
        assert_eq!(
            control_err.kind(),
            io::ErrorKind::BrokenPipe,
            "{control_err}"
        );
        assert_eq!(control_sigpipes, 1, "the control send raised SIGPIPE");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
        assert_eq!(sigpipes, 0, "a guarded send raised SIGPIPE");
    }
}
