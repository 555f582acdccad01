//! A task's stream reads by readiness (`src/task/net/stream.rs`): the loop only says the
//! socket is readable, and `read` calls `recv(2)` itself with the fd the loop lent it.
//! Three things make that right, each tested here on every backend:
//! - an echo costs one `recv(2)` per message, none that finds nothing: after a short
//!   read the stream waits for the poller without trying again;
//! - a task reading a peer that has sent a lot yields every `READ_BUDGET` (16) reads, so
//!   one connection cannot keep the loop to itself;
//! - a task that does not read leaves the bytes in the kernel and the loop stops
//!   watching the socket: a level-triggered poller does not report it every tick.
//!
//! And, as for writes (`tests/task_lent_fd.rs`), a read after the loop closed the stream
//! fails and reads nothing of the file that took its fd's number; a read that loses a
//! race takes its note (what `explain_alive` lists) with it.

mod util;

use looplab::task::{self, TcpListener, TcpStream};
use looplab::{Loop, RunMode, Tcp};
use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;
use util::on_every_backend;

const ROUND_TRIPS: usize = 50;

/// A loop on backend `b` that fails the test after 20 s, and a plain listener for its
/// tasks to connect to.
fn loop_and_peers(b: looplab::Backend) -> (Loop, std::net::TcpListener, SocketAddr) {
    let mut lp = util::new_loop(b);
    util::fail_after(&mut lp, Duration::from_secs(20));
    let peers = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = peers.local_addr().expect("the listener's address");
    (lp, peers, addr)
}

/// A plain peer for the task to connect to, accepted once the loop has run a little.
fn connected_peer(lp: &mut Loop, peers: &std::net::TcpListener) -> std::net::TcpStream {
    peers.set_nonblocking(true).expect("nonblocking");
    loop {
        lp.run(RunMode::NoWait).expect("a tick");
        match peers.accept() {
            Ok((s, _)) => return s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("accept: {e}"),
        }
    }
}

#[test]
fn an_async_echo_costs_one_read_per_message() {
    on_every_backend(|b| {
        let (mut lp, peers, addr) = loop_and_peers(b);
        lp.spawn(async move {
            let mut s = TcpStream::connect(addr).await?;
            let mut buf = [0u8; 512];
            loop {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    return Ok::<_, std::io::Error>(());
                }
                s.write_all(&buf[..n]).await?;
            }
        });
        let mut peer = connected_peer(&mut lp, &peers);
        // The task's first read starts the watching; let it settle.
        for _ in 0..5 {
            lp.run(RunMode::NoWait).expect("a tick");
        }
        let before = lp.metrics();
        let mut reply = [0u8; 64];
        for i in 0..ROUND_TRIPS {
            peer.write_all(&[i as u8; 64]).expect("the peer's write");
            echoed(&mut lp, &mut peer, &mut reply);
            assert_eq!(reply, [i as u8; 64], "round trip {i}");
        }
        let after = lp.metrics();
        let (reads, empty) = (
            after.reads - before.reads,
            after.reads_empty - before.reads_empty,
        );
        assert_eq!(empty, 0, "reads that found nothing, in {reads} reads");
        assert_eq!(reads, ROUND_TRIPS as u64, "one read per message");
    });
}

/// Run `lp` a tick at a time without sleeping until `peer` has `reply.len()` bytes.
fn echoed(lp: &mut Loop, peer: &mut std::net::TcpStream, reply: &mut [u8]) {
    peer.set_nonblocking(true).expect("nonblocking");
    let mut got = 0;
    while got < reply.len() {
        lp.run(RunMode::NoWait).expect("a tick");
        match peer.read(&mut reply[got..]) {
            Ok(0) => panic!("the task closed the connection"),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("the peer's read: {e}"),
        }
    }
}

/// 4096 bytes wait in the socket, read a byte at a time: every read finds a byte at once,
/// so without a budget the task would read them all in one poll.
#[test]
fn a_task_reading_a_full_socket_yields_every_16_reads() {
    const BYTES: usize = 4096;
    on_every_backend(|b| {
        let (mut lp, peers, addr) = loop_and_peers(b);
        let got = Rc::new(Cell::new(0usize));
        let g = got.clone();
        let reader = lp.spawn(async move {
            let mut s = TcpStream::connect(addr).await?;
            task::sleep(Duration::from_millis(50)).await?; // the bytes are all there then
            let mut byte = [0u8; 1];
            while s.read(&mut byte).await? == 1 {
                g.set(g.get() + 1);
            }
            Ok::<_, std::io::Error>(())
        });
        let mut peer = connected_peer(&mut lp, &peers);
        peer.write_all(&[7u8; BYTES]).expect("the peer's write");
        drop(peer); // and the EOF after them
        let before = lp.metrics();
        lp.run(RunMode::Default).expect("the loop runs");
        let polled = lp.metrics().tasks_polled - before.tasks_polled;
        assert_eq!(got.get(), BYTES, "every byte read");
        assert!(
            polled >= (BYTES / 16) as u64,
            "{polled} polls for {BYTES} one-byte reads: the task did not yield every 16"
        );
        drop(reader);
    });
}

