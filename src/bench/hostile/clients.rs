//! The clients of `bench --hostile`: three ways to attack the long-poll server without
//! breaking a single rule of TCP, and the normal client whose service is measured.
//!
//! Plain threads and blocking sockets: each client is a few lines read top to bottom,
//! and every socket has [`IO_TIMEOUT`], so a server that stops answering costs a client
//! that long per request and never hangs the benchmark.

use std::collections::HashSet;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Connect, read and write timeout of every socket.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes of pipelined `GET /` each pipelining client sends (8 MiB took the unbounded
/// server from 4 MB to 862 MB).
pub const PIPELINE_BYTES: usize = 8 << 20;
/// Polls from cursor 0 each amplifying client pipelines (the issue's figure).
pub const AMPLIFIED_POLLS: usize = 1470;
/// Control characters per ring message: 4096 bytes of text, 24 KiB once JSON-escaped.
pub const RING_TEXT: usize = 4096;
/// A normal client's pause between cycles: a person chatting, not a load generator.
const THINK: Duration = Duration::from_millis(100);
/// The largest response a normal client reads.
const MAX_BODY: usize = 32 << 20;

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn get(target: &str, extra: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: bench\r\n{extra}\r\n")
}

fn publish(text: &str) -> Vec<u8> {
    let body = format!(r#"{{"text":"{text}"}}"#);
    format!(
        "POST /publish HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Pipelines `GET /` without ever reading: up to [`PIPELINE_BYTES`], retrying the
/// writes that the server's backpressure blocks, until `stop`. Returns the bytes sent
/// and the socket, kept open by the caller.
pub fn pipeline_never_read(addr: SocketAddr, stop: &AtomicBool) -> (u64, Option<TcpStream>) {
    let Ok(mut s) = connect(addr) else {
        return (0, None);
    };
    let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
    let chunk = get("/", "").repeat(2048).into_bytes();
    let mut sent = 0;
    while sent < PIPELINE_BYTES && !stop.load(Ordering::Relaxed) {
        match s.write(&chunk[sent % chunk.len()..]) {
            Ok(n) => sent += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break, // the server closed it: that is its answer
        }
    }
    (sent as u64, Some(s))
}

/// One `Connection: close` poll for the whole ring, with a 4 KiB receive buffer, never
/// read: the answer waits in the server's write queue.
pub fn close_never_read(addr: SocketAddr) -> Option<TcpStream> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .ok()?;
    sock.set_recv_buffer_size(4096).ok()?;
    sock.connect_timeout(&addr.into(), IO_TIMEOUT).ok()?;
    let mut s: TcpStream = sock.into();
    let _ = s.set_write_timeout(Some(IO_TIMEOUT));
    s.write_all(get("/poll?cursor=0", "Connection: close\r\n").as_bytes())
        .ok()?;
    Some(s)
}

/// Publish `n` messages of [`RING_TEXT`] control characters; returns how many got 201.
pub fn fill_ring(addr: SocketAddr, n: usize) -> u64 {
    let mut c = Conn::new(addr);
    let req = publish(&"\\u0001".repeat(RING_TEXT));
    (0..n)
        .filter(|_| matches!(c.exchange(&req), Ok((201, _))))
        .count() as u64
}

/// [`AMPLIFIED_POLLS`] polls from cursor 0 in one write, never read.
pub fn amplify_never_read(addr: SocketAddr) -> Option<TcpStream> {
    let mut s = connect(addr).ok()?;
    let _ = s.write_all(get("/poll?cursor=0", "").repeat(AMPLIFIED_POLLS).as_bytes());
    Some(s)
}

/// A keep-alive connection for request/response exchanges; reconnects after an error.
struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            stream: None,
            buf: Vec::new(),
        }
    }

    /// Send one request and read its response: (status, body).
    fn exchange(&mut self, req: &[u8]) -> io::Result<(u16, Vec<u8>)> {
        let r = self.try_exchange(req);
        if r.is_err() {
            self.stream = None; // framing is lost; start over on a fresh connection
        }
        r
    }

    fn try_exchange(&mut self, req: &[u8]) -> io::Result<(u16, Vec<u8>)> {
        if self.stream.is_none() {
            self.stream = Some(connect(self.addr)?);
            self.buf.clear();
        }
        let s = self
            .stream
            .as_mut()
            .ok_or_else(|| io::Error::other("no stream"))?;
        s.write_all(req)?;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some((status, head, len)) = parse_head(&self.buf)? {
                if self.buf.len() >= head + len {
                    let body = self.buf[head..head + len].to_vec();
                    self.buf.drain(..head + len);
                    return Ok((status, body));
                }
            }
            let n = s.read(&mut chunk)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// (status, head length, body length) once a whole response head is buffered.
fn parse_head(buf: &[u8]) -> io::Result<Option<(u16, usize, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    };
    let len = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0);
    if len > MAX_BODY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "response too large",
        ));
    }
    Ok(Some((resp.code.unwrap_or(0), head, len)))
}

