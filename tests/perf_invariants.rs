//! What the performance work relies on, checked as behaviour rather than timing (a
//! timing assertion would fail on a busy CI machine): a pool completion does not wait
//! behind the rest of a poll's batch of events. Every test runs on every backend.

mod util;

use looplab::{Loop, RunMode, Tcp};
use std::cell::RefCell;
use std::io::Write;
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
