//! Child processes from tasks (`looplab::task::process`): exit codes and signals through
//! `wait`, stdout and stderr as streams, stdin written and shut, 100 children awaited at
//! once with no zombie, exec failures with their errno, kill-on-drop, and `output`'s
//! bound; on every backend.

mod util;

use looplab::process::{Command, Stdio};
use looplab::task::process::{output, Child};
use looplab::task::{self, MAX_LINE};
use looplab::{Backend, Loop, RunMode};
use std::future::Future;
use std::io;
use std::time::Duration;
#[cfg(target_os = "linux")]
use util::process::is_our_zombie;
use util::process::{os_error, sh};
use util::{new_loop, on_every_backend};

/// `fut` on a fresh loop of `backend`, with a guard so a lost wake fails instead of hangs.
fn block_on<T: 'static>(b: Backend, fut: impl Future<Output = T> + 'static) -> (Loop, T) {
    let mut lp = new_loop(b);
    util::fail_after(&mut lp, Duration::from_secs(30));
    let out = lp.block_on(fut).expect("the future finished");
    (lp, out)
}

/// Whether `pid` is gone for good: no such process, not even a zombie (`kill -0`, which
/// a zombie still answers, fails). Any OS, unlike a look in /proc.
fn reaped(pid: u32) -> bool {
    let probe = std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("running kill -0");
    !probe.success()
}

/// Exit codes 0, 1 and 42 come back from `wait`; awaited again, `wait` gives the same
/// status at once; once reaped, `kill` is refused with ESRCH.
#[test]
fn wait_gives_the_exit_code_again_and_kill_after_it_is_refused() {
    on_every_backend(|b| {
        let (_, codes) = block_on(b, async {
            let mut codes = Vec::new();
            for code in [0, 1, 42] {
                let mut child = Child::spawn(sh(&format!("exit {code}"))).await?;
                let first = child.wait().await?;
                assert_eq!(child.wait().await?, first, "wait after exit");
                assert_eq!(child.try_wait(), Some(first));
                let refused = child.kill(libc::SIGTERM).unwrap_err();
                assert_eq!(os_error(&refused), Some(libc::ESRCH), "{refused}");
                codes.push((first.code, first.signal, first.success()));
            }
            Ok::<_, io::Error>(codes)
        });
        let codes = codes.unwrap();
        assert_eq!(
            codes,
            [
                (Some(0), None, true),
                (Some(1), None, false),
                (Some(42), None, false)
            ]
        );
    });
}

/// A wait cut short by `task::timeout` leaves the child running; `kill` then ends it
/// and the next `wait` names the signal.
#[test]
fn a_timed_out_wait_then_kill_reports_the_signal() {
    on_every_backend(|b| {
        let (_, status) = block_on(b, async {
            let mut child = Child::spawn(Command::new("sleep").arg("30")).await?;
            let waited = task::timeout(Duration::from_millis(50), child.wait()).await;
            assert_eq!(waited.unwrap_err().kind(), io::ErrorKind::TimedOut);
            assert_eq!(child.try_wait(), None, "it still runs");
            child.kill(libc::SIGTERM)?;
            child.wait().await
        });
        let status = status.unwrap();
        assert_eq!((status.code, status.signal), (None, Some(libc::SIGTERM)));
    });
}

/// stdout and stderr arrive on their own streams, each whole and in order, while the
/// child interleaves its writes: read line by line from two tasks at once.
#[test]
fn stdout_and_stderr_are_read_separately_and_in_order() {
    on_every_backend(|b| {
        let script = "i=1; while [ $i -le 500 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done";
        let (_, got) = block_on(b, async move {
            let cmd = sh(script).stdout(Stdio::Pipe).stderr(Stdio::Pipe);
            let mut child = Child::spawn(cmd).await?;
            let collect = |pipe: looplab::task::PipeStream| async move {
                let mut lines = pipe.lines();
                let mut all = Vec::new();
                while let Some(line) = lines.next_line().await? {
                    all.push(line);
                }
                Ok::<_, io::Error>(all)
            };
            let err = task::spawn(collect(child.stderr.take().unwrap()));
            let out = collect(child.stdout.take().unwrap()).await?;
            let err = err.await??;
            Ok::<_, io::Error>((out, err, child.wait().await?))
        });
        let (out, err, status) = got.unwrap();
        let want = |p: &str| (1..=500).map(|i| format!("{p}{i}")).collect::<Vec<_>>();
        assert_eq!(out, want("out"));
        assert_eq!(err, want("err"));
        assert!(status.success());
    });
}

