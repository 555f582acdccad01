//! `unix_listen`: a listening Unix-domain socket whose connections are `Pipe`s (libuv's
//! `uv_pipe_bind` + `uv_listen`), accepted by the same code as TCP's (`tcp/listener.rs`).
//!
//! A socket file outlives a process that dies without removing it, and `bind` then fails
//! with `EADDRINUSE` although nobody listens. So before binding, a file at the path is
//! looked at: a socket that refuses a connection is **stale** and is removed; anything
//! else (a listener that answers, a full backlog, a file that is not a socket) is
//! refused with an error naming the path. Between the look and the bind another process
//! could start listening there (a race every "remove the stale socket" server has); its
//! own bind would then fail, not ours. The loop removes the file when it closes the
//! listener, as libuv does.

use crate::event_loop::Loop;
use crate::handle::{Handle, HandleKind, Listener, Pipe};
use socket2::{Domain, SockAddr, Socket, Type};
use std::io;
use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;

impl Loop {
    /// Listen on the Unix-domain socket `path`; `on_connection(lp, listener, Ok(pipe))`
    /// runs for each accepted connection (`read_start` it to read). A stale socket file
    /// (nobody listens) is replaced; a live one, or a file that is not a socket, is
    /// refused with `AddrInUse`. The file is removed when the listener is closed.
    pub fn unix_listen(
        &mut self,
        path: impl AsRef<Path>,
        mut on_connection: impl FnMut(&mut Loop, Listener, io::Result<Pipe>) + 'static,
    ) -> io::Result<Listener> {
        let path = path.as_ref();
        let ctx = |what: &str, e| crate::error::context(format!("{what} {}", path.display()), e);
        let addr = SockAddr::unix(path).map_err(|e| ctx("the socket path", e))?;
        remove_if_stale(path)?;
        // socket2 makes it close-on-exec; the accept loop needs it non-blocking.
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)
            .and_then(|s| s.set_nonblocking(true).map(|()| s))
            .map_err(|e| ctx("creating a socket for", e))?;
        socket.bind(&addr).map_err(|e| ctx("binding", e))?;
        let cb = Box::new(move |lp: &mut Loop, l, r: io::Result<Handle>| {
            on_connection(lp, l, r.map(Pipe))
        });
        let listening = socket
            .listen(crate::tcp::BACKLOG)
            .map_err(|e| ctx("listening on", e))
            .and_then(|()| {
                self.insert_listener(socket, HandleKind::Pipe, Some(path.into()), cb)
                    .map_err(|e| ctx("watching the listener on", e))
            });
        if listening.is_err() {
            // We made the file: a failed listen must not leave it behind.
            let _ = std::fs::remove_file(path);
        }
        listening
    }
}

/// Remove the socket file at `path` if nobody listens on it; refuse anything else there.
fn remove_if_stale(path: &Path) -> io::Result<()> {
    let in_use = |why: String| {
        io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("cannot listen on {}: {why}", path.display()),
        )
    };
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(crate::error::context(
                format!("looking at {}", path.display()),
                e,
            ))
        }
    };
    if !meta.file_type().is_socket() {
        return Err(in_use(
            "the file exists and is not a socket (not removing it)".into(),
        ));
    }
    // Non-blocking: a listener with a full backlog says EAGAIN instead of making us wait.
    let probe = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    probe.set_nonblocking(true)?;
    match probe.connect(&SockAddr::unix(path)?) {
        Ok(()) => Err(in_use("another listener accepts connections there".into())),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => std::fs::remove_file(path)
            .map_err(|e| {
                crate::error::context(format!("removing the stale socket {}", path.display()), e)
            }),
        Err(e) => Err(in_use(format!(
            "a socket that may be in use ({e}); not removing it"
        ))),
    }
}
