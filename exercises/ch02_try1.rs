//! # Chapter 2, Try 1 — ask for "writable" all the time, and an idle server spins
//!
//! Rung 3 (`examples/10_epoll_by_hand.rs`) with the classic bug put back: every
//! connection is registered for `EPOLLIN | EPOLLOUT` from the moment it is accepted, and
//! keeps `EPOLLOUT` whether or not there is anything to write. A connected socket is
//! writable almost always, and level-triggered epoll reports a ready fd on *every* wait,
//! so `epoll_wait` returns at once, again and again: one idle client, one busy core.
//! Rung 3 itself asks for `EPOLLOUT` only while it holds unsent bytes.
//!
//! This is a small epoll echo of its own (std sockets, and only the three epoll calls
//! raw), not a copy of rung 3: just enough to show the bug. Once a second it prints how
//! many times `epoll_wait` returned.
//!
//! **Run it.** `cargo run --release --example ch02_try1`, then in another terminal
//! `nc 127.0.0.1 7878` and leave it idle; watch `top` (or `ps -o %cpu= -p $(pgrep -f
//! ch02_try1)`), then quit `nc`.
//!
//! **Look for** `1 wakeups of epoll_wait in the last second, 0 connection(s)` while nobody
//! is connected (the wait's 1 s timeout), then hundreds of thousands per second with one
//! idle connection, and `top` showing a core at 100%; back to 1 when `nc` leaves. The
//! same idle `nc` against rung 3 costs nothing.

use std::process::ExitCode;

fn main() -> ExitCode {
    match linux::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch02_try1: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod linux {
    pub fn run() -> std::io::Result<()> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this exercise is written on epoll, which only Linux has",
        ))
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::HashMap;
    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::time::{Duration, Instant};

    const LISTENER: u64 = u64::MAX;

    pub fn run() -> io::Result<()> {
        let addr: SocketAddr = std::env::args()
            .nth(1)
            .unwrap_or_else(|| "127.0.0.1:7878".into())
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("ADDR: {e}")))?;
        let listener = TcpListener::bind(addr)
            .map_err(|e| io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
        listener.set_nonblocking(true)?;
        println!("listening on {}", listener.local_addr()?);
        let ep = Epoll::new()?;
        ep.add(listener.as_raw_fd(), libc::EPOLLIN as u32, LISTENER)?;
        let mut conns: HashMap<u64, TcpStream> = HashMap::new();
        let (mut wakeups, mut since) = (0u64, Instant::now());
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 64];
        loop {
            let n = ep.wait(&mut events, 1000)?;
            wakeups += 1;
            for ev in &events[..n] {
                let (token, bits) = (ev.u64, ev.events);
                if token == LISTENER {
                    accept_all(&listener, &ep, &mut conns)?;
                } else if bits & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
                    let gone = conns.get_mut(&token).is_none_or(|s| !echo(s));
                    if gone {
                        conns.remove(&token); // dropping it closes it, which leaves epoll
                    }
                }
                // EPOLLOUT alone: nothing to write, nothing to do. That is the spin.
            }
            if since.elapsed() >= Duration::from_secs(1) {
                println!(
                    "{wakeups} wakeups of epoll_wait in the last second, {} connection(s)",
                    conns.len()
                );
                (wakeups, since) = (0, Instant::now());
            }
        }
    }

    fn accept_all(
        l: &TcpListener,
        ep: &Epoll,
        conns: &mut HashMap<u64, TcpStream>,
    ) -> io::Result<()> {
        loop {
            match l.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(true)?;
                    let token = s.as_raw_fd() as u64;
                    // THE BUG: writable asked for at once, with nothing to write.
                    let interest = (libc::EPOLLIN | libc::EPOLLOUT) as u32;
                    ep.add(s.as_raw_fd(), interest, token)?;
                    conns.insert(token, s);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Ok(()), // out of fds and the like: the backlog keeps them
            }
        }
    }

    /// Echo what is readable; false when the client has gone. Small echoes only: what the
    /// kernel will not take at once is dropped (rung 3 keeps it; this exercise is about
    /// EPOLLOUT, not partial writes).
    fn echo(s: &mut TcpStream) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    let _ = s.write(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
    }

    /// An epoll instance: the three calls this exercise needs, each with its own `unsafe`.
    struct Epoll {
        fd: OwnedFd,
    }

    impl Epoll {
        fn new() -> io::Result<Epoll> {
            // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new fd.
            let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` was just returned by epoll_create1 and nothing else owns it.
            Ok(Epoll {
                fd: unsafe { OwnedFd::from_raw_fd(fd) },
            })
        }

        /// Level-triggered (no EPOLLET), as rung 3 and looplab's raw backend register.
        fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
            let mut ev = libc::epoll_event { events, u64: token };
            // SAFETY: `ev` is a valid epoll_event for the duration of the call; `fd` is open.
            let r =
                unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        fn wait(&self, events: &mut [libc::epoll_event], timeout_ms: i32) -> io::Result<usize> {
            let max = i32::try_from(events.len()).unwrap_or(i32::MAX);
            loop {
                // SAFETY: `events` is valid for writes of `max` entries for the call.
                let n = unsafe {
                    libc::epoll_wait(self.fd.as_raw_fd(), events.as_mut_ptr(), max, timeout_ms)
                };
                match usize::try_from(n) {
                    Ok(n) => return Ok(n),
                    Err(_) => {
                        let e = io::Error::last_os_error();
                        if e.kind() != io::ErrorKind::Interrupted {
                            return Err(e);
                        }
                    }
                }
            }
        }
    }
}
