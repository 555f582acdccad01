//! # Chapter 11, Try 3 — the race the other way round
//!
//! Part 2 of `examples/16_timeout_and_race.rs` with the two arguments of `task::race`
//! swapped, `race(ask(fast), ask(slow))`, and the names in its `match` with them (`Left`
//! is now fast's answer). `fast` still wins: it answers after 80 ms, `slow` after 400,
//! so when the race is polled at 80 ms only one side is ready, whichever side it is on.
//! The order matters only when both are ready in the same poll: `race` polls its first
//! argument first, so the first wins (a documented bias, like tokio's `biased;` select).
//! Part 3 shows that with two sleeps of 50 ms, `a` made before `b`: their timers fire
//! in the same tick, and whichever is the first argument wins, `a` or `b`.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example ch11_try3`
//!
//! **Look for** `fast won after 8N ms (fast answered after 80 ms); the request to slow
//! was dropped`, then `race(a, b): a won` and `race(b, a): b won`. In the trace, the two
//! sleeps' timers fire in one tick (`timers fired #11.15 #13.16`), and the next tick
//! polls the task once (`polled 1 — #4.6 woken by timer #11.15`).

use looplab::task::{self, Either, TcpListener, TcpStream};
use looplab::Loop;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A replica: answers every request after `delay`.
async fn replica(name: &'static str, delay: Duration, listener: TcpListener) {
    loop {
        let Ok(mut conn) = listener.accept().await else {
            continue;
        };
        task::spawn(async move {
            let mut buf = [0u8; 64];
            if conn.read(&mut buf).await.unwrap_or(0) == 0 {
                return;
            }
            let _ = task::sleep(delay).await;
            let answer = format!("{name} answered after {} ms\n", delay.as_millis());
            let sent = async {
                conn.write_all(answer.as_bytes()).await?;
                conn.shutdown().await
            };
            if let Err(e) = sent.await {
                println!(
                    "  ({name}: the client left before the answer: {})",
                    e.kind()
                );
            }
        });
    }
}

/// One request: connect, ask, read the answer line.
async fn ask(addr: SocketAddr) -> io::Result<String> {
    let mut conn = TcpStream::connect(addr).await?;
    conn.write_all(b"request\n").await?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        let n = conn.read(&mut buf).await?;
        answer.extend_from_slice(&buf[..n]);
        if n == 0 || buf[..n].contains(&b'\n') {
            return Ok(String::from_utf8_lossy(&answer).trim().to_string());
        }
    }
}

/// Both sides ready in the same poll: two sleeps of 50 ms made in the same tick, `a`
/// first, so one deadline and one tick fires both. Raced as `(b, a)`, `b` still wins:
/// not the sleep made first, the side polled first.
async fn tie(swapped: bool) {
    let a = task::sleep(Duration::from_millis(50));
    let b = task::sleep(Duration::from_millis(50));
    let (race, winner) = if swapped {
        let won = match task::race(b, a).await {
            Either::Left(_) => "b",
            Either::Right(_) => "a",
        };
        ("race(b, a)", won)
    } else {
        let won = match task::race(a, b).await {
            Either::Left(_) => "a",
            Either::Right(_) => "b",
        };
        ("race(a, b)", won)
    };
    println!("  {race}: {winner} won");
}

async fn client(slow: SocketAddr, fast: SocketAddr) {
    println!("2. ask fast and slow the same thing (fast first); the first answer wins");
    let t = Instant::now();
    match task::race(ask(fast), ask(slow)).await {
        Either::Left(Ok(answer)) => println!(
            "  fast won after {} ms ({answer}); the request to slow was dropped",
            t.elapsed().as_millis()
        ),
        Either::Left(Err(e)) => println!("  fast failed first: {e}"),
        Either::Right(answer) => println!("  slow won: {answer:?}"),
    }
    println!("3. both ready in the same poll");
    tie(false).await;
    tie(true).await;
}

fn main() -> io::Result<()> {
    let mut lp = Loop::new()?;
    let any: SocketAddr = ([127, 0, 0, 1], 0).into();
    let (slow, fast) = lp.block_on(async move {
        let slow = TcpListener::bind(any).await?;
        let fast = TcpListener::bind(any).await?;
        Ok::<_, io::Error>((slow, fast))
    })??;
    let (slow_addr, fast_addr) = (slow.local_addr(), fast.local_addr());
    let replicas = [
        lp.spawn(replica("slow", Duration::from_millis(400), slow)),
        lp.spawn(replica("fast", Duration::from_millis(80), fast)),
    ];
    for r in &replicas {
        lp.unref_handle(r);
    }
    lp.block_on(client(slow_addr, fast_addr))
}
