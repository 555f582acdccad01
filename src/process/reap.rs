//! After the spawn: SIGCHLD and `waitpid`, the exit callback, the close that follows
//! the last EOF, `kill`, and what `close` does to a child that still runs.

use super::{ExitStatus, ProcessState};
use crate::event_loop::{Loop, State};
use crate::handle::{Handle, HandleKind, Process};
use crate::metrics::Site;
use std::io;

/// What one `waitpid(pid, WNOHANG)` said.
enum Waited {
    Running,
    Exited(ExitStatus),
    /// ECHILD: not our child any more (someone called `waitpid(-1)`); nothing to wait for.
    Gone,
}

fn wait_once(child: &mut std::process::Child) -> io::Result<Waited> {
    match child.try_wait() {
        Ok(None) => Ok(Waited::Running),
        Ok(Some(status)) => Ok(Waited::Exited(ExitStatus::from_std(status))),
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => Ok(Waited::Gone),
        Err(e) => Err(e),
    }
}

impl Loop {
    fn process(&mut self, h: Handle) -> Option<&mut ProcessState> {
        match self.handles.state_mut(h) {
            Some(State::Process(p)) => Some(p),
            _ => None,
        }
    }

    /// SIGCHLD came (poll phase, signal pipe): reap every child of this loop that has
    /// exited, then run their exit callbacks, in spawn order. Two passes, as libuv's
    /// `uv__wait_children`: a callback may spawn or close without disturbing the scan.
    pub(crate) fn reap_children(&mut self) {
        let mut exited = Vec::new();
        for h in self.children.running.clone() {
            let Some(child) = self.process(h).and_then(|p| p.child.as_mut()) else {
                continue;
            };
            let status = match wait_once(child) {
                Ok(Waited::Running) => continue,
                Ok(Waited::Exited(status)) => status,
                Ok(Waited::Gone) => ExitStatus {
                    code: None,
                    signal: None,
                },
                Err(e) => {
                    self.tracer.note(format!("waitpid for {h} failed: {e}"));
                    continue;
                }
            };
            exited.push((h, status));
        }
        self.children
            .running
            .retain(|h| !exited.iter().any(|(e, _)| e == h));
        self.children
            .orphans
            .retain_mut(|c| matches!(wait_once(c), Ok(Waited::Running)));
        for (h, status) in exited {
            self.exited(h, status);
        }
        self.unwatch_children_if_none();
    }

    /// One child was reaped: record it, close its stdin, call back, maybe close.
    fn exited(&mut self, h: Handle, status: ExitStatus) {
        let Some(p) = self.process(h) else { return };
        p.child = None;
        p.status = Some(status);
        let (pid, stdin, on_exit) = (p.pid, p.stdin.take(), p.on_exit.take());
        self.tracer.reaped(format!("pid {pid} {status}"));
        self.handles.set_active(h, false);
        // Nobody reads the child's stdin any more: writes still queued can only fail.
        if let Some(stdin) = stdin {
            self.close(stdin);
        }
        if let Some(cb) = on_exit {
            self.timed(
                Site::of(HandleKind::Process, h),
                |_| format!("exit callback of {h}"),
                |lp| cb(lp, Process(h), status),
            );
        }
        self.close_if_done(h);
    }

    /// A stdout or stderr pipe of `process` reached EOF or an error, or was closed.
    pub(crate) fn stdio_ended(&mut self, process: Handle, pipe: Handle) {
        if let Some(p) = self.process(process) {
            p.open_output.retain(|&o| o != pipe);
            self.close_if_done(process);
        }
    }

    /// Node's `'close'`: exited, and every output pipe has ended.
    fn close_if_done(&mut self, h: Handle) {
        let done = self
            .process(h)
            .is_some_and(|p| p.status.is_some() && p.open_output.is_empty());
        if done {
            self.close(Process(h));
        }
    }

    /// Run `cb(lp, process)` in the close phase when the process handle closes: by itself
    /// (exited, and stdout and stderr at EOF: Node's `'close'` event) or by `close`.
    /// Replaces an earlier one. False if the handle is stale or closing.
    pub fn on_process_close(
        &mut self,
        process: Process,
        cb: impl FnOnce(&mut Loop, Process) + 'static,
    ) -> bool {
        let h: Handle = process.into();
        if self.handles.get(h).is_none_or(|s| s.is_closing()) {
            return false;
        }
        self.process(h)
            .map(|p| p.on_close = Some(Box::new(cb)))
            .is_some()
    }

