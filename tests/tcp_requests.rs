//! Requests on a stream (connect, write, shutdown), as libuv has them: each ends in
//! exactly one callback, in an order a program can count on; what `close` cuts short is
//! called back before the close callback; a failed connect leaves the stream to its
//! owner; and a request in flight holds the loop even on an unref'd stream.

mod util;

use looplab::{HandleKind, Loop, RunMode, Tcp};
use std::cell::{Cell, RefCell};
use std::io::Read as _;
use std::rc::Rc;
use std::time::Duration;
use util::tcp::{blocking_peer, closed_port, loop_connect, silent_peer};
use util::{new_loop, on_every_backend};

/// More than loopback's socket buffers hold (a few MiB each side): some stays queued.
const BIG: usize = 32 << 20;

type Log = Rc<RefCell<Vec<String>>>;

fn outcome(what: &str, r: &std::io::Result<()>) -> String {
    match r {
        Ok(()) => format!("{what} ok"),
        Err(_) => format!("{what} err"),
    }
}

/// Queue a big write, a shutdown and a close on `conn`, each logging its callback.
fn write_shutdown_close(lp: &mut Loop, conn: Tcp, log: &Log) {
    let l = log.clone();
    lp.write_then(conn, vec![0u8; BIG], move |_, _, r| {
        l.borrow_mut().push(outcome("write", &r))
    })
    .expect("the write is accepted");
    assert!(lp.write_queue_len(conn) > 0, "{BIG} bytes went out at once");
    let l = log.clone();
    lp.shutdown(conn, move |_, _, r| {
        l.borrow_mut().push(outcome("shutdown", &r))
    })
    .expect("the shutdown is accepted");
    let l = log.clone();
    assert!(lp.close_then(conn, move |_, _| l.borrow_mut().push("close".into())));
}

/// `close` from a connect callback, with a big `write_then` and a shutdown pending: the
/// write's and the shutdown's callbacks (with an error) run before the close callback.
/// Issue 11, semantic 2.
#[test]
fn close_from_a_connect_callback_calls_owed_requests_back_before_the_close_callback() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let peer = silent_peer();
        let log: Log = Rc::default();
        let l = log.clone();
        lp.tcp_connect(peer.local_addr().unwrap(), move |lp, conn, r| {
            r.expect("connected");
            l.borrow_mut().push("connect ok".into());
            write_shutdown_close(lp, conn, &l);
        })
        .unwrap();
        util::fail_after(&mut lp, Duration::from_secs(20));
        lp.run(RunMode::Default).unwrap();
        assert_eq!(
            *log.borrow(),
            ["connect ok", "write err", "shutdown err", "close"]
        );
    });
}

/// The same from an immediate, on a connected stream. Issue 11, semantic 2.
#[test]
fn close_from_an_immediate_calls_owed_requests_back_before_the_close_callback() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let peer = silent_peer();
        let conn = loop_connect(&mut lp, peer.local_addr().unwrap());
        let log: Log = Rc::default();
        let l = log.clone();
        lp.set_immediate(move |lp, _| write_shutdown_close(lp, conn, &l));
        util::fail_after(&mut lp, Duration::from_secs(20));
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*log.borrow(), ["write err", "shutdown err", "close"]);
    });
}

/// A stream closed while its connect is still pending: the connect callback gets a
/// cancel error, then the write queued meanwhile, then the close callback runs.
/// Issue 11, semantic 2.
#[test]
fn close_while_connecting_calls_the_connect_back_before_the_close_callback() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let peer = silent_peer();
        let addr = peer.local_addr().unwrap();
        let log: Log = Rc::default();
        let l = log.clone();
        lp.set_immediate(move |lp, _| {
            let l2 = l.clone();
            let conn = lp
                .tcp_connect(addr, move |_, _, r| {
                    l2.borrow_mut().push(outcome("connect", &r))
                })
                .unwrap();
            let l2 = l.clone();
            lp.write_then(conn, b"queued while connecting", move |_, _, r| {
                l2.borrow_mut().push(outcome("write", &r))
            })
            .unwrap();
            let l2 = l.clone();
            assert!(lp.close_then(conn, move |_, _| l2.borrow_mut().push("close".into())));
        });
        util::fail_after(&mut lp, Duration::from_secs(20));
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*log.borrow(), ["connect err", "write err", "close"]);
    });
}

