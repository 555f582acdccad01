//! A long-poll server on its own loop thread, for the in-process tests
//! (`tests/longpoll.rs`, `tests/longpoll_limits.rs`, `tests/http_parse.rs`).
#![allow(dead_code)]

use super::util::http::get;
use looplab::servers::longpoll::{LongPoll, LongPollConfig, LongPollStats};
use looplab::{Backend, Loop, RunMode};
use serde_json::Value;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A long-poll server on its own loop thread; `stop` shuts it down gracefully.
pub struct Server {
    pub addr: SocketAddr,
    stop: looplab::AsyncSender,
    thread: std::thread::JoinHandle<LongPollStats>,
}

impl Server {
    pub fn start(
        backend: Backend,
        tweak: impl FnOnce(&mut LongPollConfig) + Send + 'static,
    ) -> Server {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut lp = Loop::builder()
                .backend(backend)
                .threadpool_size(1)
                .build()
                .unwrap();
            let mut cfg = LongPollConfig {
                addr: "127.0.0.1:0".parse().unwrap(),
                ..LongPollConfig::default()
            };
            tweak(&mut cfg);
            let server = LongPoll::listen(&mut lp, cfg).unwrap();
            let s = server.clone();
            let (h, stop) = lp.async_handle(move |lp, me| {
                s.shutdown(lp);
                lp.close(me);
            });
            lp.unref_handle(h);
            tx.send((server.local_addr(&lp).unwrap(), stop)).unwrap();
            lp.run(RunMode::Default).unwrap();
            assert!(
                lp.handles().is_empty(),
                "handles left after shutdown: {:?}",
                lp.handles()
            );
            server.stats()
        });
        let (addr, stop) = rx.recv().unwrap();
        Server { addr, stop, thread }
    }

    pub fn stats(&self) -> Value {
        get(self.addr, "/stats").json()
    }

    /// Wait until /stats satisfies `ok` (bounded).
    pub fn wait_for(&self, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.stats();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {s}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether the server thread is still running (it panics on a server bug).
    pub fn alive(&self) -> bool {
        !self.thread.is_finished()
    }

    pub fn stop(self) -> LongPollStats {
        self.stop.send();
        self.thread.join().expect("the server thread ends cleanly")
    }
}

/// The ids of a poll answer's messages.
pub fn ids(v: &Value) -> Vec<u64> {
    v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect()
}

impl Server {
    /// Shut down and wait at most `limit` for the loop to exit; if it has not, run
    /// `give_up` (drop the clients that hold it) and wait for it. Returns the stats and
    /// whether it exited within `limit`.
    pub fn stop_within(self, limit: Duration, give_up: impl FnOnce()) -> (LongPollStats, bool) {
        self.stop.send();
        let deadline = Instant::now() + limit;
        while !self.thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let in_time = self.thread.is_finished();
        if !in_time {
            give_up();
        }
        let stats = self.thread.join().expect("the server thread ends cleanly");
        (stats, in_time)
    }
}

/// Send `raw` on a fresh connection and read until the server closes it or `wait`
/// passes with nothing more. Returns what came and whether the server closed.
pub fn exchange(addr: SocketAddr, raw: &[u8], wait: Duration) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(addr).expect("connecting to the test server");
    s.set_read_timeout(Some(wait)).unwrap();
    // The server may close before taking every byte (that is the point of some tests).
    let _ = s.write_all(raw);
    let mut got = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => return (got, true),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return (got, true),
            Err(_) => return (got, false),
        }
    }
}

/// The status of every response in `bytes` (responses start a line with `HTTP/1.1 `).
pub fn statuses(bytes: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(bytes);
    text.split("\r\n")
        .filter_map(|line| line.strip_prefix("HTTP/1.1 "))
        .filter_map(|rest| rest.get(..3)?.parse().ok())
        .collect()
}

/// A client whose receive buffer is tiny, so what the server sends it stays queued in
/// the server instead of in the kernel.
pub fn small_window_client(addr: SocketAddr) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None).unwrap();
    s.set_recv_buffer_size(4096).unwrap();
    s.connect(&addr.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}
