//! A callback that panics unwinds through `run` to its caller; a caller that catches it
//! gets a loop that still works: what the loop lent to the callback (its slot, the shared
//! read buffer, a half-run batch) is back in place. One test per kind of callback.

mod util;

use looplab::{Loop, RunMode};
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::io::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::tcp::{accepted_pairs, describe, silent_peer};
use util::{new_loop, on_every_backend};

type Log = Rc<RefCell<Vec<String>>>;

/// Run `lp` until a callback panics, and hand back the panic's message.
fn run_until_the_panic(lp: &mut Loop) -> String {
    let caught = catch_unwind(AssertUnwindSafe(|| lp.run(RunMode::Default)));
    let payload: Box<dyn Any + Send> = match caught {
        Err(p) => p,
        Ok(r) => panic!("run returned {r:?} without the expected panic"),
    };
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// Run `lp` one tick at a time until `done()` (the guard timer fails a stuck test).
fn run_until(lp: &mut Loop, done: impl Fn() -> bool) {
    while !done() {
        lp.run(RunMode::Once).unwrap();
    }
}

/// A read callback panics while another stream's data waits in the same phase: after the
/// catch, the other stream still reads its data (not Eof: the shared read buffer is back),
/// and the stream whose callback panicked reads on with the same callback.
/// Issue 11, safety: panics (read callback).
#[test]
fn a_panicking_read_callback_leaves_every_stream_reading_data() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let mut pairs = accepted_pairs(&mut lp, 2);
        let log: Log = Rc::default();
        let panicked = Rc::new(Cell::new(None));
        for (i, (conn, client)) in pairs.iter_mut().enumerate() {
            client.write_all(format!("from {i}").as_bytes()).unwrap();
            let (l, p) = (log.clone(), panicked.clone());
            lp.read_start(*conn, move |_, _, ev| {
                l.borrow_mut().push(format!("{i}: {}", describe(&ev)));
                if p.get().is_none() {
                    p.set(Some(i));
                    panic!("read callback {i} panics");
                }
            })
            .unwrap();
        }
        util::fail_after(&mut lp, Duration::from_secs(20));
        let msg = run_until_the_panic(&mut lp);
        let first = panicked.get().expect("a read callback ran");
        assert_eq!(msg, format!("read callback {first} panics"));
        run_until(&mut lp, || log.borrow().len() >= 2);
        pairs[first].1.write_all(b"again").unwrap();
        run_until(&mut lp, || log.borrow().len() >= 3);
        let other = 1 - first;
        assert_eq!(
            *log.borrow(),
            [
                format!("{first}: data from {first}"),
                format!("{other}: data from {other}"),
                format!("{first}: data again"),
            ]
        );
        for (conn, _) in &pairs {
            assert!(lp.close(*conn));
        }
        lp.run(RunMode::Default).unwrap();
    });
}

/// An interval's callback panics on its first firing: after the catch, the interval
/// fires again with the same callback, can be cleared, and `run` then returns (it used to
/// hang on an armed, ref'd timer whose callback was lost). Issue 11, safety: panics
/// (interval callback).
#[test]
fn a_panicking_interval_fires_again_and_can_be_cleared() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let runs = Rc::new(Cell::new(0));
        let r = runs.clone();
        let t = lp.set_interval(Duration::from_millis(1), move |_, _| {
            r.set(r.get() + 1);
            if r.get() == 1 {
                panic!("interval panics");
            }
        });
        util::fail_after(&mut lp, Duration::from_secs(20));
        assert_eq!(run_until_the_panic(&mut lp), "interval panics");
        run_until(&mut lp, || runs.get() >= 2);
        assert!(lp.clear_timer(t), "the interval is still armed");
        assert!(!lp.run(RunMode::Default).unwrap());
        assert_eq!(runs.get(), 2);
    });
}

