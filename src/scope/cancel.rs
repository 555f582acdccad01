//! A scope's cancel: its cause, the walk over its children and members, and the error
//! each owed callback gets.

use super::{Member, Scope};
use crate::error::Error;
use crate::event_loop::Loop;
use crate::handle::{Handle, HandleKind};
use std::cell::RefCell;
use std::fmt;
use std::io;
use std::time::Duration;

/// Why a scope was cancelled. Its text is what the owed callbacks' errors end with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// Its own deadline passed: "deadline 5 s exceeded".
    Deadline(Duration),
    /// `cancel_scope(s, reason)`: "canceled: shutdown".
    Canceled(String),
    /// An ancestor was cancelled, for this root cause: "parent canceled: shutdown".
    Parent(Box<Cancel>),
}

impl Cancel {
    /// The cause as a child sees it (always one level: the root cause, not a path).
    pub(crate) fn from_parent(cause: Cancel) -> Cancel {
        match cause {
            Cancel::Parent(root) => Cancel::Parent(root),
            root => Cancel::Parent(Box::new(root)),
        }
    }

    /// A deadline, the scope's own or an ancestor's.
    pub fn is_deadline(&self) -> bool {
        match self {
            Cancel::Deadline(_) => true,
            Cancel::Canceled(_) => false,
            Cancel::Parent(root) => root.is_deadline(),
        }
    }

    /// `TimedOut` for a deadline, `ConnectionAborted` for a cancel (never `Interrupted`,
    /// which std's helpers retry).
    pub fn kind(&self) -> io::ErrorKind {
        if self.is_deadline() {
            io::ErrorKind::TimedOut
        } else {
            io::ErrorKind::ConnectionAborted
        }
    }

    /// The root cause's words, without "canceled: " in front of a reason.
    fn root_text(&self) -> String {
        match self {
            Cancel::Deadline(d) => format!("deadline {} exceeded", duration(*d)),
            Cancel::Canceled(reason) => reason.clone(),
            Cancel::Parent(root) => root.root_text(),
        }
    }
}

/// "5 s", "50 ms", "1.5 s": a deadline as it was written.
fn duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else if d < Duration::from_secs(1) && d.subsec_nanos() % 1_000_000 == 0 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:?}", d)
    }
}

impl fmt::Display for Cancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cancel::Deadline(_) => f.write_str(&self.root_text()),
            Cancel::Canceled(reason) => write!(f, "canceled: {reason}"),
            Cancel::Parent(root) => write!(f, "parent canceled: {}", root.root_text()),
        }
    }
}

impl std::error::Error for Cancel {}

impl From<Cancel> for io::Error {
    fn from(cause: Cancel) -> io::Error {
        io::Error::new(cause.kind(), cause)
    }
}

thread_local! {
    /// The cause (and the scope's age) while a cancel closes members: the close path
    /// builds each owed callback's error deep inside the stream and pool code, which
    /// looks here instead of being handed a cause through every layer.
    static CANCELING: RefCell<Option<(Cancel, Duration)>> = const { RefCell::new(None) };
}

/// During a cancel, the error a cut-short `what` on `h` gets:
/// "write on tcp #3.1: after 52 ms: deadline 50 ms exceeded". `None` outside one.
pub(crate) fn cancel_error(what: &str, kind: HandleKind, h: Handle) -> Option<io::Error> {
    CANCELING.with(|c| {
        let c = c.borrow();
        let (cause, after) = c.as_ref()?;
        let what = format!("{what} on {kind} {h}");
        Some(Error::wrap_after(what, *after, cause.clone().into()))
    })
}

/// The scope's cause at the bottom of `e`'s chain, if a scope's cancel made it.
pub fn cause_of(e: &io::Error) -> Option<&Cancel> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(cur) = next {
        if let Some(cause) = cur.downcast_ref::<Cancel>() {
            return Some(cause);
        }
        let inner = cur.downcast_ref::<io::Error>().and_then(|io| io.get_ref());
        next = match inner {
            Some(inner) => Some(inner as _),
            None => cur.source(),
        };
    }
    None
}

/// During a cancel, its cause (pool work's `done` gets it as `WorkError::Scope`).
pub(crate) fn canceling() -> Option<Cancel> {
    CANCELING.with(|c| c.borrow().as_ref().map(|(cause, _)| cause.clone()))
}

/// What one scope's cancel stopped, for its trace line.
#[derive(Default)]
pub(super) struct Stopped {
    callbacks: usize,
    handles: usize,
    tasks: usize,
}

/// A callback for when a scope is cancelled (Go's `context.AfterFunc`).
pub(crate) type OnCancel = Box<dyn FnOnce(&mut Loop, Scope, Cancel)>;

/// One `on_scope_cancel` callback, due.
pub(crate) struct Due {
    scope: Scope,
    cause: Cancel,
    hook: OnCancel,
}

