//! The echo server written the way C programmers write it: raw libc, one epoll loop,
//! no runtime at all. It is rung 3 of the learning ladder (`examples/10_epoll_by_hand.rs`
//! runs it) and the floor of the benchmark (`looplab echo-raw`): what one loop thread
//! costs when nothing stands between the program and the kernel.
//!
//! The classic loop, made correct:
//!
//! ```text
//! socket, setsockopt(SO_REUSEADDR), bind, listen      the listening socket
//! fcntl(O_NONBLOCK)                                   every fd: a call never blocks
//! open("/dev/null")                                   the spare fd (below)
//! epoll_create1, epoll_ctl(ADD, listener, EPOLLIN)
//! loop:
//!     n = epoll_wait(events)
//!     listener readable   -> accept4 until EAGAIN; ADD each with EPOLLIN
//!                            (EMFILE: close the spare, accept, close, reopen the spare)
//!     client readable     -> read until a read comes back short; write back what we can;
//!                            keep the rest in the connection's buffer and ask for
//!                            EPOLLOUT, and stop asking for EPOLLIN while over 1 MiB
//!     client writable     -> write the buffer; when empty, drop EPOLLOUT
//!     read 0 / error      -> close (closing removes the fd from epoll)
//! ```
//!
//! Level-triggered, as the classic loop is: a readable fd we leave unread is reported
//! again. So a read that comes back short (the kernel gave all it had) ends the reading:
//! going on to the read that finds EAGAIN would cost one more system call per message.
//!
//! **Out of fds.** Level-triggering has one trap. When the process holds all the fds
//! RLIMIT_NOFILE allows, `accept4` fails with EMFILE and the connection stays in the
//! backlog, so the listener is reported readable again at once: the loop spins at 100%
//! CPU retrying, and the waiting clients hang. This rung uses libuv's answer, the
//! *reserve fd*: it keeps one spare fd open, and on EMFILE closes it, accepts the waiting
//! connection into the freed number, closes that at once (the client sees its connection
//! end instead of hanging), and reopens the spare. Each waiting client costs one accept
//! and one close, then the listener is quiet. The loop server (rung 4,
//! `src/tcp/listener.rs`) shows the other answer, a backoff that leaves clients queued;
//! this one sheds them. When there is no spare to give (ENFILE: the whole system is out
//! of files, or any other accept error that leaves the connection queued), the listener
//! leaves epoll for `ACCEPT_BACKOFF` instead.

#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(epoll_os)]
mod signals;
#[cfg(epoll_os)]
mod socket;

#[cfg(epoll_os)]
pub use signals::stop_on_signals;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
#[cfg(epoll_os)]
use {
    crate::sys::cvt,
    socket::{close, listen, local_addr},
    std::collections::HashMap,
    std::sync::atomic::Ordering,
    std::time::{Duration, Instant},
};

/// Stop reading a client whose unsent echo is larger than this.
#[cfg(epoll_os)]
const HIGH_WATER: usize = 1024 * 1024;
#[cfg(epoll_os)]
const MAX_EVENTS: usize = 1024;
/// How long the listener stays out of epoll when it cannot accept and has no spare fd.
/// The loop's epoll_wait wakes every 100 ms anyway, so that is when it comes back.
#[cfg(epoll_os)]
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A client's bytes that the kernel did not take yet.
#[cfg(epoll_os)]
struct Conn {
    unsent: Vec<u8>,
    /// The EPOLL* bits registered now, to skip needless epoll_ctl calls.
    events: u32,
}

/// The listening socket, with what it needs to survive running out of fds.
#[cfg(epoll_os)]
struct Listener {
    fd: i32,
    /// Held open so that, out of fds, closing it makes room to accept and shed one
    /// waiting connection. `None` when it could not be (re)opened.
    spare: Option<i32>,
    /// Out of epoll until then: accept failed and there was no spare to shed with.
    paused_until: Option<Instant>,
}

