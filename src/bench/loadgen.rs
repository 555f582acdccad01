//! The load generator: a closed loop on looplab's own event loop.
//!
//! Each connection sends one message of `size` bytes and waits for the whole echo
//! before sending the next, so throughput is what the server can turn around and
//! latency is one round trip. Every echoed byte is checked against what was sent (the
//! content changes with every message), and a mismatch counts as an error.
//!
//! The run has three steps, the same instant for every client thread:
//! 1. **ramp**: connect in batches of [`RAMP_BATCH`] (a storm of thousands of SYNs at
//!    once would overflow the server's listen backlog and measure the ramp, not the
//!    server);
//! 2. **warmup**: traffic flows, nothing is recorded;
//! 3. **window**: round trips and latencies are recorded, then every connection closes.

use crate::{Loop, ReadEvent, RunMode, Tcp};
use hdrhistogram::Histogram;
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Connections opened at a time while ramping up.
pub const RAMP_BATCH: usize = 200;
/// How long past the window the connections stay busy before closing.
const CLOSE_GRACE: Duration = Duration::from_millis(150);
/// Latencies are recorded in µs up to a minute, 3 significant digits.
const MAX_LATENCY_US: u64 = 60_000_000;

/// What to run.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The server (loopback only).
    pub addr: SocketAddr,
    /// Connections in all.
    pub conns: usize,
    /// Bytes per message.
    pub size: usize,
    /// Traffic before recording starts.
    pub warmup: Duration,
    /// The recorded window.
    pub duration: Duration,
    /// Client threads, each with its own loop and a share of the connections.
    pub threads: usize,
}

/// What one run measured.
#[derive(Clone, Debug)]
pub struct LoadResult {
    /// Round trips completed inside the window.
    pub round_trips: u64,
    /// Round trips completed over the whole run (warmup and closing grace included):
    /// what `errors` is counted over.
    pub all_round_trips: u64,
    /// Echoed payload bytes inside the window.
    pub bytes: u64,
    /// Round trips whose echo did not match what was sent, plus connections the
    /// server closed or reset during the run.
    pub errors: u64,
    /// Connections that connected.
    pub connected: usize,
    /// Connections that could not connect.
    pub connect_failures: usize,
    /// Connected but completed no round trip in the window: a server that fails to
    /// hold its connections (e.g. no thread for them) shows up here.
    pub stalled: usize,
    /// The real length of the window.
    pub window: Duration,
    /// Round-trip latency in µs.
    pub latency: Histogram<u64>,
}

/// Called by `run` at the edges of the window, from the calling thread.
pub trait WindowObserver {
    /// The recorded window begins now.
    fn window_start(&mut self);
    /// The recorded window ends now (connections are still open).
    fn window_end(&mut self);
}

/// Run the load and return the merged figures.
pub fn run(cfg: &LoadConfig, observer: &mut dyn WindowObserver) -> io::Result<LoadResult> {
    if !cfg.addr.ip().is_loopback() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("the load generator only targets loopback, not {}", cfg.addr),
        ));
    }
    let threads = cfg.threads.clamp(1, cfg.conns.max(1));
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let mut starts = Vec::new();
    let mut workers = Vec::new();
    for t in 0..threads {
        let share = cfg.conns / threads + usize::from(t < cfg.conns % threads);
        let (start_tx, start_rx) = mpsc::channel::<Instant>();
        starts.push(start_tx);
        let (cfg, ready) = (cfg.clone(), ready_tx.clone());
        let worker = std::thread::Builder::new()
            .name(format!("loadgen-{t}"))
            .spawn(move || client_thread(&cfg, t, share, &ready, &start_rx))?;
        workers.push(worker);
    }
    drop(ready_tx);
    // Everyone has connected (or failed to) before the clock starts.
    for _ in 0..threads {
        if ready_rx.recv().is_err() {
            break; // a thread failed; its error comes out of join below
        }
    }
    let t0 = Instant::now() + Duration::from_millis(20);
    for s in &starts {
        let _ = s.send(t0);
    }
    sleep_until(t0 + cfg.warmup);
    observer.window_start();
    sleep_until(t0 + cfg.warmup + cfg.duration);
    observer.window_end();
    let mut total: Option<LoadResult> = None;
    for w in workers {
        let r = w
            .join()
            .map_err(|_| io::Error::other("a load generator thread panicked"))??;
        total = Some(match total {
            None => r,
            Some(mut acc) => {
                acc.round_trips += r.round_trips;
                acc.all_round_trips += r.all_round_trips;
                acc.bytes += r.bytes;
                acc.errors += r.errors;
                acc.connected += r.connected;
                acc.connect_failures += r.connect_failures;
                acc.stalled += r.stalled;
                acc.window = acc.window.max(r.window);
                acc.latency
                    .add(&r.latency)
                    .map_err(|e| io::Error::other(format!("merging histograms: {e}")))?;
                acc
            }
        });
    }
    total.ok_or_else(|| io::Error::other("no load generator thread ran"))
}

fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// The byte at offset `i` of message `seq` on connection `conn`: different every time,
/// so a server that echoes stale or shuffled bytes is caught.
fn pattern(conn: usize, seq: u64, i: usize) -> u8 {
    (conn as u64)
        .wrapping_mul(31)
        .wrapping_add(seq.wrapping_mul(7))
        .wrapping_add(i as u64) as u8
}

struct Conn {
    id: usize,
    tcp: Option<Tcp>,
    seq: u64,
    received: usize,
    corrupt: bool,
    sent_at: Instant,
    done_in_window: u64,
    connected: bool,
}

struct Shared {
    size: usize,
    measuring: bool,
    finished: bool,
    round_trips: u64,
    all_round_trips: u64,
    bytes: u64,
    errors: u64,
    connected: usize,
    connect_failures: usize,
    pending_connects: usize,
    window_started: Option<Instant>,
    window: Duration,
    latency: Histogram<u64>,
    message: Vec<u8>,
}

type State = Rc<RefCell<Shared>>;

fn client_thread(
    cfg: &LoadConfig,
    thread: usize,
    conns: usize,
    ready: &mpsc::Sender<()>,
    start: &mpsc::Receiver<Instant>,
) -> io::Result<LoadResult> {
    let latency = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut lp = Loop::builder().threadpool_size(1).build()?;
    let state: State = Rc::new(RefCell::new(Shared {
        size: cfg.size,
        measuring: false,
        finished: false,
        round_trips: 0,
        all_round_trips: 0,
        bytes: 0,
        errors: 0,
        connected: 0,
        connect_failures: 0,
        pending_connects: 0,
        window_started: None,
        window: Duration::ZERO,
        latency,
        message: vec![0; cfg.size],
    }));
    let all: Rc<RefCell<Vec<Rc<RefCell<Conn>>>>> = Rc::new(RefCell::new(Vec::with_capacity(conns)));

    // 1. Ramp: connect in batches, running the loop until each batch has settled.
    let mut next = 0;
    while next < conns {
        let batch = RAMP_BATCH.min(conns - next);
        state.borrow_mut().pending_connects = batch;
        for k in next..next + batch {
            let id = thread * 1_000_000 + k;
            let conn = Rc::new(RefCell::new(Conn {
                id,
                tcp: None,
                seq: 0,
                received: 0,
                corrupt: false,
                sent_at: Instant::now(),
                done_in_window: 0,
                connected: false,
            }));
            let (s, c) = (state.clone(), conn.clone());
            let started = lp.tcp_connect(cfg.addr, move |lp, tcp, r| {
                let mut st = s.borrow_mut();
                st.pending_connects -= 1;
                match r {
                    Ok(()) => {
                        st.connected += 1;
                        let mut c = c.borrow_mut();
                        c.tcp = Some(tcp);
                        c.connected = true;
                    }
                    Err(_) => {
                        st.connect_failures += 1;
                        lp.close(tcp);
                    }
                }
            });
            match started {
                Ok(_) => all.borrow_mut().push(conn),
                Err(_) => {
                    let mut st = state.borrow_mut();
                    st.connect_failures += 1;
                    st.pending_connects -= 1;
                }
            }
        }
        while state.borrow().pending_connects > 0 {
            lp.run(RunMode::Once)?;
        }
        next += batch;
    }
    let _ = ready.send(());
    let Ok(t0) = start.recv() else {
        return Err(io::Error::other("the benchmark stopped before the start"));
    };
    sleep_until(t0);

    // 2 and 3. Warmup, then the window; then close everything.
    let s = state.clone();
    lp.set_timeout(cfg.warmup, move |lp, _| {
        let mut st = s.borrow_mut();
        st.measuring = true;
        st.window_started = Some(lp.now());
    });
    let s = state.clone();
    lp.set_timeout(cfg.warmup + cfg.duration, move |lp, _| {
        let mut st = s.borrow_mut();
        st.measuring = false;
        st.window = st
            .window_started
            .map_or(Duration::ZERO, |w| lp.now().duration_since(w));
    });
    // The load stays on a little past the window, so the server is sampled under load
    // (a thread-per-connection server lets its threads go as soon as clients leave).
    let (s, a) = (state.clone(), all.clone());
    lp.set_timeout(cfg.warmup + cfg.duration + CLOSE_GRACE, move |lp, _| {
        s.borrow_mut().finished = true;
        for c in a.borrow().iter() {
            if let Some(tcp) = c.borrow_mut().tcp.take() {
                lp.close(tcp);
            }
        }
    });
    for c in all.borrow().iter() {
        if c.borrow().tcp.is_some() {
            start_conn(&mut lp, &state, c);
        }
    }
    lp.run(RunMode::Default)?;

    let stalled = all
        .borrow()
        .iter()
        .filter(|c| c.borrow().connected && c.borrow().done_in_window == 0)
        .count();
    let st = state.borrow();
    Ok(LoadResult {
        round_trips: st.round_trips,
        all_round_trips: st.all_round_trips,
        bytes: st.bytes,
        errors: st.errors,
        connected: st.connected,
        connect_failures: st.connect_failures,
        stalled,
        window: st.window,
        latency: st.latency.clone(),
    })
}

