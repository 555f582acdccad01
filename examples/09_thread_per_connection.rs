//! # 09 — The ladder, rung 2: one thread per connection
//!
//! **What it shows.** The fix for rung 1 that most people reach for first: give each
//! connection its own thread, so a blocked `read` only blocks that connection. It is
//! simple and fast for a few hundred clients. Each thread costs a stack, a kernel task and
//! context switches; at ten thousand connections that cost is the subject of rung 4 and
//! of `looplab bench`.
//!
//! **Run it.** `cargo run --example 09_thread_per_connection`, then
//! `cargo run --example 12_echo_client -- 127.0.0.1:7878 100 50` (100 clients at once).
//!
//! **Look for** the thread count while clients are on:
//! `ps -o nlwp= -p $(pgrep -f 09_thread)` says 101 with 100 clients (one per client, plus
//! the accepting thread), and the client's `0 wrong bytes`.
//!
//! **In production** see `src/servers/echo_threads.rs`: the same idea with a small explicit
//! stack, a connection limit and a clear error when no thread can be started.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;

fn serve(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 || stream.write_all(&buf[..n]).is_err() {
            return; // EOF or a dead peer: this thread ends, the others go on
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("09_thread_per_connection: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    let listener = TcpListener::bind(&addr)
        .map_err(|e| std::io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
    println!("listening on {}", listener.local_addr()?);
    for stream in listener.incoming().flatten() {
        // A thread per connection; if the OS refuses one, say so and drop the client.
        if let Err(e) = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || serve(stream))
        {
            eprintln!("cannot start a thread: {e}");
        }
    }
    Ok(())
}
