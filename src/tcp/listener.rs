//! Listening sockets: bind, listen, and accept every waiting connection when readable.
//!
//! Out of fds (`EMFILE`/`ENFILE`) is the classic way an accept loop melts down: the
//! pending connection stays in the backlog, the listener stays readable, and a
//! level-triggered loop spins at 100% CPU retrying accept. Here the listener steps
//! back instead: it is deregistered, its callback hears the error once per episode, and
//! an unref'd timer re-arms it after [`ACCEPT_BACKOFF`]; existing connections are served
//! meanwhile.

use crate::event_loop::{Loop, State};
use crate::handle::{Handle, HandleKind, Listener, Tcp, Timer};
use crate::stream::StreamIo;
use crate::sys::{Fd, Interest};
use socket2::Socket;
use std::io;
use std::net::SocketAddr;
use std::os::unix::io::AsRawFd;
use std::time::Duration;

/// 1024: the usual SOMAXCONN; the kernel clamps it to its own limit. The thread server
/// listens with the same, so a benchmark compares the servers and not their backlogs.
pub(crate) const BACKLOG: i32 = 1024;
/// How long an fd-starved listener waits before trying accept again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Gets the bare handle of the accepted stream: `tcp_listen` and `unix_listen` (`pipe/`)
/// wrap their callbacks to hand out a `Tcp` or a `Pipe`.
pub(crate) type OnConnection = Box<dyn FnMut(&mut Loop, Listener, io::Result<Handle>)>;

pub(crate) struct ListenerState {
    /// `None` once closed: `close` closes the socket at once (as libuv), so no
    /// connection completes its handshake against a listener that is going away.
    socket: Option<Socket>,
    on_connection: Option<OnConnection>,
    /// The backoff timer while out of fds (the listener is deregistered meanwhile).
    backoff: Option<Timer>,
    /// This episode of fd exhaustion was already reported to the callback.
    told_about_fds: bool,
    /// Not watching because nobody is accepting (`set_accepting(false)`).
    paused: bool,
    /// What an accepted stream becomes: `Tcp`, or `Pipe` for a Unix-domain listener.
    kind: HandleKind,
    /// A Unix-domain listener's socket file, removed at close (as libuv does).
    path: Option<std::path::PathBuf>,
    /// Shared with other loops' pollers and watched with `EPOLLEXCLUSIVE` (src/group.rs).
    exclusive: bool,
}

impl ListenerState {
    pub fn fd(&self) -> Option<Fd> {
        self.socket.as_ref().map(|s| s.as_raw_fd())
    }
}

impl Loop {
    /// Listen on `addr` (IPv4 or IPv6; port 0 picks a free port, see `local_addr`).
    /// `on_connection(lp, listener, Ok(conn))` runs for each accepted stream (call
    /// `read_start` on it to read); `Err(e)` reports an accept that failed (out of fds:
    /// once per episode, while the listener backs off).
    pub fn tcp_listen(
        &mut self,
        addr: SocketAddr,
        on_connection: impl FnMut(&mut Loop, Listener, io::Result<Tcp>) + 'static,
    ) -> io::Result<Listener> {
        let socket = bind_listener(addr, false)?;
        self.listen_on(socket, false, on_connection)
            .map_err(|e| crate::error::context(format!("watching the listener on {addr}"), e))
    }

    /// Accept on a TCP socket that is already listening (a loop group's: one of its
    /// SO_REUSEPORT sockets, or a copy of the one socket every loop shares, watched with
    /// `exclusive` so that a connection wakes one loop, see src/group.rs).
    pub(crate) fn listen_on(
        &mut self,
        socket: Socket,
        exclusive: bool,
        on_connection: impl FnMut(&mut Loop, Listener, io::Result<Tcp>) + 'static,
    ) -> io::Result<Listener> {
        let mut on_connection = on_connection;
        let cb = Box::new(move |lp: &mut Loop, l, r: io::Result<Handle>| {
            on_connection(lp, l, r.map(Tcp))
        });
        self.insert_listener_with(socket, HandleKind::Tcp, None, exclusive, cb)
    }

    /// A listening socket on the loop, watched; accepted streams become `kind` handles.
    pub(crate) fn insert_listener(
        &mut self,
        socket: Socket,
        kind: HandleKind,
        path: Option<std::path::PathBuf>,
        on_connection: OnConnection,
    ) -> io::Result<Listener> {
        self.insert_listener_with(socket, kind, path, false, on_connection)
    }

