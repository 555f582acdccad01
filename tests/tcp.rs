//! TCP handles on every backend: connect, write callbacks, the write queue, shutdown,
//! reads that must not be lost under edge-triggered polling, one reader per stream, and a
//! listener that lets go of its port at close.

mod util;

use looplab::{ReadEvent, RunMode};
use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read as _, Write as _};
use std::rc::Rc;
use std::time::Duration;
use util::tcp::{blocking_peer, closed_port, loop_connect};
use util::{new_loop, on_every_backend};

/// A write's callback runs after the bytes reach the kernel, never inside `write_then`.
#[test]
fn write_callbacks_report_completion_later() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let (addr, accepted) = blocking_peer();
        let conn = loop_connect(&mut lp, addr);
        let mut remote = accepted.recv().unwrap();
        assert_eq!(lp.peer_addr(conn).unwrap(), addr);
        assert!(lp.local_addr(conn).unwrap().ip().is_loopback());
        let done = Rc::new(RefCell::new(Vec::new()));
        let d = done.clone();
        lp.write_then(conn, b"hello", move |_, c, r| {
            d.borrow_mut().push((c, r.is_ok()))
        })
        .unwrap();
        assert!(done.borrow().is_empty(), "the callback ran inside write()");
        lp.run(RunMode::NoWait).unwrap();
        assert_eq!(
            *done.borrow(),
            [(conn, true)],
            "the callback names its stream"
        );
        let mut buf = [0u8; 5];
        remote.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        lp.close(conn);
        lp.run(RunMode::Default).unwrap();
    });
}

/// A peer that does not read fills the kernel's buffers: the rest waits in the write
/// queue. When the peer resets, every queued write's callback gets the error.
#[test]
fn queued_writes_fail_when_the_peer_resets() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let (addr, accepted) = blocking_peer();
        let conn = loop_connect(&mut lp, addr);
        let remote = accepted.recv().unwrap();
        let results = Rc::new(RefCell::new(Vec::new()));
        let chunk = vec![7u8; 1 << 20];
        for _ in 0..16 {
            let r = results.clone();
            lp.write_then(conn, &chunk, move |_, _, res| {
                r.borrow_mut().push(res.is_ok())
            })
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
        util::fail_after(&mut lp, Duration::from_secs(20));
        while results.borrow().len() < 16 {
            lp.run(RunMode::Once).unwrap();
        }
        let results = results.borrow();
        assert!(
            results.iter().any(|ok| !ok),
            "the queued writes failed: {results:?}"
        );
        assert_eq!(lp.write_queue_len(conn), 0);
        // A later write fails at once and reports through its return value only.
        let called = Rc::new(Cell::new(false));
        let c = called.clone();
        assert!(lp
            .write_then(conn, b"x", move |_, _, _| c.set(true))
            .is_err());
        lp.run(RunMode::NoWait).unwrap();
        assert!(
            !called.get(),
            "an error returned by write is not also sent to the callback"
        );
        lp.close(conn);
        lp.run(RunMode::Default).unwrap();
    });
}

/// Connecting to a port nobody listens on reports the refusal to the callback, which
/// closes the stream (a failed stream stays open until its owner closes it).
#[test]
fn connect_refused_reaches_the_callback() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let got = Rc::new(RefCell::new(None));
        let g = got.clone();
        lp.tcp_connect(closed_port(), move |lp, conn, r| {
            *g.borrow_mut() = Some(r.map_err(|e| e.kind()));
            lp.close(conn);
        })
        .unwrap();
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*got.borrow(), Some(Err(ErrorKind::ConnectionRefused)));
        assert!(lp.handles().is_empty(), "{:?}", lp.handles());
    });
}

/// shutdown() flushes the queue, then the peer reads EOF; the loop's side reads on.
#[test]
fn shutdown_sends_eof_after_the_queue() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let (addr, accepted) = blocking_peer();
        let conn = loop_connect(&mut lp, addr);
        let mut remote = accepted.recv().unwrap();
        lp.write(conn, vec![1u8; 300_000]).unwrap();
        let shut = Rc::new(Cell::new(false));
        let s = shut.clone();
        lp.shutdown(conn, move |_, _, r| s.set(r.is_ok())).unwrap();
        assert!(lp.write(conn, b"late").is_err(), "no writes after shutdown");
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            remote.read_to_end(&mut all).unwrap();
            remote.write_all(b"bye").unwrap();
            all.len()
        });
        let heard = Rc::new(RefCell::new(Vec::new()));
        let h = heard.clone();
        lp.read_start(conn, move |lp, conn, ev| match ev {
            ReadEvent::Data(d) => h.borrow_mut().extend_from_slice(d),
            _ => {
                lp.close(conn);
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
        let (addr, accepted) = blocking_peer();
        let conn = loop_connect(&mut lp, addr);
        let mut remote = accepted.recv().unwrap();
        let got = Rc::new(RefCell::new(Vec::new()));
        let g = got.clone();
        lp.read_start(conn, move |_, _, ev| {
            if let ReadEvent::Data(d) = ev {
                g.borrow_mut().extend_from_slice(d);
            }
        })
        .unwrap();
        remote.write_all(b"first").unwrap();
        util::fail_after(&mut lp, Duration::from_secs(20));
        while got.borrow().len() < 5 {
            lp.run(RunMode::Once).unwrap();
        }
        assert!(lp.read_stop(conn));
        remote.write_all(b"second").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        lp.run(RunMode::NoWait).unwrap();
        assert_eq!(*got.borrow(), b"first", "nothing is read while stopped");
        lp.read_resume(conn).unwrap();
        while got.borrow().len() < 11 {
            lp.run(RunMode::Once).unwrap();
        }
        assert_eq!(*got.borrow(), b"firstsecond");
        lp.close(conn);
        lp.run(RunMode::Default).unwrap();
    });
}

