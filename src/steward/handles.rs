//! The steward with callbacks: a ward made of loop handles, stopped by closing them.
//!
//! Same rules as the task form (one timer, due at the last beat plus the deadline; a
//! bound of restarts per window; doubling backoff), the other way round: the ward is
//! whatever its `start` callback opens (an interval, a stream, a child process) and
//! returns as a list of handles, and stopping it is `lp.close` on each of them, as
//! dropping is for a future. A closed handle's callbacks never run again, so a wedged
//! ward cannot beat, write or answer after it was stopped.
//!
//! The steward's timer is ref'd: it holds the loop while it watches, and across the
//! backoff when the ward has no handle open. It is cleared when the steward gives up
//! or is stopped, so a loop with nothing else to do then exits.

use super::{Failure, Heartbeat, Steward};
use crate::event_loop::Loop;
use crate::handle::{Handle, Timer};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

type Start = Box<dyn FnMut(&mut Loop, Heartbeat) -> io::Result<Vec<Handle>>>;
type Done = Box<dyn FnOnce(&mut Loop, io::Result<u32>)>;

struct Watch {
    steward: Steward,
    /// Taken while it runs (it is user code: it may call back into the steward).
    start: Option<Start>,
    /// Taken when the watch ends: then every late callback does nothing.
    done: Option<Done>,
    ward: Vec<Handle>,
    hb: Heartbeat,
    timer: Option<Timer>,
    recent: VecDeque<Instant>,
    restarts: u32,
}

/// A ward of handles under a steward (see [`Steward::watch_handles`]).
#[derive(Clone)]
pub struct Stewarded(Rc<RefCell<Watch>>);

impl Steward {
    /// The callback form of [`Steward::watch`]: `start(lp, heartbeat)` opens the ward's
    /// handles and returns them; the steward closes them all when the ward misses its
    /// deadline, and calls `start` again after the backoff. `start` returning `Err`
    /// counts as a failure too. `done(lp, Err(..))` when the steward gives up, or
    /// `done(lp, Ok(restarts))` after [`Stewarded::stop`]; exactly once.
    pub fn watch_handles(
        self,
        lp: &mut Loop,
        start: impl FnMut(&mut Loop, Heartbeat) -> io::Result<Vec<Handle>> + 'static,
        done: impl FnOnce(&mut Loop, io::Result<u32>) + 'static,
    ) -> Stewarded {
        let w = Stewarded(Rc::new(RefCell::new(Watch {
            steward: self,
            start: Some(Box::new(start)),
            done: Some(Box::new(done)),
            ward: Vec::new(),
            hb: Heartbeat::new(),
            timer: None,
            recent: VecDeque::new(),
            restarts: 0,
        })));
        w.start_ward(lp);
        w
    }
}

impl Stewarded {
    /// End the watch: close the ward's handles, clear the steward's timer, and
    /// `done(lp, Ok(restarts so far))` (if it was not called already).
    pub fn stop(&self, lp: &mut Loop) {
        self.stop_ward(lp);
        let restarts = self.restarts();
        self.finish(lp, Ok(restarts));
    }

    /// Restarts so far.
    pub fn restarts(&self) -> u32 {
        self.0.borrow().restarts
    }

    fn start_ward(&self, lp: &mut Loop) {
        let hb = Heartbeat::new();
        let (start, run, name) = {
            let mut w = self.0.borrow_mut();
            w.hb = hb.clone();
            (w.start.take(), w.restarts + 1, w.steward.name.clone())
        };
        let Some(mut start) = start else {
            return; // called from inside `start` itself: nothing to do twice
        };
        note(lp, format!("steward {name:?}: ward started (run {run})"));
        let opened = start(lp, hb);
        self.0.borrow_mut().start = Some(start);
        let stopped = self.0.borrow().done.is_none(); // `start` called `stop`
        match opened {
            Ok(handles) if stopped => {
                for h in handles {
                    lp.close(h);
                }
            }
            Ok(handles) => {
                let deadline = self.0.borrow().steward.deadline;
                self.0.borrow_mut().ward = handles;
                self.arm(lp, deadline, Stewarded::check);
            }
            Err(_) if stopped => {}
            Err(e) => self.failed(lp, Failure::Failed(e)),
        }
    }

    /// The timer fired: silent for the deadline, or not yet (then look again later).
    fn check(&self, lp: &mut Loop) {
        let (silent, deadline) = {
            let w = self.0.borrow();
            (w.hb.last.get().elapsed(), w.steward.deadline)
        };
        if silent < deadline {
            self.arm(lp, deadline - silent, Stewarded::check);
        } else {
            self.failed(lp, Failure::Missed(silent));
        }
    }

    /// Stop the ward, then restart it after the backoff, or give up.
    fn failed(&self, lp: &mut Loop, failure: Failure) {
        self.stop_ward(lp);
        let next = {
            let w = &mut *self.0.borrow_mut();
            let mut lines = Vec::new();
            let next = w
                .steward
                .next_restart(&mut w.recent, failure, |l| lines.push(l));
            (next, lines)
        };
        for line in next.1 {
            note(lp, line);
        }
        match next.0 {
            Ok(wait) => {
                self.0.borrow_mut().restarts += 1;
                self.arm(lp, wait, Stewarded::start_ward);
            }
            Err(e) => self.finish(lp, Err(e)),
        }
    }

    fn stop_ward(&self, lp: &mut Loop) {
        let (ward, timer) = {
            let mut w = self.0.borrow_mut();
            (std::mem::take(&mut w.ward), w.timer.take())
        };
        for h in ward {
            lp.close(h);
        }
        if let Some(t) = timer {
            lp.clear_timer(t);
        }
    }

    /// The steward's one timer: after `after`, `then(self, lp)`.
    fn arm(&self, lp: &mut Loop, after: Duration, then: fn(&Stewarded, &mut Loop)) {
        if self.0.borrow().done.is_none() {
            return; // stopped from inside `start`
        }
        let me = self.clone();
        let t = lp.set_timeout(after, move |lp, _| {
            me.0.borrow_mut().timer = None;
            then(&me, lp);
        });
        if let Some(old) = self.0.borrow_mut().timer.replace(t) {
            lp.clear_timer(old);
        }
    }

    fn finish(&self, lp: &mut Loop, result: io::Result<u32>) {
        let done = self.0.borrow_mut().done.take();
        if let Some(done) = done {
            done(lp, result);
        }
    }
}

fn note(lp: &mut Loop, line: String) {
    if lp.tracer.enabled {
        lp.tracer.note(line);
    }
}
