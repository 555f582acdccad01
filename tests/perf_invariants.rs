//! What the performance work relies on, checked as behaviour rather than timing (a
//! timing assertion would fail on a busy CI machine): a pool completion does not wait
//! behind the rest of a poll's batch of events. Every test runs on every backend.

mod util;

use looplab::{Loop, RunMode, Tcp};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::on_every_backend;

/// Connections in the batch: enough that "before the rest" differs from "last".
const CONNS: usize = 8;

type Log = Rc<RefCell<Vec<String>>>;

/// `CONNS` accepted connections, each reading with a callback that logs `read`, after
/// `first` has run on the first of them to read.
fn reading_pairs(
    lp: &mut Loop,
    log: &Log,
    first: impl Fn(&mut Loop) + 'static,
) -> Vec<(Tcp, TcpStream)> {
    let pairs = util::tcp::accepted_pairs(lp, CONNS);
    let first = Rc::new(first);
    for (conn, _) in &pairs {
        let (log, first) = (log.clone(), first.clone());
        lp.read_start(*conn, move |lp, _, _| {
            if !log.borrow().iter().any(|l| l == "read") {
                first(lp);
            }
            log.borrow_mut().push("read".into());
        })
        .expect("read_start");
    }
    // Interest registered, nothing readable yet.
    lp.run(RunMode::NoWait).expect("a tick");
    pairs
}

/// Spin until the pool has written the wake pipe `after` times or more: the job is done
/// and its completion queued. Bounded: a pool that never finishes fails the test.
fn wait_for_wake(lp: &Loop, after: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while lp.metrics().wake_writes <= after {
        assert!(Instant::now() < deadline, "the pool job never finished");
        std::thread::yield_now();
    }
}

/// A job that finished before the poll: its `done` runs before every read callback of
/// the batch the poll returns, though its pipe became readable after the sockets (the
/// poller reports it last).
#[test]
fn a_finished_job_runs_before_the_batch_it_arrived_with() {
    on_every_backend(|b| {
        let mut lp = util::new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let log: Log = Rc::default();
        let mut pairs = reading_pairs(&mut lp, &log, |_| {});
        for (_, client) in &mut pairs {
            client.write_all(b"x").expect("a client's write");
        }
        let before = lp.metrics().wake_writes;
        let l = log.clone();
        lp.queue_work(|| (), move |_, _, _| l.borrow_mut().push("done".into()));
        wait_for_wake(&lp, before);
        while log.borrow().len() < CONNS + 1 {
            lp.run(RunMode::Once).expect("a tick");
        }
        let log = log.borrow();
        assert_eq!(
            log[0], "done",
            "the completion waited behind reads: {log:?}"
        );
        assert_eq!(log.iter().filter(|l| *l == "read").count(), CONNS);
    });
}

/// A job that finishes while the loop works through a batch: its `done` runs right after
/// the callback during which it finished, before the batch's other read callbacks.
#[test]
fn a_job_finished_during_a_batch_runs_before_the_rest_of_it() {
    on_every_backend(|b| {
        let mut lp = util::new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let log: Log = Rc::default();
        let l = log.clone();
        // The first read callback queues a job and returns only once it has finished.
        let mut pairs = reading_pairs(&mut lp, &log, move |lp| {
            let before = lp.metrics().wake_writes;
            let l = l.clone();
            lp.queue_work(|| (), move |_, _, _| l.borrow_mut().push("done".into()));
            wait_for_wake(lp, before);
        });
        for (_, client) in &mut pairs {
            client.write_all(b"x").expect("a client's write");
        }
        while log.borrow().len() < CONNS + 1 {
            lp.run(RunMode::Once).expect("a tick");
        }
        let log = log.borrow();
        let reads_before: usize = log.iter().take_while(|l| *l == "read").count();
        assert_eq!(
            reads_before, 1,
            "the completion waited for the rest of the batch: {log:?}"
        );
        assert_eq!(log.len(), CONNS + 1);
    });
}

/// Round trips of the short-read tests.
const ROUND_TRIPS: usize = 50;

/// The loop's side of one connection, echoing with a callback; and the client's side.
fn echoing_pair(lp: &mut Loop, log: &Log) -> (Tcp, TcpStream) {
    let (conn, client) = util::tcp::accepted_pairs(lp, 1).remove(0);
    let log = log.clone();
    lp.read_start(conn, move |lp, conn, ev| match ev {
        looplab::ReadEvent::Data(bytes) => {
            let _ = lp.write(conn, bytes);
        }
        looplab::ReadEvent::Eof => log.borrow_mut().push("eof".into()),
        looplab::ReadEvent::Error(e) => log.borrow_mut().push(format!("error {e}")),
    })
    .expect("read_start");
    (conn, client)
}

