//! # Chapter 11, Try 1 — three wakes, one poll
//!
//! Part 1 of `examples/14_hand_written_future.rs` (a `Doorbell` future, ready once a
//! timer callback rings its bell), with a knock before the ring: 100 ms from now a
//! timer callback calls the stored waker's `wake_by_ref()` three times without ringing,
//! and 100 ms later another rings and wakes as example 14's does. Three wakes of one
//! waker before the loop gets round to the task: the first sets the task's
//! `queued_here` flag and puts it on the ready list; the other two find the flag set
//! and do nothing. So the knock costs one poll, not three. The flag is cleared just
//! before that poll, so a wake during it would queue the task again.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example ch11_try1`
//!
//! **Look for** `timer: knock (three wakes, no ring)`, then one poll, `poll #2: not rung
//! -> Pending (waker stored)`, then the ring and `poll #3: rung -> Ready`: `done after
//! 3 polls` (without the flag it would be 5). In the trace, the knock's tick is followed
//! by one `tasks: polled 1 — #2.3 woken by timer #0.1`, and the ring's by
//! `#2.3 woken by timer #1.2 (finished)`.

use looplab::Loop;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// What the ringer and the future share.
#[derive(Default)]
struct Bell {
    rung: bool,
    waker: Option<Waker>,
}

/// Ready once its bell has been rung; stores the waker of every `Pending` poll.
struct Doorbell {
    bell: Rc<RefCell<Bell>>,
    polls: u32,
}

impl Future for Doorbell {
    type Output = u32;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
        self.polls += 1;
        let mut bell = self.bell.borrow_mut();
        if bell.rung {
            println!("  poll #{}: rung -> Ready", self.polls);
            return Poll::Ready(self.polls);
        }
        bell.waker = Some(cx.waker().clone());
        println!("  poll #{}: not rung -> Pending (waker stored)", self.polls);
        Poll::Pending
    }
}

fn main() -> std::io::Result<()> {
    let mut lp = Loop::new()?;
    println!("1. a knock 100 ms from now, then a ring 100 ms later");
    let bell = Rc::new(RefCell::new(Bell::default()));
    let knocker = bell.clone();
    lp.set_timeout(Duration::from_millis(100), move |_, _| {
        if let Some(w) = &knocker.borrow().waker {
            println!("  timer: knock (three wakes, no ring)");
            w.wake_by_ref();
            w.wake_by_ref();
            w.wake_by_ref();
        }
    });
    let ringer = bell.clone();
    lp.set_timeout(Duration::from_millis(200), move |_, _| {
        let mut b = ringer.borrow_mut();
        b.rung = true;
        if let Some(w) = b.waker.take() {
            println!("  timer: ring, and wake the task");
            w.wake();
        }
    });
    let polls = lp.block_on(Doorbell { bell, polls: 0 })?;
    println!("  done after {polls} polls");
    Ok(())
}
