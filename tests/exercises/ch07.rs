//! Chapter 7: signals. Example 06's trace, a server that exits on SIGTERM, a ref'd signal
//! handle that holds the loop and how to stop it.

use crate::exercise::{assert_quoted, looplab, read, run_example, run_to_end, says, start};
use std::net::TcpStream;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

const CH: &str = "docs/07-signals-and-the-self-pipe.md";
const LIMIT: Duration = Duration::from_secs(20);

/// "See it": the signal arrives through the pipe, and the unref'd handle lets the loop go.
#[test]
fn example_06_turns_sigint_into_a_callback() {
    let run = run_to_end(
        "06_signals",
        &["--self-signal"],
        &[("LOOPLAB_TRACE", "1")],
        LIMIT,
    );
    for fragment in [
        "poll waited 300.3ms | events: signal-pipe r",
        "exit: nothing ref'd is active (unref'd, not holding the loop: 1 signal)",
    ] {
        says(CH, fragment);
        assert_quoted(fragment, &run.err, "06_signals");
    }
    assert_quoted(
        "got signal 2 on the loop thread; clearing the timers",
        &run.out,
        "06",
    );
}

/// Try 1: SIGTERM with a client connected: connections closed, exit 0.
#[test]
fn try_1_sigterm_shuts_the_echo_server_down() {
    let mut server = start(looplab(), &["echo", "--addr", "127.0.0.1:0"], &[]);
    let addr = server.listening_on();
    let _client = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    assert!(server.finish(LIMIT).success(), "{}", server.transcript());
    says(CH, "`kill -TERM $(pgrep -x looplab)`");
}

/// Try 2: a ref'd signal handle holds the loop through two Ctrl-Cs; SIGTERM, as the
/// chapter says, stops it; with --close-self one Ctrl-C ends it cleanly.
#[test]
fn try_2_a_refd_signal_handle_holds_the_loop_and_sigterm_stops_it() {
    let mut run = run_example("ch07_try2", &[], &[("LOOPLAB_TRACE", "1")]);
    run.wait_for("the wait", LIMIT, |l| l.starts_with("waiting for Ctrl-C"));
    run.seen_or_wait_for("the first sleep", LIMIT, |l| {
        l.contains("sleeping until an event")
    });
    for n in 1..=2 {
        run.signal("INT");
        let want = format!(
            "got signal 2 ({n} so far); still running: a ref'd signal handle holds the loop"
        );
        // stdout and stderr arrive on two pipes: wait for both, in whichever order.
        run.wait_until("the callback and its tick's end", LIMIT, |r| {
            r.out.contains(&want)
                && r.err
                    .iter()
                    .filter(|l| l.ends_with("alive: ref'd: 1 signal"))
                    .count()
                    >= n
        });
    }
    assert!(run.running());
    says(CH, "`kill -TERM $(pgrep -f ch07_try2)`");
    run.signal("TERM");
    let status = run.finish(LIMIT);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{}", run.transcript());

    let mut once = run_example("ch07_try2", &["--close-self"], &[]);
    once.wait_for("the wait", LIMIT, |l| l.starts_with("waiting for Ctrl-C"));
    // The handler is installed before the line is printed; the loop may not be asleep
    // yet, which does not matter: the byte waits in the pipe.
    once.signal("INT");
    assert!(once.finish(LIMIT).success(), "{}", once.transcript());
    assert_eq!(
        once.out[1..],
        ["got signal 2; closing my own handle", "loop exited"]
    );
}

/// Try 3: the function the exercise names is where it says.
#[test]
fn try_3_on_signal_is_in_the_signal_module() {
    let signal = read("src/sys/signal.rs");
    assert!(signal.contains("extern \"C\" fn on_signal("));
    says(CH, "Read `on_signal` in `src/sys/signal.rs`");
}
