//! # 17 — The long-poll client as `async fn`: example 13 without the callbacks
//!
//! **What it shows.** The same client as `13_longpoll_client`, written as two tasks on
//! one loop. The poller is a plain loop: send `GET /poll?cursor=N&timeout=3`, await the
//! whole answer, print it, go again on the same keep-alive connection. The publisher is
//! another loop: sleep 2 s, connect, `POST /publish`, read until the server closes. In
//! example 13 the poll's state (buffer, cursor, cycles left) had to ride on the handle
//! between callbacks; here it is ordinary local variables of an `async fn`, kept alive
//! across each `.await` by the future itself. When the poller is done, the publisher is
//! simply dropped (`abort`): its sleep's timer is cleared, its connection closed.
//!
//! **Run it.** In one terminal `cargo run -- longpoll`, in another
//! `LOOPLAB_TRACE=1 cargo run --example 17_async_longpoll_client -- 127.0.0.1:8080 5`
//! (the address and how many cycles; add `--no-publish` to watch every poll time out).
//!
//! **Look for** `<- held 2.0 s, got 1 message(s)` for each cycle, and in the trace while a
//! poll is held: `alive: ref'd: 2 task (tasks waiting on: fd 6 readable, sleep 1999 ms)`:
//! the poller (`#0.1`, the future given to `block_on`) waits on its socket, the publisher
//! (`#1.2`) on its timer. Then `#1.2 woken by timer #3.4`, `#1.2 woken by fd 7 writable`
//! (its connect), `closed #3.5` (the publish connection), and
//! `#0.1 woken by fd 6 readable`: the server answered the held poll.
//!
//! **In production** a client also backs off on 503/429 (`Retry-After`), starts over
//! from the answer's cursor on `"reset": true`, and puts a deadline on every request
//! (`task::timeout`).

use looplab::task::{self, TcpStream};
use looplab::Loop;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// A response bigger than this is not one this server sends.
const MAX_RESPONSE: usize = 1024 * 1024;

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Read one whole HTTP response from `conn` (head, then Content-Length bytes of body);
/// bytes after it stay in `buf` for the next one.
async fn read_response(conn: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Vec<u8>> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let body_at = head_end + 4;
            let head = String::from_utf8_lossy(&buf[..body_at]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(Ok(0), |v| v.trim().parse())
                .map_err(|_| bad("a Content-Length that is not a number"))?;
            let end = body_at
                .checked_add(len)
                .filter(|&end| end <= MAX_RESPONSE)
                .ok_or_else(|| bad("a response over 1 MiB"))?;
            if buf.len() >= end {
                let body = buf[body_at..end].to_vec();
                buf.drain(..end);
                return Ok(body);
            }
        } else if buf.len() > MAX_RESPONSE {
            return Err(bad("a response head over 1 MiB"));
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Poll `cycles` times on one keep-alive connection, from cursor 0.
async fn poller(addr: SocketAddr, cycles: u32) -> io::Result<()> {
    let mut conn = TcpStream::connect(addr).await?;
    let (mut cursor, mut buf) = (0u64, Vec::new());
    for _ in 0..cycles {
        let request =
            format!("GET /poll?cursor={cursor}&timeout=3 HTTP/1.1\r\nHost: example\r\n\r\n");
        println!("-> GET /poll?cursor={cursor} (the server holds it until a message or 3 s)");
        let asked = Instant::now();
        conn.write_all(request.as_bytes()).await?;
        let body = read_response(&mut conn, &mut buf).await?;
        let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let messages = answer["messages"].as_array().cloned().unwrap_or_default();
        cursor = answer["cursor"].as_u64().unwrap_or(cursor);
        let held = asked.elapsed().as_secs_f64();
        if messages.is_empty() {
            println!("<- held {held:.1} s, timed out: nothing new (cursor stays {cursor})");
        } else {
            println!(
                "<- held {held:.1} s, got {} message(s), cursor now {cursor}",
                messages.len()
            );
            for m in &messages {
                println!("   #{} {}", m["id"], m["text"]);
            }
        }
    }
    Ok(())
}

/// Every 2 s, publish one message on a fresh connection.
async fn publisher(addr: SocketAddr) -> io::Result<()> {
    for n in 1.. {
        task::sleep(Duration::from_secs(2)).await?;
        let body = format!("{{\"text\":\"tick {n} from the async example\"}}");
        let request = format!(
            "POST /publish HTTP/1.1\r\nHost: example\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut conn = TcpStream::connect(addr).await?;
        conn.write_all(request.as_bytes()).await?;
        // The server answers and closes: read until the end.
        let mut sink = [0u8; 1024];
        while conn.read(&mut sink).await? > 0 {}
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let (flags, args): (Vec<String>, Vec<String>) =
        std::env::args().skip(1).partition(|a| a.starts_with("--"));
    let publishing = match flags.first().map(String::as_str) {
        None => true,
        Some("--no-publish") if flags.len() == 1 => false,
        Some(_) => return Err(bad("the only flag is --no-publish")),
    };
    let addr: SocketAddr = args
        .first()
        .map_or("127.0.0.1:8080", String::as_str)
        .parse()
        .map_err(|_| bad("ADDR must be ip:port"))?;
    let cycles: u32 = args
        .get(1)
        .map_or(Ok(5), |s| s.parse())
        .map_err(|_| bad("CYCLES must be a number"))?;
    let mut lp = Loop::new()?;
    lp.block_on(async move {
        let publishing = publishing.then(|| task::spawn(publisher(addr)));
        let polled = poller(addr, cycles).await;
        if let Some(p) = publishing {
            p.abort(); // dropped at its next .await: timer cleared, connection closed
        }
        polled.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("{e} (is `cargo run -- longpoll` running on {addr}?)"),
            )
        })
    })?
}
