//! The life of any handle: ref and unref, close, the walk over all handles, and the
//! answer to "why is my loop still running?".

use super::{Closing, Loop, OnClose, State};
use crate::handle::{Handle, HandleInfo, HandleKind};
use crate::sys::Fd;
use crate::trace::{count_by_kind, Metrics};
use std::collections::VecDeque;
use std::time::Duration;

impl Loop {
    /// Let `h` work without keeping the loop alive (Node's `unref()`). Flags, not counts:
    /// unref twice then ref once leaves it ref'd. Requests in flight (a connect, a write)
    /// still hold the loop. False if the handle is stale or another loop's.
    pub fn unref_handle(&mut self, h: impl Into<Handle>) -> bool {
        self.handles.set_ref(h.into(), false)
    }

    /// Make `h` keep the loop alive again while it is active.
    pub fn ref_handle(&mut self, h: impl Into<Handle>) -> bool {
        self.handles.set_ref(h.into(), true)
    }

    /// Whether `h` is ref'd (false for a stale handle).
    pub fn has_ref(&self, h: impl Into<Handle>) -> bool {
        self.handles.info(h.into()).is_some_and(|i| i.has_ref)
    }

    /// Close any handle: it stops at once (timer disarmed, fd deregistered and closed,
    /// queued work cancelled); requests it still owes get their callbacks with an error in
    /// this tick's close phase, and then the handle is gone. Never calls back inside this
    /// call. False if the handle is stale, another loop's, or already closing.
    pub fn close(&mut self, h: impl Into<Handle>) -> bool {
        self.begin_close(h.into(), None)
    }

    /// `close`, then `cb(lp, handle)` in the close phase, after every owed callback.
    pub fn close_then(
        &mut self,
        h: impl Into<Handle>,
        cb: impl FnOnce(&mut Loop, Handle) + 'static,
    ) -> bool {
        self.begin_close(h.into(), Some(Box::new(cb)))
    }

    /// `close_then` for a scope's cancel: how many owed callbacks the close queued, or
    /// `None` if the handle was stale or already closing.
    pub(crate) fn close_counting(&mut self, h: Handle, then: Option<OnClose>) -> Option<usize> {
        self.begin_close(h, then)
            .then(|| self.closing.back().map_or(0, |c| c.owed.len()))
    }

    fn begin_close(&mut self, h: Handle, then: Option<OnClose>) -> bool {
        let Some(kind) = self.handles.get(h).map(|s| s.kind()) else {
            return false;
        };
        if !self.handles.begin_close(h) {
            return false;
        }
        let owed = match kind {
            HandleKind::Timer => {
                self.disarm_timer(h);
                VecDeque::new()
            }
            HandleKind::Signal => {
                self.stop_signal(h);
                VecDeque::new()
            }
            HandleKind::Async => {
                self.stop_async(h);
                VecDeque::new()
            }
            HandleKind::Work => self.stop_work(h),
            HandleKind::Listener => {
                self.stop_listener(h);
                VecDeque::new()
            }
            HandleKind::Tcp | HandleKind::Pipe => self.stop_stream(h),
            HandleKind::Process => self.stop_process(h).into_iter().collect(),
            HandleKind::Prepare | HandleKind::Check | HandleKind::Idle => {
                self.stop_watcher(h, kind);
                VecDeque::new()
            }
            HandleKind::Task => {
                self.stop_task(h);
                VecDeque::new()
            }
            HandleKind::Immediate => VecDeque::new(),
        };
        self.handles.set_requests(h, 0);
        self.closing.push_back(Closing {
            handle: h,
            owed,
            then,
        });
        true
    }

