//! Both echo servers through real sockets on 127.0.0.1: many clients, a client that does
//! not read, a client that resets, half-close, load shedding, no leaked handles.

mod util;

use looplab::servers::echo::HIGH_WATER;
use looplab::servers::echo_threads::EchoThreads;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;
use util::{connect, on_every_backend, LoopEcho};

/// 64-byte messages that say which connection and which message they are.
fn message(conn: usize, i: usize) -> Vec<u8> {
    let mut m = format!("conn {conn:5} msg {i:5} ").into_bytes();
    m.resize(64, b'.');
    m
}

/// 500 concurrent clients each echo 100 messages and get every byte back in order.
/// Ten client threads each drive 50 connections in lock step, so all 500 stay open.
fn five_hundred_clients(addr: SocketAddr) {
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
fn thirty_two_mib_from_a_client_that_reads_late(addr: SocketAddr) {
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
fn a_reset_does_not_disturb_others(addr: SocketAddr) {
    let mut steady = connect(addr);
    assert_eq!(util::round_trip(&mut steady, b"before"), b"before");
    let mut rude = connect(addr);
    rude.write_all(&vec![7u8; 4 * 1024 * 1024]).ok(); // more than the kernel buffers: some is queued
    socket2::SockRef::from(&rude)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(rude); // RST instead of FIN
    for i in 0..20 {
        let msg = format!("after reset {i}");
        assert_eq!(
            util::round_trip(&mut steady, msg.as_bytes()),
            msg.as_bytes()
        );
    }
}

/// Half-close: the client sends and shuts its write side; it gets every byte, then EOF.
fn half_close_returns_everything_then_eof(addr: SocketAddr) {
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
fn over_max_conns_is_shed(addr: SocketAddr) -> [std::net::TcpStream; 2] {
    let mut a = connect(addr);
    let mut b = connect(addr);
    assert_eq!(util::round_trip(&mut a, b"a"), b"a");
    assert_eq!(util::round_trip(&mut b, b"b"), b"b");
    let mut c = connect(addr);
    let mut buf = [0u8; 1];
    let _ = c.write_all(b"c");
    let n = c.read(&mut buf).unwrap_or(0); // EOF or reset: either way, no service
    assert_eq!(n, 0, "the extra connection was served");
    assert_eq!(util::round_trip(&mut a, b"still a"), b"still a");
    assert_eq!(util::round_trip(&mut b, b"still b"), b"still b");
    [a, b]
}

#[test]
fn loop_echo_serves_500_clients() {
    on_every_backend(|b| {
        let server = LoopEcho::start(b, 100_000);
        five_hundred_clients(server.addr);
        let snap = server.wait_for_no_connections();
        assert_eq!(
            (snap.tcp_handles, snap.listeners),
            (0, 1),
            "handles leaked: {snap:?}"
        );
        assert_eq!(snap.stats.accepted, 500);
        assert_eq!(snap.stats.bytes, 500 * 100 * 64);
        server.stop();
    });
}

#[test]
fn loop_echo_bounds_memory_for_a_client_that_reads_late() {
    on_every_backend(|b| {
        let server = LoopEcho::start(b, 100_000);
        thirty_two_mib_from_a_client_that_reads_late(server.addr);
        let snap = server.wait_for_no_connections();
        let bound = HIGH_WATER + 64 * 1024;
        assert!(
            snap.stats.max_queue <= bound,
            "queue reached {} > {bound}",
            snap.stats.max_queue
        );
        assert!(
            snap.stats.paused > 0,
            "backpressure never engaged: {snap:?}"
        );
        server.stop();
    });
}

#[test]
fn loop_echo_survives_a_reset() {
    on_every_backend(|b| {
        let server = LoopEcho::start(b, 100_000);
        a_reset_does_not_disturb_others(server.addr);
        let snap = server.wait_for_no_connections();
        assert_eq!(snap.tcp_handles, 0, "{snap:?}");
        server.stop();
    });
}

#[test]
fn loop_echo_half_close() {
    on_every_backend(|b| {
        let server = LoopEcho::start(b, 100_000);
        half_close_returns_everything_then_eof(server.addr);
        assert_eq!(server.wait_for_no_connections().tcp_handles, 0);
        server.stop();
    });
}

#[test]
fn loop_echo_sheds_over_max_conns() {
    on_every_backend(|b| {
        let server = LoopEcho::start(b, 2);
        let clients = over_max_conns_is_shed(server.addr);
        let snap = server.snapshot();
        drop(clients);
        assert_eq!(snap.stats.shed, 1);
        assert_eq!(snap.stats.open, 2);
        let last = server.stop();
        assert_eq!(last.stats.accepted, 2, "{last:?} / earlier {snap:?}");
    });
}

fn with_threads_server(max_conns: usize, test: impl FnOnce(SocketAddr, &EchoThreads)) {
    let server = EchoThreads::start("127.0.0.1:0".parse().unwrap(), max_conns).unwrap();
    test(server.local_addr(), &server);
    server.stop();
}

#[test]
fn threads_echo_serves_500_clients() {
    with_threads_server(100_000, |addr, s| {
        five_hundred_clients(addr);
        assert_eq!(
            s.stats().accepted.load(std::sync::atomic::Ordering::SeqCst),
            500
        );
    });
}

#[test]
fn threads_echo_client_that_reads_late() {
    with_threads_server(100_000, |addr, _| {
        thirty_two_mib_from_a_client_that_reads_late(addr)
    });
}

#[test]
fn threads_echo_survives_a_reset() {
    with_threads_server(100_000, |addr, _| a_reset_does_not_disturb_others(addr));
}

#[test]
fn threads_echo_half_close() {
    with_threads_server(100_000, |addr, _| {
        half_close_returns_everything_then_eof(addr)
    });
}

#[test]
fn threads_echo_sheds_over_max_conns() {
    with_threads_server(2, |addr, s| {
        let _clients = over_max_conns_is_shed(addr);
        assert_eq!(s.stats().shed.load(std::sync::atomic::Ordering::SeqCst), 1);
    });
}
