//! Futures on the loop (`looplab::task`): the executor, its wakers, and the leaf futures,
//! on every backend this OS offers.

mod util;

use looplab::task::{self, Either, JoinError, TcpListener, TcpStream};
use looplab::{Backend, HandleKind, Loop, RunMode};
use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use util::{new_loop, on_every_backend};

const GUARD: Duration = Duration::from_secs(20);

/// Fail the test instead of hanging if the loop still waits after `GUARD`; the timer is
/// unref'd (it never holds the loop) and returned, so checks can leave it out.
fn fail_after(lp: &mut Loop, limit: Duration) -> looplab::Timer {
    let t = lp.set_timeout(limit, move |lp, _| {
        panic!("still waiting after {limit:?}: {}", lp.explain_alive())
    });
    lp.unref_handle(t);
    t
}

/// Every handle but the guard timer.
fn left(lp: &Loop, guard: looplab::Timer) -> Vec<looplab::HandleInfo> {
    let guard: looplab::Handle = guard.into();
    lp.handles()
        .into_iter()
        .filter(|i| i.handle != guard)
        .collect()
}

fn kinds(lp: &Loop, guard: looplab::Timer, kind: HandleKind) -> Vec<looplab::HandleInfo> {
    left(lp, guard)
        .into_iter()
        .filter(|i| i.kind == kind)
        .collect()
}

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

/// The trace shows the wake path: which task was polled and what woke it.
#[test]
fn the_trace_names_what_woke_each_task() {
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut lp = Loop::builder()
        .trace_to(SharedBuf(out.clone()))
        .threadpool_size(1)
        .build()
        .unwrap();
    lp.block_on(async {
        task::sleep(Duration::from_millis(2)).await?;
        task::offload(|| 5).await
    })
    .unwrap()
    .unwrap();
    let trace = String::from_utf8(out.lock().unwrap().clone()).unwrap();
    assert!(trace.contains("tasks: polled 1 \u{2014} #"), "{trace}");
    assert!(trace.contains("woken by spawn"), "{trace}");
    assert!(trace.contains("woken by timer #"), "{trace}");
    assert!(trace.contains("woken by the pool (finished)"), "{trace}");
}

#[derive(Clone)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `explain_alive` says what the tasks holding the loop wait on.
#[test]
fn explain_alive_names_what_tasks_wait_on() {
    let mut lp = new_loop(Backend::default_for_os());
    let sleeper = lp.spawn(task::sleep(Duration::from_secs(3600)));
    lp.run(RunMode::NoWait).unwrap();
    let why = lp.explain_alive();
    assert!(
        why.contains("ref'd: 1 task (tasks waiting on: sleep 3599"),
        "{why}"
    );
    lp.close(&sleeper);
    lp.run(RunMode::Default).unwrap();
    assert!(lp.handles().is_empty(), "{:?}", lp.handles());
}

/// `race`: the first to finish wins, the loser is dropped at once (its timer cleared);
/// `timeout` is a race against a sleep.
#[test]
fn race_drops_the_loser_and_timeout_times_out() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let guard = fail_after(&mut lp, GUARD);
        let won = lp
            .block_on(task::race(
                task::sleep(Duration::from_secs(3600)),
                task::sleep(Duration::from_millis(5)),
            ))
            .unwrap();
        assert!(matches!(won, Either::Right(Ok(()))));
        assert!(
            kinds(&lp, guard, HandleKind::Timer).is_empty(),
            "{:?}",
            lp.handles()
        );
        let late = lp
            .block_on(task::timeout(
                Duration::from_millis(5),
                task::sleep(Duration::from_secs(3600)),
            ))
            .unwrap();
        assert_eq!(late.unwrap_err().kind(), io::ErrorKind::TimedOut);
        assert!(
            kinds(&lp, guard, HandleKind::Timer).is_empty(),
            "{:?}",
            lp.handles()
        );
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

