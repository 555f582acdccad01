//! Running the servers: one loop, a group of loops, the thread server, the raw and the
//! io_uring echoes, and how each hears SIGINT and SIGTERM.

use crate::Result;
use looplab::group::GroupBuilder;
use looplab::servers::echo::{Echo, EchoConfig};
use looplab::servers::echo_async::EchoAsync;
use looplab::servers::echo_threads::{EchoThreads, EchoThreadsConfig, Notice, ACCEPT_BACKOFF};
use looplab::servers::longpoll::{LongPoll, LongPollConfig};
use looplab::servers::metrics_http::{MetricsConfig, MetricsServer};
use looplab::{Backend, Loop, RunMode, Trigger};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Servers hold one fd per connection: take all the fds the hard limit allows.
pub(crate) fn raise_fd_limit() {
    if let Err(e) = looplab::raise_nofile_limit() {
        eprintln!("looplab: could not raise the open-file limit: {e}");
    }
}

/// A server's loop: the fd limit raised, the chosen (or the OS's) backend, level- or
/// edge-triggered as chosen (or as the backend is by default).
pub(crate) fn server_loop(
    backend: Option<Backend>,
    trigger: Option<Trigger>,
) -> std::io::Result<Loop> {
    raise_fd_limit();
    let mut builder = Loop::builder();
    if let Some(b) = backend {
        builder = builder.backend(b);
    }
    if let Some(t) = trigger {
        builder = builder.trigger(t);
    }
    builder.build()
}

/// SIGINT and SIGTERM run `shutdown`, which closes what the server holds; then only the
/// (unref'd) signal handles are left, so the loop exits by itself and we return 0.
pub(crate) fn on_shutdown_signals(
    lp: &mut Loop,
    shutdown: impl Fn(&mut Loop) + Clone + 'static,
) -> std::io::Result<()> {
    for signum in [libc::SIGINT, libc::SIGTERM] {
        let f = shutdown.clone();
        lp.signal(signum, move |lp, _, _| f(lp))?;
    }
    Ok(())
}

/// `--metrics-addr`: the endpoint on the server's loop; `announce_metrics` says where, on
/// the line after "listening on" (what the bench and the tests read first).
pub(crate) fn start_metrics(
    lp: &mut Loop,
    addr: Option<SocketAddr>,
) -> Result<Option<MetricsServer>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let cfg = MetricsConfig {
        addr,
        ..MetricsConfig::default()
    };
    let m = MetricsServer::listen(lp, cfg).map_err(|e| format!("--metrics-addr {addr}: {e}"))?;
    Ok(Some(m))
}

/// The second line, after `listening on`: where the metrics are.
pub(crate) fn announce_metrics(lp: &Loop, metrics: Option<&MetricsServer>) -> Result {
    if let Some(m) = metrics {
        let at = m.local_addr(lp)?;
        // Whoever started us may read only the first line: a closed stdout is no error.
        let _ = writeln!(
            std::io::stdout(),
            "metrics on http://{at}/metrics and http://{at}/loop"
        );
    }
    Ok(())
}

pub(crate) fn no_loop_to_watch(server: &str, metrics_addr: Option<SocketAddr>) -> Result {
    match metrics_addr {
        None => Ok(()),
        Some(_) => Err(format!(
            "--metrics-addr: {server} has no event loop to watch; use it with echo or longpoll"
        )
        .into()),
    }
}

pub(crate) fn run_echo(
    backend: Option<Backend>,
    trigger: Option<Trigger>,
    config: EchoConfig,
    metrics: Option<SocketAddr>,
) -> Result {
    let mut lp = server_loop(backend, trigger)?;
    let echo = Echo::listen(&mut lp, config)?;
    echo.on_error(|e| eprintln!("echo: {e}"));
    let metrics = start_metrics(&mut lp, metrics)?;
    let (e, m) = (echo.clone(), metrics.clone());
    on_shutdown_signals(&mut lp, move |lp| {
        e.shutdown(lp);
        if let Some(m) = &m {
            m.shutdown(lp);
        }
    })?;
    // Said once the signals are handled: a script may send SIGINT as soon as it reads it.
    println!("listening on {}", echo.local_addr(&lp)?);
    announce_metrics(&lp, metrics.as_ref())?;
    lp.run(RunMode::Default)?;
    let s = echo.stats();
    eprintln!(
        "echo: served {} connections, {} bytes, shed {}",
        s.accepted, s.bytes, s.shed
    );
    Ok(())
}

