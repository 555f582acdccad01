//! Listening sockets: bind, listen, and accept every waiting connection when readable.
//!
//! Out of fds (`EMFILE`/`ENFILE`) is the classic way an accept loop melts down: the
//! pending connection stays in the backlog, the listener stays readable, and a
//! level-triggered loop spins at 100% CPU retrying accept. Here the listener steps
//! back instead: it is deregistered, says so once on stderr, and a timer re-arms it
//! after [`ACCEPT_BACKOFF`]; existing connections are served meanwhile.

use super::{new_socket, TcpState};
use crate::event_loop::{Loop, State};
use crate::handle::{Handle, HandleKind, Listener, Tcp};
use crate::sys::{Fd, Interest};
use socket2::Socket;
use std::io;
use std::net::SocketAddr;
use std::os::unix::io::AsRawFd;
use std::time::Duration;

/// 1024: the usual SOMAXCONN; the kernel clamps it to its own limit.
const BACKLOG: i32 = 1024;
/// How long an fd-starved listener waits before trying accept again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

type OnConnection = Box<dyn FnMut(&mut Loop, Tcp)>;

pub(crate) struct ListenerState {
    socket: Socket,
    on_connection: Option<OnConnection>,
    /// Deregistered while backing off from fd exhaustion.
    paused: bool,
    told_about_fds: bool,
}

impl ListenerState {
    pub fn fd(&self) -> Fd {
        self.socket.as_raw_fd()
    }
}

impl Loop {
    /// Listen on `addr` (IPv4 or IPv6; port 0 picks a free port, see `local_addr`).
    /// `on_connection` runs for each accepted stream; call `read_start` on it to read.
    pub fn tcp_listen(
        &mut self,
        addr: SocketAddr,
        on_connection: impl FnMut(&mut Loop, Tcp) + 'static,
    ) -> io::Result<Listener> {
        let ctx = |what: &str, e| crate::error::context(format!("{what} {addr}"), e);
        let socket = new_socket(addr).map_err(|e| ctx("creating a socket for", e))?;
        socket
            .set_reuse_address(true)
            .map_err(|e| ctx("setting SO_REUSEADDR on", e))?;
        if addr.is_ipv6() {
            // Only what was asked for: [::1] must not also take 127.0.0.1's port.
            socket
                .set_only_v6(true)
                .map_err(|e| ctx("setting IPV6_V6ONLY on", e))?;
        }
        socket.bind(&addr.into()).map_err(|e| ctx("binding", e))?;
        socket.listen(BACKLOG).map_err(|e| ctx("listening on", e))?;
        let fd = socket.as_raw_fd();
        let state = ListenerState {
            socket,
            on_connection: Some(Box::new(on_connection)),
            paused: false,
            told_about_fds: false,
        };
        let h = self
            .handles
            .insert(HandleKind::Listener, State::Listener(state), true, true);
        if let Err(e) = self.poller.register(fd, h.token(), Interest::READABLE) {
            self.handles.remove(h);
            return Err(ctx("watching the listener on", e));
        }
        Ok(Listener(h))
    }

    /// The address a listener or stream is bound to (the real port after port 0).
    pub fn local_addr(&self, h: impl Into<Handle>) -> io::Result<SocketAddr> {
        let h = h.into();
        let socket = match self.handles.get(h).map(|s| &s.state) {
            Some(State::Listener(l)) => Some(&l.socket),
            Some(State::Tcp(t)) => t.socket(),
            _ => None,
        };
        let socket = socket.ok_or_else(|| crate::error::stale("local_addr", h))?;
        socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket"))
    }

    /// The listener is readable: accept until the kernel says `WouldBlock`.
    pub(crate) fn on_listener_ready(&mut self, h: Handle) {
        loop {
            let accepted = match self.handles.get(h).map(|s| &s.state) {
                Some(State::Listener(l)) if !l.paused => l.socket.accept(),
                _ => return, // closed or paused by a callback of this batch
            };
            match accepted {
                Ok((socket, _peer)) => self.adopt(h, socket),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
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
                    eprintln!("looplab: accept on listener {h} failed: {e}");
                    return;
                }
            }
        }
    }

    fn adopt(&mut self, listener: Handle, socket: Socket) {
        let prepared = socket
            .set_nonblocking(true)
            .and_then(|()| socket.set_tcp_nodelay(true));
        if let Err(e) = prepared {
            eprintln!("looplab: preparing an accepted socket failed, dropping it: {e}");
            return;
        }
        let _ = crate::sys::net::no_sigpipe(&socket);
        let conn = self.handles.insert(
            HandleKind::Tcp,
            State::Tcp(Box::new(TcpState::new(socket))),
            false,
            true,
        );
        let Some(State::Listener(l)) = self.handles.state_mut(listener) else {
            return;
        };
        let Some(mut cb) = l.on_connection.take() else {
            return;
        };
        cb(self, Tcp(conn));
        if let Some(State::Listener(l)) = self.handles.state_mut(listener) {
            if l.on_connection.is_none() {
                l.on_connection = Some(cb);
            }
        }
    }

    fn back_off_accepting(&mut self, h: Handle, e: io::Error) {
        let Some(State::Listener(l)) = self.handles.state_mut(h) else {
            return;
        };
        l.paused = true;
        let fd = l.fd();
        if !std::mem::replace(&mut l.told_about_fds, true) {
            eprintln!(
                "looplab: listener {h} is out of file descriptors ({e}); pausing accept for {} ms at a time and serving existing connections",
                ACCEPT_BACKOFF.as_millis()
            );
        }
        let _ = self.poller.deregister(fd);
        let t = self.set_timeout(ACCEPT_BACKOFF, move |lp| lp.resume_accepting(h));
        // The backoff timer alone must not keep the loop alive; the listener does.
        self.unref(t);
    }

    fn resume_accepting(&mut self, h: Handle) {
        let Some(State::Listener(l)) = self.handles.state_mut(h) else {
            return;
        };
        l.paused = false;
        let fd = l.fd();
        if let Err(e) = self.poller.register(fd, h.token(), Interest::READABLE) {
            eprintln!("looplab: re-watching listener {h} failed: {e}");
            return;
        }
        // Edge-triggered backends will not report connections that queued meanwhile.
        self.on_listener_ready(h);
    }

    /// close(): stop watching; the socket closes when the state is dropped.
    pub(crate) fn stop_listener(&mut self, h: Handle) {
        if let Some(State::Listener(l)) = self.handles.get(h).map(|s| &s.state) {
            if !l.paused {
                let _ = self.poller.deregister(l.fd());
            }
        }
    }
}