/// fs, dns and offload on the pool.
#[test]
fn pool_futures_read_files_resolve_and_offload() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let dir = std::env::temp_dir().join(format!("looplab-task-{}-{b}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.txt");
        let p = path.clone();
        let (back, size, addrs, sum) = lp
            .block_on(async move {
                task::fs::write(&p, "hello pool").await?;
                let back = task::fs::read(&p).await?;
                let size = task::fs::stat(&p).await?.len();
                let addrs = task::dns::lookup("127.0.0.1", 80).await?;
                let sum = task::offload(|| (1..=100u32).sum::<u32>()).await?;
                Ok::<_, io::Error>((back, size, addrs, sum))
            })
            .unwrap()
            .unwrap();
        assert_eq!(back, b"hello pool");
        assert_eq!(size, 10);
        assert_eq!(addrs[0], "127.0.0.1:80".parse().unwrap());
        assert_eq!(sum, 5050);
        let missing = lp.block_on(task::fs::read(dir.join("missing"))).unwrap();
        assert_eq!(missing.unwrap_err().kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

/// Echo over the task API: a server task per connection, clients as tasks, every byte
/// of every message checked.
async fn client(addr: std::net::SocketAddr, id: usize, rounds: usize) -> io::Result<usize> {
    let mut conn = TcpStream::connect(addr).await?;
    let mut checked = 0;
    for round in 0..rounds {
        let msg: Vec<u8> = (0..100 + id * 7 + round)
            .map(|i| (i * 31 + id * 17 + round) as u8)
            .collect();
        conn.write_all(&msg).await?;
        let mut back = vec![0u8; msg.len()];
        let mut got = 0;
        while got < back.len() {
            let n = conn.read(&mut back[got..]).await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "echo closed"));
            }
            got += n;
        }
        assert_eq!(back, msg, "client {id} round {round}");
        checked += msg.len();
    }
    conn.shutdown().await?;
    let mut rest = [0u8; 16];
    assert_eq!(
        conn.read(&mut rest).await?,
        0,
        "the server's FIN follows ours"
    );
    Ok(checked)
}

#[test]
fn the_async_echo_serves_n_clients_every_byte_checked() {
    use looplab::servers::echo::EchoConfig;
    use looplab::servers::echo_async::EchoAsync;
    on_every_backend(|b| {
        const CLIENTS: usize = 50;
        const ROUNDS: usize = 20;
        let mut lp = new_loop(b);
        let guard = fail_after(&mut lp, GUARD);
        let config = EchoConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..EchoConfig::default()
        };
        let echo = EchoAsync::listen(&mut lp, config).unwrap();
        let addr = echo.local_addr();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|id| lp.spawn(client(addr, id, ROUNDS)))
            .collect();
        let checked = lp
            .block_on(async move {
                let mut total = 0;
                for c in clients {
                    total += c.await.map_err(io::Error::from)??;
                }
                Ok::<_, io::Error>(total)
            })
            .unwrap()
            .unwrap();
        let expected: usize = (0..CLIENTS)
            .flat_map(|id| (0..ROUNDS).map(move |r| 100 + id * 7 + r))
            .sum();
        assert_eq!(checked, expected);
        let stats = echo.stats();
        assert_eq!(stats.accepted, CLIENTS as u64);
        assert_eq!(stats.bytes, expected as u64);
        echo.shutdown(&mut lp);
        lp.run(RunMode::Default).unwrap();
        assert!(left(&lp, guard).is_empty(), "{:?}", lp.handles());
    });
}

/// The callback echo (rung 4) and task clients on one loop.
#[test]
fn task_clients_against_the_callback_echo_on_one_loop() {
    use looplab::servers::echo::{Echo, EchoConfig};
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let guard = fail_after(&mut lp, GUARD);
        let config = EchoConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..EchoConfig::default()
        };
        let echo = Echo::listen(&mut lp, config).unwrap();
        let addr = echo.local_addr(&lp).unwrap();
        let clients: Vec<_> = (0..10).map(|id| lp.spawn(client(addr, id, 10))).collect();
        let e = echo.clone();
        lp.block_on(async move {
            for c in clients {
                c.await.expect("client task").expect("client io");
            }
        })
        .unwrap();
        e.shutdown(&mut lp);
        lp.run(RunMode::Default).unwrap();
        assert_eq!(echo.stats().accepted, 10);
        assert!(left(&lp, guard).is_empty(), "{:?}", lp.handles());
    });
}

