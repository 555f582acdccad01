//! Listening on a Unix-domain socket path (`Loop::unix_listen`, `task::UnixListener`):
//! accepted connections are `Pipe`s with the stream methods of any stream; a stale
//! socket file is replaced, a live one or a plain file refused; the file goes at close.
//! On every backend.

mod util;

use looplab::{Backend, HandleKind, Loop, Pipe, ReadEvent, RunMode};
use std::cell::RefCell;
use std::io;
use std::os::unix::fs::FileTypeExt as _;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;
use util::process::os_error;
use util::{new_loop, on_every_backend};

/// A socket path of its own for each test and backend, with nothing there yet.
fn socket_path(test: &str, b: Backend) -> PathBuf {
    let path = std::env::temp_dir().join(format!("looplab-{}-{test}-{b}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

fn is_socket(path: &PathBuf) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// An echo server on `path`: each accepted pipe gets back what it sends, then EOF.
/// Returns the listener and the kinds of the accepted handles.
fn echo_server(lp: &mut Loop, path: &PathBuf) -> (looplab::Listener, Rc<RefCell<Vec<HandleKind>>>) {
    let kinds = Rc::new(RefCell::new(Vec::new()));
    let k = kinds.clone();
    let listener = lp
        .unix_listen(path, move |lp, _, conn| {
            let conn = conn.expect("accepting");
            let kind = lp
                .handles()
                .iter()
                .find(|h| h.handle == conn.into())
                .map(|h| h.kind);
            k.borrow_mut().extend(kind);
            lp.read_start(conn, |lp, me: Pipe, ev| match ev {
                ReadEvent::Data(d) => lp.write(me, d).expect("echoing"),
                ReadEvent::Eof => {
                    let _ = lp.shutdown(me, |lp, me, _| {
                        lp.close(me);
                    });
                }
                ReadEvent::Error(e) => panic!("server read: {e}"),
            })
            .expect("read_start");
        })
        .expect("unix_listen");
    (listener, kinds)
}

/// `unix_listen` and `unix_connect` on one loop: 200 kB go through the echo and back in
/// order, the accepted handle is a `pipe`, and closing the listener removes its file.
#[test]
fn unix_listen_and_connect_echo() {
    on_every_backend(|b| {
        let path = socket_path("echo", b);
        let mut lp = new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let (listener, kinds) = echo_server(&mut lp, &path);
        assert!(is_socket(&path));
        let data: Vec<u8> = (0..200_000).map(|i| (i % 251) as u8).collect();
        let back = Rc::new(RefCell::new(Vec::new()));
        let (sent, got) = (data.clone(), back.clone());
        lp.unix_connect(&path, move |lp, conn, r| {
            r.expect("connecting");
            lp.write(conn, &sent).unwrap();
            lp.shutdown(conn, |_, _, r| r.unwrap()).unwrap();
            lp.read_start(conn, move |lp, me, ev| match ev {
                ReadEvent::Data(d) => got.borrow_mut().extend_from_slice(d),
                ReadEvent::Eof => {
                    lp.close(me);
                    lp.close(listener);
                }
                ReadEvent::Error(e) => panic!("client read: {e}"),
            })
            .unwrap();
        })
        .unwrap();
        lp.run(RunMode::Default).unwrap();
        assert!(
            *back.borrow() == data,
            "{} of {} bytes",
            back.borrow().len(),
            data.len()
        );
        assert_eq!(*kinds.borrow(), [HandleKind::Pipe]);
        assert!(!path.exists(), "the socket file outlived its listener");
    });
}

/// A socket file nobody listens on (its listener's process died) is replaced; one with
/// a live listener, and a file that is not a socket, are refused with `AddrInUse`, the
/// path in the message, and left as they were.
#[test]
fn a_stale_socket_is_replaced_a_live_one_or_a_plain_file_refused() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let path = socket_path("stale", b);
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(is_socket(&path), "a closed std listener leaves its file");
        let l = lp
            .unix_listen(&path, |_, _, _| {})
            .expect("the stale file is replaced");
        lp.close(l);
        lp.run(RunMode::Default).unwrap();

        let live = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let e = lp.unix_listen(&path, |_, _, _| {}).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        assert!(is_socket(&path), "a live listener's file was removed");
        drop(live);
        std::fs::remove_file(&path).unwrap();

        std::fs::write(&path, "not a socket").unwrap();
        let e = lp.unix_listen(&path, |_, _, _| {}).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
        assert!(e.to_string().contains("not a socket"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
        std::fs::remove_file(&path).unwrap();
    });
}

/// A path too long for a socket address is refused before anything is made.
#[test]
fn a_path_too_long_is_refused() {
    let mut lp = Loop::new().unwrap();
    let long = std::env::temp_dir().join("x".repeat(200));
    let e = lp.unix_listen(&long, |_, _, _| {}).unwrap_err();
    assert!(e.to_string().contains("xxxx"), "{e}");
    assert!(
        os_error(&e).is_some() || e.kind() == io::ErrorKind::InvalidInput,
        "{e}"
    );
    assert!(!long.exists());
}

/// From tasks: a `UnixListener` sends 1 MiB back to a `PipeStream::connect` client (the
/// same stream futures as TCP's, over a `Pipe`, with a reader that stops reading),
/// and a connect to a path where nothing is fails with the path in the message.
#[test]
fn task_unix_listener_and_connect_echo() {
    use looplab::task::{self, PipeStream, UnixListener};
    on_every_backend(|b| {
        let path = socket_path("task", b);
        let mut lp = new_loop(b);
        util::fail_after(&mut lp, Duration::from_secs(20));
        let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let p = path.clone();
        let back = lp.block_on(async move {
            let listener = UnixListener::bind(&p).await?;
            // The server reads everything, then answers: the client writes it all before
            // it reads, and neither may wait on a buffer the other does not empty.
            let server = task::spawn(async move {
                let mut conn = listener.accept().await?;
                let (mut all, mut buf) = (Vec::new(), vec![0; 32 * 1024]);
                loop {
                    let n = conn.read(&mut buf).await?;
                    if n == 0 {
                        break;
                    }
                    all.extend_from_slice(&buf[..n]);
                }
                conn.write_all(&all).await?;
                conn.shutdown().await
            });
            let mut client = PipeStream::connect(&p).await?;
            client.write_all(&sent).await?;
            client.shutdown().await?;
            let (mut back, mut buf) = (Vec::new(), vec![0; 64 * 1024]);
            loop {
                let n = client.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                back.extend_from_slice(&buf[..n]);
            }
            server.await??;
            let nowhere = PipeStream::connect(p.with_extension("nowhere")).await;
            Ok::<_, io::Error>((back, nowhere.err()))
        });
        let (back, nowhere) = back.expect("block_on").expect("the echo");
        assert!(back == data, "{} of {} bytes back", back.len(), data.len());
        let e = nowhere.expect("nothing listens there");
        assert!(e.to_string().contains("nowhere"), "{e}");
        assert_eq!(os_error(&e), Some(libc::ENOENT), "{e}");
        lp.run(RunMode::Default).unwrap();
        assert!(!path.exists(), "the dropped listener's file is gone");
    });
}