/// Run `lp` until `log` holds `n` lines. Bounded by the loop's `fail_after`.
fn run_until_logged(lp: &mut Loop, log: &Log, n: usize) {
    while log.borrow().len() < n {
        lp.run(RunMode::Once).expect("a tick");
    }
}

/// A read that returns fewer bytes than the buffer holds has emptied the socket: the loop
/// stops there instead of making one more `recv` that finds nothing (`EAGAIN`). So an
/// echo costs one read per message, on every backend, edge-triggered (mio) or not.
#[test]
fn a_short_read_ends_the_reading_one_read_per_message() {
    on_every_backend(|b| {
        let mut lp = util::new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let log: Log = Rc::default();
        let (_conn, mut client) = echoing_pair(&mut lp, &log);
        // `read_start`'s own first look (it finds nothing) is not one of the round trips.
        lp.run(RunMode::NoWait).expect("a tick");
        let before = lp.metrics();
        let mut reply = [0u8; 64];
        for i in 0..ROUND_TRIPS {
            client.write_all(&[i as u8; 64]).expect("a client's write");
            run_until_echoed(&mut lp, &mut client, &mut reply);
            assert_eq!(reply, [i as u8; 64], "round trip {i}");
        }
        let after = lp.metrics();
        let reads = after.reads - before.reads;
        let empty = after.reads_empty - before.reads_empty;
        assert_eq!(empty, 0, "reads that found nothing, in {reads} reads");
        assert_eq!(reads, ROUND_TRIPS as u64, "one read per message");
    });
}

/// Run `lp` a tick at a time, without sleeping in the poll, until `client` has received
/// `reply.len()` bytes into `reply`. Bounded by the loop's `fail_after`.
fn run_until_echoed(lp: &mut Loop, client: &mut TcpStream, reply: &mut [u8]) {
    client.set_nonblocking(true).expect("nonblocking");
    let mut got = 0;
    while got < reply.len() {
        lp.run(RunMode::NoWait).expect("a tick");
        match client.read(&mut reply[got..]) {
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("the client's read: {e}"),
        }
    }
    client.set_nonblocking(false).expect("blocking again");
}

/// Bytes and the peer's FIN that arrive before the loop looks: the short read of the
/// bytes must not end reading, or an edge-triggered poller would never report the EOF.
/// (The loop writes nothing back here: a write's ACK would wake the socket and hide it.)
#[test]
fn bytes_and_fin_together_are_both_read() {
    on_every_backend(|b| {
        let mut lp = util::new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let log: Log = Rc::default();
        let (conn, mut client) = util::tcp::accepted_pairs(&mut lp, 1).remove(0);
        let l = log.clone();
        lp.read_start(conn, move |_, _, ev| {
            l.borrow_mut().push(match ev {
                looplab::ReadEvent::Data(bytes) => format!("{} bytes", bytes.len()),
                looplab::ReadEvent::Eof => "eof".into(),
                looplab::ReadEvent::Error(e) => format!("error {e}"),
            })
        })
        .expect("read_start");
        lp.run(RunMode::NoWait).expect("a tick"); // read_start's own look: nothing yet
        client.write_all(b"last words").expect("a client's write");
        client
            .shutdown(std::net::Shutdown::Write)
            .expect("the client's FIN");
        std::thread::sleep(Duration::from_millis(20)); // both in the socket before the poll
        run_until_logged(&mut lp, &log, 2);
        assert_eq!(*log.borrow(), ["10 bytes", "eof"]);
    });
}

/// A FIN that arrives after a short read ended reading is reported by the poller anew.
#[test]
fn a_fin_after_a_short_read_is_still_seen() {
    on_every_backend(|b| {
        let mut lp = util::new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let log: Log = Rc::default();
        let (_conn, mut client) = echoing_pair(&mut lp, &log);
        client.write_all(b"ping").expect("a client's write");
        run_until_echoed(&mut lp, &mut client, &mut [0u8; 4]);
        client
            .shutdown(std::net::Shutdown::Write)
            .expect("the client's FIN");
        run_until_logged(&mut lp, &log, 1);
        assert_eq!(*log.borrow(), ["eof"]);
    });
}
