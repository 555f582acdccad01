//! `looplab echo-raw` (rung 3, epoll by hand) as a person runs it: Ctrl-C and SIGTERM end
//! it with status 0, a client connected or not.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use util::child::ServerChild;

#[test]
fn sigint_and_sigterm_exit_zero() {
    for signal in ["INT", "TERM"] {
        let mut server = ServerChild::start(&["echo-raw", "--addr", "127.0.0.1:0"]);
        let mut c = TcpStream::connect_timeout(&server.addr, Duration::from_secs(5)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"hello").unwrap();
        let mut back = [0; 5];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"hello");
        server.signal(signal);
        let status = server.wait_for_exit(Duration::from_secs(5));
        let how = status.map_or("still running after 5 s".to_string(), |s| s.to_string());
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "SIG{signal}: {how}; stderr:\n{}",
            server.stderr_at_exit()
        );
    }
}