/// Dropping each leaf future before it finishes undoes what it started: afterwards the
/// loop holds no timer, no registration and no queued work of it.
#[test]
fn dropping_a_leaf_future_cancels_it() {
    on_every_backend(|b| {
        let mut lp = Loop::builder()
            .backend(b)
            .threadpool_size(1)
            .build()
            .unwrap();
        let guard = fail_after(&mut lp, GUARD);
        let quick = || task::sleep(Duration::from_millis(2));

        // A sleep: its timer is cleared.
        lp.block_on(
            async move { task::race(task::sleep(Duration::from_secs(3600)), quick()).await },
        )
        .unwrap();
        assert!(
            kinds(&lp, guard, HandleKind::Timer).is_empty(),
            "{:?}",
            lp.handles()
        );

        // A read and an accept: the loop stops watching the stream and the listener.
        let (listener, server_side, client_side) = lp
            .block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).await?;
                let client = TcpStream::connect(listener.local_addr()).await?;
                let mut server = listener.accept().await?;
                let mut buf = [0u8; 8];
                let r = task::race(server.read(&mut buf), quick()).await;
                assert!(matches!(r, Either::Right(_)), "nothing was sent");
                let a = task::race(listener.accept(), quick()).await;
                assert!(matches!(a, Either::Right(_)), "nobody else connected");
                Ok::<_, io::Error>((listener, server, client))
            })
            .unwrap()
            .unwrap();
        let watched: Vec<_> = lp.handles().into_iter().filter(|i| i.active).collect();
        assert!(
            watched.iter().all(|i| i.kind == HandleKind::Timer),
            "a dropped read/accept left {watched:?} watched"
        );
        assert_eq!(kinds(&lp, guard, HandleKind::Listener).len(), 1);
        assert_eq!(kinds(&lp, guard, HandleKind::Tcp).len(), 2);
        drop((listener, server_side, client_side));
        lp.run(RunMode::Default).unwrap(); // the drops' asks close them
        assert!(left(&lp, guard).is_empty(), "{:?}", lp.handles());

        // Pool work not started yet: cancelled (the one worker is busy behind a gate).
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().unwrap();
        let g = gate.clone();
        let busy = lp.spawn(task::offload(move || drop(g.lock())));
        lp.block_on(async move {
            task::race(task::offload(|| 1), quick()).await;
        })
        .unwrap();
        assert_eq!(
            kinds(&lp, guard, HandleKind::Work).len(),
            1,
            "only the busy job is left"
        );
        drop(held);
        lp.block_on(busy).unwrap().unwrap().unwrap();
        assert!(kinds(&lp, guard, HandleKind::Work).is_empty());

        // A signal stream: its watcher is closed.
        lp.block_on(async move {
            let mut usr2 = task::signal(libc::SIGUSR2);
            task::race(usr2.next(), quick()).await;
        })
        .unwrap();
        lp.run(RunMode::Default).unwrap();
        assert!(left(&lp, guard).is_empty(), "{:?}", lp.handles());
    });
}

/// A task that blocks the loop in one poll is named: by the watchdog while it runs, and
/// by the trace's slow-callback note after.
#[test]
fn a_task_that_polls_too_long_is_named() {
    on_every_backend(|b| {
        let trace = Arc::new(Mutex::new(Vec::new()));
        let mut lp = Loop::builder()
            .backend(b)
            .trace_to(SharedBuf(trace.clone()))
            .watchdog_to(Duration::from_millis(50), io::sink())
            .build()
            .unwrap();
        let hog = lp.spawn(async {
            std::thread::sleep(Duration::from_millis(200)); // blocks the loop: the mistake
        });
        let h = looplab::Handle::from(&hog);
        lp.run(RunMode::Default).unwrap();
        let reports = lp.watchdog_reports();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(
            reports[0].contains(&format!("task {h} has run")) && reports[0].contains("one poll"),
            "{}",
            reports[0]
        );
        let trace = String::from_utf8(trace.lock().unwrap().clone()).unwrap();
        assert!(
            trace.contains(&format!("slow callback: task {h} (one poll) took")),
            "{trace}"
        );
    });
}

