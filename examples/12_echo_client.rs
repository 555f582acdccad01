//! # 12 — The ladder's client: N connections, M messages each, every byte checked
//!
//! **What it shows.** A client for every rung: it opens N connections at once and sends M
//! messages of 64 bytes on each, checking that every byte comes back in order. Every
//! connection has one message in flight at a time, and all N have theirs in flight
//! together: each round writes message i on every connection, then reads every echo. So
//! a server sees N clients talking at once, as the benchmark's load does. With rung 1
//! only one connection is served at a time: with N > 1 the second echo never comes, and
//! the client gives up after 5 s; rungs 2 to 4 serve them all.
//!
//! **Run it.** `cargo run --release --example 12_echo_client -- [ADDR] [N] [M] [--hold SECS]`
//! (default `127.0.0.1:7878 10 100`). Loopback only: it refuses other addresses.
//! `--hold 10` keeps the N connections open 10 s after the last echo, so you can look at
//! the server while it holds them (chapter 3: `ps -o nlwp=`, its context switches).
//!
//! **Look for** the line it prints, e.g. `3 connections x 2 messages: 6 round trips
//! in 0.6 ms (9953/s), 0 wrong bytes`; against rung 1 with N > 1 it fails after 5 s and
//! says which connection and message waited: `connection 1, message 0: no echo within
//! 5 s (is the server serving more than one client?)`.
//!
//! **In production** the benchmark's load generator (`src/bench/loadgen.rs`) does this at
//! scale on looplab's own loop, with latency histograms.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long one echo may take before the client calls the server stuck.
const PATIENCE: Duration = Duration::from_secs(5);
const SIZE: usize = 64;

struct Args {
    addr: SocketAddr,
    conns: usize,
    messages: usize,
    hold: Option<Duration>,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("12_echo_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
    let args = parse_args()?;
    let start = Instant::now();
    let mut streams = Vec::with_capacity(args.conns);
    for c in 0..args.conns {
        let s = TcpStream::connect(args.addr).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "connection {c} to {}: {e} (is a server running?)",
                    args.addr
                ),
            )
        })?;
        s.set_read_timeout(Some(PATIENCE))?;
        streams.push(s);
    }
    let mut wrong = 0usize;
    for i in 0..args.messages {
        // One message in flight on every connection at once...
        let sent: Vec<Vec<u8>> = streams
            .iter_mut()
            .enumerate()
            .map(|(c, s)| send(s, c, i))
            .collect::<io::Result<_>>()?;
        // ...then every echo, checked byte by byte.
        for (c, (s, msg)) in streams.iter_mut().zip(&sent).enumerate() {
            let mut back = [0u8; SIZE];
            s.read_exact(&mut back).map_err(|e| waited(c, i, e))?;
            wrong += back.iter().zip(msg).filter(|(a, b)| a != b).count();
        }
    }
    let took = start.elapsed();
    let total = args.conns * args.messages;
    println!(
        "{} connections x {} messages: {total} round trips in {:.1} ms ({:.0}/s), {wrong} wrong bytes",
        args.conns,
        args.messages,
        took.as_secs_f64() * 1000.0,
        total as f64 / took.as_secs_f64()
    );
    if wrong > 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the echo corrupted {wrong} bytes"),
        ));
    }
    if let Some(hold) = args.hold {
        println!(
            "holding {} connections open for {} s",
            streams.len(),
            hold.as_secs()
        );
        std::thread::sleep(hold);
    }
    Ok(())
}

/// Message `i` on connection `c`: its own text, so a shuffled echo shows as wrong bytes.
fn send(s: &mut TcpStream, c: usize, i: usize) -> io::Result<Vec<u8>> {
    let mut msg = format!("conn {c} message {i} ").into_bytes();
    msg.resize(SIZE, b'.');
    s.write_all(&msg).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("connection {c}, message {i}: sending: {e}"),
        )
    })?;
    Ok(msg)
}

/// A read that failed, said as a person would: a timeout is "no echo within 5 s".
fn waited(c: usize, i: usize, e: io::Error) -> io::Error {
    let why = match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!(
            "no echo within {} s (is the server serving more than one client?)",
            PATIENCE.as_secs()
        ),
        io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
        _ => e.to_string(),
    };
    io::Error::new(e.kind(), format!("connection {c}, message {i}: {why}"))
}

fn parse_args() -> io::Result<Args> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    let mut positional = Vec::new();
    let mut hold = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == "--hold" {
            let secs: u64 = it
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("--hold takes a number of seconds".into()))?;
            hold = Some(Duration::from_secs(secs));
        } else if a.starts_with("--") {
            return Err(bad(format!(
                "unknown option {a} (the only one is --hold SECS)"
            )));
        } else {
            positional.push(a);
        }
    }
    let addr_text = positional.first().map_or("127.0.0.1:7878", String::as_str);
    let addr: SocketAddr = addr_text
        .parse()
        .map_err(|_| bad(format!("ADDR must be ip:port, not {addr_text:?}")))?;
    if !addr.ip().is_loopback() {
        return Err(bad(format!(
            "{addr}: this client only talks to 127.0.0.1 or ::1"
        )));
    }
    let number = |i: usize, default: usize, what: &str| -> io::Result<usize> {
        positional.get(i).map_or(Ok(default), |s| {
            s.parse()
                .map_err(|_| bad(format!("{what} must be a number, not {s:?}")))
        })
    };
    Ok(Args {
        addr,
        conns: number(1, 10, "N")?,
        messages: number(2, 100, "M")?,
        hold,
    })
}
