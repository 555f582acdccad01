//! How a leaf future talks to the loop: it asks, the loop acts.
//!
//! `Future::poll` gets a `Context`, and a `Context` carries a waker and nothing else: no
//! `&mut Loop`. So a leaf future (`sleep`, `read`, `accept`...) cannot arm a timer or
//! start reading itself. Instead, while a task is polled, the loop's `Reactor` is
//! reachable from a thread-local, and the future *asks*: it queues an op, a closure
//! that takes `&mut Loop` ("arm a 120 ms timer and wake me", "start reading this
//! stream", "clear that timer"). Right after the task's poll returns, the loop *acts*:
//! it runs each op with its ordinary callback API. The callbacks those ops register put
//! their results in small `Rc<RefCell<..>>` cells shared with the future, and wake the
//! waker stored there. The reactor is a system call interface: the future is user
//! space, the ops are the calls, the loop is the kernel.
//!
//! A leaf future also notes what it waits on as it returns `Pending`; the loop keeps
//! the notes of a task's last poll with the task, for `explain_alive` ("tasks waiting
//! on: fd 9 readable, sleep 120 ms"). A task changes what it waits on only while it is
//! polled, so the notes of its last poll are always current. A stream's read waiting
//! by its task's handle is only counted (`note_by_handle`): its stream says what it
//! waits on.

use crate::event_loop::Loop;
use crate::handle::{Handle, Listener};
use crate::stream::READ_BUDGET;
use std::cell::{Cell, RefCell};
use std::io;
use std::num::NonZeroU64;
use std::rc::Rc;
use std::task::Waker;
use std::time::{Duration, Instant};

/// Something the loop does on a future's behalf, right after the poll that asked.
pub(crate) type Op = Box<dyn FnOnce(&mut Loop)>;

/// An op that is a shared object instead of a boxed closure, for asks made in every
/// poll (a stream's flush): asking costs a reference count, not an allocation.
pub(crate) trait Act {
    fn act(self: Rc<Self>, lp: &mut Loop);
}

/// One queued ask.
pub(crate) enum Ask {
    Once(Op),
    Shared(Rc<dyn Act>),
    /// Its place in a batch being acted on, once taken out to run.
    Done,
}

impl Ask {
    pub fn run(self, lp: &mut Loop) {
        match self {
            Ask::Once(op) => op(lp),
            Ask::Shared(who) => who.act(lp),
            Ask::Done => {}
        }
    }
}

/// What a leaf future waits on, in words for `explain_alive`.
#[derive(Clone, Debug)]
pub(crate) enum Waiting {
    /// The deadline, in ms after the reactor's `epoch` (an `Instant` would not fit).
    Sleep(u64),
    Readable(Handle),
    Writable(Handle),
    Accept(Listener),
    /// Boxed, like `Listen`: a note lives in the task's slot and must stay small.
    Connect(Box<std::net::SocketAddr>),
    Shutdown(Handle),
    Pool(PoolJob),
    Signal(i32),
    Join(Handle),
    /// A child process to exit (its pid).
    Exit(u32),
    Listen(Box<std::net::SocketAddr>),
}

impl Waiting {
    pub(crate) fn describe(&self, lp: &Loop) -> String {
        let fd = |h: Handle| {
            lp.fd_of(h)
                .map_or_else(|| h.to_string(), |fd| format!("fd {fd}"))
        };
        match self {
            Waiting::Sleep(until) => {
                let at = lp.tasks.reactor.epoch + Duration::from_millis(*until);
                format!(
                    "sleep {} ms",
                    at.saturating_duration_since(Instant::now()).as_millis()
                )
            }
            Waiting::Readable(h) => format!("{} readable", fd(*h)),
            Waiting::Writable(h) => format!("{} writable", fd(*h)),
            Waiting::Accept(l) => format!("{} accept", fd(l.0)),
            Waiting::Connect(addr) => format!("connect to {addr}"),
            Waiting::Shutdown(h) => format!("{} shutdown", fd(*h)),
            Waiting::Pool(job) => format!("the pool ({})", job.name()),
            Waiting::Signal(n) => format!("signal {n}"),
            // A task spawned from a task gets its handle after the spawner's poll.
            Waiting::Join(h) if *h == Handle::NONE => "a task it spawned".into(),
            Waiting::Join(h) => format!("task {h}"),
            Waiting::Exit(pid) => format!("pid {pid} to exit"),
            Waiting::Listen(addr) => format!("listen on {addr}"),
        }
    }
}

