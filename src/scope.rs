//! Cancel scopes for callbacks: a deadline, a cancel with a cause, and children.
//!
//! A callback program has no stack to unwind: when a caller gives up (a deadline
//! passed, the server shuts down), the connects, writes and pool jobs it started are
//! scattered over the loop. A [`Scope`] gathers them. Handles opened under it
//! ([`Loop::in_scope`], [`Loop::scope_adopt`]) are closed when it is cancelled, and every
//! callback they still owe is called **exactly once**, with an error that carries the
//! cause, before the handle's close callback:
//!
//! ```text
//!   lp.cancel_scope(s, "shutdown")            or s's deadline passes (one timer)
//!     └─ each child scope, then s itself:
//!          each member: close(h) ─► close phase: owed callbacks with the cause,
//!                                    then the member's close callback
//! ```
//!
//! What a member owes when its scope is cancelled (what `close` would cut short):
//!
//! | member | owed callback | gets |
//! |---|---|---|
//! | `Tcp`, `Pipe` | connect, each `write_then`, shutdown (in that order) | `Err(e)` |
//! | `Work` (and `fs`, `dns`) | `done` | `Err(WorkError::Scope(cause))` |
//! | timer, immediate, listener, signal, task | nothing: none of them is a request | |
//!
//! A timer is not owed its callback: it is a request to be called *later*, and a
//! cancelled scope has no later (Trio's `sleep` in a cancelled scope does not return
//! early either, it raises; here the timer just goes). A read is not a request either:
//! the reader hears the close. `e.kind()` is `TimedOut` for a deadline (the scope's own
//! or an ancestor's) and `ConnectionAborted` for a cancel, the kind `close` already
//! gives a cut-short request. Not `Interrupted`: std's `write_all` and friends retry
//! that, and a cancelled request must not be retried.
//!
//! **Deadlines.** A scope's deadline is the earlier of its own and its ancestors'
//! ([`Loop::deadline`]). It costs one timer on the wheel per scope that sets one, not
//! one per handle; a child whose own deadline is later than an ancestor's arms none,
//! since the ancestor's cancel reaches it first ("parent canceled: deadline 50 ms
//! exceeded").
//!
//! **Lifetime.** A scope lives until [`Loop::end_scope`]: after a cancel it keeps its
//! cause, so what is adopted later is cancelled at once (Go's `ctx.Err()`). Ending a
//! scope frees its timer and forgets its members without closing them.
//!
//! The task side (nurseries, `move_on_after`, `fail_after`, `shield`) is in
//! `src/task/scope.rs`; chapter 15 puts the two side by side.

mod cancel;

pub(crate) use cancel::{cancel_error, canceling};
pub use cancel::{cause_of, Cancel};

use crate::event_loop::{Loop, OnClose};
use crate::handle::{Handle, Timer};
use slab::Slab;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

/// The id of a cancel scope of one loop (its slot and generation, like a [`Handle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    key: u32,
    generation: u32,
}

/// `scope 3.1`: a reused slot shows as a new scope.
impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scope {}.{}", self.key, self.generation)
    }
}

/// A handle the scope closes when cancelled, with the close callback to give it.
struct Member {
    handle: Handle,
    then: Option<OnClose>,
}

/// The first prune of a scope's member list happens at this length; after each prune
/// the next is at twice what was left, so adopting stays O(1) amortised and the list
/// stays within twice the live members.
const PRUNE_AT: usize = 16;

pub(crate) struct ScopeState {
    generation: u32,
    parent: Option<Scope>,
    children: Vec<Scope>,
    members: Vec<Member>,
    prune_at: usize,
    /// Its own deadline (the duration it was set with rides in its timer callback).
    own_deadline: Option<Instant>,
    /// The wheel entry of its own deadline, when that is the earliest in its line.
    timer: Option<Timer>,
    canceled: Option<Cancel>,
    opened: Instant,
    /// `on_scope_cancel` callbacks, taken by the cancel.
    on_cancel: Vec<cancel::OnCancel>,
    /// Like `prune_at`, for the list of children.
    children_prune_at: usize,
}

/// Every scope of one loop.
#[derive(Default)]
pub(crate) struct Scopes {
    slab: Slab<ScopeState>,
    next_generation: u32,
}

impl Scopes {
    fn get(&self, s: Scope) -> Option<&ScopeState> {
        self.slab
            .get(s.key as usize)
            .filter(|st| st.generation == s.generation)
    }

