//! A server under test, in a child process of its own (the same `looplab` binary, run
//! with the server's subcommand): it says where it listens on its first line, and what
//! it says on stderr is kept for the table. Killed when dropped, so a failed cell
//! leaves no server behind.

use super::ServerKind;
use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

/// A running server child; killed by its PID when dropped.
pub(super) struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// Its `--metrics-addr`, announced on its second line.
    pub metrics: Option<SocketAddr>,
    stderr: Option<JoinHandle<String>>,
}

impl Server {
    /// Start `kind` (this binary, with the server's subcommand) and read where it
    /// listens (and, for a loop server, its metrics endpoint).
    pub fn start(kind: ServerKind) -> io::Result<Server> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        match kind {
            ServerKind::LoopBare(_) => {
                cmd.env("LOOPLAB_METRICS", "0");
            }
            // The metrics' pool probe starts the pool: one worker is all it needs, so
            // the loop server runs two threads, the loop and that worker.
            ServerKind::Loop(_) => {
                cmd.env("LOOPLAB_THREADPOOL_SIZE", "1");
            }
            _ => {}
        }
        let mut child = cmd
            .args(kind.args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (stdout, stderr) = take_output(&mut child)?;
        let mut server = Server {
            child,
            addr: ([127, 0, 0, 1], 0).into(),
            metrics: None,
            stderr: Some(stderr),
        };
        let mut line = String::new();
        let mut stdout = BufReader::new(stdout);
        stdout.read_line(&mut line)?;
        server.addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| {
                io::Error::other(format!(
                    "{} did not say where it listens (said {line:?})",
                    kind.name()
                ))
            })?;
        if matches!(kind, ServerKind::Loop(_)) {
            let mut second = String::new();
            stdout.read_line(&mut second)?;
            server.metrics = second
                .strip_prefix("metrics on http://")
                .and_then(|rest| rest.split('/').next())
                .and_then(|a| a.parse().ok());
        }
        Ok(server)
    }

    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Take a child's stdout, to read what it announces, and read its stderr to the end on a
/// thread (a server whose stderr pipe filled would stop), to report what it said.
pub(in crate::bench) fn take_output(
    child: &mut Child,
) -> io::Result<(ChildStdout, JoinHandle<String>)> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout"))?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| io::Error::other("no stderr"))?;
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    Ok((stdout, stderr))
}
