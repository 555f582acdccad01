//! Making a ring: the setup flags this kernel takes, the probe of its opcodes, and what
//! to tell a person when io_uring is refused.

use io_uring::{opcode, IoUring, Probe};
use std::io;

/// What this kernel offers beyond the basic operations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// `IORING_SETUP_DEFER_TASKRUN` (6.1): completions are made only when we ask.
    pub defer_taskrun: bool,
    /// A provided-buffer ring (5.19): idle connections hold no read buffer.
    pub buf_ring: bool,
    /// `IORING_OP_PROVIDE_BUFFERS` in the probe (5.7).
    pub provide_buffers: bool,
}

/// Why io_uring cannot be used here, in words a person can act on.
pub fn explain_setup_error(e: io::Error) -> io::Error {
    let why = match e.raw_os_error() {
        Some(libc::ENOSYS) => {
            "this kernel has no io_uring (ENOSYS), or a seccomp profile \
             such as Docker's default hides it"
        }
        Some(libc::EPERM) => {
            "io_uring is refused (EPERM): kernel.io_uring_disabled is set, \
             or a seccomp profile such as Docker's default blocks it"
        }
        Some(libc::ENOMEM) => {
            "the kernel could not lock memory for the ring (ENOMEM): \
             RLIMIT_MEMLOCK may be too low"
        }
        _ => return crate::error::context("setting up io_uring", e),
    };
    io::Error::new(
        e.kind(),
        format!("io_uring_setup: {why}; use --backend epoll"),
    )
}

/// Whether this process may set up an io_uring with every operation the echo needs (the
/// tests' skip rule): the error says why not.
pub fn available() -> io::Result<()> {
    build(2).map(drop)
}

/// A ring of `entries` submissions and 8x as many completions, with the newest setup
/// flags this kernel takes, probed for every operation the echo needs.
pub(super) fn build(entries: u32) -> io::Result<(IoUring, Features)> {
    let cq = entries.saturating_mul(8);
    // One thread submits, and completions wait until it asks: less kernel work per
    // completion. Kernels before 6.1 refuse the flags (EINVAL); then plain.
    let mut features = Features::default();
    let ring = match IoUring::builder()
        .setup_cqsize(cq)
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(entries)
    {
        Ok(r) => {
            features.defer_taskrun = true;
            Ok(r)
        }
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            IoUring::builder().setup_cqsize(cq).build(entries)
        }
        Err(e) => Err(e),
    }
    .map_err(explain_setup_error)?;
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| crate::error::context("probing io_uring (needs Linux 5.6)", e))?;
    require(&probe)?;
    features.provide_buffers = probe.is_supported(opcode::ProvideBuffers::CODE);
    Ok((ring, features))
}

/// Every operation the echo needs, or an error naming the first one missing.
fn require(probe: &Probe) -> io::Result<()> {
    let needed = [
        (opcode::Accept::CODE, "IORING_OP_ACCEPT"),
        (opcode::Recv::CODE, "IORING_OP_RECV"),
        (opcode::Send::CODE, "IORING_OP_SEND"),
        (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
        (opcode::Timeout::CODE, "IORING_OP_TIMEOUT"),
    ];
    match needed.iter().find(|(code, _)| !probe.is_supported(*code)) {
        None => Ok(()),
        Some((_, name)) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("this kernel's io_uring lacks {name}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refusal names its cause and the way out; other errors keep their own words.
    #[test]
    fn a_refused_setup_says_why_and_what_to_do() {
        for errno in [libc::ENOSYS, libc::EPERM] {
            let e = explain_setup_error(io::Error::from_raw_os_error(errno));
            let text = e.to_string();
            assert!(
                text.contains("seccomp") && text.contains("--backend epoll"),
                "{text}"
            );
        }
        let other = explain_setup_error(io::Error::from_raw_os_error(libc::EFAULT));
        assert!(other.to_string().contains("setting up io_uring"), "{other}");
    }
}