    fn get_mut(&mut self, s: Scope) -> Option<&mut ScopeState> {
        self.slab
            .get_mut(s.key as usize)
            .filter(|st| st.generation == s.generation)
    }

    fn insert(&mut self, parent: Option<Scope>, opened: Instant) -> Scope {
        self.next_generation = self.next_generation.wrapping_add(1).max(1);
        let generation = self.next_generation;
        let key = self.slab.insert(ScopeState {
            generation,
            parent,
            children: Vec::new(),
            members: Vec::new(),
            prune_at: PRUNE_AT,
            own_deadline: None,
            timer: None,
            canceled: None,
            opened,
            on_cancel: Vec::new(),
            children_prune_at: PRUNE_AT,
        });
        Scope {
            key: key as u32,
            generation,
        }
    }

    /// Note `child` under `parent`. Ended children are not taken off the list at once
    /// (a server scope may have ten thousand request scopes come and go): the list is
    /// pruned when it doubles, as a scope's members are.
    fn add_child(&mut self, parent: Scope, child: Scope) {
        let Some(p) = self.get(parent) else { return };
        let prune = p.children.len() >= p.children_prune_at;
        let kept: Option<Vec<Scope>> = prune.then(|| {
            let all = p.children.iter().copied();
            all.filter(|c| self.get(*c).is_some()).collect()
        });
        if let Some(p) = self.get_mut(parent) {
            if let Some(kept) = kept {
                p.children_prune_at = (kept.len() * 2).max(PRUNE_AT);
                p.children = kept;
            }
            p.children.push(child);
        }
    }

    /// The earliest own deadline among `s`'s ancestors (not `s` itself).
    fn inherited_deadline(&self, s: Scope) -> Option<Instant> {
        let mut at = None;
        let mut next = self.get(s).and_then(|st| st.parent);
        while let Some(p) = next {
            let st = self.get(p)?;
            at = earlier(at, st.own_deadline);
            next = st.parent;
        }
        at
    }

    /// How many scopes are open ([`Loop::scopes_open`]).
    pub fn len(&self) -> usize {
        self.slab.len()
    }
}

fn earlier(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn stale(s: Scope) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{s} has ended"))
}

impl Loop {
    /// A new root scope: no deadline, no parent.
    pub fn scope(&mut self) -> Scope {
        self.scopes.insert(None, self.now())
    }

    /// A scope under `parent`: cancelled when `parent` is, its deadline never later than
    /// `parent`'s. Under a parent already cancelled, it is born cancelled. `NotFound` if
    /// `parent` has ended.
    pub fn child_scope(&mut self, parent: Scope) -> io::Result<Scope> {
        let inherited = match self.scopes.get(parent) {
            Some(p) => p.canceled.clone().map(Cancel::from_parent),
            None => return Err(stale(parent)),
        };
        let child = self.scopes.insert(Some(parent), self.now());
        self.scopes.add_child(parent, child);
        if let Some(cause) = inherited {
            self.cancel_later(child, cause);
        }
        Ok(child)
    }

    /// Give `s` a deadline `after` from now; an earlier deadline it already has stays.
    /// False if `s` has ended.
    pub fn set_deadline(&mut self, s: Scope, after: Duration) -> bool {
        let at = self.now() + after;
        let Some(st) = self.scopes.get_mut(s) else {
            return false;
        };
        if st.canceled.is_some() || st.own_deadline.is_some_and(|d| d <= at) {
            return true;
        }
        st.own_deadline = Some(at);
        let old = st.timer.take();
        if let Some(t) = old {
            self.clear_timer(t);
        }
        // An ancestor's earlier deadline cancels this scope first: no entry of its own.
        // (A descendant armed before this scope got its earlier deadline keeps its entry:
        // finding them would walk the subtree, and the cancel clears them anyway.)
        if self.scopes.inherited_deadline(s).is_some_and(|p| p <= at) {
            return true;
        }
        // The scope's own timer is not a member of any scope being entered.
        let recording = self.handles.record(None);
        let t = self.set_timeout(after, move |lp, _| {
            if let Some(st) = lp.scopes.get_mut(s) {
                st.timer = None;
            }
            // In the deadline's own timer callback: the hooks may run at once.
            for hook in lp.cancel_tree(s, Cancel::Deadline(after)) {
                hook.run(lp);
            }
        });
        self.handles.record(recording);
        self.unref_handle(t);
        if let Some(st) = self.scopes.get_mut(s) {
            st.timer = Some(t);
        }
        true
    }

