//! # 01b — `set_timeout(0)` or `set_immediate`: which runs first?
//!
//! **What it shows.** Node's guide to the event loop centres on this question, and the
//! answer depends on *where* you ask it, because it depends on which phase of the tick is
//! running. The example asks it four times, each on a fresh loop: from the main program
//! (before `run`), from an I/O callback (a connection accepted, in the poll phase), from
//! a timer callback (the timers phase) and from an immediate (the check phase). Each callback prints the tick it ran in
//! (`lp.metrics().ticks`; tick 0 is the pass over due timers that `run` makes before
//! the first tick).
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example 01b_timeout_or_immediate`
//!
//! **Look for** on stdout:
//! - from the main program: `timeout (tick 0)`, then `immediate (tick 1)`. `run` fires
//!   what is due before its first poll, and a 0 ms timeout is due at once. Node gives no
//!   fixed answer here: its `setTimeout(0)` is really 1 ms, and whether that millisecond
//!   has passed when the loop first looks depends on how fast the process started;
//! - from an I/O callback: `immediate (tick 1)`, then `timeout (tick 1)`. The check
//!   phase follows the poll phase; the timers phase ends the tick. Node agrees on the
//!   order (immediate first, always), but runs the timeout one iteration later, since its
//!   timers phase opens the next iteration where looplab's closes this tick;
//! - from a timer callback: `immediate (tick 2)`, then `timeout (tick 2)`: a timer
//!   started in the timers phase is not in the batch being run, so both wait for the next
//!   tick, where the check phase comes before the timers phase (Node: immediate first
//!   too, in the same iteration's check phase);
//! - from an immediate: `timeout (tick 1)`, then `immediate (tick 2)`: the order flips.
//!   The check phase runs only the immediates queued before it began, so the new one
//!   waits for tick 2, while the timers phase at the end of tick 1 finds the timeout due.
//!
//! In the trace, the I/O case reads `events: fd N r -> listener #0.1` on the poll line and
//! `immediates 1 | ... | timers fired #3.4` on the same tick's `done` line.
//!
//! **In production** do not build on this order: if B must follow A, start B from A's
//! callback. `set_immediate` means "after this poll's callbacks"; a 0 ms timeout means
//! "at the next timers phase", and the two differ across runtimes.

use looplab::{Loop, RunMode};
use std::cell::RefCell;
use std::io;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

/// What ran, in order: "timeout (tick 0)" and the like.
type Order = Rc<RefCell<Vec<String>>>;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("01b_timeout_or_immediate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
    show("from the main program", |lp, order| {
        both(lp, &order);
        Ok(())
    })?;
    show(
        "from an I/O callback (a connection accepted)",
        |lp, order| {
            let listener = lp.tcp_listen(([127, 0, 0, 1], 0).into(), move |lp, l, accepted| {
                both(lp, &order);
                if let Ok(conn) = accepted {
                    lp.close(conn);
                }
                lp.close(l);
            })?;
            let addr = lp.local_addr(listener)?;
            lp.tcp_connect(addr, |lp, conn, _| {
                lp.close(conn);
            })?;
            Ok(())
        },
    )?;
    show("from a timer callback", |lp, order| {
        lp.set_timeout(Duration::from_millis(10), move |lp, _| both(lp, &order));
        Ok(())
    })?;
    show("from an immediate", |lp, order| {
        lp.set_immediate(move |lp, _| both(lp, &order));
        Ok(())
    })
}

/// Ask the question: a 0 ms timeout, then an immediate, each noting when it ran.
fn both(lp: &mut Loop, order: &Order) {
    let o = order.clone();
    lp.set_timeout(Duration::ZERO, move |lp, _| note(lp, &o, "timeout"));
    let o = order.clone();
    lp.set_immediate(move |lp, _| note(lp, &o, "immediate"));
}

fn note(lp: &Loop, order: &Order, what: &str) {
    order
        .borrow_mut()
        .push(format!("{what} (tick {})", lp.metrics().ticks));
}

/// A fresh loop, `setup` on it, run to the end, and the order printed.
fn show(label: &str, setup: impl FnOnce(&mut Loop, Order) -> io::Result<()>) -> io::Result<()> {
    let mut lp = Loop::new()?;
    let order: Order = Rc::default();
    setup(&mut lp, order.clone())?;
    lp.run(RunMode::Default)?;
    println!("{label}: {}", order.borrow().join(", then "));
    Ok(())
}
