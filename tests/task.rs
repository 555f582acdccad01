//! Futures on the loop (`looplab::task`): the executor, its wakers, `JoinHandle` and
//! `block_on`, on every backend this OS offers. The leaf futures are tested in
//! `tests/task_leaves.rs`; what the trace and `explain_alive` say, in `tests/task_trace.rs`.

#[path = "util/task.rs"]
mod task_util;
mod util;

use looplab::task::{self, JoinError};
use looplab::{Backend, HandleKind, RunMode};
use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use task_util::{fail_after, kinds, left, GUARD};
use util::{new_loop, on_every_backend};

/// `block_on` runs the loop until its future is done: a sleep is never early.
#[test]
fn block_on_sleeps_and_is_never_early() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let guard = fail_after(&mut lp, GUARD);
        let started = Instant::now();
        let out = lp
            .block_on(async {
                task::sleep(Duration::from_millis(30)).await?;
                Ok::<_, io::Error>(7)
            })
            .unwrap()
            .unwrap();
        assert_eq!(out, 7);
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(lp.metrics().tasks_alive, 0);
        assert!(kinds(&lp, guard, HandleKind::Timer)
            .iter()
            .all(|t| !t.has_ref));
    });
}

/// Shared between a test future and the thread that wakes it.
struct Remote {
    count: AtomicUsize,
    waker: Mutex<Option<Waker>>,
}

impl Remote {
    fn new() -> Arc<Remote> {
        Arc::new(Remote {
            count: AtomicUsize::new(0),
            waker: Mutex::new(None),
        })
    }

    fn store(&self, cx: &Context<'_>) {
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
    }

    fn bump_and_wake(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        if let Some(w) = self.waker.lock().unwrap().as_ref() {
            w.wake_by_ref();
        }
    }
}

/// Lost wake: every wake lands *during* the poll (the poll waits for the other thread
/// to have woken before it returns Pending). The loop clears the scheduled flag before
/// polling, so each of those wakes queues the task again; if it cleared it after, the
/// first such wake would be lost and the guard timer would fail the test.
#[test]
fn a_wake_racing_the_poll_is_not_lost() {
    on_every_backend(|b| {
        const ROUNDS: usize = 100;
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let remote = Remote::new();
        let (ask, asked) = mpsc::channel::<()>();
        let (woke, woken) = mpsc::channel::<()>();
        let r = remote.clone();
        let waker_thread = std::thread::spawn(move || {
            for _ in 0..ROUNDS {
                if asked.recv_timeout(GUARD).is_err() {
                    return;
                }
                r.bump_and_wake();
                let _ = woke.send(());
            }
        });
        let polls = Rc::new(Cell::new(0));
        let p = polls.clone();
        let r = remote.clone();
        lp.block_on(poll_fn(move |cx| {
            p.set(p.get() + 1);
            if r.count.load(Ordering::SeqCst) == ROUNDS {
                return Poll::Ready(());
            }
            r.store(cx);
            ask.send(()).expect("the waker thread is there");
            woken.recv_timeout(GUARD).expect("the waker thread woke us");
            Poll::Pending // the wake already happened, during this poll
        }))
        .unwrap();
        waker_thread.join().unwrap();
        assert_eq!(polls.get(), ROUNDS + 1);
    });
}

/// Waker replacement: a sleep first polled by task A moves to task B. The timer wakes
/// B (the latest waker), never A; A, whose waker nobody holds any more, is not polled
/// again, and no longer holds the loop.
#[test]
fn only_the_latest_waker_is_woken() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let parked: Rc<RefCell<Option<Pin<Box<task::Sleep>>>>> = Rc::default();
        let a_polls = Rc::new(Cell::new(0));
        let (p, n) = (parked.clone(), a_polls.clone());
        // Unref'd: once B holds the sleep, nothing can wake A, and A must not hold the loop.
        let a = lp.spawn(poll_fn(move |cx| {
            n.set(n.get() + 1);
            if n.get() == 1 {
                let mut sleep = Box::pin(task::sleep(Duration::from_millis(20)));
                assert!(sleep.as_mut().poll(cx).is_pending());
                *p.borrow_mut() = Some(sleep);
            }
            Poll::<()>::Pending
        }));
        lp.unref_handle(&a);
        let p = parked.clone();
        let b_done = lp.spawn(async move {
            let sleep = p.borrow_mut().take().expect("A was polled first");
            sleep.await
        });
        lp.run(RunMode::Default).unwrap();
        assert!(b_done.is_finished());
        assert_eq!(a_polls.get(), 1, "A's stale waker must not be woken");
    });
}

