//! # 23 — Readiness or completion: the echo on io_uring
//!
//! **What it shows.** Rung 3 (`10_epoll_by_hand`) asks the kernel *which sockets are
//! ready* and then reads them itself. This rung hands the kernel the read itself, buffer
//! and all, and is told when it is *done*. The buffer travels: `ring.recv(fd, buf, ..)`
//! moves it into the ring, the completion hands it back with the byte count, the send
//! moves it in again, its completion hands it back, and the next recv takes it once more.
//! While the kernel has it, this program cannot even name it: that is the rule a
//! completion API forces (the kernel may write into a read's buffer at any moment until
//! it completes), and Rust's ownership makes it a compile error to break. Each connection
//! has one operation in flight at a time (recv, then send, then recv), so closing one
//! never has to cancel anything; chapter 14 shows what close must do when it does.
//!
//! **Run it.** `cargo run --example 23_uring_echo`, then
//! `cargo run --example 12_echo_client -- 127.0.0.1:7878 2 2`. Arguments:
//! `[ADDR] [--exit-after N]` (stop after N connections have closed). Linux only; where
//! io_uring is refused (a seccomp profile such as Docker's) it says why and exits 1.
//!
//! **Look for** the buffer's round trip, one line per completion:
//! `conn 1: recv -> 64 bytes (the buffer is ours again)`, `conn 1: send -> 64 bytes`,
//! and at the end `conn 1: recv -> 0 (EOF): closed`. No line ever says "readable".
//!
//! **In production** see `src/servers/echo_uring.rs` (`looplab echo --backend uring`):
//! buffers the kernel picks from a shared ring instead of one parked in every idle recv,
//! multishot accept and recv, a send queue with backpressure, cancel on close, and
//! generations in user_data so a late completion is never given to the wrong connection.

#[cfg(target_os = "linux")]
mod echo {
    use looplab::sys::uring::{Completion, Ring};
    use std::collections::HashMap;
    use std::io;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    const ACCEPT: u64 = 0;
    const BUF_SIZE: usize = 4096;

    /// A connection: its socket and how much of the echo in flight was sent. Its buffer
    /// is not here: it is always either in the ring or in the hand of a completion.
    struct Conn {
        sock: TcpStream,
        sent: usize,
    }

    /// user_data: the connection's number, times two, plus one for a send.
    fn recv_id(conn: u64) -> u64 {
        conn * 2
    }

    fn send_id(conn: u64) -> u64 {
        conn * 2 + 1
    }

    pub fn run(addr: SocketAddr, exit_after: Option<usize>) -> io::Result<()> {
        let listener = TcpListener::bind(addr)?;
        // No provided-buffer ring (0 buffers): each connection lends the kernel its own.
        let mut ring = Ring::new(64, 0, 0)?;
        ring.accept(listener.as_raw_fd(), false, ACCEPT)?;
        println!("listening on {}", listener.local_addr()?);
        let (mut conns, mut next, mut closed) = (HashMap::new(), 1u64, 0);
        let mut done = Vec::new();
        while exit_after.is_none_or(|n| closed < n) {
            ring.wait(&mut done)?;
            for c in done.drain(..) {
                if c.user_data == ACCEPT {
                    if let Some(fd) = c.fd {
                        println!("conn {next}: accepted");
                        let conn = Conn {
                            sock: fd.into(),
                            sent: 0,
                        };
                        let fd = conn.sock.as_raw_fd();
                        conns.insert(next, conn);
                        ring.recv(fd, vec![0; BUF_SIZE], recv_id(next))?;
                        next += 1;
                    }
                    // One accept per connection: ask for the next one.
                    ring.accept(listener.as_raw_fd(), false, ACCEPT)?;
                } else if !on_io(&mut ring, &mut conns, c)? {
                    closed += 1;
                }
            }
        }
        Ok(())
    }

    /// A recv or send completed. False when it closed its connection.
    fn on_io(ring: &mut Ring, conns: &mut HashMap<u64, Conn>, c: Completion) -> io::Result<bool> {
        let (id, is_send) = (c.user_data / 2, c.user_data % 2 == 1);
        let (Some(conn), Some(mut buf)) = (conns.get_mut(&id), c.buf) else {
            return Ok(true);
        };
        let fd = conn.sock.as_raw_fd();
        let n = match usize::try_from(c.result) {
            Ok(n) if n > 0 => n,
            _ => {
                let why = if c.result == 0 { "0 (EOF)" } else { "an error" };
                println!(
                    "conn {id}: {} -> {why}: closed",
                    if is_send { "send" } else { "recv" }
                );
                conns.remove(&id); // nothing else is in flight for it: safe to close
                return Ok(false);
            }
        };
        if !is_send {
            println!("conn {id}: recv -> {n} bytes (the buffer is ours again)");
            buf.truncate(n);
            conn.sent = 0;
            ring.send(fd, buf, 0, send_id(id))?;
            return Ok(true);
        }
        println!("conn {id}: send -> {n} bytes");
        conn.sent += n;
        if conn.sent < buf.len() {
            ring.send(fd, buf, conn.sent, send_id(id))?; // the rest of the same buffer
        } else {
            buf.resize(BUF_SIZE, 0);
            ring.recv(fd, buf, recv_id(id))?;
        }
        Ok(true)
    }
}

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut addr, mut exit_after) = ("127.0.0.1:7878".to_string(), None);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--exit-after" => exit_after = args.next().and_then(|n| n.parse::<usize>().ok()),
            _ => addr = a,
        }
    }
    let result = match addr.parse() {
        Ok(addr) => run(addr, exit_after),
        Err(e) => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{addr}: {e}"),
        )),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("23_uring_echo: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(target_os = "linux")]
fn run(addr: std::net::SocketAddr, exit_after: Option<usize>) -> std::io::Result<()> {
    echo::run(addr, exit_after)
}

#[cfg(not(target_os = "linux"))]
fn run(_addr: std::net::SocketAddr, _exit_after: Option<usize>) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "io_uring exists only on Linux",
    ))
}
