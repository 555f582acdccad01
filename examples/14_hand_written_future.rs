//! # 14 — A future written by hand: `poll`, `Pending`, and the waker
//!
//! **What it shows.** `async`/`await` is sugar over one method: `Future::poll`, which
//! answers `Ready(value)` or `Pending`. A future that answers `Pending` must first store
//! `cx.waker()` where the thing it waits for will find it, because the loop will not
//! poll it again until that waker is called. Here a `Doorbell` future waits to be rung:
//! 1. by a timer callback on the loop (the callback rings and wakes the stored waker);
//! 2. by another thread (its wake goes through the self-pipe, like an async send);
//! 3. with `--forget`, the future "forgets" to store the waker: nothing can ever wake it.
//!    A loop that waited for it would hang forever; `block_on` notices that nobody holds
//!    the task's waker and returns an error instead.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example 14_hand_written_future`, then again
//! with `-- --forget`.
//!
//! **Look for** each `poll #n` line of the future, and in the trace the wake path:
//! `tasks: polled 1 — #1.2 woken by spawn` (the first poll; the task is handle #1.2),
//! the loop asleep for the timer (`sleeping up to 100.7ms`), then
//! `tasks: polled 1 — #1.2 woken by timer #0.1 (finished)`: the timer's callback called
//! the waker. For the second bell the loop sleeps with no timer at all, until
//! `events: wake-pipe fd N r` and `woken by another thread (finished)`. With
//! `--forget`: `note: task #1.2 returned Pending but kept no waker: nothing can wake it
//! again`, and `block_on` returns that error at once instead of hanging.
//!
//! **In production** you rarely write `poll` yourself: you `.await` futures that do it
//! (`task::sleep`, `conn.read(..)`); this is what they do inside. A real waker slot also
//! replaces a stored waker that does not `will_wake` the new one (see `src/task/reactor.rs`,
//! `store_waker`): a future can move from one task to another between polls.

use looplab::Loop;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// What the ringer and the future share. On one thread an `Rc<RefCell<..>>` will do.
#[derive(Default)]
struct Bell {
    rung: bool,
    waker: Option<Waker>,
}

/// Ready once its bell has been rung.
struct Doorbell {
    bell: Rc<RefCell<Bell>>,
    store_waker: bool,
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
        if self.store_waker {
            // The whole contract: before saying Pending, leave a way to be woken.
            bell.waker = Some(cx.waker().clone());
            println!("  poll #{}: not rung -> Pending (waker stored)", self.polls);
        } else {
            println!(
                "  poll #{}: not rung -> Pending (waker NOT stored)",
                self.polls
            );
        }
        Poll::Pending
    }
}

/// The same bell, rung from another thread: shared through `Arc<Mutex<..>>`.
#[derive(Default)]
struct RemoteBell {
    rung: bool,
    waker: Option<Waker>,
}

struct RemoteDoorbell(Arc<Mutex<RemoteBell>>);

impl Future for RemoteDoorbell {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // A poisoned lock means the ringing thread panicked: say it was rung anyway.
        let mut bell = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if bell.rung {
            println!("  remote poll: rung -> Ready");
            return Poll::Ready(());
        }
        bell.waker = Some(cx.waker().clone());
        println!("  remote poll: not rung -> Pending (waker stored)");
        Poll::Pending
    }
}

fn main() -> std::io::Result<()> {
    let forget = std::env::args().any(|a| a == "--forget");
    let mut lp = Loop::new()?;

    println!("1. a bell rung by a timer callback, 100 ms from now");
    let bell = Rc::new(RefCell::new(Bell::default()));
    let ringer = bell.clone();
    lp.set_timeout(Duration::from_millis(100), move |_, _| {
        let mut b = ringer.borrow_mut();
        b.rung = true;
        match b.waker.take() {
            Some(w) => {
                println!("  timer: ring, and wake the task");
                w.wake();
            }
            None => println!("  timer: ring... but there is no waker to call"),
        }
    });
    let doorbell = Doorbell {
        bell,
        store_waker: !forget,
        polls: 0,
    };
    match lp.block_on(doorbell) {
        Ok(polls) => println!("  done after {polls} polls\n"),
        Err(e) => {
            println!("  {e}");
            return Ok(());
        }
    }

    println!("2. a bell rung by another thread, 100 ms from now");
    let remote = Arc::new(Mutex::new(RemoteBell::default()));
    let r = remote.clone();
    let thread = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        let mut b = r.lock().unwrap_or_else(|p| p.into_inner());
        b.rung = true;
        if let Some(w) = b.waker.take() {
            println!("  other thread: ring, and wake the task (through the self-pipe)");
            w.wake();
        }
    });
    lp.block_on(RemoteDoorbell(remote))?;
    let _ = thread.join();
    println!("  done");
    Ok(())
}
