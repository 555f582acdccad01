//! Child processes for tasks: `Child::spawn(cmd).await`, then `child.wait().await`,
//! `child.kill(sig)`, and its stdio as [`PipeStream`]s; [`output`] runs a command and
//! collects what it prints.
//!
//! ```no_run
//! use looplab::task::process::{Child, Command, Stdio};
//! use looplab::Loop;
//!
//! let mut lp = Loop::new()?;
//! lp.block_on(async {
//!     let cmd = Command::new("uname").arg("-s").stdout(Stdio::Pipe);
//!     let mut child = Child::spawn(cmd).await?;
//!     let mut lines = child.stdout.take().expect("piped").lines();
//!     while let Some(line) = lines.next_line().await? {
//!         println!("uname says {line}");
//!     }
//!     child.wait().await
//! })??;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The builder is the callback API's own [`Command`] (with [`Stdio`]), re-exported here.
//! Underneath is the callback API of `src/process.rs`, unchanged: the spawn is one ask
//! (`Loop::spawn_process`, which watches SIGCHLD *before* it forks), the exit callback
//! fills a cell and wakes whoever awaits `wait`, and the pipes are the task streams of
//! `task/pipe.rs`. The process handle and the pipes are unref'd: the task that awaits
//! them holds the loop, as with `TcpStream`.
//!
//! - **Exec failure** comes back from `Child::spawn(..).await` as the `io::Error` std
//!   got from the child (`NotFound` for a missing program, its errno reachable through
//!   `source()`), never as a child that exits 127.
//! - **`kill` needs no loop.** Reaping happens on the loop's thread, in its poll phase,
//!   and so does everything a task does: if the exit callback has not run, the child has
//!   not been reaped, so its pid is still its own (a zombie's pid is never reused) and
//!   `kill(2)` reaches it. After the exit callback, `kill` is refused with `ESRCH`.
//! - **Dropping a `Child` that still runs kills it** (SIGKILL) and leaves its reaping to
//!   the loop, which the process handle then holds until the child is reaped: no zombie,
//!   and no child outliving the task that forgot it. This is tokio's `kill_on_drop(true)`;
//!   std (and tokio by default) detach instead, which a loop cannot do without leaving a
//!   zombie when it exits first. To let a child run on, keep its `Child`. A `Child` whose
//!   child has exited drops quietly. One gap, as for the callback API: a `Loop` dropped
//!   before it has reaped a killed child leaves that zombie to the process's own exit.

mod output;

pub use crate::process::{Command, ExitStatus, Stdio};
pub use output::{output, Output, OUTPUT_LIMIT};

use super::pipe::PipeStream;
use super::reactor::{self, Note, Reactor, Waiting};
use crate::event_loop::Loop;
use crate::handle::Process;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A running (or exited) child, used from a task.
pub struct Child {
    /// Write here to feed the child; `shutdown().await` (or dropping it) gives it EOF.
    pub stdin: Option<PipeStream>,
    /// The child's output, if `Stdio::Pipe` was asked for.
    pub stdout: Option<PipeStream>,
    /// The child's error output, if `Stdio::Pipe` was asked for.
    pub stderr: Option<PipeStream>,
    pid: u32,
    process: Process,
    exit: Rc<RefCell<Exit>>,
    reactor: Rc<Reactor>,
}

/// What the exit callback and `wait` share.
#[derive(Default)]
struct Exit {
    /// Set by the exit callback: the child is reaped.
    status: Option<ExitStatus>,
    waiter: Option<Waker>,
}

