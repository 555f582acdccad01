//! The echo server as `async fn`: rung 5 of the ladder, on the same loop as rung 4.
//!
//! One task accepts; each connection gets a task running `serve`, which reads the
//! way blocking code does (`read`, then `write_all`) and never blocks the thread:
//! every `.await` that cannot finish yet stores the task's waker with the loop and
//! returns to it. Compare with `echo.rs`, the same server in callbacks.
//!
//! What makes it production-correct, as `echo.rs` is:
//! - **Backpressure** comes with the futures: `write_all` waits while the stream's
//!   outbox is full (a client that does not read), so the task stops reading, the
//!   loop stops watching that socket, and the bytes wait in the kernel's buffer until
//!   it fills and the client's sends block. Per connection: a 512-byte read buffer
//!   beside its task, [`OUTBOX_HIGH`](crate::task::OUTBOX_HIGH) in the outbox and as
//!   much in the loop's write queue.
//! - **Half-close**: at EOF, `shutdown().await` flushes the echoes, then sends our FIN.
//! - **Load shedding** past `max_conns` (a connection counts until its task ends, after
//!   its FIN is sent, as in `echo.rs`); an **idle timeout** (`task::timeout` on each
//!   read, write and the final flush) when configured; a peer that vanishes ends only
//!   its own task.

use super::echo::{EchoConfig, EchoStats};
use crate::task::{self, JoinHandle, TcpListener, TcpStream};
use crate::Loop;
use slab::Slab;
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// Bytes read per `read` call (one `recv(2)`), into a buffer the connection's task
/// allocates on the heap, as tokio's echo does (inside the future, the buffer spread the
/// fields every poll reads over one cache line more: cachegrind, 10.2 against 9.2 L1
/// misses per round trip at 1000 connections). Small on purpose: every byte of it is
/// memory each connection holds, and at 5000 connections a 4 KiB buffer was most of the
/// server's footprint and pushed the per-connection state out of the CPU's cache. An
/// echo's messages are small; a bulk sender costs one system call per 512 bytes.
const READ_CHUNK: usize = 512;

struct Shared {
    config: EchoConfig,
    stats: EchoStats,
    /// The connections' tasks, so `shutdown` can abort them.
    conns: Slab<JoinHandle<()>>,
}

/// A running async echo server.
#[derive(Clone)]
pub struct EchoAsync {
    local: SocketAddr,
    shared: Rc<RefCell<Shared>>,
    acceptor: Rc<JoinHandle<()>>,
}

impl EchoAsync {
    /// Bind `config.addr` (running `lp` until bound) and start the accept task.
    pub fn listen(lp: &mut Loop, config: EchoConfig) -> io::Result<EchoAsync> {
        let listener = lp.block_on(TcpListener::bind(config.addr))??;
        let local = listener.local_addr();
        let shared = Rc::new(RefCell::new(Shared {
            config,
            stats: EchoStats::default(),
            conns: Slab::new(),
        }));
        let acceptor = lp.spawn(accept_loop(listener, shared.clone()));
        Ok(EchoAsync {
            local,
            shared,
            acceptor: Rc::new(acceptor),
        })
    }

    /// The bound address (the real port when listening on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// A copy of the stats.
    pub fn stats(&self) -> EchoStats {
        let s = self.shared.borrow();
        EchoStats {
            open: s.conns.len(),
            ..s.stats.clone()
        }
    }

    /// Graceful stop: the accept task and every connection's task are closed (their
    /// futures dropped: the listener and the streams close). The loop then exits.
    pub fn shutdown(&self, lp: &mut Loop) {
        lp.close(&*self.acceptor);
        let conns: Vec<JoinHandle<()>> = self.shared.borrow_mut().conns.drain().collect();
        for conn in &conns {
            lp.close(conn);
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Rc<RefCell<Shared>>) {
    loop {
        let conn = match listener.accept().await {
            Ok(conn) => conn,
            // Out of fds: the listener backs off by itself; the error is only counted.
            Err(_) => {
                shared.borrow_mut().stats.accept_errors += 1;
                continue;
            }
        };
        let mut s = shared.borrow_mut();
        if s.conns.len() >= s.config.max_conns {
            s.stats.shed += 1;
            continue; // dropping `conn` closes it
        }
        s.stats.accepted += 1;
        let entry = s.conns.vacant_entry();
        let key = entry.key();
        entry.insert(task::spawn(serve_and_count(conn, shared.clone(), key)));
    }
}

async fn serve_and_count(mut conn: TcpStream, shared: Rc<RefCell<Shared>>, key: usize) {
    let idle = shared.borrow().config.idle_timeout;
    let result = match idle {
        None => serve(&mut conn, &shared).await,
        // Boxed: a task's future is as large as its largest state, and the timeouts'
        // would make every connection's future larger (more cache lines per round
        // trip) whether it had an idle timeout or not.
        Some(idle) => Box::pin(serve_with_idle_timeout(&mut conn, &shared, idle)).await,
    };
    let mut s = shared.borrow_mut();
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::TimedOut => s.stats.idle_closed += 1,
        Err(_) => s.stats.errors += 1,
    }
    if s.conns.contains(key) {
        s.conns.remove(key);
    }
}

/// Echo one connection until EOF (then flush and FIN) or an error.
async fn serve(conn: &mut TcpStream, shared: &RefCell<Shared>) -> io::Result<()> {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            return conn.shutdown().await;
        }
        conn.write_all(&buf[..n]).await?;
        shared.borrow_mut().stats.bytes += n as u64;
    }
}

/// `serve` with every wait on the peer bounded by `idle`: a read (it says nothing) and
/// a write or the final flush (it reads nothing). Unbounded, a peer that sends and never
/// reads would hold its task in `write_all`, and its connection, for good; `echo`'s
/// idle timer closes that one too, since the loop stops reading it.
async fn serve_with_idle_timeout(
    conn: &mut TcpStream,
    shared: &RefCell<Shared>,
    idle: Duration,
) -> io::Result<()> {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = task::timeout(idle, conn.read(&mut buf)).await??;
        if n == 0 {
            return task::timeout(idle, conn.shutdown()).await?;
        }
        task::timeout(idle, conn.write_all(&buf[..n])).await??;
        shared.borrow_mut().stats.bytes += n as u64;
    }
}
