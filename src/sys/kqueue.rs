//! Raw `kqueue(2)` over libc, level-triggered (BSD, macOS).
//!
//! kqueue watches (fd, filter) pairs: reading and writing are two separate filters,
//! `EVFILT_READ` and `EVFILT_WRITE`, so one fd may produce two events in one wait.
//! Without `EV_CLEAR` a filter is level-triggered, like our epoll backend. Changes are
//! sent with `EV_RECEIPT`, which makes the kernel answer every change with its own
//! result instead of failing the whole batch at the first error.
//!
//! The `kevent` struct's field types differ between the BSDs (NetBSD uses wider
//! integers), so fields are written with `as _` and read through small helpers.

use super::{syscall, Event, Fd, Interest};
use std::io;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

const EVENTS_PER_WAIT: usize = 1024;

pub(crate) struct Kqueue {
    kq: OwnedFd,
    buf: Vec<libc::kevent>,
}

fn kevent(fd: Fd, filter: i32, flags: u32, token: u64) -> libc::kevent {
    // SAFETY: kevent is a plain C struct; all-zero is a valid value for every field.
    let mut ev: libc::kevent = unsafe { std::mem::zeroed() };
    ev.ident = fd as _;
    ev.filter = filter as _;
    ev.flags = flags as _;
    ev.udata = token as usize as _;
    ev
}

impl Kqueue {
    pub fn new() -> io::Result<Kqueue> {
        let fd = syscall!(kqueue())?;
        // SAFETY: kqueue just returned this fd and nothing else owns it.
        let kq = unsafe { OwnedFd::from_raw_fd(fd) };
        // kqueue has no CLOEXEC flag at creation on every BSD; set it explicitly.
        syscall!(fcntl(kq.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC))?;
        let empty = kevent(0, 0, 0, 0);
        Ok(Kqueue {
            kq,
            buf: vec![empty; EVENTS_PER_WAIT],
        })
    }

    pub fn register(&self, fd: Fd, token: u64, interest: Interest) -> io::Result<()> {
        self.apply(fd, token, interest)
    }

    pub fn reregister(&self, fd: Fd, token: u64, interest: Interest) -> io::Result<()> {
        self.apply(fd, token, interest)
    }

    pub fn deregister(&self, fd: Fd) -> io::Result<()> {
        self.apply(
            fd,
            0,
            Interest {
                readable: false,
                writable: false,
            },
        )
    }

    /// Add the filters `interest` wants and delete the others, in one kevent call.
    fn apply(&self, fd: Fd, token: u64, interest: Interest) -> io::Result<()> {
        let action = |on: bool| {
            (if on {
                libc::EV_ADD | libc::EV_ENABLE
            } else {
                libc::EV_DELETE
            }) as u32
                | libc::EV_RECEIPT as u32
        };
        let mut changes = [
            kevent(
                fd,
                libc::EVFILT_READ as i32,
                action(interest.readable),
                token,
            ),
            kevent(
                fd,
                libc::EVFILT_WRITE as i32,
                action(interest.writable),
                token,
            ),
        ];
        // SAFETY: `changes` holds two valid kevents and doubles as the receipt buffer of
        // the same length; a null timeout is allowed and EV_RECEIPT makes the call return
        // at once without waiting for events.
        syscall!(kevent(
            self.kq.as_raw_fd(),
            changes.as_ptr(),
            changes.len() as _,
            changes.as_mut_ptr(),
            changes.len() as _,
            std::ptr::null()
        ))?;
        for receipt in &changes {
            let errno = receipt.data as i32;
            // ENOENT: deleting a filter that was never added, which `apply` does on purpose.
            if receipt.flags as u32 & libc::EV_ERROR as u32 != 0
                && errno != 0
                && errno != libc::ENOENT
            {
                return Err(io::Error::from_raw_os_error(errno));
            }
        }
        Ok(())
    }

    pub fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        // A deadline past what Instant can hold is the same as no deadline.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let n = loop {
            let ts = deadline.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                libc::timespec {
                    tv_sec: left.as_secs() as _,
                    tv_nsec: left.subsec_nanos() as _,
                }
            });
            let ts_ptr = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `buf` has EVENTS_PER_WAIT initialised kevents for the kernel to
            // overwrite; `ts_ptr` is null or points at a timespec that outlives the call.
            match syscall!(kevent(
                self.kq.as_raw_fd(),
                std::ptr::null(),
                0,
                self.buf.as_mut_ptr(),
                EVENTS_PER_WAIT as _,
                ts_ptr
            )) {
                Ok(n) => break n as usize,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        events.extend(self.buf[..n].iter().map(|ev| {
            let filter = ev.filter as i32;
            let flags = ev.flags as u32;
            Event {
                token: ev.udata as usize as u64,
                readable: filter == libc::EVFILT_READ as i32,
                writable: filter == libc::EVFILT_WRITE as i32,
                hangup: flags & libc::EV_EOF as u32 != 0,
                error: flags & libc::EV_ERROR as u32 != 0,
            }
        }));
        Ok(())
    }
}
