//! Errors with context (src/error.rs): one readable line that walks the chain, the
//! kind kept, the OS error reachable through `source()`; as the library gives them and
//! as the CLI prints them.

#[path = "util/exercise.rs"]
mod exercise;
mod util;

use looplab::{Error, RunMode};
use std::cell::RefCell;
use std::error::Error as _;
use std::io;
use std::rc::Rc;
use std::time::Duration;
use util::{new_loop, on_every_backend};

/// The OS error at the bottom of `e`'s chain, found by walking `source()` and looking
/// inside each `io::Error` (which answers for its payload's source, skipping a link).
fn os_error(e: &io::Error) -> Option<i32> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cur) = next {
        if let Some(io) = cur.downcast_ref::<io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return Some(code);
            }
            if let Some(inner) = io.get_ref() {
                next = Some(inner);
                continue;
            }
        }
        next = cur.source();
    }
    None
}

/// Where a callback puts its result for the test to read.
type Slot<T> = Rc<RefCell<Option<io::Result<T>>>>;

fn capture<T: 'static>() -> (Slot<T>, impl Fn(io::Result<T>)) {
    let got = Rc::new(RefCell::new(None));
    let g = got.clone();
    (got, move |r| *g.borrow_mut() = Some(r))
}

/// A file that is not there: the path and "on the pool" in front, NotFound kept,
/// ENOENT at the bottom.
#[test]
fn a_failed_read_names_the_path_and_keeps_the_os_error() {
    on_every_backend(|backend| {
        let mut lp = new_loop(backend);
        let (got, put) = capture::<Vec<u8>>();
        looplab::fs::read(&mut lp, "/no/such/file", move |_, r| put(r));
        lp.run(RunMode::Default).unwrap();
        let e = got.borrow_mut().take().unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(
            e.to_string()
                .starts_with("reading /no/such/file on the pool: "),
            "{e}"
        );
        assert_eq!(os_error(&e), Some(libc::ENOENT));
        let chain = Error::chain(&e);
        assert_eq!(chain[0], "reading /no/such/file on the pool");
        assert!(chain.len() >= 2, "{chain:?}");
        let ctx = e.get_ref().and_then(|r| r.downcast_ref::<Error>()).unwrap();
        assert_eq!(ctx.what(), "reading /no/such/file on the pool");
        assert!(ctx.source().is_some(), "walkable by source()");
    });
}

/// A refused connect: the peer's address and how long it took in front, the handle
/// under it, ConnectionRefused kept, ECONNREFUSED at the bottom.
#[test]
fn a_refused_connect_names_the_peer_and_the_time_taken() {
    on_every_backend(|backend| {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed); // nothing listens there now: a connect is refused
        let mut lp = new_loop(backend);
        let (got, put) = capture::<()>();
        let c = lp
            .tcp_connect(addr, move |lp, c, r| {
                put(r);
                lp.close(c);
            })
            .unwrap();
        lp.run(RunMode::Default).unwrap();
        let e = got.borrow_mut().take().unwrap().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
        let text = e.to_string();
        let want = format!("connecting to {addr}: after ");
        assert!(text.starts_with(&want), "{text}");
        assert!(
            text.contains(&format!(": connecting tcp {}: ", looplab::Handle::from(c))),
            "{text}"
        );
        assert_eq!(os_error(&e), Some(libc::ECONNREFUSED));
        let after = e
            .get_ref()
            .and_then(|r| r.downcast_ref::<Error>())
            .and_then(Error::after);
        assert!(
            after.is_some_and(|d| d < Duration::from_secs(10)),
            "{after:?}"
        );
    });
}

/// `Error::wrap` lets a program add its own layer: the kind stays, the line grows.
#[test]
fn a_program_adds_its_own_link() {
    let os = io::Error::from_raw_os_error(libc::ECONNRESET);
    let e = Error::wrap("fetching /index.html from the origin", os);
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
    let e = Error::wrap_after("serving GET /", Duration::from_millis(1500), e);
    assert!(
        e.to_string()
            .starts_with("serving GET /: after 1.5 s: fetching /index.html from the origin: "),
        "{e}"
    );
    assert_eq!(Error::chain(&e).len(), 4, "{:?}", Error::chain(&e));
    assert_eq!(os_error(&e), Some(libc::ECONNRESET));
}

/// The CLI prints an error as one line: what failed, where, and the OS's answer.
#[test]
fn the_cli_prints_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut run = exercise::start(exercise::looplab(), &["echo", "--addr", &addr], &[]);
    let status = run.finish(Duration::from_secs(30));
    assert!(!status.success());
    assert_eq!(run.err.len(), 1, "{}", run.transcript());
    let want = format!("looplab: binding {addr}: Address already in use");
    assert!(run.err[0].starts_with(&want), "{}", run.transcript());
    let quoted = "looplab: binding 127.0.0.1:7878: Address already in use (os error 98)";
    exercise::says("docs/15-deadlines-and-cancellation.md", quoted);
    assert_eq!(exercise::shape(quoted), exercise::shape(&run.err[0]));
}
