//! Pipes as streams: OS pipes and Unix-domain sockets, read and written with the same
//! methods as TCP (one implementation, `src/stream.rs`), on every backend.

mod util;

use looplab::{Backend, HandleKind, Loop, Pipe, ReadEvent, RunMode};
use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::rc::Rc;
use std::time::Duration;
use util::{new_loop, on_every_backend};

/// Byte `i` of a long test stream: a pattern that shows a lost, doubled or reordered byte.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Read `pipe` until EOF into a shared buffer; the pipe is closed at EOF.
fn collect(lp: &mut Loop, pipe: Pipe) -> Rc<RefCell<Vec<u8>>> {
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    lp.read_start(pipe, move |lp, me, ev| match ev {
        ReadEvent::Data(d) => g.borrow_mut().extend_from_slice(d),
        ReadEvent::Eof => {
            lp.close(me);
        }
        ReadEvent::Error(e) => panic!("reading {me:?}: {e}"),
    })
    .unwrap();
    got
}

/// An OS pipe: what the write end is given, the read end reads, in order; closing the
/// write end is its EOF. The reader's callback gets a `Pipe`.
#[test]
fn an_os_pipe_carries_bytes_then_eof() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let (r, w) = lp.pipe().unwrap();
        let got = collect(&mut lp, r);
        let data = pattern(300_000); // more than a pipe buffer: some of it must queue
        lp.write_then(w, &data, |lp, w: Pipe, res| {
            res.unwrap();
            lp.close(w);
        })
        .unwrap();
        assert!(lp.write_queue_len(w) > 0, "the kernel took 300 kB at once");
        lp.run(RunMode::Default).unwrap();
        assert!(
            *got.borrow() == data,
            "{} of {} bytes",
            got.borrow().len(),
            data.len()
        );
        let left = lp.handles();
        assert!(left.iter().all(|h| h.kind != HandleKind::Pipe), "{left:?}");
    });
}

/// A socketpair: two-way, and `shutdown` on one end is EOF at the other while the
/// other way still works.
#[test]
fn a_pipe_pair_is_two_way_and_half_closes() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let (a, b2) = lp.pipe_pair().unwrap();
        let from_a = collect(&mut lp, b2);
        lp.write(a, b"ping").unwrap();
        lp.shutdown(a, |_, _, r| r.unwrap()).unwrap();
        // b2 reads "ping" then EOF (and is closed by `collect`), after writing back.
        lp.write(b2, b"pong").unwrap();
        let from_b = collect(&mut lp, a);
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*from_a.borrow(), b"ping");
        assert_eq!(*from_b.borrow(), b"pong");
    });
}

/// Backpressure on a pipe, as on TCP: 4 MiB written to a pipe nobody reads queues in
/// the loop; once the reader starts, `on_drain` fires when the queue falls to the low
/// water mark, and every byte arrives once, in order.
#[test]
fn pipes_have_backpressure_and_drain() {
    on_every_backend(|b| {
        for os_pipe in [true, false] {
            backpressure_on(b, os_pipe);
        }
    });
}

fn backpressure_on(b: Backend, os_pipe: bool) {
    let mut lp = new_loop(b);
    util::fail_after(&mut lp, Duration::from_secs(30));
    let (r, w) = if os_pipe {
        lp.pipe().unwrap()
    } else {
        lp.pipe_pair().unwrap()
    };
    let data = pattern(4 << 20);
    lp.write(w, &data).unwrap();
    let queued = lp.write_queue_len(w);
    assert!(queued > (3 << 20), "only {queued} bytes queued of 4 MiB");
    let drained = Rc::new(Cell::new(None));
    let d = drained.clone();
    lp.on_drain(w, 64 * 1024, move |lp, w: Pipe, r| {
        r.expect("the reader reads it all");
        d.set(Some(lp.write_queue_len(w)));
        // Closing now would drop what is still queued: close once it is all sent.
        lp.on_drain(w, 0, |lp, w, r| {
            r.expect("the reader reads it all");
            lp.close(w);
        })
        .unwrap();
    })
    .unwrap();
    let got = collect(&mut lp, r);
    lp.run(RunMode::Default).unwrap();
    let left = drained.get().expect("on_drain never ran");
    assert!(left <= 64 * 1024, "on_drain ran with {left} bytes queued");
    assert_eq!(got.borrow().len(), data.len(), "os pipe: {os_pipe}");
    assert!(*got.borrow() == data, "os pipe: {os_pipe}: bytes differ");
}

/// A write to an OS pipe whose reader is gone is an error (`BrokenPipe`), not a signal;
/// a pipe cannot be half-closed, and `shutdown` says so to its callback.
#[test]
fn a_gone_reader_is_an_error_and_a_pipe_cannot_half_close() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let (r, w) = lp.pipe().unwrap();
        lp.close(r);
        lp.run(RunMode::Default).unwrap();
        let e = lp.write(w, b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe, "{e}");
        let (_r2, w2) = lp.pipe().unwrap();
        let said = Rc::new(RefCell::new(None));
        let s = said.clone();
        lp.shutdown(w2, move |_, _, r| *s.borrow_mut() = Some(r))
            .unwrap();
        lp.run(RunMode::Default).unwrap();
        let r = said.borrow_mut().take().expect("the shutdown callback ran");
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::Unsupported);
        assert_eq!(
            lp.write(w2, b"x").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe,
            "no write after shutdown"
        );
    });
}

/// `pipe_open` adopts an fd the program already has (here a std `UnixStream` whose peer
/// is a plain blocking thread); `unix_connect` reaches a `UnixListener` at a path.
#[test]
fn pipe_open_and_unix_connect_reach_plain_unix_sockets() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let (ours, theirs) = UnixStream::pair().unwrap();
        let echo = std::thread::spawn(move || echo_once(theirs));
        let p = lp.pipe_open(ours).unwrap();
        lp.write(p, b"hello").unwrap();
        lp.shutdown(p, |_, _, r| r.unwrap()).unwrap();
        let back = collect(&mut lp, p);
        lp.run(RunMode::Default).unwrap();
        echo.join().unwrap();
        assert_eq!(*back.borrow(), b"hello");

        let path =
            std::env::temp_dir().join(format!("looplab-pipe-test-{}-{b}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || echo_once(listener.accept().unwrap().0));
        let connected = Rc::new(Cell::new(false));
        let c = connected.clone();
        let p = lp
            .unix_connect(&path, move |lp, p, r| {
                r.unwrap();
                c.set(true);
                lp.shutdown(p, |_, _, r| r.unwrap()).unwrap();
            })
            .unwrap();
        lp.write(p, b"via a path").unwrap(); // queued until connected
        let back = collect(&mut lp, p);
        lp.run(RunMode::Default).unwrap();
        server.join().unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(connected.get());
        assert_eq!(*back.borrow(), b"via a path");
    });
}

/// A blocking peer: read to EOF, write it all back, close.
fn echo_once(mut s: UnixStream) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    s.write_all(&all).unwrap();
}

/// A closed pipe is refused like a closed `Tcp`: `NotFound`, `false`, `0`.
#[test]
fn a_closed_pipe_is_refused_like_any_stale_handle() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let (r, w) = lp.pipe_pair().unwrap();
        lp.close(r);
        lp.close(w);
        lp.run(RunMode::Default).unwrap();
        assert_eq!(
            lp.write(w, b"x").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            lp.read_start(r, |_, _, _| {}).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(!lp.read_stop(r));
        assert_eq!(lp.write_queue_len(w), 0);
    });
}
