//! Watching the loop: what the loop measures (per-phase time, the slowest callback, the
//! pool's wait, run and wake), and the endpoint that serves it on the loop itself:
//! `/metrics` read by a strict Prometheus text-format parser (tests/util/prometheus.rs),
//! `/loop/poll` answered once per window. Times asserted are floors the tests' own
//! sleeps guarantee ("never early"), never what an idle machine would give.

mod util;

use looplab::metrics::LoopWindow;
use looplab::servers::metrics_http::{MetricsConfig, MetricsServer};
use looplab::{AsyncSender, HandleKind, Loop, Phase, ReadEvent, RunMode};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use util::http::Client;
use util::prometheus::{self, Exposition, Kind};
use util::watched::ServerWithMetrics;
use util::{new_loop, on_every_backend};

const BLOCK: Duration = Duration::from_millis(200);

/// A loop on its own thread serving a metrics endpoint; stopped and joined on drop.
struct Served {
    addr: SocketAddr,
    /// What `setup` said (a handle's name, say).
    said: String,
    stop: AsyncSender,
    thread: Option<JoinHandle<()>>,
}

fn serve(cfg: MetricsConfig, setup: impl FnOnce(&mut Loop) -> String + Send + 'static) -> Served {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut lp = Loop::builder().threadpool_size(2).build().unwrap();
        let m = MetricsServer::listen(&mut lp, cfg).unwrap();
        let said = setup(&mut lp);
        let server = m.clone();
        let (_, stop) = lp.async_handle(move |lp, a| {
            server.shutdown(lp);
            lp.close(a);
        });
        util::fail_after(&mut lp, Duration::from_secs(60));
        tx.send((m.local_addr(&lp).unwrap(), said, stop)).unwrap();
        lp.run(RunMode::Default).unwrap();
    });
    let (addr, said, stop) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    Served {
        addr,
        said,
        stop,
        thread: Some(thread),
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop.send();
        if let Some(t) = self.thread.take() {
            let joined = t.join();
            if !std::thread::panicking() {
                joined.unwrap();
            }
        }
    }
}

fn scrape(addr: SocketAddr) -> Exposition {
    let resp = Client::connect(addr).get("/metrics");
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    prometheus::parse(&resp.text()).unwrap_or_else(|e| panic!("{e}\n{}", resp.text()))
}

fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `/metrics` of a loaded echo server parses strictly, twice; every counter, bucket, sum
/// and count of the second scrape is at least the first's; the loop's work shows.
#[test]
fn metrics_parse_strictly_and_counters_only_grow() {
    let server = ServerWithMetrics::start(&["echo", "--addr", "127.0.0.1:0"]);
    let first = scrape(server.metrics);
    let mut clients: Vec<TcpStream> = (0..20).map(|_| util::connect(server.addr)).collect();
    for _ in 0..50 {
        for c in &mut clients {
            assert_eq!(util::round_trip(c, b"ping"), b"ping");
        }
    }
    // A pool probe (every 100 ms) has come back by the time a window has passed.
    let second = wait_until("a pool probe's wake in /metrics", || {
        let s = scrape(server.metrics);
        let wakes = s.by_series()["looplab_pool_wake_seconds_count{}"].1;
        (wakes >= 1.0).then_some(s)
    });
    let (before, after) = (first.by_series(), second.by_series());
    for (series, (kind, v)) in &before {
        if matches!(kind, Kind::Counter | Kind::Histogram) {
            let now = after.get(series).map(|x| x.1);
            assert!(
                now.is_some_and(|n| n >= *v),
                "{series} went from {v} to {now:?}"
            );
        }
    }
    let grew = |s: &str| after[s].1 - before[s].1;
    assert!(
        grew("looplab_events_total{}") >= 1000.0,
        "1000 round trips, each a read"
    );
    assert!(grew("looplab_callbacks_total{}") >= 1000.0);
    assert!(grew("looplab_ticks_total{}") >= 1.0);
    for (name, kind) in [
        ("looplab_ticks_total", Kind::Counter),
        ("looplab_phase_seconds_total", Kind::Counter),
        ("looplab_idle_seconds_total", Kind::Counter),
        ("looplab_utilization", Kind::Gauge),
        ("looplab_lag_seconds", Kind::Histogram),
        ("looplab_events_per_tick", Kind::Histogram),
        ("looplab_handles", Kind::Gauge),
        ("looplab_pool_queue_depth", Kind::Gauge),
        ("looplab_pool_queue_wait_seconds", Kind::Histogram),
        ("looplab_pool_run_seconds", Kind::Histogram),
        ("looplab_pool_wake_seconds", Kind::Histogram),
        ("looplab_slowest_callback_seconds", Kind::Gauge),
    ] {
        let f = second.family(name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(f.kind, kind, "{name}");
        assert!(f.help.is_some(), "{name} has no HELP");
    }
    let phases = &second
        .family("looplab_phase_seconds_total")
        .unwrap()
        .samples;
    let keys: Vec<&str> = phases.iter().filter_map(|s| s.label("phase")).collect();
    assert_eq!(
        keys,
        [
            "pending",
            "prepare",
            "poll_wait",
            "poll_io",
            "check",
            "close",
            "timers"
        ]
    );
    let tcp_refd = after[r#"looplab_handles{kind="tcp",state="refd"}"#].1;
    // The 20 clients, and the scrape's own connection: the watcher is in what it watches.
    assert!(tcp_refd >= 21.0, "{tcp_refd} tcp handles hold the loop");
}

/// A timer callback that blocks the loop for 200 ms is the window's slowest, in the
/// timers phase, under its own handle: in `/loop/poll`'s JSON and in `/metrics`.
#[test]
fn a_blocked_timer_is_the_windows_slowest_with_its_phase_and_handle() {
    let cfg = MetricsConfig {
        addr: ([127, 0, 0, 1], 0).into(),
        window: Duration::from_millis(500),
        ..MetricsConfig::default()
    };
    let served = serve(cfg, |lp| {
        let t = lp.set_timeout(Duration::from_millis(300), |_, _| std::thread::sleep(BLOCK));
        looplab::Handle::from(t).to_string()
    });
    let mut since: Option<u64> = None;
    let slowest = wait_until("the blocked window", || {
        let path = since.map_or("/loop/poll".into(), |id| format!("/loop/poll?since={id}"));
        let v = Client::connect(served.addr).get(&path).json();
        since = v["id"].as_u64();
        let s = v["slowest"].clone();
        (s["us"].as_f64().unwrap_or(0.0) >= 200_000.0).then_some(s)
    });
    assert_eq!(slowest["phase"], "timers", "{slowest}");
    assert_eq!(slowest["kind"], "timer");
    assert_eq!(slowest["handle"], served.said.as_str());
    let seen = wait_until("the gauge in /metrics", || {
        let s = scrape(served.addr);
        let f = s
            .family("looplab_slowest_callback_seconds")?
            .samples
            .first()?
            .clone();
        (f.value >= 0.2).then_some(f)
    });
    assert_eq!(seen.label("phase"), Some("timers"));
    assert_eq!(seen.label("kind"), Some("timer"));
    assert_eq!(seen.label("handle"), Some(served.said.as_str()));
}

/// A read callback that blocks for 200 ms is the slowest of `take_window`, in the poll
/// phase's I/O callbacks, under its TCP handle.
#[test]
fn a_blocked_read_is_the_slowest_in_poll_io_under_its_tcp_handle() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        let conn_seen = std::rc::Rc::new(std::cell::Cell::new(None));
        let seen = conn_seen.clone();
        let l = lp
            .tcp_listen("127.0.0.1:0".parse().unwrap(), move |lp, l, c| {
                let c = c.unwrap();
                seen.set(Some(c));
                lp.read_start(c, |lp, c, ev| {
                    if let ReadEvent::Data(_) = ev {
                        std::thread::sleep(BLOCK);
                        lp.close(c);
                    }
                })
                .unwrap();
                lp.close(l);
            })
            .unwrap();
        let mut client = TcpStream::connect(lp.local_addr(l).unwrap()).unwrap();
        // Accepted, and the first read (deferred by read_start) found nothing: the data
        // written next comes as a poll event.
        while conn_seen.get().is_none() {
            lp.run(RunMode::Once).unwrap();
        }
        lp.run(RunMode::NoWait).unwrap();
        client.write_all(b"x").unwrap();
        lp.take_window();
        util::fail_after(&mut lp, Duration::from_secs(10));
        lp.run(RunMode::Default).unwrap();
        let w = lp.take_window();
        let s = w.slowest.expect("a slowest callback");
        assert!(s.took >= BLOCK, "{s:?}");
        assert_eq!(s.phase, Phase::PollCallbacks);
        assert_eq!(s.site.kind, Some(HandleKind::Tcp));
        let conn = conn_seen.get().expect("accepted");
        assert_eq!(s.site.handle, Some(conn.into()));
        assert!(w.phases.get(Phase::PollCallbacks) >= BLOCK);
    });
}

/// Phase times add up: the window's phases are the sum of its ticks, a wait for a timer
/// is poll wait and idle, and utilization stays within 0..=1.
#[test]
fn phase_times_add_up_and_a_wait_is_idle() {
    on_every_backend(|b| {
        let mut lp = new_loop(b);
        lp.take_window();
        lp.set_timeout(Duration::from_millis(50), |_, _| {});
        lp.run(RunMode::Default).unwrap();
        let w: LoopWindow = lp.take_window();
        assert!(w.ticks >= 1 && w.ticks <= 60, "{w:?}");
        let ring: Duration = w.recent_ticks.iter().map(|t| t.total()).sum();
        assert_eq!(ring, w.phases.total(), "every tick is in the ring");
        // The loop blocked until the 50 ms timer was due (never early), less the few
        // microseconds between set_timeout and the poll.
        assert!(
            w.idle >= Duration::from_millis(45),
            "the wait was idle: {w:?}"
        );
        assert!(w.idle <= w.phases.get(Phase::Poll));
        assert!(w.phases.total() >= w.idle);
        assert!((0.0..=1.0).contains(&w.utilization()));
        assert_eq!(w.lag.count(), 1, "one timer fired");
        let next = lp.take_window();
        assert_eq!(
            (next.id, next.ticks),
            (w.id + 1, 0),
            "a new window starts empty"
        );
        assert!(
            lp.loop_totals().ticks >= w.ticks,
            "totals keep what windows gave"
        );
    });
}

