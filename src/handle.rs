//! Handles: what the loop keeps for every timer, socket, signal, async or piece of work.
//!
//! A [`Handle`] is a slab key, a generation and the id of its loop. The slab reuses keys,
//! so a key alone could name a newer handle after the old one closed; the generation, new
//! for every handle, makes a stale id fail the lookup instead of acting on a stranger, and
//! the loop id does the same for a handle of another loop. Every method refuses both the
//! same way (the table in docs/design.md).
//!
//! Each handle has three flags, the same as libuv's:
//! - **active**: it is doing something (a timer is armed, a socket is watched);
//! - **ref'd**: while active, it keeps the loop alive (`unref` keeps it working without
//!   holding the loop: Node's `timer.unref()`);
//! - **closing**: `close()` was called and its callback has not run yet.
//!
//! Beside the flags, a handle counts its **requests** in flight (a connect, queued writes,
//! a shutdown, queued pool work). As in libuv, a request holds the loop even when its
//! handle is unref'd: a write that was accepted will be finished or failed, never dropped
//! because the loop exited under it.
//!
//! The table counts the handles that hold the loop, so the alive check is O(1) per tick
//! even with ten thousand sockets; every flag change goes through one method that keeps
//! the count true.
//!
//! **Take, call, put back.** A handle's callback lives in its slot. To run it, the loop
//! takes it out, calls it with `&mut Loop`, and puts it back: while it runs, the callback
//! may do anything to the loop, including closing its own handle (then there is no slot to
//! put it back into, and it is dropped). The putting back happens in a guard
//! ([`Loop::call_taken`](crate::Loop)), so a callback that panics still leaves its slot,
//! the shared read buffer or a half-run batch as they must be: a caller that catches the
//! panic around `run` gets a loop that still works. libuv keeps the callback in place and
//! checks flags after the call instead; Rust's borrow rules make taking it out the plain
//! way to lend the whole loop to the callback.
//!
//! **Per-handle data** ([`Loop::set_data`](crate::Loop::set_data)) is libuv's
//! `handle->data`, typed: any value, stored in the slot and dropped with the handle.

use slab::Slab;
use std::any::Any;
use std::fmt;

/// The id of any handle. Every typed handle (`Timer`, `Tcp`, ...) converts into it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle {
    key: u32,
    generation: u32,
    loop_id: u32,
}

impl Handle {
    /// A handle no table ever holds (generation 0 is never handed out): every method
    /// refuses it as stale. A task spawned from inside a task has this until the loop
    /// has made it (right after the spawning task's poll).
    pub(crate) const NONE: Handle = Handle {
        key: u32::MAX,
        generation: 0,
        loop_id: 0,
    };

    /// The 64-bit token the poller carries back with an event for this handle. The loop
    /// id is not in it: each loop has its own poller.
    pub(crate) fn token(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.key)
    }

    /// All of it in the low 96 bits of a word, for a cause noted per event
    /// (`task/cause.rs`); `from_bits` undoes it.
    #[inline]
    pub(crate) fn to_bits(self) -> u128 {
        (u128::from(self.loop_id) << 64) | u128::from(self.token())
    }

    #[inline]
    pub(crate) fn from_bits(bits: u128) -> Handle {
        let token = bits as u64;
        Handle {
            key: token as u32,
            generation: (token >> 32) as u32,
            loop_id: (bits >> 64) as u32,
        }
    }

    /// The slot number (`12` of `#12.3`); unique among live handles, reused after a close.
    pub fn id(self) -> u32 {
        self.key
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}@{}", self.key, self.generation, self.loop_id)
    }
}

/// `#slot.generation`: a reused slot shows as a new handle.
impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.key, self.generation)
    }
}

