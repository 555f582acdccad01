//! # 18 — One deadline over a chain of three calls: each owed callback once, with the cause
//!
//! **What it shows.** A callback chain, the shape Go's `context` was made for: resolve
//! `localhost` on the pool, connect, then send 32 MiB to a server that never reads (a
//! listener nobody accepts on: the kernel completes the handshake and then the socket
//! buffers fill). All three run under one [`Scope`](looplab::Scope) with a 300 ms
//! deadline, which costs one timer on the wheel. The first two calls finish in time; the
//! send cannot. When the deadline passes, the scope closes what it holds, and every
//! callback still owed (the write's, the shutdown's) is called exactly once, with an
//! error of kind `TimedOut` that says what it was, after how long, and why, before the
//! stream's close callback. Then nothing is left on the loop.
//!
//! **Run it.** `cargo run --example 18_deadlines` (or `-- 150` for another deadline in
//! ms, `-- 300 10` to send 10 bytes instead of 32 MiB), and `LOOPLAB_TRACE=1 cargo run --example 18_deadlines` for the trace.
//!
//! **What it prints** (times vary):
//!
//! ```text
//! one deadline of 300 ms over: lookup -> connect -> send 32 MiB to a server that never reads
//! 1. lookup localhost: 127.0.0.1:36333 (at 0 ms)
//! 2. connect: ok (at 0 ms)
//! 3. send: TimedOut: write on tcp #1.3: after 301 ms: deadline 300 ms exceeded (at 301 ms)
//!    its chain: ["write on tcp #1.3", "after 301 ms", "deadline 300 ms exceeded"]
//!    shutdown: TimedOut: shutdown on tcp #1.3: after 301 ms: deadline 300 ms exceeded (at 301 ms)
//!    closed tcp #1.3 (at 301 ms)
//! the scope: deadline 300 ms exceeded; handles left on the loop: 0
//! ```
//!
//! **Look for**, in the trace, the tick where the deadline's timer fires: one note for
//! the stream whose two owed callbacks got the cause, each once, and one for the scope,
//! naming its cause and what it stopped; the stream closes in the next close phase:
//!
//! ```text
//! note: scope 0.1: tcp #1.3: 2 owed callback(s) get "deadline 300 ms exceeded"
//! note: scope 0.1 canceled after 301 ms: deadline 300 ms exceeded: 2 callback(s) owed, 1 handle(s), 0 task(s), 0 child scope(s)
//! closed #1.3 | exit: nothing ref'd is active
//! ```
//!
//! **In production** give every request to another service a deadline, pass the scope
//! down to what the request starts (`lp.child_scope(s)`), and end scopes that
//! finished (`lp.end_scope`): a scope lives until it is ended.

use looplab::{dns, Loop, RunMode, Scope, Tcp};
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// What a never-reading peer cannot absorb: far more than loopback socket buffers hold.
const SEND: usize = 32 << 20;
/// The most the second argument may ask to send.
const MAX_SEND: usize = 1 << 30;

fn main() -> io::Result<()> {
    let ms = std::env::args()
        .nth(1)
        .and_then(|a| a.parse::<u64>().ok())
        .unwrap_or(300);
    let send = std::env::args()
        .nth(2)
        .and_then(|a| a.parse::<usize>().ok())
        .map_or(SEND, |n| n.min(MAX_SEND));
    // The slow server: a listener nobody accepts on. Connects succeed (the kernel
    // completes them into the backlog); nothing is ever read.
    let slow = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = slow.local_addr()?.port();
    let mut lp = Loop::new()?;
    let started = Instant::now();
    let s = lp.scope();
    lp.set_deadline(s, Duration::from_millis(ms));
    let what = if send == SEND {
        "32 MiB".to_string()
    } else {
        format!("{send} bytes")
    };
    println!("one deadline of {ms} ms over: lookup -> connect -> send {what} to a server that never reads");
    lp.in_scope(s, |lp| {
        dns::lookup(lp, "localhost", port, move |lp, r| {
            looked_up(lp, s, started, send, r)
        })
    });
    lp.run(RunMode::Default)?;
    let cause = lp
        .scope_canceled(s)
        .map_or("not canceled".into(), |c| c.to_string());
    println!(
        "the scope: {cause}; handles left on the loop: {}",
        lp.handles().len()
    );
    lp.end_scope(s);
    drop(slow);
    Ok(())
}

fn at(started: Instant) -> String {
    format!("(at {} ms)", started.elapsed().as_millis())
}

fn said(r: &io::Result<()>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => format!("{:?}: {e}", e.kind()),
    }
}

/// Step 1 done: connect to the IPv4 answer (the slow server listens on 127.0.0.1).
fn looked_up(
    lp: &mut Loop,
    s: Scope,
    started: Instant,
    send: usize,
    r: io::Result<Vec<SocketAddr>>,
) {
    let addr = match r.map(|a| a.into_iter().find(SocketAddr::is_ipv4)) {
        Ok(Some(addr)) => addr,
        Ok(None) => return println!("1. lookup localhost: no IPv4 address"),
        Err(e) => return println!("1. lookup localhost: {e}"),
    };
    println!("1. lookup localhost: {addr} {}", at(started));
    let conn = lp.tcp_connect(addr, move |lp, conn, r| {
        connected(lp, conn, started, send, r)
    });
    match conn {
        // The scope closes it on cancel; its close callback says so.
        Ok(conn) => {
            lp.scope_adopt_then(s, conn, move |_, h| {
                println!("   closed tcp {h} {}", at(started))
            });
        }
        Err(e) => println!("2. connect: {e}"),
    }
}

/// Step 2 done: send more than the peer will ever take, then FIN.
fn connected(lp: &mut Loop, conn: Tcp, started: Instant, send: usize, r: io::Result<()>) {
    println!("2. connect: {} {}", said(&r), at(started));
    if r.is_err() {
        lp.close(conn);
        return;
    }
    let sent = lp.write_then(conn, vec![b'x'; send], move |_, _, r| {
        println!("3. send: {} {}", said(&r), at(started));
        if let Err(e) = &r {
            println!("   its chain: {:?}", looplab::Error::chain(e));
        }
    });
    let shut = sent.and_then(|()| {
        lp.shutdown(conn, move |_, _, r| {
            println!("   shutdown: {} {}", said(&r), at(started))
        })
    });
    if let Err(e) = shut {
        println!("3. send: {e}");
    }
}
