//! What kqueue's answers mean, as plain functions over plain values.
//!
//! The kqueue backend (`kqueue.rs`) compiles only where kqueue exists, and this machine
//! runs Linux; so the decisions it makes about the kernel's answers live here, compiled
//! and unit-tested on every OS. `kqueue.rs` only copies fields out of `libc::kevent`.
//!
//! The rules, as kqueue(2) states them and mio's kqueue selector applies them:
//!
//! | kernel says                              | looplab's `Event`                        |
//! |------------------------------------------|------------------------------------------|
//! | EVFILT_READ                              | readable                                 |
//! | EVFILT_WRITE                             | writable                                 |
//! | EV_EOF on EVFILT_READ                    | hangup: the peer closed, a read sees EOF |
//! | EV_EOF on EVFILT_WRITE                   | not a hangup: only "cannot send"         |
//! | EV_ERROR, or EV_EOF with `fflags` != 0   | error (a socket error's errno is in `fflags`) |
//!
//! A change sent with `EV_RECEIPT` is answered by a receipt per change, with the errno
//! in `data` (0: applied). See [`first_failure`] for how the receipts are read.

use super::Event;

/// The filters looplab registers; a kevent for any other filter is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filter {
    Read,
    Write,
    Other,
}

/// The fields of a returned kevent that decide what it means.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Report {
    pub filter: Filter,
    /// `EV_EOF` is set in `flags`.
    pub eof: bool,
    /// `EV_ERROR` is set in `flags`.
    pub error_flag: bool,
    /// With `EV_EOF`, a socket's pending error (an errno), or 0.
    pub fflags: u32,
    /// `udata`: the token given at registration.
    pub token: u64,
}

/// One kevent as the loop's `Event`, by the table in the module doc.
pub(crate) fn to_event(r: &Report) -> Event {
    Event {
        token: r.token,
        readable: r.filter == Filter::Read,
        writable: r.filter == Filter::Write,
        hangup: r.filter == Filter::Read && r.eof,
        error: r.error_flag || (r.eof && r.fflags != 0),
    }
}

/// One change in a change list: turn `filter` on (`EV_ADD`) or off (`EV_DELETE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Change {
    pub filter: Filter,
    pub on: bool,
}

/// What one change did to the kernel's state, from its receipt's errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The kernel's state is now what the change asked for.
    Changed,
    /// The change asked for what already held: deleting a filter that was not there
    /// (ENOENT), which `reregister` and `deregister` do on purpose.
    AlreadySo,
    /// The change failed with this errno; the filter is as it was.
    Failed(i32),
}

/// The outcome of `change` from its receipt's errno. A change with no receipt counts as
/// applied: kevent writes a receipt per change when there is room (we always give room),
/// and FreeBSD's kevent(2) says an EINTR return means every change was applied.
pub(crate) fn outcome(change: Change, errno: Option<i32>) -> Outcome {
    match errno {
        None | Some(0) => Outcome::Changed,
        Some(libc::ENOENT) if !change.on => Outcome::AlreadySo,
        Some(e) => Outcome::Failed(e),
    }
}

/// The first failed change of a change list and its errno, given the errnos of the
/// first `n` receipts (only those were written by the kernel).
pub(crate) fn first_failure(changes: &[Change], receipts: &[i32]) -> Option<(usize, i32)> {
    changes
        .iter()
        .enumerate()
        .find_map(|(i, &c)| match outcome(c, receipts.get(i).copied()) {
            Outcome::Failed(e) => Some((i, e)),
            _ => None,
        })
}