/// Operations on a closed stream are refused with NotFound, never a panic.
#[test]
fn a_closed_stream_refuses_operations() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let (addr, _accepted) = blocking_peer();
        let conn = loop_connect(&mut lp, addr);
        assert!(lp.close(conn));
        let kind = |r: std::io::Result<()>| r.map_err(|e| e.kind());
        assert_eq!(kind(lp.write(conn, b"x")), Err(ErrorKind::NotFound));
        assert_eq!(
            kind(lp.read_start(conn, |_, _, _| {})),
            Err(ErrorKind::NotFound)
        );
        assert_eq!(
            kind(lp.shutdown(conn, |_, _, _| {})),
            Err(ErrorKind::NotFound)
        );
        assert!(!lp.read_stop(conn));
        assert_eq!(lp.write_queue_len(conn), 0);
        lp.run(RunMode::Default).unwrap();
        assert!(lp.local_addr(conn).is_err() && lp.peer_addr(conn).is_err());
    });
}

/// A second `read_start` on a stream that is reading is refused (AlreadyExists, libuv's
/// EALREADY) and leaves the first reader in place; after `read_stop`, `read_start` with a
/// new callback takes over. Issue 11, semantic 7.
#[test]
fn read_start_twice_is_refused_until_read_stop() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let (addr, accepted) = blocking_peer();
        let conn = loop_connect(&mut lp, addr);
        let mut remote = accepted.recv().unwrap();
        let heard = Rc::new(RefCell::new(Vec::new()));
        let h = heard.clone();
        lp.read_start(conn, move |_, _, ev| {
            if let ReadEvent::Data(d) = ev {
                h.borrow_mut().push(("first", d.to_vec()));
            }
        })
        .unwrap();
        let h = heard.clone();
        let again = lp.read_start(conn, move |_, _, ev| {
            if let ReadEvent::Data(d) = ev {
                h.borrow_mut().push(("intruder", d.to_vec()));
            }
        });
        assert_eq!(again.map_err(|e| e.kind()), Err(ErrorKind::AlreadyExists));
        remote.write_all(b"one").unwrap();
        util::fail_after(&mut lp, Duration::from_secs(20));
        while heard.borrow().is_empty() {
            lp.run(RunMode::Once).unwrap();
        }
        assert!(lp.read_stop(conn));
        let h = heard.clone();
        lp.read_start(conn, move |_, _, ev| {
            if let ReadEvent::Data(d) = ev {
                h.borrow_mut().push(("second", d.to_vec()));
            }
        })
        .expect("read_start after read_stop");
        remote.write_all(b"two").unwrap();
        while heard.borrow().len() < 2 {
            lp.run(RunMode::Once).unwrap();
        }
        assert_eq!(
            *heard.borrow(),
            [("first", b"one".to_vec()), ("second", b"two".to_vec())]
        );
        lp.close(conn);
        lp.run(RunMode::Default).unwrap();
    });
}

/// `close(listener)` closes its socket at once, as libuv does: a connect to its address
/// right after the close is refused, not completed by a backlog that is still open.
/// Issue 11, semantic 3.
#[test]
fn a_closed_listener_refuses_connects_at_once() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let accepted = Rc::new(Cell::new(0));
        let a = accepted.clone();
        let listener = lp
            .tcp_listen("127.0.0.1:0".parse().unwrap(), move |lp, _, r| {
                a.set(a.get() + 1);
                if let Ok(conn) = r {
                    lp.close(conn);
                }
            })
            .unwrap();
        let addr = lp.local_addr(listener).unwrap();
        assert!(lp.close(listener));
        let direct = std::net::TcpStream::connect(addr).map(drop);
        assert_eq!(
            direct.map_err(|e| e.kind()),
            Err(ErrorKind::ConnectionRefused),
            "a connect right after close() got through"
        );
        let from_loop = Rc::new(RefCell::new(None));
        let f = from_loop.clone();
        lp.tcp_connect(addr, move |lp, conn, r| {
            *f.borrow_mut() = Some(r.map_err(|e| e.kind()));
            lp.close(conn);
        })
        .unwrap();
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*from_loop.borrow(), Some(Err(ErrorKind::ConnectionRefused)));
        assert_eq!(accepted.get(), 0, "a closed listener accepted");
        assert!(lp.handles().is_empty(), "{:?}", lp.handles());
    });
}
