//! Child processes on the loop: exit codes and signals, stdio pipes, Node's exit-then-close
//! order, exec failures with their errno, no zombie left behind, unref; on every backend.
//!
//! Each loop reaps only its own children (`waitpid(pid)`, never `waitpid(-1)`), so the
//! tests of this file may run at once, as they do, each with its own loops.

mod util;

use looplab::process::{Command, Stdio};
use looplab::{Backend, ExitStatus, Loop, Pipe, ReadEvent, RunMode};
use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::Duration;
use util::trace::{assert_in_order, SharedBuf};
use util::{new_loop, on_every_backend};

fn sh(script: &str) -> Command {
    Command::new("/bin/sh").arg("-c").arg(script)
}

/// What a child did, as the loop saw it: its status, what it wrote, and in which order
/// the exit callback, each output's EOF and the process handle's close came.
#[derive(Default)]
struct Seen {
    status: Option<ExitStatus>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    events: Vec<&'static str>,
}

type Shared = Rc<RefCell<Seen>>;

/// Read `pipe` to EOF into `seen`, then close it (so the process handle may close).
fn drain(lp: &mut Loop, pipe: Option<Pipe>, seen: &Shared, err: bool) {
    let Some(pipe) = pipe else { return };
    let s = seen.clone();
    lp.read_start(pipe, move |lp, me, ev| match ev {
        ReadEvent::Data(d) if err => s.borrow_mut().stderr.extend_from_slice(d),
        ReadEvent::Data(d) => s.borrow_mut().stdout.extend_from_slice(d),
        ReadEvent::Eof => {
            s.borrow_mut()
                .events
                .push(if err { "stderr eof" } else { "stdout eof" });
            lp.close(me);
        }
        ReadEvent::Error(e) => panic!("reading the child's output: {e}"),
    })
    .unwrap();
}

/// Spawn `cmd`, read whatever pipes it has to EOF, and record everything in order.
fn spawn_watched(lp: &mut Loop, cmd: Command) -> (looplab::process::Spawned, Shared) {
    let seen: Shared = Rc::default();
    let s = seen.clone();
    let child = lp
        .spawn_process(cmd, move |_, _, status| {
            let mut s = s.borrow_mut();
            s.status = Some(status);
            s.events.push("exit");
        })
        .unwrap();
    let s = seen.clone();
    assert!(lp.on_process_close(child.process, move |_, _| s
        .borrow_mut()
        .events
        .push("close")));
    drain(lp, child.stdout, &seen, false);
    drain(lp, child.stderr, &seen, true);
    (child, seen)
}

fn run_to_end(b: Backend, cmd: Command) -> (u32, Seen) {
    let mut lp = new_loop(b);
    util::fail_after(&mut lp, Duration::from_secs(30));
    let (child, seen) = spawn_watched(&mut lp, cmd);
    lp.run(RunMode::Default).unwrap();
    assert_eq!(
        lp.pid(child.process),
        None,
        "the process handle is still open"
    );
    let seen = seen.take();
    (child.pid, seen)
}

/// Whether `pid` is a zombie child of this process: exited, and never reaped.
#[cfg(target_os = "linux")]
fn is_our_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false; // reaped: gone
    };
    // "pid (comm) S ppid ...": the command name may hold spaces and parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let mut fields = rest.split_whitespace();
    let (state, ppid) = (fields.next(), fields.next());
    state == Some("Z") && ppid == Some(std::process::id().to_string().as_str())
}

/// Exit codes 0, 1 and 42 reach the exit callback; the handle closes after it.
#[test]
fn exit_codes_reach_the_exit_callback() {
    on_every_backend(|b| {
        for code in [0, 1, 42] {
            let (_, seen) = run_to_end(b, sh(&format!("exit {code}")));
            let status = seen.status.expect("the exit callback ran");
            assert_eq!((status.code, status.signal), (Some(code), None));
            assert_eq!(status.success(), code == 0);
            assert_eq!(seen.events, ["exit", "close"]);
        }
    });
}

