//! Child processes on the loop: what the loop cannot poll, part two.
//!
//! A child's pipes are fds like any other (`src/pipe.rs`), but its *exit* is not: the
//! kernel says a child ended with a signal, SIGCHLD, and keeps its exit status (a
//! **zombie**) until the parent collects it with `waitpid`. So a child is watched the way
//! libuv's `uv_spawn` watches it:
//!
//! ```text
//!   spawn_process ──► watch SIGCHLD first (an internal watch on the loop's signal pipe,
//!                     so a child that dies at once is not missed), then fork + exec
//!   child exits   ──► kernel raises SIGCHLD ──► handler writes its byte into the pipe
//!   poll phase    ──► signal pipe readable ──► for each child *of this loop*:
//!                     waitpid(pid, WNOHANG): still running, or reaped with its status
//!                 ──► exit callback (lp, process, ExitStatus)
//!                 ──► the process handle closes once stdout and stderr reached EOF
//! ```
//!
//! - **Why `waitpid(pid)` for each child, never `waitpid(-1)`.** `-1` reaps *any* child
//!   of the process: another loop's, or one that other code spawned and will wait for
//!   itself. Each loop collects only its own pids; signals coalesce (ten exits may raise
//!   one SIGCHLD), so one SIGCHLD means "ask every one of mine". `ECHILD` (someone else
//!   reaped it) is not an error here: the child is gone, and its status with it.
//! - **No zombie ever.** A child is reaped even if its handle was closed first (libuv
//!   leaves that one a zombie); the SIGCHLD watch lasts while any child of the loop lives.
//! - **The internal watch is unref'd**: it is not a handle at all, so it never holds the
//!   loop. The process handle does, while the child runs (`unref_handle` lets it go).
//! - **Node's order**: the exit callback first; stdin is closed then (no one reads it any
//!   more); the process handle closes once each of its stdout and stderr pipes has
//!   reached EOF or been closed (Node's `'close'`, after `'exit'`), which
//!   [`Loop::on_process_close`] hears.
//! - **Spawning is std's** `std::process::Command::spawn`: it reports an exec failure
//!   with the child's own errno (a close-on-exec pipe from child to parent carries it),
//!   never as a silent exit 127. looplab adds the stdio: each `Stdio::Pipe` is one end of
//!   a Unix-domain socketpair, as libuv and Node make them, whose other end std puts on
//!   the child's fd 0, 1 or 2.
//!
//! Linux's `pidfd_open` (5.3) gives an fd per child that becomes readable when it exits:
//! pollable like a socket, no signal at all. The SIGCHLD way is the portable one.

mod reap;
mod spawn;

use crate::event_loop::Loop;
use crate::handle::Handle;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

pub use spawn::Spawned;

/// What a child's fd 0, 1 or 2 is connected to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Stdio {
    /// A [`Pipe`](crate::Pipe) on the loop (the parent's end of a socketpair).
    Pipe,
    /// The parent's own fd (the default, as for `std::process::Command::spawn`).
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
}

/// How to start a child: program, arguments, environment, directory and stdio. A
/// builder like `std::process::Command`, which it becomes when spawned.
#[derive(Clone, Debug)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    /// In order; `None` removes the variable.
    env: Vec<(OsString, Option<OsString>)>,
    env_clear: bool,
    dir: Option<PathBuf>,
    stdio: [Stdio; 3],
}

impl Command {
    /// Run `program`, found on `PATH` if it has no slash, with no arguments.
    pub fn new(program: impl Into<OsString>) -> Command {
        Command {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            env_clear: false,
            dir: None,
            stdio: [Stdio::Inherit; 3],
        }
    }

    /// Add one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Command {
        self.args.push(arg.into());
        self
    }

    /// Add arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Command {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Set an environment variable for the child.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Command {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    /// Remove an environment variable from the child's environment.
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Command {
        self.env.push((key.into(), None));
        self
    }

    /// Start the child with an empty environment (then `env` adds to it).
    pub fn env_clear(mut self) -> Command {
        self.env.clear();
        self.env_clear = true;
        self
    }

    /// The child's working directory (Node's `cwd`).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Command {
        self.dir = Some(dir.into());
        self
    }

    /// What the child's stdin is.
    pub fn stdin(mut self, s: Stdio) -> Command {
        self.stdio[0] = s;
        self
    }

    /// What the child's stdout is.
    pub fn stdout(mut self, s: Stdio) -> Command {
        self.stdio[1] = s;
        self
    }

    /// What the child's stderr is.
    pub fn stderr(mut self, s: Stdio) -> Command {
        self.stdio[2] = s;
        self
    }

    /// The program, for messages.
    pub fn program(&self) -> &std::ffi::OsStr {
        &self.program
    }
}

/// How a child ended: an exit code, or the signal that killed it (libuv's `exit_cb`
/// gets the same two numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitStatus {
    /// The code it passed to `exit`, if it exited.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
}

impl ExitStatus {
    /// It exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Neither: someone else reaped the child (`ECHILD`), and its status went with them.
    pub fn unknown(&self) -> bool {
        self.code.is_none() && self.signal.is_none()
    }

    pub(crate) fn from_std(s: std::process::ExitStatus) -> ExitStatus {
        use std::os::unix::process::ExitStatusExt as _;
        ExitStatus {
            code: s.code(),
            signal: s.signal(),
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit {code}"),
            (None, Some(sig)) => write!(f, "signal {sig}"),
            (None, None) => f.write_str("status unknown (reaped elsewhere)"),
        }
    }
}

pub(crate) type OnExit = Box<dyn FnOnce(&mut Loop, crate::Process, ExitStatus)>;
type OnProcessClose = Box<dyn FnOnce(&mut Loop, crate::Process)>;

pub(crate) struct ProcessState {
    pid: u32,
    /// `None` once reaped, or once handed to `Children::orphans` by a close.
    child: Option<std::process::Child>,
    on_exit: Option<OnExit>,
    on_close: Option<OnProcessClose>,
    /// Set when reaped.
    status: Option<ExitStatus>,
    stdin: Option<Handle>,
    /// The stdout and stderr pipes that have not ended (EOF, error or closed) yet.
    open_output: Vec<Handle>,
}

/// The loop's children: whom to `waitpid` when SIGCHLD comes.
#[derive(Default)]
pub(crate) struct Children {
    /// Process handles whose child has not been reaped, in spawn order.
    running: Vec<Handle>,
    /// Children whose handle was closed before they exited: still reaped, never reported.
    orphans: Vec<std::process::Child>,
    /// The loop's signal slot watches SIGCHLD (while `running` or `orphans` is non-empty).
    watching: bool,
}

impl Children {
    /// How many children of this loop are not reaped yet.
    pub fn unreaped(&self) -> usize {
        self.running.len() + self.orphans.len()
    }
}
