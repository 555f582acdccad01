//! Helpers for tests/loop_group.rs: a server that answers with its loop's index and can
//! be told to stall, and long-poll clients placed on a chosen loop.
#![allow(dead_code)]

use looplab::group::{ListenMode, LoopGroup};
use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use super::http::{Client, HttpResponse};

/// Enough connections that a hash sending all of them to one of two loops (2^-31) is
/// not a way for a test to pass or fail.
pub const CLIENTS: usize = 32;

/// The loop-index server of the stall tests: each connection gets one byte, its
/// loop's index, then is closed. Loop 1 stalls (blocks its thread) when told to.
pub enum Ctl {
    Stall {
        stalled: mpsc::Sender<()>,
        release: mpsc::Receiver<()>,
    },
}

pub fn index_group(mode: ListenMode) -> LoopGroup<Ctl, ()> {
    LoopGroup::builder()
        .loops(2)
        .mode(mode)
        .listen("127.0.0.1:0".parse().unwrap())
        .spawn(|lp, ctx| {
            let me = [ctx.index() as u8];
            let l = ctx.listen(lp, move |lp, _, c| {
                if let Ok(c) = c {
                    let _ = lp.write_then(c, me, |lp, c, _| {
                        lp.close(c);
                    });
                }
            })?;
            ctx.on_stop(move |lp| {
                lp.close(l);
            });
            ctx.on_message(|_, Ctl::Stall { stalled, release }| {
                stalled.send(()).unwrap();
                // Blocks this loop as a slow callback would; bounded, so a failing
                // test still ends.
                let _ = release.recv_timeout(Duration::from_secs(30));
            });
            Ok(|_: &mut looplab::Loop| ())
        })
        .unwrap()
}

/// Which loop answered `c`, if it answers within `wait`.
pub fn answer(c: &mut TcpStream, wait: Duration) -> Option<u8> {
    c.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 1];
    match c.read_exact(&mut b) {
        Ok(()) => Some(b[0]),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => panic!("reading the loop's index: {e}"),
    }
}

/// Stall loop 1, connect `CLIENTS` clients; returns the group, the release and clients.
pub fn stall_and_connect(
    mode: ListenMode,
) -> (LoopGroup<Ctl, ()>, mpsc::Sender<()>, Vec<TcpStream>) {
    let group = index_group(mode);
    let (stalled_tx, stalled) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let ctl = Ctl::Stall {
        stalled: stalled_tx,
        release: release_rx,
    };
    assert!(group.postbox().post(1, ctl).is_ok());
    stalled
        .recv_timeout(Duration::from_secs(10))
        .expect("loop 1 stalls");
    let addr = group.local_addr().unwrap();
    let clients = (0..CLIENTS)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    (group, release, clients)
}

/// A keep-alive client on each of the two loops: clients connect until `/stats` (which
/// names the loop that served it) has shown both loops.
pub fn client_per_loop(addr: SocketAddr) -> [Client; 2] {
    let mut found: [Option<Client>; 2] = [None, None];
    for _ in 0..64 {
        let mut c = Client::connect(addr);
        let i = c.get("/stats").json()["hops"]["loop"].as_u64().unwrap() as usize;
        found[i].get_or_insert(c);
        if found.iter().all(Option::is_some) {
            return found.map(Option::unwrap);
        }
    }
    panic!("64 connections all went to one loop");
}

pub fn texts(resp: &HttpResponse) -> Vec<String> {
    let body = resp.json();
    let list = body["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"));
    list.iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect()
}

pub fn publish(c: &mut Client, text: &str) {
    let resp = c.post("/publish", &format!("{{\"text\":\"{text}\"}}"));
    assert_eq!(resp.status, 201, "{}", resp.text());
}
