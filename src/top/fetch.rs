//! `looplab top`'s side of the long poll: a plain blocking HTTP/1.1 client on its own
//! thread, asking `/loop/poll?since=ID` again as soon as each window arrives, so the
//! screen changes once per window and the server answers nothing in between.

use crate::servers::metrics_http::view::WindowView;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::mpsc::Sender;
use std::time::Duration;

/// One answer is one window's JSON: a few KiB. More than this is not our server.
const MAX_ANSWER: u64 = 4 * 1024 * 1024;
/// A window comes every second; a server silent this long is stuck or gone.
const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// What the fetching thread tells the screen.
pub enum Fetched {
    /// A new window.
    Window(Box<WindowView>),
    /// The last request failed (the next try is a second away).
    Failed(String),
}

/// `127.0.0.1:9100`, `localhost:9100` or `http://127.0.0.1:9100/loop`: the address.
pub fn resolve(addr: &str) -> io::Result<SocketAddr> {
    let bare = addr.trim().trim_start_matches("http://");
    let host_port = bare.split('/').next().unwrap_or(bare);
    host_port.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{addr}: no address to connect to"),
        )
    })
}

/// Fetch windows from `addr` until the receiver is gone.
pub fn run(addr: SocketAddr, to_screen: Sender<Fetched>) {
    let mut since: Option<u64> = None;
    loop {
        let got = next_window(addr, since);
        let sent = match got {
            Ok(w) => {
                since = Some(w.id);
                to_screen.send(Fetched::Window(Box::new(w)))
            }
            Err(e) => {
                let sent = to_screen.send(Fetched::Failed(e.to_string()));
                std::thread::sleep(Duration::from_secs(1));
                sent
            }
        };
        if sent.is_err() {
            return; // the screen has quit
        }
    }
}

fn next_window(addr: SocketAddr, since: Option<u64>) -> io::Result<WindowView> {
    let path = match since {
        Some(id) => format!("/loop/poll?since={id}"),
        None => "/loop/poll".to_string(),
    };
    let body = get(addr, &path)?;
    serde_json::from_slice(&body)
        .map_err(|e| io::Error::other(format!("{path}: not a window: {e}")))
}

/// GET `path`, one request per connection (`Connection: close`): the body of a 200.
fn get(addr: SocketAddr, path: &str) -> io::Result<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(READ_TIMEOUT))?;
    s.set_write_timeout(Some(READ_TIMEOUT))?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.take(MAX_ANSWER + 1).read_to_end(&mut raw)?;
    if raw.len() as u64 > MAX_ANSWER {
        return Err(io::Error::other(format!(
            "{path}: answer over {MAX_ANSWER} bytes"
        )));
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(&raw) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return Err(io::Error::other(format!("{path}: cut short")))
        }
        Err(e) => return Err(io::Error::other(format!("{path}: not HTTP: {e}"))),
    };
    let status = resp.code.unwrap_or(0);
    let body = raw.split_off(head_len);
    if status != 200 {
        let text = String::from_utf8_lossy(&body);
        return Err(io::Error::other(format!(
            "{path}: {status} {}",
            text.trim()
        )));
    }
    Ok(body)
}