/// What kind of thing a handle is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HandleKind {
    /// `set_timeout` / `set_interval`.
    Timer,
    /// `set_immediate`.
    Immediate,
    /// `signal`.
    Signal,
    /// `tcp_listen`.
    Listener,
    /// An accepted or connected stream.
    Tcp,
    /// `async_handle`.
    Async,
    /// `queue_work` (and fs, dns).
    Work,
    /// A pipe stream: an OS pipe end or a Unix-domain socket (`pipe`, `pipe_pair`,
    /// `pipe_open`, `unix_connect`, a child's stdio).
    Pipe,
    /// A child process (`spawn_process`).
    Process,
    /// Runs every tick, just before poll (`prepare`).
    Prepare,
    /// Runs every tick, just after poll (`check`).
    Check,
    /// Runs every tick before prepare, and keeps the poll from blocking (`idle`).
    Idle,
    /// A future spawned on the loop (`spawn`, `block_on`).
    Task,
}

impl HandleKind {
    /// The lowercase name used in traces.
    pub fn name(self) -> &'static str {
        match self {
            HandleKind::Timer => "timer",
            HandleKind::Immediate => "immediate",
            HandleKind::Signal => "signal",
            HandleKind::Listener => "listener",
            HandleKind::Tcp => "tcp",
            HandleKind::Async => "async",
            HandleKind::Work => "work",
            HandleKind::Pipe => "pipe",
            HandleKind::Process => "process",
            HandleKind::Prepare => "prepare",
            HandleKind::Check => "check",
            HandleKind::Idle => "idle",
            HandleKind::Task => "task",
        }
    }
}

impl fmt::Display for HandleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The alive rule for one handle, written once: a close in progress, a request in
/// flight (ref'd or not, as in libuv), or active and ref'd. Work is itself a request, like
/// libuv's uv_work_t: it holds the loop while queued or running.
fn holds_loop(kind: HandleKind, active: bool, has_ref: bool, closing: bool, requests: u32) -> bool {
    closing || requests > 0 || (active && (has_ref || kind == HandleKind::Work))
}

/// One row of [`Loop::handles`](crate::Loop::handles), like libuv's `uv_walk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandleInfo {
    /// Its id.
    pub handle: Handle,
    /// What it is.
    pub kind: HandleKind,
    /// Doing something: armed, watched, queued.
    pub active: bool,
    /// Holds the loop alive while active.
    pub has_ref: bool,
    /// `close()` was called; the callback has not run yet.
    pub closing: bool,
    /// Requests in flight (connect, queued writes, shutdown): they hold the loop, ref'd or not.
    pub requests: u32,
}

impl HandleInfo {
    /// Whether this handle keeps the loop alive (the rule `Loop::alive` counts).
    pub fn holds_loop(&self) -> bool {
        holds_loop(
            self.kind,
            self.active,
            self.has_ref,
            self.closing,
            self.requests,
        )
    }
}

macro_rules! typed_handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(pub(crate) Handle);

        impl From<$name> for Handle {
            fn from(h: $name) -> Handle {
                h.0
            }
        }
    };
}

typed_handle!(
    /// A one-shot or repeating timer (`set_timeout`, `set_interval`).
    Timer
);
typed_handle!(
    /// A callback queued for the check phase (`set_immediate`).
    Immediate
);
typed_handle!(
    /// A signal watcher (`signal`); unref'd by default, as in Node.
    Signal
);
typed_handle!(
    /// A listening TCP socket (`tcp_listen`).
    Listener
);
typed_handle!(
    /// A connected TCP stream (accepted or from `tcp_connect`).
    Tcp
);
typed_handle!(
    /// A cross-thread wakeup (`async_handle`).
    Async
);
typed_handle!(
    /// A job on the thread pool (`queue_work`).
    Work
);
typed_handle!(
    /// A pipe stream (OS pipe or Unix-domain socket): the same read, write, shutdown and
    /// backpressure as a `Tcp`.
    Pipe
);
typed_handle!(
    /// A child process (`spawn_process`): holds the loop until it exits.
    Process
);
typed_handle!(
    /// A callback run every tick, just before the poll (libuv's `uv_prepare_t`).
    Prepare
);
typed_handle!(
    /// A callback run every tick, just after the poll (libuv's `uv_check_t`).
    Check
);
typed_handle!(
    /// A callback run every tick that makes the poll not block (libuv's `uv_idle_t`).
    Idle
);
typed_handle!(
    /// A future running on the loop (`spawn`); its `JoinHandle` converts into it.
    Task
);

