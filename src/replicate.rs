//! Replicated requests with callbacks: send one request to N replicas over TCP, take
//! the first answer, close the rest.
//!
//! The callback twin of `task::first_ok`. Each replica gets its own connection:
//! connect, write the request, read the answer to end of stream. The first replica to
//! finish a non-empty answer wins; the moment it does, every other connection is
//! closed (`lp.close`), which is what cancelling means for a callback: a closed handle's
//! callbacks are never called again, and a connect still in flight is abandoned. A
//! replica that fails (refused, reset, hung up without an answer, an answer over
//! [`MAX_ANSWER`]) only drops out; `done` gets an error naming each failure only when
//! every replica has failed.
//!
//! `done` is called exactly once, never inside `first_answer` itself (as every looplab
//! callback), with the winner's index and its answer. The state all the callbacks
//! share lives in one `Rc<RefCell<..>>`: the request is one object with N handles, not
//! N handles with one piece of data each.

use crate::event_loop::Loop;
use crate::handle::Tcp;
use crate::stream::ReadEvent;
use crate::task::Failures;
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

/// The longest answer kept; a replica that sends more has failed.
pub const MAX_ANSWER: usize = 64 * 1024;

type Done = Box<dyn FnOnce(&mut Loop, io::Result<(usize, Vec<u8>)>)>;

struct State {
    /// Each replica's connection, while it runs.
    conns: Vec<Option<Tcp>>,
    answers: Vec<Vec<u8>>,
    failed: Vec<(String, io::Error)>,
    /// Taken when the request ends: once taken, late callbacks do nothing.
    done: Option<Done>,
}

type Shared = Rc<RefCell<State>>;

/// A replicated request in flight (see the module doc).
#[derive(Clone)]
pub struct Replicas(Shared);

/// Send `request` to every address of `replicas`; `done(lp, Ok((index, answer)))` with
/// the first complete answer, or an error listing every failure.
pub fn first_answer(
    lp: &mut Loop,
    replicas: &[SocketAddr],
    request: &[u8],
    done: impl FnOnce(&mut Loop, io::Result<(usize, Vec<u8>)>) + 'static,
) -> Replicas {
    let n = replicas.len();
    let shared: Shared = Rc::new(RefCell::new(State {
        conns: vec![None; n],
        answers: vec![Vec::new(); n],
        failed: Vec::new(),
        done: Some(Box::new(done)),
    }));
    let request: Rc<[u8]> = request.into();
    let mut refused_now = Vec::new();
    for (i, &addr) in replicas.iter().enumerate() {
        let (s, req) = (shared.clone(), request.clone());
        match lp.tcp_connect(addr, move |lp, conn, r| {
            on_connect(lp, &s, i, conn, r, &req)
        }) {
            Ok(conn) => shared.borrow_mut().conns[i] = Some(conn),
            Err(e) => refused_now.push((i, e)),
        }
    }
    // Failures known already are reported from the check phase, never from inside this
    // call (the caller may not be ready for `done` yet).
    let s = shared.clone();
    lp.set_immediate(move |lp, _| {
        for (i, e) in refused_now {
            fail(lp, &s, i, e);
        }
        if n == 0 {
            let e = io::Error::new(io::ErrorKind::InvalidInput, "no replicas to ask");
            finish(lp, &s, Err(e));
        }
    });
    Replicas(shared)
}

impl Replicas {
    /// Give up (a deadline, a shutdown): close every connection; `done` gets an error of
    /// kind `Interrupted` saying `why`, unless it was already called.
    pub fn cancel(&self, lp: &mut Loop, why: &str) {
        close_all(lp, &self.0);
        let e = io::Error::new(io::ErrorKind::Interrupted, format!("canceled: {why}"));
        finish(lp, &self.0, Err(e));
    }
}

fn on_connect(lp: &mut Loop, s: &Shared, i: usize, conn: Tcp, r: io::Result<()>, req: &[u8]) {
    let s2 = s.clone();
    let started = r
        .and_then(|()| lp.write(conn, req))
        .and_then(|()| lp.read_start(conn, move |lp, _, ev| on_read(lp, &s2, i, ev)));
    if let Err(e) = started {
        fail(lp, s, i, e);
    }
}

fn on_read(lp: &mut Loop, s: &Shared, i: usize, ev: ReadEvent<'_>) {
    let failure = match ev {
        ReadEvent::Data(bytes) => {
            let mut st = s.borrow_mut();
            if st.answers[i].len() + bytes.len() <= MAX_ANSWER {
                st.answers[i].extend_from_slice(bytes);
                return;
            }
            let msg = format!("answer longer than {MAX_ANSWER} bytes");
            io::Error::new(io::ErrorKind::InvalidData, msg)
        }
        ReadEvent::Eof if !s.borrow().answers[i].is_empty() => return win(lp, s, i),
        ReadEvent::Eof => io::Error::new(io::ErrorKind::UnexpectedEof, "hung up without an answer"),
        ReadEvent::Error(e) => e,
    };
    fail(lp, s, i, failure);
}

/// Replica `i` answered in full: close the others (and its own, finished) and report.
fn win(lp: &mut Loop, s: &Shared, i: usize) {
    let answer = std::mem::take(&mut s.borrow_mut().answers[i]);
    let losers = s.borrow().conns.iter().flatten().count().saturating_sub(1);
    close_all(lp, s);
    if lp.tracer.enabled {
        lp.tracer.note(format!(
            "replicas: #{i} answered first; closed {losers} other(s)"
        ));
    }
    finish(lp, s, Ok((i, answer)));
}

/// Replica `i` is out; if it was the last one running, the request has failed.
fn fail(lp: &mut Loop, s: &Shared, i: usize, e: io::Error) {
    let mut st = s.borrow_mut();
    if st.done.is_none() {
        return; // over already: a canceled connect reporting late
    }
    if let Some(conn) = st.conns.get_mut(i).and_then(Option::take) {
        lp.close(conn);
    }
    if lp.tracer.enabled {
        lp.tracer.note(format!("replicas: #{i} failed: {e}"));
    }
    st.failed.push((format!("#{i}"), e));
    if st.conns.iter().all(Option::is_none) && st.failed.len() == st.conns.len() {
        let failures = Failures {
            what: format!("asking {} replica(s)", st.conns.len()),
            each: std::mem::take(&mut st.failed),
        };
        drop(st);
        finish(lp, s, Err(failures.into_error()));
    }
}

fn close_all(lp: &mut Loop, s: &Shared) {
    let conns: Vec<Tcp> = s
        .borrow_mut()
        .conns
        .iter_mut()
        .filter_map(Option::take)
        .collect();
    for conn in conns {
        lp.close(conn);
    }
}

fn finish(lp: &mut Loop, s: &Shared, result: io::Result<(usize, Vec<u8>)>) {
    let done = s.borrow_mut().done.take();
    if let Some(done) = done {
        done(lp, result);
    }
}