/// With one worker, two 30 ms jobs: both ran at least 30 ms, the second waited at least
/// 30 ms behind the first, and each `done` is a measured wake.
#[test]
fn pool_wait_run_and_wake_are_measured_per_job() {
    on_every_backend(|b| {
        let mut lp = Loop::builder()
            .backend(b)
            .threadpool_size(1)
            .build()
            .unwrap();
        let job = Duration::from_millis(30);
        let queuing = Instant::now();
        for _ in 0..2 {
            lp.queue_work(move || std::thread::sleep(job), |_, _, r| r.unwrap());
        }
        // The first may start before the second is queued: it waits the job less that.
        let between = queuing.elapsed();
        util::fail_after(&mut lp, Duration::from_secs(10));
        lp.run(RunMode::Default).unwrap();
        let p = lp.take_window().pool;
        assert_eq!((p.run.count(), p.wake.count()), (2, 2));
        assert!(
            p.run.duration_at_quantile(0.0) >= job.mul_f64(0.875),
            "bucketed, never early"
        );
        assert!(
            Duration::from_nanos(p.queue_wait.max()) + between >= job,
            "the second waited behind the first"
        );
        assert!(p.max_depth >= 1);
    });
}

/// Metrics off: the loop keeps nothing, even past a blocked callback.
#[test]
fn metrics_off_keeps_nothing() {
    let mut lp = Loop::builder().metrics(false).build().unwrap();
    lp.set_timeout(Duration::from_millis(1), |_, _| {
        std::thread::sleep(Duration::from_millis(20))
    });
    lp.run(RunMode::Default).unwrap();
    assert!(!lp.metrics_enabled());
    let w = lp.take_window();
    assert_eq!((w.ticks, w.callbacks), (0, 0));
    assert!(w.slowest.is_none() && w.lag.is_empty());
    assert!(lp.metrics().ticks >= 1, "metrics() still counts");
}

/// `/loop/poll`: no `since` answers at once, `since=ID` waits for the next window, a bad
/// `since` is a 400 naming it, held polls are bounded (503), unknown paths 404, POST 405.
#[test]
fn loop_poll_answers_once_per_window_and_is_bounded() {
    let cfg = MetricsConfig {
        addr: ([127, 0, 0, 1], 0).into(),
        window: Duration::from_millis(300),
        max_waiters: 2,
        ..MetricsConfig::default()
    };
    let served = serve(cfg, |_| String::new());
    let first = wait_until("the first window", || {
        let r = Client::connect(served.addr).get("/loop/poll");
        (r.status == 200).then(|| r.json())
    });
    let id = first["id"].as_u64().unwrap();
    let next = Client::connect(served.addr).get(&format!("/loop/poll?since={id}"));
    assert!(
        next.json()["id"].as_u64().unwrap() > id,
        "held for a newer window"
    );
    let bad = Client::connect(served.addr).get("/loop/poll?since=-1");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("since"));
    let future = u64::MAX - 1;
    let mut held: Vec<Client> = (0..3).map(|_| Client::connect(served.addr)).collect();
    for c in &mut held {
        c.send(format!("GET /loop/poll?since={future} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    let statuses: Vec<u16> = held
        .iter_mut()
        .map(|c| c.read_response().unwrap().status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 503).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(Client::connect(served.addr).get("/nope").status, 404);
    assert_eq!(
        Client::connect(served.addr).post("/metrics", "").status,
        405
    );
    let page = Client::connect(served.addr).get("/loop");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("/loop/poll"));
}

/// The parser these tests lean on refuses what the format forbids.
#[test]
fn the_parser_refuses_what_the_format_forbids() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n\
              # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n";
    prometheus::parse(ok).unwrap();
    for bad in [
        "a 1",                                       // no final line feed
        "a{b=\"1\"} x\n",                            // not a value
        "a{b=1} 1\n",                                // unquoted
        "a{__b=\"1\"} 1\n",                          // reserved label name
        "a{b=\"\\x\"} 1\n",                          // no such escape
        "a 1\nb 1\na{c=\"2\"} 2\n",                  // a family's lines apart
        "a 1\na 2\n",                                // one series twice
        "# TYPE a counter\n# TYPE a counter\na 1\n", // two TYPEs
        "# TYPE a counter\na -1\n",                  // a counter below zero
        "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 2\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
    ] {
        assert!(prometheus::parse(bad).is_err(), "accepted: {bad:?}");
    }
}