/// `kill` with SIGTERM and SIGKILL: the status names the signal, and no code. Once the
/// child is reaped, `kill` is refused (its pid may be someone else's by then).
#[test]
fn death_by_sigterm_and_sigkill() {
    on_every_backend(|b| {
        for signum in [libc::SIGTERM, libc::SIGKILL] {
            let mut lp = new_loop(b);
            util::fail_after(&mut lp, Duration::from_secs(30));
            let refused = Rc::new(Cell::new(None));
            let r = refused.clone();
            let child = lp
                .spawn_process(Command::new("sleep").arg("30"), move |lp, p, status| {
                    assert_eq!((status.code, status.signal), (None, Some(signum)));
                    r.set(lp.kill(p, libc::SIGTERM).err().and_then(|e| os_error(&e)));
                })
                .unwrap();
            lp.kill(child.process, signum).unwrap();
            lp.run(RunMode::Default).unwrap();
            assert_eq!(refused.get(), Some(libc::ESRCH), "kill after exit");
            let e = lp.kill(child.process, signum).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        }
    });
}

/// stdout and stderr arrive on their own pipes, each whole and in order, interleaved
/// writes and all; 200 000 lines are many reads' worth.
#[test]
fn stdout_and_stderr_are_captured_separately_and_in_order() {
    on_every_backend(|b| {
        let script = "i=1; while [ $i -le 500 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done";
        let cmd = sh(script).stdout(Stdio::Pipe).stderr(Stdio::Pipe);
        let (_, seen) = run_to_end(b, cmd);
        let lines = |p: &str| (1..=500).map(|i| format!("{p}{i}\n")).collect::<String>();
        assert_eq!(String::from_utf8_lossy(&seen.stdout), lines("out"));
        assert_eq!(String::from_utf8_lossy(&seen.stderr), lines("err"));
        assert!(seen.status.unwrap().success());

        let cmd = Command::new("seq")
            .args(["1", "200000"])
            .stdout(Stdio::Pipe);
        let (_, seen) = run_to_end(b, cmd);
        let expected: String = (1..=200_000).map(|i| format!("{i}\n")).collect();
        assert!(seen.stdout == expected.as_bytes(), "seq's output differs");
    });
}

/// 1 MiB written to `cat`'s stdin, then `shutdown`: cat sees EOF, gives it all back and
/// exits 0. A child that exits without reading has its stdin closed for it.
#[test]
fn stdin_is_written_and_closed() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(30));
        let cmd = Command::new("cat").stdin(Stdio::Pipe).stdout(Stdio::Pipe);
        let (child, seen) = spawn_watched(&mut lp, cmd);
        let stdin = child.stdin.unwrap();
        let data: Vec<u8> = (0..1 << 20).map(|i| (i % 253) as u8).collect();
        lp.write(stdin, &data).unwrap();
        let shut = Rc::new(Cell::new(false));
        let s = shut.clone();
        lp.shutdown(stdin, move |_, _, r| {
            r.unwrap();
            s.set(true);
        })
        .unwrap();
        lp.run(RunMode::Default).unwrap();
        assert!(shut.get());
        let seen = seen.borrow();
        assert!(seen.status.unwrap().success());
        assert!(
            seen.stdout == data,
            "{} of {} bytes back",
            seen.stdout.len(),
            data.len()
        );

        let child = lp
            .spawn_process(sh("exit 0").stdin(Stdio::Pipe), |_, _, _| {})
            .unwrap();
        lp.run(RunMode::Default).unwrap();
        let e = lp.write(child.stdin.unwrap(), b"late").unwrap_err();
        assert_eq!(
            e.kind(),
            io::ErrorKind::NotFound,
            "stdin outlived the child"
        );
    });
}

/// Node's order, whichever comes first of exit and EOF: the exit callback, then the
/// handle's close once stdout has ended too. Here the child exits at once while a
/// grandchild holds its stdout open for a while.
#[test]
fn the_process_closes_after_exit_and_the_last_eof() {
    on_every_backend(|b| {
        let cmd = sh("(sleep 0.2; echo late) & exit 7").stdout(Stdio::Pipe);
        let (_, seen) = run_to_end(b, cmd);
        assert_eq!(seen.status.unwrap().code, Some(7));
        assert_eq!(seen.stdout, b"late\n");
        let mut events = seen.events.clone();
        assert_eq!(events.pop(), Some("close"), "{:?}", seen.events);
        events.sort_unstable();
        assert_eq!(events, ["exit", "stdout eof"]);
    });
}

