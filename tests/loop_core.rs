//! The reactor core's conformance suite: each behaviour of DESIGN.md's tick, run on every
//! backend this OS offers.

mod util;

use looplab::{Backend, CloseDone, Loop, RunMode};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::{new_loop, on_every_backend};

/// An empty loop has nothing to do: run returns at once, not alive.
#[test]
fn empty_loop_returns_at_once() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let t = Instant::now();
        assert!(!lp.run(RunMode::Default).unwrap());
        assert!(t.elapsed() < Duration::from_millis(50));
        assert_eq!(lp.backend(), b);
    });
}

/// An unref'd timer does not hold the loop: it never fires, run returns at once.
#[test]
fn unrefd_timer_does_not_hold_the_loop() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let fired = Rc::new(Cell::new(false));
        let f = fired.clone();
        let t = lp.set_timeout(Duration::from_millis(200), move |_| f.set(true));
        assert!(lp.has_ref(t));
        lp.unref(t);
        lp.unref(t);
        assert!(!lp.has_ref(t));
        let start = Instant::now();
        assert!(!lp.run(RunMode::Default).unwrap());
        assert!(start.elapsed() < Duration::from_millis(100));
        assert!(!fired.get());
        // ref/unref are flags: one ref after two unrefs holds the loop again.
        lp.ref_handle(t);
        assert!(lp.alive());
        lp.run(RunMode::Default).unwrap();
        assert!(fired.get());
    });
}

/// Timers with the same timeout fire in the order they were started.
#[test]
fn equal_deadlines_fire_in_start_order() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let order = Rc::new(RefCell::new(Vec::new()));
        // Same deadline even if the clock ticks over a millisecond between calls? Use a
        // timer started from one callback so they share `now`-relative deadlines closely.
        for i in 0..50 {
            let o = order.clone();
            lp.set_timeout(Duration::from_millis(20), move |_| o.borrow_mut().push(i));
        }
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*order.borrow(), (0..50).collect::<Vec<_>>());
    });
}

/// Random deadlines fire in deadline order and never before their deadline.
#[test]
fn random_deadlines_fire_in_order_and_never_early() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let fired = Rc::new(RefCell::new(Vec::new()));
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..200 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let ms = seed % 120;
            let set_at = Instant::now();
            let f = fired.clone();
            lp.set_timeout(Duration::from_millis(ms), move |_| {
                f.borrow_mut().push((i, ms, set_at.elapsed()));
            });
        }
        lp.run(RunMode::Default).unwrap();
        let fired = fired.borrow();
        assert_eq!(fired.len(), 200);
        for (i, ms, waited) in fired.iter() {
            assert!(
                *waited >= Duration::from_millis(*ms),
                "timer {i} ({ms} ms) fired after only {waited:?}"
            );
        }
        for w in fired.windows(2) {
            assert!(
                w[0].1 <= w[1].1 || w[1].2 >= Duration::from_millis(w[0].1),
                "out of order: {w:?}"
            );
        }
    });
}

/// An interval re-arms, and its own callback can clear it.
#[test]
fn interval_rearms_and_clears_itself() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let count = Rc::new(Cell::new(0));
        let me = Rc::new(Cell::new(None));
        let (c, m) = (count.clone(), me.clone());
        let t = lp.set_interval(Duration::from_millis(5), move |lp| {
            c.set(c.get() + 1);
            if c.get() == 5 {
                assert!(lp.clear_timer(m.get().unwrap()));
            }
        });
        me.set(Some(t));
        let start = Instant::now();
        lp.run(RunMode::Default).unwrap();
        assert_eq!(count.get(), 5);
        assert!(start.elapsed() >= Duration::from_millis(25));
        assert!(
            !lp.clear_timer(t),
            "a cleared timer cannot be cleared again"
        );
    });
}

/// Huge timeouts saturate instead of overflowing: the loop waits on them (here until
/// another thread wakes it) without a panic, and they clear normally.
#[test]
fn huge_timeouts_saturate() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let far = lp.set_timeout(Duration::from_secs(1 << 40), |_| panic!("fired"));
        let never = lp.set_timeout(Duration::MAX, |_| panic!("fired"));
        let me = Rc::new(Cell::new(None));
        let m = me.clone();
        let (a, sender) = lp.async_handle(move |lp| {
            assert!(lp.clear_timer(far) && lp.clear_timer(never));
            lp.close(m.get().unwrap(), None::<CloseDone>);
        });
        me.set(Some(a));
        let waker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            sender.send();
        });
        assert!(!lp.run(RunMode::Default).unwrap());
        waker.join().unwrap();
    });
}

/// NoWait polls with a zero timeout even when a timer is far away.
#[test]
fn nowait_never_blocks() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        lp.set_timeout(Duration::from_secs(10), |_| {});
        let start = Instant::now();
        for _ in 0..100 {
            assert!(lp.run(RunMode::NoWait).unwrap());
        }
        assert!(start.elapsed() < Duration::from_millis(200));
    });
}