/// The task reads one message, then sleeps 300 ms while a second one waits in its
/// socket. The loop must stop watching the socket until the task reads again: a
/// level-triggered poller would otherwise wake the loop for it on every tick.
#[test]
fn a_task_that_does_not_read_leaves_the_loop_asleep() {
    on_every_backend(|b| {
        let mut lp = util::new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let client = move |addr: SocketAddr| {
            std::thread::spawn(move || {
                let mut s = std::net::TcpStream::connect(addr).expect("connect");
                s.write_all(b"first").expect("write");
                std::thread::sleep(Duration::from_millis(50));
                s.write_all(b"second").expect("write");
                s.shutdown(std::net::Shutdown::Write).expect("shutdown");
                let mut back = Vec::new();
                s.read_to_end(&mut back).expect("read back");
                back
            })
        };
        let before = lp.metrics();
        let (read_late, back) = lp
            .block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).await?;
                let peer = client(listener.local_addr());
                let mut s = listener.accept().await?;
                let mut buf = [0u8; 64];
                let n = s.read(&mut buf).await?;
                let mut all = buf[..n].to_vec();
                task::sleep(Duration::from_millis(300)).await?;
                loop {
                    let n = s.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    all.extend_from_slice(&buf[..n]);
                }
                s.write_all(&all).await?;
                s.shutdown().await?;
                drop(s);
                let back = task::offload(move || peer.join().expect("the client"))
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<_, std::io::Error>((all, back))
            })
            .expect("block_on")
            .expect("the exchange");
        assert_eq!(read_late, b"firstsecond");
        assert_eq!(back, b"firstsecond");
        let ticks = lp.metrics().ticks - before.ticks;
        assert!(
            ticks < 40,
            "{ticks} ticks while the task slept with bytes unread: the loop kept watching"
        );
    });
}

/// The loop closes the task's stream under it, and a plain socket takes the fd's
/// number at once (the lowest free fd), with bytes waiting in it. The task's next read
/// must fail, not read the other socket's bytes.
#[test]
fn a_read_after_the_loop_closed_the_stream_fails_and_reads_no_one_elses_bytes() {
    on_every_backend(|b| {
        let mut lp = util::new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let peers = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let victims = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let (addr, victim_addr) = (peers.local_addr().unwrap(), victims.local_addr().unwrap());
        // The task's peer: reads its hello, answers, and stays open until the test ends.
        let peer = std::thread::spawn(move || {
            let (mut p, _) = peers.accept().expect("the task's peer");
            let mut hello = [0u8; 5];
            p.read_exact(&mut hello).expect("hello");
            p.write_all(b"hi").expect("hi");
            let mut rest = Vec::new();
            let _ = p.read_to_end(&mut rest); // until the task's side closes
        });
        let to_close: Rc<Cell<Option<Tcp>>> = Rc::default();
        let victim: Rc<RefCell<Vec<std::net::TcpStream>>> = Rc::default();
        let (c, v) = (to_close.clone(), victim.clone());
        lp.set_interval(Duration::from_millis(2), move |lp, me| {
            if let Some(h) = c.take() {
                assert!(lp.close(h), "the stream was open");
                let s = std::net::TcpStream::connect(victim_addr).expect("the victim connects");
                let (mut victims_peer, _) = victims.accept().expect("accept");
                victims_peer.write_all(b"not yours").expect("write");
                v.borrow_mut().extend([s, victims_peer]);
                lp.clear_timer(me);
            }
        });
        let read = lp
            .block_on(async move {
                let mut s = TcpStream::connect(addr).await?;
                s.write_all(b"hello").await?; // lends the fd
                let mut buf = [0u8; 64];
                let n = s.read(&mut buf).await?; // reads with it
                assert_eq!(&buf[..n], b"hi");
                to_close.set(Some(s.handle()));
                task::sleep(Duration::from_millis(100)).await?;
                s.read(&mut buf).await
            })
            .expect("the task ran");
        assert_eq!(victim.borrow().len(), 2, "the victim connected");
        let err = read.expect_err("a read after the close must fail");
        assert_eq!(err.kind(), ErrorKind::NotConnected, "{err}");
        assert!(err.to_string().contains("was closed"), "{err}");
        peer.join().expect("the peer");
        let mut left = [0u8; 16];
        let mut victims = victim.borrow_mut();
        victims[0].set_nonblocking(true).unwrap();
        assert_eq!(
            victims[0].read(&mut left).ok(),
            Some(9),
            "the victim's bytes are all there"
        );
    });
}

