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
//! epoll_create1, epoll_ctl(ADD, listener, EPOLLIN)
//! loop:
//!     n = epoll_wait(events)
//!     listener readable   -> accept4 until EAGAIN; ADD each with EPOLLIN
//!     client readable     -> read until EAGAIN; write back what we can;
//!                            keep the rest in the connection's buffer and ask for
//!                            EPOLLOUT, and stop asking for EPOLLIN while over 1 MiB
//!     client writable     -> write the buffer; when empty, drop EPOLLOUT
//!     read 0 / error      -> close (closing removes the fd from epoll)
//! ```
//!
//! Level-triggered, as the classic loop is: a readable fd we leave unread is reported
//! again, so reading until EAGAIN is an optimisation here, not a requirement.

use super::syscall;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

/// Stop reading a client whose unsent echo is larger than this.
const HIGH_WATER: usize = 1024 * 1024;
const MAX_EVENTS: usize = 1024;

/// A client's bytes that the kernel did not take yet.
struct Conn {
    unsent: Vec<u8>,
    /// The EPOLL* bits registered now, to skip needless epoll_ctl calls.
    events: u32,
}

/// Listen on `addr`, call `ready` with the bound address, and echo until `stop` is set
/// (checked every 100 ms) or an error ends it.
#[cfg(epoll_os)]
pub fn serve(
    addr: SocketAddr,
    ready: impl FnOnce(SocketAddr),
    stop: &AtomicBool,
) -> io::Result<()> {
    let listener = listen(addr)?;
    let result = serve_on(listener, ready, stop);
    close(listener);
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
fn serve_on(listener: i32, ready: impl FnOnce(SocketAddr), stop: &AtomicBool) -> io::Result<()> {
    ready(local_addr(listener)?);
    let epfd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
    let result = event_loop(epfd, listener, stop);
    close(epfd);
    result
}

#[cfg(epoll_os)]
fn event_loop(epfd: i32, listener: i32, stop: &AtomicBool) -> io::Result<()> {
    ctl(epfd, libc::EPOLL_CTL_ADD, listener, libc::EPOLLIN as u32)?;
    let mut conns: HashMap<i32, Conn> = HashMap::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: `events` holds MAX_EVENTS initialised entries for the kernel to fill.
        let n = match syscall!(epoll_wait(
            epfd,
            events.as_mut_ptr(),
            MAX_EVENTS as i32,
            100
        )) {
            Ok(n) => n as usize,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for ev in &events[..n] {
            let fd = ev.u64 as i32;
            let bits = ev.events;
            if fd == listener {
                accept_all(epfd, listener, &mut conns);
                continue;
            }
            let Some(conn) = conns.get_mut(&fd) else {
                continue;
            };
            let mut alive = true;
            if bits & libc::EPOLLOUT as u32 != 0 {
                alive = flush(fd, conn);
            }
            if alive && bits & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
                alive = echo(fd, conn, &mut buf);
            }
            if alive {
                alive = update_events(epfd, fd, conn);
            }
            if !alive {
                conns.remove(&fd);
                close(fd); // close(2) also removes the fd from the epoll set
            }
        }
    }
    for fd in conns.keys() {
        close(*fd);
    }
    Ok(())
}

#[cfg(epoll_os)]
fn accept_all(epfd: i32, listener: i32, conns: &mut HashMap<i32, Conn>) {
    loop {
        // SAFETY: null address pointers are allowed: we do not need the peer's address.
        let fd = unsafe {
            libc::accept4(
                listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => continue,
                io::ErrorKind::WouldBlock => return,
                // EMFILE and friends: the backlog keeps them; try on the next wakeup.
                _ => return,
            }
        }
        let one: libc::c_int = 1;
        // SAFETY: `one` is a valid c_int option value of the given size.
        let _ = syscall!(setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t
        ));
        if ctl(epfd, libc::EPOLL_CTL_ADD, fd, libc::EPOLLIN as u32).is_err() {
            close(fd);
            continue;
        }
        conns.insert(
            fd,
            Conn {
                unsent: Vec::new(),
                events: libc::EPOLLIN as u32,
            },
        );
    }
}

/// Read until EAGAIN (or until the client owes us too much), echoing as we go.
/// False when the connection is finished.
#[cfg(epoll_os)]
fn echo(fd: i32, conn: &mut Conn, buf: &mut [u8]) -> bool {
    while conn.unsent.len() <= HIGH_WATER {
        // SAFETY: `buf` is valid for writes of buf.len() bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            return false; // EOF: simple rung, no half-close
        }
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => true,
                io::ErrorKind::Interrupted => continue,
                _ => false,
            };
        }
        let data = &buf[..n as usize];
        if conn.unsent.is_empty() {
            match send(fd, data) {
                Some(sent) => conn.unsent.extend_from_slice(&data[sent..]),
                None => return false,
            }
        } else {
            conn.unsent.extend_from_slice(data);
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
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => break,
                _ => return None,
            }
        }
        sent += n as usize;
        data = &data[n as usize..];
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
    syscall!(epoll_ctl(epfd, op, fd, &mut ev)).map(drop)
}

#[cfg(epoll_os)]
fn listen(addr: SocketAddr) -> io::Result<i32> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let fd = syscall!(socket(
        family,
        libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        0
    ))?;
    let setup = || -> io::Result<()> {
        let one: libc::c_int = 1;
        // SAFETY: `one` is a valid c_int option value of the given size.
        syscall!(setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t
        ))?;
        let (storage, len) = to_sockaddr(addr);
        // SAFETY: `storage` holds a sockaddr of `len` bytes for `addr`'s family.
        syscall!(bind(
            fd,
            (&storage as *const libc::sockaddr_storage).cast(),
            len
        ))?;
        syscall!(listen(fd, 1024))?;
        Ok(())
    };
    setup().map_err(|e| {
        close(fd);
        crate::error::context(format!("listening on {addr}"), e)
    })?;
    Ok(fd)
}

#[cfg(epoll_os)]
fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(epoll_os)]
fn local_addr(fd: i32) -> io::Result<SocketAddr> {
    // SAFETY: plain data; getsockname fills it.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` is valid for `len` bytes.
    syscall!(getsockname(
        fd,
        (&mut storage as *mut libc::sockaddr_storage).cast(),
        &mut len
    ))?;
    match storage.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says the kernel wrote a sockaddr_in.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read((&storage as *const libc::sockaddr_storage).cast()) };
            let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Ok(SocketAddr::from((ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the kernel wrote a sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read((&storage as *const libc::sockaddr_storage).cast()) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Ok(SocketAddr::from((ip, u16::from_be(sin6.sin6_port))))
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected address family {other}"),
        )),
    }
}

fn close(fd: i32) {
    // SAFETY: the caller owns `fd` and never uses it again.
    unsafe { libc::close(fd) };
}