impl Child {
    /// Start `cmd` (see [`Command`]); the future gives the `Child`, or the spawn's error.
    pub fn spawn(cmd: Command) -> Spawn {
        Spawn {
            cmd: Some(cmd),
            started: None,
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// The loop's process handle (for `handles()` and the trace).
    pub fn handle(&self) -> Process {
        self.process
    }

    /// How the child ended, if it has been reaped; `None` while it runs.
    pub fn try_wait(&self) -> Option<ExitStatus> {
        self.exit.borrow().status
    }

    /// Wait for the child to exit: its exit code or the signal that ended it. Awaited
    /// again after that, it gives the same status at once.
    pub fn wait(&mut self) -> Wait<'_> {
        Wait {
            child: self,
            note: None,
        }
    }

    /// Send `signum` to the child. Refused with `ESRCH` once it has been reaped (its pid
    /// may belong to another process by then).
    pub fn kill(&self, signum: i32) -> io::Result<()> {
        let pid = self.pid;
        if let Some(status) = self.try_wait() {
            return Err(crate::error::context(
                format!("kill pid {pid}: it ended ({status}) and was reaped"),
                io::Error::from_raw_os_error(libc::ESRCH),
            ));
        }
        crate::sys::process::kill(pid, signum)
            .map_err(|e| crate::error::context(format!("sending signal {signum} to pid {pid}"), e))
    }

    /// Close stdin (EOF for the child), read stdout and stderr to their ends, at most
    /// `limit` bytes each, and wait for the exit. Past `limit` the error is `InvalidData`
    /// and the child is killed.
    pub async fn wait_with_output(self, limit: usize) -> io::Result<Output> {
        output::collect(self, limit).await
    }
}

impl Drop for Child {
    /// Kill a child that still runs, and have the loop hold on until it is reaped.
    fn drop(&mut self) {
        if self.try_wait().is_some() {
            return;
        }
        // Already gone by itself is fine: SIGCHLD is on its way and the loop reaps it.
        let _ = crate::sys::process::kill(self.pid, libc::SIGKILL);
        let process = self.process;
        self.reactor.ask(move |lp| {
            lp.ref_handle(process);
        });
    }
}

/// The future of [`Child::spawn`].
pub struct Spawn {
    cmd: Option<Command>,
    started: Option<Rc<RefCell<Started>>>,
}

#[derive(Default)]
struct Started {
    child: Option<io::Result<Child>>,
    waker: Option<Waker>,
}

impl Future for Spawn {
    type Output = io::Result<Child>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<Child>> {
        let r = reactor::current("Child::spawn")?;
        if let Some(cmd) = self.cmd.take() {
            let cell = Rc::new(RefCell::new(Started::default()));
            let (done, me) = (cell.clone(), r.clone());
            r.ask(move |lp| {
                let child = start(lp, cmd, me);
                let mut d = done.borrow_mut();
                d.child = Some(child);
                if let Some(w) = d.waker.take() {
                    w.wake();
                }
            });
            self.started = Some(cell);
        }
        let Some(cell) = &self.started else {
            return Poll::Ready(Err(io::Error::other(
                "Child::spawn polled after it finished",
            )));
        };
        let mut c = cell.borrow_mut();
        let Some(child) = c.child.take() else {
            reactor::store_waker(&mut c.waker, cx);
            return Poll::Pending;
        };
        drop(c);
        self.started = None;
        Poll::Ready(child)
    }
}

/// On the loop: spawn, unref the handles (the task holds the loop), wrap the pipes.
/// A `Spawn` dropped meanwhile drops the `Child` this makes, which kills it.
fn start(lp: &mut Loop, cmd: Command, reactor: Rc<Reactor>) -> io::Result<Child> {
    let exit = Rc::new(RefCell::new(Exit::default()));
    let e = exit.clone();
    let spawned = lp.spawn_process(cmd, move |_, _, status| {
        let mut e = e.borrow_mut();
        e.status = Some(status);
        if let Some(w) = e.waiter.take() {
            w.wake();
        }
    })?;
    lp.unref_handle(spawned.process);
    let mut stream = |pipe: Option<crate::Pipe>| {
        pipe.map(|p| {
            lp.unref_handle(p);
            PipeStream::new(p, reactor.clone())
        })
    };
    Ok(Child {
        stdin: stream(spawned.stdin),
        stdout: stream(spawned.stdout),
        stderr: stream(spawned.stderr),
        pid: spawned.pid,
        process: spawned.process,
        exit,
        reactor,
    })
}

/// The future of [`Child::wait`].
pub struct Wait<'a> {
    child: &'a mut Child,
    /// What it told the loop it waits on, while it waits.
    note: Option<Note>,
}

impl Future for Wait<'_> {
    type Output = io::Result<ExitStatus>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<ExitStatus>> {
        let r = reactor::current("Child::wait")?;
        let mut e = self.child.exit.borrow_mut();
        if let Some(status) = e.status {
            drop(e);
            self.note = None;
            return Poll::Ready(Ok(status));
        }
        reactor::store_waker(&mut e.waiter, cx);
        drop(e);
        let pid = self.child.pid;
        self.note = Some(r.waits_on(Waiting::Exit(pid)));
        Poll::Pending
    }
}
