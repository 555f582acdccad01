//! `spawn_process`: the stdio socketpairs, the SIGCHLD watch, then std's fork and exec.

use super::{Command, ExitStatus, OnExit, ProcessState, Stdio};
use crate::event_loop::{Loop, State};
use crate::handle::{Handle, HandleKind, Pipe, Process};
use crate::stream::StreamIo;
use socket2::Socket;
use std::io;
use std::os::unix::io::OwnedFd;
use std::os::unix::net::UnixStream;

/// A started child: its handle, its pid, and the loop's ends of the pipes asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spawned {
    /// Holds the loop until the child exits; closes itself after (see the module doc).
    pub process: Process,
    /// The child's process id.
    pub pid: u32,
    /// Write here to feed the child; `shutdown` (or `close`) gives it EOF.
    pub stdin: Option<Pipe>,
    /// Read the child's output here.
    pub stdout: Option<Pipe>,
    /// Read the child's error output here.
    pub stderr: Option<Pipe>,
}

/// One end for the loop, one for the child's fd. The child's end stays blocking, as
/// programs expect their stdio to be; the loop's is made non-blocking.
fn stdio_pair() -> io::Result<(Socket, std::process::Stdio)> {
    // std makes both ends close-on-exec: the child keeps only the copy put on 0, 1 or 2.
    let (ours, theirs) = UnixStream::pair()?;
    let ours = Socket::from(OwnedFd::from(ours));
    ours.set_nonblocking(true)?;
    crate::sys::net::no_sigpipe(&ours)?;
    Ok((ours, std::process::Stdio::from(OwnedFd::from(theirs))))
}

/// The std command for `cmd`, with the child's ends of the pipes; our ends come back.
fn std_command(cmd: &Command) -> io::Result<(std::process::Command, [Option<Socket>; 3])> {
    let mut c = std::process::Command::new(&cmd.program);
    c.args(&cmd.args);
    if cmd.env_clear {
        c.env_clear();
    }
    for (key, value) in &cmd.env {
        match value {
            Some(v) => c.env(key, v),
            None => c.env_remove(key),
        };
    }
    if let Some(dir) = &cmd.dir {
        c.current_dir(dir);
    }
    let mut ours: [Option<Socket>; 3] = [None, None, None];
    for (fd, mode) in cmd.stdio.iter().enumerate() {
        let theirs = match mode {
            Stdio::Inherit => std::process::Stdio::inherit(),
            Stdio::Null => std::process::Stdio::null(),
            Stdio::Pipe => {
                let (mine, theirs) = stdio_pair()?;
                ours[fd] = Some(mine);
                theirs
            }
        };
        match fd {
            0 => c.stdin(theirs),
            1 => c.stdout(theirs),
            _ => c.stderr(theirs),
        };
    }
    Ok((c, ours))
}

impl Loop {
    /// Start a child process (libuv's `uv_spawn`, Node's `child_process.spawn`).
    /// `on_exit(lp, process, status)` runs in the poll phase after the child exits. The
    /// process handle holds the loop until then; `Spawned` has the pipes asked for.
    ///
    /// An exec failure is returned here, with the child's errno (`NotFound` for a
    /// missing program: the `io::Error` inside is the OS error), never a silent exit 127.
    ///
    /// A child is reaped when it exits, even after its handle was closed, as long as the
    /// loop runs; one still running when the `Loop` is dropped is not (like a dropped
    /// `std::process::Child`): kill it and run the loop to its exit callback first.
    pub fn spawn_process(
        &mut self,
        cmd: Command,
        on_exit: impl FnOnce(&mut Loop, Process, ExitStatus) + 'static,
    ) -> io::Result<Spawned> {
        let program = cmd.program.to_string_lossy().into_owned();
        let ctx = |e| crate::error::context(format!("spawning {program:?}"), e);
        let (mut std_cmd, ours) = std_command(&cmd).map_err(ctx)?;
        // Watch before the fork: a child that exits at once must find the handler there.
        self.watch_children().map_err(ctx)?;
        let spawned = std_cmd.spawn();
        // The child's ends live in `std_cmd`: closed now, so our reads see its EOF.
        drop(std_cmd);
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                self.unwatch_children_if_none();
                return Err(ctx(e));
            }
        };
        Ok(self.adopt_child(child, ours, Box::new(on_exit)))
    }

    /// The handles for a child that has started: its pipes (the stdout and stderr ones
    /// know their process, to tell it of their EOF), then the process handle, active
    /// and ref'd, in the list SIGCHLD looks at.
    fn adopt_child(
        &mut self,
        child: std::process::Child,
        ours: [Option<Socket>; 3],
        on_exit: OnExit,
    ) -> Spawned {
        let pid = child.id();
        let [stdin, stdout, stderr] = ours
            .map(|s| s.map(|s| Pipe(self.insert_stream(StreamIo::Socket(s), HandleKind::Pipe))));
        let outputs: Vec<Handle> = [stdout, stderr]
            .into_iter()
            .flatten()
            .map(Handle::from)
            .collect();
        let state = ProcessState {
            pid,
            child: Some(child),
            on_exit: Some(on_exit),
            on_close: None,
            status: None,
            stdin: stdin.map(Handle::from),
            open_output: outputs.clone(),
        };
        let state = State::Process(Box::new(state));
        let h = self.handles.insert(HandleKind::Process, state, true, true);
        for p in outputs {
            if let Some(t) = self.stream(p) {
                t.owner = Some(h);
            }
        }
        self.children.running.push(h);
        Spawned {
            process: Process(h),
            pid,
            stdin,
            stdout,
            stderr,
        }
    }

    /// Make sure SIGCHLD reaches this loop's signal pipe.
    fn watch_children(&mut self) -> io::Result<()> {
        if !self.children.watching {
            self.watch_internal(libc::SIGCHLD)?;
            self.children.watching = true;
        }
        Ok(())
    }

    /// Stop watching SIGCHLD once no child of this loop is left to reap.
    pub(super) fn unwatch_children_if_none(&mut self) {
        if self.children.watching && self.children.unreaped() == 0 {
            self.unwatch_internal(libc::SIGCHLD);
            self.children.watching = false;
        }
    }
}
