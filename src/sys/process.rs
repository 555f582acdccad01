//! The one raw call processes need that std does not offer: `kill(2)` with any signal
//! (std's `Child::kill` sends only SIGKILL). Spawning and `waitpid` are std's
//! (`Command::spawn`, `Child::try_wait`).

use super::cvt;
use std::io;

/// Send `signum` to the single process `pid`.
///
/// Refuses the pids `kill(2)` gives a wider meaning to: 0 (this process group), -1 (every
/// process we may signal) and other negatives (a process group), which a `u32` too big
/// for `pid_t` would turn into.
pub(crate) fn kill(pid: u32, signum: i32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("pid {pid} does not name one process"),
            )
        })?;
    // SAFETY: kill takes two integers and touches no memory of ours; `pid` is positive,
    // so it names one process, never a group.
    cvt(unsafe { libc::kill(pid, signum) }).map(drop)
}

/// Wait for `pid` to exit and reap it, behind its owner's back: what code that calls
/// `waitpid(-1)` does to a loop's child. Tests use it to make the loop meet `ECHILD`.
#[cfg(test)]
pub(crate) fn reap_blocking(pid: u32) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(pid).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid c_int for waitpid to write; `pid` names one child.
        match cvt(unsafe { libc::waitpid(pid, &mut status, 0) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other.map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_and_broadcast_pids_are_refused() {
        for pid in [0u32, u32::MAX, 1 << 31] {
            let e = kill(pid, 0).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "pid {pid}: {e}");
        }
        // Signal 0 checks that we may signal a process without sending anything.
        kill(std::process::id(), 0).unwrap();
    }
}
