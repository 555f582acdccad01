//! # 13 — A long-poll client: request, hold, answer, new request
//!
//! **What it shows.** The long-poll cycle from the client's side, on looplab's loop: one
//! connection asks `GET /poll?cursor=N&timeout=3`; the server holds the request until a
//! message is published or 3 s pass; the answer carries the new cursor, and the client
//! asks again at once on the same keep-alive connection. A timer publishes a message
//! every 2 s on a fresh connection, so the answer is "held 2.0 s, got 1 message"; with
//! `--no-publish` nothing is published and every answer is "held 3.0 s, timed out". The
//! client starts at cursor 0, so on a server that already holds messages the first
//! answer comes at once with all of them: start a fresh server to see every poll held.
//! The poll connection's state (its buffer, cursor, cycles left) rides on its handle
//! (`lp.set_data`); the publisher writes its request right after `tcp_connect`, and the
//! write waits in the stream's queue until the connection is made.
//!
//! **Run it.** In one terminal `cargo run -- longpoll`, in another
//! `LOOPLAB_TRACE=1 cargo run --example 13_longpoll_client -- 127.0.0.1:8080 5`
//! (the address, how many cycles, and `--no-publish` if you like). Open
//! http://127.0.0.1:8080/ in a browser to see the same messages arrive in the chat page.
//!
//! **Look for** in the trace: while a poll is held the loop is
//! `sleeping up to 2000.7ms (next timer #1.2 due in 2000.7ms)`, waiting for the publish
//! timer (`alive: ref'd: 1 tcp; ...; unref'd: 1 timer`: only the poll holds the loop);
//! then `timers fired #1.2` with `2 request(s) in flight` (the publish connect and its
//! queued write), the publish connection's events, and `fd 6 r -> tcp #0.1` among a
//! later tick's events: the poll's answer (on a busy machine it may share that tick with the
//! publish connection's hangup).
//!
//! **In production** a client also backs off on 503/429 (the server says `Retry-After`),
//! and starts over from the answer's cursor when it says `"reset": true`.

use looplab::{Loop, ReadEvent, RunMode, Tcp};
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// A response bigger than this is not one this server sends: the client gives up on it
/// rather than buffer without end.
const MAX_RESPONSE: usize = 1024 * 1024;

