//! # 15 — The ladder, rung 5: the echo server as `async fn`
//!
//! **What it shows.** Rung 4 (`11_echo_on_the_loop`) on the same loop, written the way
//! blocking code reads: `let n = conn.read(&mut buf).await?; conn.write_all(&buf[..n])
//! .await?;`. Nothing blocks: each `.await` that cannot finish yet stores the task's
//! waker with the loop and returns to it. One task accepts; each connection gets a task
//! (`task::spawn`). Underneath is the same loop as rung 4's: it watches the socket and,
//! when epoll says readable, wakes the task waiting in `read`, which is polled at once
//! and calls `recv(2)` itself, with the fd the loop lent its stream.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example 15_async_echo`, then
//! `cargo run --example 12_echo_client -- 127.0.0.1:7878 3 2`.
//!
//! **Look for** in the trace, per message: `events: fd 8 r -> tcp #4.5` and, on the
//! same tick, `tasks: polled 1 — #5.6 woken by fd 8 readable`: the wake path from the
//! socket to the task (the handle numbers depend on the run; a tick may batch several
//! sockets, `polled 3 — #3.4 woken by fd 7 readable, #5.6 by fd 8 readable, #7.8 by fd
//! 9 readable`). An accept shows as `events: fd 6 r -> listener #1.2` and `#0.1 woken
//! by fd 6 readable`, then `#3.4 by spawn`. Between messages, `alive: ref'd: 4 task
//! (tasks waiting on: fd 6 accept, fd 7 readable, fd 8 readable, fd 9 readable)`: each
//! task says what it waits on. When a client leaves, its task waits on `fd 8 shutdown`,
//! then `(finished)`, and `closed #4.5`.
//!
//! **In production** see `src/servers/echo_async.rs` (`looplab echo-async`): the same
//! plus a connection limit, an idle timeout (`task::timeout` on each read and write),
//! stats and graceful shutdown. Backpressure needs no code: `write_all` waits while the
//! stream's outbox is full, so the task stops reading.

use looplab::task::{self, TcpListener, TcpStream};
use looplab::Loop;
use std::io;

async fn serve(mut conn: TcpStream) -> io::Result<()> {
    let mut buf = [0u8; 1024];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            // The client sent its FIN: send ours after the last echo, then we are done.
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
            // Out of fds, for one: the listener backs off by itself; keep accepting.
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
