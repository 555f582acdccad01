//! Child processes as the process tests watch them.

use looplab::process::{Command, Spawned};
use looplab::{Backend, ExitStatus, Loop, Pipe, ReadEvent, RunMode};
use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::Duration;

pub fn sh(script: &str) -> Command {
    Command::new("/bin/sh").arg("-c").arg(script)
}

/// What a child did, as the loop saw it: its status, what it wrote, and in which order
/// the exit callback, each output's EOF and the process handle's close came.
#[derive(Default)]
pub struct Seen {
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub events: Vec<&'static str>,
}

pub type Shared = Rc<RefCell<Seen>>;

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
pub fn spawn_watched(lp: &mut Loop, cmd: Command) -> (Spawned, Shared) {
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

pub fn run_to_end(b: Backend, cmd: Command) -> (u32, Seen) {
    let mut lp = super::new_loop(b);
    super::fail_after(&mut lp, Duration::from_secs(30));
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
pub fn is_our_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false; // reaped: gone
    };
    // "pid (comm) S ppid ...": the command name may hold spaces and parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let mut fields = rest.split_whitespace();
    let (state, ppid) = (fields.next(), fields.next());
    state == Some("Z") && ppid == Some(std::process::id().to_string().as_str())
}

/// The OS error inside a looplab error (the context wraps it; `source()` reaches it).
pub fn os_error(e: &io::Error) -> Option<i32> {
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
