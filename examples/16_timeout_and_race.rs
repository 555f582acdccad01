//! # 16 — A deadline on a slow request, and the first of two replicas: cancel = drop
//!
//! **What it shows.** Two replicas of a tiny service run as tasks on the loop: each
//! answers a request after its own delay (`slow`: 400 ms, `fast`: 80 ms). The client:
//! 1. asks `slow` with a 150 ms deadline: `task::timeout(150 ms, ask(slow))`. The
//!    deadline wins, and the request future is **dropped**: its stream closes at once,
//!    so `slow`, when it finally answers, finds nobody there;
//! 2. sends the same request to both replicas and takes the first answer:
//!    `task::race(ask(slow), ask(fast))`. `fast` wins; the request to `slow` is dropped
//!    the moment `fast`'s answer is in (its connection closed, its read withdrawn).
//!
//! There is no `cancel()` anywhere: a future that is dropped stops, and every leaf
//! future undoes what it started in its `Drop` (a sleep clears its timer, a read stops
//! reading, a stream closes). `timeout` is itself a race against a sleep.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example 16_timeout_and_race`
//!
//! **Look for** `timed out after 150 ms` and `fast won`, the replicas' complaints that
//! the client left, and in the trace: the deadline's timer firing and waking the client
//! task (`woken by timer #..`), then `closed #..` for the abandoned stream in the same
//! tick; for the race, `closed` for the loser's stream right after the winner's answer.
//! At the end the client holds nothing: no timer, no stream.
//!
//! **In production** retry with backoff, hedge only idempotent requests, and put a
//! deadline on every request to another service (the Go notes on replicated requests).

use looplab::task::{self, Either, TcpListener, TcpStream};
use looplab::{HandleKind, Loop};
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
            // The client may be gone: then the write or the shutdown says so.
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
        if n == 0 || buf[..n].contains(&b'\n') {
            answer.extend_from_slice(&buf[..n]);
            return Ok(String::from_utf8_lossy(&answer).trim().to_string());
        }
        answer.extend_from_slice(&buf[..n]);
    }
}

/// The client: a deadline on the slow replica, then both replicas raced.
async fn client(slow: SocketAddr, fast: SocketAddr) {
    let started = Instant::now();
    println!("1. ask slow (400 ms) with a 150 ms deadline");
    match task::timeout(Duration::from_millis(150), ask(slow)).await {
        Ok(answer) => println!("  answer: {answer:?}"),
        Err(e) => println!("  {e} (at {} ms)", started.elapsed().as_millis()),
    }
    // Give `slow` time to answer into the void, to see that the request was dropped.
    let _ = task::sleep(Duration::from_millis(300)).await;

    println!("2. ask slow and fast the same thing; the first answer wins");
    let t = Instant::now();
    match task::race(ask(slow), ask(fast)).await {
        Either::Left(answer) => println!("  slow won: {answer:?}"),
        Either::Right(Ok(answer)) => println!(
            "  fast won after {} ms ({answer}); the request to slow was dropped",
            t.elapsed().as_millis()
        ),
        Either::Right(Err(e)) => println!("  fast failed first: {e}"),
    }
    let _ = task::sleep(Duration::from_millis(400)).await;
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
    // The replicas run beside the client; unref'd, so they never keep the loop running.
    let replicas = [
        lp.spawn(replica("slow", Duration::from_millis(400), slow)),
        lp.spawn(replica("fast", Duration::from_millis(80), fast)),
    ];
    for r in &replicas {
        lp.unref_handle(r);
    }

    lp.block_on(client(slow_addr, fast_addr))?;

    let timers = lp
        .handles()
        .iter()
        .filter(|h| h.kind == HandleKind::Timer)
        .count();
    let streams = lp
        .handles()
        .iter()
        .filter(|h| h.kind == HandleKind::Tcp)
        .count();
    println!("left on the loop: {timers} timer(s), {streams} stream(s) (the replicas' listeners and tasks remain, unref'd)");
    Ok(())
}