    fn insert_listener_with(
        &mut self,
        socket: Socket,
        kind: HandleKind,
        path: Option<std::path::PathBuf>,
        exclusive: bool,
        on_connection: OnConnection,
    ) -> io::Result<Listener> {
        let fd = socket.as_raw_fd();
        let state = ListenerState {
            socket: Some(socket),
            on_connection: Some(on_connection),
            backoff: None,
            told_about_fds: false,
            paused: false,
            kind,
            path,
            exclusive,
        };
        let h = self
            .handles
            .insert(HandleKind::Listener, State::Listener(state), true, true);
        if let Err(e) = self.watch_listener(fd, h, exclusive) {
            self.handles.remove(h);
            return Err(e);
        }
        Ok(Listener(h))
    }

    fn watch_listener(&self, fd: Fd, h: Handle, exclusive: bool) -> io::Result<()> {
        if exclusive {
            self.poller.register_exclusive(fd, h.token())
        } else {
            self.poller.register(fd, h.token(), Interest::READABLE)
        }
    }

    /// The address a listener or stream is bound to (the real port after port 0).
    pub fn local_addr(&self, h: impl Into<Handle>) -> io::Result<SocketAddr> {
        let h = h.into();
        let socket = match self.handles.get(h).map(|s| &s.state) {
            Some(State::Listener(l)) => l.socket.as_ref(),
            Some(State::Stream(t)) => t.io.as_ref().and_then(StreamIo::socket),
            _ => None,
        };
        let socket = socket.ok_or_else(|| crate::error::stale("local_addr", h))?;
        socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket"))
    }

    pub(crate) fn listener(&mut self, h: Handle) -> Option<&mut ListenerState> {
        match self.handles.state_mut(h) {
            Some(State::Listener(l)) if l.socket.is_some() => Some(l),
            _ => None,
        }
    }

