//! What the examples' headers tell a reader to look for, in a real run of each (the
//! chapters' tests cover 01, 02, 04, 06, 11 and 14; these cover the rest).

use crate::exercise::{
    assert_quoted, looplab, number_after, run_example, run_to_end, says, shape, start,
};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// 03: woken by the pipe, and far fewer callbacks and pipe writes than sends.
#[test]
fn example_03_async_wakeup() {
    let file = "examples/03_async_wakeup.rs";
    let run = run_to_end("03_async_wakeup", &[], &[("LOOPLAB_TRACE", "1")], LIMIT);
    for fragment in [
        "poll waited 20.0ms | events: wake-pipe fd 4 r",
        "done | self-pipe: 1 drain(s)",
    ] {
        says(file, fragment);
        assert_quoted(fragment, &run.err, file);
    }
    let last = run.out.last().unwrap();
    let callbacks = number_after(last, "sends ->");
    let writes = number_after(last, "wake requests,");
    assert!(callbacks < 1000.0 && writes < 1000.0, "{last}");
}

/// 06's header quotes the same lines chapter 7 does.
#[test]
fn example_06_header() {
    let run = run_to_end(
        "06_signals",
        &["--self-signal"],
        &[("LOOPLAB_TRACE", "1")],
        LIMIT,
    );
    let file = "examples/06_signals.rs";
    for fragment in [
        "events: signal-pipe r",
        "exit: nothing ref'd is active (unref'd, not holding the loop: 1 signal)",
    ] {
        says(file, fragment);
        assert_quoted(fragment, &run.err, file);
    }
}

/// 07: the watchdog's report while the block goes on, and the trace's slow callback.
#[test]
fn example_07_watchdog_and_slow_callback() {
    let file = "examples/07_blocked_loop.rs";
    let run = run_to_end("07_blocked_loop", &[], &[("LOOPLAB_TRACE", "1")], LIMIT);
    says(
        file,
        "looplab watchdog: a callback has blocked the loop for 1xx ms in the timers phase",
    );
    let report = run
        .err
        .iter()
        .find(|l| l.starts_with("looplab watchdog: a callback has blocked the loop for "))
        .unwrap_or_else(|| panic!("{}", run.transcript()));
    assert!(report.ends_with(" ms in the timers phase"), "{report}");
    let slow = "timers fired #1.2 | slow callback: timer #1.2 took 300.3ms";
    says(file, slow);
    assert_quoted(slow, &run.err, file);
    let took = run
        .err
        .iter()
        .find(|l| l.contains("slow callback"))
        .unwrap();
    assert!(
        number_after(took, "took") >= 300.0,
        "never shorter than the sleep: {took}"
    );
}

/// 08 with one client, as its header says it works, and 12's one line in the shape its
/// header quotes.
#[test]
fn examples_08_and_12_one_client() {
    let mut server = run_example("08_blocking_echo", &["127.0.0.1:0"], &[]);
    let addr = server.listening_on().to_string();
    says(
        "examples/08_blocking_echo.rs",
        "12_echo_client -- 127.0.0.1:7878 1 100` (one client works)",
    );
    let client = run_to_end("12_echo_client", &[&addr, "1", "100"], &[], LIMIT);
    let quoted = "3 connections x 2 messages: 6 round trips in 0.6 ms (9953/s), 0 wrong bytes";
    says("examples/12_echo_client.rs", quoted);
    assert_eq!(shape(&client.out[0]), shape(quoted));
    assert!(client.out[0].starts_with("1 connections x 100 messages: 100 round trips"));
    server.wait_for("a client served", LIMIT, |l| {
        l.starts_with("serving 127.0.0.1:")
    });
    server.wait_for("the client gone", LIMIT, |l| {
        l == "client left; accepting the next one"
    });
    says(
        "examples/08_blocking_echo.rs",
        "`client left; accepting the next one`",
    );
}

/// 09 with 100 clients held: 101 threads, as the header says.
#[test]
#[cfg(target_os = "linux")]
fn example_09_a_thread_per_client_plus_one() {
    let mut server = run_example("09_thread_per_connection", &["127.0.0.1:0"], &[]);
    let addr = server.listening_on().to_string();
    let mut client = run_example("12_echo_client", &[&addr, "100", "50", "--hold", "20"], &[]);
    client.wait_for("'holding'", LIMIT, |l| l.starts_with("holding"));
    assert!(client.out[0].ends_with("0 wrong bytes"));
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let threads = number_after(
        status.lines().find(|l| l.starts_with("Threads:")).unwrap(),
        "Threads:",
    );
    says(
        "examples/09_thread_per_connection.rs",
        "says 101 with 100 clients",
    );
    assert_eq!(threads, 101.0);
}

/// 13 against a fresh long-poll server: a poll held about 2 s until the publish, with
/// the trace lines the header quotes; with --no-publish, held the full 3 s and timed out.
#[test]
fn example_13_long_poll_cycle() {
    let file = "examples/13_longpoll_client.rs";
    let mut server = start(looplab(), &["longpoll", "--addr", "127.0.0.1:0"], &[]);
    let addr = server.listening_on().to_string();
    let quiet = run_to_end(
        "13_longpoll_client",
        &[&addr, "1", "--no-publish"],
        &[],
        LIMIT,
    );
    let held = quiet.out.iter().find(|l| l.starts_with("<- held")).unwrap();
    assert!(
        held.ends_with("timed out: nothing new (cursor stays 0)"),
        "{held}"
    );
    assert!(number_after(held, "held") >= 2.9, "answered early: {held}");
    let run = run_to_end(
        "13_longpoll_client",
        &[&addr, "2"],
        &[("LOOPLAB_TRACE", "1")],
        LIMIT,
    );
    let answers: Vec<&String> = run
        .out
        .iter()
        .filter(|l| l.starts_with("<- held"))
        .collect();
    assert_eq!(answers.len(), 2, "{}", run.transcript());
    assert!(
        !run.stderr().contains("refused"),
        "a publish was refused: {}",
        run.transcript()
    );
    for a in &answers {
        assert!(a.contains("got 1 message(s)"), "{a}");
        assert!(
            number_after(a, "held") >= 1.5,
            "a publish comes every 2 s: {a}"
        );
    }
    for fragment in [
        "sleeping up to 2000.7ms (next timer #1.2 due in 2000.7ms)",
        // Not "events: fd 6 …": under load the publish connection's hangup may come first
        // in the same tick's list.
        "fd 6 r -> tcp #0.1",
    ] {
        says(file, fragment);
        assert_quoted(fragment, &run.err, file);
    }
    says(
        file,
        "then `timers fired #1.2` with `2 request(s) in flight`",
    );
    assert!(
        run.err
            .iter()
            .any(|l| l.contains("timers fired #1.2") && l.contains("2 request(s) in flight")),
        "{}",
        run.transcript()
    );
    says(file, "`alive: ref'd: 1 tcp; ...; unref'd: 1 timer`");
    assert!(run
        .err
        .iter()
        .any(|l| l.contains("alive: ref'd: 1 tcp;") && l.ends_with("unref'd: 1 timer")));
    server.signal("INT");
    assert!(server.finish(LIMIT).success(), "{}", server.transcript());
}
