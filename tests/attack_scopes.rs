//! A hostile client against the servers after the scope change: what it found, each
//! pinned by a test that failed before its fix, and the strongest of the attacks that
//! found nothing, kept as regressions.

mod util;

use std::io::{ErrorKind, Write};
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
