//! What an operation names as its socket: a plain fd, or a slot of the ring's registered
//! files, which spares the kernel a lookup and a reference count per operation.

use io_uring::{squeue, types};
use std::os::fd::RawFd;

/// The socket an operation works on: an fd, or a slot of the ring's registered files
/// ([`Ring::register_files`](super::Ring::register_files)), which the kernel finds
/// without `fget`/`fput` per operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A plain fd, looked up (and reference-counted) for every operation.
    Fd(RawFd),
    /// A registered file.
    Slot(u32),
}

impl From<RawFd> for Target {
    fn from(fd: RawFd) -> Target {
        Target::Fd(fd)
    }
}

impl Target {
    /// What the submission names, and the flag that says which kind it is.
    pub(super) fn sqe_fd(self) -> (types::Fd, squeue::Flags) {
        match self {
            Target::Fd(fd) => (types::Fd(fd), squeue::Flags::empty()),
            Target::Slot(i) => (
                types::Fd(i32::try_from(i).unwrap_or(i32::MAX)),
                squeue::Flags::FIXED_FILE,
            ),
        }
    }
}