    /// The child's pid while its handle lives.
    pub fn pid(&self, process: Process) -> Option<u32> {
        match &self.handles.get(process.into())?.state {
            State::Process(p) => Some(p.pid),
            _ => None,
        }
    }

    /// Send `signum` to the child (libuv's `uv_process_kill`). Refused once the child has
    /// been reaped (its pid may already be another process's): `NotFound` for a stale
    /// or closing handle, the OS's ESRCH for an exited child.
    pub fn kill(&mut self, process: Process, signum: i32) -> io::Result<()> {
        let h: Handle = process.into();
        if self.handles.get(h).is_none_or(|s| s.is_closing()) {
            return Err(crate::error::stale("kill", h));
        }
        let p = self
            .process(h)
            .ok_or_else(|| crate::error::stale("kill", h))?;
        let pid = p.pid;
        if p.child.is_none() {
            return Err(crate::error::context(
                format!("kill {h}: pid {pid} has exited and was reaped"),
                io::Error::from_raw_os_error(libc::ESRCH),
            ));
        }
        crate::sys::process::kill(pid, signum)
            .map_err(|e| crate::error::context(format!("sending signal {signum} to pid {pid}"), e))
    }

    /// The loop is going away: its children that were never reaped (still running, or
    /// exited since the last SIGCHLD) go to a thread that waits for each, so none is left
    /// a zombie. They are not killed: a program may mean a child to outlive its loop.
    pub(crate) fn hand_over_children(&mut self) {
        let running = std::mem::take(&mut self.children.running);
        let mut left = std::mem::take(&mut self.children.orphans);
        for h in running {
            if let Some(child) = self.process(h).and_then(|p| p.child.take()) {
                left.push(child);
            }
        }
        left.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_)) | Err(_)));
        if left.is_empty() {
            return;
        }
        let reaper = std::thread::Builder::new()
            .name("looplab-reaper".into())
            .spawn(move || {
                for mut c in left {
                    let _ = c.wait();
                }
            });
        // No thread to be had: the children are left to whoever outlives us (init, once
        // this process exits), which is all that can be done without blocking here.
        drop(reaper);
    }

    /// close(): stop reporting. A child still running is reaped all the same when it
    /// exits (libuv would leave it a zombie), with no callback. Returns what is owed:
    /// the `on_process_close` callback, which runs before a `close_then` callback.
    pub(crate) fn stop_process(&mut self, h: Handle) -> Option<crate::event_loop::Deferred> {
        let p = self.process(h)?;
        let (child, on_close) = (p.child.take(), p.on_close.take());
        p.on_exit = None;
        self.children.running.retain(|&r| r != h);
        if let Some(child) = child {
            self.children.orphans.push(child);
        }
        on_close.map(|cb| -> crate::event_loop::Deferred { Box::new(move |lp| cb(lp, Process(h))) })
    }
}

#[cfg(test)]
mod tests {
    use crate::process::Command;
    use crate::{Loop, RunMode};
    use std::cell::Cell;
    use std::rc::Rc;

    /// Someone else reaps the child first (as `waitpid(-1)` elsewhere in the program
    /// would): the loop's own `waitpid` meets ECHILD, and reports the child gone with
    /// its status unknown instead of waiting for it forever.
    #[test]
    fn a_child_reaped_elsewhere_is_reported_with_an_unknown_status() {
        let mut lp = Loop::new().unwrap();
        let seen = Rc::new(Cell::new(None));
        let s = seen.clone();
        let child = lp
            .spawn_process(Command::new("true"), move |_, _, st| s.set(Some(st)))
            .unwrap();
        let guard = lp.set_timeout(std::time::Duration::from_secs(20), |_, _| {
            panic!("the loop still waited for a child reaped elsewhere")
        });
        lp.unref_handle(guard);
        crate::sys::process::reap_blocking(child.pid).unwrap();
        // The SIGCHLD it raised is already in the signal pipe: one tick finds it.
        lp.run(RunMode::Default).unwrap();
        let status = seen.get().expect("the exit callback ran");
        assert!(status.unknown(), "{status:?}");
        assert_eq!(lp.pid(child.process), None, "the handle closed");
    }
}
