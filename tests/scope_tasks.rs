//! Cancel scopes for tasks (src/task/scope.rs), on every backend: a nursery waits for
//! its children and drops them when it fails or is cancelled; `move_on_after` and
//! `fail_after` nest with the earlier deadline winning; a shielded write completes
//! while its scope is cancelled.

#[path = "util/task.rs"]
mod task_util;
mod util;

use looplab::task::{self, current_deadline, fail_after, move_on_after, shield, TcpListener};
use looplab::{Cancel, HandleKind, RunMode};
use std::cell::RefCell;
use std::io::{self, Read};
use std::rc::Rc;
use std::time::{Duration, Instant};
use task_util::{kinds, left, GUARD};
use util::trace::{assert_in_order, traced_loop};
use util::{new_loop, on_every_backend};

type Log = Rc<RefCell<Vec<&'static str>>>;

/// The block returns at once, but the scope finishes only when both children have,
/// and never before the slower one's sleep.
#[test]
fn a_nursery_waits_for_its_children() {
    on_every_backend(|backend| {
        let mut lp = new_loop(backend);
        let guard = task_util::fail_after(&mut lp, GUARD);
        let log: Log = Rc::default();
        let l = log.clone();
        let started = Instant::now();
        let out = lp
            .block_on(task::scope(move |s| async move {
                for (ms, name) in [(60, "slow child"), (20, "quick child")] {
                    let l = l.clone();
                    s.spawn(async move {
                        task::sleep(Duration::from_millis(ms)).await?;
                        l.borrow_mut().push(name);
                        Ok(())
                    });
                }
                l.borrow_mut().push("block");
                Ok("done")
            }))
            .unwrap();
        assert_eq!(out.unwrap(), "done");
        assert_eq!(*log.borrow(), ["block", "quick child", "slow child"]);
        assert!(
            started.elapsed() >= Duration::from_millis(60),
            "never early"
        );
        assert!(left(&lp, guard).is_empty(), "{:?}", left(&lp, guard));
    });
}

/// A child's error is the scope's; the block and the other child are dropped at once
/// (their ten-second sleeps never end), and their timers go with them.
#[test]
fn a_failing_child_cancels_the_block_and_its_siblings() {
    on_every_backend(|backend| {
        let mut lp = new_loop(backend);
        let guard = task_util::fail_after(&mut lp, GUARD);
        let log: Log = Rc::default();
        let l = log.clone();
        let started = Instant::now();
        let out = lp
            .block_on(task::scope(move |s| async move {
                let l2 = l.clone();
                s.spawn(async move {
                    task::sleep(Duration::from_secs(10)).await?;
                    l2.borrow_mut().push("sibling finished");
                    Ok(())
                });
                s.spawn(async {
                    task::sleep(Duration::from_millis(20)).await?;
                    Err(io::Error::other("disk on fire"))
                });
                task::sleep(Duration::from_secs(10)).await?;
                l.borrow_mut().push("block finished");
                Ok(())
            }))
            .unwrap();
        assert_eq!(out.unwrap_err().to_string(), "disk on fire");
        assert!(log.borrow().is_empty(), "{:?}", log.borrow());
        assert!(started.elapsed() < Duration::from_secs(10));
        lp.run(RunMode::Default).unwrap();
        assert!(kinds(&lp, guard, HandleKind::Task).is_empty());
        assert!(kinds(&lp, guard, HandleKind::Timer).is_empty());
    });
}