/// Which kind of job a pool future waits for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PoolJob {
    Offload,
    FsRead,
    FsWrite,
    FsStat,
    DnsLookup,
}

impl PoolJob {
    pub fn name(self) -> &'static str {
        match self {
            PoolJob::Offload => "task::offload",
            PoolJob::FsRead => "task::fs::read",
            PoolJob::FsWrite => "task::fs::write",
            PoolJob::FsStat => "task::fs::stat",
            PoolJob::DnsLookup => "task::dns::lookup",
        }
    }
}

/// Spare buffers kept for streams, at most...
const SPARE_BUFFERS: usize = 256;
/// ...and only ones no larger than this (a buffer grown by one bulk transfer is dropped).
const SPARE_BUFFER_MAX: usize = 64 * 1024;

/// The per-loop context leaf futures reach while a task is polled.
pub(crate) struct Reactor {
    /// In the order asked. A `Vec` taken whole by the loop (see `take_asks`): asks
    /// always land at the start of a buffer that is warm in the cache.
    asks: RefCell<Vec<Ask>>,
    /// The task being polled, if any.
    polling: Cell<Option<Handle>>,
    /// The `Waker` its poll was handed (the task's own): a leaf handed this one, not a
    /// combinator's, may wait by the task's handle instead (see `own_task`).
    polling_waker: Cell<WakerId>,
    /// `CURRENT` points at this reactor: kept here too, so a stream's every poll checks
    /// one flag of its own reactor instead of the thread-local.
    entered: Cell<bool>,
    /// Deadlines in notes count from here.
    pub epoch: Instant,
    /// What the leaf futures of the current poll wait on, each with its note's id.
    noted: RefCell<Vec<(u64, Waiting)>>,
    /// From 1, never 0: an `Option<NoteId>` is then one word in the leaf futures.
    next_note: Cell<NonZeroU64>,
    /// Notes older than this were handed over (or forgotten) already: a leaf dropping
    /// one has nothing to withdraw from `noted`.
    handed_over: Cell<u64>,
    /// Notes of the current poll kept out of `noted`: reads waiting by their task's
    /// handle (see `note_by_handle`).
    by_handle: Cell<u32>,
    /// Empty buffers, last returned first: a stream holds a buffer only while bytes sit
    /// in its outbox, so ten thousand idle streams hold none, and a busy one
    /// writes into a buffer that another stream just left warm in the cache.
    spare: RefCell<Vec<Vec<u8>>>,
    /// Reads a task's streams made themselves, and those that found nothing, for the
    /// loop's `metrics()` (the loop counts its own).
    pub reads: Cell<u64>,
    pub reads_empty: Cell<u64>,
    /// Reads left to the task being polled before its next read yields (wakes the task
    /// and answers `Pending`): a task reading a peer that never stops sending would
    /// otherwise keep the loop to itself, since each such read is `Ready` at once. The
    /// loop's own read callbacks stop at the same count, `READ_BUDGET`; tokio's tasks
    /// have such a budget too.
    read_budget: Cell<usize>,
}

thread_local! {
    /// The reactor of the loop whose task is being polled on this thread.
    static CURRENT: RefCell<Option<Rc<Reactor>>> = const { RefCell::new(None) };
}