/// A read dropped in the same poll in which it began to wait (a race's loser) is not
/// listed by `explain_alive` afterwards: the stream's futures withdraw their notes
/// themselves (`Reactor::withdraw`), in their `Drop`.
#[test]
fn explain_alive_forgets_a_read_that_lost_a_race() {
    on_every_backend(|b| {
        let (mut lp, peers, addr) = loop_and_peers(b);
        let waiter = lp.spawn(async move {
            let mut s = TcpStream::connect(addr).await?;
            let mut buf = [0u8; 16];
            // Polled once, finds nothing to read, waits: then the other side wins.
            let _ = task::race(s.read(&mut buf), task::yield_now()).await;
            task::sleep(Duration::from_secs(7200)).await?;
            Ok::<_, std::io::Error>(s)
        });
        let _peer = connected_peer(&mut lp, &peers);
        // Until the task waits on the sleep, or on it and something else.
        let why = loop {
            lp.run(RunMode::NoWait).expect("a tick");
            let why = lp.explain_alive();
            if why.contains("sleep 7") || why.contains("1 more") {
                break why;
            }
        };
        assert!(why.contains("tasks waiting on: sleep 7"), "{why}");
        assert!(
            !why.contains("more"),
            "the race's loser is still listed: {why}"
        );
        lp.close(&waiter);
        lp.run(RunMode::NoWait).expect("a tick");
    });
}

/// A read polled with the task's own waker keeps the task's handle, not a waker, and its
/// note is only counted (the stream says what the task waits on). Dropped in the poll
/// in which it began to wait, it takes that count with it: a task left holding nothing
/// that could wake it is still found out (`block_on` says so instead of hanging).
#[test]
fn a_read_dropped_in_its_first_poll_leaves_its_task_found_stuck() {
    on_every_backend(|b| {
        let (mut lp, peers, addr) = loop_and_peers(b);
        let peers = std::thread::spawn(move || peers.accept().map(|(s, _)| s));
        let err = lp
            .block_on(async move {
                let mut s = TcpStream::connect(addr).await?;
                let mut buf = [0u8; 16];
                std::future::poll_fn(|cx| {
                    let mut read = std::pin::pin!(s.read(&mut buf));
                    // Nothing sent yet: the read waits, by this task's handle.
                    assert!(std::future::Future::poll(read.as_mut(), cx).is_pending());
                    std::task::Poll::<()>::Pending // and is dropped here
                })
                .await;
                Ok::<_, std::io::Error>(())
            })
            .expect_err("a task that kept no waker");
        assert!(err.to_string().contains("kept no waker"), "{err}");
        drop(peers.join().expect("the peer thread"));
    });
}

/// A combinator that polls its future only after that future's own waker was woken, as
/// a set of futures polls only the members woken (futures' `FuturesUnordered`, say).
/// It hands the future a waker of its own, which counts its wakes.
struct PollsOnlyWhenWoken<F> {
    inner: std::pin::Pin<Box<F>>,
    mine: std::sync::Arc<CountingWaker>,
    first: bool,
}

#[derive(Default)]
struct CountingWaker {
    woken: std::sync::atomic::AtomicUsize,
    pending: std::sync::atomic::AtomicBool,
    outer: std::sync::Mutex<Option<std::task::Waker>>,
}

impl std::task::Wake for CountingWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        use std::sync::atomic::Ordering::SeqCst;
        self.woken.fetch_add(1, SeqCst);
        self.pending.store(true, SeqCst);
        if let Some(w) = self.outer.lock().unwrap().as_ref() {
            w.wake_by_ref();
        }
    }
}

impl<F: std::future::Future> std::future::Future for PollsOnlyWhenWoken<F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        use std::sync::atomic::Ordering::SeqCst;
        *self.mine.outer.lock().unwrap() = Some(cx.waker().clone());
        if !std::mem::take(&mut self.first) && !self.mine.pending.swap(false, SeqCst) {
            return std::task::Poll::Pending; // not its future's wake
        }
        let waker = std::task::Waker::from(self.mine.clone());
        let mut inner_cx = std::task::Context::from_waker(&waker);
        self.inner.as_mut().poll(&mut inner_cx)
    }
}

/// A read keeps its task's handle instead of its waker when polled with the task's own
/// waker (the loop then queues the task directly). Polled by a combinator with a waker
/// of the combinator's, it must keep and wake that waker: the combinator learns which of
/// its futures to poll from it, and would never poll the read again otherwise.
#[test]
fn a_read_polled_with_a_combinators_waker_wakes_that_waker() {
    on_every_backend(|b| {
        let (mut lp, peers, addr) = loop_and_peers(b);
        let mine = std::sync::Arc::new(CountingWaker::default());
        let counted = mine.clone();
        let got = lp.spawn(async move {
            let mut s = TcpStream::connect(addr).await?;
            let mut buf = [0u8; 16];
            let n = PollsOnlyWhenWoken {
                inner: Box::pin(s.read(&mut buf)),
                mine,
                first: true,
            }
            .await?;
            Ok::<_, std::io::Error>(buf[..n].to_vec())
        });
        let mut peer = connected_peer(&mut lp, &peers);
        // The read has found the socket empty and waits (its task is idle).
        for _ in 0..5 {
            lp.run(RunMode::NoWait).expect("a tick");
        }
        let before = counted.woken.load(std::sync::atomic::Ordering::SeqCst);
        peer.write_all(b"hello").expect("the peer's write");
        let bytes = lp
            .block_on(got)
            .expect("block_on")
            .expect("the task")
            .expect("the read");
        assert_eq!(bytes, b"hello");
        let after = counted.woken.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            after > before,
            "the combinator's waker was not woken by the bytes ({before} wakes before, {after} after)"
        );
    });
}
