//! Starting a group: the two-step handshake between the spawner and each loop thread
//! drawn in the module docs of `group.rs`. Two steps because a loop's async handle (its
//! mailbox's wake) can only be made on its loop, while every loop needs every other's
//! before its server may post anything.

use super::{
    bind_sockets, fallback, install_mailbox, peer, GroupBuilder, LoopCtx, LoopGroup, Postbox, Seed,
    Start,
};
use crate::{AsyncSender, Backend, Loop, RunMode};
use std::io;
use std::sync::{mpsc, Arc};

/// A loop thread's first answer: its wake and backend, or why it could not start.
type Ready = (usize, io::Result<(AsyncSender, Backend)>);
/// Its second: whether its setup succeeded.
type Up = (usize, io::Result<()>);

pub(super) fn spawn<M, S, F, Fin>(b: GroupBuilder, setup: Arc<F>) -> io::Result<LoopGroup<M, S>>
where
    M: Send + 'static,
    S: Send + 'static,
    F: Fn(&mut Loop, &mut LoopCtx<M>) -> io::Result<Fin> + Send + Sync + 'static,
    Fin: FnOnce(&mut Loop) -> S + 'static,
{
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (ready_tx, ready_rx) = mpsc::channel::<Ready>();
    let (up_tx, up_rx) = mpsc::channel::<Up>();
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
        let (ready, up, make, setup) = (
            ready_tx.clone(),
            up_tx.clone(),
            b.make_loop.clone(),
            setup.clone(),
        );
        let t = std::thread::Builder::new()
            .name(format!("looplab-loop-{index}"))
            .spawn(move || loop_thread(seed, &*make, ready, start_rx, up, &*setup))?;
        threads.push(t);
    }
    // Only the threads hold senders now: one that dies unannounced ends the wait.
    drop((ready_tx, up_tx));
    let mut ready: Vec<Ready> = ready_rx.iter().take(b.loops).collect();
    if ready.len() < b.loops {
        return Err(io::Error::other(
            "a loop's thread ended before its loop was built",
        ));
    }
    ready.sort_by_key(|r| r.0);
    let mut wakes = Vec::new();
    for (_, r) in ready {
        // Dropping `starts` on return ends every thread still waiting for its start.
        wakes.push(r?);
    }
    let backends: Vec<Backend> = wakes.iter().map(|w| w.1).collect();
    let (mode, note) = fallback(b.mode, &backends);
    let (mut sockets, addr) = match b.addr {
        Some(a) => {
            let (s, bound) = bind_sockets(a, b.loops, mode)?;
            (s.into_iter().map(Some).collect(), Some(bound))
        }
        None => ((0..b.loops).map(|_| None).collect::<Vec<_>>(), None),
    };
    let peers = halves
        .into_iter()
        .zip(wakes)
        .map(|((tx, stop, counts), (wake, _))| peer(tx, stop, counts, wake))
        .collect();
    let postbox = Postbox::new(peers);
    for (start, socket) in starts.iter().zip(sockets.iter_mut()) {
        let _ = start.send(Start {
            postbox: postbox.clone(),
            socket: socket.take(),
            mode,
        });
    }
    let group = LoopGroup {
        postbox,
        threads,
        exited,
        addr,
        mode,
        note,
    };
    let up: Vec<Up> = up_rx.iter().take(b.loops).collect();
    let lost = up.len() < b.loops;
    let failed = up.into_iter().find_map(|(_, r)| r.err());
    match failed {
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
    let built = seed
        .pin
        .map_or(Ok(()), |core| {
            crate::sys::affinity::pin_current_thread(&[core])
        })
        .map_err(|e| crate::error::context(format!("pinning loop {i}"), e))
        .and_then(|()| make(i).map_err(|e| crate::error::context(format!("building loop {i}"), e)));
    let mut lp = match built {
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

/// Says "loop i has exited" however the thread ends, a panic included.
struct ExitGuard(crossbeam_channel::Sender<usize>, usize);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}
