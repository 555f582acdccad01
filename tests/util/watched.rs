//! A server child started with `--metrics-addr` (both addresses read from its first two
//! lines; killed when dropped), and echo load from client threads that stop by
//! themselves: the test says when, and a deadline says when at the latest.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `looplab ARGS --metrics-addr 127.0.0.1:0`.
pub struct ServerWithMetrics {
    child: Child,
    pub addr: SocketAddr,
    pub metrics: SocketAddr,
}

impl ServerWithMetrics {
    pub fn start(args: &[&str]) -> ServerWithMetrics {
        let mut child = Command::new(env!("CARGO_BIN_EXE_looplab"))
            .args(args)
            .args(["--metrics-addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the looplab binary");
        let mut out = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (mut first, mut second) = (String::new(), String::new());
        out.read_line(&mut first).unwrap();
        out.read_line(&mut second).unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .expect("listening on");
        let addr = addr.trim_start_matches("http://").trim_end_matches('/');
        let metrics = second
            .strip_prefix("metrics on http://")
            .expect("metrics on");
        let metrics = metrics.split('/').next().unwrap();
        ServerWithMetrics {
            child,
            addr: addr.parse().unwrap(),
            metrics: metrics.parse().unwrap(),
        }
    }
}

impl Drop for ServerWithMetrics {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Echo round trips from `threads` threads of `conns` connections each, until dropped
/// or `limit` passes.
pub struct EchoLoad {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<u64>>,
}

impl EchoLoad {
    pub fn start(addr: SocketAddr, threads: usize, conns: usize, limit: Duration) -> EchoLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + limit;
        let threads = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || echo_until(addr, conns, &stop, deadline))
            })
            .collect();
        EchoLoad { stop, threads }
    }

    /// Stop and return the round trips made.
    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.drain(..).map(|t| t.join().unwrap_or(0)).sum()
    }
}

impl Drop for EchoLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn echo_until(addr: SocketAddr, conns: usize, stop: &AtomicBool, deadline: Instant) -> u64 {
    let mut streams: Vec<TcpStream> = (0..conns)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    for s in &streams {
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    }
    let mut done = 0;
    let mut buf = [0u8; 32];
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        for s in &mut streams {
            if s.write_all(&buf).is_err() || s.read_exact(&mut buf).is_err() {
                return done;
            }
            done += 1;
        }
    }
    done
}