/// One handle's entry. In C's order and aligned to a cache line: a slot of the loop's
/// table is exactly two lines, and the first holds the flags with the state's start
/// (for a stream, the pointer to its state; for a task, its future, waker and flag), so
/// an event or a poll reads one line of it. Unaligned, its 112 bytes straddled up to
/// three lines.
#[repr(C, align(64))]
pub(crate) struct Slot<S> {
    generation: u32,
    requests: u32,
    kind: HandleKind,
    active: bool,
    has_ref: bool,
    closing: bool,
    pub state: S,
    /// The user's value (`set_data`), dropped with the slot.
    data: Option<Box<dyn Any>>,
}

impl<S> Slot<S> {
    pub fn kind(&self) -> HandleKind {
        self.kind
    }

    pub fn is_closing(&self) -> bool {
        self.closing
    }

    fn info(&self, handle: Handle) -> HandleInfo {
        HandleInfo {
            handle,
            kind: self.kind,
            active: self.active,
            has_ref: self.has_ref,
            closing: self.closing,
            requests: self.requests,
        }
    }

    fn holds_loop(&self) -> bool {
        holds_loop(
            self.kind,
            self.active,
            self.has_ref,
            self.closing,
            self.requests,
        )
    }
}

/// Every live handle of one loop, and how many of them hold it alive.
pub(crate) struct HandleTable<S> {
    slab: Slab<Slot<S>>,
    next_generation: u32,
    holding: usize,
    loop_id: u32,
    /// Handles made since `record` was turned on: `Loop::in_scope` adopts them into a scope.
    recording: Option<Vec<Handle>>,
}

impl<S> HandleTable<S> {
    /// The table of loop `loop_id`: its handles are refused by every other loop's table.
    pub fn new(loop_id: u32) -> Self {
        HandleTable {
            slab: Slab::new(),
            next_generation: 1,
            holding: 0,
            loop_id,
            recording: None,
        }
    }

    /// The handle an event's token names (it may be stale; lookups will say).
    pub fn handle_of_token(&self, token: u64) -> Handle {
        Handle {
            key: token as u32,
            generation: (token >> 32) as u32,
            loop_id: self.loop_id,
        }
    }

    pub fn insert(&mut self, kind: HandleKind, state: S, active: bool, has_ref: bool) -> Handle {
        self.insert_with(kind, active, has_ref, |_| state)
    }

    /// Insert a handle whose state needs its own id (an async sender carries it).
    pub fn insert_with(
        &mut self,
        kind: HandleKind,
        active: bool,
        has_ref: bool,
        make: impl FnOnce(Handle) -> S,
    ) -> Handle {
        let generation = self.next_generation;
        // Wrapping is harmless: a key must also be reused 2^32 times for a collision.
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let entry = self.slab.vacant_entry();
        let h = Handle {
            key: entry.key() as u32,
            generation,
            loop_id: self.loop_id,
        };
        let slot = Slot {
            generation,
            kind,
            active,
            has_ref,
            closing: false,
            requests: 0,
            data: None,
            state: make(h),
        };
        if slot.holds_loop() {
            self.holding += 1;
        }
        entry.insert(slot);
        if let Some(made) = &mut self.recording {
            made.push(h);
        }
        h
    }

