//! # 10 — The ladder, rung 3: epoll by hand
//!
//! **What it shows.** One thread, many connections, no runtime: the classic C event loop
//! written with raw libc calls (socket, bind, listen, epoll_create1, epoll_ctl,
//! epoll_wait, accept4, read, send), made correct: every fd non-blocking, a partial write
//! keeps the rest in a per-connection buffer, and EPOLLOUT is asked for only while that
//! buffer is non-empty (otherwise level-triggered epoll reports "writable" on every wait
//! and the loop spins). Out of fds, it sheds waiting clients with a reserve fd instead of
//! spinning on accept (chapter 3 shows it under `ulimit -n 64`).
//!
//! **Read it.** The code is in `src/servers/raw_echo.rs` (raw syscalls are `unsafe`; this
//! rung is the one place outside `src/sys` allowed them, each block with its SAFETY
//! line); this example runs it, and so does `looplab echo-raw`, which the benchmark uses
//! as its floor: one source, not a copy.
//!
//! **Run it.** `cargo run --release --example 10_epoll_by_hand`, then
//! `cargo run --release --example 12_echo_client -- 127.0.0.1:7878 1000 20`.
//! One thread holds all thousand: `ps -o nlwp= -p $(pgrep -f 10_epoll)` prints 1.
//!
//! **In production** you would also want what rung 4 has: timers, a way for other
//! threads to wake the loop, graceful shutdown, and one place for all the bookkeeping.

use std::sync::atomic::AtomicBool;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    let addr = addr.parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}"))
    })?;
    let never = AtomicBool::new(false); // runs until Ctrl-C
    looplab::servers::raw_echo::serve(addr, |bound| println!("listening on {bound}"), &never)
}
