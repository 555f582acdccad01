//! Handle identity: close order, the walk over handles, and the one rule for a handle that
//! is not this loop's to act on (stale, or another loop's): `false` from the methods that
//! answer a bool, an error of kind NotFound from those that return a Result.

mod util;

use looplab::{Handle, RunMode};
use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read as _};
use std::rc::Rc;
use std::time::Duration;
use util::tcp::{blocking_peer, loop_connect};
use util::{new_loop, on_every_backend};

/// close() never runs its callback synchronously; close callbacks run in close() order,
/// and a closed handle is refused afterwards.
#[test]
fn close_callbacks_run_in_order_and_stale_handles_are_refused() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let order = Rc::new(RefCell::new(Vec::new()));
        let timers: Vec<_> = (0..3)
            .map(|_| lp.set_interval(Duration::from_secs(60), |_, _| {}))
            .collect();
        for (i, t) in timers.iter().enumerate().rev() {
            let o = order.clone();
            assert!(lp.close_then(*t, move |_, _| o.borrow_mut().push(i)));
        }
        assert!(
            order.borrow().is_empty(),
            "close ran a callback synchronously"
        );
        assert!(!lp.close(timers[0]), "double close is refused");
        lp.run(RunMode::Default).unwrap();
        assert_eq!(*order.borrow(), [2, 1, 0]);
        // The slot is reused by a new handle; the old id must not reach it.
        let fresh = lp.set_timeout(Duration::from_millis(1), |_, _| {});
        assert!(!lp.clear_timer(timers[0]));
        assert!(!lp.unref_handle(timers[1]));
        assert!(!lp.close(timers[2]));
        assert!(lp.has_ref(fresh), "the fresh timer was left alone");
        lp.run(RunMode::Default).unwrap();
    });
}

/// `handles()` lists every handle with its kind and flags, and explain_alive agrees.
#[test]
fn handles_lists_kinds_and_flags() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let t = lp.set_timeout(Duration::from_secs(5), |_, _| {});
        let (a, _s) = lp.async_handle(|_, _| {});
        lp.unref_handle(a);
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
    });
}

/// Dropped when its handle is gone: tells the test when that happened.
struct Tracked(Rc<Cell<bool>>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// Per-handle data (libuv's `handle->data`, typed): read back only as the type stored,
/// changed in place, still there in the close callback, dropped with the handle.
#[test]
fn per_handle_data_is_typed_and_dropped_with_its_handle() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let t = lp.set_interval(Duration::from_secs(60), |_, _| {});
        let dropped = Rc::new(Cell::new(false));
        assert!(lp.set_data(t, (Tracked(dropped.clone()), 1u32)));
        assert!(lp.data::<u32>(t).is_none(), "read back as another type");
        if let Some((_, n)) = lp.data_mut::<(Tracked, u32)>(t) {
            *n += 1;
        }
        let seen = Rc::new(Cell::new(None));
        let s = seen.clone();
        assert!(lp.close_then(t, move |lp, h| {
            s.set(lp.data::<(Tracked, u32)>(h).map(|(_, n)| *n))
        }));
        assert!(!dropped.get(), "dropped before its handle was gone");
        lp.run(RunMode::Default).unwrap();
        assert_eq!(seen.get(), Some(2), "the close callback saw the data");
        assert!(dropped.get(), "the data outlived its handle");
        assert!(!lp.set_data(t, 3u32), "data set on a closed handle");
    });
}

/// Another loop's timer is refused like a stale one, though it names the same slot and
/// generation as this loop's timer: `b.clear_timer(a_timer)` is false (and so are close,
/// ref/unref and set_data), and b's own timer still fires. Issue 11, safety: handles
/// carry their loop.
#[test]
fn another_loops_timer_is_refused_and_this_loops_timer_still_fires() {
    on_every_backend(|backend| {
        let mut a = new_loop(backend);
        let mut b = new_loop(backend);
        let fired = Rc::new(RefCell::new(Vec::new()));
        let f = fired.clone();
        let a_timer = a.set_timeout(Duration::from_millis(5), move |_, _| {
            f.borrow_mut().push("a")
        });
        let f = fired.clone();
        let b_timer = b.set_timeout(Duration::from_millis(5), move |_, _| {
            f.borrow_mut().push("b")
        });
        assert_eq!(Handle::from(a_timer).id(), Handle::from(b_timer).id());
        assert!(!b.clear_timer(a_timer));
        assert!(!b.close(a_timer));
        assert!(!b.close_then(a_timer, |_, _| panic!("closed a foreign handle")));
        assert!(!b.unref_handle(a_timer));
        assert!(!b.ref_handle(a_timer));
        assert!(!b.has_ref(a_timer));
        assert!(!b.set_data(a_timer, 7u32));
        assert_eq!(b.data::<u32>(a_timer), None);
        assert!(b.has_ref(b_timer), "b's timer was unref'd through a's id");
        b.run(RunMode::Default).unwrap();
        assert_eq!(
            *fired.borrow(),
            ["b"],
            "b's timer was cleared through a's id"
        );
        a.run(RunMode::Default).unwrap();
        assert_eq!(*fired.borrow(), ["b", "a"]);
    });
}

/// Another loop's stream is refused: write, write_then, read_start and shutdown fail with
/// NotFound, close/read_stop/unref answer false, and this loop's stream in the same slot
/// is untouched (its peer hears only what was written through its own handle).
/// Issue 11, safety: handles carry their loop.
#[test]
fn another_loops_stream_is_refused_with_not_found() {
    on_every_backend(|backend| {
        let mut a = new_loop(backend);
        let mut b = new_loop(backend);
        let (addr_a, _accepted_a) = blocking_peer();
        let (addr_b, accepted_b) = blocking_peer();
        let a_conn = loop_connect(&mut a, addr_a);
        let b_conn = loop_connect(&mut b, addr_b);
        assert_eq!(Handle::from(a_conn).id(), Handle::from(b_conn).id());
        let mut remote_b = accepted_b.recv().unwrap();
        let kind = |r: std::io::Result<()>| r.map_err(|e| e.kind());
        let not_found = Err(ErrorKind::NotFound);
        assert_eq!(kind(b.write(a_conn, b"wrong loop")), not_found);
        assert_eq!(
            kind(b.write_then(a_conn, b"wrong", |_, _, _| {})),
            not_found
        );
        assert_eq!(kind(b.read_start(a_conn, |_, _, _| {})), not_found);
        assert_eq!(kind(b.shutdown(a_conn, |_, _, _| {})), not_found);
        assert!(!b.read_stop(a_conn));
        assert!(!b.unref_handle(a_conn));
        assert!(!b.close(a_conn));
        let heard = Rc::new(Cell::new(false));
        let h = heard.clone();
        b.read_start(b_conn, move |_, _, _| h.set(true))
            .expect("b's stream was not started by the foreign read_start");
        assert!(b.has_ref(b_conn));
        b.write(b_conn, b"right").unwrap();
        b.close(b_conn);
        b.run(RunMode::Default).unwrap();
        let mut got = Vec::new();
        remote_b.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"right");
        assert!(a.close(a_conn), "a's stream is still a's to close");
        a.run(RunMode::Default).unwrap();
    });
}