    /// Start (`Some(vec)`) or stop (`None`) noting every handle made; returns what was
    /// noted so far, so a nested `in_scope` can put the outer recording back.
    pub fn record(&mut self, on: Option<Vec<Handle>>) -> Option<Vec<Handle>> {
        std::mem::replace(&mut self.recording, on)
    }

    /// Ours and not stale: the one check every lookup makes.
    /// `h` names the value in slot `s` of the table of loop `loop_id`, not an older one.
    fn names(loop_id: u32, h: Handle, s: &Slot<S>) -> bool {
        s.generation == h.generation && h.loop_id == loop_id
    }

    pub fn get(&self, h: Handle) -> Option<&Slot<S>> {
        let loop_id = self.loop_id;
        self.slab
            .get(h.key as usize)
            .filter(|s| Self::names(loop_id, h, s))
    }

    fn slot_mut(&mut self, h: Handle) -> Option<&mut Slot<S>> {
        // One lookup: every stream operation and every task poll comes through here.
        let loop_id = self.loop_id;
        self.slab
            .get_mut(h.key as usize)
            .filter(|s| Self::names(loop_id, h, s))
    }

    pub fn state_mut(&mut self, h: Handle) -> Option<&mut S> {
        self.slot_mut(h).map(|s| &mut s.state)
    }

    /// Store the user's value with the handle; false if the handle is stale.
    pub fn set_data(&mut self, h: Handle, data: Box<dyn Any>) -> bool {
        self.slot_mut(h).map(|s| s.data = Some(data)).is_some()
    }

    pub fn data(&self, h: Handle) -> Option<&dyn Any> {
        self.get(h)?.data.as_deref()
    }

    pub fn data_mut(&mut self, h: Handle) -> Option<&mut dyn Any> {
        self.slot_mut(h)?.data.as_deref_mut()
    }

    pub fn remove(&mut self, h: Handle) -> Option<S> {
        self.get(h)?;
        let slot = self.slab.remove(h.key as usize);
        if slot.holds_loop() {
            self.holding -= 1;
        }
        Some(slot.state)
    }

    /// Change a handle's flags; false if the handle is stale. The holding count follows.
    fn update(&mut self, h: Handle, change: impl FnOnce(&mut Slot<S>)) -> bool {
        let Some(slot) = self.slot_mut(h) else {
            return false;
        };
        let before = slot.holds_loop();
        change(slot);
        match (before, slot.holds_loop()) {
            (false, true) => self.holding += 1,
            (true, false) => self.holding -= 1,
            _ => {}
        }
        true
    }

    pub fn set_active(&mut self, h: Handle, active: bool) -> bool {
        self.update(h, |s| s.active = active)
    }

    pub fn set_ref(&mut self, h: Handle, has_ref: bool) -> bool {
        self.update(h, |s| s.has_ref = has_ref)
    }

    /// How many requests of `h` are in flight (they hold the loop, ref'd or not).
    pub fn set_requests(&mut self, h: Handle, requests: u32) -> bool {
        self.update(h, |s| s.requests = requests)
    }

    /// Mark closing (and no longer active). False if stale or already closing.
    pub fn begin_close(&mut self, h: Handle) -> bool {
        let mut first = false;
        let live = self.update(h, |s| {
            first = !s.closing;
            s.closing = true;
            s.active = false;
        });
        live && first
    }

    /// How many handles hold the loop alive right now.
    pub fn holding(&self) -> usize {
        self.holding
    }

    pub fn info(&self, h: Handle) -> Option<HandleInfo> {
        self.get(h).map(|s| s.info(h))
    }