/// What the client keeps for its poll connection, on the connection's handle
/// (`lp.set_data`, libuv's `handle->data`): no `Rc<RefCell<..>>` beside the loop.
struct PollConn {
    buf: Vec<u8>,
    cursor: u64,
    asked_at: Instant,
    cycles_left: u32,
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("13_longpoll_client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
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

    let conn = lp.tcp_connect(addr, move |lp, conn, r| match r {
        Ok(()) => ask(lp, conn),
        Err(e) => {
            eprintln!("cannot connect to {addr}: {e} (is `looplab longpoll` running?)");
            lp.close(conn); // a failed connect leaves the stream open, as in libuv
        }
    })?;
    lp.set_data(
        conn,
        PollConn {
            buf: Vec::new(),
            cursor: 0,
            asked_at: Instant::now(),
            cycles_left: cycles,
        },
    );
    // Reading may start before the connect completes: it begins once connected.
    lp.read_start(conn, on_answer)?;

    // Publish every 2 s on a fresh connection; unref'd, so only the poller holds the loop.
    let mut n = 0;
    if publishing {
        let publisher = lp.set_interval(Duration::from_secs(2), move |lp, _| {
            n += 1;
            if let Err(e) = publish(lp, addr, n) {
                eprintln!("publish failed: {e}");
            }
        });
        lp.unref_handle(publisher);
    }
    lp.run(RunMode::Default)?;
    Ok(())
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

/// POST one message on its own connection. The request is written at once: a write made
/// while the stream is still connecting waits in its queue for the connection.
fn publish(lp: &mut Loop, addr: SocketAddr, n: u32) -> io::Result<()> {
    let body = format!("{{\"text\":\"tick {n} from the example\"}}");
    let request = format!(
        "POST /publish HTTP/1.1\r\nHost: example\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let conn = lp.tcp_connect(addr, |lp, conn, r| {
        if r.is_err() {
            lp.close(conn);
        }
    })?;
    lp.write(conn, request)?;
    // The server answers and closes: read until EOF, then close our side. An answer
    // other than 201 Created is said (a 429 when publishing too fast, say).
    let mut first = true;
    lp.read_start(conn, move |lp, conn, ev| match ev {
        ReadEvent::Data(bytes) => {
            if std::mem::take(&mut first) && !bytes.starts_with(b"HTTP/1.1 201") {
                let status = String::from_utf8_lossy(bytes);
                let status = status.lines().next().unwrap_or("");
                eprintln!("publish {n} was refused: {status}");
            }
        }
        ReadEvent::Eof | ReadEvent::Error(_) => {
            lp.close(conn);
        }
    })
}

/// Send the next poll on the kept-alive connection.
fn ask(lp: &mut Loop, conn: Tcp) {
    let Some(st) = lp.data_mut::<PollConn>(conn) else {
        return;
    };
    st.asked_at = Instant::now();
    let cursor = st.cursor;
    let request = format!("GET /poll?cursor={cursor}&timeout=3 HTTP/1.1\r\nHost: example\r\n\r\n");
    println!("-> GET /poll?cursor={cursor} (the server holds it until a message or 3 s)");
    if lp.write(conn, request).is_err() {
        lp.close(conn);
    }
}

fn on_answer(lp: &mut Loop, conn: Tcp, ev: ReadEvent<'_>) {
    let data = match ev {
        ReadEvent::Data(d) => d,
        ReadEvent::Eof | ReadEvent::Error(_) => {
            println!("the server closed the connection");
            lp.close(conn);
            return;
        }
    };
    let Some(st) = lp.data_mut::<PollConn>(conn) else {
        return;
    };
    st.buf.extend_from_slice(data);
    let body = match take_response(&mut st.buf) {
        Ok(Some(body)) => body,
        Ok(None) => return, // not all of it yet
        Err(e) => {
            eprintln!("giving up on the connection: {e}");
            lp.close(conn);
            return;
        }
    };
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let messages = answer["messages"].as_array().cloned().unwrap_or_default();
    let held = st.asked_at.elapsed();
    st.cursor = answer["cursor"].as_u64().unwrap_or(st.cursor);
    if messages.is_empty() {
        println!(
            "<- held {:.1} s, timed out: nothing new (cursor stays {})",
            held.as_secs_f64(),
            st.cursor
        );
    } else {
        println!(
            "<- held {:.1} s, got {} message(s), cursor now {}",
            held.as_secs_f64(),
            messages.len(),
            st.cursor
        );
        for m in &messages {
            println!("   #{} {}", m["id"], m["text"]);
        }
    }
    st.cycles_left = st.cycles_left.saturating_sub(1);
    if st.cycles_left == 0 {
        lp.close(conn);
    } else {
        ask(lp, conn); // straight back in: that is long polling
    }
}

/// Cut one whole response off the front of `buf`: its body, `None` if incomplete, an
/// error if it cannot be one (too big, or a length that does not add up).
fn take_response(buf: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    let too_big = || bad("a response over 1 MiB");
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_RESPONSE {
            Err(too_big())
        } else {
            Ok(None)
        };
    };
    let head_end = head_end + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(Ok(0), |v| v.trim().parse())
        .map_err(|_| bad("a Content-Length that is not a number"))?;
    let end = head_end
        .checked_add(len)
        .filter(|&end| end <= MAX_RESPONSE)
        .ok_or_else(too_big)?;
    if buf.len() < end {
        return Ok(None);
    }
    let body = buf[head_end..end].to_vec();
    buf.drain(..end);
    Ok(Some(body))
}
