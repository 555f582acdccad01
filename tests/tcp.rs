//! TCP handles on every backend: connect, write callbacks, the write queue, shutdown,
//! and reads that must not be lost under edge-triggered polling.

mod util;

use looplab::{CloseDone, Loop, Read, RunMode, Tcp, WriteDone};
use std::cell::{Cell, RefCell};
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::time::Duration;
use util::{new_loop, on_every_backend};

/// A plain listener whose accepted streams are handed to the test.
fn peer() -> (SocketAddr, std::sync::mpsc::Receiver<std::net::TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in listener.incoming().take(1).flatten() {
            let _ = tx.send(s);
        }
    });
    (addr, rx)
}

/// Connect from the loop; run until connected.
fn connect(lp: &mut Loop, addr: SocketAddr) -> Tcp {
    let got = Rc::new(Cell::new(None));
    let g = got.clone();
    lp.tcp_connect(addr, move |_, r| g.set(Some(r.expect("connect"))))
        .unwrap();
    while got.get().is_none() {
        lp.run(RunMode::Once).unwrap();
    }
    got.get().unwrap()
}

/// A write's callback runs after the bytes reach the kernel, never inside `write`.
#[test]
fn write_callbacks_report_completion_later() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let (addr, accepted) = peer();
        let conn = connect(&mut lp, addr);
        let mut remote = accepted.recv().unwrap();
        assert_eq!(lp.peer_addr(conn).unwrap(), addr);
        assert!(lp.local_addr(conn).unwrap().ip().is_loopback());
        let done = Rc::new(RefCell::new(Vec::new()));
        let d = done.clone();
        lp.write(
            conn,
            b"hello",
            Some(move |_: &mut Loop, r: std::io::Result<()>| d.borrow_mut().push(r.is_ok())),
        )
        .unwrap();
        assert!(done.borrow().is_empty(), "the callback ran inside write()");
        lp.run(RunMode::NoWait).unwrap();
        assert_eq!(*done.borrow(), [true]);
        let mut buf = [0u8; 5];
        remote.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        lp.close(conn, None::<CloseDone>);
        lp.run(RunMode::Default).unwrap();
    });
}

/// A peer that does not read fills the kernel's buffers: the rest waits in the write
/// queue. When the peer resets, every queued write's callback gets the error.
#[test]
fn queued_writes_fail_when_the_peer_resets() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let (addr, accepted) = peer();
        let conn = connect(&mut lp, addr);
        let remote = accepted.recv().unwrap();
        let results = Rc::new(RefCell::new(Vec::new()));
        let chunk = vec![7u8; 1 << 20];
        for _ in 0..16 {
            let r = results.clone();
            lp.write(
                conn,
                &chunk,
                Some(move |_: &mut Loop, res: std::io::Result<()>| {
                    r.borrow_mut().push(res.is_ok())
                }),
            )
            .unwrap();
        }
        assert!(
            lp.write_queue_len(conn) > 0,
            "16 MiB fit in the kernel at once?"
        );
        socket2::SockRef::from(&remote)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(remote); // RST
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while results.borrow().len() < 16 && std::time::Instant::now() < deadline {
            lp.run(RunMode::Once).unwrap();
        }
        let results = results.borrow();
        assert_eq!(results.len(), 16, "every write got its callback");
        assert!(
            results.iter().any(|ok| !ok),
            "the queued writes failed: {results:?}"
        );
        assert_eq!(lp.write_queue_len(conn), 0);
        // A later write fails at once and reports through its return value only.
        let called = Rc::new(Cell::new(false));
        let c = called.clone();
        assert!(lp
            .write(conn, b"x", Some(move |_: &mut Loop, _| c.set(true)))
            .is_err());
        lp.run(RunMode::NoWait).unwrap();
        assert!(
            !called.get(),
            "an error returned by write is not also sent to the callback"
        );
        lp.close(conn, None::<CloseDone>);
        lp.run(RunMode::Default).unwrap();
    });
}