/// Listen on `addr`, call `ready` with the bound address, and echo until `stop` is set
/// (checked every 100 ms) or an error ends it.
#[cfg(epoll_os)]
pub fn serve(
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
    stop: &AtomicBool,
) -> io::Result<()> {
    let fd = listen(addr)?;
    let mut listener = Listener {
        fd,
        spare: open_spare(),
        paused_until: None,
    };
    let result = serve_on(&mut listener, ready, stop);
    if let Some(spare) = listener.spare {
        close(spare);
    }
    close(fd);
    result
}

/// The raw epoll echo exists only where epoll does.
#[cfg(not(epoll_os))]
pub fn serve(
    _addr: SocketAddr,
    _ready: impl FnOnce(SocketAddr),
    _stop: &AtomicBool,
) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "the raw epoll echo needs Linux",
    ))
}

#[cfg(epoll_os)]
fn serve_on(l: &mut Listener, ready: impl FnOnce(SocketAddr), stop: &AtomicBool) -> io::Result<()> {
    ready(local_addr(l.fd)?);
    // SAFETY: epoll_create1 takes a flag and touches no memory of ours.
    let epfd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    let result = event_loop(epfd, l, stop);
    close(epfd);
    result
}

#[cfg(epoll_os)]
fn event_loop(epfd: i32, l: &mut Listener, stop: &AtomicBool) -> io::Result<()> {
    ctl(epfd, libc::EPOLL_CTL_ADD, l.fd, libc::EPOLLIN as u32)?;
    let mut conns: HashMap<i32, Conn> = HashMap::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        resume_if_due(epfd, l);
        // SAFETY: `events` holds MAX_EVENTS initialised entries for the kernel to fill.
        let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), MAX_EVENTS as i32, 100) };
        let n = match cvt(n) {
            Ok(n) => usize::try_from(n).unwrap_or(0).min(MAX_EVENTS),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for ev in &events[..n] {
            let fd = ev.u64 as i32;
            if fd == l.fd {
                accept_all(epfd, l, &mut conns);
            } else if let Some(conn) = conns.get_mut(&fd) {
                if !on_conn_event(epfd, fd, ev.events, conn, &mut buf) {
                    conns.remove(&fd);
                    close(fd); // close(2) also removes the fd from the epoll set
                }
            }
        }
    }
    for fd in conns.keys() {
        close(*fd);
    }
    Ok(())
}

/// Flush, echo, and re-register one client. False when the connection is finished.
#[cfg(epoll_os)]
fn on_conn_event(epfd: i32, fd: i32, bits: u32, conn: &mut Conn, buf: &mut [u8]) -> bool {
    let mut alive = true;
    if bits & libc::EPOLLOUT as u32 != 0 {
        alive = flush(fd, conn);
    }
    if alive && bits & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
        alive = echo(fd, conn, buf);
    }
    alive && update_events(epfd, fd, conn)
}

/// Accept until the backlog is empty. Out of fds, shed with the spare; with no spare,
/// or on an error that leaves the connection queued, step back (see the module doc).
#[cfg(epoll_os)]
fn accept_all(epfd: i32, l: &mut Listener, conns: &mut HashMap<i32, Conn>) {
    loop {
        let fd = match accept(l.fd) {
            Ok(fd) => fd,
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR | libc::ECONNABORTED) => continue,
                Some(libc::EAGAIN) => return,
                Some(libc::EMFILE | libc::ENFILE) if shed_one(l) => continue,
                // Queued still, and a level-triggered listener would report it at once.
                _ => return pause(epfd, l),
            },
        };
        let one: libc::c_int = 1;
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `one` is a c_int option value of `len` bytes that outlives the call.
        let _ = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                len,
            )
        };
        if ctl(epfd, libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32).is_err() {
            close(fd);
            continue;
        }
        let conn = Conn {
            unsent: Vec::new(),
            events: libc::EPOLLIN as u32,
        };
        conns.insert(fd, conn);
    }
}

#[cfg(epoll_os)]
fn accept(listener: i32) -> io::Result<i32> {
    let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: null address pointers are allowed: we do not need the peer's address.
    cvt(unsafe { libc::accept4(listener, std::ptr::null_mut(), std::ptr::null_mut(), flags) })
}