    /// Keep `value` with `h` (libuv's `handle->data`, typed): per-connection state rides on
    /// the connection. Replaces an earlier value; dropped when the handle is gone. False
    /// if the handle is stale or another loop's.
    pub fn set_data<T: 'static>(&mut self, h: impl Into<Handle>, value: T) -> bool {
        self.handles.set_data(h.into(), Box::new(value))
    }

    /// The value kept with `h`, if there is one of type `T`.
    pub fn data<T: 'static>(&self, h: impl Into<Handle>) -> Option<&T> {
        self.handles.data(h.into())?.downcast_ref()
    }

    /// The value kept with `h`, mutably, if there is one of type `T`.
    pub fn data_mut<T: 'static>(&mut self, h: impl Into<Handle>) -> Option<&mut T> {
        self.handles.data_mut(h.into())?.downcast_mut()
    }

    /// Every live handle with its flags, like libuv's `uv_walk`.
    pub fn handles(&self) -> Vec<HandleInfo> {
        self.handles.infos().collect()
    }

    /// In words: what keeps the loop alive, or that nothing does.
    pub fn explain_alive(&self) -> String {
        let infos: Vec<HandleInfo> = self.handles.infos().collect();
        // Held by the handle itself; requests of unref'd handles are counted apart.
        let holding = infos.iter().filter(|i| {
            let without_requests = HandleInfo { requests: 0, ..**i };
            without_requests.holds_loop() && !i.closing
        });
        let ref_d = count_by_kind(holding.map(|i| i.kind));
        let closing = infos.iter().filter(|i| i.closing).count();
        let requests: u32 = infos
            .iter()
            .filter(|i| !i.closing)
            .map(|i| i.requests)
            .sum();
        let unref_d = count_by_kind(
            infos
                .iter()
                .filter(|i| i.active && !i.has_ref && !i.closing)
                .map(|i| i.kind),
        );
        let mut parts = Vec::new();
        if !ref_d.is_empty() {
            parts.push(format!("ref'd: {ref_d}{}", self.tasks_waiting_on()));
        }
        if requests > 0 {
            parts.push(format!("{requests} request(s) in flight"));
        }
        if closing > 0 {
            parts.push(format!("{closing} closing"));
        }
        if !self.pending.is_empty() {
            parts.push(format!("{} pending callback(s)", self.pending.len()));
        }
        if parts.is_empty() {
            let mut s = "nothing ref'd is active".to_string();
            if !unref_d.is_empty() {
                s.push_str(&format!(" (unref'd, not holding the loop: {unref_d})"));
            }
            s
        } else {
            if !unref_d.is_empty() {
                parts.push(format!("unref'd: {unref_d}"));
            }
            parts.join("; ")
        }
    }

    /// Counters since the loop was built.
    pub fn metrics(&self) -> Metrics {
        let c = &self.counters;
        let infos: Vec<HandleInfo> = self.handles.infos().collect();
        let mean = if c.timers_fired == 0 {
            Duration::ZERO
        } else {
            c.lateness_total / u32::try_from(c.timers_fired).unwrap_or(u32::MAX)
        };
        Metrics {
            ticks: c.ticks,
            events: c.events,
            idle: c.idle,
            timers_fired: c.timers_fired,
            timer_lateness_max: c.lateness_max,
            timer_lateness_mean: mean,
            handles: infos.len(),
            active_handles: infos.iter().filter(|i| i.active).count(),
            ref_handles: infos.iter().filter(|i| i.active && i.has_ref).count(),
            wake_drains: c.wake_drains,
            wake_requests: self.waker.wake_counts().0,
            wake_writes: self.waker.wake_counts().1,
            completions: c.completions,
            max_completions_per_drain: c.max_completions_per_drain,
            pool: self.pool.as_ref().map(|p| p.metrics()).unwrap_or_default(),
            tasks_spawned: self.tasks.spawned,
            tasks_polled: self.tasks.polled,
            tasks_alive: infos
                .iter()
                .filter(|i| i.kind == HandleKind::Task && !i.closing)
                .count(),
            reads: c.reads + self.tasks.reactor.reads.get(),
            reads_empty: c.reads_empty + self.tasks.reactor.reads_empty.get(),
        }
    }

    /// The fd behind a handle, for sockets.
    pub(crate) fn fd_of(&self, h: Handle) -> Option<Fd> {
        match &self.handles.get(h)?.state {
            State::Listener(l) => l.fd(),
            State::Stream(t) => t.fd(),
            _ => None,
        }
    }
}