fn start_conn(lp: &mut Loop, state: &State, conn: &Rc<RefCell<Conn>>) {
    let Some(tcp) = conn.borrow().tcp else { return };
    let (s, c) = (state.clone(), conn.clone());
    let reading = lp.read_start(tcp, move |lp, tcp, ev| on_echo(lp, &s, &c, tcp, ev));
    if reading.is_ok() {
        send_next(lp, state, conn);
    }
}

fn send_next(lp: &mut Loop, state: &State, conn: &Rc<RefCell<Conn>>) {
    let mut st = state.borrow_mut();
    if st.finished {
        return;
    }
    let mut c = conn.borrow_mut();
    let Some(tcp) = c.tcp else { return };
    let size = st.size;
    for (i, b) in st.message.iter_mut().enumerate() {
        *b = pattern(c.id, c.seq, i);
    }
    c.received = 0;
    c.corrupt = false;
    c.sent_at = Instant::now();
    let sent = lp.write(tcp, &st.message[..size]);
    if sent.is_err() {
        st.errors += 1;
        c.tcp = None;
        drop((st, c));
        lp.close(tcp);
    }
}

fn on_echo(lp: &mut Loop, state: &State, conn: &Rc<RefCell<Conn>>, tcp: Tcp, ev: ReadEvent<'_>) {
    let bytes = match ev {
        ReadEvent::Data(b) => b,
        ReadEvent::Eof | ReadEvent::Error(_) => {
            // The server dropped us mid-run (not our own close at the end).
            let mut st = state.borrow_mut();
            if !st.finished {
                st.errors += 1;
            }
            conn.borrow_mut().tcp = None;
            drop(st);
            lp.close(tcp);
            return;
        }
    };
    let complete = {
        let mut c = conn.borrow_mut();
        let size = state.borrow().size;
        let start = c.received;
        if start + bytes.len() > size {
            c.corrupt = true; // more than we sent: the server invented bytes
        }
        let (id, seq) = (c.id, c.seq);
        if bytes
            .iter()
            .enumerate()
            .take(size.saturating_sub(start))
            .any(|(i, b)| *b != pattern(id, seq, start + i))
        {
            c.corrupt = true;
        }
        c.received += bytes.len();
        c.received >= size
    };
    if !complete {
        return;
    }
    {
        let mut st = state.borrow_mut();
        let mut c = conn.borrow_mut();
        if c.corrupt {
            st.errors += 1;
        }
        st.all_round_trips += 1;
        if st.measuring {
            let us = c
                .sent_at
                .elapsed()
                .as_micros()
                .clamp(1, u128::from(MAX_LATENCY_US)) as u64;
            let _ = st.latency.record(us);
            st.round_trips += 1;
            st.bytes += st.size as u64;
            c.done_in_window += 1;
        }
        c.seq += 1;
    }
    send_next(lp, state, conn);
}