pub(crate) fn run_echo_group(
    group: GroupBuilder,
    config: EchoConfig,
    metrics: Option<SocketAddr>,
) -> Result {
    if metrics.is_some() {
        return Err("--metrics-addr watches one loop; use it with --loops 1".into());
    }
    raise_fd_limit();
    let group = looplab::group::echo::spawn(group, config, |i, e| eprintln!("echo loop {i}: {e}"))?;
    if let Some(note) = group.note() {
        eprintln!("looplab: {note}");
    }
    let addr = group.local_addr().ok_or("the group has no listener")?;
    // Said once the signals are handled: a script may send SIGTERM as soon as it reads it.
    let ended = group.run_until_signal(|| println!("listening on {addr}"))?;
    let mut per_loop = Vec::new();
    for (i, r) in ended.into_iter().enumerate() {
        let s = r.map_err(|e| format!("loop {i}: {e}"))?;
        eprintln!(
            "echo loop {i}: served {} connections, {} bytes, shed {}",
            s.accepted, s.bytes, s.shed
        );
        per_loop.push(s.accepted.to_string());
    }
    // One line the benchmark reads: how evenly the kernel spread the connections.
    eprintln!("echo: connections per loop: {}", per_loop.join(","));
    Ok(())
}

/// The io_uring echo until killed. Refused io_uring is an error with its reason (exit 1),
/// never a quiet fallback to epoll: a benchmark row labelled uring must be uring.
#[cfg(target_os = "linux")]
pub(crate) fn run_echo_uring(config: EchoConfig) -> Result {
    use looplab::servers::echo_uring::{self, UringStats};
    raise_fd_limit();
    // Like the raw rung, a loop of its own without ours: the same handler-set flag, seen
    // within the ring's 100 ms tick (its wait tolerates the EINTR the signal causes).
    let stop = looplab::servers::raw_echo::stop_on_signals()?;
    let live = std::sync::Mutex::new(UringStats::default());
    let s = echo_uring::serve(&config, stop, &live, |addr, s| {
        let yes = |b: bool| if b { "yes" } else { "no" };
        eprintln!(
            "echo (uring): provided-buffer ring {}, multishot accept {} and recv {} (each falls back if refused), deferred task work {}, {} registered files",
            yes(s.features.buf_ring),
            yes(s.multishot_accept),
            yes(s.multishot_recv),
            yes(s.features.defer_taskrun),
            s.registered_files
        );
        println!("listening on {addr}");
    })?;
    eprintln!(
        "echo (uring): served {} connections, {} bytes, shed {}; {} late completions dropped",
        s.echo.accepted, s.echo.bytes, s.echo.shed, s.stale
    );
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn run_echo_uring(_config: EchoConfig) -> Result {
    Err("--backend uring: io_uring exists only on Linux".into())
}

pub(crate) fn run_echo_async(
    backend: Option<Backend>,
    trigger: Trigger,
    config: EchoConfig,
) -> Result {
    let mut lp = server_loop(backend, Some(trigger))?;
    let echo = EchoAsync::listen(&mut lp, config)?;
    let e = echo.clone();
    on_shutdown_signals(&mut lp, move |lp| e.shutdown(lp))?;
    // Said once the signals are handled: a script may send SIGTERM as soon as it reads it.
    println!("listening on {}", echo.local_addr());
    lp.run(RunMode::Default)?;
    let s = echo.stats();
    eprintln!(
        "echo-async: served {} connections, {} bytes, shed {}",
        s.accepted, s.bytes, s.shed
    );
    Ok(())
}

pub(crate) fn run_longpoll(
    cfg: LongPollConfig,
    backend: Option<Backend>,
    metrics: Option<SocketAddr>,
) -> Result {
    let mut lp = server_loop(backend, None)?;
    let server = LongPoll::listen(&mut lp, cfg)?;
    let metrics = start_metrics(&mut lp, metrics)?;
    // Held polls are answered with "shutdown": true before their connections close;
    // what is still open after the grace is cut (a second signal cuts at once).
    let (s, m) = (server.clone(), metrics.clone());
    on_shutdown_signals(&mut lp, move |lp| {
        s.shutdown(lp);
        if let Some(m) = &m {
            m.shutdown(lp);
        }
    })?;
    // Said once the signals are handled: a script may send SIGINT as soon as it reads it.
    println!("listening on http://{}/", server.local_addr(&lp)?);
    announce_metrics(&lp, metrics.as_ref())?;
    lp.run(RunMode::Default)?;
    let st = server.stats();
    eprintln!(
        "longpoll: {} published, {} polls answered by message, {} by timeout, {} aborted by clients",
        st.chat.published, st.chat.answered_by_message, st.chat.answered_by_timeout, st.chat.aborted
    );
    eprintln!(
        "longpoll: {} connection(s) cut at shutdown, {} closed by the send timeout",
        st.wire.cut_at_shutdown, st.wire.send_timeouts
    );
    Ok(())
}

pub(crate) fn run_longpoll_group(
    cfg: LongPollConfig,
    group: GroupBuilder,
    metrics: Option<SocketAddr>,
) -> Result {
    if metrics.is_some() {
        return Err("--metrics-addr watches one loop; use it with --loops 1".into());
    }
    raise_fd_limit();
    let group = looplab::servers::longpoll::group::spawn(group, cfg)?;
    if let Some(note) = group.note() {
        eprintln!("looplab: {note}");
    }
    let addr = group.local_addr().ok_or("the group has no listener")?;
    // Said once the signals are handled: a script may send SIGINT as soon as it reads it.
    let ended = group.run_until_signal(|| println!("listening on http://{addr}/"))?;
    for r in ended {
        let r = r?;
        let (c, w) = (r.stats.chat, r.stats.wire);
        eprintln!(
            "longpoll loop {}: {} connections, {} publishes appended (the owner, loop 0, appends every loop's), {} polls answered by message, {} by timeout, {} hops sent to other loops",
            r.index, w.accepted, c.published, c.answered_by_message, c.answered_by_timeout, r.hops_sent
        );
    }
    Ok(())
}

pub(crate) fn run_echo_threads(cfg: EchoThreadsConfig) -> Result {
    raise_fd_limit();
    // The connection threads need no loop; this one only waits for SIGINT or SIGTERM.
    // Built first, so its fds are taken before clients can use up the limit.
    let mut lp = Loop::new()?;
    for signum in [libc::SIGINT, libc::SIGTERM] {
        let s = lp.signal(signum, |lp, _, _| lp.stop())?;
        lp.ref_handle(s); // signal handles start unref'd; these are what the loop waits for
    }
    let server = EchoThreads::start_with(cfg, Arc::new(tell_thread_notice))?;
    println!("listening on {}", server.local_addr());
    // Returning ends the process, and with it the accept and connection threads.
    lp.run(RunMode::Default)?;
    let s = server.stats();
    eprintln!(
        "echo-threads: served {} connections, shed {}, {} closed idle, {} still open",
        s.accepted.load(Ordering::Relaxed),
        s.shed.load(Ordering::Relaxed),
        s.timed_out.load(Ordering::Relaxed),
        s.open.load(Ordering::Relaxed)
    );
    Ok(())
}

pub(crate) fn tell_thread_notice(notice: Notice) {
    match notice {
        Notice::OutOfFds(e) => eprintln!(
            "echo-threads: out of file descriptors ({e}); retrying accept every {} ms",
            ACCEPT_BACKOFF.as_millis()
        ),
        Notice::NoThread(e) => eprintln!(
            "echo-threads: cannot start a thread for a new connection ({e}); refusing connections until threads free up"
        ),
        Notice::Recovered { failures } => {
            eprintln!("echo-threads: accepting again after {failures} failed attempts")
        }
    }
}

pub(crate) fn run_echo_raw(addr: SocketAddr) -> Result {
    raise_fd_limit();
    // One thread, as the rung promises: its handler sets a flag, no loop of ours needed.
    #[cfg(target_os = "linux")]
    let stop = looplab::servers::raw_echo::stop_on_signals()?;
    #[cfg(not(target_os = "linux"))]
    let stop = &std::sync::atomic::AtomicBool::new(false);
    looplab::servers::raw_echo::serve(addr, |bound| println!("listening on {bound}"), stop)?;
    Ok(())
}
