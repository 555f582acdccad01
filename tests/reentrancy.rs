//! `run` is not reentrant (libuv's `uv_run` neither): called from inside one of the
//! loop's own callbacks it is refused with an error, and the run that is going on
//! finishes its work as if nothing had happened.

mod util;

use looplab::{Loop, RunMode, Tcp};
use std::cell::RefCell;
use std::io::Write as _;
use std::rc::Rc;
use std::time::Duration;
use util::tcp::{accepted_pairs, describe};
use util::{new_loop, on_every_backend};

type Log = Rc<RefCell<Vec<String>>>;

fn try_nested(lp: &mut Loop, mode: RunMode) -> String {
    match lp.run(mode) {
        Ok(alive) => format!("nested {mode:?} ran (alive: {alive})"),
        Err(_) => format!("nested {mode:?} refused"),
    }
}

/// `run` in every mode from a timer callback is refused, while a sibling timer of the
/// same batch is already off the wheel (a nested poll would wait for it forever); the
/// outer run then fires the sibling and returns, and the loop runs again afterwards.
/// Issue 11, safety: reentrancy.
#[test]
fn run_from_a_timer_callback_is_refused_and_the_outer_run_goes_on() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let log: Log = Rc::default();
        let l = log.clone();
        lp.set_timeout(Duration::ZERO, move |lp, _| {
            for mode in [RunMode::Default, RunMode::Once, RunMode::NoWait] {
                l.borrow_mut().push(try_nested(lp, mode));
            }
        });
        let l = log.clone();
        lp.set_timeout(Duration::ZERO, move |_, _| {
            l.borrow_mut().push("sibling".into())
        });
        util::fail_after(&mut lp, Duration::from_secs(20));
        assert!(!lp.run(RunMode::Default).unwrap());
        assert_eq!(
            *log.borrow(),
            [
                "nested Default refused",
                "nested Once refused",
                "nested NoWait refused",
                "sibling"
            ]
        );
        let l = log.clone();
        lp.set_timeout(Duration::from_millis(1), move |_, _| {
            l.borrow_mut().push("after".into())
        });
        assert!(!lp.run(RunMode::Default).unwrap(), "run works again");
        assert_eq!(log.borrow().last().map(String::as_str), Some("after"));
    });
}

/// `run` from a read callback is refused, and the other stream, whose data is ready in
/// the same phase, still reads it as data (a nested run used to find the loop's shared
/// read buffer lent out and report that stream as Eof). Issue 11, safety: reentrancy.
#[test]
fn run_from_a_read_callback_is_refused_and_other_streams_still_read_data() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let mut pairs = accepted_pairs(&mut lp, 2);
        let log: Log = Rc::default();
        let nested: Log = Rc::default();
        for (i, (conn, client)) in pairs.iter_mut().enumerate() {
            client.write_all(format!("from {i}").as_bytes()).unwrap();
            let (l, n) = (log.clone(), nested.clone());
            lp.read_start(*conn, move |lp, conn: Tcp, ev| {
                l.borrow_mut().push(format!("{i}: {}", describe(&ev)));
                if n.borrow().is_empty() {
                    let r = try_nested(lp, RunMode::NoWait);
                    n.borrow_mut().push(r);
                }
                lp.close(conn);
            })
            .unwrap();
        }
        util::fail_after(&mut lp, Duration::from_secs(20));
        assert!(!lp.run(RunMode::Default).unwrap());
        assert_eq!(*nested.borrow(), ["nested NoWait refused"]);
        let mut heard = log.borrow().clone();
        heard.sort();
        assert_eq!(heard, ["0: data from 0", "1: data from 1"]);
        drop(pairs);
    });
}
