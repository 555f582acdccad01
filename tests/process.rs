//! Child processes on the loop: exit codes and signals, stdio pipes, Node's exit-then-close
//! order, exec failures with their errno, no zombie left behind, unref; on every backend.
//!
//! Each loop reaps only its own children (`waitpid(pid)`, never `waitpid(-1)`), so the
//! tests of this file may run at once, as they do, each with its own loops.

mod util;

use looplab::process::{Command, Stdio};
use looplab::RunMode;
use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::Duration;
use util::process::{os_error, run_to_end, sh, spawn_watched};
use util::trace::{assert_in_order, traced_loop};
use util::{new_loop, on_every_backend};

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
        let (mut lp, buf) = traced_loop(b);
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
