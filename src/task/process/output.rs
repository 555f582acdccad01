//! `output`: run a command to its end and collect what it printed, within a bound.

use super::Child;
use crate::process::{Command, ExitStatus, Stdio};
use crate::task::PipeStream;
use std::io;

/// What [`output`] collects of each of stdout and stderr, at most: 16 MiB. A child that
/// prints more is killed and `output` fails; read its pipes as streams instead.
pub const OUTPUT_LIMIT: usize = 16 * 1024 * 1024;

/// How a child ended and everything it printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Its exit code, or the signal that ended it.
    pub status: ExitStatus,
    /// All it wrote to stdout.
    pub stdout: Vec<u8>,
    /// All it wrote to stderr.
    pub stderr: Vec<u8>,
}

/// Run `cmd` with stdout and stderr piped and stdin from `/dev/null` (as std's
/// `Command::output`), and collect both, up to [`OUTPUT_LIMIT`] bytes each. To feed
/// its stdin, spawn it with `Stdio::Pipe` and use [`Child::wait_with_output`].
pub async fn output(cmd: Command) -> io::Result<Output> {
    let cmd = cmd
        .stdin(Stdio::Null)
        .stdout(Stdio::Pipe)
        .stderr(Stdio::Pipe);
    Child::spawn(cmd)
        .await?
        .wait_with_output(OUTPUT_LIMIT)
        .await
}

/// `Child::wait_with_output`: stderr is read by a task of its own while this one reads
/// stdout, so a child that fills one pipe while we wait on the other never deadlocks.
pub(super) async fn collect(mut child: Child, limit: usize) -> io::Result<Output> {
    drop(child.stdin.take());
    let stderr = child
        .stderr
        .take()
        .map(|pipe| crate::task::spawn(read_capped(pipe, limit, "stderr")));
    let stdout = match child.stdout.take() {
        Some(pipe) => read_capped(pipe, limit, "stdout").await?,
        None => Vec::new(),
    };
    let stderr = match stderr {
        Some(task) => task.await??,
        None => Vec::new(),
    };
    let status = child.wait().await?;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// Read `pipe` to its end; more than `limit` bytes is an error.
async fn read_capped(mut pipe: PipeStream, limit: usize, which: &str) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut chunk = vec![0; 16 * 1024];
    loop {
        let n = pipe.read(&mut chunk).await?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the child's {which} passed the limit of {limit} bytes that output \
                     collects; the child is killed (read its pipe as a stream instead)"
                ),
            ));
        }
        out.extend_from_slice(&chunk[..n]);
    }
}
