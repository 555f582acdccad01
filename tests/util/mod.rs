//! Helpers shared by the integration tests.
#![allow(dead_code)]

use looplab::{Backend, Loop};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Run `test` once per backend this OS offers (Epoll and Mio on Linux), naming the
/// backend in any panic so a failure says where it failed.
pub fn on_every_backend(test: impl Fn(Backend)) {
    for backend in Backend::available() {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(backend)));
        if let Err(e) = result {
            eprintln!("-- failed on the {backend} backend --");
            std::panic::resume_unwind(e);
        }
    }
}

/// A loop on `backend` with a small pool, as the tests use it.
pub fn new_loop(backend: Backend) -> Loop {
    Loop::builder()
        .backend(backend)
        .threadpool_size(2)
        .build()
        .expect("building a loop")
}

/// A blocking client with timeouts, so a broken server fails a test instead of hanging it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connecting to the test server");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Send `msg` and read back exactly as many bytes.
pub fn round_trip(s: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    s.write_all(msg).unwrap();
    let mut back = vec![0; msg.len()];
    s.read_exact(&mut back).unwrap();
    back
}