/// What one normal client saw.
#[derive(Debug, Default)]
pub struct Normal {
    /// Round trips of requests that should be answered at once, µs (a failed one
    /// counts as [`IO_TIMEOUT`]).
    pub latencies_us: Vec<u64>,
    /// Requests that failed or got an unexpected status.
    pub errors: u64,
    /// Texts this client published (each answered 201).
    pub published: Vec<String>,
    /// Texts of normal clients this client received in poll answers.
    pub seen: HashSet<String>,
    /// Poll answers that said `reset`: the client's cursor fell out of the ring.
    pub resets: u64,
}

impl Normal {
    fn timed<T>(&mut self, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        let t = Instant::now();
        let r = f();
        let took = if r.is_ok() { t.elapsed() } else { IO_TIMEOUT };
        self.latencies_us.push(took.as_micros() as u64);
        if r.is_err() {
            self.errors += 1;
        }
        r
    }

    /// Poll from `cursor` until the answer has no `more` (at most 16 polls). With
    /// `hold` "0" an empty answer comes at once; with "1" a poll with nothing owed
    /// waits up to a second.
    fn catch_up(&mut self, c: &mut Conn, cursor: &mut u64, hold: &str) -> bool {
        for _ in 0..16 {
            let req = get(&format!("/poll?cursor={cursor}&timeout={hold}"), "");
            let Ok((status, body)) = self.timed(|| c.exchange(req.as_bytes())) else {
                return false;
            };
            let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if status != 200 || !answer.is_object() {
                self.errors += 1;
                return false;
            }
            for text in answer["messages"].as_array().into_iter().flatten() {
                if let Some(t) = text["text"].as_str().filter(|t| t.starts_with('n')) {
                    self.seen.insert(t.to_string());
                }
            }
            self.resets += u64::from(answer["reset"] == true);
            *cursor = answer["cursor"].as_u64().unwrap_or(*cursor);
            if answer["more"] != true {
                return true;
            }
        }
        true
    }
}

/// A person in the chat: publish a line, poll until caught up, pause; until `stop`.
/// Then, once every normal client has stopped publishing (`all_stopped`), one last
/// catch-up, so every message published is owed to every client.
pub fn normal_client(
    addr: SocketAddr,
    id: usize,
    mut cursor: u64,
    stop: &AtomicBool,
    all_stopped: &Barrier,
) -> Normal {
    let mut me = Normal::default();
    let (mut pub_conn, mut poll_conn) = (Conn::new(addr), Conn::new(addr));
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let text = format!("n{id}-{seq}");
        seq += 1;
        let req = publish(&text);
        match me.timed(|| pub_conn.exchange(&req)) {
            Ok((201, _)) => me.published.push(text),
            Ok(_) => me.errors += 1,
            Err(_) => {}
        }
        me.catch_up(&mut poll_conn, &mut cursor, "1");
        std::thread::sleep(THINK);
    }
    all_stopped.wait();
    me.catch_up(&mut poll_conn, &mut cursor, "0");
    me
}

/// Everything the clients hand back: sockets to keep open until SIGINT, figures.
#[derive(Default)]
pub struct Gathered {
    pub sockets: Vec<TcpStream>,
    pub pipelined: u64,
    pub normals: Vec<Normal>,
}

/// The normal clients, all starting from `cursor` (the ring already full).
pub fn start_normal(
    addr: SocketAddr,
    n: usize,
    cursor: u64,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<Gathered>> {
    let all_stopped = Arc::new(Barrier::new(n));
    (0..n)
        .map(|id| {
            let (stop, all_stopped) = (stop.clone(), all_stopped.clone());
            std::thread::spawn(move || Gathered {
                normals: vec![normal_client(addr, id, cursor, &stop, &all_stopped)],
                ..Gathered::default()
            })
        })
        .collect()
}

/// The amplifiers: each fills its share of the ring, then (once the whole ring is
/// full, so the normal clients start after it) pipelines its polls.
pub fn start_amplifiers(
    addr: SocketAddr,
    n: usize,
    ring: usize,
) -> (Vec<JoinHandle<Gathered>>, u64) {
    if n == 0 {
        return (Vec::new(), 0);
    }
    let filled = Arc::new(Barrier::new(n + 1));
    let published = Arc::new(AtomicU64::new(0));
    let threads = (0..n)
        .map(|i| {
            let (filled, published) = (filled.clone(), published.clone());
            let share = ring / n + usize::from(i < ring % n);
            std::thread::spawn(move || {
                published.fetch_add(fill_ring(addr, share), Ordering::SeqCst);
                filled.wait();
                Gathered {
                    sockets: amplify_never_read(addr).into_iter().collect(),
                    ..Gathered::default()
                }
            })
        })
        .collect();
    filled.wait();
    (threads, published.load(Ordering::SeqCst))
}

/// The pipelining clients and the `Connection: close` non-readers.
pub fn start_attackers(
    addr: SocketAddr,
    pipeliners: usize,
    closers: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<Gathered>> {
    let mut threads = Vec::new();
    for _ in 0..pipeliners {
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            let (sent, s) = pipeline_never_read(addr, &stop);
            let sockets = s.into_iter().collect();
            Gathered {
                sockets,
                pipelined: sent,
                ..Gathered::default()
            }
        }));
    }
    for _ in 0..closers {
        threads.push(std::thread::spawn(move || Gathered {
            sockets: close_never_read(addr).into_iter().collect(),
            ..Gathered::default()
        }));
    }
    threads
}