/// 10 000 wakes from another thread while the task waits are one queue entry, one
/// self-pipe write and one poll; 10 000 more while the loop runs are never lost.
#[test]
fn ten_thousand_cross_thread_wakes_coalesce_and_none_is_lost() {
    on_every_backend(|b| {
        const WAKES: usize = 10_000;
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let remote = Remote::new();
        let polls = Rc::new(Cell::new(0usize));
        let (r, p) = (remote.clone(), polls.clone());
        let done = lp.spawn(poll_fn(move |cx| {
            p.set(p.get() + 1);
            if r.count.load(Ordering::SeqCst) == 2 * WAKES {
                return Poll::Ready(());
            }
            r.store(cx);
            Poll::Pending
        }));
        lp.run(RunMode::NoWait).unwrap();
        assert_eq!(polls.get(), 1);
        let writes_before = lp.metrics().wake_writes;
        let r = remote.clone();
        std::thread::spawn(move || (0..WAKES).for_each(|_| r.bump_and_wake()))
            .join()
            .unwrap();
        assert_eq!(
            lp.metrics().wake_writes,
            writes_before + 1,
            "one pipe write"
        );
        lp.run(RunMode::NoWait).unwrap();
        assert_eq!(polls.get(), 2, "10 000 wakes, one poll");

        let r = remote.clone();
        let waker_thread = std::thread::spawn(move || (0..WAKES).for_each(|_| r.bump_and_wake()));
        lp.run(RunMode::Default).unwrap();
        waker_thread.join().unwrap();
        assert!(done.is_finished(), "the last wake was not lost");
        assert!(polls.get() <= 2 + WAKES, "at most one poll per wake");
        let m = lp.metrics();
        assert!(m.wake_writes <= m.wake_requests);
    });
}

/// A panicking task hands its panic to its JoinHandle; the loop and its other tasks go on.
#[test]
fn a_task_panic_reaches_its_join_handle_and_the_loop_goes_on() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let bad = lp.spawn(async {
            task::sleep(Duration::from_millis(1)).await?;
            if true {
                panic!("boom in a task");
            }
            Ok::<(), io::Error>(())
        });
        let good = lp.spawn(async {
            task::sleep(Duration::from_millis(5)).await?;
            Ok::<_, io::Error>("still here")
        });
        let (bad, good) = lp.block_on(async move { (bad.await, good.await) }).unwrap();
        assert_eq!(
            bad.unwrap_err(),
            JoinError::Panicked("boom in a task".into())
        );
        assert_eq!(good.unwrap().unwrap(), "still here");
        // And the loop still runs callbacks and tasks afterwards.
        let fired = Rc::new(Cell::new(false));
        let f = fired.clone();
        lp.set_timeout(Duration::from_millis(1), move |_, _| f.set(true));
        lp.run(RunMode::Default).unwrap();
        assert!(fired.get());
    });
}

/// The panic of `block_on`'s own future comes out of `block_on`.
#[test]
fn a_panic_in_the_root_future_propagates() {
    let mut lp = new_loop(Backend::default_for_os());
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lp.block_on(async { panic!("root boom") })
    }));
    let payload = caught.expect_err("block_on resumes the panic");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"root boom"));
    // The loop is whole: it runs another future.
    assert_eq!(lp.block_on(async { 3 }).unwrap(), 3);
}

/// `block_on` returns as soon as its future is done, although unref'd work (a sleeping
/// task, an interval) remains; both are still there afterwards.
#[test]
fn block_on_returns_while_unrefd_work_remains() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let guard = fail_after(&mut lp, GUARD);
        let sleeper = lp.spawn(task::sleep(Duration::from_secs(3600)));
        assert!(lp.unref_handle(&sleeper));
        let interval = lp.set_interval(Duration::from_millis(2), |_, _| {});
        lp.unref_handle(interval);
        let v = lp
            .block_on(async { task::sleep(Duration::from_millis(10)).await.map(|()| 1) })
            .unwrap()
            .unwrap();
        assert_eq!(v, 1);
        assert!(!sleeper.is_finished());
        assert_eq!(lp.metrics().tasks_alive, 1);
        assert!(
            lp.explain_alive().contains("unref'd"),
            "{}",
            lp.explain_alive()
        );
        lp.close(&sleeper);
        lp.clear_timer(interval);
        lp.run(RunMode::Default).unwrap();
        assert!(left(&lp, guard).is_empty(), "{:?}", lp.handles());
    });
}

