//! # 21 — Child processes: what the loop cannot poll, part two
//!
//! **What it shows.** Three commands run at once; their stdout and stderr come back on
//! pipes the loop polls like sockets, and are printed line by line as they arrive,
//! interleaved across children but in order within each stream. A fourth (`sleep 30`)
//! is killed with SIGTERM when a 300 ms deadline passes. A fifth names a program that
//! does not exist: `spawn_process` returns the exec error (ENOENT, from the child)
//! instead of a child that exits 127. A child's *exit* is not an fd: the kernel raises
//! SIGCHLD, the signal handler writes a byte into the loop's signal pipe, and the loop
//! then asks `waitpid(pid, WNOHANG)` about each of its own children. Each child reports
//! `exited` (the exit callback) and later `closed` (every pipe at EOF too, Node's
//! 'close').
//!
//! **Run it.** `cargo run --example 21_child_processes`; add `LOOPLAB_TRACE=1` before it
//! to watch the ticks.
//!
//! **Look for** `[words] err: oops` among the other lines, `[words] exited: exit 3`,
//! `[sleeper] 300 ms deadline: SIGTERM` then `[sleeper] exited: signal 15`, and
//! `[nope] not started: spawning "looplab-no-such-program": ... (os error 2)` first of
//! all. In the trace, each exit is `events: signal-pipe r` on a poll line, then
//! `reaped pid N exit 0` on the same tick's `done` line, and `closed #slot.gen` once
//! its pipes have ended; the last line says `exit: nothing ref'd is active`.
//!
//! **In production** bound what a child may make you hold (here a line longer than
//! 64 KiB is cut), give every child a deadline, and read both pipes: a child blocked on
//! a full stderr pipe never exits. `src/process.rs` explains the SIGCHLD machinery.

use looplab::process::{Command, Stdio};
use looplab::{Loop, Pipe, ReadEvent, RunMode};
use std::time::Duration;

/// A line longer than this is printed in pieces: a child must not make us buffer
/// without bound.
const MAX_LINE: usize = 64 * 1024;

/// What rides on each output pipe: whose it is, and the line not finished yet.
struct Lines {
    name: &'static str,
    stream: &'static str,
    partial: Vec<u8>,
}

fn sh(script: &str) -> Command {
    Command::new("sh").arg("-c").arg(script)
}

fn main() -> std::io::Result<()> {
    let mut lp = Loop::new()?;
    let jobs = [
        (
            "count",
            sh("for i in 1 2 3; do echo tick $i; sleep 0.1; done"),
        ),
        (
            "words",
            sh("printf 'alpha\\nbeta\\ngamma'; echo; echo oops >&2; exit 3"),
        ),
        ("uname", Command::new("uname").arg("-sm")),
        ("sleeper", Command::new("sleep").arg("30")),
        ("nope", Command::new("looplab-no-such-program")),
    ];
    for (name, cmd) in jobs {
        start(&mut lp, name, cmd)?;
    }
    lp.run(RunMode::Default)?;
    println!("all done: {}", lp.explain_alive());
    Ok(())
}

/// Spawn `cmd` with both outputs piped and printed line by line; `sleeper` gets a
/// deadline. A program that cannot start is reported, not fatal.
fn start(lp: &mut Loop, name: &'static str, cmd: Command) -> std::io::Result<()> {
    let cmd = cmd.stdout(Stdio::Pipe).stderr(Stdio::Pipe);
    let child = match lp.spawn_process(cmd, move |_, _, status| {
        println!("[{name}] exited: {status}");
    }) {
        Ok(child) => child,
        Err(e) => {
            println!("[{name}] not started: {e}");
            return Ok(());
        }
    };
    lp.on_process_close(child.process, move |_, _| {
        println!("[{name}] closed: exited, and its pipes are done")
    });
    for (pipe, stream) in [(child.stdout, "out"), (child.stderr, "err")] {
        if let Some(pipe) = pipe {
            read_lines(lp, pipe, name, stream)?;
        }
    }
    if name == "sleeper" {
        let p = child.process;
        lp.set_timeout(Duration::from_millis(300), move |lp, _| {
            println!("[{name}] 300 ms deadline: SIGTERM");
            if let Err(e) = lp.kill(p, libc::SIGTERM) {
                println!("[{name}] kill: {e}"); // it exited by itself meanwhile
            }
        });
    }
    Ok(())
}

/// Print each line of `pipe` as it completes; close the pipe at EOF.
fn read_lines(
    lp: &mut Loop,
    pipe: Pipe,
    name: &'static str,
    stream: &'static str,
) -> std::io::Result<()> {
    let lines = Lines {
        name,
        stream,
        partial: Vec::new(),
    };
    lp.set_data(pipe, lines);
    lp.read_start(pipe, |lp, me, ev| {
        let Some(lines) = lp.data_mut::<Lines>(me) else {
            return;
        };
        match ev {
            ReadEvent::Data(bytes) => lines.take(bytes),
            ReadEvent::Eof => {
                lines.flush();
                lp.close(me);
            }
            ReadEvent::Error(e) => {
                println!("[{}] {}: read failed: {e}", lines.name, lines.stream);
                lp.close(me);
            }
        }
    })
}

impl Lines {
    fn take(&mut self, mut bytes: &[u8]) {
        while let Some(at) = bytes.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&bytes[..at]);
            self.flush();
            bytes = &bytes[at + 1..];
        }
        self.partial.extend_from_slice(bytes);
        if self.partial.len() > MAX_LINE {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.partial.is_empty() {
            let line = String::from_utf8_lossy(&self.partial);
            println!("[{}] {}: {line}", self.name, self.stream);
            self.partial.clear();
        }
    }
}
