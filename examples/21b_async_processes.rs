//! # 21b — Child processes from tasks: example 21 with `async`/`await`
//!
//! **What it shows.** The scenario of example 21, written as tasks: three commands run
//! at once, their stdout and stderr printed line by line as they arrive (`lines()` on
//! each pipe, read by a task of its own); a fourth (`sleep 30`) outlives its 300 ms
//! deadline, so `task::timeout` gives up on `child.wait()` and the task kills it; a
//! fifth names a program that does not exist, and `Child::spawn(..).await` is the exec
//! error (ENOENT, from the child) instead of a child that exits 127. Underneath is the
//! machinery of example 21, unchanged: SIGCHLD on the signal pipe, `waitpid` for this
//! loop's own children, the pipes polled like sockets.
//!
//! **Run it.** `cargo run --example 21b_async_processes`; add `LOOPLAB_TRACE=1` before
//! it to watch the ticks and the tasks each wake polls.
//!
//! **Look for** `[nope] not started: spawning "looplab-no-such-program": ... (os error
//! 2)`, `[words] err: oops` among the other lines, `[words] exited: exit 3`,
//! `[sleeper] 300 ms deadline: SIGTERM` then `[sleeper] exited: signal 15`, each
//! child's `done` once its pipes are at EOF too, and last `all done: nothing ref'd is
//! active`. A child's `exited` may come before its last lines: its exit (SIGCHLD) and
//! its pipes' EOF are separate events, and `done` waits for both (Node's 'exit', then
//! 'close'). Compare `run` below with `start` and `read_lines` in example 21: the same
//! steps, in the order they happen instead of spread over callbacks.
//!
//! **In production** give every child a deadline (here the others get 10 s), read both
//! pipes (a child blocked on a full stderr pipe never exits), and bound what a line may
//! make you hold (`Lines` cuts a line past `MAX_LINE`, 64 KiB). A `Child` dropped while
//! its child runs kills it; keep the `Child` as long as the child should live.

use looplab::process::{Command, Stdio};
use looplab::task::{self, process::Child, PipeStream};
use looplab::Loop;
use std::io;
use std::time::Duration;

fn sh(script: &str) -> Command {
    Command::new("sh").arg("-c").arg(script)
}

fn main() -> io::Result<()> {
    let mut lp = Loop::new()?;
    let secs = Duration::from_secs;
    let jobs = [
        (
            "count",
            sh("for i in 1 2 3; do echo tick $i; sleep 0.1; done"),
            secs(10),
        ),
        (
            "words",
            sh("printf 'alpha\\nbeta\\ngamma'; echo; echo oops >&2; exit 3"),
            secs(10),
        ),
        ("uname", Command::new("uname").arg("-sm"), secs(10)),
        (
            "sleeper",
            Command::new("sleep").arg("30"),
            Duration::from_millis(300),
        ),
        ("nope", Command::new("looplab-no-such-program"), secs(10)),
    ];
    lp.block_on(async move {
        let tasks: Vec<_> = jobs
            .into_iter()
            .map(|(name, cmd, deadline)| (name, task::spawn(run(name, cmd, deadline))))
            .collect();
        for (name, job) in tasks {
            match job.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => println!("[{name}] failed: {e}"),
                Err(e) => println!("[{name}] task failed: {e}"),
            }
        }
    })?;
    println!("all done: {}", lp.explain_alive());
    Ok(())
}

/// Start `cmd`, print its output line by line, wait for it within `deadline` (SIGTERM
/// past it), then wait for its pipes' EOF. A program that cannot start is reported.
async fn run(name: &'static str, cmd: Command, deadline: Duration) -> io::Result<()> {
    let cmd = cmd.stdout(Stdio::Pipe).stderr(Stdio::Pipe);
    let mut child = match Child::spawn(cmd).await {
        Ok(child) => child,
        Err(e) => {
            println!("[{name}] not started: {e}");
            return Ok(());
        }
    };
    let readers = [("out", child.stdout.take()), ("err", child.stderr.take())]
        .map(|(stream, pipe)| task::spawn(print_lines(name, stream, pipe)));
    let status = match task::timeout(deadline, child.wait()).await {
        Ok(status) => status?,
        Err(_) => {
            println!("[{name}] {} ms deadline: SIGTERM", deadline.as_millis());
            child.kill(libc::SIGTERM)?;
            child.wait().await?
        }
    };
    println!("[{name}] exited: {status}");
    for reader in readers {
        reader.await??;
    }
    println!("[{name}] done: exited, and its pipes are at EOF");
    Ok(())
}

/// Print each line of `pipe` as it completes, prefixed with whose it is.
async fn print_lines(name: &str, stream: &str, pipe: Option<PipeStream>) -> io::Result<()> {
    let Some(pipe) = pipe else { return Ok(()) };
    let mut lines = pipe.lines();
    while let Some(line) = lines.next_line().await? {
        println!("[{name}] {stream}: {line}");
    }
    Ok(())
}
