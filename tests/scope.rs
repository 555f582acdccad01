//! Cancel scopes for callbacks (src/scope.rs), on every backend: each owed callback
//! exactly once with the cause, before its close callback; every wheel entry and poller
//! registration freed; nested deadlines take the earlier.

mod util;

use looplab::{Cancel, HandleKind, Loop, RunMode, Scope, Tcp, WorkError};
use std::cell::RefCell;
use std::io;
use std::net::TcpListener;
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::trace::{assert_in_order, traced_loop};
use util::{fail_after, new_loop, on_every_backend};

type Log = Rc<RefCell<Vec<String>>>;

fn note(log: &Log, line: String) {
    log.borrow_mut().push(line);
}

fn said(r: &io::Result<()>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => format!("{:?}: {e}", e.kind()),
    }
}

fn timers(lp: &Loop) -> usize {
    lp.handles()
        .iter()
        .filter(|i| i.kind == HandleKind::Timer)
        .count()
}

/// A connect with a write and a shutdown queued behind it, and a job on the pool, all
/// under one scope: the cancel calls each owed callback once, with the cause, before
/// the handle's close callback; nothing is left on the loop.
#[test]
fn a_cancel_settles_every_owed_callback_once_before_the_close_callback() {
    on_every_backend(|backend| {
        let peer = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = peer.local_addr().unwrap();
        let mut lp = new_loop(backend);
        let log: Log = Rc::default();
        let s = lp.scope();
        let l = log.clone();
        let c = lp
            .tcp_connect(addr, move |_, _, r| {
                note(&l, format!("connect {}", said(&r)))
            })
            .unwrap();
        let l = log.clone();
        lp.write_then(c, b"hello", move |_, _, r| {
            note(&l, format!("write {}", said(&r)))
        })
        .unwrap();
        let l = log.clone();
        lp.shutdown(c, move |_, _, r| note(&l, format!("shutdown {}", said(&r))))
            .unwrap();
        let l = log.clone();
        assert!(lp.scope_adopt_then(s, c, move |_, _| note(&l, "close conn".into())));
        let l = log.clone();
        let w = lp.queue_work(
            || std::thread::sleep(Duration::from_millis(30)),
            move |_, _, r| note(&l, format!("work {r:?}")),
        );
        let l = log.clone();
        assert!(lp.scope_adopt_then(s, w, move |_, _| note(&l, "close work".into())));
        let l = log.clone();
        lp.in_scope(s, |lp| {
            lp.set_timeout(Duration::from_secs(3600), move |_, _| {
                note(&l, "timer fired".into())
            })
        });
        assert_eq!(lp.scope_members(s), 3);
        assert!(lp.cancel_scope(s, "shutdown"));
        assert!(!lp.cancel_scope(s, "again"), "a second cancel is refused");
        fail_after(&mut lp, Duration::from_secs(10));
        lp.run(RunMode::Default).unwrap();
        let aborted = "ConnectionAborted";
        let want = [
            format!(
                "connect {aborted}: connect on tcp {}: after 0 ms: canceled: shutdown",
                handle(c)
            ),
            format!(
                "write {aborted}: write on tcp {}: after 0 ms: canceled: shutdown",
                handle(c)
            ),
            format!(
                "shutdown {aborted}: shutdown on tcp {}: after 0 ms: canceled: shutdown",
                handle(c)
            ),
            "close conn".into(),
            format!(
                "work {:?}",
                Err::<(), _>(WorkError::Scope(Cancel::Canceled("shutdown".into())))
            ),
            "close work".into(),
        ];
        assert_eq!(*log.borrow(), want);
        let left = lp.handles();
        assert_eq!(
            left.len(),
            1,
            "only the test's guard timer is left: {left:?}"
        );
        assert!(!left[0].has_ref);
        assert!(!lp.alive(), "{}", lp.explain_alive());
        assert_eq!(
            lp.scope_canceled(s),
            Some(Cancel::Canceled("shutdown".into()))
        );
        assert!(lp.end_scope(s));
        assert_eq!(lp.scopes_open(), 0);
    });
}

fn handle(c: Tcp) -> String {
    looplab::Handle::from(c).to_string()
}

