//! # 14 — A future written by hand: `poll`, `Pending`, and the waker
//!
//! **What it shows.** `async`/`await` is sugar over one method: `Future::poll`, which
//! answers `Ready(value)` or `Pending`. A future that answers `Pending` must first store
//! `cx.waker()` where the thing it waits for will find it, because the loop will not
//! poll it again until that waker is called. Here a `Doorbell` future waits to be rung:
//! 1. by a timer callback on the loop (the callback rings and wakes the stored waker);
//! 2. by another thread (its wake goes through the self-pipe, like an async send);
//! 3. then 300 ms of work in a task, once in one poll and once yielding every 5 ms
//!    (`task::yield_now`): the mistake of a future that never yields, and its cure.
//!
//! And the two classic mistakes with wakers, one flag each:
//! - `--forget`: the doorbell never stores the waker. Nothing can ever wake it; a loop
//!   that waited for it would hang. `block_on` sees that nobody holds the task's waker
//!   and returns an error instead.
//! - `--stale`: it stores a waker on its first poll only. Task A polls it first, then
//!   hands it to task B: the bell holds A's waker, a stale one, and B's is held nowhere.
//!
//! Two more flags: `--pool` runs only a task that awaits a file read on the thread pool
//! (`task::fs::read`): the worker's result comes back through the self-pipe and wakes
//! the task. `--watchdog` runs everything with the watchdog on (150 ms), which names the
//! task of part 3 while its long poll runs.
//!
//! **Run it.** `LOOPLAB_TRACE=1 cargo run --example 14_hand_written_future`, then again
//! with `-- --forget`, `-- --stale`, `-- --pool` and `-- --watchdog`.
//!
//! **Look for** each `poll #n` line of the future, and in the trace the wake path:
//! `tasks: polled 1 — #1.2 woken by spawn` (the first poll; the task is handle #1.2),
//! the loop asleep for the timer (`sleeping up to 100.7ms`), then
//! `tasks: polled 1 — #1.2 woken by timer #0.1 (finished)`: the timer's callback called
//! the waker. For the second bell the loop sleeps with no timer at all, until
//! `events: wake-pipe fd N r` and `woken by another thread (finished)`. In part 3,
//! `slow callback: task #0.5 (one poll) took 300.2ms` and an interval that waited 300 ms;
//! yielding, 60 short polls (`woken by itself`) and the interval at most a step or two
//! late (`waited up to 10 ms`). With `--forget`: `note: task #1.2 returned Pending but
//! kept no waker: nothing can wake it again`, and `block_on` returns that error at once
//! instead of hanging; with `--stale` the same note names task B (`#2.3`), polled a
//! second time without storing its waker.
//! With `--pool`: `events: wake-pipe fd 4 r`, then `1 pool completion(s) | tasks: polled
//! 1 — #0.1 woken by the pool (finished)`. With `--watchdog`, on stderr during part 3:
//! `looplab watchdog: task #0.5 has run 174 ms in one poll, blocking the loop in the
//! tasks phase` (the watchdog looks every 150/4 ms, so the figure lies between 150 and
//! about 190).
//!
//! **In production** you rarely write `poll` yourself: you `.await` futures that do it
//! (`task::sleep`, `conn.read(..)`); this is what they do inside. Their waker slots
//! store the waker of every `Pending` poll, replacing one that does not `will_wake` the
//! new one (`store_waker` in `src/task/reactor.rs`): the cure for `--stale`.

use looplab::{task, Loop};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// What the ringer and the future share. On one thread an `Rc<RefCell<..>>` will do.
#[derive(Default)]
struct Bell {
    rung: bool,
    waker: Option<Waker>,
}

/// When the doorbell stores the waker it is polled with.
#[derive(PartialEq)]
enum Store {
    /// Every time it returns `Pending`: right.
    EveryPoll,
    /// `--forget`: never. Nothing can wake it.
    Never,
    /// `--stale`: on its first poll only. A waker of the task it was first polled in.
    FirstPollOnly,
}

