//! `looplab bench --waiters N`: the long-poll experiment. N clients each hold a poll on
//! `looplab longpoll` (a child process, as in the echo bench); with all N held we read
//! the server's memory, then publish one message and time how long until the last of
//! the N answers has arrived. It is the C10K question asked of idle connections: what
//! does a held request cost, and how fast can one thread answer them all?

use super::procstat;
use crate::{Loop, ReadEvent, RunMode, Tcp};
use std::cell::RefCell;
use std::io::{self, BufRead, BufReader, Read as _, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the experiment measured.
#[derive(Clone, Debug)]
pub struct WaitersReport {
    /// Polls held.
    pub waiters: usize,
    /// Server RSS before any client, and with all polls held, KiB.
    pub rss_idle_kib: u64,
    /// With every poll held.
    pub rss_held_kib: u64,
    /// Server threads with every poll held.
    pub threads: u64,
    /// From sending the publish to the last answer read by the clients.
    pub publish_to_last: Duration,
    /// The server's share: from taking the publish up to the last answer written (its
    /// `/stats` `last_fanout_us`).
    pub server_fanout: Duration,
    /// CPU time the server's loop thread used from the publish to the last answer read
    /// (Linux: `/proc/PID/schedstat`). Unlike the times above it does not grow when other
    /// processes take the CPU: on a shared machine it is the figure to compare.
    pub server_cpu: Option<Duration>,
    /// Answers that carried the published message.
    pub answered: usize,
}

struct Clients {
    conns: Vec<Tcp>,
    bufs: Vec<Vec<u8>>,
    answered: usize,
    sent: usize,
    last: Option<Instant>,
}

/// Run the experiment with `n` held polls.
pub fn run(n: usize, pin: Option<&(Vec<usize>, Vec<usize>)>) -> io::Result<WaitersReport> {
    if let Some((_, server_cpus)) = pin {
        crate::sys::affinity::pin_current_thread(server_cpus)?;
    }
    let exe = std::env::current_exe()?;
    let max = (n + 100).to_string();
    let spawned = Command::new(exe)
        .args([
            "longpoll",
            "--addr",
            "127.0.0.1:0",
            "--poll-timeout",
            "120s",
            "--max-waiters",
            &max,
            "--idle-timeout",
            "120s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    if let Some((client_cpus, _)) = pin {
        crate::sys::affinity::pin_current_thread(client_cpus)?;
    }
    let mut child = spawned?;
    let mut line = String::new();
    BufReader::new(
        child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?,
    )
    .read_line(&mut line)?;
    let result = (|| {
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening on http://")
            .map(|a| a.trim_end_matches('/'))
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| {
                io::Error::other(format!("longpoll did not say where it listens: {line:?}"))
            })?;
        let pid = child.id();
        let rss_idle_kib = procstat::sample(pid)?.rss_kib;
        let (ready_tx, ready_rx) = mpsc::channel();
        let clients = std::thread::spawn(move || hold_polls(addr, n, pid, &ready_tx));
        ready_rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| io::Error::other("the clients did not connect"))?;
        wait_for_waiters(addr, n)?;
        let held = procstat::sample(pid)?;
        let cpu0 = loop_cpu(pid);
        let t0 = Instant::now();
        let status = http_post(addr, "/publish", r#"{"text":"to every waiter"}"#)?;
        if status != 201 {
            return Err(io::Error::other(format!("publish answered {status}")));
        }
        let (answered, last, cpu1) = clients
            .join()
            .map_err(|_| io::Error::other("the client thread panicked"))??;
        let stats: serde_json::Value =
            serde_json::from_str(&http_get(addr, "/stats")?).map_err(io::Error::other)?;
        let fanout_us = stats["last_fanout_us"].as_u64().unwrap_or(0);
        Ok(WaitersReport {
            waiters: n,
            rss_idle_kib,
            rss_held_kib: held.rss_kib,
            threads: held.threads,
            publish_to_last: last.map_or(Duration::ZERO, |l| l.saturating_duration_since(t0)),
            server_fanout: Duration::from_micros(fanout_us),
            server_cpu: cpu0.zip(cpu1).map(|(a, b)| b.saturating_sub(a)),
            answered,
        })
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}

/// Open `n` connections, each with a held poll; signal `ready`, then run until every
/// one is answered (or 60 s pass). Returns (answers, when the last came, the server's
/// loop CPU time then).
fn hold_polls(
    addr: SocketAddr,
    n: usize,
    server: u32,
    ready: &mpsc::Sender<()>,
) -> io::Result<(usize, Option<Instant>, Option<Duration>)> {
    let mut lp = Loop::builder().threadpool_size(1).build()?;
    let st = Rc::new(RefCell::new(Clients {
        conns: Vec::new(),
        bufs: vec![Vec::new(); n],
        answered: 0,
        sent: 0,
        last: None,
    }));
    let mut opened = 0;
    while opened < n {
        let batch = 200.min(n - opened);
        for i in opened..opened + batch {
            let s = st.clone();
            lp.tcp_connect(addr, move |lp, conn, r| {
                if r.is_err() {
                    lp.close(conn);
                    return;
                }
                s.borrow_mut().conns.push(conn);
                let request = "GET /poll?cursor=0&timeout=120 HTTP/1.1\r\nHost: bench\r\n\r\n";
                if lp.write(conn, request).is_ok() {
                    s.borrow_mut().sent += 1;
                }
                let s2 = s.clone();
                let _ = lp.read_start(conn, move |lp, conn, ev| on_data(lp, &s2, i, conn, ev));
            })?;
        }
        opened += batch;
        while st.borrow().sent < opened {
            if !lp.run(RunMode::Once)? {
                break;
            }
        }
    }
    let _ = ready.send(());
    let deadline = lp.set_timeout(Duration::from_secs(60), |lp, _| lp.stop());
    lp.unref_handle(deadline);
    lp.run(RunMode::Default)?;
    let cpu = loop_cpu(server);
    let conns: Vec<Tcp> = st.borrow_mut().conns.drain(..).collect();
    for c in conns {
        lp.close(c);
    }
    lp.run(RunMode::NoWait)?;
    let s = st.borrow();
    Ok((s.answered, s.last, cpu))
}

/// CPU time (user and kernel) of process `pid`'s main thread, the server's loop: the
/// first field of `/proc/PID/schedstat`, in ns. `None` where there is no such file.
fn loop_cpu(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// The published text, as the answers carry it.
const MARKER: &[u8] = b"to every waiter";

/// One client's bytes. The answer is complete when it carries the message; the stream
/// stays open and read (a `read_stop` per answer would be one more syscall on the path
/// being timed, and the server sends nothing more).
fn on_data(lp: &mut Loop, st: &Rc<RefCell<Clients>>, i: usize, conn: Tcp, ev: ReadEvent<'_>) {
    let ReadEvent::Data(d) = ev else {
        lp.close(conn);
        return;
    };
    let mut s = st.borrow_mut();
    let buf = &mut s.bufs[i];
    buf.extend_from_slice(d);
    if !buf.windows(MARKER.len()).any(|w| w == MARKER) {
        return;
    }
    buf.clear();
    s.answered += 1;
    s.last = Some(Instant::now());
    if s.answered == s.bufs.len() {
        lp.stop();
    }
}

fn wait_for_waiters(addr: SocketAddr, n: usize) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = http_get(addr, "/stats")?;
        let stats: serde_json::Value = serde_json::from_str(&body).map_err(io::Error::other)?;
        if stats["waiters"].as_u64() == Some(n as u64) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "only {} of {n} polls were held",
                stats["waiters"]
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn http_get(addr: SocketAddr, path: &str) -> io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

fn http_post(addr: SocketAddr, path: &str, body: &str) -> io::Result<u16> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

/// Print the experiment's figures.
pub fn print(r: &WaitersReport) {
    let per = r.rss_held_kib.saturating_sub(r.rss_idle_kib) as f64 / r.waiters.max(1) as f64;
    println!(
        "long-poll: {} held polls on one `looplab longpoll` process",
        r.waiters
    );
    println!("  server RSS idle {:.1} MiB, with every poll held {:.1} MiB ({per:.2} KiB per held poll), {} thread(s)",
        r.rss_idle_kib as f64 / 1024.0, r.rss_held_kib as f64 / 1024.0, r.threads);
    println!(
        "  one publish -> last of {} answers read: {:.1} ms ({} answered; the server wrote them in {:.1} ms)",
        r.waiters,
        r.publish_to_last.as_secs_f64() * 1e3,
        r.answered,
        r.server_fanout.as_secs_f64() * 1e3
    );
    if let Some(cpu) = r.server_cpu {
        println!(
            "  server loop CPU from the publish to the last answer: {:.1} ms",
            cpu.as_secs_f64() * 1e3
        );
    }
}