/// A deadline is one unref'd timer per scope; when it passes, the owed callbacks get
/// TimedOut with "deadline 50 ms exceeded", never early, and the timer is gone.
#[test]
fn a_deadline_cancels_with_timed_out_and_frees_its_timer() {
    on_every_backend(|backend| {
        let mut lp = new_loop(backend);
        let s = lp.scope();
        assert!(lp.set_deadline(s, Duration::from_millis(50)));
        assert_eq!(timers(&lp), 1);
        assert!(!lp.alive(), "a deadline alone does not hold the loop");
        let got: Rc<RefCell<Option<(io::Error, Instant)>>> = Rc::default();
        let g = got.clone();
        let started = Instant::now();
        // Two slow jobs take both workers first, so the read waits in the queue until the
        // deadline takes it off.
        for _ in 0..2 {
            lp.in_scope(s, |lp| {
                lp.queue_work(
                    || std::thread::sleep(Duration::from_millis(300)),
                    |_, _, _| {},
                )
            });
        }
        lp.in_scope(s, |lp| {
            looplab::fs::read(lp, "Cargo.toml", move |_, r| {
                *g.borrow_mut() = Some((r.unwrap_err(), Instant::now()))
            })
        });
        lp.run(RunMode::Default).unwrap();
        let (e, at) = got.borrow_mut().take().expect("the read's callback ran");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        let text = e.to_string();
        assert!(
            text.starts_with("reading Cargo.toml on the pool: after "),
            "{text}"
        );
        assert!(text.ends_with(": deadline 50 ms exceeded"), "{text}");
        assert!(
            at.duration_since(started) >= Duration::from_millis(50),
            "never early"
        );
        assert_eq!(
            looplab::scope::cause_of(&e),
            Some(&Cancel::Deadline(Duration::from_millis(50)))
        );
        assert_eq!(timers(&lp), 0, "the deadline's wheel entry is freed");
        assert!(lp.handles().is_empty(), "left: {:?}", lp.handles());
    });
}

/// A child's deadline is the earlier of its own and its parent's: an earlier own one
/// fires alone (the parent goes on); a later one arms no timer, and the parent's cancel
/// reaches the child with "parent canceled: ...".
#[test]
fn nested_deadlines_take_the_earlier() {
    on_every_backend(|backend| {
        let mut lp = new_loop(backend);
        let parent = lp.scope();
        let child = lp.child_scope(parent).unwrap();
        lp.set_deadline(parent, Duration::from_millis(400));
        lp.set_deadline(child, Duration::from_millis(40));
        assert_eq!(timers(&lp), 2);
        assert!(lp.deadline(child) < lp.deadline(parent));
        let seen: Rc<RefCell<Vec<String>>> = Rc::default();
        let s2 = seen.clone();
        lp.in_scope(child, |lp| {
            lp.queue_work(
                || std::thread::sleep(Duration::from_millis(200)),
                move |lp, _, r| {
                    let parent_then = lp.scope_canceled(parent);
                    s2.borrow_mut()
                        .push(format!("{} / parent {parent_then:?}", r.unwrap_err()));
                },
            )
        });
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*seen.borrow(), ["deadline 40 ms exceeded / parent None"]);
        assert_eq!(timers(&lp), 1, "the parent's deadline is still armed");
        assert!(lp.end_scope(parent));
        assert_eq!(
            (timers(&lp), lp.scopes_open()),
            (0, 0),
            "ending frees the child too"
        );

        // The other way round: the child's later deadline arms nothing.
        let parent = lp.scope();
        let child = lp.child_scope(parent).unwrap();
        lp.set_deadline(parent, Duration::from_millis(40));
        lp.set_deadline(child, Duration::from_millis(400));
        assert_eq!(timers(&lp), 1, "one wheel entry: the parent's");
        assert_eq!(lp.deadline(child), lp.deadline(parent));
        let s2 = seen.clone();
        lp.in_scope(child, |lp| {
            looplab::dns::lookup(lp, "localhost", 80, |_, _| {});
            lp.queue_work(
                || std::thread::sleep(Duration::from_millis(200)),
                move |_, _, r| {
                    let e = io::Error::from(r.unwrap_err());
                    s2.borrow_mut().push(format!("{:?}: {e}", e.kind()));
                },
            )
        });
        lp.run(RunMode::Default).unwrap();
        assert_eq!(
            seen.borrow()[1],
            "TimedOut: parent canceled: deadline 40 ms exceeded"
        );
        assert_eq!(
            lp.scope_canceled(child),
            Some(Cancel::Parent(Box::new(Cancel::Deadline(
                Duration::from_millis(40)
            ))))
        );
        assert!(lp.handles().is_empty(), "left: {:?}", lp.handles());
    });
}

