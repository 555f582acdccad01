//! Signals through the self-pipe: the handler writes a byte, the loop runs the callback
//! on its own thread. Signals are process-wide, so this file runs its cases in sequence,
//! and only through the public `Loop::signal` API.

mod util;

use looplab::{raise_signal, Backend, Loop, RunMode};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;
use util::on_every_backend;

#[test]
fn signals() {
    on_every_backend(|b| {
        a_raised_signal_reaches_the_callback_on_the_loop_thread(b);
        an_unrefd_signal_alone_lets_the_loop_exit(b);
    });
    on_every_backend(only_a_loop_watching_a_signal_hears_it);
}

/// SIGUSR1 raised from another thread reaches the callback, on the loop thread, with its
/// own handle and the signal number.
fn a_raised_signal_reaches_the_callback_on_the_loop_thread(b: Backend) {
    let mut lp = Loop::builder().backend(b).build().unwrap();
    let loop_thread = std::thread::current().id();
    let got = Rc::new(Cell::new(0));
    let g = got.clone();
    let s = lp
        .signal(libc::SIGUSR1, move |lp, me, signum| {
            assert_eq!(std::thread::current().id(), loop_thread);
            g.set(signum);
            lp.close(me);
        })
        .unwrap();
    assert!(!lp.has_ref(s), "signal handles start unref'd, as in Node");
    lp.ref_handle(s); // hold the loop until the signal arrives
    util::fail_after(&mut lp, Duration::from_secs(20));
    let sender = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(50));
        raise_signal(libc::SIGUSR1).unwrap();
    });
    lp.run(RunMode::Default).unwrap();
    sender.join().unwrap();
    assert_eq!(got.get(), libc::SIGUSR1);
}

/// With only an unref'd signal handle, run returns without waiting in poll.
fn an_unrefd_signal_alone_lets_the_loop_exit(b: Backend) {
    let mut lp = Loop::builder().backend(b).build().unwrap();
    lp.signal(libc::SIGUSR2, |_, _, _| {}).unwrap();
    assert!(!lp.run(RunMode::Default).unwrap());
    assert_eq!(lp.metrics().idle, Duration::ZERO, "it waited in poll");
    assert!(
        lp.signal(libc::SIGKILL, |_, _, _| {}).is_err(),
        "SIGKILL cannot be watched"
    );
}

/// Two loops, one watching SIGUSR1 and one watching only SIGUSR2: a SIGUSR1 reaches the
/// first, and the second is not even woken for it (its poll reports no event at all).
/// Issue 11, safety: the signal registry delivers a signal only to loops watching it.
fn only_a_loop_watching_a_signal_hears_it(b: Backend) {
    let mut watching = Loop::builder().backend(b).build().unwrap();
    let mut other = Loop::builder().backend(b).build().unwrap();
    let heard = Rc::new(Cell::new(0));
    let h = heard.clone();
    let s = watching
        .signal(libc::SIGUSR1, move |lp, me, signum| {
            h.set(signum);
            lp.close(me);
        })
        .unwrap();
    watching.ref_handle(s);
    let wrong = Rc::new(Cell::new(false));
    let w = wrong.clone();
    let s2 = other
        .signal(libc::SIGUSR2, move |_, _, _| w.set(true))
        .unwrap();
    other.ref_handle(s2); // so a NoWait run really polls
    raise_signal(libc::SIGUSR1).unwrap();
    util::fail_after(&mut watching, Duration::from_secs(20));
    watching.run(RunMode::Default).unwrap();
    assert_eq!(heard.get(), libc::SIGUSR1);
    // The handler ran before the first loop read its byte: any byte for the other loop
    // is in its pipe by now.
    other.run(RunMode::NoWait).unwrap();
    assert!(!wrong.get(), "SIGUSR1 ran a SIGUSR2 callback");
    assert_eq!(
        other.metrics().events,
        0,
        "a loop that does not watch SIGUSR1 was woken by it"
    );
    other.close(s2);
    other.run(RunMode::Default).unwrap();
}
