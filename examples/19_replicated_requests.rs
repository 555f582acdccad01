//! # 19 — Replicated requests and happy eyeballs: the first good answer wins
//!
//! **What it shows.** The program starts three echo replicas of its own on the loop:
//! `fast` (answers at once), `slow` (answers after 2 s) and `dead` (a port nobody
//! listens on). Then:
//! 1. it sends the same request to all three with `task::first_ok`. `dead` refuses at
//!    once: in a plain `race` that error would win; here it only takes `dead` out.
//!    `fast` answers first and wins; the request to `slow` is **dropped**, which closes
//!    its stream, and `slow` sees its client leave long before its answer was due;
//! 2. it asks `dead` twice, as two replicas that both fail, to show the error that lists
//!    each replica's failure (both name `dead`'s port);
//! 3. it connects to `localhost` with happy eyeballs (`task::connect_first`): the name
//!    resolves to `127.0.0.1` (and `::1` on systems that list it; the example adds
//!    whichever is missing), only `127.0.0.1` listens, and the refused `::1` attempt
//!    starts the next one at once instead of waiting out the 250 ms stagger.
//!
//! **Run it.** `cargo run --example 19_replicated_requests [-- --black-hole]`
//! (`LOOPLAB_TRACE=1` to see the loop's side).
//!
//! **It prints** (the ports and milliseconds vary):
//! ```text
//! replicas: fast 127.0.0.1:41001, slow 127.0.0.1:41002, dead 127.0.0.1:41003
//! first_ok: #0 (fast) answered "echo: request" after 1 ms
//!   (slow: the client left after 1 ms, before the answer was due: cancelled)
//! only the failing ones: asking 2 replica(s): all 2 failed: #0: connecting to 127.0.0.1:41003: after 0 ms: connecting tcp #7.17: Connection refused (os error 111); #1: ...
//! localhost:41004 resolves to 127.0.0.1:41004
//! happy eyeballs over [::1]:41004, 127.0.0.1:41004
//! happy eyeballs: connected to 127.0.0.1:41004 after 1 ms
//! ```
//!
//! **Look for** in the trace: `note: replicas: #2 failed: connecting to 127.0.0.1:..:
//! after 0 ms: connecting tcp #7.9: Connection refused`, then `note: replicas: #0 answered first; dropped 1 other(s)` on the same
//! line as `closed #..` (the loser's stream, closed in that tick); for the eyeballs,
//! `attempt 1 to [::1]:..`, its refusal, and `attempt 2 to 127.0.0.1:..` in the same
//! tick: a failure starts the next attempt without waiting for the stagger.
//!
//! **With `-- --black-hole`** `::1` swallows the connect instead of refusing it (a
//! listener that never accepts, its queue filled first: the kernel drops the SYN), and
//! the stagger does the work: `happy eyeballs: connected to 127.0.0.1:.. after 25x ms`,
//! and in the trace `woken by timer #..` on the tick with `attempt 2 to 127.0.0.1:..`,
//! then `connected first; closed 1 other attempt(s)`: the hanging connect, closed.
//!
//! **In production** replicate only idempotent requests, and prefer hedging (send the
//! second copy only when the first is slower than, say, its 95th percentile) to
//! doubling every request's load. Happy eyeballs also races the DNS answers themselves
//! (AAAA and A queries); `std`'s resolver gives both at once, so this one does not.

use looplab::task::{self, TcpListener, TcpStream};
use looplab::Loop;
use socket2::{Domain, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

const SLOW: Duration = Duration::from_secs(2);

/// An echo replica: answers `echo: <request>` after `delay`, or notices the client
/// leaving first (a read that ends while it waits).
async fn replica(name: &'static str, delay: Duration, listener: TcpListener) {
    while let Ok(mut conn) = listener.accept().await {
        task::spawn(async move {
            let mut buf = [0u8; 64];
            let n = conn.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            let answer = format!("echo: {}", String::from_utf8_lossy(&buf[..n]));
            let t = Instant::now();
            let mut rest = [0u8; 1];
            let waited = task::race(task::sleep(delay), conn.read(&mut rest)).await;
            match waited {
                task::Either::Left(_) => {
                    let _ = conn.write_all(answer.as_bytes()).await;
                    let _ = conn.shutdown().await;
                }
                task::Either::Right(_) => println!(
                    "  ({name}: the client left after {} ms, before the answer was due: cancelled)",
                    t.elapsed().as_millis()
                ),
            }
        });
    }
}

/// One request: connect, send, read the answer to the end.
async fn ask(addr: SocketAddr) -> io::Result<String> {
    let mut conn = TcpStream::connect(addr).await?;
    conn.write_all(b"request").await?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        match conn.read(&mut buf).await? {
            0 => return Ok(String::from_utf8_lossy(&answer).into_owned()),
            n => answer.extend_from_slice(&buf[..n]),
        }
    }
}

