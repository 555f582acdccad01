//! The listening socket by hand for the raw echo: socket, bind, listen, and the
//! conversions between Rust's `SocketAddr` and C's `sockaddr` that every C server writes.

use crate::sys::cvt;
use std::io;
use std::net::SocketAddr;

pub(super) fn listen(addr: SocketAddr) -> io::Result<i32> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let kind = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket takes plain integers and touches no memory of ours.
    let fd = cvt(unsafe { libc::socket(family, kind, 0) })?;
    let setup = || -> io::Result<()> {
        let one: libc::c_int = 1;
        let one_len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let one_ptr: *const libc::c_int = &one;
        // SAFETY: `one_ptr` points at a c_int of `one_len` bytes that outlives the call.
        let ret = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_REUSEADDR,
                one_ptr.cast(),
                one_len,
            )
        };
        cvt(ret)?;
        let (storage, len) = to_sockaddr(addr);
        let sa: *const libc::sockaddr_storage = &storage;
        // SAFETY: `storage` holds a sockaddr of `len` bytes for `addr`'s family.
        cvt(unsafe { libc::bind(fd, sa.cast(), len) })?;
        // SAFETY: listen takes plain integers on a socket we own.
        cvt(unsafe { libc::listen(fd, 1024) })?;
        Ok(())
    };
    setup().map_err(|e| {
        close(fd);
        crate::error::context(format!("listening on {addr}"), e)
    })?;
    Ok(fd)
}

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

pub(super) fn local_addr(fd: i32) -> io::Result<SocketAddr> {
    // SAFETY: plain data; getsockname fills it.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let sa: *mut libc::sockaddr_storage = &mut storage;
    // SAFETY: `sa` points at `len` writable bytes; getsockname writes at most that.
    cvt(unsafe { libc::getsockname(fd, sa.cast(), &mut len) })?;
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

pub(super) fn close(fd: i32) {
    // SAFETY: the caller owns `fd` and never uses it again.
    unsafe { libc::close(fd) };
}