/// Once blocks for one event (here a timer) and returns after that tick.
#[test]
fn once_returns_after_one_event() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let hits = Rc::new(Cell::new(0));
        for ms in [30, 300] {
            let h = hits.clone();
            lp.set_timeout(Duration::from_millis(ms), move |_| h.set(h.get() + 1));
        }
        let start = Instant::now();
        assert!(
            lp.run(RunMode::Once).unwrap(),
            "the 300 ms timer is still pending"
        );
        assert_eq!(hits.get(), 1);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(30) && took < Duration::from_millis(250),
            "{took:?}"
        );
    });
}

/// Once does not block in poll when the pending phase already made progress: a deferred
/// callback may have done what the caller was waiting for. Here the progress is a
/// cancelled job's result, which is delivered through the pending phase.
#[test]
fn once_does_not_sleep_after_pending_progress() {
    on_every_backend(|b| {
        let mut lp = Loop::builder()
            .backend(b)
            .threadpool_size(1)
            .build()
            .unwrap();
        let (release, blocked) = crossbeam_channel::bounded::<()>(0);
        // The only worker takes A first (FIFO) and blocks in it, so B stays queued.
        lp.queue_work(
            move || blocked.recv_timeout(Duration::from_secs(10)).is_ok(),
            |_, _| {},
        );
        let got = Rc::new(Cell::new(false));
        let g = got.clone();
        let b_job = lp.queue_work(|| (), move |_, r| g.set(r.is_err()));
        assert!(lp.cancel(b_job), "B was still queued behind A");
        let start = Instant::now();
        assert!(lp.run(RunMode::Once).unwrap(), "A still holds the loop");
        assert!(got.get(), "B's cancellation was delivered in this tick");
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "Once slept after pending progress: {:?}",
            start.elapsed()
        );
        release.send(()).unwrap();
        lp.run(RunMode::Default).unwrap();
    });
}

/// stop() from a callback ends run after the current tick; before run, run returns at
/// once without firing due timers.
#[test]
fn stop_from_a_callback_and_before_run() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let ticks = Rc::new(Cell::new(0));
        let t = ticks.clone();
        lp.set_interval(Duration::from_millis(1), move |lp| {
            t.set(t.get() + 1);
            if t.get() == 3 {
                lp.stop();
            }
        });
        assert!(
            lp.run(RunMode::Default).unwrap(),
            "the interval still holds the loop"
        );
        assert_eq!(ticks.get(), 3);
        std::thread::sleep(Duration::from_millis(5));
        lp.stop();
        assert!(lp.run(RunMode::Default).unwrap());
        assert_eq!(ticks.get(), 3, "stop() before run fires nothing");
    });
}

/// Immediates run after poll in the same tick, before the next tick's timers; an
/// immediate queued by an immediate waits for the next check phase.
#[test]
fn immediates_run_after_poll_before_next_timers() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        lp.set_timeout(Duration::ZERO, move |lp| {
            l.borrow_mut().push("timer 1");
            let l2 = l.clone();
            lp.set_timeout(Duration::ZERO, move |_| l2.borrow_mut().push("timer 2"));
            let l3 = l.clone();
            lp.set_immediate(move |lp| {
                l3.borrow_mut().push("immediate 1");
                let l4 = l3.clone();
                lp.set_immediate(move |_| l4.borrow_mut().push("immediate 2"));
            });
        });
        lp.run(RunMode::Default).unwrap();
        assert_eq!(
            *log.borrow(),
            ["timer 1", "immediate 1", "timer 2", "immediate 2"]
        );
    });
}

/// A 0 ms timer started from a timer callback fires in the next tick, not the same pass.
#[test]
fn zero_timer_from_a_timer_fires_next_tick() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let ticks = Rc::new(RefCell::new(Vec::new()));
        let t = ticks.clone();
        lp.set_timeout(Duration::ZERO, move |lp| {
            t.borrow_mut().push(lp.metrics().ticks);
            let t2 = t.clone();
            lp.set_timeout(Duration::ZERO, move |lp| {
                t2.borrow_mut().push(lp.metrics().ticks)
            });
        });
        lp.run(RunMode::Default).unwrap();
        let ticks = ticks.borrow();
        assert_eq!(ticks.len(), 2);
        assert!(ticks[1] > ticks[0], "same tick: {ticks:?}");
    });
}

/// close() never runs its callback synchronously; close callbacks run in close() order,
/// and a closed handle is refused afterwards.
#[test]
fn close_callbacks_run_in_order_and_stale_handles_are_refused() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let order = Rc::new(RefCell::new(Vec::new()));
        let timers: Vec<_> = (0..3)
            .map(|_| lp.set_interval(Duration::from_secs(60), |_| {}))
            .collect();
        for (i, t) in timers.iter().enumerate().rev() {
            let o = order.clone();
            assert!(lp.close(*t, Some(move |_: &mut Loop| o.borrow_mut().push(i))));
        }
        assert!(
            order.borrow().is_empty(),
            "close ran a callback synchronously"
        );
        assert!(
            !lp.close(timers[0], None::<CloseDone>),
            "double close is refused"
        );
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*order.borrow(), [2, 1, 0]);
        // The slot is reused by a new handle; the old id must not reach it.
        let fresh = lp.set_timeout(Duration::from_millis(1), |_| {});
        assert!(!lp.clear_timer(timers[0]));
        assert!(!lp.unref(timers[1]));
        assert!(!lp.close(timers[2], None::<CloseDone>));
        assert!(lp.has_ref(fresh), "the fresh timer was left alone");
        lp.run(RunMode::Default).unwrap();
    });
}