/// Trio's two answers: `move_on_after` gives `None`, `fail_after` a TimedOut error that
/// names the deadline; a future that is in time gives its output.
#[test]
fn move_on_after_and_fail_after() {
    on_every_backend(|backend| {
        let mut lp = new_loop(backend);
        let out = lp
            .block_on(async {
                let never = move_on_after(
                    Duration::from_millis(30),
                    task::sleep(Duration::from_secs(10)),
                )
                .await;
                let failed = fail_after(
                    Duration::from_millis(30),
                    task::sleep(Duration::from_secs(10)),
                )
                .await;
                let in_time = fail_after(Duration::from_secs(10), async { 5 }).await;
                (
                    never.is_none(),
                    failed.map_err(|e| (e.kind(), e.to_string())),
                    in_time.ok(),
                )
            })
            .unwrap();
        assert!(out.0);
        assert_eq!(
            out.1.unwrap_err(),
            (
                io::ErrorKind::TimedOut,
                "deadline 30 ms exceeded".to_string()
            )
        );
        assert_eq!(out.2, Some(5));
    });
}

/// Nested, the earlier deadline wins whichever is outside; inside both,
/// `current_deadline()` is the earlier one.
#[test]
fn nested_deadlines_take_the_earlier() {
    on_every_backend(|backend| {
        let mut lp = new_loop(backend);
        let out = lp
            .block_on(async {
                let started = Instant::now();
                // The enclosing one is earlier: the inner fail_after never fires.
                let outer = move_on_after(Duration::from_millis(40), async {
                    fail_after(Duration::from_secs(10), async {
                        let seen = current_deadline();
                        task::sleep(Duration::from_secs(10)).await.map(|()| seen)
                    })
                    .await
                })
                .await;
                let took = started.elapsed();
                // The inner one is earlier: it fails, and the outer gives its error.
                let inner = move_on_after(Duration::from_secs(10), async {
                    let d = fail_after(
                        Duration::from_millis(40),
                        task::sleep(Duration::from_secs(10)),
                    )
                    .await;
                    (d.map_err(|e| e.to_string()), current_deadline())
                })
                .await;
                (outer, took, inner, started)
            })
            .unwrap();
        let (outer, took, inner, _) = out;
        assert!(outer.is_none(), "the outer, earlier deadline wins");
        assert!(took >= Duration::from_millis(40) && took < Duration::from_secs(10));
        let (r, deadline_after) = inner.expect("the outer deadline is far");
        assert_eq!(r.unwrap_err(), "deadline 40 ms exceeded");
        assert!(deadline_after.is_some(), "back under the outer deadline");
    });
}

/// Inside nested deadlines, the current one is the earliest, and a nursery's children
/// run under it.
#[test]
fn children_inherit_the_enclosing_deadline() {
    on_every_backend(|backend| {
        let mut lp = new_loop(backend);
        let seen: Rc<RefCell<Vec<Option<Instant>>>> = Rc::default();
        let s2 = seen.clone();
        let out = lp
            .block_on(fail_after(Duration::from_millis(300), async move {
                let outer = current_deadline();
                let s3 = s2.clone();
                let r = task::scope(move |s| async move {
                    s.spawn(async move {
                        s3.borrow_mut().push(current_deadline());
                        Ok(())
                    });
                    Ok(())
                })
                .await;
                s2.borrow_mut().push(outer);
                r
            }))
            .unwrap();
        out.unwrap().unwrap();
        let seen = seen.borrow();
        assert_eq!(seen.len(), 2);
        assert!(seen[1].is_some());
        assert_eq!(
            seen[0], seen[1],
            "the child runs under its scope's deadline"
        );
    });
}

/// An enclosing deadline drops the scope, and the scope drops its children: no task
/// outlives the scope that started it.
#[test]
fn a_deadline_around_a_scope_drops_its_children() {
    on_every_backend(|backend| {
        let mut lp = new_loop(backend);
        let guard = task_util::fail_after(&mut lp, GUARD);
        let log: Log = Rc::default();
        let l = log.clone();
        let out = lp
            .block_on(fail_after(
                Duration::from_millis(30),
                task::scope(move |s| async move {
                    s.spawn(async move {
                        task::sleep(Duration::from_secs(10)).await?;
                        l.borrow_mut().push("child finished");
                        Ok(())
                    });
                    task::sleep(Duration::from_secs(10)).await
                }),
            ))
            .unwrap();
        let e = out.unwrap_err();
        assert_eq!(
            looplab::scope::cause_of(&e),
            Some(&Cancel::Deadline(Duration::from_millis(30)))
        );
        lp.run(RunMode::Default).unwrap();
        assert!(log.borrow().is_empty());
        assert!(
            kinds(&lp, guard, HandleKind::Task).is_empty(),
            "{:?}",
            left(&lp, guard)
        );
    });
}

