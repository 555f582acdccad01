//! The echo server with one OS thread per connection: the classic design.
//!
//! A blocking `accept` loop hands each connection to a new thread that loops on blocking
//! `read` and `write_all`. Simple to write and to read, and each connection costs a
//! thread: a stack (we ask for a small explicit one), a kernel task, context switches
//! when thousands of them take turns. When the OS will not give another thread, the
//! connection is refused with a message instead of crashing the server.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// 64 KiB of stack per connection thread: the echo loop needs little, and the default
/// (2 MiB of address space, touched lazily) hides what a thread really costs.
pub const THREAD_STACK: usize = 64 * 1024;
/// The per-connection read buffer (on that thread's stack budget, so kept modest).
const BUFFER: usize = 16 * 1024;

/// Counters shared by all connection threads.
#[derive(Default, Debug)]
pub struct ThreadStats {
    /// Connections accepted and served.
    pub accepted: AtomicU64,
    /// Connection threads running now.
    pub open: AtomicUsize,
    /// Connections refused because `max_conns` threads were running.
    pub shed: AtomicU64,
    /// Connections refused because the OS would not start a thread.
    pub spawn_failures: AtomicU64,
}

/// A running thread-per-connection echo server.
pub struct EchoThreads {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: Arc<ThreadStats>,
    acceptor: Option<JoinHandle<()>>,
}

impl EchoThreads {
    /// Bind `addr` and start the accept thread.
    pub fn start(addr: SocketAddr, max_conns: usize) -> io::Result<EchoThreads> {
        let listener = TcpListener::bind(addr)
            .map_err(|e| crate::error::context(format!("binding {addr}"), e))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ThreadStats::default());
        let (st, ss) = (stop.clone(), stats.clone());
        let acceptor = std::thread::Builder::new()
            .name("echo-accept".into())
            .spawn(move || accept_loop(&listener, &st, &ss, max_conns))?;
        Ok(EchoThreads {
            addr,
            stop,
            stats,
            acceptor: Some(acceptor),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The live counters.
    pub fn stats(&self) -> &ThreadStats {
        &self.stats
    }

    /// Block on the accept thread (it runs until `stop`).
    pub fn wait(mut self) {
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }

    /// Stop accepting. Connection threads finish when their clients leave.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // accept() blocks; a connection of our own wakes it to see the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    stop: &AtomicBool,
    stats: &Arc<ThreadStats>,
    max_conns: usize,
) {
    let mut said_spawn_error = false;
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                eprintln!("echo-threads: out of file descriptors ({e}); waiting 100 ms");
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
            Err(_) => continue,
        };
        if stats.open.load(Ordering::SeqCst) >= max_conns {
            stats.shed.fetch_add(1, Ordering::Relaxed);
            continue; // dropping it closes it
        }
        let _ = stream.set_nodelay(true);
        stats.open.fetch_add(1, Ordering::SeqCst);
        let s = stats.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(THREAD_STACK)
            .spawn(move || {
                serve(stream);
                s.open.fetch_sub(1, Ordering::SeqCst);
            });
        match spawned {
            Ok(_) => {
                stats.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                // The closure (and the stream inside it) was dropped: the client sees a close.
                stats.open.fetch_sub(1, Ordering::SeqCst);
                stats.spawn_failures.fetch_add(1, Ordering::Relaxed);
                if !said_spawn_error {
                    eprintln!("echo-threads: cannot start a thread for a new connection ({e}); refusing connections until threads free up");
                    said_spawn_error = true;
                }
            }
        }
    }
}

fn serve(mut stream: TcpStream) {
    let mut buf = [0u8; BUFFER];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => {
                // Half-close: everything was echoed (write_all returned); send our FIN.
                let _ = stream.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                if stream.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