/// The changes that took effect in a change list that failed somewhere, turned into the
/// changes that put each filter back as it was before (`was_on(filter)`), so the
/// registration the caller recorded (the old one, since the call failed) matches the kernel.
pub(crate) fn undo(
    changes: &[Change],
    receipts: &[i32],
    was_on: impl Fn(Filter) -> bool,
) -> Vec<Change> {
    changes
        .iter()
        .enumerate()
        .filter(|&(i, &c)| {
            outcome(c, receipts.get(i).copied()) == Outcome::Changed && c.on != was_on(c.filter)
        })
        .map(|(_, &c)| Change {
            filter: c.filter,
            on: !c.on,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(filter: Filter, eof: bool, error_flag: bool, fflags: u32) -> Report {
        Report {
            filter,
            eof,
            error_flag,
            fflags,
            token: 7,
        }
    }

    /// The peer's FIN on the read filter is a hangup; on the write filter it is not.
    #[test]
    fn only_the_read_filter_eof_is_a_hangup() {
        let read_eof = to_event(&report(Filter::Read, true, false, 0));
        assert!(read_eof.readable && read_eof.hangup && !read_eof.error);
        let write_eof = to_event(&report(Filter::Write, true, false, 0));
        assert!(write_eof.writable && !write_eof.hangup && !write_eof.error);
        assert_eq!(write_eof.token, 7);
    }

    /// A reset socket reports EV_EOF with the errno in fflags: that is an error, on
    /// either filter; EV_ERROR alone is one too; a plain readiness is neither.
    #[test]
    fn a_socket_error_arrives_as_eof_with_fflags() {
        let reset = to_event(&report(Filter::Read, true, false, libc::ECONNRESET as u32));
        assert!(reset.error && reset.hangup);
        let write_reset = to_event(&report(Filter::Write, true, false, libc::EPIPE as u32));
        assert!(write_reset.error && !write_reset.hangup);
        assert!(to_event(&report(Filter::Write, false, true, 0)).error);
        let plain = to_event(&report(Filter::Read, false, false, 0));
        assert!(plain.readable && !plain.writable && !plain.hangup && !plain.error);
        let other = to_event(&report(Filter::Other, false, false, 0));
        assert!(!other.readable && !other.writable);
    }

    const READ_ON: Change = Change {
        filter: Filter::Read,
        on: true,
    };
    const WRITE_ON: Change = Change {
        filter: Filter::Write,
        on: true,
    };
    const WRITE_OFF: Change = Change {
        filter: Filter::Write,
        on: false,
    };

    /// Deleting a filter that is not there is fine; adding one that fails is not; a
    /// change without a receipt (EINTR, or fewer receipts than changes) was applied.
    #[test]
    fn receipts_are_read_by_outcome() {
        assert_eq!(
            first_failure(&[READ_ON, WRITE_OFF], &[0, libc::ENOENT]),
            None
        );
        assert_eq!(
            first_failure(&[READ_ON, WRITE_ON], &[0, libc::ENOMEM]),
            Some((1, libc::ENOMEM))
        );
        assert_eq!(
            first_failure(&[READ_ON, WRITE_ON], &[libc::ENOENT, 0]),
            Some((0, libc::ENOENT)),
            "ENOENT is only harmless when deleting"
        );
        assert_eq!(first_failure(&[READ_ON, WRITE_ON], &[]), None, "EINTR");
        assert_eq!(first_failure(&[READ_ON, WRITE_ON], &[0]), None);
    }

    /// Read was added, write failed: read is put back as it was (off for a new fd, on
    /// for a reregister that only wanted to add write); what failed needs nothing.
    #[test]
    fn a_half_applied_change_is_undone() {
        let changes = [READ_ON, WRITE_ON];
        let receipts = [0, libc::ENOMEM];
        let fresh = undo(&changes, &receipts, |_| false);
        assert_eq!(
            fresh,
            vec![Change {
                filter: Filter::Read,
                on: false
            }]
        );
        let read_was_on = undo(&changes, &receipts, |f| f == Filter::Read);
        assert!(
            read_was_on.is_empty(),
            "read was already on: {read_was_on:?}"
        );
        // Write deleted, read failed: write goes back on.
        let back = undo(&[READ_ON, WRITE_OFF], &[libc::EBADF, 0], |_| true);
        assert_eq!(back, vec![WRITE_ON]);
        // A deletion that found nothing changed nothing: nothing to undo.
        assert!(
            undo(&[READ_ON, WRITE_OFF], &[libc::EBADF, libc::ENOENT], |_| {
                true
            })
            .is_empty()
        );
    }
}