impl Reactor {
    pub fn new() -> Rc<Reactor> {
        Rc::new(Reactor {
            asks: RefCell::new(Vec::new()),
            polling: Cell::new(None),
            polling_waker: Cell::new(WakerId::NONE),
            entered: Cell::new(false),
            noted: RefCell::new(Vec::new()),
            epoch: Instant::now(),
            next_note: Cell::new(NonZeroU64::MIN),
            handed_over: Cell::new(0),
            by_handle: Cell::new(0),
            spare: RefCell::new(Vec::new()),
            reads: Cell::new(0),
            reads_empty: Cell::new(0),
            read_budget: Cell::new(READ_BUDGET),
        })
    }

    /// An empty buffer: a spare one if there is one.
    #[inline]
    pub fn buffer(&self) -> Vec<u8> {
        self.spare.borrow_mut().pop().unwrap_or_default()
    }

    /// Give an emptied buffer back for the next stream that needs one.
    #[inline]
    pub fn recycle(&self, mut buf: Vec<u8>) {
        let mut spare = self.spare.borrow_mut();
        if buf.capacity() > 0 && buf.capacity() <= SPARE_BUFFER_MAX && spare.len() < SPARE_BUFFERS {
            buf.clear();
            spare.push(buf);
        }
    }

    /// Queue `op` for the loop: it runs right after the current poll returns (or, asked
    /// outside a poll, as the next tasks phase begins).
    pub fn ask(&self, op: impl FnOnce(&mut Loop) + 'static) {
        self.asks.borrow_mut().push(Ask::Once(Box::new(op)));
    }

    /// `ask`, for an op that is an object (see [`Act`]).
    pub fn ask_act(&self, who: Rc<dyn Act>) {
        self.asks.borrow_mut().push(Ask::Shared(who));
    }

    /// Every ask so far, oldest first, swapped with `spare` (empty; its buffer is
    /// reused). An op run from the batch may ask for more: those make the next batch.
    pub fn take_asks(&self, spare: &mut Vec<Ask>) {
        std::mem::swap(&mut *self.asks.borrow_mut(), spare);
    }

    /// The ask, if exactly one is queued.
    #[inline]
    pub fn take_only_ask(&self) -> Option<Ask> {
        let mut asks = self.asks.borrow_mut();
        if asks.len() == 1 {
            asks.pop()
        } else {
            None
        }
    }

    /// Asks a panic cut short: they go first, before any asked since.
    pub fn put_back(&self, rest: impl Iterator<Item = Ask>) {
        let mut asks = self.asks.borrow_mut();
        let newer = std::mem::take(&mut *asks);
        asks.extend(rest);
        asks.extend(newer);
    }

    #[inline]
    pub fn asks_waiting(&self) -> usize {
        self.asks.borrow().len()
    }

    /// A deadline as a sleep's note holds it: whole ms after `epoch`.
    pub fn note_deadline(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
    }

    /// The task being polled (`None` outside a poll).
    #[inline]
    pub fn polling(&self) -> Option<Handle> {
        self.polling.get()
    }

    /// Note that the task being polled waits on `what` (a leaf future says so as it
    /// returns `Pending`). After the poll the loop keeps the notes with the task: they
    /// are what it waits on until its next poll. The leaf keeps the returned `Note`: if
    /// it is dropped later in the same poll (the loser of a race), the note goes too.
    #[inline]
    pub fn waits_on(self: &Rc<Self>, what: Waiting) -> Note {
        Note {
            reactor: self.clone(),
            id: self.note(what),
        }
    }

    /// `waits_on` for a leaf that holds the reactor already and withdraws the note in
    /// its own `Drop` (`withdraw`): a stream's `read`, on every round trip, skips the
    /// reference count of a `Note`.
    #[inline]
    pub fn note(&self, what: Waiting) -> NoteId {
        let id = self.next_note.get();
        self.next_note.set(id.saturating_add(1));
        self.noted.borrow_mut().push((id.get(), what));
        NoteId(id)
    }