/// Connecting to a port nobody listens on reports the refusal to the callback.
#[test]
fn connect_refused_reaches_the_callback() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let closed_port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let got = Rc::new(RefCell::new(None));
        let g = got.clone();
        lp.tcp_connect(closed_port, move |_, r| {
            *g.borrow_mut() = Some(r.map(|_| ()).map_err(|e| e.kind()))
        })
        .unwrap();
        lp.run(RunMode::Default).unwrap();
        assert_eq!(
            *got.borrow(),
            Some(Err(std::io::ErrorKind::ConnectionRefused))
        );
        assert!(
            lp.handles().is_empty(),
            "the failed stream was closed: {:?}",
            lp.handles()
        );
    });
}

/// shutdown() flushes the queue, then the peer reads EOF; the loop's side reads on.
#[test]
fn shutdown_sends_eof_after_the_queue() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let (addr, accepted) = peer();
        let conn = connect(&mut lp, addr);
        let mut remote = accepted.recv().unwrap();
        lp.write(conn, vec![1u8; 300_000], None::<WriteDone>)
            .unwrap();
        let shut = Rc::new(Cell::new(false));
        let s = shut.clone();
        lp.shutdown(conn, move |_, r| s.set(r.is_ok())).unwrap();
        assert!(
            lp.write(conn, b"late", None::<WriteDone>).is_err(),
            "no writes after shutdown"
        );
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            remote.read_to_end(&mut all).unwrap();
            remote.write_all(b"bye").unwrap();
            all.len()
        });
        let heard = Rc::new(RefCell::new(Vec::new()));
        let h = heard.clone();
        lp.read_start(conn, move |lp, conn, ev| match ev {
            Read::Data(d) => h.borrow_mut().extend_from_slice(d),
            _ => {
                lp.close(conn, None::<CloseDone>);
            }
        })
        .unwrap();
        lp.run(RunMode::Default).unwrap();
        assert!(shut.get());
        assert_eq!(reader.join().unwrap(), 300_000);
        assert_eq!(*heard.borrow(), b"bye");
    });
}

/// Data that arrives while reading is stopped is delivered after read_resume, on the
/// edge-triggered backend too (it will not report the old data again by itself).
#[test]
fn data_that_arrived_while_stopped_is_read_on_resume() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let (addr, accepted) = peer();
        let conn = connect(&mut lp, addr);
        let mut remote = accepted.recv().unwrap();
        let got = Rc::new(RefCell::new(Vec::new()));
        let g = got.clone();
        lp.read_start(conn, move |_, _, ev| {
            if let Read::Data(d) = ev {
                g.borrow_mut().extend_from_slice(d);
            }
        })
        .unwrap();
        remote.write_all(b"first").unwrap();
        while got.borrow().len() < 5 {
            lp.run(RunMode::Once).unwrap();
        }
        assert!(lp.read_stop(conn));
        remote.write_all(b"second").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        lp.run(RunMode::NoWait).unwrap();
        assert_eq!(*got.borrow(), b"first", "nothing is read while stopped");
        lp.read_resume(conn).unwrap();
        lp.run(RunMode::NoWait).unwrap();
        lp.run(RunMode::NoWait).unwrap();
        assert_eq!(*got.borrow(), b"firstsecond");
        lp.close(conn, None::<CloseDone>);
        lp.run(RunMode::Default).unwrap();
    });
}

/// Operations on a closed stream are refused with an error, never a panic.
#[test]
fn a_closed_stream_refuses_operations() {
    let mut lp = new_loop(looplab::Backend::default_for_os());
    let (addr, _accepted) = peer();
    let conn = connect(&mut lp, addr);
    lp.close(conn, None::<CloseDone>);
    assert!(lp.write(conn, b"x", None::<WriteDone>).is_err());
    assert!(lp.read_start(conn, |_, _, _| {}).is_err());
    assert!(lp.shutdown(conn, |_, _| {}).is_err());
    assert!(!lp.read_stop(conn));
    assert_eq!(lp.write_queue_len(conn), 0);
    lp.run(RunMode::Default).unwrap();
    assert!(lp.local_addr(conn).is_err() && lp.peer_addr(conn).is_err());
}