/// Go's `ctx.Err()`: a handle adopted by a scope already cancelled is closed at once, and
/// a child scope made under it is born cancelled.
#[test]
fn what_comes_after_the_cancel_is_cancelled_at_once() {
    on_every_backend(|backend| {
        let mut lp = new_loop(backend);
        let s = lp.scope();
        lp.cancel_scope(s, "shutdown");
        let child = lp.child_scope(s).unwrap();
        assert_eq!(
            lp.scope_canceled(child).map(|c| c.to_string()),
            Some("parent canceled: shutdown".to_string())
        );
        let fired = Rc::new(RefCell::new(false));
        let f = fired.clone();
        lp.in_scope(child, |lp| {
            lp.set_timeout(Duration::from_millis(1), move |_, _| *f.borrow_mut() = true)
        });
        assert!(lp.handles().iter().all(|i| i.closing));
        lp.run(RunMode::Default).unwrap();
        assert!(!*fired.borrow(), "a timer in a cancelled scope never fires");
        assert!(lp.handles().is_empty());
        assert!(lp.end_scope(s));
        assert!(!lp.end_scope(child), "ended with its parent");
        assert!(lp.child_scope(s).is_err(), "an ended scope has no children");
    });
}

/// The trace names the cancelled scope, its cause and what it stopped, and each
/// handle whose owed callbacks got the cause.
#[test]
fn the_trace_shows_the_cancel_and_its_cause() {
    on_every_backend(|backend| {
        let peer = TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut lp, buf) = traced_loop(backend);
        let s: Scope = lp.scope();
        let c = lp
            .in_scope(s, |lp| {
                lp.tcp_connect(peer.local_addr().unwrap(), |_, _, _| {})
            })
            .unwrap();
        lp.write_then(c, b"x", |_, _, _| {}).unwrap();
        lp.cancel_scope(s, "shutdown");
        lp.run(RunMode::Default).unwrap();
        let text = buf.text();
        assert_in_order(
            &text,
            &[
                format!("{s}: tcp {}: 2 owed callback(s) get \"canceled: shutdown\"", handle(c)),
                format!("{s} canceled after 0 ms: canceled: shutdown: 2 callback(s) owed, 1 handle(s), 0 task(s), 0 child scope(s)"),
            ],
        );
    });
}

/// A task spawned inside `in_scope` is a member: the cancel drops it (its JoinHandle
/// says Aborted), its sleep's timer goes with it, and the trace counts it as a task.
#[test]
fn a_task_opened_under_a_scope_is_dropped_by_its_cancel() {
    on_every_backend(|backend| {
        let (mut lp, buf) = traced_loop(backend);
        let s = lp.scope();
        let join = lp.in_scope(s, |lp| {
            lp.spawn(async {
                looplab::task::sleep(Duration::from_secs(3600)).await?;
                Ok::<_, io::Error>("slept")
            })
        });
        lp.set_timeout(Duration::from_millis(10), move |lp, _| {
            lp.cancel_scope(s, "shutdown");
        });
        lp.run(RunMode::Default).unwrap();
        assert!(join.is_finished());
        let out = lp.block_on(join).unwrap();
        assert_eq!(out.unwrap_err(), looplab::task::JoinError::Aborted);
        assert!(buf
            .text()
            .contains(": canceled: shutdown: 0 callback(s) owed, 1 handle(s), 1 task(s)"));
        assert!(lp.handles().is_empty(), "{:?}", lp.handles());
    });
}

/// Go's `context.AfterFunc`: the hook runs once, never inside `cancel_scope` (in the
/// next pending phase), for the scope and each descendant that has one, and not at all
/// for a scope ended first.
#[test]
fn on_scope_cancel_runs_once_after_the_cancel() {
    on_every_backend(|backend| {
        let mut lp = new_loop(backend);
        let log: Rc<RefCell<Vec<String>>> = Rc::default();
        let parent = lp.scope();
        let child = lp.child_scope(parent).unwrap();
        let ended = lp.child_scope(parent).unwrap();
        for s in [parent, child, ended] {
            let l = log.clone();
            lp.on_scope_cancel(s, move |_, s, cause| {
                l.borrow_mut().push(format!("{s}: {cause}"))
            });
        }
        lp.end_scope(ended);
        lp.cancel_scope(parent, "shutdown");
        lp.cancel_scope(parent, "shutdown again");
        assert!(log.borrow().is_empty(), "not inside the call");
        lp.run(RunMode::Default).unwrap();
        assert_eq!(
            *log.borrow(),
            [
                format!("{parent}: canceled: shutdown"),
                format!("{child}: parent canceled: shutdown")
            ]
        );
        // Registered after the cancel: called once, later, with the cause.
        let l = log.clone();
        lp.on_scope_cancel(child, move |_, _, cause| {
            l.borrow_mut().push(format!("late: {cause}"))
        });
        lp.run(RunMode::Default).unwrap();
        assert_eq!(
            log.borrow().last().unwrap(),
            "late: parent canceled: shutdown"
        );
        assert_eq!(log.borrow().len(), 3);
    });
}