/// Ready once its bell has been rung.
struct Doorbell {
    bell: Rc<RefCell<Bell>>,
    store: Store,
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
        let store = match self.store {
            Store::EveryPoll => true,
            Store::Never => false,
            Store::FirstPollOnly => self.polls == 1,
        };
        if store {
            // The whole contract: before saying Pending, leave a way to be woken.
            bell.waker = Some(cx.waker().clone());
            println!("  poll #{}: not rung -> Pending (waker stored)", self.polls);
        } else {
            let n = self.polls;
            println!("  poll #{n}: not rung -> Pending (waker NOT stored)");
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

/// Part 3: 60 steps of 5 ms of work. Without `yield_now` it is one poll of 300 ms,
/// and nothing else on the loop runs meanwhile; with it, 60 polls of 5 ms.
async fn busy(yielding: bool) {
    for _ in 0..60 {
        let step = Instant::now();
        while step.elapsed() < Duration::from_millis(5) {
            std::hint::spin_loop();
        }
        if yielding {
            task::yield_now().await;
        }
    }
}

fn part3(lp: &mut Loop, yielding: bool) -> std::io::Result<()> {
    // A 5 ms interval beside the work: how long did it go without running?
    let longest = Rc::new(Cell::new(Duration::ZERO));
    let (l, mut last) = (longest.clone(), Instant::now());
    let ticker = lp.set_interval(Duration::from_millis(5), move |_, _| {
        l.set(l.get().max(last.elapsed()));
        last = Instant::now();
    });
    lp.block_on(busy(yielding))?;
    lp.clear_timer(ticker);
    let how = if yielding {
        "yielding every 5 ms"
    } else {
        "one 300 ms poll"
    };
    let gap = longest.get().as_millis();
    println!("  {how}: the 5 ms interval beside it waited up to {gap} ms");
    Ok(())
}

/// `--stale`: the doorbell stores a waker on its first poll only. Task A polls it once,
/// then hands it to task B (the one `block_on` runs), which awaits it: the bell holds
/// A's waker, a stale one, and nothing holds B's.
fn stale(lp: &mut Loop, bell: Rc<RefCell<Bell>>) -> std::io::Result<()> {
    let handed: Rc<RefCell<Option<Pin<Box<Doorbell>>>>> = Rc::default();
    let h = handed.clone();
    let mut doorbell = Some(Box::pin(Doorbell {
        bell,
        store: Store::FirstPollOnly,
        polls: 0,
    }));
    let a = lp.spawn(std::future::poll_fn(move |cx| {
        if let Some(mut d) = doorbell.take() {
            let _ = d.as_mut().poll(cx); // stores A's waker
            *h.borrow_mut() = Some(d); // ...and moves on to B
        }
        Poll::<()>::Pending
    }));
    lp.unref_handle(&a);
    let b = async move {
        task::yield_now().await; // let A poll it first
        let doorbell = handed.borrow_mut().take();
        match doorbell {
            Some(d) => d.await,
            None => 0,
        }
    };
    match lp.block_on(b) {
        Ok(polls) => println!("  done after {polls} polls"),
        Err(e) => println!("  {e}"),
    }
    Ok(())
}

/// A bell a timer callback rings 100 ms from now, waking whatever waker is stored then.
fn timer_bell(lp: &mut Loop) -> Rc<RefCell<Bell>> {
    let bell = Rc::new(RefCell::new(Bell::default()));
    let ringer = bell.clone();
    lp.set_timeout(Duration::from_millis(100), move |_, _| {
        let mut b = ringer.borrow_mut();
        b.rung = true;
        match b.waker.take() {
            Some(w) => {
                println!("  timer: ring, and wake the task that stored its waker");
                w.wake();
            }
            None => println!("  timer: ring... but there is no waker to call"),
        }
    });
    bell
}

/// Part 2: the same, rung by another thread.
fn part2(lp: &mut Loop) -> std::io::Result<()> {
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
    Ok(())
}

/// `--pool`: a task awaits a file read on the thread pool. No waker of ours here: the
/// pool future stores it, and the completion, run on the loop thread, wakes it.
fn pool(lp: &mut Loop) -> std::io::Result<()> {
    println!("a file read on the pool, awaited by a task");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let bytes = lp.block_on(task::fs::read(path))??;
    println!("  read {} bytes of Cargo.toml", bytes.len());
    Ok(())
}

fn main() -> std::io::Result<()> {
    let flag = |f: &str| std::env::args().any(|a| a == f);
    let mut lp = if flag("--watchdog") {
        Loop::builder()
            .watchdog(Duration::from_millis(150))
            .build()?
    } else {
        Loop::new()?
    };
    if flag("--pool") {
        return pool(&mut lp);
    }

    println!("1. a bell rung by a timer callback, 100 ms from now");
    let bell = timer_bell(&mut lp);
    if flag("--stale") {
        return stale(&mut lp, bell);
    }
    let store = if flag("--forget") {
        Store::Never
    } else {
        Store::EveryPoll
    };
    let doorbell = Doorbell {
        bell,
        store,
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
    part2(&mut lp)?;
    println!("  done\n");

    println!("3. 300 ms of work in a task: in one poll, then yielding every 5 ms");
    part3(&mut lp, false)?;
    part3(&mut lp, true)
}
