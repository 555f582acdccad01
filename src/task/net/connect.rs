//! The connect side of a task stream, for any stream kind: ask the loop to connect (with
//! `tcp_connect` or `unix_connect`), wait for its callback, and close a half-made stream
//! if the connect fails or its future is dropped. `TcpStream::connect` and
//! `PipeStream::connect` are thin shells over it.

use super::{fill, outcome, take, OutcomeCell};
use crate::event_loop::Loop;
use crate::task::reactor::Reactor;
use crate::Stream;
use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

/// What the connect op and its future share.
pub(crate) struct Connecting<S> {
    /// The loop's stream, once made (unref'd: the task holds the loop).
    stream: Option<S>,
    outcome: OutcomeCell<()>,
}

pub(crate) type SharedConnect<S> = Rc<RefCell<Connecting<S>>>;

/// Called by the loop's connect callback with its result.
pub(crate) type Connected = Box<dyn FnOnce(&mut Loop, io::Result<()>)>;

/// Ask the loop to run `start` (which makes the stream and connects it, calling back
/// the `Connected` it is given); the shared state to poll.
pub(crate) fn ask<S: Stream>(
    r: &Reactor,
    start: impl FnOnce(&mut Loop, Connected) -> io::Result<S> + 'static,
) -> SharedConnect<S> {
    let c = Rc::new(RefCell::new(Connecting {
        stream: None,
        outcome: outcome(),
    }));
    let asked = c.clone();
    r.ask(move |lp| {
        let done = asked.borrow().outcome.clone();
        let cb_done = done.clone();
        let connected = start(
            lp,
            Box::new(move |lp, r| {
                fill(&cb_done, r);
                lp.task_checkpoint();
            }),
        );
        match connected {
            Ok(stream) => {
                lp.unref_handle(stream);
                asked.borrow_mut().stream = Some(stream);
            }
            Err(e) => fill(&done, Err(e)),
        }
    });
    c
}

/// The connected stream, the connect's error (the half-made stream closed), or `Pending`.
pub(crate) fn poll<S: Stream>(
    c: &SharedConnect<S>,
    r: &Reactor,
    cx: &Context<'_>,
    what: &dyn Fn() -> String,
) -> Poll<io::Result<S>> {
    let cell = c.borrow().outcome.clone();
    let Poll::Ready(result) = take(&cell, cx) else {
        return Poll::Pending;
    };
    let stream = c.borrow_mut().stream.take();
    Poll::Ready(match (result, stream) {
        (Ok(()), Some(stream)) => Ok(stream),
        (result, stream) => {
            if let Some(stream) = stream {
                // A failed connect leaves the stream open (as libuv): close it.
                r.ask(move |lp| {
                    lp.close(stream);
                });
            }
            Err(result
                .err()
                .unwrap_or_else(|| io::Error::other(format!("{}: no stream was made", what()))))
        }
    })
}

/// The connect future is dropped: close what was started, unless a stream took it.
pub(crate) fn abandon<S: Stream>(c: SharedConnect<S>, r: &Reactor) {
    r.ask(move |lp| {
        if let Some(stream) = c.borrow_mut().stream.take() {
            lp.close(stream);
        }
    });
}
