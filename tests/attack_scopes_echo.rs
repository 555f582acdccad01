//! A hostile client against the echo servers after the scope change: the client that
//! fills its echo queue and then resets, and the one that reads late; each pinned by a
//! test that failed before its fix (the long-poll server's are in
//! `tests/attack_scopes_longpoll.rs`).

mod util;

use looplab::RunMode;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use util::{on_every_backend, LoopEcho};

/// Send without reading until the server has paused this connection for backpressure
/// (its echo queue is over the high-water mark and the kernel buffers are full).
fn fill_until_paused(echo: &LoopEcho, addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_nonblocking(true).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let limit = Instant::now() + Duration::from_secs(20);
    while echo.snapshot().stats.paused == 0 {
        assert!(Instant::now() < limit, "the server never paused the client");
        match (&s).write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("writing to the echo server: {e}"),
        }
    }
    s
}

/// The echo server stops reading a client whose echoes pile up; if that client then
/// resets, the next flush fails. Before the fix nothing told the server: the drain
/// callback was dropped with the failed queue, reads were stopped, so the connection
/// (its fd and state) stayed open for good. A client repeating this exhausts the fds.
#[test]
fn echo_closes_a_paused_client_that_resets() {
    on_every_backend(|backend| {
        let echo = LoopEcho::start(backend, 100);
        let rude = fill_until_paused(&echo, echo.addr);
        socket2::SockRef::from(&rude)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(rude); // RST, with the server's echoes unread
        let after = echo.wait_for_no_connections();
        assert_eq!(
            after.tcp_handles, 0,
            "the reset client's connection is still open: {after:?}"
        );
        assert_eq!(after.stats.errors, 1, "{after:?}");
        echo.stop();
    });
}

/// A client that sends 2 MiB before it reads gets all 2 MiB back: the async echo waits
/// for it (backpressure), it does not drop it.
#[test]
fn async_echo_waits_for_a_client_that_reads_late() {
    use looplab::servers::echo::EchoConfig;
    use looplab::servers::echo_async::EchoAsync;
    const TOTAL: usize = 2 << 20;
    on_every_backend(|backend| {
        let mut lp = util::new_loop(backend);
        let config = EchoConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..EchoConfig::default()
        };
        let echo = EchoAsync::listen(&mut lp, config).unwrap();
        let addr = echo.local_addr();
        let e = echo.clone();
        let (h, stop) = lp.async_handle(move |lp, me| {
            e.shutdown(lp);
            lp.close(me);
        });
        lp.unref_handle(h);
        let client = std::thread::spawn(move || {
            let mut s = util::connect(addr);
            let mut w = s.try_clone().unwrap();
            let writer = std::thread::spawn(move || w.write_all(&vec![5u8; TOTAL]));
            std::thread::sleep(Duration::from_millis(200));
            let mut back = vec![0u8; TOTAL];
            let read = s.read_exact(&mut back).map(|()| back.len());
            let wrote = writer.join().unwrap();
            stop.send();
            (
                wrote.map_err(|e| e.to_string()),
                read.map_err(|e| e.to_string()),
            )
        });
        util::fail_after(&mut lp, Duration::from_secs(30));
        lp.run(RunMode::Default).unwrap();
        let (wrote, read) = client.join().unwrap();
        let stats = echo.stats();
        assert_eq!((wrote, read), (Ok(()), Ok(TOTAL)), "{stats:?}");
    });
}

/// The cause of the async echo's drop: a read callback that pauses and resumes
/// (Node's `pause()` then `resume()` in a 'data' handler; the task layer did it when
/// its reader drained its inbox inside the callback) got "read_resume before
/// read_start", since the loop takes the callback out of the stream while it runs.
#[test]
fn read_resume_inside_the_read_callback_is_no_error() {
    use looplab::ReadEvent;
    use std::cell::RefCell;
    use std::rc::Rc;
    on_every_backend(|backend| {
        let mut lp = util::new_loop(backend);
        let (conn, mut client) = util::tcp::accepted_pairs(&mut lp, 1).remove(0);
        let results = Rc::new(RefCell::new(Vec::new()));
        let r = results.clone();
        lp.read_start(conn, move |lp, conn, ev| match ev {
            ReadEvent::Data(_) => {
                lp.read_stop(conn);
                r.borrow_mut()
                    .push(lp.read_resume(conn).map_err(|e| e.to_string()));
            }
            _ => {
                lp.close(conn);
            }
        })
        .unwrap();
        client.write_all(b"pause, then resume").unwrap();
        drop(client);
        util::fail_after(&mut lp, Duration::from_secs(10));
        lp.run(RunMode::Default).unwrap();
        let results = results.borrow();
        assert!(
            !results.is_empty() && results.iter().all(Result::is_ok),
            "{results:?}"
        );
    });
}