/// A callback may clear another timer due in the same pass, and close its own interval.
#[test]
fn callbacks_may_clear_timers_due_in_the_same_pass() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let fired = Rc::new(RefCell::new(Vec::new()));
        let victim = Rc::new(Cell::new(None));
        let (f, v) = (fired.clone(), victim.clone());
        lp.set_timeout(Duration::from_millis(10), move |lp| {
            f.borrow_mut().push("first");
            assert!(
                lp.clear_timer(v.get().unwrap()),
                "the second timer is still pending"
            );
            // Reuse the freed wheel slot at once: must not disturb anything.
            let f2 = f.clone();
            lp.set_timeout(Duration::from_millis(1), move |_| {
                f2.borrow_mut().push("new")
            });
        });
        let f = fired.clone();
        victim.set(Some(lp.set_timeout(Duration::from_millis(10), move |_| {
            f.borrow_mut().push("victim")
        })));
        let me = Rc::new(Cell::new(None));
        let (f, m) = (fired.clone(), me.clone());
        me.set(Some(lp.set_interval(Duration::from_millis(3), move |lp| {
            f.borrow_mut().push("interval");
            lp.close(m.get().unwrap(), None::<CloseDone>);
        })));
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*fired.borrow(), ["interval", "first", "new"]);
    });
}

/// Sends from 4 threads x 1000 coalesce, and none is lost: the callback sees the effect
/// of every send (the counter reaches 4000 inside a callback).
#[test]
fn async_sends_coalesce_and_none_is_lost() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let counter = Arc::new(AtomicUsize::new(0));
        let runs = Rc::new(Cell::new(0));
        let (c, r) = (counter.clone(), runs.clone());
        let me = Rc::new(Cell::new(None));
        let m = me.clone();
        let (a, sender) = lp.async_handle(move |lp| {
            r.set(r.get() + 1);
            if c.load(Ordering::SeqCst) == 4000 {
                lp.close(m.get().unwrap(), None::<CloseDone>);
            }
        });
        me.set(Some(a));
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

/// The trace names the rule that chose each poll timeout and why the loop exits.
#[test]
fn trace_explains_timeouts_and_exit() {
    on_every_backend(|b| {
        let buf = SharedBuf::default();
        let mut lp = Loop::builder()
            .backend(b)
            .trace_to(buf.clone())
            .build()
            .unwrap();
        let t = lp.set_timeout(Duration::from_millis(20), |lp| {
            lp.set_immediate(|_| {});
        });
        let i = lp.set_interval(Duration::from_millis(7), |_| {});
        lp.unref(i);
        lp.run(RunMode::Default).unwrap();
        let text = buf.text();
        assert!(
            text.contains(&format!(
                "next timer #{}",
                Into::<looplab::Handle>::into(t).id()
            )),
            "{text}"
        );
        assert!(text.contains("immediates"), "{text}");
        assert!(
            text.contains("exit: nothing ref'd is active (unref'd, not holding the loop: 1 timer)"),
            "{text}"
        );
        assert!(text.contains("alive: ref'd: 1 timer"), "{text}");
    });
}

/// Late timers are measured: a callback that blocks makes the next timer late.
#[test]
fn metrics_count_ticks_and_lateness() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        lp.set_timeout(Duration::from_millis(1), |_| {
            std::thread::sleep(Duration::from_millis(30))
        });
        lp.set_timeout(Duration::from_millis(5), |_| {});
        lp.run(RunMode::Default).unwrap();
        let m = lp.metrics();
        assert_eq!(m.timers_fired, 2);
        assert!(m.timer_lateness_max >= Duration::from_millis(20), "{m:?}");
        assert!(m.ticks >= 1 && m.handles == 0);
    });
}

/// A stale handle on every API gives false or an error, never touches another handle.
#[test]
fn handles_lists_kinds_and_flags() {
    let mut lp = new_loop(Backend::default_for_os());
    let t = lp.set_timeout(Duration::from_secs(5), |_| {});
    let (a, _s) = lp.async_handle(|_| {});
    lp.unref(a);
    let infos = lp.handles();
    assert_eq!(infos.len(), 2);
    assert!(infos
        .iter()
        .any(|i| i.handle == t.into() && i.active && i.has_ref));
    assert!(infos
        .iter()
        .any(|i| i.handle == a.into() && i.active && !i.has_ref));
    assert!(lp.explain_alive().contains("ref'd: 1 timer"));
    lp.clear_timer(t);
    assert!(!lp.run(RunMode::Default).unwrap());
}

#[derive(Clone, Default)]
struct SharedBuf(Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuf {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