/// 1 MiB written to `cat` by one task, then `shutdown`: cat sees EOF and gives it all
/// back to the task that reads, then exits 0.
#[test]
fn stdin_is_written_and_shut_down() {
    on_every_backend(|b| {
        let data: Vec<u8> = (0..1 << 20).map(|i| (i % 253) as u8).collect();
        let sent = data.clone();
        let (_, got) = block_on(b, async move {
            let cmd = Command::new("cat").stdin(Stdio::Pipe).stdout(Stdio::Pipe);
            let mut child = Child::spawn(cmd).await?;
            let mut stdin = child.stdin.take().unwrap();
            let writer = task::spawn(async move {
                stdin.write_all(&sent).await?;
                stdin.shutdown().await
            });
            let mut stdout = child.stdout.take().unwrap();
            let (mut back, mut buf) = (Vec::new(), vec![0; 64 * 1024]);
            loop {
                let n = stdout.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                back.extend_from_slice(&buf[..n]);
            }
            writer.await??;
            Ok::<_, io::Error>((back, child.wait().await?))
        });
        let (back, status) = got.unwrap();
        assert!(status.success());
        assert!(back == data, "{} of {} bytes back", back.len(), data.len());
    });
}

/// 100 children spawned by 100 tasks and awaited at once: each task gets its own exit
/// code, and none of the children is left a zombie (/proc, on Linux).
#[test]
fn a_hundred_children_awaited_at_once_leave_no_zombie() {
    on_every_backend(|b| {
        let (lp, got) = block_on(b, async {
            let tasks: Vec<_> = (0..100)
                .map(|i| {
                    task::spawn(async move {
                        let mut child = Child::spawn(sh(&format!("exit {}", i % 50))).await?;
                        let status = child.wait().await?;
                        Ok::<_, io::Error>((i, child.id(), status.code))
                    })
                })
                .collect();
            let mut all = Vec::new();
            for t in tasks {
                all.push(t.await??);
            }
            Ok::<_, io::Error>(all)
        });
        let got = got.unwrap();
        let codes: Vec<_> = got.iter().map(|&(i, _, code)| (i, code)).collect();
        let want: Vec<_> = (0..100).map(|i| (i, Some(i % 50))).collect();
        assert_eq!(codes, want);
        #[cfg(target_os = "linux")]
        {
            let zombies: Vec<u32> = got
                .iter()
                .map(|&(_, pid, _)| pid)
                .filter(|&p| is_our_zombie(p))
                .collect();
            assert!(zombies.is_empty(), "zombies left: {zombies:?}");
        }
        let processes = lp
            .handles()
            .iter()
            .filter(|h| h.kind == looplab::HandleKind::Process)
            .count();
        assert_eq!(processes, 0, "process handles left: {}", lp.explain_alive());
    });
}

