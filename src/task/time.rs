//! Time as futures: `sleep` on the timing wheel, `timeout` as a race against a sleep,
//! and `yield_now`.

use super::race::{race, Either};
use super::reactor::{self, Note, Reactor, Waiting};
use crate::handle::Timer;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// What the timer callback and the `Sleep` share.
#[derive(Default)]
struct Shared {
    /// Set by the loop when it has armed the timer.
    timer: Option<Timer>,
    fired: bool,
    waker: Option<Waker>,
}

/// A future that is ready `after` its first poll: a one-shot timer on the loop's
/// wheel, never early. Dropping it before it fires clears the timer. The timer is
/// unref'd: the task waiting on it is what holds the loop.
pub struct Sleep {
    after: Duration,
    /// From the first poll: the loop to ask, and the cell its timer callback fills.
    armed: Option<(Rc<Reactor>, Rc<RefCell<Shared>>)>,
    /// The deadline, for `explain_alive` (the timer itself is on the wheel).
    until: Option<Instant>,
    /// What it told the loop it waits on, while it waits.
    note: Option<Note>,
}

/// Sleep for `after` (measured from the first poll). Polled outside a looplab task,
/// it returns an error.
pub fn sleep(after: Duration) -> Sleep {
    Sleep {
        after,
        armed: None,
        until: None,
        note: None,
    }
}

/// Ask the loop to arm a timer whose callback marks `shared` fired and wakes the waker
/// stored there at that moment.
fn arm(r: &Reactor, after: Duration, shared: Rc<RefCell<Shared>>) {
    r.ask(move |lp| {
        let fired = shared.clone();
        let t = lp.set_timeout(after, move |_, _| {
            let mut s = fired.borrow_mut();
            s.fired = true;
            s.timer = None;
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        });
        lp.unref_handle(t);
        shared.borrow_mut().timer = Some(t);
    });
}

impl Future for Sleep {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = reactor::current("task::sleep")?;
        if self.armed.is_none() {
            let shared = Rc::new(RefCell::new(Shared::default()));
            arm(&r, self.after, shared.clone());
            self.armed = Some((r.clone(), shared));
            self.until = Instant::now().checked_add(self.after);
        }
        let Some((_, shared)) = &self.armed else {
            return Poll::Pending; // just set above
        };
        let mut s = shared.borrow_mut();
        if s.fired {
            drop(s);
            return Poll::Ready(Ok(()));
        }
        reactor::store_waker(&mut s.waker, cx);
        drop(s);
        let until = r.note_deadline(self.until.unwrap_or_else(Instant::now));
        self.note = Some(r.waits_on(Waiting::Sleep(until)));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        let Some((r, shared)) = self.armed.take() else {
            return; // never polled: no timer was asked for
        };
        if shared.borrow().fired {
            return;
        }
        // The loop acts on asks in order: by then the timer this sleep asked for is armed.
        r.ask(move |lp| {
            if let Some(t) = shared.borrow_mut().timer.take() {
                lp.clear_timer(t);
            }
        });
    }
}

/// Run `fut` with a deadline: its output, or an error of kind `TimedOut` if `after`
/// passes first (then `fut` is dropped, which cancels whatever it was waiting on).
/// Written as what it is: a race between `fut` and a sleep.
pub async fn timeout<F: Future>(after: Duration, fut: F) -> io::Result<F::Output> {
    match race(fut, sleep(after)).await {
        Either::Left(out) => Ok(out),
        Either::Right(Ok(())) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out after {} ms", after.as_millis()),
        )),
        Either::Right(Err(e)) => Err(e),
    }
}

/// Let the loop run other work once: wakes its own task and returns `Pending` the first
/// time. A long computation that calls this between steps no longer blocks the loop
/// for its whole length (the trace shows one short poll per step instead of one long).
pub fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

/// The future of [`yield_now`].
pub struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