/// Three jobs finish before the loop looks, so one wake delivers all three; the first
/// `done` to run panics. After the catch the other two completions still arrive (the
/// loop wakes itself again for what the panic left in the queue). Issue 11, safety:
/// panics (pool `done` callback).
#[test]
fn a_panicking_done_callback_leaves_the_other_completions_to_arrive() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let log: Log = Rc::default();
        for job in 0..3 {
            let l = log.clone();
            lp.queue_work(
                move || job,
                move |_, _, r| {
                    let first = l.borrow().is_empty();
                    l.borrow_mut().push(format!("job {}", r.unwrap()));
                    if first {
                        panic!("done panics");
                    }
                },
            );
        }
        // Each worker wakes the loop after queueing its completion: three wakes asked
        // for means all three completions wait behind one pipe byte or fewer.
        let deadline = Instant::now() + Duration::from_secs(10);
        while lp.metrics().wake_requests < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        util::fail_after(&mut lp, Duration::from_secs(20));
        assert_eq!(run_until_the_panic(&mut lp), "done panics");
        assert_eq!(log.borrow().len(), 1);
        assert!(!lp.run(RunMode::Default).unwrap());
        let mut jobs = log.borrow().clone();
        jobs.sort();
        assert_eq!(jobs, ["job 0", "job 1", "job 2"]);
    });
}

/// Three handles close in one close phase; the first close callback panics. After the
/// catch the other two close callbacks run, every handle is gone, and `run` returns.
/// Issue 11, safety: panics (close callback).
#[test]
fn a_panicking_close_callback_leaves_the_other_closes_to_finish() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let log: Log = Rc::default();
        for i in 0..3 {
            let t = lp.set_interval(Duration::from_secs(60), |_, _| {});
            let l = log.clone();
            assert!(lp.close_then(t, move |_, _| {
                l.borrow_mut().push(format!("closed {i}"));
                if i == 0 {
                    panic!("close callback panics");
                }
            }));
        }
        util::fail_after(&mut lp, Duration::from_secs(20));
        assert_eq!(run_until_the_panic(&mut lp), "close callback panics");
        assert!(!lp.run(RunMode::Default).unwrap());
        assert_eq!(*log.borrow(), ["closed 0", "closed 1", "closed 2"]);
        let left = lp.handles().into_iter().filter(|i| i.closing).count();
        assert_eq!(left, 0, "{:?}", lp.handles());
    });
}

/// Two connects complete in the same poll; the first connect callback to run panics.
/// After the catch the other connect callback still arrives, both streams work (a write
/// completes on each), and both close with their close callbacks. Issue 11, safety:
/// panics (connect callback).
#[test]
fn a_panicking_connect_callback_leaves_the_loop_working() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let peer = silent_peer();
        let addr = peer.local_addr().unwrap();
        let log: Log = Rc::default();
        let mut conns = Vec::new();
        for i in 0..2 {
            let l = log.clone();
            let conn = lp
                .tcp_connect(addr, move |_, _, r| {
                    let first = l.borrow().is_empty();
                    l.borrow_mut().push(format!("{i} connected: {}", r.is_ok()));
                    if first {
                        panic!("connect callback panics");
                    }
                })
                .unwrap();
            conns.push(conn);
        }
        util::fail_after(&mut lp, Duration::from_secs(20));
        assert_eq!(run_until_the_panic(&mut lp), "connect callback panics");
        run_until(&mut lp, || log.borrow().len() >= 2);
        for (i, conn) in conns.iter().enumerate() {
            let l = log.clone();
            lp.write_then(*conn, b"still works", move |_, _, r| {
                l.borrow_mut().push(format!("{i} wrote: {}", r.is_ok()))
            })
            .unwrap();
            let l = log.clone();
            assert!(lp.close_then(*conn, move |_, _| {
                l.borrow_mut().push(format!("{i} closed"))
            }));
        }
        assert!(!lp.run(RunMode::Default).unwrap());
        let mut seen = log.borrow().clone();
        seen.sort();
        assert_eq!(
            seen,
            [
                "0 closed",
                "0 connected: true",
                "0 wrote: true",
                "1 closed",
                "1 connected: true",
                "1 wrote: true"
            ]
        );
    });
}