/// A program that cannot be run comes back from `Child::spawn` as the child's errno:
/// ENOENT for a missing one, EACCES for a file without the exec bit.
#[test]
fn exec_failure_reaches_the_task_with_its_errno() {
    on_every_backend(|b| {
        let dir = std::env::temp_dir().join(format!("looplab-noexec-{}-{b}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let not_exec = dir.join("script");
        std::fs::write(&not_exec, "#!/bin/sh\nexit 0\n").unwrap();
        let (_, got) = block_on(b, async move {
            let missing = Child::spawn(Command::new("looplab-no-such-program")).await;
            let denied = Child::spawn(Command::new(&not_exec)).await;
            (missing.err(), denied.err())
        });
        let _ = std::fs::remove_dir_all(&dir);
        let (missing, denied) = (got.0.expect("an error"), got.1.expect("an error"));
        assert_eq!(missing.kind(), io::ErrorKind::NotFound, "{missing}");
        assert_eq!(os_error(&missing), Some(libc::ENOENT), "{missing}");
        assert!(missing.to_string().contains("looplab-no-such-program"));
        assert_eq!(os_error(&denied), Some(libc::EACCES), "{denied}");
    });
}

/// Dropping a `Child` whose child runs kills it (SIGKILL), and the loop holds on until
/// it has reaped it: after `run` returns there is no such process, zombie or not.
#[test]
fn a_dropped_child_is_killed_and_reaped() {
    on_every_backend(|b| {
        let (mut lp, pid) = block_on(b, async {
            let child = Child::spawn(Command::new("sleep").arg("30")).await?;
            let pid = child.id();
            drop(child);
            Ok::<_, io::Error>(pid)
        });
        let pid = pid.unwrap();
        assert!(
            lp.explain_alive().contains("1 process"),
            "the loop waits for the killed child: {}",
            lp.explain_alive()
        );
        lp.run(RunMode::Default).unwrap();
        assert!(reaped(pid), "pid {pid} is still there (a zombie, or alive)");
        let left = lp.handles();
        assert!(
            left.iter().all(|h| h.kind != looplab::HandleKind::Process),
            "{left:?}"
        );
    });
}

/// A `Child::spawn` dropped before it finished (it lost a race to a future that was
/// ready at once) still spawned its child, and the `Child` nobody will get kills it:
/// the loop reaps it and its handle closes.
#[test]
fn a_spawn_dropped_before_it_finished_kills_its_child() {
    on_every_backend(|b| {
        let (mut lp, winner) = block_on(b, async {
            let spawn = Child::spawn(Command::new("sleep").arg("30"));
            match task::race(spawn, async { "ready first" }).await {
                task::Either::Left(_) => "spawn",
                task::Either::Right(s) => s,
            }
        });
        assert_eq!(winner, "ready first");
        lp.run(RunMode::Default).unwrap();
        let left = lp.handles();
        assert!(
            left.iter().all(|h| h.kind != looplab::HandleKind::Process),
            "{left:?}"
        );
    });
}

/// `output` collects both streams and the status; past the cap, `wait_with_output`
/// fails with `InvalidData` and the child is killed, not left running or a zombie.
#[test]
fn output_collects_both_streams_within_its_bound() {
    on_every_backend(|b| {
        let (mut lp, got) = block_on(b, async {
            let both = output(sh("echo to-out; echo to-err >&2; exit 3")).await?;
            let cmd = Command::new("yes").stdout(Stdio::Pipe);
            let child = Child::spawn(cmd).await?;
            let pid = child.id();
            let past = child.wait_with_output(100_000).await.unwrap_err();
            Ok::<_, io::Error>((both, pid, past))
        });
        let (both, pid, past) = got.unwrap();
        assert_eq!(both.stdout, b"to-out\n");
        assert_eq!(both.stderr, b"to-err\n");
        assert_eq!(both.status.code, Some(3));
        assert_eq!(past.kind(), io::ErrorKind::InvalidData, "{past}");
        assert!(past.to_string().contains("100000 bytes"), "{past}");
        lp.run(RunMode::Default).unwrap();
        assert!(reaped(pid), "pid {pid} is still there (a zombie, or alive)");
    });
}

/// Lines: a last line without a newline is still a line; one longer than `MAX_LINE`
/// comes in pieces of `MAX_LINE` bytes, however the reads cut it, and one of exactly
/// `MAX_LINE` bytes is one line (no empty piece after it).
#[test]
fn lines_split_at_newlines_and_at_the_bound() {
    on_every_backend(|b| {
        let xs = |n: usize| format!("head -c {n} /dev/zero | tr '\\0' x; echo");
        let script = format!(
            "echo first; {}; {}; printf last",
            xs(MAX_LINE + 10),
            xs(MAX_LINE)
        );
        let (_, got) = block_on(b, async move {
            let cmd = sh(&script).stdout(Stdio::Pipe);
            let mut child = Child::spawn(cmd).await?;
            let mut lines = child.stdout.take().unwrap().lines();
            let mut all = Vec::new();
            while let Some(line) = lines.next_line().await? {
                all.push(line);
            }
            child.wait().await?;
            Ok::<_, io::Error>(all)
        });
        let lines = got.unwrap();
        let lens: Vec<usize> = lines.iter().map(String::len).collect();
        assert_eq!(lens, [5, MAX_LINE, 10, MAX_LINE, 4], "line lengths");
        assert_eq!((lines[0].as_str(), lines[4].as_str()), ("first", "last"));
    });
}

/// While a task waits for a child, `explain_alive` says so, with the pid.
#[test]
fn explain_alive_names_the_child_a_task_waits_for() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(30));
        let (tx, rx) = std::sync::mpsc::channel();
        let waited = lp.spawn(async move {
            let mut child = Child::spawn(Command::new("sleep").arg("30")).await?;
            tx.send(child.id()).unwrap();
            child.wait().await
        });
        let mut pid = None;
        while pid.is_none() {
            lp.run(RunMode::Once).unwrap();
            pid = rx.try_recv().ok();
        }
        let pid = pid.unwrap();
        let why = lp.explain_alive();
        assert!(why.contains(&format!("pid {pid} to exit")), "{why}");
        // Killed from outside: the task's wait ends with the signal.
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("running kill");
        assert!(killed.success());
        let status = lp.block_on(waited).unwrap().unwrap().unwrap();
        assert_eq!(status.signal, Some(libc::SIGKILL));
        lp.run(RunMode::Default).unwrap();
        assert!(reaped(pid), "pid {pid} is still there (a zombie, or alive)");
    });
}

