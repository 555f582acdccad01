//! Reaping: no child of a loop is left a zombie, whether it ran alone or with 199 others,
//! its handle was unref'd or closed, or another loop watches SIGCHLD too; on every
//! backend. Each loop asks only about its own pids (`waitpid(pid)`, never `-1`).

mod util;

use looplab::process::Command;
use looplab::RunMode;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;
#[cfg(target_os = "linux")]
use util::process::is_our_zombie;
use util::process::sh;
use util::{new_loop, on_every_backend};

/// 200 short children at once: every exit is reported with its own code, and none of
/// them is left a zombie (checked in /proc after the loop returns, on Linux).
#[test]
fn two_hundred_children_at_once_leave_no_zombie() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(60));
        let codes = Rc::new(RefCell::new(Vec::new()));
        let mut pids = Vec::new();
        for i in 0..200 {
            let c = codes.clone();
            let child = lp
                .spawn_process(sh(&format!("exit {}", i % 50)), move |_, _, st| {
                    c.borrow_mut().push((i, st.code))
                })
                .unwrap();
            pids.push(child.pid);
        }
        lp.run(RunMode::Default).unwrap();
        let mut codes = codes.take();
        codes.sort_unstable();
        let expected: Vec<_> = (0..200).map(|i| (i, Some(i % 50))).collect();
        assert_eq!(codes, expected);
        #[cfg(target_os = "linux")]
        {
            let zombies: Vec<u32> = pids.iter().copied().filter(|&p| is_our_zombie(p)).collect();
            assert!(zombies.is_empty(), "zombies left: {zombies:?}");
        }
        assert_eq!(pids.len(), 200);
        assert!(lp
            .handles()
            .iter()
            .all(|h| h.kind != looplab::HandleKind::Process));
    });
}

/// An unref'd process handle does not hold the loop: `run` returns with the child still
/// running. Ref'd again and killed, it is reaped (and reported) like any other.
#[test]
fn an_unrefd_process_lets_the_loop_exit() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let status = Rc::new(Cell::new(None));
        let s = status.clone();
        let child = lp
            .spawn_process(Command::new("sleep").arg("30"), move |_, _, st| {
                s.set(Some(st))
            })
            .unwrap();
        lp.unref_handle(child.process);
        assert!(!lp.run(RunMode::Default).unwrap());
        assert_eq!(lp.metrics().idle, Duration::ZERO, "it waited for the child");
        assert!(
            lp.explain_alive()
                .contains("unref'd, not holding the loop: 1 process"),
            "{}",
            lp.explain_alive()
        );
        assert_eq!(status.get(), None);
        lp.ref_handle(child.process);
        lp.kill(child.process, libc::SIGKILL).unwrap();
        util::fail_after(&mut lp, Duration::from_secs(30));
        lp.run(RunMode::Default).unwrap();
        assert_eq!(status.get().map(|s| s.signal), Some(Some(libc::SIGKILL)));
    });
}

/// A process handle closed while its child runs gets no exit callback, but the child is
/// still reaped when it exits (libuv would leave it a zombie). Its stdout's EOF says it
/// has exited; then /proc is watched until the zombie is gone.
#[cfg(target_os = "linux")]
#[test]
fn a_closed_process_is_still_reaped() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(30));
        let child = lp
            .spawn_process(
                sh("exit 3").stdout(looplab::process::Stdio::Pipe),
                |_, _, _| panic!("a closed process was reported"),
            )
            .unwrap();
        assert!(lp.close(child.process));
        let pid = child.pid;
        lp.read_start(child.stdout.unwrap(), move |lp, me, ev| {
            if let looplab::ReadEvent::Eof = ev {
                lp.close(me);
                lp.set_interval(Duration::from_millis(10), move |lp, t| {
                    if !is_our_zombie(pid) {
                        lp.clear_timer(t);
                    }
                });
            }
        })
        .unwrap();
        lp.run(RunMode::Default).unwrap();
        assert!(!is_our_zombie(pid));
    });
}

/// A loop dropped while its children still run (its program gave up on them, or a
/// task's `Child` was killed on drop and the loop ended before the exit came) leaves
/// no zombie: the children it never reaped are handed to a thread that waits for them.
#[cfg(target_os = "linux")]
#[test]
fn a_loop_dropped_before_its_children_exit_leaves_no_zombie() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let kept = lp.spawn_process(sh("sleep 0.2"), |_, _, _| {}).unwrap();
        let closed = lp.spawn_process(sh("sleep 0.2"), |_, _, _| {}).unwrap();
        assert!(lp.close(closed.process));
        let pids = [kept.pid, closed.pid];
        drop(lp);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left: Vec<u32> = pids
                .iter()
                .copied()
                .filter(|&p| {
                    is_our_zombie(p) || std::path::Path::new(&format!("/proc/{p}")).exists()
                })
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "children never reaped after the loop was dropped: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

/// Two loops on two threads, 20 children each: every exit reaches the loop that spawned
/// it, with its code, though each SIGCHLD reaches both loops.
#[test]
fn each_loop_reaps_only_its_own_children() {
    on_every_backend(|b| {
        let threads: Vec<_> = (0..2)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut lp = new_loop(b);
                    util::fail_after(&mut lp, Duration::from_secs(30));
                    let codes = Rc::new(RefCell::new(Vec::new()));
                    for i in 0..20 {
                        let c = codes.clone();
                        lp.spawn_process(sh(&format!("exit {}", t * 100 + i)), move |_, _, st| {
                            c.borrow_mut().push(st.code.unwrap_or(-1))
                        })
                        .unwrap();
                    }
                    lp.run(RunMode::Default).unwrap();
                    let mut codes = codes.take();
                    codes.sort_unstable();
                    codes
                })
            })
            .collect();
        for (t, thread) in threads.into_iter().enumerate() {
            let codes = thread.join().unwrap();
            let expected: Vec<i32> = (0..20).map(|i| t as i32 * 100 + i).collect();
            assert_eq!(codes, expected);
        }
    });
}
