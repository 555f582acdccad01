//! Unix-domain sockets for tasks: `UnixListener::bind(path)`/`accept`, and
//! `PipeStream::connect(path)`. The same shells as `TcpListener` and `TcpStream::connect`
//! (`task/net.rs`), over the same accept and connect code (`net/accept.rs`,
//! `net/connect.rs`) and `Loop::unix_listen` / `Loop::unix_connect` underneath.

use super::PipeStream;
use crate::event_loop::Loop;
use crate::handle::{Listener, Pipe};
use crate::task::net::accept::{self, SharedListen};
use crate::task::net::connect::{self, Connected, SharedConnect};
use crate::task::net::{fill, outcome, take, OutcomeCell};
use crate::task::reactor::{self, Note, Reactor, Waiting};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// A listening Unix-domain socket, used from a task. A stale socket file at the path
/// is replaced, a live one refused (see `Loop::unix_listen`); dropped, the listener
/// closes and its file is removed.
pub struct UnixListener {
    shared: SharedListen<Pipe>,
    reactor: Rc<Reactor>,
}

impl UnixListener {
    /// Listen on the socket file `path`.
    pub fn bind(path: impl AsRef<Path>) -> UnixBind {
        UnixBind {
            path: Some(path.as_ref().to_path_buf()),
            cell: None,
        }
    }

    /// The loop handle underneath.
    pub fn handle(&self) -> Listener {
        self.shared.borrow().listener
    }

    /// The next connection, as a `PipeStream`.
    pub fn accept(&self) -> UnixAccept<'_> {
        UnixAccept {
            listener: self,
            note: None,
        }
    }
}

impl Drop for UnixListener {
    fn drop(&mut self) {
        accept::close(&self.shared, &self.reactor);
    }
}

/// The future of [`UnixListener::bind`].
pub struct UnixBind {
    path: Option<PathBuf>,
    cell: Option<OutcomeCell<UnixListener>>,
}

impl Future for UnixBind {
    type Output = io::Result<UnixListener>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let r = reactor::current("UnixListener::bind")?;
        if let Some(path) = self.path.take() {
            let cell = outcome();
            let (done, me) = (cell.clone(), r.clone());
            r.ask(move |lp| fill(&done, listen(lp, &path, me)));
            self.cell = Some(cell);
        }
        match &self.cell {
            Some(cell) => take(cell, cx),
            None => Poll::Ready(Err(io::Error::other(
                "UnixListener::bind polled after it finished",
            ))),
        }
    }
}

fn listen(lp: &mut Loop, path: &Path, reactor: Rc<Reactor>) -> io::Result<UnixListener> {
    let shared = accept::shared();
    let s = shared.clone();
    let listener = lp.unix_listen(path, move |lp, _, r| {
        accept::on_connection(lp, &s, r.map(|pipe| (pipe, None)));
    })?;
    lp.unref_handle(listener);
    shared.borrow_mut().listener = listener;
    Ok(UnixListener { shared, reactor })
}

/// The future of [`UnixListener::accept`].
pub struct UnixAccept<'a> {
    listener: &'a UnixListener,
    /// While it waits: what it told the loop.
    note: Option<Note>,
}

impl Future for UnixAccept<'_> {
    type Output = io::Result<PipeStream>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let r = reactor::current("UnixListener::accept")?;
        match accept::poll_accept(&self.listener.shared, &r, cx) {
            Poll::Ready(next) => {
                self.note = None;
                Poll::Ready(next.map(|(pipe, _)| PipeStream::new(pipe, r)))
            }
            Poll::Pending => {
                let listener = self.listener.handle();
                self.note = Some(r.waits_on(Waiting::Accept(listener)));
                Poll::Pending
            }
        }
    }
}

impl Drop for UnixAccept<'_> {
    /// An accept dropped while waiting withdraws its interest.
    fn drop(&mut self) {
        if self.note.take().is_some() {
            accept::withdraw(&self.listener.shared, &self.listener.reactor);
        }
    }
}

impl PipeStream {
    /// Connect to the Unix-domain socket at `path`.
    pub fn connect(path: impl AsRef<Path>) -> UnixConnect {
        UnixConnect {
            path: path.as_ref().to_path_buf(),
            asked: None,
        }
    }
}

/// The future of [`PipeStream::connect`]. Dropped before it connects, it closes the
/// half-made connection.
pub struct UnixConnect {
    path: PathBuf,
    asked: Option<(Rc<Reactor>, SharedConnect<Pipe>)>,
}

impl Future for UnixConnect {
    type Output = io::Result<PipeStream>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let r = reactor::current("PipeStream::connect")?;
        let this = &mut *self;
        let (_, c) = this.asked.get_or_insert_with(|| {
            let path = this.path.clone();
            let start = move |lp: &mut Loop, done: Connected| {
                lp.unix_connect(&path, move |lp, _, res| done(lp, res))
            };
            (r.clone(), connect::ask(&r, start))
        });
        let what = || format!("connecting to {}", this.path.display());
        connect::poll(c, &r, cx, &what).map(|res| res.map(|pipe| PipeStream::new(pipe, r.clone())))
    }
}

impl Drop for UnixConnect {
    fn drop(&mut self) {
        if let Some((r, c)) = self.asked.take() {
            connect::abandon(c, &r);
        }
    }
}
