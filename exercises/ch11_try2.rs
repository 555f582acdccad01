//! # Chapter 11, Try 2 — a deadline on every read
//!
//! `examples/15_async_echo.rs` with `conn.read(&mut buf).await?` replaced by
//! `task::timeout(Duration::from_secs(5), conn.read(&mut buf)).await??`. A client that
//! connects and says nothing for 5 s loses its connection: the timeout's sleep fires,
//! the read future is dropped (its interest withdrawn), `serve` returns the `TimedOut`
//! error, and dropping the task's `TcpStream` closes it. A client that talks is not
//! affected: each read gets a fresh 5 s.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example ch11_try2`, then
//! `nc 127.0.0.1 7878` (no `nc`? `curl telnet://127.0.0.1:7878` does the same) and say
//! nothing.
//!
//! **Look for** after 5 s, on stdout: `Some(127.0.0.1:N): timed out after 5000 ms`; in the
//! trace, the timer waking the task and the stream closing in the same tick:
//! `tasks: polled 1 — #3.4 woken by timer #4.5 (finished) | closed #2.3`.

use looplab::task::{self, TcpListener, TcpStream};
use looplab::Loop;
use std::io;
use std::time::Duration;

async fn serve(mut conn: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        let n = task::timeout(Duration::from_secs(5), conn.read(&mut buf)).await??;
        if n == 0 {
            return conn.shutdown().await;
        }
        conn.write_all(&buf[..n]).await?;
    }
}

async fn accept_loop(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok(conn) => {
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

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    let addr = addr
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{addr}: {e}")))?;
    let mut lp = Loop::new()?;
    lp.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        println!("listening on {}", listener.local_addr());
        accept_loop(listener).await;
        Ok::<(), io::Error>(())
    })?
}
