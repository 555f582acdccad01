//! Async handles: other threads wake the loop, and the callback runs on the loop thread.

mod util;

use looplab::RunMode;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use util::{new_loop, on_every_backend};

/// Sends from 4 threads x 1000 coalesce, and none is lost: the callback sees the effect
/// of every send (the counter reaches 4000 inside a callback).
#[test]
fn async_sends_coalesce_and_none_is_lost() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let counter = Arc::new(AtomicUsize::new(0));
        let runs = Rc::new(Cell::new(0));
        let (c, r) = (counter.clone(), runs.clone());
        let (_, sender) = lp.async_handle(move |lp, me| {
            r.set(r.get() + 1);
            if c.load(Ordering::SeqCst) == 4000 {
                lp.close(me);
            }
        });
        util::fail_after(&mut lp, Duration::from_secs(20));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (s, c) = (sender.clone(), counter.clone());
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.fetch_add(1, Ordering::SeqCst);
                        assert!(s.send());
                    }
                })
            })
            .collect();
        lp.run(RunMode::Default).unwrap();
        for t in threads {
            t.join().unwrap();
        }
        assert!(runs.get() >= 1 && runs.get() <= 4000);
        assert!(!sender.send(), "a closed async refuses sends");
        let m = lp.metrics();
        assert!(m.wake_writes <= m.wake_requests);
        eprintln!(
            "{b}: 4000 sends -> {} callbacks, {} pipe writes",
            runs.get(),
            m.wake_writes
        );
    });
}
