//! # 11 — The ladder, rung 4: the echo server on looplab's loop
//!
//! **What it shows.** The same one-thread design as rung 3, written on the loop: you give
//! callbacks, the loop owns the epoll set, the buffers and the bookkeeping. The read
//! callback gets a slice of the loop's one shared read buffer (no allocation per read),
//! `write` tries the kernel at once and queues only what it refuses, and the stream asks
//! for writability only while its queue is non-empty, as rung 3 does by hand.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example 11_echo_on_the_loop`, then
//! `cargo run --example 12_echo_client -- 127.0.0.1:7878 3 2`.
//!
//! **Look for** in the trace: `events: fd 7 r -> listener #0` (accepts),
//! `fd 9 r -> tcp #2` (a client's message), `poll forever (infinite: no timer)` while
//! idle, and `closed #2` when a client leaves.
//!
//! **In production** see `src/servers/echo.rs` (`looplab echo`): the same plus
//! backpressure for clients that do not read, half-close, a connection limit and
//! graceful shutdown on SIGINT/SIGTERM.

use looplab::{CloseDone, Loop, Read, RunMode, WriteDone};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    let addr = addr.parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}"))
    })?;
    let mut lp = Loop::new()?;
    let listener = lp.tcp_listen(addr, |lp, conn| {
        let started = lp.read_start(conn, |lp, conn, ev| match ev {
            Read::Data(bytes) => {
                if lp.write(conn, bytes, None::<WriteDone>).is_err() {
                    lp.close(conn, None::<CloseDone>);
                }
            }
            Read::Eof | Read::Error(_) => {
                lp.close(conn, None::<CloseDone>);
            }
        });
        if let Err(e) = started {
            eprintln!("cannot read from a new connection: {e}");
        }
    })?;
    println!("listening on {}", lp.local_addr(listener)?);
    lp.run(RunMode::Default)?;
    Ok(())
}