    /// When `s` will be cancelled by a deadline: the earlier of its own and its
    /// ancestors'. `None` if there is none, or `s` has ended.
    pub fn deadline(&self, s: Scope) -> Option<Instant> {
        let own = self.scopes.get(s)?.own_deadline;
        earlier(own, self.scopes.inherited_deadline(s))
    }

    /// Why `s` was cancelled, if it was.
    pub fn scope_canceled(&self, s: Scope) -> Option<Cancel> {
        self.scopes.get(s)?.canceled.clone()
    }

    /// Run `f`; every handle made inside it (a connect, a timer, a write's stream, pool
    /// work, a task spawned with `lp.spawn`) is adopted by `s`. Handles made later, from
    /// their callbacks, are not: `in_scope` again there (the scope is a `Copy` id).
    pub fn in_scope<T>(&mut self, s: Scope, f: impl FnOnce(&mut Loop) -> T) -> T {
        let outer = self.handles.record(Some(Vec::new()));
        let mut made = Vec::new();
        let out = self.call_guarded(f, |lp| made = lp.handles.record(outer).unwrap_or_default());
        for h in made {
            self.scope_adopt(s, h);
        }
        out
    }

    /// Put `h` under `s`: closed when `s` is cancelled (at once, if it already is).
    /// False if `h` is stale or closing, or `s` has ended.
    pub fn scope_adopt(&mut self, s: Scope, h: impl Into<Handle>) -> bool {
        self.adopt_member(s, h.into(), None)
    }

    /// `scope_adopt`, with the close callback the scope's cancel gives `h` (it runs after the
    /// callbacks `h` owes). If `h` is closed otherwise, `cb` is not called.
    pub fn scope_adopt_then(
        &mut self,
        s: Scope,
        h: impl Into<Handle>,
        cb: impl FnOnce(&mut Loop, Handle) + 'static,
    ) -> bool {
        self.adopt_member(s, h.into(), Some(Box::new(cb)))
    }

    fn adopt_member(&mut self, s: Scope, h: Handle, then: Option<OnClose>) -> bool {
        if self.handles.get(h).is_none_or(|slot| slot.is_closing()) {
            return false;
        }
        let Some(st) = self.scopes.get(s) else {
            return false;
        };
        if let Some(cause) = st.canceled.clone() {
            let elapsed = self.now().saturating_duration_since(st.opened);
            self.cancel_members(s, vec![Member { handle: h, then }], &cause, elapsed);
            return true;
        }
        let live =
            |lp: &Loop, m: &Member| lp.handles.get(m.handle).is_some_and(|x| !x.is_closing());
        let prune = st.members.len() >= st.prune_at;
        if prune {
            let members = self
                .scopes
                .get_mut(s)
                .map(|st| std::mem::take(&mut st.members));
            let kept: Vec<Member> = members
                .unwrap_or_default()
                .into_iter()
                .filter(|m| live(self, m))
                .collect();
            if let Some(st) = self.scopes.get_mut(s) {
                st.prune_at = (kept.len() * 2).max(PRUNE_AT);
                st.members = kept;
            }
        }
        if let Some(st) = self.scopes.get_mut(s) {
            st.members.push(Member { handle: h, then });
        }
        true
    }

    /// How many of `s`'s members are still open (0 once it is cancelled or ended).
    pub fn scope_members(&self, s: Scope) -> usize {
        self.scopes.get(s).map_or(0, |st| {
            st.members
                .iter()
                .filter(|m| self.handles.get(m.handle).is_some_and(|x| !x.is_closing()))
                .count()
        })
    }

    /// How many scopes are open (not yet ended) on this loop.
    pub fn scopes_open(&self) -> usize {
        self.scopes.len()
    }

    /// Done with `s` and its children: their timers are freed, their members forgotten
    /// (not closed). Go's `cancel()` after success, without the cancel. False if `s` has
    /// already ended.
    pub fn end_scope(&mut self, s: Scope) -> bool {
        if self.scopes.get(s).is_none() {
            return false;
        }
        let mut stack = vec![s];
        while let Some(s) = stack.pop() {
            if self.scopes.get(s).is_none() {
                continue;
            }
            let st = self.scopes.slab.remove(s.key as usize);
            stack.extend(st.children);
            if let Some(t) = st.timer {
                self.clear_timer(t);
            }
        }
        true
    }
}
