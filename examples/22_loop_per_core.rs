//! # 22 — One loop per core
//!
//! **What it shows.** Two loops on two threads accept on one address. Each answers a
//! connection with the number of the loop that accepted it, and tells loop 0 about it
//! with a message through loop 0's mailbox (a bounded channel and loop 0's async
//! handle: the only way one loop reaches another). The main thread is the client: it
//! opens 20 connections one after another, counts who answered, then stops the group
//! and prints what loop 0 heard and how many messages crossed between the loops.
//!
//! **Run it.** `cargo run --example 22_loop_per_core` (SO_REUSEPORT: a socket per loop),
//! or `cargo run --example 22_loop_per_core -- exclusive` (one socket, EPOLLEXCLUSIVE);
//! add `LOOPLAB_TRACE=1` to see each loop's ticks, and its `mailbox` notes.
//!
//! **Look for** `answers by loop:`. Under reuseport the kernel hashes each connection's
//! addresses to one loop's socket, so both loops get a share, busy or not. Under
//! exclusive a connection wakes a loop that is waiting in `epoll_wait`: here loop 0 is
//! often busy with the previous connection's message when the next one comes, so loop 1
//! gets it; an idle server fed one connection at a time gives them all to one loop, the
//! first in the socket's wait queue (`looplab bench --loops` shows it). So the exclusive
//! split changes from run to run, and is usually lopsided, all or nearly all 20 to one
//! loop (with `--release` every time on the book's machine; the slower debug build more
//! often splits evenly): run it a few times.
//! Then `loop 0 heard of 20 connections`, split by sender exactly as the answers were,
//! and `hops into loop 0: 20 posted, 20 delivered, 0 refused`: every message into loop
//! 0's mailbox, loop 0's own to itself among them (it posts the same way).
//!
//! **In production** the loops would run a real server (`looplab echo --loops N`,
//! `looplab longpoll --loops N`), be pinned to cores (`.pin(true)`), and stop on
//! SIGINT/SIGTERM (`LoopGroup::run_until_signal`). See docs/17-one-loop-per-core.md.

use looplab::group::{ListenMode, LoopCtx, LoopGroup};
use looplab::Loop;
use std::io::Read;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

/// What one loop tells another: "loop i accepted a connection".
struct Accepted {
    by: usize,
}

fn setup(
    lp: &mut Loop,
    ctx: &mut LoopCtx<Accepted>,
) -> std::io::Result<impl FnOnce(&mut Loop) -> [u64; 2]> {
    let me = ctx.index();
    let postbox = ctx.postbox();
    let listener = ctx.listen(lp, move |lp, _, conn| {
        let Ok(conn) = conn else { return };
        // Posted before the answer is written (a write is tried at once), so the client
        // has read its byte only after the post. Refused only if loop 0's mailbox is
        // full: a count is lost, nothing else.
        let _ = postbox.post(0, Accepted { by: me });
        // One byte, our index, then close once it is written.
        let _ = lp.write_then(conn, [me as u8], |lp, c, _| {
            lp.close(c);
        });
    })?;
    // Only loop 0 is written to; its counts, by sender, live on loop 0's thread.
    let heard = std::rc::Rc::new(std::cell::Cell::new([0u64; 2]));
    let h = heard.clone();
    ctx.on_message(move |_, msg: Accepted| {
        let mut counts = h.get();
        if let Some(n) = counts.get_mut(msg.by) {
            *n += 1;
        }
        h.set(counts);
    });
    ctx.on_stop(move |lp| {
        lp.close(listener);
    });
    Ok(move |_: &mut Loop| heard.get())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mode: ListenMode = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("reuseport")
        .parse()?;
    let group = LoopGroup::builder()
        .loops(2)
        .mode(mode)
        .listen("127.0.0.1:0".parse()?)
        .spawn(setup)?;
    if let Some(note) = group.note() {
        println!("note: {note}");
    }
    let addr = group.local_addr().ok_or("no listener")?;
    println!("mode: {}, listening on {addr}", group.mode().name());
    let mut answers = [0u32; 2];
    for _ in 0..20 {
        let mut c = TcpStream::connect(addr)?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut who = [0u8; 1];
        c.read_exact(&mut who)?;
        if let Some(n) = answers.get_mut(usize::from(who[0])) {
            *n += 1;
        }
    }
    println!(
        "answers by loop: loop 0: {}, loop 1: {}",
        answers[0], answers[1]
    );
    // Every Accepted was posted before its byte was written: all are in loop 0's
    // mailbox by now. Wait until it has run them, then stop.
    let postbox = group.postbox();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for _ in 0..1000 {
            if postbox.hops()[0].delivered >= 20 {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = tx.send(postbox.hops());
    });
    let hops = rx.recv()?;
    group.stop();
    let heard = group.join();
    let [from0, from1] = heard
        .first()
        .and_then(|r| r.as_ref().ok())
        .copied()
        .unwrap_or_default();
    let total = from0 + from1;
    println!(
        "loop 0 heard of {total} connections through its mailbox: \
         {from0} from loop 0, {from1} from loop 1"
    );
    println!(
        "hops into loop 0: {} posted, {} delivered, {} refused",
        hops[0].posted, hops[0].delivered, hops[0].refused
    );
    Ok(())
}
