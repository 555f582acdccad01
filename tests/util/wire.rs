//! Raw HTTP/1.1 on a blocking socket, for tests that play a hostile client: send any
//! bytes, then read back whatever comes (a response, a close, or nothing before the
//! timeout) without ever panicking on what the server sends.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The largest body a test accepts: more is reported as garbled, not buffered.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// One response as read off the wire.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why no response could be read.
#[derive(Debug)]
pub enum NoAnswer {
    /// The server closed (or reset) the connection first.
    Closed,
    /// Nothing complete arrived within the read timeout.
    TimedOut,
    /// The bytes were not an HTTP response.
    Garbled(String),
    /// Any other socket error.
    Failed(io::Error),
}

/// A client connection and the bytes read but not yet taken.
pub struct Wire {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    /// Connect with `timeout` on connect, reads and writes.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<Wire> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        Ok(Wire {
            stream,
            buf: Vec::new(),
        })
    }

    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Read one response, its body framed by Content-Length.
    pub fn answer(&mut self) -> Result<Answer, NoAnswer> {
        self.read_answer(false)
    }

    /// Read one response to a HEAD request: a head, never a body.
    pub fn answer_to_head(&mut self) -> Result<Answer, NoAnswer> {
        self.read_answer(true)
    }

    /// True if the server closes the connection within the read timeout; whatever it
    /// sends before closing is read and dropped.
    pub fn closed(&mut self) -> bool {
        self.buf.clear();
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return is_reset(&e),
            }
        }
    }

    fn read_answer(&mut self, head_only: bool) -> Result<Answer, NoAnswer> {
        let (status, headers, head_len) = loop {
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            self.fill()?;
        };
        let len = match headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        {
            _ if head_only || status == 100 => 0,
            None => 0,
            Some((_, v)) => v
                .parse::<usize>()
                .ok()
                .filter(|&n| n <= MAX_BODY)
                .ok_or_else(|| NoAnswer::Garbled(format!("Content-Length {v:?}")))?,
        };
        while self.buf.len() < head_len + len {
            self.fill()?;
        }
        let body = self.buf[head_len..head_len + len].to_vec();
        self.buf.drain(..head_len + len);
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    fn fill(&mut self) -> Result<(), NoAnswer> {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            return match self.stream.read(&mut chunk) {
                Ok(0) => Err(NoAnswer::Closed),
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    Err(NoAnswer::TimedOut)
                }
                Err(e) if is_reset(&e) => Err(NoAnswer::Closed),
                Err(e) => Err(NoAnswer::Failed(e)),
            };
        }
    }
}

fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted
    )
}

type Head = (u16, Vec<(String, String)>, usize);

/// A whole response head at the start of `buf`, `None` if more is needed.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, NoAnswer> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() > 64 * 1024 => {
            Err(NoAnswer::Garbled("a response head over 64 KiB".into()))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(n)) => {
            let headers = resp
                .headers
                .iter()
                .map(|h| {
                    let v = String::from_utf8_lossy(h.value).trim().to_string();
                    (h.name.to_string(), v)
                })
                .collect();
            Ok(Some((resp.code.unwrap_or(0), headers, n)))
        }
        Err(e) => {
            let start = String::from_utf8_lossy(&buf[..buf.len().min(80)]).into_owned();
            Err(NoAnswer::Garbled(format!("{e}: {start:?}")))
        }
    }
}

/// A request with `Host: test` and, for a body, its Content-Length.
pub fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: test\r\n");
    for (n, v) in headers {
        r.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

/// `POST /publish` of `text` (already JSON-escaped), as the chat page sends it.
pub fn publish_request(escaped_text: &str) -> Vec<u8> {
    let body = format!(r#"{{"text":"{escaped_text}"}}"#);
    request(
        "POST",
        "/publish",
        &[("Content-Type", "application/json")],
        &body,
    )
}

/// One request on a fresh connection that asks to be closed after it.
pub fn once(addr: SocketAddr, raw: &[u8], timeout: Duration) -> Result<Answer, NoAnswer> {
    let mut w = Wire::connect(addr, timeout).map_err(NoAnswer::Failed)?;
    w.send(raw).map_err(NoAnswer::Failed)?;
    w.answer()
}

/// `GET target` on a fresh connection.
pub fn get(addr: SocketAddr, target: &str, timeout: Duration) -> Result<Answer, NoAnswer> {
    once(
        addr,
        &request("GET", target, &[("Connection", "close")], ""),
        timeout,
    )
}
