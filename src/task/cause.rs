//! Wake causes: what the loop was dispatching when a task was woken, for the trace.
//!
//! A waker has no idea who calls it: a read callback, a timer, a pool completion or
//! another task all end in the same `wake()`. So the loop writes down what it is
//! dispatching in a thread-local `Cell` as it goes (one store per event, timer or
//! completion), and a wake on the loop thread copies that note into the ready queue
//! with the task. The trace then reads "#4.1 woken by fd 9 readable" instead of
//! "#4.1 woken". A wake from another thread cannot see the loop's note: it says
//! "another thread".

use crate::event_loop::Loop;
use crate::handle::Handle;
use std::cell::Cell;

/// What the loop was doing when a wake happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// Outside every phase: a spawn, or a wake from code around `run`.
    Outside,
    /// A readiness event for a socket handle.
    Io { handle: Handle, readable: bool },
    /// A timer callback.
    Timer(Handle),
    /// Pool completions drained from the self-pipe.
    Pool,
    /// An async handle's callback.
    Async(Handle),
    /// A signal delivered through the signal pipe.
    Signal,
    /// A deferred callback (a write result, a re-read) in the pending phase.
    Pending,
    /// An immediate in the check phase.
    Immediate,
    /// A close or an owed request callback in the close phase.
    Closing,
    /// Another task's poll (or what the loop did for it right after).
    Task(Handle),
    /// A thread that is not the loop's.
    OtherThread,
    /// The first poll of a new task.
    Spawned,
}

thread_local! {
    /// The cause packed into one aligned word (see `pack`). Stored as the enum, it was a
    /// byte and two overlapping unaligned 8-byte pieces, written twice per event and
    /// per poll: 7 to 8% of the async echo's user samples (`perf`) sat on those stores.
    static DISPATCHING: Cell<u128> = const { Cell::new(OUTSIDE) };
}

/// `Cause::Outside`, packed.
const OUTSIDE: u128 = 0;

/// A cause as the ready list keeps it: packed (see `Cause::pack`), and unpacked only
/// for the trace. As the enum (a byte, a flag and a handle, 16 bytes in four pieces) the
/// entries were copied in overlapping unaligned pieces on the checkpoint's path, each
/// copy a load that waits for the stores it overlaps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Woke(u128);

impl Woke {
    /// The event that woke the task was I/O: a checkpoint polls it now.
    #[inline]
    pub(crate) fn by_io(self) -> bool {
        matches!(self.0 as u8, IO_READABLE | IO_WRITABLE)
    }

    pub(crate) fn cause(self) -> Cause {
        Cause::unpack(self.0)
    }
}

impl From<Cause> for Woke {
    #[inline]
    fn from(cause: Cause) -> Woke {
        Woke(cause.pack())
    }
}

const IO_READABLE: u8 = 1;
const IO_WRITABLE: u8 = 2;

/// Restores the cause that was noted before, when the dispatch it covers ends.
pub(crate) struct Noted(u128);

impl Drop for Noted {
    #[inline]
    fn drop(&mut self) {
        DISPATCHING.with(|c| c.set(self.0));
    }
}

impl Cause {
    /// Note `self` as what the loop dispatches until the returned guard drops.
    #[inline]
    pub(crate) fn enter(self) -> Noted {
        Noted(DISPATCHING.with(|c| c.replace(self.pack())))
    }

    /// What the loop thread is dispatching now, packed for the ready list.
    #[inline]
    pub(crate) fn now_packed() -> Woke {
        Woke(DISPATCHING.with(Cell::get))
    }

    /// One word: the variant in the low byte, its handle (if it has one) above it.
    #[inline]
    fn pack(self) -> u128 {
        let (tag, handle) = match self {
            Cause::Outside => (0, None),
            Cause::Io {
                handle,
                readable: true,
            } => (IO_READABLE, Some(handle)),
            Cause::Io {
                handle,
                readable: false,
            } => (IO_WRITABLE, Some(handle)),
            Cause::Timer(h) => (3, Some(h)),
            Cause::Pool => (4, None),
            Cause::Async(h) => (5, Some(h)),
            Cause::Signal => (6, None),
            Cause::Pending => (7, None),
            Cause::Immediate => (8, None),
            Cause::Closing => (9, None),
            Cause::Task(h) => (10, Some(h)),
            Cause::OtherThread => (11, None),
            Cause::Spawned => (12, None),
        };
        (handle.map_or(0, Handle::to_bits) << 8) | u128::from(tag)
    }

    #[inline]
    fn unpack(bits: u128) -> Cause {
        let handle = Handle::from_bits(bits >> 8);
        match bits as u8 {
            IO_READABLE => Cause::Io {
                handle,
                readable: true,
            },
            IO_WRITABLE => Cause::Io {
                handle,
                readable: false,
            },
            3 => Cause::Timer(handle),
            4 => Cause::Pool,
            5 => Cause::Async(handle),
            6 => Cause::Signal,
            7 => Cause::Pending,
            8 => Cause::Immediate,
            9 => Cause::Closing,
            10 => Cause::Task(handle),
            11 => Cause::OtherThread,
            12 => Cause::Spawned,
            _ => Cause::Outside,
        }
    }

    /// In words, for the trace; `woken` is the task the cause woke.
    pub(crate) fn describe(self, lp: &Loop, woken: Handle) -> String {
        match self {
            Cause::Outside => "code outside the loop".into(),
            Cause::Io { handle, readable } => {
                let what = if readable { "readable" } else { "writable" };
                match lp.fd_of(handle) {
                    Some(fd) => format!("fd {fd} {what}"),
                    None => format!("{handle} {what}"),
                }
            }
            Cause::Timer(h) => format!("timer {h}"),
            Cause::Pool => "the pool".into(),
            Cause::Async(h) => format!("async {h}"),
            Cause::Signal => "a signal".into(),
            Cause::Pending => "a pending callback".into(),
            Cause::Immediate => "an immediate".into(),
            Cause::Closing => "a close".into(),
            Cause::Task(h) if h == woken => "itself".into(),
            Cause::Task(h) => format!("task {h}"),
            Cause::OtherThread => "another thread".into(),
            Cause::Spawned => "spawn".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_survives_packing() {
        let h = Handle::from_bits(0x0000_0007_0000_0003_0000_0002);
        let all = [
            Cause::Outside,
            Cause::Io {
                handle: h,
                readable: true,
            },
            Cause::Io {
                handle: Handle::NONE,
                readable: false,
            },
            Cause::Timer(h),
            Cause::Pool,
            Cause::Async(h),
            Cause::Signal,
            Cause::Pending,
            Cause::Immediate,
            Cause::Closing,
            Cause::Task(Handle::NONE),
            Cause::OtherThread,
            Cause::Spawned,
        ];
        for cause in all {
            assert_eq!(Cause::unpack(cause.pack()), cause);
            let woke = Woke::from(cause);
            assert_eq!(woke.cause(), cause);
            assert_eq!(woke.by_io(), matches!(cause, Cause::Io { .. }));
            let _noted = cause.enter();
            assert_eq!(Cause::now_packed().cause(), cause);
        }
        assert_eq!(
            Cause::now_packed().cause(),
            Cause::Outside,
            "each guard put back the one before"
        );
    }
}