const GOODBYE: usize = 32 << 20;

/// A server's child starts a goodbye write of 32 MiB (far more than the socket buffers
/// hold while the client waits) and the scope is cancelled: shielded, the write
/// completes and the scope waits for it; not shielded, it is dropped half-way.
#[test]
fn a_shielded_write_completes_while_its_scope_is_cancelled() {
    on_every_backend(|backend| {
        assert_eq!(goodbye(backend, true), GOODBYE);
        assert!(
            goodbye(backend, false) < GOODBYE,
            "the unshielded write was cut short"
        );
    });
}

/// Bytes the client read before EOF.
fn goodbye(backend: looplab::Backend, shielded: bool) -> usize {
    let mut lp = new_loop(backend);
    let guard = task_util::fail_after(&mut lp, GUARD);
    let (tx, rx) = std::sync::mpsc::channel();
    let client = std::thread::spawn(move || {
        let addr = rx.recv().unwrap();
        let mut c = util::connect(addr);
        std::thread::sleep(Duration::from_millis(100)); // let the scope be cancelled first
        let mut got = Vec::new();
        let _ = c.read_to_end(&mut got);
        got.len()
    });
    let out = lp
        .block_on(task::scope(move |s| async move {
            let l = TcpListener::bind("127.0.0.1:0".parse().unwrap()).await?;
            tx.send(l.local_addr()).ok();
            let mut conn = l.accept().await?;
            let s2 = s.clone();
            s.spawn(async move {
                let write = async move {
                    conn.write_all(&vec![b'x'; GOODBYE]).await?;
                    conn.shutdown().await
                };
                if shielded {
                    let bye = shield(write);
                    s2.cancel("shutdown"); // drops this child, and with it `bye`...
                    bye.await // ...never reached: the shielded task writes on
                } else {
                    let bye = write;
                    s2.cancel("shutdown");
                    bye.await
                }
            });
            task::sleep(Duration::from_secs(10)).await
        }))
        .unwrap();
    let e = out.unwrap_err();
    assert_eq!(
        (e.kind(), e.to_string()),
        (
            io::ErrorKind::ConnectionAborted,
            "canceled: shutdown".to_string()
        )
    );
    lp.run(RunMode::Default).unwrap();
    assert!(kinds(&lp, guard, HandleKind::Task).is_empty());
    client.join().unwrap()
}

/// The trace says why a task scope stopped and what it dropped, and names a deadline
/// that dropped a future.
#[test]
fn the_trace_shows_a_task_scope_cancel_and_a_deadline() {
    on_every_backend(|backend| {
        let (mut lp, buf) = traced_loop(backend);
        let out = lp
            .block_on(async {
                let _ = move_on_after(
                    Duration::from_millis(10),
                    task::sleep(Duration::from_secs(10)),
                )
                .await;
                task::scope(|s| async move {
                    for _ in 0..2 {
                        s.spawn(async { task::sleep(Duration::from_secs(10)).await });
                    }
                    task::sleep(Duration::from_millis(10)).await?;
                    s.cancel("shutdown");
                    Ok(())
                })
                .await
            })
            .unwrap();
        assert_eq!(out.unwrap_err().to_string(), "canceled: shutdown");
        assert_in_order(
            &buf.text(),
            &[
                "deadline 10 ms exceeded: the future under it is dropped".to_string(),
                "task scope canceled: canceled: shutdown: 2 task(s) dropped, 0 shielded run on"
                    .to_string(),
            ],
        );
    });
}
