//! A task's `write_all` gives the kernel its bytes itself, with the fd the loop lends the
//! stream, whenever nothing waits before them (`src/task/net/stream/conn.rs`). Two
//! things must hold: the loop takes the fd back before it closes it, so a write after
//! the close fails instead of reaching whichever connection gets the fd's number next;
//! and bytes written directly and bytes queued behind a full socket leave in the order
//! they were written. Every test runs on every backend.

mod util;

use looplab::task::{self, TcpStream};
use looplab::Tcp;
use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read};
use std::net::TcpListener;
use std::rc::Rc;
use std::time::Duration;
use util::on_every_backend;

/// The task's stream closed by a loop callback while the task sleeps; a plain socket is
/// opened at once, so it gets the lowest free fd: the one the stream had. The task's
/// next write must fail, and the new socket's peer must receive nothing.
#[test]
fn a_write_after_the_loop_closed_the_stream_fails_and_reaches_no_one_else() {
    on_every_backend(|b| {
        let mut lp = util::new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let peers = TcpListener::bind("127.0.0.1:0").expect("the task's peer");
        let victims = TcpListener::bind("127.0.0.1:0").expect("the victim's peer");
        let (addr, victim_addr) = (peers.local_addr().unwrap(), victims.local_addr().unwrap());

        // The task says which handle to close once its direct writes have happened.
        let to_close: Rc<Cell<Option<Tcp>>> = Rc::default();
        let victim: Rc<RefCell<Option<std::net::TcpStream>>> = Rc::default();
        let (c, v) = (to_close.clone(), victim.clone());
        lp.set_interval(Duration::from_millis(2), move |lp, me| {
            if let Some(h) = c.take() {
                assert!(lp.close(h), "the stream was open");
                let s = std::net::TcpStream::connect(victim_addr).expect("the victim connects");
                *v.borrow_mut() = Some(s);
                lp.clear_timer(me);
            }
        });
        let written = lp
            .block_on(async move {
                let mut s = TcpStream::connect(addr).await?;
                s.write_all(b"first,").await?; // the first write asks for the fd
                task::sleep(Duration::from_millis(5)).await?;
                s.write_all(b"second,").await?; // written with the lent fd
                to_close.set(Some(s.handle()));
                task::sleep(Duration::from_millis(200)).await?;
                // Into the outbox (it holds bytes as they are handed over, see the module
                // doc of task/net/stream.rs); the flush fails, and the shutdown says so.
                s.write_all(b"third").await?;
                s.shutdown().await
            })
            .expect("the task ran");
        let err = written.expect_err("writing after the close must fail");
        // The stream's own handle is gone; the flush says so (not, say, a reset peer).
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains("is closed"), "{err}");

        let (mut peer, _) = peers.accept().expect("the task's connection");
        let mut got = Vec::new();
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        peer.read_to_end(&mut got)
            .expect("the task's peer reads to the close");
        assert_eq!(got, b"first,second,", "what reached the task's own peer");

        assert!(victim.borrow().is_some(), "the victim connected");
        let (mut victims_peer, _) = victims.accept().expect("the victim's connection");
        victims_peer.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        match victims_peer.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("the victim's peer received something: {other:?} {buf:?}"),
        }
    });
}

/// A peer that reads nothing for a while: the first writes go straight to the kernel,
/// the rest wait in the outbox and the loop's queue, and once the peer reads, writes go
/// straight to the kernel again. Every byte must arrive, in the order written, across
/// each switch between the two paths.
#[test]
fn direct_and_queued_writes_keep_their_order() {
    on_every_backend(|b| {
        let mut lp = util::new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let peers = TcpListener::bind("127.0.0.1:0").expect("the peer");
        let addr = peers.local_addr().unwrap();
        // Numbered chunks of growing size: any reordering or loss shows in the sequence.
        let chunks: Vec<Vec<u8>> = (0u32..400)
            .map(|i| {
                let len = 1 + (i as usize * 997) % 16_384;
                (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
            })
            .collect();
        let expected: Vec<u8> = chunks.concat();
        let reader = std::thread::spawn(move || {
            let (mut s, _) = peers.accept().expect("the writer connects");
            s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
            // Hold off until the kernel's buffers are full, then read it all.
            std::thread::sleep(Duration::from_millis(300));
            let mut got = Vec::new();
            s.read_to_end(&mut got)
                .expect("reading to the writer's FIN");
            got
        });
        lp.block_on(async move {
            let mut s = TcpStream::connect(addr).await?;
            for chunk in &chunks {
                s.write_all(chunk).await?;
            }
            s.shutdown().await
        })
        .expect("the task ran")
        .expect("every write and the shutdown succeeded");
        let got = reader.join().expect("the reader thread");
        assert_eq!(got.len(), expected.len(), "bytes received");
        assert!(got == expected, "the bytes arrived out of order");
    });
}