/// 200 short children at once: every exit is reported with its own code, and none of
/// them is left a zombie (checked in /proc after the loop returns).
#[cfg(target_os = "linux")]
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
        let zombies: Vec<u32> = pids.into_iter().filter(|&p| is_our_zombie(p)).collect();
        assert!(zombies.is_empty(), "zombies left: {zombies:?}");
        assert!(lp
            .handles()
            .iter()
            .all(|h| h.kind != looplab::HandleKind::Process));
    });
}

/// The OS error inside a looplab error (the context wraps it; `source()` reaches it).
fn os_error(e: &io::Error) -> Option<i32> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return Some(code);
            }
            if let Some(inner) = io.get_ref() {
                cur = Some(inner);
                continue;
            }
        }
        cur = err.source();
    }
    None
}

/// A program that cannot be run is an error from `spawn_process` with the errno the
/// child's exec got (ENOENT, EACCES), not an exit 127; nothing is left on the loop.
#[test]
fn exec_failure_is_returned_with_its_errno() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let e = lp
            .spawn_process(
                Command::new("/nonexistent/looplab-no-such-program"),
                |_, _, _| panic!("no child, no exit"),
            )
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        assert_eq!(os_error(&e), Some(libc::ENOENT), "{e}");
        assert!(e.to_string().contains("looplab-no-such-program"), "{e}");

        let path =
            std::env::temp_dir().join(format!("looplab-not-exec-{}-{b}", std::process::id()));
        std::fs::write(&path, "#!/bin/sh\nexit 0\n").unwrap(); // mode 0644: not executable
        let e = lp
            .spawn_process(Command::new(&path), |_, _, _| {})
            .unwrap_err();
        let _ = std::fs::remove_file(&path);
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
        assert_eq!(os_error(&e), Some(libc::EACCES), "{e}");

        assert!(lp.handles().is_empty(), "{:?}", lp.handles());
        assert!(!lp.alive());
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
            .spawn_process(sh("exit 3").stdout(Stdio::Pipe), |_, _, _| {
                panic!("a closed process was reported")
            })
            .unwrap();
        assert!(lp.close(child.process));
        let pid = child.pid;
        lp.read_start(child.stdout.unwrap(), move |lp, me, ev| {
            if let ReadEvent::Eof = ev {
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

/// Arguments, environment and working directory reach the child.
#[test]
fn env_and_cwd_reach_the_child() {
    on_every_backend(|b| {
        let dir = std::env::temp_dir().canonicalize().unwrap();
        let cmd = sh("echo \"$LOOPLAB_TEST $1\"; pwd")
            .arg("argv0")
            .arg("second")
            .env("LOOPLAB_TEST", "from env")
            .current_dir(&dir)
            .stdout(Stdio::Pipe);
        let (_, seen) = run_to_end(b, cmd);
        let expected = format!("from env second\n{}\n", dir.display());
        assert_eq!(String::from_utf8_lossy(&seen.stdout), expected);

        let cmd = Command::new("/usr/bin/env")
            .env("KEEP", "x")
            .env_clear()
            .env("ONLY", "1")
            .stdout(Stdio::Pipe);
        let (_, seen) = run_to_end(b, cmd);
        assert_eq!(seen.stdout, b"ONLY=1\n");
    });
}

/// The trace shows the SIGCHLD arrive on the signal pipe and the child reaped in that
/// same poll phase, then the process handle closed.
#[test]
fn the_trace_shows_sigchld_and_the_reaping() {
    on_every_backend(|b| {
        let buf = SharedBuf::default();
        let mut lp = Loop::builder()
            .backend(b)
            .trace_to(buf.clone())
            .build()
            .unwrap();
        let child = lp
            .spawn_process(Command::new("true"), |_, _, _| {})
            .unwrap();
        let h = looplab::Handle::from(child.process);
        lp.run(RunMode::Default).unwrap();
        let text = buf.text();
        assert_in_order(
            &text,
            &[
                "sleeping until an event (infinite: no timer)".into(),
                "events: signal-pipe r".into(),
                format!("reaped pid {} exit 0", child.pid),
                format!("closed {h}"),
                "exit: nothing ref'd is active".into(),
            ],
        );
    });
}
