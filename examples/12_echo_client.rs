//! # 12 — The ladder's client: N connections, M messages each, every byte checked
//!
//! **What it shows.** A client for every rung: it opens N connections at once, and on each
//! sends M messages of 64 bytes, waiting for each echo before the next, and checks that
//! every byte comes back in order. With rung 1 only one connection is served at a time,
//! so with N > 1 it waits (and gives up after 5 s); rungs 2 to 4 serve them all.
//!
//! **Run it.** `cargo run --example 12_echo_client -- [ADDR] [N] [M]`
//! (default `127.0.0.1:7878 10 100`). Loopback only: it refuses other addresses.
//!
//! **Look for** the one line it prints, e.g. `3 connections x 2 messages: 6 round trips
//! in 602µs (9953/s), 0 wrong bytes`; against rung 1 with N > 1 it fails after 5 s and says
//! which connection and message waited.
//!
//! **In production** the benchmark's load generator (`src/bench/loadgen.rs`) does this at
//! scale on looplab's own loop, with latency histograms.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_string());
    let addr: SocketAddr = args
        .first()
        .map_or("127.0.0.1:7878", String::as_str)
        .parse()
        .map_err(|_| bad("ADDR must be ip:port"))?;
    if !addr.ip().is_loopback() {
        return Err(bad("this client only talks to 127.0.0.1 or ::1"));
    }
    let conns: usize = args
        .get(1)
        .map_or(Ok(10), |s| s.parse())
        .map_err(|_| bad("N must be a number"))?;
    let messages: usize = args
        .get(2)
        .map_or(Ok(100), |s| s.parse())
        .map_err(|_| bad("M must be a number"))?;

    let start = Instant::now();
    let mut streams = Vec::with_capacity(conns);
    for _ in 0..conns {
        let s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        streams.push(s);
    }
    let mut bad_bytes = 0usize;
    for i in 0..messages {
        for (c, s) in streams.iter_mut().enumerate() {
            let mut msg = format!("conn {c} message {i} ").into_bytes();
            msg.resize(64, b'.');
            s.write_all(&msg)?;
            let mut back = [0u8; 64];
            s.read_exact(&mut back).map_err(|e| std::io::Error::new(e.kind(), format!("connection {c}, message {i}: {e} (is the server serving more than one client?)")))?;
            bad_bytes += back.iter().zip(&msg).filter(|(a, b)| a != b).count();
        }
    }
    let took = start.elapsed();
    let total = conns * messages;
    println!(
        "{conns} connections x {messages} messages: {total} round trips in {took:?} ({:.0}/s), {bad_bytes} wrong bytes",
        total as f64 / took.as_secs_f64()
    );
    if bad_bytes > 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "echo corrupted bytes",
        ));
    }
    Ok(())
}
