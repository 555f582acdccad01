//! Blocking work as futures: `offload(|| ..)`, and `fs` and `dns` on top of it.
//!
//! The job goes to the loop's thread pool (`Loop::queue_work`) when the future is first
//! polled; the pool's completion wakes the loop through the self-pipe, the `done`
//! callback fills the future's cell on the loop thread and wakes the task. Dropping the
//! future before the job has started cancels it (`Loop::cancel`): no worker will run
//! it. A job that has started finishes, and its result is dropped.

use super::reactor::{self, Note, PoolJob, Reactor, Waiting};
use crate::event_loop::Loop;
use crate::handle::Work;
use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

struct Cell<T> {
    work: Option<Work>,
    result: Option<io::Result<T>>,
    waker: Option<Waker>,
}

type Shared<T> = Rc<RefCell<Cell<T>>>;
type Start<T> = Box<dyn FnOnce(&mut Loop, Shared<T>) -> Work>;

/// A job on the pool, as a future (`offload`, `fs::*`, `dns::lookup`).
pub struct OnPool<T: 'static> {
    job: PoolJob,
    start: Option<Start<T>>,
    asked: Option<(Rc<Reactor>, Shared<T>)>,
    /// What it told the loop it waits on, while it waits.
    note: Option<Note>,
}

/// The callback end: fill the cell and wake the task.
fn deliver<T>(cell: &Shared<T>, result: io::Result<T>) {
    let mut c = cell.borrow_mut();
    c.work = None;
    c.result = Some(result);
    if let Some(w) = c.waker.take() {
        w.wake();
    }
}

fn on_pool<T: 'static>(
    job: PoolJob,
    start: impl FnOnce(&mut Loop, Shared<T>) -> Work + 'static,
) -> OnPool<T> {
    OnPool {
        job,
        start: Some(Box::new(start)),
        asked: None,
        note: None,
    }
}

/// Run `job` on the thread pool; its return value, or an error if it panicked (or
/// the pool could not start). For anything that blocks: a file, a lookup, a hash.
pub fn offload<T, F>(job: F) -> OnPool<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    on_pool(PoolJob::Offload, move |lp, cell| {
        lp.queue_work(job, move |_, _, r| {
            deliver(&cell, r.map_err(io::Error::from))
        })
    })
}

impl<T: 'static> Future for OnPool<T> {
    type Output = io::Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let r = reactor::current(self.job.name())?;
        if self.asked.is_none() {
            let cell = Rc::new(RefCell::new(Cell {
                work: None,
                result: None,
                waker: None,
            }));
            if let Some(start) = self.start.take() {
                let c = cell.clone();
                r.ask(move |lp| {
                    let w = start(lp, c.clone());
                    let mut c = c.borrow_mut();
                    if c.result.is_none() {
                        c.work = Some(w);
                    }
                });
            }
            self.asked = Some((r.clone(), cell));
        }
        let Some((_, cell)) = &self.asked else {
            return Poll::Pending; // set just above
        };
        let mut c = cell.borrow_mut();
        if let Some(result) = c.result.take() {
            drop(c);
            return Poll::Ready(result);
        }
        reactor::store_waker(&mut c.waker, cx);
        drop(c);
        let job = self.job;
        self.note = Some(r.waits_on(Waiting::Pool(job)));
        Poll::Pending
    }
}

impl<T: 'static> Drop for OnPool<T> {
    fn drop(&mut self) {
        let Some((r, cell)) = self.asked.take() else {
            return;
        };
        r.ask(move |lp| {
            if let Some(w) = cell.borrow_mut().work.take() {
                // False if a worker has it already: then it finishes and nobody reads it.
                lp.cancel(w);
            }
        });
    }
}

/// Files, read and written on the pool (`looplab::fs` as futures).
pub mod fs {
    use super::{on_pool, OnPool, PoolJob};
    use std::path::Path;

    /// Read a whole file.
    pub fn read(path: impl AsRef<Path>) -> OnPool<Vec<u8>> {
        let path = path.as_ref().to_path_buf();
        on_pool(PoolJob::FsRead, move |lp, cell| {
            crate::fs::read(lp, path, move |_, r| super::deliver(&cell, r))
        })
    }

    /// Create or truncate a file and write `data` to it.
    pub fn write(path: impl AsRef<Path>, data: impl Into<Vec<u8>>) -> OnPool<()> {
        let (path, data) = (path.as_ref().to_path_buf(), data.into());
        on_pool(PoolJob::FsWrite, move |lp, cell| {
            crate::fs::write(lp, path, data, move |_, r| super::deliver(&cell, r))
        })
    }

    /// Metadata of a path (follows symlinks).
    pub fn stat(path: impl AsRef<Path>) -> OnPool<std::fs::Metadata> {
        let path = path.as_ref().to_path_buf();
        on_pool(PoolJob::FsStat, move |lp, cell| {
            crate::fs::stat(lp, path, move |_, r| super::deliver(&cell, r))
        })
    }
}

/// Name resolution on the pool (`looplab::dns` as a future).
pub mod dns {
    use super::{on_pool, OnPool, PoolJob};
    use std::net::SocketAddr;

    /// Resolve `host` (a name or a literal address) with the system resolver.
    pub fn lookup(host: &str, port: u16) -> OnPool<Vec<SocketAddr>> {
        let host = host.to_string();
        on_pool(PoolJob::DnsLookup, move |lp, cell| {
            crate::dns::lookup(lp, &host, port, move |_, r| super::deliver(&cell, r))
        })
    }
}