/// A write made while connecting to a closed port is queued (`write` returns Ok); the
/// connect callback gets the real error (ConnectionRefused, not a side effect of the
/// write), and the queued write's callback runs after it, with an error.
/// Issue 11, semantic 4.
#[test]
fn a_write_while_connecting_waits_and_the_connect_gets_the_real_error() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let log: Log = Rc::default();
        let l = log.clone();
        let conn = lp
            .tcp_connect(closed_port(), move |lp, conn, r| {
                let kind = r.map_err(|e| e.kind());
                l.borrow_mut().push(format!("connect {kind:?}"));
                lp.close(conn);
            })
            .unwrap();
        let l = log.clone();
        let queued = lp.write_then(conn, b"hello", move |_, _, r| {
            l.borrow_mut().push(outcome("write", &r))
        });
        assert!(queued.is_ok(), "write while connecting: {queued:?}");
        assert!(lp.write(conn, b"more").is_ok(), "a plain write queues too");
        util::fail_after(&mut lp, Duration::from_secs(20));
        lp.run(RunMode::Default).unwrap();
        assert_eq!(
            *log.borrow(),
            ["connect Err(ConnectionRefused)", "write err"]
        );
    });
}

/// A failed connect leaves the stream open, as in libuv: the handle is still listed, and
/// the owner's `close_then` returns true and its callback runs. Issue 11, semantic 5.
#[test]
fn a_failed_connect_leaves_the_stream_for_its_owner_to_close() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let log: Log = Rc::default();
        let l = log.clone();
        lp.tcp_connect(closed_port(), move |lp, conn, r| {
            assert!(r.is_err(), "nothing listens there");
            let listed = lp.handles().iter().any(|i| i.handle == conn.into());
            l.borrow_mut().push(format!("failed, listed: {listed}"));
            let l2 = l.clone();
            let closing = lp.close_then(conn, move |_, _| l2.borrow_mut().push("closed".into()));
            l.borrow_mut().push(format!("close_then: {closing}"));
        })
        .unwrap();
        util::fail_after(&mut lp, Duration::from_secs(20));
        lp.run(RunMode::Default).unwrap();
        assert_eq!(
            *log.borrow(),
            ["failed, listed: true", "close_then: true", "closed"]
        );
        let streams = lp
            .handles()
            .into_iter()
            .filter(|i| i.kind == HandleKind::Tcp);
        assert_eq!(streams.count(), 0, "the stream is gone after its close");
    });
}

/// An unref'd stream that is connecting still holds the loop until its connect callback
/// has run: requests hold the loop, as in libuv. Issue 11, semantic 6.
#[test]
fn an_unrefd_connecting_stream_holds_the_loop_until_the_connect_callback() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let (addr, _accepted) = blocking_peer();
        let connected = Rc::new(Cell::new(false));
        let c = connected.clone();
        let conn = lp
            .tcp_connect(addr, move |_, _, r| c.set(r.is_ok()))
            .unwrap();
        assert!(lp.unref_handle(conn));
        assert!(lp.alive(), "the connect request holds the loop");
        util::fail_after(&mut lp, Duration::from_secs(20));
        assert!(!lp.run(RunMode::Default).unwrap());
        assert!(connected.get(), "run returned before the connect callback");
        lp.close(conn);
        lp.run(RunMode::Default).unwrap();
    });
}

/// An unref'd stream with a queued write to a peer that reads late: `run` returns only
/// after the write's callback, and the peer got every byte. Issue 11, semantic 6.
#[test]
fn an_unrefd_stream_with_a_queued_write_holds_the_loop_until_it_is_written() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let (addr, accepted) = blocking_peer();
        let conn = loop_connect(&mut lp, addr);
        let mut remote = accepted.recv().unwrap();
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100)); // reads late
            let mut got = vec![0u8; BIG];
            remote.read_exact(&mut got).map(|()| got.len())
        });
        let written = Rc::new(RefCell::new(None));
        let w = written.clone();
        lp.write_then(conn, vec![5u8; BIG], move |_, _, r| {
            *w.borrow_mut() = Some(r.map_err(|e| e.kind()))
        })
        .unwrap();
        assert!(lp.write_queue_len(conn) > 0, "{BIG} bytes went out at once");
        assert!(lp.unref_handle(conn));
        util::fail_after(&mut lp, Duration::from_secs(20));
        assert!(!lp.run(RunMode::Default).unwrap());
        assert_eq!(
            *written.borrow(),
            Some(Ok(())),
            "run returned before the write finished"
        );
        assert_eq!(reader.join().unwrap().map_err(|e| e.kind()), Ok(BIG));
        lp.close(conn);
        lp.run(RunMode::Default).unwrap();
    });
}
