//! Signals through the self-pipe: the handler writes a byte, the loop runs the callback
//! on its own thread. Signals are process-wide, so this file runs its cases in sequence.

mod util;

use looplab::{raise_signal, CloseDone, Loop, RunMode};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};
use util::on_every_backend;

#[test]
fn signals() {
    on_every_backend(|b| {
        a_raised_signal_reaches_the_callback_on_the_loop_thread(b);
        an_unrefd_signal_alone_lets_the_loop_exit(b);
    });
}

/// SIGUSR1 raised from another thread reaches the callback, on the loop thread.
fn a_raised_signal_reaches_the_callback_on_the_loop_thread(b: looplab::Backend) {
    let mut lp = Loop::builder().backend(b).build().unwrap();
    let loop_thread = std::thread::current().id();
    let got = Rc::new(Cell::new(0));
    let g = got.clone();
    let me = Rc::new(Cell::new(None));
    let m = me.clone();
    let s = lp
        .signal(libc::SIGUSR1, move |lp, signum| {
            assert_eq!(std::thread::current().id(), loop_thread);
            g.set(signum);
            lp.close(m.get().unwrap(), None::<CloseDone>);
        })
        .unwrap();
    me.set(Some(s));
    assert!(!lp.has_ref(s), "signal handles start unref'd, as in Node");
    lp.ref_handle(s); // hold the loop until the signal arrives
    let sender = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(50));
        raise_signal(libc::SIGUSR1).unwrap();
    });
    let start = Instant::now();
    lp.run(RunMode::Default).unwrap();
    sender.join().unwrap();
    assert_eq!(got.get(), libc::SIGUSR1);
    assert!(start.elapsed() < Duration::from_secs(5));
}

/// With only an unref'd signal handle, run returns at once.
fn an_unrefd_signal_alone_lets_the_loop_exit(b: looplab::Backend) {
    let mut lp = Loop::builder().backend(b).build().unwrap();
    lp.signal(libc::SIGUSR2, |_, _| {}).unwrap();
    let start = Instant::now();
    assert!(!lp.run(RunMode::Default).unwrap());
    assert!(start.elapsed() < Duration::from_millis(100));
    assert!(
        lp.signal(libc::SIGKILL, |_, _| {}).is_err(),
        "SIGKILL cannot be watched"
    );
}
