//! Replicas to race against (tests/replicate.rs, tests/happy_eyeballs.rs): a server
//! thread that answers one request after a delay and reports a client that left first,
//! a dead address, and a black-holed listener whose connects hang.

use looplab::task::TcpStream;
use socket2::{Domain, Socket, Type};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a replica thread waits for its one client before it gives up.
const ACCEPT_WITHIN: Duration = Duration::from_secs(20);

/// What a replica thread saw of its client.
#[derive(Debug, PartialEq, Eq)]
pub enum Saw {
    /// It answered.
    Answered,
    /// The client closed before the answer was due.
    Left,
    /// Nobody connected (or the connection broke).
    Nothing,
}

/// A replica on its own thread; `saw` says what happened, once.
pub struct Replica {
    pub addr: SocketAddr,
    pub saw: mpsc::Receiver<Saw>,
}

/// Serve one request: read a line, then answer `answer` after `delay`, unless the client
/// closes first (`Saw::Left`). `answer` empty: close without answering.
pub fn replica(delay: Duration, answer: &'static str) -> Replica {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, saw) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(serve_one(&listener, delay, answer).unwrap_or(Saw::Nothing));
    });
    Replica { addr, saw }
}

fn serve_one(listener: &TcpListener, delay: Duration, answer: &str) -> io::Result<Saw> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + ACCEPT_WITHIN;
    let mut conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => return Err(e),
        }
    };
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(ACCEPT_WITHIN))?;
    let mut buf = [0u8; 64];
    if conn.read(&mut buf)? == 0 {
        return Ok(Saw::Left);
    }
    // Wait out the delay watching for the client's FIN: a cancelled request shows here.
    let until = Instant::now() + delay;
    while let Some(left) = until
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
    {
        conn.set_read_timeout(Some(left))?;
        match conn.read(&mut buf) {
            Ok(0) => return Ok(Saw::Left),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(Saw::Left),
            Err(e) => return Err(e),
        }
    }
    conn.write_all(answer.as_bytes())?;
    Ok(Saw::Answered)
}

impl Replica {
    /// What the replica saw, waiting at most 20 s.
    pub fn saw(&self) -> Saw {
        self.saw.recv_timeout(ACCEPT_WITHIN).unwrap_or(Saw::Nothing)
    }
}

/// An address nobody listens on: connecting is refused at once.
pub fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// The client side of one request, as a task: connect, send a line, read to EOF. An
/// empty answer is an error (the replica hung up).
pub async fn ask(addr: SocketAddr) -> io::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(b"ping\n").await?;
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf).await? {
            0 => break,
            n => out.extend_from_slice(&buf[..n]),
        }
    }
    if out.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{addr} hung up without an answer"),
        ));
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// A listener that never accepts, with its accept queue already full: the kernel drops
/// further SYNs, so a connect to it hangs (until the client gives up), as to an address
/// that a firewall black-holes. Keep it (and the connections that filled it) alive for
/// as long as the address must stay black.
pub struct BlackHole {
    pub addr: SocketAddr,
    _listener: Socket,
    _filling: Vec<std::net::TcpStream>,
}

pub fn black_hole() -> BlackHole {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    listener.bind(&any.into()).unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut filling = Vec::new();
    // Linux lets backlog + 1 connections wait; a few more than that to be sure.
    for _ in 0..16 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => filling.push(s),
            Err(_) => {
                return BlackHole {
                    addr,
                    _listener: listener,
                    _filling: filling,
                }
            }
        }
    }
    panic!("the accept queue of {addr} never filled: connects do not hang here");
}