#[path = "util/exercise.rs"]
mod exercise;

/// Example 21b runs as its header (and chapter 13) says: the exec failure with ENOENT,
/// every line of each stream in order, `words` exiting 3, `sleeper` killed at its
/// deadline, each child's `done` after its `exited`, and nothing left holding the loop.
#[test]
fn example_21b_prints_what_its_header_says() {
    let file = "examples/21b_async_processes.rs";
    for quoted in [
        r#"`[nope] not started: spawning "looplab-no-such-program": ... (os error 2)`"#,
        "`[words] err: oops`",
        "`[words] exited: exit 3`",
        "`[sleeper] 300 ms deadline: SIGTERM` then `[sleeper] exited: signal 15`",
        "`all done: nothing ref'd is active`",
    ] {
        exercise::says(file, quoted);
    }
    let run = exercise::run_to_end("21b_async_processes", &[], &[], Duration::from_secs(60));
    let out = &run.out;
    let line = |want: &str| {
        out.iter()
            .position(|l| l == want)
            .unwrap_or_else(|| panic!("no line {want:?} in:\n{}", out.join("\n")))
    };
    let nope = out
        .iter()
        .find(|l| l.starts_with("[nope] not started: spawning \"looplab-no-such-program\""))
        .unwrap_or_else(|| panic!("no exec failure in:\n{}", out.join("\n")));
    assert!(nope.ends_with("(os error 2)"), "{nope}");
    let in_order = |lines: &[&str]| {
        let at: Vec<usize> = lines.iter().map(|l| line(l)).collect();
        assert!(
            at.windows(2).all(|w| w[0] < w[1]),
            "out of order: {lines:?}"
        );
    };
    in_order(&[
        "[count] out: tick 1",
        "[count] out: tick 2",
        "[count] out: tick 3",
    ]);
    in_order(&[
        "[words] out: alpha",
        "[words] out: beta",
        "[words] out: gamma",
    ]);
    line("[words] err: oops");
    assert!(
        out.iter().any(|l| l.starts_with("[uname] out: ")),
        "uname printed nothing"
    );
    in_order(&[
        "[sleeper] 300 ms deadline: SIGTERM",
        "[sleeper] exited: signal 15",
    ]);
    for (name, status) in [
        ("count", "exit 0"),
        ("words", "exit 3"),
        ("uname", "exit 0"),
    ] {
        in_order(&[
            &format!("[{name}] exited: {status}"),
            &format!("[{name}] done: exited, and its pipes are at EOF"),
        ]);
    }
    line("[sleeper] done: exited, and its pipes are at EOF");
    let chapter = exercise::read("docs/13-processes.md");
    let quoted = exercise::blocks(&chapter, "text")
        .into_iter()
        .find(|b| b.iter().any(|l| l.starts_with("[sleeper] done")))
        .expect("chapter 13 quotes the killed child's lines");
    exercise::assert_lines_in_order(&quoted, out, "21b_async_processes");

    // The traced run: the tick that reaps the killed child polls the task its exit woke.
    for quoted in ["`reaped pid 16856 signal 15`", "`#4.5 by a signal`"] {
        exercise::says("docs/13-processes.md", quoted);
    }
    let traced = exercise::run_to_end(
        "21b_async_processes",
        &[],
        &[("LOOPLAB_TRACE", "1")],
        Duration::from_secs(60),
    );
    // Another child may be reaped in the same tick: "reaped pid 7 exit 0, pid 9 signal 15".
    let reaps_the_killed_one =
        |l: &str| l.contains("done | reaped pid ") && l.contains(" signal 15");
    assert!(
        traced
            .err
            .iter()
            .any(|l| reaps_the_killed_one(l) && l.contains(" by a signal")),
        "no tick reaps the killed child and polls the task it woke:\n{}",
        traced.err.join("\n")
    );
    assert_eq!(
        out.last().map(String::as_str),
        Some("all done: nothing ref'd is active")
    );
}
