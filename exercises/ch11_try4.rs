//! # Chapter 11, Try 4 — a task that never stops, and the echo goes on
//!
//! `examples/15_async_echo.rs` with one more task beside the accept loop: it loops on
//! `task::yield_now().await` for ever. Each `yield_now` wakes its own task and returns
//! `Pending` once, so the task is polled once per tick: the loop never sleeps (the
//! ready task makes the poll timeout 0) but it still polls the sockets every tick, and
//! the echo answers between two of the spinner's polls.
//!
//! **Run it.** `cargo run --example ch11_try4`, then
//! `cargo run --example 12_echo_client -- 127.0.0.1:7878 3 2`; stop the server with
//! Ctrl-C.
//!
//! **Look for** the client's `6 round trips` with `0 wrong bytes`, as against example 15;
//! the server prints how many times the spinner was polled before each connection
//! (`spinner: polled N times so far`), climbing by hundreds of thousands a second (far
//! fewer with the trace on; 0 for connections that come before its first poll). With `LOOPLAB_TRACE=1` every tick says
//! `poll 0ms (1 tasks ready)` and `#2.3 woken by itself`: it never sleeps.

use looplab::task::{self, TcpListener, TcpStream};
use looplab::Loop;
use std::cell::Cell;
use std::io;
use std::rc::Rc;

async fn serve(mut conn: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return conn.shutdown().await;
        }
        conn.write_all(&buf[..n]).await?;
    }
}

async fn accept_loop(listener: TcpListener, spins: Rc<Cell<u64>>) {
    loop {
        match listener.accept().await {
            Ok(conn) => {
                println!("spinner: polled {} times so far", spins.get());
                let who = conn.peer_addr();
                task::spawn(async move {
                    if let Err(e) = serve(conn).await {
                        println!("{who:?}: {e}");
                    }
                });
            }
            Err(e) => println!("accept failed: {e}"),
        }
    }
}

/// Never finishes, never waits for anything: yields, and is woken by itself.
async fn spinner(spins: Rc<Cell<u64>>) {
    loop {
        spins.set(spins.get() + 1);
        task::yield_now().await;
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    let addr = addr
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
    let mut lp = Loop::new()?;
    let spins = Rc::new(Cell::new(0));
    lp.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        println!("listening on {}", listener.local_addr());
        task::spawn(spinner(spins.clone()));
        accept_loop(listener, spins).await;
        Ok::<(), io::Error>(())
    })?
}
