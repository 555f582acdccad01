//! Happy eyeballs (`task::connect_first`, `task::connect_happy`): a black-holed first
//! address costs one stagger, a refused one costs nothing, the losers are closed, and
//! when every address fails the error names each.

mod util;

use looplab::task::{self, Failures};
use looplab::{HandleKind, Loop, RunMode};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};
use util::replicas::{black_hole, dead_addr};
use util::trace::{assert_in_order, traced_loop};
use util::{fail_after, new_loop, on_every_backend};

const GUARD: Duration = Duration::from_secs(30);
const STAGGER: Duration = Duration::from_millis(250);

fn streams(lp: &Loop) -> Vec<looplab::HandleInfo> {
    lp.handles()
        .into_iter()
        .filter(|h| h.kind == HandleKind::Tcp)
        .collect()
}

/// The first address is black-holed (its SYNs are dropped, the connect hangs): the
/// second attempt starts one stagger later and wins; the hanging attempt is closed.
/// Never before the stagger; well within stagger + 2 s (a generous bound for a busy
/// machine: without the stagger this would wait for the kernel's connect timeout).
#[test]
fn a_black_holed_first_address_costs_one_stagger() {
    on_every_backend(|b| {
        let hole = black_hole();
        let good = TcpListener::bind("[::1]:0").unwrap();
        let good_addr = good.local_addr().unwrap();
        let (mut lp, trace) = traced_loop(b);
        fail_after(&mut lp, GUARD);
        let addrs = vec![hole.addr, good_addr];
        let started = Instant::now();
        let stream = lp
            .block_on(task::connect_first(addrs, STAGGER))
            .unwrap()
            .unwrap();
        let took = started.elapsed();
        assert_eq!(stream.peer_addr(), Some(good_addr));
        assert!(
            took >= STAGGER,
            "the second attempt started early: {took:?}"
        );
        assert!(took < STAGGER + Duration::from_secs(2), "{took:?}");
        let open: Vec<_> = streams(&lp).into_iter().filter(|h| !h.closing).collect();
        assert_eq!(open.len(), 1, "only the winner is open: {open:?}");
        drop(stream);
        lp.run(RunMode::Default).unwrap();
        assert!(streams(&lp).is_empty(), "{:?}", lp.handles());
        assert_in_order(
            &trace.text(),
            &[
                format!("attempt 1 to {}", hole.addr),
                format!("attempt 2 to {good_addr}"),
                format!("{good_addr} connected first; closed 1 other attempt(s)"),
            ],
        );
    });
}

/// A refused address does not wait for the stagger: the next attempt starts at once.
/// (The stagger here is 20 s; the whole test takes milliseconds.)
#[test]
fn a_refused_address_starts_the_next_at_once() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let good = TcpListener::bind("127.0.0.1:0").unwrap();
        let good_addr = good.local_addr().unwrap();
        let addrs = vec![dead_addr(), good_addr];
        let started = Instant::now();
        let stream = lp
            .block_on(task::connect_first(addrs, Duration::from_secs(20)))
            .unwrap()
            .unwrap();
        assert_eq!(stream.peer_addr(), Some(good_addr));
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let timers = lp
            .handles()
            .iter()
            .filter(|h| h.kind == HandleKind::Timer)
            .count();
        assert_eq!(
            timers, 1,
            "the stagger timer is cleared (the guard remains)"
        );
    });
}

/// Every address fails: the error lists each address with its error.
#[test]
fn all_failing_names_each_address() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let (a, c) = (dead_addr(), dead_addr());
        let dead6: SocketAddr = {
            let l = TcpListener::bind("[::1]:0").unwrap();
            l.local_addr().unwrap()
        };
        let Err(err) = lp
            .block_on(task::connect_first(vec![a, c, dead6], STAGGER))
            .unwrap()
        else {
            panic!("connected to a dead address");
        };
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
        let failures = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<Failures>())
            .unwrap();
        assert_eq!(failures.each.len(), 3, "{err}");
        for addr in [a, c, dead6] {
            assert!(err.to_string().contains(&format!("{addr}: ")), "{err}");
        }
        assert!(lp
            .block_on(task::connect_first(vec![], STAGGER))
            .unwrap()
            .is_err());
        lp.run(RunMode::Default).unwrap();
        assert!(streams(&lp).is_empty(), "{:?}", lp.handles());
    });
}

/// `connect_happy("localhost", port)` resolves on the pool and finds the family that
/// listens, whichever the resolver lists first.
#[test]
fn localhost_finds_the_family_that_listens() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        fail_after(&mut lp, GUARD);
        let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = v4.local_addr().unwrap().port();
        let stream = lp
            .block_on(async move { task::connect_happy("localhost", port).await })
            .unwrap()
            .unwrap();
        assert_eq!(stream.peer_addr(), Some(v4.local_addr().unwrap()));
    });
}
