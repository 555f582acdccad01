//! # 13 — A long-poll client: request, hold, answer, new request
//!
//! **What it shows.** The long-poll cycle from the client's side, on looplab's loop: one
//! connection asks `GET /poll?cursor=N&timeout=3`; the server holds the request until a
//! message is published or 3 s pass; the answer carries the new cursor, and the client
//! asks again at once on the same keep-alive connection. A timer publishes a message
//! every 2 s on a second connection, so you see both kinds of answer: "held 2.0 s, got
//! 1 message" and, if you stop the publisher, "held 3.0 s, timed out".
//!
//! **Run it.** In one terminal `cargo run -- longpoll`, in another
//! `LOOPLAB_TRACE=1 cargo run --example 13_longpoll_client -- 127.0.0.1:8080 5`
//! (the address, and how many cycles). Open http://127.0.0.1:8080/ in a browser to see
//! the same messages arrive in the chat page.
//!
//! **Look for** in the trace: while a poll is held the loop sleeps in
//! `poll ... (next timer #N due in ...)`, waiting for the publish timer; then the events
//! of the publish connection and the poll's answer, in consecutive ticks.
//!
//! **In production** a client also backs off on 503/429 (the server says `Retry-After`),
//! and starts over from the answer's cursor when it says `"reset": true`.

use looplab::{CloseDone, Loop, Read, RunMode, Tcp, WriteDone};
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

struct Poller {
    conn: Option<Tcp>,
    buf: Vec<u8>,
    cursor: u64,
    asked_at: Instant,
    cycles_left: u32,
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
    let poller = Rc::new(RefCell::new(Poller {
        conn: None,
        buf: Vec::new(),
        cursor: 0,
        asked_at: Instant::now(),
        cycles_left: cycles,
    }));

    let p = poller.clone();
    lp.tcp_connect(addr, move |lp, r| match r {
        Ok(conn) => {
            p.borrow_mut().conn = Some(conn);
            let p2 = p.clone();
            if lp
                .read_start(conn, move |lp, conn, ev| on_answer(lp, &p2, conn, ev))
                .is_ok()
            {
                ask(lp, &p);
            }
        }
        Err(e) => eprintln!("cannot connect to {addr}: {e} (is `looplab longpoll` running?)"),
    })?;

    // Publish every 2 s on a fresh connection; unref'd, so only the poller holds the loop.
    let mut n = 0;
    let publisher = lp.set_interval(Duration::from_secs(2), move |lp| {
        n += 1;
        let body = format!("{{\"text\":\"tick {n} from the example\"}}");
        let request = format!(
            "POST /publish HTTP/1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let sent = lp.tcp_connect(addr, move |lp, r| {
            if let Ok(conn) = r {
                let _ = lp.write(conn, request.as_bytes(), None::<WriteDone>);
                let _ = lp.read_start(conn, |lp, conn, ev| {
                    if !matches!(ev, Read::Data(_)) {
                        lp.close(conn, None::<CloseDone>); // the server closes after answering
                    }
                });
            }
        });
        if let Err(e) = sent {
            eprintln!("publish failed: {e}");
        }
    });
    lp.unref(publisher);
    lp.run(RunMode::Default)?;
    Ok(())
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

/// Send the next poll on the kept-alive connection.
fn ask(lp: &mut Loop, p: &Rc<RefCell<Poller>>) {
    let mut p = p.borrow_mut();
    let Some(conn) = p.conn else { return };
    p.asked_at = Instant::now();
    let request = format!(
        "GET /poll?cursor={}&timeout=3 HTTP/1.1\r\nHost: example\r\n\r\n",
        p.cursor
    );
    println!(
        "-> GET /poll?cursor={} (the server holds it until a message or 3 s)",
        p.cursor
    );
    if lp
        .write(conn, request.as_bytes(), None::<WriteDone>)
        .is_err()
    {
        lp.close(conn, None::<CloseDone>);
    }
}

fn on_answer(lp: &mut Loop, p: &Rc<RefCell<Poller>>, conn: Tcp, ev: Read<'_>) {
    let data = match ev {
        Read::Data(d) => d,
        Read::Eof | Read::Error(_) => {
            println!("the server closed the connection");
            lp.close(conn, None::<CloseDone>);
            return;
        }
    };
    let body = {
        let mut st = p.borrow_mut();
        st.buf.extend_from_slice(data);
        match take_response(&mut st.buf) {
            Some(body) => body,
            None => return, // not all of it yet
        }
    };
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let messages = answer["messages"].as_array().cloned().unwrap_or_default();
    let done = {
        let mut st = p.borrow_mut();
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
        st.cycles_left == 0
    };
    if done {
        lp.close(conn, None::<CloseDone>);
    } else {
        ask(lp, p); // straight back in: that is long polling
    }
}

/// Cut one whole response off the front of `buf`; its body, or `None` if incomplete.
fn take_response(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if buf.len() < head_end + len {
        return None;
    }
    let body = buf[head_end..head_end + len].to_vec();
    buf.drain(..head_end + len);
    Some(body)
}
