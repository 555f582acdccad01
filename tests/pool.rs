//! The thread pool, fs and dns: blocking work off the loop, results back on the loop
//! thread through the self-pipe. Every test runs on every backend.

mod util;

use looplab::{dns, fs, Loop, RunMode, WorkError};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::on_every_backend;

fn pool_loop(b: looplab::Backend, threads: usize) -> Loop {
    let mut lp = Loop::builder()
        .backend(b)
        .threadpool_size(threads)
        .build()
        .unwrap();
    util::fail_after(&mut lp, Duration::from_secs(20));
    lp
}

/// `done` callbacks run on the loop thread, `work` on a pool thread.
#[test]
fn callbacks_run_on_the_loop_thread() {
    on_every_backend(|b| {
        let mut lp = pool_loop(b, 2);
        let loop_thread = std::thread::current().id();
        let seen = Rc::new(Cell::new(false));
        let s = seen.clone();
        lp.queue_work(
            move || std::thread::current().id(),
            move |_, _, r| {
                assert_ne!(r.unwrap(), loop_thread, "work ran on the loop thread");
                assert_eq!(std::thread::current().id(), loop_thread);
                s.set(true);
            },
        );
        lp.run(RunMode::Default).unwrap();
        assert!(seen.get());
    });
}

/// Pool size bounds concurrency: pool 2, six 100 ms jobs: never more than 2 at once, so
/// never done before 300 ms.
#[test]
fn pool_size_bounds_concurrency() {
    on_every_backend(|b| {
        let mut lp = pool_loop(b, 2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let done = Rc::new(Cell::new(0));
        let start = Instant::now();
        for _ in 0..6 {
            let (r, p, d) = (running.clone(), peak.clone(), done.clone());
            lp.queue_work(
                move || {
                    let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                    p.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                    r.fetch_sub(1, Ordering::SeqCst);
                },
                move |_, _, r| {
                    r.unwrap();
                    d.set(d.get() + 1);
                },
            );
        }
        lp.run(RunMode::Default).unwrap();
        let took = start.elapsed();
        assert_eq!(done.get(), 6);
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert_eq!(lp.metrics().pool.threads, 2);
    });
}

/// Cancel wins only while the job is queued: the queued one's `done` gets
/// Err(WorkError::Canceled); the running one runs to completion.
#[test]
fn cancel_queued_but_not_running_work() {
    on_every_backend(|b| {
        let mut lp = pool_loop(b, 1);
        let results = Rc::new(RefCell::new(Vec::new()));
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let r = results.clone();
        let running = lp.queue_work(
            move || {
                let _ = rx.recv_timeout(Duration::from_secs(5));
                "ran"
            },
            move |_, _, res| r.borrow_mut().push(res),
        );
        let r = results.clone();
        let queued = lp.queue_work(
            || "should not run",
            move |_, _, res| r.borrow_mut().push(res),
        );
        // Let the single worker pick up the first job.
        while lp.metrics().pool.queue_depth > 1 {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(lp.cancel(queued));
        assert!(!lp.cancel(queued), "cancelled twice");
        assert!(!lp.cancel(running), "running work cannot be cancelled");
        assert!(
            results.borrow().is_empty(),
            "done ran synchronously inside cancel"
        );
        tx.send(()).unwrap();
        lp.run(RunMode::Default).unwrap();
        let results = results.borrow();
        assert_eq!(results.len(), 2);
        assert!(results.contains(&Err(WorkError::Canceled)));
        assert!(results.contains(&Ok("ran")));
    });
}

/// 1000 jobs queued in one tick all complete, each exactly once; completions coalesce
/// into far fewer self-pipe drains than jobs.
#[test]
fn a_thousand_jobs_complete_exactly_once() {
    on_every_backend(|b| {
        let mut lp = pool_loop(b, 4);
        let seen = Rc::new(RefCell::new(vec![0u32; 1000]));
        for i in 0..1000usize {
            let s = seen.clone();
            lp.queue_work(
                move || i * 2,
                move |_, _, r| s.borrow_mut()[r.unwrap() / 2] += 1,
            );
        }
        lp.run(RunMode::Default).unwrap();
        assert!(seen.borrow().iter().all(|&n| n == 1));
        let m = lp.metrics();
        assert_eq!(m.completions, 1000);
        assert!(
            m.wake_drains < 1000,
            "{} drains for 1000 completions",
            m.wake_drains
        );
        eprintln!(
            "{b}: 1000 completions in {} drains (max {} per drain), {} pipe writes for {} wakes",
            m.wake_drains, m.max_completions_per_drain, m.wake_writes, m.wake_requests
        );
    });
}

/// Pool work keeps an otherwise empty loop alive until it is done.
#[test]
fn work_keeps_the_loop_alive() {
    on_every_backend(|b| {
        let mut lp = pool_loop(b, 1);
        let done = Rc::new(Cell::new(false));
        let d = done.clone();
        let w = lp.queue_work(
            || std::thread::sleep(Duration::from_millis(50)),
            move |_, _, _| d.set(true),
        );
        lp.unref_handle(w); // work holds the loop whether ref'd or not, as libuv's requests do
        assert!(lp.alive());
        let start = Instant::now();
        assert!(!lp.run(RunMode::Default).unwrap());
        assert!(done.get());
        assert!(start.elapsed() >= Duration::from_millis(50));
    });
}

/// A panicking job reaches `done` as an error and the pool keeps working.
#[test]
fn a_panicking_job_reports_and_the_pool_survives() {
    on_every_backend(|b| {
        let mut lp = pool_loop(b, 1);
        let got = Rc::new(RefCell::new(Vec::new()));
        let g = got.clone();
        lp.queue_work(
            || -> u32 { panic!("disk on fire") },
            move |_, _, r| g.borrow_mut().push(r),
        );
        let g = got.clone();
        lp.queue_work(|| 7u32, move |_, _, r| g.borrow_mut().push(r));
        lp.run(RunMode::Default).unwrap();
        let got = got.borrow();
        assert_eq!(got[0], Err(WorkError::Panicked("disk on fire".into())));
        assert_eq!(got[1], Ok(7));
    });
}

/// fs calls run on the pool; errors name the path.
#[test]
fn fs_round_trip_and_errors_carry_the_path() {
    on_every_backend(|b| {
        let mut lp = pool_loop(b, 2);
        let dir = std::env::temp_dir().join(format!("looplab-fs-{}-{b}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hello.txt");
        let log = Rc::new(RefCell::new(Vec::<String>::new()));
        let (l, f, d) = (log.clone(), file.clone(), dir.clone());
        fs::write(&mut lp, &file, "hello, pool", move |lp, r| {
            r.unwrap();
            let l2 = l.clone();
            fs::read(lp, &f, move |_, r| {
                l2.borrow_mut().push(String::from_utf8(r.unwrap()).unwrap())
            });
            let l3 = l.clone();
            fs::stat(lp, &f, move |_, r| {
                l3.borrow_mut().push(format!("len {}", r.unwrap().len()))
            });
            let l4 = l.clone();
            fs::read_dir(lp, &d, move |_, r| {
                l4.borrow_mut()
                    .push(format!("{} entries", r.unwrap().len()))
            });
            let l5 = l.clone();
            let missing = d.join("no-such-file");
            fs::read(lp, &missing, move |_, r| {
                l5.borrow_mut().push(r.unwrap_err().to_string())
            });
        });
        lp.run(RunMode::Default).unwrap();
        let mut log = log.borrow().clone();
        log.sort();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(log[0], "1 entries");
        assert_eq!(log[1], "hello, pool");
        assert_eq!(log[2], "len 11");
        assert!(
            log[3].contains("no-such-file") && log[3].starts_with("reading "),
            "{}",
            log[3]
        );
    });
}

/// dns::lookup of localhost returns a loopback address; a literal resolves to itself.
#[test]
fn dns_lookup_of_localhost_is_loopback() {
    on_every_backend(|b| {
        let mut lp = pool_loop(b, 2);
        let addrs = Rc::new(RefCell::new(Vec::new()));
        let a = addrs.clone();
        dns::lookup(&mut lp, "localhost", 80, move |_, r| {
            a.borrow_mut().extend(r.unwrap())
        });
        let a = addrs.clone();
        dns::lookup(&mut lp, "127.0.0.1", 81, move |_, r| {
            a.borrow_mut().extend(r.unwrap())
        });
        lp.run(RunMode::Default).unwrap();
        let addrs = addrs.borrow();
        assert!(
            addrs.iter().any(|a| a.ip().is_loopback() && a.port() == 80),
            "{addrs:?}"
        );
        assert!(
            addrs.iter().any(|a| a.to_string() == "127.0.0.1:81"),
            "{addrs:?}"
        );
    });
}

/// The slow lane: with 4 workers, slow work may hold at most 2; fast fs work finishes
/// while the slow lane is saturated. The slow jobs wait until the last fast result is in
/// (or 10 s), so "fast work was not starved" is an order on the loop thread (every fast
/// result before any slow one), not a race against a clock.
#[test]
fn slow_lane_never_starves_fast_work() {
    on_every_backend(|b| {
        let mut lp = pool_loop(b, 4);
        let (release, released) = crossbeam_channel::bounded::<()>(0);
        let slow_running = Arc::new(AtomicUsize::new(0));
        let slow_peak = Arc::new(AtomicUsize::new(0));
        let slow_done = Rc::new(Cell::new(0));
        for _ in 0..8 {
            let (r, p, d) = (slow_running.clone(), slow_peak.clone(), slow_done.clone());
            let released = released.clone();
            lp.queue_slow_work(
                move || {
                    let n = r.fetch_add(1, Ordering::SeqCst) + 1;
                    p.fetch_max(n, Ordering::SeqCst);
                    // Err(Disconnected) once the loop drops `release`: all go at once.
                    let _ = released.recv_timeout(Duration::from_secs(10));
                    r.fetch_sub(1, Ordering::SeqCst);
                },
                move |_, _, _| d.set(d.get() + 1),
            );
        }
        let slow_seen_by_fast = Rc::new(RefCell::new(Vec::new()));
        let release = Rc::new(RefCell::new(Some(release)));
        for _ in 0..20 {
            let (seen, d, rel) = (
                slow_seen_by_fast.clone(),
                slow_done.clone(),
                release.clone(),
            );
            fs::stat(&mut lp, "/", move |_, r| {
                r.unwrap();
                seen.borrow_mut().push(d.get());
                if seen.borrow().len() == 20 {
                    rel.borrow_mut().take(); // let the slow jobs finish
                }
            });
        }
        lp.run(RunMode::Default).unwrap();
        assert_eq!(slow_done.get(), 8);
        assert!(
            slow_peak.load(Ordering::SeqCst) <= 2,
            "slow work took more than (n+1)/2 workers"
        );
        assert_eq!(
            *slow_seen_by_fast.borrow(),
            [0; 20],
            "fast work waited behind slow work"
        );
    });
}

/// A bad LOOPLAB_THREADPOOL_SIZE is a clear error, not a silent default.
#[test]
fn threadpool_size_from_env_is_validated() {
    // Only this test touches the variable in this binary.
    std::env::set_var("LOOPLAB_THREADPOOL_SIZE", "lots");
    let err = Loop::builder()
        .build()
        .err()
        .expect("a non-number must be refused");
    std::env::set_var("LOOPLAB_THREADPOOL_SIZE", "0");
    let lp = Loop::builder().build();
    std::env::remove_var("LOOPLAB_THREADPOOL_SIZE");
    assert!(
        err.to_string().contains("LOOPLAB_THREADPOOL_SIZE=\"lots\""),
        "{err}"
    );
    assert!(lp.is_ok(), "0 is clamped to 1, as libuv does");
}
