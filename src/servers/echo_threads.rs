//! The echo server with one OS thread per connection: the classic design.
//!
//! A blocking `accept` loop hands each connection to a new thread that loops on blocking
//! `read` and `write_all`. Simple to write and to read, and each connection costs a
//! thread: a stack (we ask for a small explicit one), a kernel task, context switches
//! when thousands of them take turns. When the OS will not give another thread, the
//! connection is refused instead of crashing the server.
//!
//! What a blocking design must still get right:
//! - **Out of fds.** `accept` fails with EMFILE and leaves the connection in the backlog,
//!   so retrying at once would fail again at once. The accept thread sleeps
//!   [`ACCEPT_BACKOFF`] between tries: a blocking thread has no poller to spin, but a
//!   tight retry loop would burn a core all the same.
//! - **Say it once.** A condition that lasts (out of fds, out of threads) is reported
//!   once when it starts and once when it ends, not once per retry: an episode, as the
//!   loop's listener does. The library prints nothing; it hands [`Notice`]s to the caller.
//! - **Half-open peers.** A peer whose machine vanished never sends a FIN; a thread
//!   blocked in `read` would wait for it forever. With an idle timeout the socket's read
//!   (and write) timeout ends that wait, and the thread with it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// 64 KiB of stack per connection thread: the echo loop needs little, and the default
/// (2 MiB of address space, touched lazily) hides what a thread really costs.
pub const THREAD_STACK: usize = 64 * 1024;
/// The per-connection read buffer (on that thread's stack budget, so kept modest).
const BUFFER: usize = 16 * 1024;
/// Out of fds, wait this long before the next accept: long enough not to spin, short
/// enough that a freed fd is used soon (the loop's listener uses the same pause).
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How the server is set up.
#[derive(Clone, Debug)]
pub struct EchoThreadsConfig {
    /// Where to listen (port 0: any free port).
    pub addr: SocketAddr,
    /// Connections over this many open ones are accepted and closed at once.
    pub max_conns: usize,
    /// Close a connection that neither sends nor takes a byte for this long (`None`:
    /// never, the classic behaviour).
    pub idle_timeout: Option<Duration>,
}

/// Something the accept thread has to tell a person; the caller decides how.
#[derive(Debug)]
pub enum Notice {
    /// `accept` failed for want of file descriptors: the start of an episode.
    OutOfFds(io::Error),
    /// The OS would not start a thread for a connection: the start of an episode.
    NoThread(io::Error),
    /// An episode ended: a connection was accepted and given its thread again.
    Recovered {
        /// Failed accepts and refused connections during the episode.
        failures: u64,
    },
}

/// Where [`Notice`]s go.
pub type OnNotice = Arc<dyn Fn(Notice) + Send + Sync>;

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
    /// Episodes of running out of file descriptors.
    pub fd_episodes: AtomicU64,
    /// Connections closed because they were idle past the idle timeout.
    pub timed_out: AtomicU64,
}

/// A running thread-per-connection echo server.
pub struct EchoThreads {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: Arc<ThreadStats>,
    acceptor: Option<JoinHandle<()>>,
}

impl EchoThreads {
    /// Bind `addr` and start the accept thread; no idle timeout, notices dropped.
    pub fn start(addr: SocketAddr, max_conns: usize) -> io::Result<EchoThreads> {
        let cfg = EchoThreadsConfig {
            addr,
            max_conns,
            idle_timeout: None,
        };
        EchoThreads::start_with(cfg, Arc::new(|_| {}))
    }

    /// Bind `cfg.addr` and start the accept thread; `on_notice` hears about episodes.
    pub fn start_with(cfg: EchoThreadsConfig, on_notice: OnNotice) -> io::Result<EchoThreads> {
        let listener = listen(cfg.addr)
            .map_err(|e| crate::error::context(format!("listening on {}", cfg.addr), e))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ThreadStats::default());
        let acceptor = Acceptor {
            cfg,
            stop: stop.clone(),
            stats: stats.clone(),
            on_notice,
            failures: 0,
            episode: None,
        };
        let acceptor = std::thread::Builder::new()
            .name("echo-accept".into())
            .spawn(move || acceptor.run(&listener))?;
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

/// Which condition is lasting, so it is told once.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Episode {
    OutOfFds,
    NoThread,
}