/// A port nobody listens on: bound, read, and closed again.
fn dead_port() -> io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

async fn client(fast: SocketAddr, slow: SocketAddr, dead: SocketAddr) -> io::Result<()> {
    let names = ["fast", "slow", "dead"];
    let t = Instant::now();
    let (i, answer) = task::first_ok([ask(fast), ask(slow), ask(dead)]).await?;
    let ms = t.elapsed().as_millis();
    println!(
        "first_ok: #{i} ({}) answered {answer:?} after {ms} ms",
        names[i]
    );
    // Let `slow` notice its client left (its read ends within a tick or two).
    task::sleep(Duration::from_millis(100)).await?;

    match task::first_ok([ask(dead), ask(dead)]).await {
        Ok(_) => println!("only the failing ones: answered?!"),
        Err(e) => println!("only the failing ones: {e}"),
    }

    Ok(())
}

/// Happy eyeballs over both loopbacks; only 127.0.0.1 listens. `hole`: the port of a
/// black hole on ::1 (made by `black_hole`), else ::1 refuses at once.
async fn eyeballs(hole: Option<u16>) -> io::Result<()> {
    let local = TcpListener::bind(([127, 0, 0, 1], hole.unwrap_or(0)).into()).await?;
    let port = local.local_addr().port();
    let mut addrs = task::dns::lookup("localhost", port).await?;
    let shown: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    println!("localhost:{port} resolves to {}", shown.join(", "));
    // Many /etc/hosts list only one family for localhost: race both loopbacks anyway,
    // ::1 first (refusing, or black-holed).
    for ip in [
        IpAddr::from(Ipv6Addr::LOCALHOST),
        IpAddr::from(Ipv4Addr::LOCALHOST),
    ] {
        let a = SocketAddr::new(ip, port);
        if !addrs.contains(&a) {
            addrs.insert(0, a);
        }
    }
    let shown: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    println!("happy eyeballs over {}", shown.join(", "));
    let t = Instant::now();
    let stream = task::connect_first(addrs, task::STAGGER).await?;
    let to = stream.peer_addr().map_or("?".into(), |a| a.to_string());
    let ms = t.elapsed().as_millis();
    println!("happy eyeballs: connected to {to} after {ms} ms");
    Ok(())
}

/// A listener on ::1 that never accepts, its accept queue filled first (blocking
/// connects, before the loop runs): the kernel drops further SYNs, so a connect hangs
/// as to an address a firewall swallows. Keep what it returns alive while it is used.
fn black_hole() -> io::Result<(Socket, Vec<std::net::TcpStream>, u16)> {
    let hole = Socket::new(Domain::IPV6, Type::STREAM, None)?;
    hole.bind(&SocketAddr::from((Ipv6Addr::LOCALHOST, 0)).into())?;
    hole.listen(0)?;
    let addr = hole
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("no address"))?;
    let mut filling = Vec::new();
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(conn) => filling.push(conn),
            Err(_) => return Ok((hole, filling, addr.port())), // this SYN was dropped
        }
    }
    Err(io::Error::other(
        "the accept queue of the black hole never filled",
    ))
}

fn main() -> io::Result<()> {
    let mut lp = Loop::new()?;
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    let (fast, slow) = lp.block_on(async move {
        Ok::<_, io::Error>((TcpListener::bind(any).await?, TcpListener::bind(any).await?))
    })??;
    let (fast_addr, slow_addr, dead_addr) = (fast.local_addr(), slow.local_addr(), dead_port()?);
    println!("replicas: fast {fast_addr}, slow {slow_addr}, dead {dead_addr}");
    // The replicas run beside the client, unref'd: they never keep the loop running.
    for r in [
        lp.spawn(replica("fast", Duration::ZERO, fast)),
        lp.spawn(replica("slow", SLOW, slow)),
    ] {
        lp.unref_handle(&r);
    }
    lp.block_on(client(fast_addr, slow_addr, dead_addr))??;
    let hole = match std::env::args().nth(1).as_deref() {
        None => None,
        Some("--black-hole") => Some(black_hole()?),
        Some(other) => {
            let usage =
                format!("unknown argument {other:?}; usage: 19_replicated_requests [--black-hole]");
            return Err(io::Error::new(io::ErrorKind::InvalidInput, usage));
        }
    };
    lp.block_on(eyeballs(hole.as_ref().map(|h| h.2)))?
}
