//! Raw `kqueue(2)` over libc, level-triggered unless built edge-triggered (BSD, macOS).
//!
//! kqueue watches (fd, filter) pairs: reading and writing are two separate filters,
//! `EVFILT_READ` and `EVFILT_WRITE`, so one fd may produce two events in one wait.
//! Without `EV_CLEAR` a filter is level-triggered, like our epoll backend; with it
//! (`Trigger::Edge`) its state is reset once reported, like `EPOLLET`. Changes are
//! sent with `EV_RECEIPT`, which makes the kernel answer every change with its own
//! result instead of failing the whole batch at the first error.
//!
//! epoll changes an fd's interest in one atomic call; here it takes two changes, and one
//! may fail after the other took effect. The loop records the new interest only when the
//! call succeeds, so a failed call must leave the kernel as it was: this backend
//! remembers which filters each fd has on, and undoes the half that took effect.
//!
//! What the kernel's answers mean (EV_EOF, EV_ERROR, receipts) is decided in
//! `kevent.rs`, as plain functions tested on every OS; this file only makes the calls.
//! The `kevent` struct's field types differ between the BSDs (NetBSD's `filter` and
//! `flags` are `u32`), so fields are only compared with libc's constants of their own type.

use super::kevent::{self, Change, Filter, Report};
use super::{cvt, Event, Fd, Interest};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

const EVENTS_PER_WAIT: usize = 1024;

const NOTHING: Interest = Interest {
    readable: false,
    writable: false,
};

pub(crate) struct Kqueue {
    kq: OwnedFd,
    buf: Vec<libc::kevent>,
    /// The filters the kernel has on and their token, per registered fd: what a
    /// half-failed change is put back to.
    filters_on: RefCell<HashMap<Fd, (Interest, u64)>>,
    /// Every filter added with `EV_CLEAR` (edge-triggered).
    edge: bool,
}

