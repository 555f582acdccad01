//! The life of a task: `spawn`, `block_on`, and `close` (which drops it).

use super::TaskState;
use crate::event_loop::{Loop, RunMode, State};
use crate::handle::{Handle, HandleKind, Task};
use crate::task::join::{self, Failure, Job, JoinHandle};
use crate::task::reactor::Waiting;
use crate::task::waker::TaskWaker;
use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::panic::resume_unwind;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Waker;

impl Loop {
    /// Run `fut` on this loop as a task; its output comes back through the
    /// `JoinHandle`. The task is ref'd: it holds the loop until it finishes (unless
    /// unref'd). It is first polled in the next tasks phase, never inside this call.
    pub fn spawn<F>(&mut self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
    {
        let cell = join::new_cell::<F::Output>();
        let h = self.spawn_task(Box::pin(fut), cell.clone());
        join::set_task(&cell, h);
        JoinHandle::new(cell, self.tasks.reactor.clone())
    }

    /// Make the task handle, and queue the task for its first poll.
    pub(crate) fn spawn_task(&mut self, job: Pin<Box<dyn Job>>, cell: Rc<dyn Any>) -> Handle {
        let (ready, pipe) = (self.tasks.ready.clone(), self.tasks.pipe.clone());
        let h = self
            .handles
            .insert_with(HandleKind::Task, true, true, move |h| {
                let shared = TaskWaker::new(h, ready, pipe);
                State::Task(TaskState {
                    future: Some(job),
                    cell,
                    waker: Waker::from(shared.clone()),
                    shared,
                    note: None,
                    more_notes: 0,
                })
            });
        if let Some(State::Task(t)) = self.handles.state_mut(h) {
            t.shared.schedule_spawned();
        }
        self.tasks.spawned += 1;
        h
    }

    /// Run the loop until `fut` completes, and return its output. The loop runs as in
    /// `run(RunMode::Default)`, so other tasks and callbacks make progress meanwhile;
    /// `block_on` returns as soon as `fut` is done, even if unref'd (or ref'd) work
    /// remains. A panic in `fut` resumes here. An error if `fut` can never complete: it
    /// returned `Pending` without keeping its waker anywhere (nothing can wake it), it
    /// was closed, `stop()` was called first, or `run` is already running (not reentrant).
    pub fn block_on<F>(&mut self, fut: F) -> io::Result<F::Output>
    where
        F: Future + 'static,
    {
        let root = self.spawn(fut);
        let h = Handle::from(&root);
        self.tasks.root = Some(h);
        self.tasks.root_stuck = false;
        let ran = self.run(RunMode::Default);
        self.tasks.root = None;
        let stuck = std::mem::take(&mut self.tasks.root_stuck);
        let outcome = root.take_result();
        if outcome.is_none() {
            self.close(Task(h));
        }
        ran?;
        match outcome {
            Some(Ok(v)) => Ok(v),
            Some(Err(Failure::Panicked(payload))) => resume_unwind(payload),
            Some(Err(Failure::Aborted)) => Err(io::Error::new(
                io::ErrorKind::Interrupted,
                format!("block_on: its task {h} was closed before the future finished"),
            )),
            None if stuck => Err(io::Error::other(format!(
                "block_on: the future (task {h}) returned Pending but kept no waker, so nothing \
                 can ever wake it; a hand-written future must store cx.waker() before Pending"
            ))),
            None => Err(io::Error::new(
                io::ErrorKind::Interrupted,
                format!("block_on: the loop stopped before the future (task {h}) finished"),
            )),
        }
    }

    /// close() on a task: drop its future now. Its leaf futures ask the loop to undo
    /// what they started (clear a timer, stop reading, cancel queued work), and the loop
    /// does so here; its `JoinHandle` gets `Aborted`.
    pub(crate) fn stop_task(&mut self, h: Handle) {
        if let Some(State::Task(t)) = self.handles.state_mut(h) {
            let cell = t.cell.clone();
            if let Some(future) = t.future.take() {
                future.fail(&*cell, Failure::Aborted);
                drop(future);
            }
        }
        self.act_on_asks();
    }

    /// " (tasks waiting on: fd 9 readable, sleep 120 ms)" for the tasks that hold the
    /// loop, or nothing.
    pub(crate) fn tasks_waiting_on(&self) -> String {
        // Reads waiting by their task's handle left no note: their streams say so. By
        // task, so the trace's "alive" line (every tick) stays linear in the handles.
        let mut reads: HashMap<Handle, Vec<Handle>> = HashMap::new();
        for info in self.handles.infos() {
            if let Some(State::Stream(s)) = self.handles.get(info.handle).map(|s| &s.state) {
                if let Some(task) = s.task_waiting_to_read() {
                    reads.entry(task).or_default().push(info.handle);
                }
            }
        }
        let mut waits = Vec::new();
        for info in self.handles.infos() {
            if info.kind != HandleKind::Task || !info.holds_loop() {
                continue;
            }
            if let Some(State::Task(t)) = self.handles.get(info.handle).map(|s| &s.state) {
                if let Some(w) = &t.note {
                    waits.push(w.describe(self));
                }
                if t.more_notes > 0 {
                    waits.push(format!("{} more", t.more_notes));
                }
                for &stream in reads.get(&info.handle).into_iter().flatten() {
                    waits.push(Waiting::Readable(stream).describe(self));
                }
            }
        }
        if waits.is_empty() {
            return String::new();
        }
        format!(" (tasks waiting on: {})", waits.join(", "))
    }
}

impl Drop for TaskState {
    /// The loop is dropped with the task unfinished: its `JoinHandle` says `Aborted`.
    fn drop(&mut self) {
        if let Some(future) = self.future.take() {
            future.fail(&*self.cell, Failure::Aborted);
        }
    }
}
