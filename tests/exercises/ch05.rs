//! Chapter 5: when the loop exits. Example 02's trace, requests holding the loop, ref and
//! unref as flags, an async handle that holds the loop, a server that exits on Ctrl-C.

use crate::exercise::{
    assert_lines_in_order, assert_quoted, looplab, quoted_trace, read, run_example, run_to_end,
    says, start,
};
use looplab::{Loop, RunMode};
use std::net::TcpStream;
use std::time::Duration;

const CH: &str = "docs/05-when-does-the-loop-exit.md";
const LIMIT: Duration = Duration::from_secs(20);

/// "See it": the last ticks of example 02 as quoted, and its closing lines.
#[test]
fn example_02_exits_with_the_interval_still_armed() {
    let run = run_to_end(
        "02_when_does_the_loop_exit",
        &[],
        &[("LOOPLAB_TRACE", "1")],
        LIMIT,
    );
    let quoted = quoted_trace(&read(CH), "tick 4 done");
    assert_lines_in_order(&quoted, &run.err, "02_when_does_the_loop_exit");
    assert_quoted(
        "201 ms the ref'd 200 ms timeout fired: nothing ref'd is left",
        &run.out,
        "02",
    );
    assert_eq!(
        run.out.last().map(String::as_str),
        Some("run returned alive = false; the interval is still armed: true")
    );
    says(
        CH,
        "(the example prints `the interval is still armed: true`)",
    );
    let header = "examples/02_when_does_the_loop_exit.rs";
    for fragment in [
        "alive: ref'd: 1 timer; unref'd: 1 timer",
        "timers fired #1.2 | exit: nothing ref'd is active (unref'd, not holding the loop: 1 timer)",
    ] {
        says(header, fragment);
        assert_quoted(fragment, &run.err, header);
    }
}

/// "Requests hold the loop": the chapter's snippet, and what `explain_alive` says before
/// `run`; `run` returns once the connect callback has run and the write is flushed.
#[test]
fn requests_hold_the_loop_even_on_an_unrefd_handle() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut lp = Loop::new().unwrap();
    let connected = std::rc::Rc::new(std::cell::Cell::new(false));
    let c = connected.clone();
    let conn = lp
        .tcp_connect(addr, move |_, _, r| c.set(r.is_ok()))
        .unwrap();
    lp.unref_handle(conn);
    lp.write(conn, "hello").unwrap();
    let said = lp.explain_alive();
    says(CH, "`2 request(s) in flight; unref'd: 1 tcp`");
    assert_eq!(said, "2 request(s) in flight; unref'd: 1 tcp");
    let (mut peer, _) = listener.accept().unwrap();
    assert!(!lp.run(RunMode::Default).unwrap());
    assert!(connected.get());
    let mut got = [0u8; 5];
    std::io::Read::read_exact(&mut peer, &mut got).unwrap();
    assert_eq!(&got, b"hello");
}

/// Try 1: unref twice and ref once leaves the interval ref'd: after the timeout, the
/// loop goes on, held by the interval alone.
#[test]
fn try_1_ref_and_unref_are_flags() {
    let mut run = run_example("ch05_try1", &[], &[("LOOPLAB_TRACE", "1")]);
    let first = run.wait_for("the first line", LIMIT, |l| !l.starts_with("[looplab"));
    assert_eq!(first, "has_ref after unref, unref, ref: true");
    run.wait_for("the timeout", LIMIT, |l| {
        l.contains("the ref'd 200 ms timeout fired")
    });
    // Two more ticks after it, each held by the interval alone.
    for _ in 0..2 {
        run.wait_for("a tick held by the interval", LIMIT, |l| {
            l.contains("done | timers fired") && l.ends_with("alive: ref'd: 1 timer")
        });
    }
    assert!(run.running());
    says(CH, "each `done` line ends `alive: ref'd: 1 timer`");
    run.kill();
}

/// Try 2: an async handle holds the loop after everything else is done; unref'd, it
/// does not.
#[test]
fn try_2_an_async_handle_holds_the_loop_until_unrefd() {
    let mut run = run_example("ch05_try2", &[], &[("LOOPLAB_TRACE", "1")]);
    let before = run.wait_for("explain_alive", LIMIT, |l| l.starts_with("before run:"));
    assert_eq!(
        before,
        "before run: ref'd: 1 timer, 1 async; unref'd: 1 timer"
    );
    says(
        "exercises/ch05_try2.rs",
        "`ref'd: 1 timer, 1 async; unref'd: 1 timer`",
    );
    run.wait_for("the timeout", LIMIT, |l| {
        l.contains("the ref'd 200 ms timeout fired")
    });
    run.wait_for("a tick held by the async handle", LIMIT, |l| {
        l.ends_with("alive: ref'd: 1 async; unref'd: 1 timer")
    });
    assert!(run.running());
    run.kill();
    says(
        "docs/solutions.md",
        "`alive: ref'd: 1 async; unref'd: 1 timer`",
    );

    let done = run_to_end("ch05_try2", &["--unref"], &[("LOOPLAB_TRACE", "1")], LIMIT);
    let exit = "exit: nothing ref'd is active (unref'd, not holding the loop: 1 timer, 1 async)";
    says("docs/solutions.md", exit);
    assert_quoted(exit, &done.err, "ch05_try2 --unref");
}

/// Try 3: `looplab echo` with a client connected exits 0 on SIGINT and prints its totals.
#[test]
fn try_3_the_echo_server_exits_on_ctrl_c_with_a_client_connected() {
    let mut server = start(looplab(), &["echo", "--addr", "127.0.0.1:0"], &[]);
    let addr = server.listening_on();
    let _client = TcpStream::connect(addr).unwrap();
    // The server has accepted it once it counts it; give the accept a moment.
    std::thread::sleep(Duration::from_millis(300));
    server.signal("INT");
    let status = server.finish(LIMIT);
    assert!(status.success(), "{}", server.transcript());
    says(
        CH,
        "it prints its totals (`echo: served 1 connections, ...`) and exits",
    );
    assert!(
        server
            .err
            .iter()
            .any(|l| l.starts_with("echo: served 1 connections")),
        "{}",
        server.transcript()
    );
}
