//! Both echo servers through real sockets on 127.0.0.1: many clients, a client that does
//! not read, a client that resets, half-close, load shedding, no leaked handles.

mod util;

use looplab::servers::echo::HIGH_WATER;
use looplab::servers::echo_threads::EchoThreads;
use std::net::SocketAddr;
use util::echo_cases::{
    a_reset_does_not_disturb_others, five_hundred_clients, half_close_returns_everything_then_eof,
    over_max_conns_is_shed, thirty_two_mib_from_a_client_that_reads_late,
};
use util::{on_every_backend, LoopEcho};

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
