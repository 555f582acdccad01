//! The echo scenarios every echo server must pass, whatever runs it: the loop's backends
//! and the thread server (tests/echo.rs), the io_uring echo (tests/echo_uring.rs).

use super::{connect, round_trip};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

/// 64-byte messages that say which connection and which message they are.
pub fn message(conn: usize, i: usize) -> Vec<u8> {
    let mut m = format!("conn {conn:5} msg {i:5} ").into_bytes();
    m.resize(64, b'.');
    m
}

/// 500 concurrent clients each echo 100 messages and get every byte back in order.
/// Ten client threads each drive 50 connections in lock step, so all 500 stay open.
pub fn five_hundred_clients(addr: SocketAddr) {
    let groups: Vec<_> = (0..10)
        .map(|g| {
            std::thread::spawn(move || {
                let mut conns: Vec<_> = (0..50).map(|_| connect(addr)).collect();
                for i in 0..100 {
                    for (c, s) in conns.iter_mut().enumerate() {
                        s.write_all(&message(g * 50 + c, i)).unwrap();
                    }
                    for (c, s) in conns.iter_mut().enumerate() {
                        let mut back = [0u8; 64];
                        s.read_exact(&mut back).unwrap();
                        assert_eq!(back.as_slice(), message(g * 50 + c, i).as_slice());
                    }
                }
            })
        })
        .collect();
    for g in groups {
        g.join().expect("a client group failed");
    }
}

/// A client sends 32 MiB without reading for a while, then reads it all back intact.
pub fn thirty_two_mib_from_a_client_that_reads_late(addr: SocketAddr) {
    const TOTAL: usize = 32 * 1024 * 1024;
    let pattern = |i: usize| (i % 251) as u8;
    let mut reader = connect(addr);
    reader
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut writer = reader.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let w = std::thread::spawn(move || {
        let chunk: Vec<u8> = (0..65536).map(pattern).collect();
        for _ in 0..TOTAL / chunk.len() {
            writer.write_all(&chunk).unwrap();
        }
    });
    std::thread::sleep(Duration::from_millis(500)); // not reading: the server must hold back
    let mut buf = vec![0u8; 1 << 20];
    let mut got = 0;
    while got < TOTAL {
        let n = reader.read(&mut buf).unwrap();
        assert!(n > 0, "EOF after {got} bytes");
        for (k, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, pattern((got + k) % 65536), "byte {} corrupted", got + k);
        }
        got += n;
    }
    w.join().unwrap();
}

/// A client that resets (SO_LINGER 0) with echoes queued does not disturb another.
pub fn a_reset_does_not_disturb_others(addr: SocketAddr) {
    let mut steady = connect(addr);
    assert_eq!(round_trip(&mut steady, b"before"), b"before");
    let mut rude = connect(addr);
    rude.write_all(&vec![7u8; 4 * 1024 * 1024]).ok(); // more than the kernel buffers: some is queued
    socket2::SockRef::from(&rude)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(rude); // RST instead of FIN
    for i in 0..20 {
        let msg = format!("after reset {i}");
        assert_eq!(round_trip(&mut steady, msg.as_bytes()), msg.as_bytes());
    }
}

/// Half-close: the client sends and shuts its write side; it gets every byte, then EOF.
pub fn half_close_returns_everything_then_eof(addr: SocketAddr) {
    let mut s = connect(addr);
    let data: Vec<u8> = (0..300_000).map(|i| (i % 241) as u8).collect();
    s.write_all(&data).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data);
}

/// With max 2 connections, a third is accepted and closed; the first two keep working.
/// Returns the two so they stay open while the caller inspects the server.
pub fn over_max_conns_is_shed(addr: SocketAddr) -> [std::net::TcpStream; 2] {
    let mut a = connect(addr);
    let mut b = connect(addr);
    assert_eq!(round_trip(&mut a, b"a"), b"a");
    assert_eq!(round_trip(&mut b, b"b"), b"b");
    let mut c = connect(addr);
    let mut buf = [0u8; 1];
    let _ = c.write_all(b"c");
    let n = c.read(&mut buf).unwrap_or(0); // EOF or reset: either way, no service
    assert_eq!(n, 0, "the extra connection was served");
    assert_eq!(round_trip(&mut a, b"still a"), b"still a");
    assert_eq!(round_trip(&mut b, b"still b"), b"still b");
    [a, b]
}