/// A hand-written future that returns Pending without storing its waker can never be
/// woken: `block_on` says so instead of hanging, and the trace names the task.
#[test]
fn block_on_refuses_a_future_that_keeps_no_waker() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let guard = fail_after(&mut lp, GUARD);
        let err = lp.block_on(poll_fn(|_cx| Poll::<()>::Pending)).unwrap_err();
        assert!(err.to_string().contains("kept no waker"), "{err}");
        lp.run(RunMode::Default).unwrap();
        assert!(left(&lp, guard).is_empty(), "{:?}", lp.handles());
    });
}

/// A leaf future polled outside a looplab task is an error, not a hang.
#[test]
fn a_leaf_future_outside_a_task_is_an_error() {
    let mut sleep = std::pin::pin!(task::sleep(Duration::from_millis(1)));
    let mut cx = Context::from_waker(Waker::noop());
    match sleep.as_mut().poll(&mut cx) {
        Poll::Ready(Err(e)) => assert!(e.to_string().contains("outside a looplab task"), "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Callbacks and tasks on one loop, in phase order: a timer callback wakes a task and
/// sets an immediate; the task runs in the tasks phase, before the check phase.
#[test]
fn callbacks_and_tasks_interleave_in_phase_order() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let log = Rc::new(RefCell::new(Vec::new()));
        let waiter: Rc<RefCell<Option<Waker>>> = Rc::default();
        let fired = Rc::new(Cell::new(false));
        let (l, w, f) = (log.clone(), waiter.clone(), fired.clone());
        lp.spawn(poll_fn(move |cx| {
            if f.get() {
                l.borrow_mut().push("task");
                return Poll::Ready(());
            }
            *w.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }));
        let (l, w, f) = (log.clone(), waiter.clone(), fired.clone());
        lp.set_timeout(Duration::from_millis(1), move |lp, _| {
            l.borrow_mut().push("timer");
            f.set(true);
            if let Some(w) = w.borrow_mut().take() {
                w.wake();
            }
            let l = l.clone();
            lp.set_immediate(move |_, _| l.borrow_mut().push("immediate"));
        });
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*log.borrow(), ["timer", "task", "immediate"]);
    });
}

/// `abort` drops a waiting task at once: its JoinHandle says Aborted and its sleep's
/// timer is gone.
#[test]
fn abort_drops_a_waiting_task() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let guard = fail_after(&mut lp, GUARD);
        let victim = lp.spawn(task::sleep(Duration::from_secs(3600)));
        let result = lp
            .block_on(async move {
                task::sleep(Duration::from_millis(2)).await?;
                victim.abort();
                Ok::<_, io::Error>(victim.await)
            })
            .unwrap()
            .unwrap();
        assert_eq!(result.unwrap_err(), JoinError::Aborted);
        lp.run(RunMode::Default).unwrap();
        assert!(left(&lp, guard).is_empty(), "{:?}", lp.handles());
    });
}

/// Tasks spawn tasks; an unref'd task does not hold the loop.
#[test]
fn tasks_spawn_tasks_and_unref_works() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let total = lp
            .block_on(async {
                let children: Vec<_> = (0..10u64)
                    .map(|i| task::spawn(async move { i * i }))
                    .collect();
                let mut sum = 0;
                for c in children {
                    sum += c.await?;
                }
                Ok::<_, JoinError>(sum)
            })
            .unwrap()
            .unwrap();
        assert_eq!(total, 285);
        let forever = lp.spawn(task::sleep(Duration::from_secs(3600)));
        lp.unref_handle(&forever);
        let started = Instant::now();
        assert!(!lp.run(RunMode::Default).unwrap());
        assert!(started.elapsed() < Duration::from_secs(3000));
        assert!(!forever.is_finished());
    });
}
