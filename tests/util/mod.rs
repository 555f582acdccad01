//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod attack;
pub mod browser;
pub mod child;
pub mod echo_cases;
pub mod group;
pub mod http;
pub mod process;
pub mod prometheus;
pub mod replicas;
pub mod tcp;
pub mod trace;
pub mod watched;
pub mod wire;

use looplab::{Backend, Loop, Trigger};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

thread_local! {
    /// The trigger `new_loop` builds with, while `on_every_backend` runs a pass that is
    /// not the backend's own (`None`: the backend's default).
    static TRIGGER: std::cell::Cell<Option<Trigger>> = const { std::cell::Cell::new(None) };
}

/// Run `test` once per backend this OS offers (Epoll and Mio on Linux), and once more on
/// the raw backend edge-triggered (the loops `new_loop` makes), naming the backend in
/// any panic so a failure says where it failed.
pub fn on_every_backend(test: impl Fn(Backend)) {
    let raw = Backend::default_for_os();
    let mut passes: Vec<(Backend, Option<Trigger>)> = Backend::available()
        .into_iter()
        .map(|b| (b, None))
        .collect();
    if Trigger::default_for(raw) == Trigger::Level {
        passes.push((raw, Some(Trigger::Edge)));
    }
    for (backend, trigger) in passes {
        TRIGGER.with(|t| t.set(trigger));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(backend)));
        TRIGGER.with(|t| t.set(None));
        if let Err(e) = result {
            match trigger {
                Some(t) => eprintln!("-- failed on the {backend} backend, {t}-triggered --"),
                None => eprintln!("-- failed on the {backend} backend --"),
            }
            std::panic::resume_unwind(e);
        }
    }
}

/// A loop on `backend` with a small pool, as the tests use it (edge-triggered during
/// `on_every_backend`'s edge pass).
pub fn new_loop(backend: Backend) -> Loop {
    let mut builder = Loop::builder().backend(backend).threadpool_size(2);
    if let Some(trigger) = TRIGGER.with(|t| t.get()) {
        builder = builder.trigger(trigger);
    }
    builder.build().expect("building a loop")
}

/// Fail the test if `lp` is still running after `limit`: a lost wakeup must fail a test,
/// not hang it. The guard timer is unref'd, so it never holds the loop by itself; it only
/// fires if something else keeps the loop waiting that long.
pub fn fail_after(lp: &mut Loop, limit: Duration) {
    let t = lp.set_timeout(limit, move |lp, _| {
        panic!(
            "the loop was still waiting after {limit:?}: {}",
            lp.explain_alive()
        )
    });
    lp.unref_handle(t);
}

/// A blocking client with timeouts, so a broken server fails a test instead of hanging it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connecting to the test server");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Send `msg` and read back exactly as many bytes.
pub fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).unwrap();
    back
}

use looplab::servers::echo::{Echo, EchoConfig, EchoStats};
use looplab::{Backend as B, HandleKind, RunMode};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::mpsc;

/// What an echo server on a loop thread reports when asked.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub stats: EchoStats,
    pub tcp_handles: usize,
    pub listeners: usize,
}

/// An echo server running on its own loop thread, driven through async handles.
pub struct LoopEcho {
    pub addr: SocketAddr,
    ask: looplab::AsyncSender,
    stop: looplab::AsyncSender,
    answers: mpsc::Receiver<Snapshot>,
    thread: std::thread::JoinHandle<Snapshot>,
}

fn snapshot(lp: &looplab::Loop, echo: &Echo) -> Snapshot {
    let handles = lp.handles();
    let count = |k| handles.iter().filter(|h| h.kind == k && !h.closing).count();
    Snapshot {
        stats: echo.stats(),
        tcp_handles: count(HandleKind::Tcp),
        listeners: count(HandleKind::Listener),
    }
}

impl LoopEcho {
    pub fn start(backend: B, max_conns: usize) -> LoopEcho {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (answer_tx, answers) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut lp = new_loop(backend);
            let config = EchoConfig {
                addr: "127.0.0.1:0".parse().unwrap(),
                max_conns,
                idle_timeout: None,
            };
            let echo = Echo::listen(&mut lp, config).unwrap();
            let addr = echo.local_addr(&lp).unwrap();
            let e = echo.clone();
            let (ask_h, ask) =
                lp.async_handle(move |lp, _| answer_tx.send(snapshot(lp, &e)).unwrap());
            lp.unref_handle(ask_h);
            let final_snap = Rc::new(Cell::new(None));
            let (e, f) = (echo.clone(), final_snap.clone());
            let (stop_h, stop) = lp.async_handle(move |lp, me| {
                f.set(Some(snapshot(lp, &e)));
                e.shutdown(lp);
                lp.close(ask_h);
                lp.close(me);
            });
            lp.unref_handle(stop_h);
            ready_tx.send((addr, ask, stop)).unwrap();
            lp.run(RunMode::Default).unwrap();
            assert!(
                lp.handles().is_empty(),
                "handles left after shutdown: {:?}",
                lp.handles()
            );
            final_snap.take().unwrap()
        });
        let (addr, ask, stop) = ready_rx.recv().unwrap();
        LoopEcho {
            addr,
            ask,
            stop,
            answers,
            thread,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.ask.send();
        self.answers
            .recv_timeout(Duration::from_secs(10))
            .expect("the loop answers")
    }

    /// Wait until the server has no connection handles left (clients are gone).
    pub fn wait_for_no_connections(&self) -> Snapshot {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.snapshot();
            if s.tcp_handles == 0 || std::time::Instant::now() > deadline {
                return s;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stop(self) -> Snapshot {
        self.stop.send();
        self.thread.join().expect("the server thread ends cleanly")
    }
}

/// A child process killed and reaped when the test is done with it, whatever happens.
pub struct KilledOnDrop(pub std::process::Child);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU time (user + system) of a process in clock ticks, from /proc/PID/stat.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}