impl Kqueue {
    pub fn new(edge: bool) -> io::Result<Kqueue> {
        // SAFETY: kqueue takes no arguments and touches no memory of ours.
        let fd = cvt(unsafe { libc::kqueue() })?;
        // SAFETY: kqueue just returned this fd and nothing else owns it.
        let kq = unsafe { OwnedFd::from_raw_fd(fd) };
        // kqueue has no CLOEXEC flag at creation on every BSD; set it explicitly.
        // SAFETY: F_SETFD on an fd we own changes only that fd's flags.
        cvt(unsafe { libc::fcntl(kq.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
        // SAFETY: kevent is a plain C struct; all-zero is a valid value for every field.
        let empty: libc::kevent = unsafe { std::mem::zeroed() };
        Ok(Kqueue {
            kq,
            buf: vec![empty; EVENTS_PER_WAIT],
            filters_on: RefCell::new(HashMap::new()),
            edge,
        })
    }

    pub fn register(&self, fd: Fd, token: u64, interest: Interest) -> io::Result<()> {
        // A new registration starts from nothing: closing an fd removed its filters.
        self.apply(fd, (NOTHING, token), interest, token)?;
        self.filters_on.borrow_mut().insert(fd, (interest, token));
        Ok(())
    }

    pub fn reregister(&self, fd: Fd, token: u64, interest: Interest) -> io::Result<()> {
        self.apply(fd, self.was_on(fd), interest, token)?;
        self.filters_on.borrow_mut().insert(fd, (interest, token));
        Ok(())
    }

    pub fn deregister(&self, fd: Fd) -> io::Result<()> {
        self.apply(fd, self.was_on(fd), NOTHING, 0)?;
        self.filters_on.borrow_mut().remove(&fd);
        Ok(())
    }

    /// The filters `fd` has on and their token; nothing for an fd we never registered.
    fn was_on(&self, fd: Fd) -> (Interest, u64) {
        let known = self.filters_on.borrow().get(&fd).copied();
        known.unwrap_or((NOTHING, 0))
    }

    /// Turn each filter on or off as `want` says, in one kevent call. On failure the
    /// filters are put back as `was` says (with its token), or the error says the
    /// registration is partial.
    fn apply(&self, fd: Fd, was: (Interest, u64), want: Interest, token: u64) -> io::Result<()> {
        let (was, was_token) = was;
        let changes = [
            Change {
                filter: Filter::Read,
                on: want.readable,
            },
            Change {
                filter: Filter::Write,
                on: want.writable,
            },
        ];
        let receipts = self.submit(fd, &changes, token)?;
        let Some((_, errno)) = kevent::first_failure(&changes, &receipts) else {
            return Ok(());
        };
        let err = io::Error::from_raw_os_error(errno);
        let back = kevent::undo(&changes, &receipts, |f| match f {
            Filter::Read => was.readable,
            Filter::Write => was.writable,
            Filter::Other => false,
        });
        if back.is_empty() {
            return Err(err);
        }
        let undone = self.submit(fd, &back, was_token)?;
        match kevent::first_failure(&back, &undone) {
            None => Err(err),
            Some((_, again)) => Err(io::Error::new(
                err.kind(),
                format!(
                    "kqueue: changing fd {fd}'s filters failed ({err}), and undoing the half \
                     that took effect failed too ({}): its registration is partial",
                    io::Error::from_raw_os_error(again)
                ),
            )),
        }
    }

    /// Send `changes` for `fd` in one kevent call; the errnos of the receipts the kernel
    /// wrote, in order (0: applied).
    fn submit(&self, fd: Fd, changes: &[Change], token: u64) -> io::Result<Vec<i32>> {
        let mut list = changes
            .iter()
            .map(|&c| change_kevent(fd, c, token, self.edge))
            .collect::<io::Result<Vec<_>>>()?;
        let (len, list_ptr) = (list.len(), list.as_mut_ptr());
        // SAFETY: `list_ptr` points at `len` valid kevents, read as the change list and
        // overwritten as the receipt buffer of the same length (the kernel reads each change
        // before it writes its receipt, as mio relies on too); a null timeout is allowed and
        // EV_RECEIPT makes the call return at once without waiting for events.
        let ret = unsafe {
            libc::kevent(
                self.kq.as_raw_fd(),
                list_ptr,
                len as _,
                list_ptr,
                len as _,
                std::ptr::null(),
            )
        };
        let n = match cvt(ret) {
            Ok(n) => usize::try_from(n).unwrap_or(0).min(len),
            // FreeBSD's kevent(2): "all changes in the changelist have been applied", and
            // no receipt was written. mio treats it as success too.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        Ok(list[..n].iter().map(receipt_errno).collect())
    }

    /// One kevent call; `Poller::wait` retries EINTR and slices long waits.
    pub fn wait_once(
        &mut self,
        events: &mut Vec<Event>,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        let ts = timeout.map(timespec);
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `buf` has EVENTS_PER_WAIT initialised kevents for the kernel to
        // overwrite; `ts_ptr` is null or points at a timespec that outlives the call.
        let n = unsafe {
            libc::kevent(
                self.kq.as_raw_fd(),
                std::ptr::null(),
                0,
                self.buf.as_mut_ptr(),
                EVENTS_PER_WAIT as _,
                ts_ptr,
            )
        };
        let n = usize::try_from(cvt(n)?).unwrap_or(0).min(self.buf.len());
        events.extend(self.buf[..n].iter().map(|ev| kevent::to_event(&report(ev))));
        Ok(())
    }
}

/// The kevent that turns `change.filter` on or off for `fd`, answered by a receipt.
fn change_kevent(fd: Fd, change: Change, token: u64, edge: bool) -> io::Result<libc::kevent> {
    // SAFETY: kevent is a plain C struct; all-zero is a valid value for every field.
    let mut ev: libc::kevent = unsafe { std::mem::zeroed() };
    ev.ident = usize::try_from(fd)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("bad fd {fd}")))?;
    ev.filter = match change.filter {
        Filter::Write => libc::EVFILT_WRITE,
        Filter::Read | Filter::Other => libc::EVFILT_READ,
    };
    ev.flags = libc::EV_RECEIPT
        | if change.on {
            libc::EV_ADD | libc::EV_ENABLE | if edge { libc::EV_CLEAR } else { 0 }
        } else {
            libc::EV_DELETE
        };
    // 64-bit targets only (see sys/mod.rs): the token fits udata whole.
    ev.udata = token as usize as _;
    Ok(ev)
}

/// A receipt's errno: EV_ERROR is set on every receipt, with 0 in `data` for success.
fn receipt_errno(ev: &libc::kevent) -> i32 {
    if ev.flags & libc::EV_ERROR == 0 {
        return 0;
    }
    i32::try_from(ev.data).unwrap_or(libc::EINVAL)
}

/// The fields of a returned kevent that `kevent::to_event` reads.
fn report(ev: &libc::kevent) -> Report {
    let filter = if ev.filter == libc::EVFILT_READ {
        Filter::Read
    } else if ev.filter == libc::EVFILT_WRITE {
        Filter::Write
    } else {
        Filter::Other
    };
    Report {
        filter,
        eof: ev.flags & libc::EV_EOF != 0,
        error_flag: ev.flags & libc::EV_ERROR != 0,
        fflags: ev.fflags,
        token: ev.udata as usize as u64,
    }
}

/// A kevent timeout. `Poller::wait` slices waits to `MAX_WAIT` (10^6 s), so the seconds
/// always fit, far below XNU's 10^8 limit.
fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(d.subsec_nanos()),
    }
}