    pub fn infos(&self) -> impl Iterator<Item = HandleInfo> + '_ {
        self.slab.iter().map(|(key, s)| {
            s.info(Handle {
                key: key as u32,
                generation: s.generation,
                loop_id: self.loop_id,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_of_the_loop_is_two_whole_cache_lines() {
        use std::mem::{align_of, size_of};
        type LoopSlot = Slot<crate::event_loop::State>;
        assert_eq!((size_of::<LoopSlot>(), align_of::<LoopSlot>()), (128, 64));
        // A state of the same size: the slab's entries must add nothing to it.
        let mut t = HandleTable::new(1);
        let a = t.insert(HandleKind::Timer, [0u64; 11], true, true);
        let b = t.insert(HandleKind::Timer, [1u64; 11], true, true);
        let (Some(a), Some(b)) = (t.get(a), t.get(b)) else {
            panic!("both slots are live");
        };
        let at = |s: &Slot<[u64; 11]>| s as *const Slot<[u64; 11]> as usize;
        assert_eq!(at(a) % 64, 0, "a slot starts a cache line");
        assert_eq!(
            at(b) - at(a),
            128,
            "the slab's entries are no larger than the slot"
        );
    }

    #[test]
    fn a_reused_slot_refuses_the_old_id() {
        let mut t = HandleTable::new(1);
        let a = t.insert(HandleKind::Timer, "a", true, true);
        assert_eq!(t.remove(a), Some("a"));
        let b = t.insert(HandleKind::Timer, "b", true, true);
        assert_eq!(a.key, b.key, "the slab reused the slot");
        assert!(t.get(a).is_none());
        assert!(!t.set_ref(a, false));
        assert_eq!(t.remove(a), None);
        assert_eq!(t.get(b).map(|s| s.state), Some("b"));
    }

    #[test]
    fn another_tables_handle_is_refused_like_a_stale_one() {
        let mut a = HandleTable::new(1);
        let mut b = HandleTable::new(2);
        let ha = a.insert(HandleKind::Timer, "a", true, true);
        let hb = b.insert(HandleKind::Timer, "b", true, true);
        assert_eq!((ha.key, ha.generation), (hb.key, hb.generation));
        assert!(b.get(ha).is_none());
        assert!(!b.set_ref(ha, false));
        assert_eq!(b.remove(ha), None);
        assert_eq!(b.holding(), 1);
    }

    #[test]
    fn requests_hold_the_loop_even_unrefd() {
        let mut t = HandleTable::new(1);
        let h = t.insert(HandleKind::Tcp, (), false, false);
        assert_eq!(t.holding(), 0);
        t.set_requests(h, 2);
        assert_eq!(t.holding(), 1);
        t.set_requests(h, 0);
        assert_eq!(t.holding(), 0);
    }

    #[test]
    fn data_is_typed_and_goes_with_the_handle() {
        let mut t = HandleTable::new(1);
        let h = t.insert(HandleKind::Tcp, (), true, true);
        assert!(t.set_data(h, Box::new(7u32)));
        assert_eq!(t.data(h).and_then(|d| d.downcast_ref::<u32>()), Some(&7));
        t.remove(h);
        let again = t.insert(HandleKind::Tcp, (), true, true);
        assert!(t.data(again).is_none(), "a reused slot starts without data");
    }

    #[test]
    fn holding_count_follows_every_flag() {
        let mut t = HandleTable::new(1);
        let h = t.insert(HandleKind::Tcp, (), true, true);
        assert_eq!(t.holding(), 1);
        t.set_ref(h, false);
        t.set_ref(h, false);
        assert_eq!(t.holding(), 0);
        t.set_ref(h, true);
        assert_eq!(t.holding(), 1, "ref/unref are flags, not counters");
        t.set_active(h, false);
        assert_eq!(t.holding(), 0);
        assert!(t.begin_close(h));
        assert!(!t.begin_close(h), "a second close is refused");
        assert_eq!(t.holding(), 1, "a close in progress holds the loop");
        t.remove(h);
        assert_eq!(t.holding(), 0);
        let w = t.insert(HandleKind::Work, (), true, false);
        assert_eq!(t.holding(), 1, "queued work holds the loop even unref'd");
        t.remove(w);
        assert_eq!(t.holding(), 0);
    }
}