/// The accept thread's state.
struct Acceptor {
    cfg: EchoThreadsConfig,
    stop: Arc<AtomicBool>,
    stats: Arc<ThreadStats>,
    on_notice: OnNotice,
    failures: u64,
    episode: Option<Episode>,
}

impl Acceptor {
    fn run(mut self, listener: &TcpListener) {
        for conn in listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            match conn {
                Ok(stream) => self.serve_new(stream),
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                    self.failed(Episode::OutOfFds, e);
                    std::thread::sleep(ACCEPT_BACKOFF);
                }
                // The peer gave up before we accepted, or a signal: the next one may be fine.
                Err(_) => {}
            }
        }
    }

    fn serve_new(&mut self, stream: TcpStream) {
        if self.stats.open.load(Ordering::SeqCst) >= self.cfg.max_conns {
            self.stats.shed.fetch_add(1, Ordering::Relaxed);
            return; // dropping it closes it
        }
        let _ = stream.set_nodelay(true);
        if let Some(idle) = self.cfg.idle_timeout {
            // A zero timeout would mean "block forever" to the OS; the CLI refuses it.
            let _ = stream.set_read_timeout(Some(idle));
            let _ = stream.set_write_timeout(Some(idle));
        }
        self.stats.open.fetch_add(1, Ordering::SeqCst);
        let s = self.stats.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(THREAD_STACK)
            .spawn(move || {
                if serve(stream) == Ended::TimedOut {
                    s.timed_out.fetch_add(1, Ordering::Relaxed);
                }
                s.open.fetch_sub(1, Ordering::SeqCst);
            });
        match spawned {
            Ok(_) => {
                self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                self.recovered();
            }
            Err(e) => {
                // The closure (and the stream inside it) was dropped: the client sees a close.
                self.stats.open.fetch_sub(1, Ordering::SeqCst);
                self.stats.spawn_failures.fetch_add(1, Ordering::Relaxed);
                self.failed(Episode::NoThread, e);
            }
        }
    }

    /// A failure: told only if it starts an episode (or changes its kind).
    fn failed(&mut self, kind: Episode, e: io::Error) {
        self.failures += 1;
        if self.episode.replace(kind) == Some(kind) {
            return;
        }
        match kind {
            Episode::OutOfFds => {
                self.stats.fd_episodes.fetch_add(1, Ordering::Relaxed);
                (self.on_notice)(Notice::OutOfFds(e));
            }
            Episode::NoThread => (self.on_notice)(Notice::NoThread(e)),
        }
    }

    fn recovered(&mut self) {
        if self.episode.take().is_some() {
            let failures = std::mem::take(&mut self.failures);
            (self.on_notice)(Notice::Recovered { failures });
        }
    }
}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    /// The client closed, reset, or the socket failed.
    Peer,
    /// Nothing moved for the idle timeout.
    TimedOut,
}

fn serve(mut stream: TcpStream) -> Ended {
    let mut buf = [0u8; BUFFER];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => {
                // Half-close: everything was echoed (write_all returned); send our FIN.
                let _ = stream.shutdown(Shutdown::Write);
                return Ended::Peer;
            }
            Ok(n) => {
                if let Err(e) = stream.write_all(&buf[..n]) {
                    return ended_by(&e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return ended_by(&e),
        }
    }
}

/// A socket timeout shows up as WouldBlock (Unix) or TimedOut (Windows).
fn ended_by(e: &io::Error) -> Ended {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Ended::TimedOut,
        _ => Ended::Peer,
    }
}

/// A listener with the loop's backlog. std's `TcpListener::bind` listens with 128: with
/// thousands of connections arriving at once, the SYNs past it are dropped and retried a
/// second later, and the thread server would be measured on its backlog, not its threads.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = crate::tcp::new_socket(addr)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(crate::tcp::BACKLOG)?;
    let listener: TcpListener = socket.into();
    // The loop's sockets are non-blocking; this server's accept thread blocks.
    listener.set_nonblocking(false)?;
    Ok(listener)
}