    /// `note` for a read that waits by its task's handle (`Reader::Task`): the stream's
    /// reader slot holds the handle, so the stream says what the task waits on
    /// (`Loop::tasks_waiting_on` asks it) and the note only counts. A round trip of the
    /// echo waits this way once: it writes a count, not a `Waiting` into `noted` and
    /// back out into the task's slot.
    #[inline]
    pub fn note_by_handle(&self) -> NoteId {
        let id = self.next_note.get();
        self.next_note.set(id.saturating_add(1));
        self.by_handle.set(self.by_handle.get().saturating_add(1));
        NoteId(id)
    }

    /// Withdraw a note, if it is still one of the current poll's.
    #[inline]
    pub fn withdraw(&self, note: NoteId) {
        let note = note.0.get();
        if note < self.handed_over.get() {
            return; // a note of an earlier poll: the task's slot holds it, not `noted`
        }
        self.withdraw_current(note);
    }

    /// A note of the current poll withdrawn (a leaf dropped in the poll that noted it):
    /// out of line, it is the rare case.
    #[inline(never)]
    fn withdraw_current(&self, note: u64) {
        let mut noted = self.noted.borrow_mut();
        match noted.iter().position(|(id, _)| *id == note) {
            Some(i) => {
                noted.swap_remove(i);
            }
            // Not in `noted`: it was counted (`note_by_handle`).
            None => self.by_handle.set(self.by_handle.get().saturating_sub(1)),
        }
    }

    /// Hand this poll's notes over (into `waits`, whose old notes are dropped), and
    /// say whether a read waits by the task's handle (its note was only counted).
    /// The first note is kept whole, the others counted: a note lives in the task's
    /// handle slot, which the poll has just touched anyway. Always inlined: the poll that
    /// calls it is itself inlined into `poll_one`, and LLVM then kept this out of line.
    #[inline(always)]
    pub fn take_notes(&self, first: &mut Option<Waiting>, more: &mut u16) -> bool {
        let by_handle = self.by_handle.replace(0) > 0;
        let mut noted = self.noted.borrow_mut();
        *more = u16::try_from(noted.len().saturating_sub(1)).unwrap_or(u16::MAX);
        // One note (a task waiting on one thing) is the usual case: a pop leaves nothing
        // to move or clear.
        *first = if noted.len() <= 1 {
            noted.pop().map(|(_, what)| what)
        } else {
            let first = noted.swap_remove(0).1;
            noted.clear();
            Some(first)
        };
        self.handed_over.set(self.next_note.get().get());
        by_handle
    }

    /// Forget this poll's notes (the task finished).
    pub fn drop_notes(&self) {
        self.by_handle.set(0);
        self.noted.borrow_mut().clear();
        self.handed_over.set(self.next_note.get().get());
    }
}

/// A leaf future's note of what it waits on; dropping it withdraws the note from the
/// current poll's (a note handed to a task already is replaced by the next poll's).
pub(crate) struct Note {
    reactor: Rc<Reactor>,
    id: NoteId,
}

/// Which note: see [`Reactor::note`].
#[derive(Clone, Copy)]
pub(crate) struct NoteId(NonZeroU64);

impl Drop for Note {
    #[inline]
    fn drop(&mut self) {
        self.reactor.withdraw(self.id);
    }
}

/// The reactor of the task being polled, or an error naming `what` was polled outside
/// one (a leaf future needs a looplab loop to act for it).
pub(crate) fn current(what: &str) -> io::Result<Rc<Reactor>> {
    CURRENT
        .with_borrow(|c| c.clone())
        .filter(|r| r.polling().is_some())
        .ok_or_else(|| outside(what))
}

pub(crate) fn outside(what: &str) -> io::Error {
    io::Error::other(format!(
        "{what} was polled outside a looplab task: run it with Loop::spawn or Loop::block_on"
    ))
}

