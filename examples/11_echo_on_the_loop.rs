//! # 11 — The ladder, rung 4: the echo server on looplab's loop
//!
//! **What it shows.** The same one-thread design as rung 3, written on the loop: you give
//! callbacks, the loop owns the epoll set, the buffers and the bookkeeping. Every callback
//! gets the loop, its own handle, then what happened: the listener's gets the new
//! connection (or the accept error), the read callback gets a `ReadEvent` with a slice of
//! the loop's one shared read buffer (no allocation per read). `write` tries the kernel at
//! once and queues only what it refuses, and the stream asks for writability only while
//! its queue is non-empty, as rung 3 does by hand.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example 11_echo_on_the_loop`, then
//! `cargo run --example 12_echo_client -- 127.0.0.1:7878 3 2`.
//!
//! **Look for** in the trace: `sleeping until an event (infinite: no timer)` while idle,
//! `events: fd 6 r -> listener #0.1` (a connection to accept), `fd 7 r -> tcp #1.2` (a
//! client's message), and `fd 7 rh -> tcp #1.2` then `done | closed #1.2` when a client
//! leaves (`h`: hangup; handles are `#slot.generation`; the fd numbers depend on what
//! else the process has open).
//!
//! **In production** see `src/servers/echo.rs` (`looplab echo`): the same plus
//! backpressure for clients that do not read, half-close, an idle timeout, a connection
//! limit and graceful shutdown on SIGINT/SIGTERM.

use looplab::{Loop, ReadEvent, RunMode};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("11_echo_on_the_loop: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    let addr = addr.parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: {e}"))
    })?;
    let mut lp = Loop::new()?;
    let listener = lp.tcp_listen(addr, |lp, _listener, accepted| {
        let conn = match accepted {
            Ok(conn) => conn,
            // Out of fds, for one: the listener backs off and tries again by itself.
            Err(e) => return eprintln!("accept failed: {e}"),
        };
        let started = lp.read_start(conn, |lp, conn, ev| match ev {
            ReadEvent::Data(bytes) => {
                if lp.write(conn, bytes).is_err() {
                    lp.close(conn); // the peer is gone
                }
            }
            ReadEvent::Eof | ReadEvent::Error(_) => {
                lp.close(conn);
            }
        });
        if let Err(e) = started {
            eprintln!("cannot read from a new connection: {e}");
            lp.close(conn);
        }
    })?;
    println!("listening on {}", lp.local_addr(listener)?);
    lp.run(RunMode::Default)?;
    Ok(())
}
