//! `looplab bench` end to end, and the load generator's byte checking.

use looplab::bench::loadgen::{self, LoadConfig, WindowObserver};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

const FIELDS: [&str; 26] = [
    "server",
    "conns",
    "connected",
    "stalled",
    "round_trips",
    "window_s",
    "rt_per_s",
    "vs_raw",
    "mb_per_s",
    "p50_ms",
    "p99_ms",
    "p999_ms",
    "max_ms",
    "errors",
    "peak_rss_kib",
    "rss_per_conn_kib",
    "threads",
    "voluntary_csw",
    "involuntary_csw",
    "cpu_user_s",
    "cpu_sys_s",
    "rt_per_cpu_s",
    "server_said",
    "rounds",
    "rt_per_s_min",
    "rt_per_s_max",
];

/// The OS's servers: the epoll loop and the raw epoll rung exist only on epoll OSes.
const SERVERS: [&str; 3] = if cfg!(epoll_os) {
    ["threads", "epoll", "raw"]
} else {
    ["threads", "kqueue", "mio"]
};

/// A short run of both kinds of server: every field present, figures positive and
/// consistent with each other (ratios and counts, not a quiet machine's timings), no
/// errors, and an SVG that parses as XML with its three panels.
#[test]
fn a_short_bench_run_writes_consistent_results_and_a_plot() {
    let out = std::env::temp_dir().join(format!("looplab-bench-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_looplab"))
        .args([
            "bench",
            "--servers",
            &SERVERS.join(","),
            "--conns",
            "2,20",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        stdout.contains("rt/s") && SERVERS.iter().all(|s| stdout.contains(s)),
        "{stdout}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    for key in ["cores", "kernel", "os", "default_backend", "build_profile"] {
        assert!(json["machine"].get(key).is_some(), "machine.{key} missing");
    }
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 6, "3 servers x 2 connection counts");
    for r in rows {
        for f in FIELDS {
            assert!(r.get(f).is_some(), "field {f} missing in {r}");
        }
        let num = |f: &str| r[f].as_f64().unwrap();
        assert_eq!(num("errors"), 0.0, "{r}");
        assert_eq!(num("stalled"), 0.0, "{r}");
        for f in [
            "round_trips",
            "rt_per_s",
            "mb_per_s",
            "p50_ms",
            "p99_ms",
            "max_ms",
            "peak_rss_kib",
            "threads",
        ] {
            assert!(num(f) > 0.0, "{f} is not positive in {r}");
        }
        assert!(
            num("p50_ms") <= num("p99_ms")
                && num("p99_ms") <= num("p999_ms")
                && num("p999_ms") <= num("max_ms"),
            "{r}"
        );
        // The figures agree with each other: rates are counts over the measured window.
        // The window itself is only sane, not ~1 s: it opens and closes on timers, which
        // never fire early but may fire late on a busy machine.
        let window = num("window_s");
        assert!(window > 0.25 && window < 4.0, "window_s {window}: {r}");
        let rel = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
        assert!(rel(num("round_trips"), num("rt_per_s") * window), "{r}");
        assert!(rel(num("mb_per_s"), num("rt_per_s") * 64.0 / 1e6), "{r}");
        // A server starved by the machine may show no CPU at all, and then
        // rt_per_cpu_s says 0 rather than dividing by it.
        let cpu = num("cpu_user_s") + num("cpu_sys_s");
        if cpu > 0.0 {
            assert!(rel(num("rt_per_cpu_s"), num("round_trips") / cpu), "{r}");
        } else {
            assert_eq!(num("rt_per_cpu_s"), 0.0, "{r}");
        }
        if r["server"] == "raw" {
            assert!((r["vs_raw"].as_f64().unwrap() - 1.0).abs() < 1e-9);
        }
        if r["server"] == "threads" {
            assert!(
                num("threads") > num("conns"),
                "a thread per connection: {r}"
            );
        } else if matches!(r["server"].as_str(), Some("epoll" | "kqueue" | "mio")) {
            // Run with --metrics-addr: the pool probe starts one worker (the bench's
            // LOOPLAB_THREADPOOL_SIZE=1) beside the loop, and /metrics gives the loop's
            // phase times and the pool's wake for the window.
            assert_eq!(num("threads"), 2.0, "the loop and one pool worker: {r}");
            assert_eq!(r["phase_s"].as_array().map(Vec::len), Some(8), "{r}");
            assert!(
                num("pool_wakes") >= 1.0 && num("pool_wake_p50_us") > 0.0,
                "{r}"
            );
        } else {
            assert_eq!(num("threads"), 1.0, "one loop thread: {r}");
        }
    }

    let svg = std::fs::read_to_string(out.join("echo.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("echo.svg is well-formed XML");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect();
    for panel in ["Throughput", "p99 latency", "Server memory (peak RSS)"] {
        assert!(
            texts.contains(&panel),
            "panel {panel:?} missing from the SVG"
        );
    }
    for server in SERVERS {
        assert!(
            texts.iter().filter(|t| **t == server).count() == 1,
            "{server} not in the one legend exactly once"
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}

struct NoWindow;
impl WindowObserver for NoWindow {
    fn window_start(&mut self) {}
    fn window_end(&mut self) {}
}

/// An echo server that flips one bit of every 10th message it echoes: the load
/// generator must count each of those as an error.
#[test]
fn the_load_generator_detects_a_corrupted_echo() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut msg = [0u8; 64];
                let mut n = 0u64;
                while s.read_exact(&mut msg).is_ok() {
                    n += 1;
                    if n % 10 == 0 {
                        msg[17] ^= 0x20;
                    }
                    if s.write_all(&msg).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let cfg = LoadConfig {
        addr,
        conns: 2,
        size: 64,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(500),
        threads: 1,
    };
    let r = loadgen::run(&cfg, &mut NoWindow).unwrap();
    assert!(r.round_trips > 100, "{r:?}");
    // Every 10th echo on each connection is corrupt: errors are a tenth of all round trips.
    assert!(r.all_round_trips >= r.round_trips);
    let expected = r.all_round_trips / 10;
    assert!(
        r.errors >= expected.saturating_sub(2) && r.errors <= expected + 2,
        "errors {} for {} round trips",
        r.errors,
        r.all_round_trips
    );
}

/// The load generator refuses anything but loopback.
#[test]
fn the_load_generator_only_targets_loopback() {
    let cfg = LoadConfig {
        addr: "10.0.0.1:7".parse().unwrap(),
        conns: 1,
        size: 8,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(10),
        threads: 1,
    };
    let err = loadgen::run(&cfg, &mut NoWindow).unwrap_err();
    assert!(err.to_string().contains("only targets loopback"), "{err}");
}
