//! # 08 — The ladder, rung 1: a blocking echo server, one client at a time
//!
//! **What it shows.** The simplest server: `accept`, then `read`/`write` until the client
//! leaves, then the next `accept`. Every call blocks the only thread. Connect a second
//! client while the first is connected: the kernel completes its TCP handshake (it sits
//! in the listen backlog), but nobody reads its bytes until the first client leaves.
//!
//! **Run it.** `cargo run --example 08_blocking_echo` and in two other terminals
//! `nc 127.0.0.1 7878`. Type in the second: nothing comes back until you close the first.
//! Or: `cargo run --example 12_echo_client -- 127.0.0.1:7878 1 100` (one client works).
//!
//! **Look for** `serving ...; everyone else waits` and `client left; accepting the next
//! one` on the server's side; with `12_echo_client -- 127.0.0.1:7878 2 10` the client
//! gives up after 5 s with `connection 1, message 0: ... (is the server serving more than
//! one client?)`. There is no trace: this rung has no loop.
//!
//! **In production** nobody serves like this; it is the baseline that shows why the next
//! rungs exist.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("08_blocking_echo: {e}");
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
    for conn in listener.incoming() {
        let mut stream = match conn {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept failed: {e}");
                continue;
            }
        };
        match stream.peer_addr() {
            Ok(peer) => println!("serving {peer}; everyone else waits"),
            // The client may already have gone; serve (and see EOF) all the same.
            Err(e) => {
                println!("serving a client whose address is unknown ({e}); everyone else waits")
            }
        }
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break, // the client closed
                Ok(n) => {
                    if stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        println!("client left; accepting the next one");
    }
    Ok(())
}