/// The reserve-fd trick: give the spare fd's number to one waiting connection and close
/// that at once. False when there was no spare, or the accept still failed.
#[cfg(epoll_os)]
fn shed_one(l: &mut Listener) -> bool {
    let Some(spare) = l.spare.take() else {
        return false;
    };
    close(spare);
    let shed = accept(l.fd).map(close).is_ok();
    l.spare = open_spare();
    shed
}

/// An fd to hold in reserve: /dev/null costs nothing and is always there.
#[cfg(epoll_os)]
fn open_spare() -> Option<i32> {
    let path = c"/dev/null";
    // SAFETY: `path` is a NUL-terminated string that outlives the call.
    cvt(unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }).ok()
}

/// Take the listener out of epoll for ACCEPT_BACKOFF, so its queued connection does
/// not spin the loop.
#[cfg(epoll_os)]
fn pause(epfd: i32, l: &mut Listener) {
    if l.paused_until.is_none() && ctl(epfd, libc::EPOLL_CTL_DEL, l.fd, 0).is_ok() {
        l.paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
    }
}

/// Put a paused listener back once its backoff is over, with a new spare if it lacks one.
#[cfg(epoll_os)]
fn resume_if_due(epfd: i32, l: &mut Listener) {
    let Some(until) = l.paused_until else { return };
    if Instant::now() < until {
        return;
    }
    if l.spare.is_none() {
        l.spare = open_spare();
    }
    if ctl(epfd, libc::EPOLL_CTL_ADD, l.fd, libc::EPOLLIN as u32).is_ok() {
        l.paused_until = None;
    }
}

/// Read until a short read or EAGAIN (or until the client owes us too much), echoing as
/// we go. False when the connection is finished.
#[cfg(epoll_os)]
fn echo(fd: i32, conn: &mut Conn, buf: &mut [u8]) -> bool {
    while conn.unsent.len() <= HIGH_WATER {
        // SAFETY: `buf` is valid for writes of buf.len() bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        let n = match cvt(n) {
            Ok(0) => return false, // EOF: simple rung, no half-close
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return e.kind() == io::ErrorKind::WouldBlock,
        };
        let data = &buf[..n];
        if conn.unsent.is_empty() {
            match send(fd, data) {
                Some(sent) => conn.unsent.extend_from_slice(&data[sent..]),
                None => return false,
            }
        } else {
            conn.unsent.extend_from_slice(data);
        }
        if n < buf.len() {
            break; // drained: epoll reports the fd again when more arrives
        }
    }
    true
}

/// Write the unsent buffer. False when the peer is gone.
#[cfg(epoll_os)]
fn flush(fd: i32, conn: &mut Conn) -> bool {
    match send(fd, &conn.unsent) {
        Some(sent) => {
            conn.unsent.drain(..sent);
            true
        }
        None => false,
    }
}

/// Send as much as the kernel takes; `None` on a real error (EPIPE, ECONNRESET).
#[cfg(epoll_os)]
fn send(fd: i32, mut data: &[u8]) -> Option<usize> {
    let mut sent = 0;
    while !data.is_empty() {
        // SAFETY: `data` is valid for reads of data.len() bytes. MSG_NOSIGNAL: a dead
        // peer gives EPIPE, not a SIGPIPE that kills the process.
        let n = unsafe { libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
        let n = match cvt(n) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return None,
        };
        sent += n;
        data = &data[n..];
    }
    Some(sent)
}

/// EPOLLOUT only while something is unsent; EPOLLIN only while under the high-water mark.
#[cfg(epoll_os)]
fn update_events(epfd: i32, fd: i32, conn: &mut Conn) -> bool {
    let mut want = 0u32;
    if conn.unsent.len() <= HIGH_WATER {
        want |= libc::EPOLLIN as u32;
    }
    if !conn.unsent.is_empty() {
        want |= libc::EPOLLOUT as u32;
    }
    if want != conn.events {
        if ctl(epfd, libc::EPOLL_CTL_MOD, fd, want).is_err() {
            return false;
        }
        conn.events = want;
    }
    true
}

#[cfg(epoll_os)]
fn ctl(epfd: i32, op: i32, fd: i32, events: u32) -> io::Result<()> {
    let mut ev = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: `ev` is a valid epoll_event for the duration of the call.
    cvt(unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) }).map(drop)
}
