//! Starting a group: the two-step handshake between the spawner and each loop thread
//! drawn in the module docs of `group.rs`. Two steps because a loop's async handle (its
//! mailbox's wake) can only be made on its loop, while every loop needs every other's
//! before its server may post anything.

use super::mailbox::Counts;
use super::{
    bind_sockets, fallback, install_mailbox, peer, GroupBuilder, LoopCtx, LoopGroup, Postbox, Seed,
    Start,
};
use crate::{AsyncSender, Backend, Loop, RunMode};
use crossbeam_channel::Sender;
use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

/// A loop thread's first answer: its wake and backend, or why it could not start.
type Ready = (usize, io::Result<(AsyncSender, Backend)>);
/// Its second: whether its setup succeeded.
type Up = (usize, io::Result<()>);

/// The threads started, and the spawner's ends of their channels.
struct Launched<M, S> {
    /// Per loop, what the postbox needs besides the loop's wake.
    halves: Vec<(Sender<M>, Arc<AtomicBool>, Arc<Counts>)>,
    starts: Vec<mpsc::Sender<Start<M>>>,
    threads: Vec<JoinHandle<io::Result<S>>>,
    ready: mpsc::Receiver<Ready>,
    up: mpsc::Receiver<Up>,
    exited: crossbeam_channel::Receiver<usize>,
}

pub(super) fn spawn<M, S, F, Fin>(b: GroupBuilder, setup: Arc<F>) -> io::Result<LoopGroup<M, S>>
where
    M: Send + 'static,
    S: Send + 'static,
    F: Fn(&mut Loop, &mut LoopCtx<M>) -> io::Result<Fin> + Send + Sync + 'static,
    Fin: FnOnce(&mut Loop) -> S + 'static,
{
    let l = launch(&b, setup)?;
    // Dropping `l.starts` on an early return ends every thread still waiting for it.
    let wakes = wakes(&l.ready, b.loops)?;
    let backends: Vec<Backend> = wakes.iter().map(|w| w.1).collect();
    let (mode, note) = fallback(b.mode, &backends);
    let (mut sockets, addr) = match b.addr {
        Some(a) => {
            let (s, bound) = bind_sockets(a, b.loops, mode)?;
            (s.into_iter().map(Some).collect(), Some(bound))
        }
        None => ((0..b.loops).map(|_| None).collect::<Vec<_>>(), None),
    };
    let peers = l.halves.into_iter().zip(wakes);
    let postbox = Postbox::new(
        peers
            .map(|((tx, stop, counts), (wake, _))| peer(tx, stop, counts, wake))
            .collect(),
    );
    for (start, socket) in l.starts.iter().zip(sockets.iter_mut()) {
        let (postbox, socket) = (postbox.clone(), socket.take());
        let _ = start.send(Start {
            postbox,
            socket,
            mode,
        });
    }
    let group = LoopGroup {
        postbox,
        threads: l.threads,
        exited: l.exited,
        addr,
        mode,
        note,
    };
    all_set_up(group, &l.up, b.loops)
}

/// Start one thread per loop, each with its seed and its ends of the channels.
fn launch<M, S, F, Fin>(b: &GroupBuilder, setup: Arc<F>) -> io::Result<Launched<M, S>>
where
    M: Send + 'static,
    S: Send + 'static,
    F: Fn(&mut Loop, &mut LoopCtx<M>) -> io::Result<Fin> + Send + Sync + 'static,
    Fin: FnOnce(&mut Loop) -> S + 'static,
{
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (ready_tx, ready) = mpsc::channel::<Ready>();
    let (up_tx, up) = mpsc::channel::<Up>();
    let (exited_tx, exited) = crossbeam_channel::unbounded();
    let (mut halves, mut starts, mut threads) = (Vec::new(), Vec::new(), Vec::new());
    for index in 0..b.loops {
        let (tx, rx) = crossbeam_channel::bounded(super::MAILBOX_CAPACITY);
        let seed = Seed {
            index,
            pin: b.pin.then_some(index % cores),
            rx,
            stop: Arc::default(),
            counts: Arc::default(),
            exited: exited_tx.clone(),
        };
        halves.push((tx, seed.stop.clone(), seed.counts.clone()));
        let (start_tx, start_rx) = mpsc::channel::<Start<M>>();
        starts.push(start_tx);
        let (ready, up) = (ready_tx.clone(), up_tx.clone());
        let (make, setup) = (b.make_loop.clone(), setup.clone());
        let t = std::thread::Builder::new()
            .name(format!("looplab-loop-{index}"))
            .spawn(move || loop_thread(seed, &*make, ready, start_rx, up, &*setup))?;
        threads.push(t);
    }
    // Only the threads hold senders now: one that dies unannounced ends the waits.
    Ok(Launched {
        halves,
        starts,
        threads,
        ready,
        up,
        exited,
    })
}

