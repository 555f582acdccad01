//! A long-poll server on its own loop thread, for the in-process tests
//! (`tests/longpoll.rs`, `tests/longpoll_limits.rs`).
#![allow(dead_code)]

use super::util::http::get;
use looplab::servers::longpoll::{LongPoll, LongPollConfig, LongPollStats};
use looplab::{Backend, CloseDone, Loop, RunMode};
use serde_json::Value;
use std::net::SocketAddr;
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
            let me = std::rc::Rc::new(std::cell::Cell::new(None));
            let m = me.clone();
            let (h, stop) = lp.async_handle(move |lp| {
                s.shutdown(lp);
                if let Some(h) = m.get() {
                    lp.close(h, None::<CloseDone>);
                }
            });
            me.set(Some(h));
            lp.unref(h);
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