/// A future dropped in the same poll in which it said what it waits on (a race's loser)
/// is not listed by `explain_alive` afterwards.
#[test]
fn explain_alive_forgets_a_dropped_leaf() {
    let mut lp = new_loop(Backend::default_for_os());
    let waiter = lp.spawn(async {
        let _ = task::race(task::sleep(Duration::from_secs(3600)), async {}).await;
        let _ = task::sleep(Duration::from_secs(7200)).await;
    });
    lp.run(RunMode::NoWait).unwrap();
    let why = lp.explain_alive();
    assert!(why.contains("tasks waiting on: sleep 7199"), "{why}");
    assert!(
        !why.contains("sleep 3599"),
        "the race's loser is still listed: {why}"
    );
    lp.close(&waiter);
    lp.run(RunMode::Default).unwrap();
    assert!(lp.handles().is_empty(), "{:?}", lp.handles());
}

/// A task other than `block_on`'s that kept no waker is named in the trace and stops
/// holding the loop (nothing could ever run it again), so `run` returns.
#[test]
fn a_task_that_kept_no_waker_stops_holding_the_loop() {
    let trace = Arc::new(Mutex::new(Vec::new()));
    let mut lp = Loop::builder()
        .trace_to(SharedBuf(trace.clone()))
        .build()
        .unwrap();
    let lost = lp.spawn(poll_fn(|_cx| Poll::<()>::Pending));
    let h = looplab::Handle::from(&lost);
    assert!(!lp.run(RunMode::Default).unwrap(), "the loop exits");
    let trace = String::from_utf8(trace.lock().unwrap().clone()).unwrap();
    assert!(
        trace.contains(&format!("task {h} returned Pending but kept no waker")),
        "{trace}"
    );
    assert!(!lost.is_finished());
    lp.close(&lost);
    lp.run(RunMode::Default).unwrap();
}

/// How many bytes each of `TASKS` pending tasks adds to the process, beyond its future.
/// Run alone in a child process (see the next test): other tests' memory must not count.
#[test]
#[ignore = "a probe: a_task_costs_at_most_1_kib_beyond_its_future runs it in its own process"]
fn task_memory_probe() {
    const TASKS: usize = 100_000;
    fn resident_bytes() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }
    let mut lp = new_loop(Backend::default_for_os());
    let future = async {
        let stays = [0u8; 64]; // held across the await: part of the future
        std::future::pending::<()>().await;
        std::hint::black_box(&stays);
    };
    let future_size = std::mem::size_of_val(&future);
    drop(future);
    let before = resident_bytes();
    for _ in 0..TASKS {
        let _detached = lp.spawn(async {
            let stays = [0u8; 64];
            std::future::pending::<()>().await;
            std::hint::black_box(&stays);
        });
    }
    lp.run(RunMode::NoWait).unwrap(); // each task polled once: waiting, as tasks do
    let per_task = (resident_bytes() - before) / TASKS;
    assert_eq!(lp.metrics().tasks_alive, TASKS);
    println!("task memory: {per_task} bytes per task with a {future_size}-byte future");
}

/// A task costs at most 1 KiB of memory beyond its future (its handle slot, waker,
/// boxes, join cell and ready-list entry), measured as the resident-memory growth of
/// 100 000 pending tasks in a process of their own.
#[test]
fn a_task_costs_at_most_1_kib_beyond_its_future() {
    if !std::path::Path::new("/proc/self/statm").exists() {
        return; // resident memory is read from /proc (Linux)
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "task_memory_probe", "--ignored", "--nocapture"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("task memory: "))
        .unwrap_or_else(|| panic!("no figure in: {stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let per_task: usize = words[2].parse().unwrap();
    let future: usize = words[8].trim_end_matches("-byte").parse().unwrap();
    eprintln!("{line}");
    assert!(
        per_task <= future + 1024,
        "a task costs {per_task} bytes with a {future}-byte future: over 1 KiB beyond it"
    );
}
