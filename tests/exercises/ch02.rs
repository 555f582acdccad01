//! Chapter 2: readiness. Rung 4's trace, the EPOLLOUT spin, both pollers against the same
//! client, and backpressure.

use crate::exercise::{assert_quoted, looplab, number_after, run_example, run_to_end, says, start};
use std::time::Duration;
#[cfg(target_os = "linux")]
use {crate::exercise::example, std::net::TcpStream, std::time::Instant};

const CH: &str = "docs/02-file-descriptors-and-readiness.md";

/// "See it": the trace fragments the chapter and example 11's header quote, from rung 4
/// serving `12_echo_client -- ADDR 3 2`.
#[test]
fn rung_4_traces_what_the_chapter_quotes() {
    let mut server = run_example(
        "11_echo_on_the_loop",
        &["127.0.0.1:0"],
        &[("LOOPLAB_TRACE", "1")],
    );
    let addr = server.listening_on().to_string();
    let client = run_to_end(
        "12_echo_client",
        &[&addr, "3", "2"],
        &[],
        Duration::from_secs(30),
    );
    assert!(
        client.out[0].ends_with("0 wrong bytes"),
        "{}",
        client.transcript()
    );
    // Wait for the last client's hangup to be traced, then stop the server.
    server.wait_for("the clients' hangups", Duration::from_secs(10), |l| {
        l.contains("rh -> tcp")
    });
    server.wait_for("the close", Duration::from_secs(10), |l| {
        l.contains("closed #")
    });
    server.kill();
    for fragment in [
        "events: fd 6 r -> listener #0.1",
        "fd 7 r -> tcp #1.2",
        "fd 7 rh -> tcp #1.2",
        "done | closed #1.2",
        "sleeping until an event (infinite: no timer)",
    ] {
        says(CH, fragment);
        says("examples/11_echo_on_the_loop.rs", fragment);
        assert_quoted(fragment, &server.err, "11_echo_on_the_loop");
    }
}

/// CPU seconds (user + system) the process has used so far, from /proc/PID/stat.
#[cfg(target_os = "linux")]
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / looplab::sys::clock::clock_ticks_per_second() as f64
}

/// CPU used over `wall` as a share of it.
#[cfg(target_os = "linux")]
fn cpu_share(pid: u32, wall: Duration) -> f64 {
    let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
    std::thread::sleep(wall);
    (cpu_seconds(pid) - cpu0) / t0.elapsed().as_secs_f64()
}

/// Try 1: with EPOLLOUT asked for from the accept on, one idle client makes the server
/// spin; rung 3 with the same idle client does not. Measured as CPU over wall time and
/// as epoll_wait returns per second, against the same program with nobody connected.
#[test]
#[cfg(target_os = "linux")]
fn try_1_asking_for_writable_always_spins_with_an_idle_client() {
    says(
        CH,
        "connect one idle client (`nc 127.0.0.1 7878`, and type nothing)",
    );
    let mut spin = run_example("ch02_try1", &["127.0.0.1:0"], &[]);
    let addr = spin.listening_on();
    let idle_share = cpu_share(spin.pid(), Duration::from_millis(1200));
    let quiet = spin.wait_for("a report", Duration::from_secs(5), |l| {
        l.contains("wakeups")
    });
    let _idle_client = TcpStream::connect(addr).unwrap();
    let spin_share = cpu_share(spin.pid(), Duration::from_millis(1500));
    // The first report with the client may cover part of a second without it.
    let with_client = |l: &str| l.ends_with("1 connection(s)");
    spin.wait_for(
        "a report with the client",
        Duration::from_secs(5),
        with_client,
    );
    let busy = spin.wait_for(
        "a whole second with the client",
        Duration::from_secs(5),
        with_client,
    );
    let quiet_wakeups = number_after(&quiet, "");
    let busy_wakeups = number_after(&busy, "");
    assert!(quiet_wakeups <= 3.0, "{quiet}");
    says(
        "exercises/ch02_try1.rs",
        "`1 wakeups of epoll_wait in the last second, 0 connection(s)`",
    );
    assert_eq!(
        quiet,
        "1 wakeups of epoll_wait in the last second, 0 connection(s)"
    );
    assert!(busy_wakeups >= 1000.0 * quiet_wakeups, "{quiet} / {busy}");
    // The ratio holds on a busy machine too: a spinning process gets its share of a
    // core, an idle one gets nothing.
    assert!(
        spin_share > 0.1,
        "spinning at only {spin_share:.2} of a core"
    );
    assert!(
        idle_share < 0.05,
        "{idle_share:.2} of a core with nobody connected"
    );

    let mut rung3 = start(example("10_epoll_by_hand"), &["127.0.0.1:0"], &[]);
    let addr = rung3.listening_on();
    let _idle_client = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let rung3_share = cpu_share(rung3.pid(), Duration::from_millis(1500));
    assert!(
        rung3_share < spin_share / 4.0,
        "rung 3 {rung3_share:.2} against the spinning variant's {spin_share:.2}"
    );
}

/// Try 2: the same client against `looplab echo` on the level-triggered and the
/// edge-triggered poller: the same line, no wrong byte.
#[test]
fn try_2_both_pollers_echo_every_byte() {
    says(
        CH,
        "`0 wrong bytes`, from one edge- and one level-triggered poller",
    );
    for backend in looplab::Backend::available() {
        let mut server = start(
            looplab(),
            &["echo", "--addr", "127.0.0.1:0", "--backend", backend.name()],
            &[],
        );
        let addr = server.listening_on().to_string();
        let client = run_to_end(
            "12_echo_client",
            &[&addr, "100", "50"],
            &[],
            Duration::from_secs(60),
        );
        assert!(
            client.out[0].starts_with("100 connections x 50 messages: 5000 round trips")
                && client.out[0].ends_with(", 0 wrong bytes"),
            "{backend}: {}",
            client.transcript()
        );
        server.signal("INT");
        assert!(server.finish(Duration::from_secs(10)).success());
    }
}

/// Try 4: a client that sends 32 MiB and reads late; the server's queue stays within the
/// high-water mark plus one read, reading pauses, and every byte comes back.
#[test]
fn try_4_backpressure_bounds_the_write_queue() {
    let run = run_to_end("ch02_try3", &[], &[], Duration::from_secs(60));
    assert_eq!(
        run.out[0],
        "the client sent 32 MiB, read nothing for 0.5 s, then read 32 MiB back, in order"
    );
    let queue = number_after(&run.out[1], "the largest write queue:");
    let paused = number_after(&run.out[1], "reading paused");
    assert!(
        queue > 0.9 && queue <= 1.0 + 64.0 / 1024.0,
        "{}",
        run.out[1]
    );
    assert!(paused >= 1.0, "{}", run.out[1]);
    says(CH, "`cargo run --release --example ch02_try3`");
}