    /// The listener is readable: accept until the kernel says `WouldBlock`.
    #[inline(never)]
    pub(crate) fn on_listener_ready(&mut self, h: Handle) {
        loop {
            let (accepted, kind) = match self.listener(h) {
                Some(l) if l.backoff.is_none() && !l.paused => match l.socket.as_ref() {
                    Some(s) => (s.accept(), l.kind),
                    None => return,
                },
                _ => return, // closed or backing off since, by a callback of this batch
            };
            match accepted {
                Ok((socket, _peer)) => {
                    let conn = self.adopt(socket, kind);
                    self.deliver_connection(h, conn);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // The backlog is empty: an fd-exhaustion episode, if any, is over.
                    if let Some(l) = self.listener(h) {
                        l.told_about_fds = false;
                    }
                    return;
                }
                // The peer gave up before we accepted; the next one may be fine.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                    return self.back_off_accepting(h, e);
                }
                Err(e) => {
                    let e = crate::error::context(format!("accepting on listener {h}"), e);
                    return self.deliver_connection(h, Err(e));
                }
            }
        }
    }

    /// Make an accepted socket a stream handle (non-blocking, no SIGPIPE, and no Nagle
    /// for TCP: a Unix-domain socket has no such option).
    fn adopt(&mut self, socket: Socket, kind: HandleKind) -> io::Result<Handle> {
        socket
            .set_nonblocking(true)
            .and_then(|()| match kind {
                HandleKind::Tcp => socket.set_tcp_nodelay(true),
                _ => Ok(()),
            })
            .and_then(|()| crate::sys::net::no_sigpipe(&socket))
            .map_err(|e| crate::error::context("preparing an accepted socket", e))?;
        Ok(self.insert_stream(StreamIo::Socket(socket), kind))
    }

    fn deliver_connection(&mut self, h: Handle, conn: io::Result<Handle>) {
        let Some(cb) = self.listener(h).and_then(|l| l.on_connection.take()) else {
            return;
        };
        self.call_taken(
            cb,
            |lp, cb| cb(lp, Listener(h), conn),
            |lp, cb| {
                if let Some(
                    l @ ListenerState {
                        on_connection: None,
                        ..
                    },
                ) = lp.listener(h)
                {
                    l.on_connection = Some(cb);
                }
            },
        );
    }

    fn back_off_accepting(&mut self, h: Handle, e: io::Error) {
        let timer = self.set_timeout(ACCEPT_BACKOFF, move |lp, _| lp.resume_accepting(h));
        // The backoff timer alone must not keep the loop alive; the listener does.
        self.unref_handle(timer);
        let Some(l) = self.listener(h) else {
            self.clear_timer(timer);
            return;
        };
        l.backoff = Some(timer);
        let fd = l.fd();
        let first = !std::mem::replace(&mut l.told_about_fds, true);
        if let Some(fd) = fd {
            // Not watching is the point; if deregister fails the timer still re-arms.
            let _ = self.poller.deregister(fd);
        }
        self.tracer.note(format!(
            "listener {h} out of fds; accept paused {} ms",
            ACCEPT_BACKOFF.as_millis()
        ));
        if first {
            let e = crate::error::context(
                format!(
                    "accepting on listener {h}: out of file descriptors; pausing accept for {} ms at a time, serving existing connections",
                    ACCEPT_BACKOFF.as_millis()
                ),
                e,
            );
            self.deliver_connection(h, Err(e));
        }
    }

    fn resume_accepting(&mut self, h: Handle) {
        let Some(l) = self.listener(h) else { return };
        l.backoff = None;
        if l.paused {
            return; // `set_accepting(true)` registers it when someone accepts again
        }
        let (Some(fd), exclusive) = (l.fd(), l.exclusive) else {
            return;
        };
        if let Err(e) = self.watch_listener(fd, h, exclusive) {
            let e = crate::error::context(format!("re-watching listener {h}"), e);
            return self.deliver_connection(h, Err(e));
        }
        // Edge-triggered backends will not report connections that queued meanwhile.
        self.on_listener_ready(h);
    }

    /// Watch for connections, or stop watching without closing: the task layer's accept
    /// future withdraws its interest when it is dropped (`src/task/net.rs`). Connections
    /// wait in the kernel's backlog meanwhile. A listener that is backing off (out of fds)
    /// is left to its timer, which honours the flag. Paused, it is inactive.
    pub(crate) fn set_accepting(&mut self, h: Handle, on: bool) -> io::Result<()> {
        let l = self
            .listener(h)
            .ok_or_else(|| crate::error::stale("set_accepting", h))?;
        if l.paused != on {
            return Ok(());
        }
        l.paused = !on;
        let (fd, backing_off, exclusive) = (l.fd(), l.backoff.is_some(), l.exclusive);
        self.handles.set_active(h, on);
        let Some(fd) = fd.filter(|_| !backing_off) else {
            return Ok(());
        };
        if !on {
            // Not watching is the point; a failed deregister leaves an fd we ignore.
            let _ = self.poller.deregister(fd);
            return Ok(());
        }
        if let Err(e) = self.watch_listener(fd, h, exclusive) {
            if let Some(l) = self.listener(h) {
                l.paused = true;
            }
            self.handles.set_active(h, false);
            return Err(crate::error::context(
                format!("re-watching listener {h}"),
                e,
            ));
        }
        // Edge-triggered backends will not report connections that queued meanwhile.
        self.defer(h, move |lp| lp.on_listener_ready(h));
        Ok(())
    }

    /// close(): stop watching and close the socket now.
    pub(crate) fn stop_listener(&mut self, h: Handle) {
        let Some(State::Listener(l)) = self.handles.state_mut(h) else {
            return;
        };
        let backoff = l.backoff.take();
        l.on_connection = None;
        if let Some(path) = l.path.take() {
            // Gone already (someone removed it) is what we wanted anyway.
            let _ = std::fs::remove_file(path);
        }
        let watched = backoff.is_none() && !l.paused;
        if let Some(socket) = l.socket.take() {
            if watched {
                // The socket closes next line; a failed deregister leaves nothing behind.
                let _ = self.poller.deregister(socket.as_raw_fd());
            }
        }
        if let Some(t) = backoff {
            self.clear_timer(t);
        }
    }
}

/// A listening socket on `addr`: SO_REUSEADDR, IPv6 only when asked for IPv6, and
/// SO_REUSEPORT when several sockets (one per loop) are to share the address, each
/// with its own backlog that the kernel fills by a hash of the connection's addresses.
pub(crate) fn bind_listener(addr: SocketAddr, reuse_port: bool) -> io::Result<Socket> {
    let ctx = |what: &str, e| crate::error::context(format!("{what} {addr}"), e);
    let socket = super::new_socket(addr).map_err(|e| ctx("creating a socket for", e))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| ctx("setting SO_REUSEADDR on", e))?;
    if reuse_port {
        socket
            .set_reuse_port(true)
            .map_err(|e| ctx("setting SO_REUSEPORT on", e))?;
    }
    if addr.is_ipv6() {
        // Only what was asked for: [::1] must not also take 127.0.0.1's port.
        socket
            .set_only_v6(true)
            .map_err(|e| ctx("setting IPV6_V6ONLY on", e))?;
    }
    socket.bind(&addr.into()).map_err(|e| ctx("binding", e))?;
    socket.listen(BACKLOG).map_err(|e| ctx("listening on", e))?;
    Ok(socket)
}