impl Reactor {
    /// A task of this reactor's loop is being polled on this thread: a stream made by
    /// one loop and polled in another loop's task, or outside any, is refused.
    #[inline]
    pub(crate) fn inside(&self) -> bool {
        self.entered.get() && self.polling.get().is_some()
    }
}

/// While the loop polls tasks: the thread-local points at its reactor (set once for a
/// batch of polls; `polling` names the task of each).
pub(crate) struct Entered(Option<Switched>);

/// What `enter` changed, to put back.
struct Switched {
    reactor: Rc<Reactor>,
    previous: Option<Rc<Reactor>>,
}

#[inline]
pub(crate) fn enter(reactor: &Rc<Reactor>) -> Entered {
    if reactor.entered.get() {
        return Entered(None); // `CURRENT` points at it already (the loop's run set it)
    }
    Entered(Some(switch_to(reactor)))
}

fn switch_to(reactor: &Rc<Reactor>) -> Switched {
    let previous = CURRENT.with_borrow_mut(|c| c.replace(reactor.clone()));
    // A loop run from inside another loop's task: the outer reactor's streams are not
    // to be polled by the inner loop's tasks.
    if let Some(p) = &previous {
        p.entered.set(false);
    }
    reactor.entered.set(true);
    Switched {
        reactor: reactor.clone(),
        previous,
    }
}

impl Drop for Entered {
    #[inline]
    fn drop(&mut self) {
        if let Some(s) = self.0.take() {
            s.switch_back();
        }
    }
}

impl Switched {
    fn switch_back(mut self) {
        self.reactor.entered.set(false);
        if let Some(p) = &self.previous {
            p.entered.set(true);
        }
        CURRENT.with_borrow_mut(|c| *c = self.previous.take());
    }
}

/// Which `Waker` a poll was handed: its address, compared, never followed. The task's
/// own waker lives in its slot, which does not move while the task is polled; a
/// combinator's waker is another object, at another address (a clone of the task's
/// one too: the leaf then keeps that clone, as it would any waker).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct WakerId(*const Waker);

impl WakerId {
    const NONE: WakerId = WakerId(std::ptr::null());

    #[inline]
    fn of(w: &Waker) -> WakerId {
        WakerId(w)
    }
}

/// The poll of one task: `polling` names it until the guard drops.
pub(crate) struct Polling<'a>(&'a Reactor, Option<Handle>, WakerId);

impl Reactor {
    #[inline]
    pub(crate) fn polling_task(&self, task: Handle, waker: &Waker) -> Polling<'_> {
        self.read_budget.set(READ_BUDGET);
        let waker = self.polling_waker.replace(WakerId::of(waker));
        Polling(self, self.polling.replace(Some(task)), waker)
    }

    /// The task being polled, if `waker` is its own: then waking it is queueing that
    /// task, and a leaf of this loop may keep the handle instead of a clone of the
    /// waker (a stream's reader does, see `task/waker.rs`). Not if `waker` is a
    /// combinator's, which must learn which of its futures to poll.
    #[inline]
    pub(crate) fn own_task(&self, waker: &Waker) -> Option<Handle> {
        if self.polling_waker.get() == WakerId::of(waker) {
            self.polling.get()
        } else {
            None
        }
    }

    /// Take one read from the budget of the task being polled: false once it is spent.
    #[inline]
    pub(crate) fn spend_read(&self) -> bool {
        let left = self.read_budget.get();
        self.read_budget.set(left.saturating_sub(1));
        left > 0
    }
}

impl Drop for Polling<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.polling.set(self.1);
        self.0.polling_waker.set(self.2);
    }
}

/// Store `cx`'s waker in `slot`, unless the one there wakes the same task already.
/// Replacing is what makes "only the latest waker is woken" true when a future moves
/// from one task to another between polls.
#[inline]
pub(crate) fn store_waker(slot: &mut Option<std::task::Waker>, cx: &std::task::Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}