/// Every loop's wake and backend, in loop order; the first loop's error if one failed.
fn wakes(ready: &mpsc::Receiver<Ready>, loops: usize) -> io::Result<Vec<(AsyncSender, Backend)>> {
    let mut all: Vec<Ready> = ready.iter().take(loops).collect();
    if all.len() < loops {
        return Err(io::Error::other(
            "a loop's thread ended before its loop was built",
        ));
    }
    all.sort_by_key(|r| r.0);
    all.into_iter().map(|(_, r)| r).collect()
}

/// The group, once every loop's setup has succeeded; else the error, every loop stopped.
fn all_set_up<M: Send + 'static, S>(
    group: LoopGroup<M, S>,
    up: &mpsc::Receiver<Up>,
    loops: usize,
) -> io::Result<LoopGroup<M, S>> {
    let up: Vec<Up> = up.iter().take(loops).collect();
    let lost = up.len() < loops;
    match up.into_iter().find_map(|(_, r)| r.err()) {
        None if !lost => Ok(group),
        e => {
            group.stop();
            drop(group.join());
            Err(e.unwrap_or_else(|| io::Error::other("a loop's thread ended during its setup")))
        }
    }
}

/// One loop's thread: build, report, wait for the start, set up, run, finish.
fn loop_thread<M, S, F, Fin>(
    seed: Seed<M>,
    make: &(dyn Fn(usize) -> io::Result<Loop> + Send + Sync),
    ready: mpsc::Sender<Ready>,
    start: mpsc::Receiver<Start<M>>,
    up: mpsc::Sender<Up>,
    setup: &F,
) -> io::Result<S>
where
    M: Send + 'static,
    F: Fn(&mut Loop, &mut LoopCtx<M>) -> io::Result<Fin>,
    Fin: FnOnce(&mut Loop) -> S,
{
    let i = seed.index;
    let _exit = ExitGuard(seed.exited.clone(), i);
    let mut lp = match build(&seed, make) {
        Ok(lp) => lp,
        Err(e) => {
            let _ = ready.send((i, Err(e)));
            return Err(io::Error::other(format!("loop {i} did not start")));
        }
    };
    let (inbox, wake) = install_mailbox(&mut lp, &seed);
    let _ = ready.send((i, Ok((wake, lp.backend()))));
    drop(ready); // the spawner counts on every sender being gone once all have spoken
    let start = start
        .recv()
        .map_err(|_| io::Error::other(format!("loop {i}: another loop failed to start")))?;
    let mut ctx = LoopCtx {
        index: i,
        postbox: start.postbox,
        socket: start.socket,
        mode: start.mode,
        inbox,
    };
    let finish = match setup(&mut lp, &mut ctx) {
        Ok(f) => f,
        Err(e) => {
            let _ = up.send((i, Err(e)));
            return Err(io::Error::other(format!("loop {i}: its setup failed")));
        }
    };
    drop(ctx); // an unused socket closes now, not at exit
    let _ = up.send((i, Ok(())));
    drop(up);
    lp.run(RunMode::Default)?;
    Ok(finish(&mut lp))
}

/// Pin the thread if asked, then build its loop.
fn build<M>(
    seed: &Seed<M>,
    make: &(dyn Fn(usize) -> io::Result<Loop> + Send + Sync),
) -> io::Result<Loop> {
    let i = seed.index;
    if let Some(core) = seed.pin {
        crate::sys::affinity::pin_current_thread(&[core])
            .map_err(|e| crate::error::context(format!("pinning loop {i} to core {core}"), e))?;
    }
    make(i).map_err(|e| crate::error::context(format!("building loop {i}"), e))
}

/// Says "loop i has exited" however the thread ends, a panic included.
struct ExitGuard(crossbeam_channel::Sender<usize>, usize);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}
