//! Loopback TCP set-ups the stream tests share: a blocking peer beside the loop, a port
//! nobody listens on, and loop-side connections driven until they are ready.

use looplab::{Loop, ReadEvent, RunMode, Tcp};
use std::cell::{Cell, RefCell};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

/// A plain blocking listener on 127.0.0.1 whose first accepted stream is handed over on
/// the channel (its read/write timeouts set, so a stuck test fails instead of hanging).
pub fn blocking_peer() -> (SocketAddr, mpsc::Receiver<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback peer");
    let addr = listener.local_addr().expect("the peer's address");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Some(s) = listener.incoming().next().and_then(Result::ok) {
            s.set_read_timeout(Some(Duration::from_secs(10))).ok();
            s.set_write_timeout(Some(Duration::from_secs(10))).ok();
            let _ = tx.send(s);
        }
    });
    (addr, rx)
}

/// A listener kept open that never accepts and never reads: connects complete in the
/// backlog, and what is written to them stays in the kernel's buffers.
pub fn silent_peer() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("binding a silent peer")
}

/// An address on 127.0.0.1 where nothing listens: a connect to it is refused.
pub fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding to find a free port");
    l.local_addr().expect("the free port")
}

/// Connect from the loop and run it until the connect callback has said Ok.
pub fn loop_connect(lp: &mut Loop, addr: SocketAddr) -> Tcp {
    let got = Rc::new(Cell::new(None));
    let g = got.clone();
    lp.tcp_connect(addr, move |_, conn, r| {
        r.expect("connecting to the loopback peer");
        g.set(Some(conn));
    })
    .expect("starting a connect");
    for _ in 0..1000 {
        if let Some(conn) = got.get() {
            return conn;
        }
        lp.run(RunMode::Once).expect("running the loop");
    }
    panic!("the connect callback never ran in 1000 ticks")
}

/// `n` blocking clients connected to a listener on the loop, each paired with the loop's
/// side of its connection (matched by address, not by accept order). The listener is
/// closed before this returns, so only the pairs hold the loop.
pub fn accepted_pairs(lp: &mut Loop, n: usize) -> Vec<(Tcp, TcpStream)> {
    let accepted = Rc::new(RefCell::new(Vec::new()));
    let a = accepted.clone();
    let listener = lp
        .tcp_listen("127.0.0.1:0".parse().unwrap(), move |_, _, r| {
            a.borrow_mut().push(r.expect("accepting"))
        })
        .expect("listening on the loop");
    let addr = lp.local_addr(listener).expect("the listener's address");
    let clients: Vec<TcpStream> = (0..n).map(|_| super::connect(addr)).collect();
    for _ in 0..1000 {
        if accepted.borrow().len() >= n {
            break;
        }
        lp.run(RunMode::Once).expect("running the loop");
    }
    assert!(lp.close(listener));
    let conns = accepted.borrow().clone();
    assert_eq!(conns.len(), n, "every client was accepted");
    clients
        .into_iter()
        .map(|c| {
            let me = c.local_addr().expect("the client's address");
            let conn = *conns
                .iter()
                .find(|t| lp.peer_addr(**t).ok() == Some(me))
                .expect("the loop's side of this client");
            (conn, c)
        })
        .collect()
}

/// A read event as a short line for a test's log: `data …`, `eof`, `error Kind`.
pub fn describe(ev: &ReadEvent<'_>) -> String {
    match ev {
        ReadEvent::Data(d) => format!("data {}", String::from_utf8_lossy(d)),
        ReadEvent::Eof => "eof".into(),
        ReadEvent::Error(e) => format!("error {:?}", e.kind()),
    }
}