impl Due {
    /// Call it, unless its scope was ended meanwhile (the program is done with it).
    pub(crate) fn run(self, lp: &mut Loop) {
        if lp.scopes.get(self.scope).is_some() {
            (self.hook)(lp, self.scope, self.cause)
        }
    }
}

impl Loop {
    /// `s` and its children stop now: their members are closed, and what those owe
    /// gets `reason` in this tick's close phase; `on_scope_cancel` callbacks run in the
    /// next pending phase (never inside this call). False if `s` has ended or was
    /// already cancelled.
    pub fn cancel_scope(&mut self, s: Scope, reason: impl Into<String>) -> bool {
        self.cancel_later(s, Cancel::Canceled(reason.into()))
    }

    /// Call `cb(lp, s, cause)` once when `s` is cancelled (Go's `context.AfterFunc`):
    /// in the callback of its deadline's timer, after its members were closed, or in
    /// the pending phase after a `cancel_scope` (its own or an ancestor's). Not called
    /// if the scope is ended first. False if `s` has ended.
    pub fn on_scope_cancel(
        &mut self,
        s: Scope,
        cb: impl FnOnce(&mut Loop, Scope, Cancel) + 'static,
    ) -> bool {
        let Some(st) = self.scopes.get_mut(s) else {
            return false;
        };
        match st.canceled.clone() {
            Some(cause) => self.defer(Handle::NONE, move |lp| {
                let hook: OnCancel = Box::new(cb);
                Due {
                    scope: s,
                    cause,
                    hook,
                }
                .run(lp)
            }),
            None => {
                // Most scopes get one callback: room for one, not the four a push gives.
                st.on_cancel.reserve_exact(1);
                st.on_cancel.push(Box::new(cb))
            }
        }
        true
    }

    /// Cancel now; the hooks wait for the pending phase.
    pub(crate) fn cancel_later(&mut self, s: Scope, cause: Cancel) -> bool {
        if self.scopes.get(s).is_none_or(|st| st.canceled.is_some()) {
            return false;
        }
        for due in self.cancel_tree(s, cause) {
            self.defer(Handle::NONE, move |lp| due.run(lp));
        }
        true
    }

    /// Cancel `s` for `cause`, then its descendants for `parent canceled`; the hooks
    /// of every scope it reached, parent first, for the caller to run. Iterative: a
    /// deep tree does not deepen the stack.
    pub(crate) fn cancel_tree(&mut self, s: Scope, cause: Cancel) -> Vec<Due> {
        let mut due = Vec::new();
        let mut stack = vec![(s, cause)];
        while let Some((s, cause)) = stack.pop() {
            let now = self.now();
            let Some(st) = self.scopes.get_mut(s).filter(|st| st.canceled.is_none()) else {
                continue;
            };
            st.canceled = Some(cause.clone());
            let timer = st.timer.take();
            let members = std::mem::take(&mut st.members);
            let hooks = std::mem::take(&mut st.on_cancel);
            let elapsed = now.saturating_duration_since(st.opened);
            let children = st.children.clone();
            if let Some(t) = timer {
                self.clear_timer(t);
            }
            let stopped = self.cancel_members(s, members, &cause, elapsed);
            self.tracer.note(format!(
                "{s} canceled after {}: {cause}: {} callback(s) owed, {} handle(s), {} task(s), {} child scope(s)",
                crate::error::seconds(elapsed),
                stopped.callbacks,
                stopped.handles,
                stopped.tasks,
                children.iter().filter(|c| self.scopes.get(**c).is_some()).count(),
            ));
            due.extend(hooks.into_iter().map(|hook| Due {
                scope: s,
                cause: cause.clone(),
                hook,
            }));
            // Pushed in reverse so the children are cancelled in the order they were made.
            let for_child = Cancel::from_parent(cause);
            stack.extend(children.into_iter().rev().map(|c| (c, for_child.clone())));
        }
        due
    }

    /// Close each member with the cause in force; count what that cut short.
    pub(super) fn cancel_members(
        &mut self,
        s: Scope,
        members: Vec<Member>,
        cause: &Cancel,
        elapsed: Duration,
    ) -> Stopped {
        let mut stopped = Stopped::default();
        CANCELING.with(|c| *c.borrow_mut() = Some((cause.clone(), elapsed)));
        for m in members {
            let kind = self.handles.get(m.handle).map(|slot| slot.kind());
            let Some(owed) = self.close_counting(m.handle, m.then) else {
                continue; // closed already: what it owed was settled by that close
            };
            stopped.callbacks += owed;
            stopped.handles += 1;
            if kind == Some(HandleKind::Task) {
                stopped.tasks += 1;
            }
            if owed > 0 {
                let kind = kind.map_or("handle", |k| k.name());
                self.tracer.note(format!(
                    "{s}: {kind} {}: {owed} owed callback(s) get \"{cause}\"",
                    m.handle
                ));
            }
        }
        CANCELING.with(|c| *c.borrow_mut() = None);
        stopped
    }
}
