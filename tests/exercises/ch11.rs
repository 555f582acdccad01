//! Chapter 11: from callbacks to futures. Every trace the chapter quotes, from the
//! command it gives: the wake path of the async echo, the pool waking a task, the two
//! waker mistakes and the future that never yields (with the watchdog), the race's
//! dropped loser; and the claims of "Try this" that a run can check.

use crate::exercise::{
    assert_lines_in_order, assert_quoted, blocks, example, number_after, read, run_example,
    run_to_end, says, shape, start,
};
use std::time::Duration;

const CH: &str = "docs/11-from-callbacks-to-futures.md";
const LIMIT: Duration = Duration::from_secs(30);

/// The ```text block of the chapter that contains `marker`, split by stream: trace
/// lines (stderr) and the program's own lines (stdout). A trailing ` | ...` (the rest
/// of a line the chapter leaves out) is cut.
fn quoted(marker: &str) -> (Vec<String>, Vec<String>) {
    let block = blocks(&read(CH), "text")
        .into_iter()
        .find(|b| b.iter().any(|l| l.contains(marker)))
        .unwrap_or_else(|| panic!("{CH} quotes no block with {marker:?}"));
    let cut = |l: &String| l.trim_end_matches(" | ...").to_string();
    let trace = block.iter().filter(|l| l.starts_with("[looplab ")).map(cut);
    let own = block
        .iter()
        .filter(|l| !l.starts_with("[looplab "))
        .map(cut);
    (trace.collect(), own.collect())
}

/// Run example 14 with `args` and the trace on; check the block quoted after `marker`.
fn example_14_prints_the_block(args: &[&str], marker: &str) -> crate::exercise::Run {
    let run = run_to_end(
        "14_hand_written_future",
        args,
        &[("LOOPLAB_TRACE", "1")],
        LIMIT,
    );
    let (trace, own) = quoted(marker);
    let what = format!("14_hand_written_future {args:?}");
    assert_lines_in_order(&trace, &run.err, &what);
    assert_lines_in_order(&own, &run.out, &what);
    run
}

/// "Not storing the waker": `--forget`, the note, and block_on's error instead of a hang.
#[test]
fn forget_the_waker() {
    says(
        CH,
        "`LOOPLAB_TRACE=1 cargo run --example 14_hand_written_future -- --forget`",
    );
    example_14_prints_the_block(
        &["--forget"],
        "poll #1: not rung -> Pending (waker NOT stored)",
    );
}

/// "Waking a stale waker": `--stale`, task B named in the note, the same error.
#[test]
fn a_stale_waker() {
    example_14_prints_the_block(&["--stale"], "#1.2 woken by spawn, #2.3 by spawn");
    says(
        CH,
        "hands the doorbell from task A (`#1.2`) to task B (`#2.3`)",
    );
}

/// "How the pool wakes a task": `--pool`, the wake pipe, the completion, the wake.
#[test]
fn the_pool_wakes_a_task() {
    says(
        CH,
        "`LOOPLAB_TRACE=1 cargo run --example 14_hand_written_future -- --pool`",
    );
    example_14_prints_the_block(&["--pool"], "woken by the pool (finished)");
}

/// "A future that never yields": part 3's lines, the interval starved by the one long
/// poll and not by the yielding one, and the watchdog naming the task (`--watchdog`).
#[test]
fn a_future_that_never_yields_and_the_watchdog() {
    let run = example_14_prints_the_block(&["--watchdog"], "one 300 ms poll: the 5 ms");
    let gap = |how: &str| {
        let line = run
            .out
            .iter()
            .find(|l| l.contains(how) && l.contains("waited up to"));
        let line = line.unwrap();
        number_after(line, "waited up to")
    };
    let (starved, yielding) = (gap("one 300 ms poll"), gap("yielding every 5 ms"));
    // Never early: nothing else runs during the 300 ms poll.
    assert!(starved >= 300.0, "{}", run.stdout());
    assert!(yielding * 5.0 < starved, "{}", run.stdout());

    let said = "looplab watchdog: task #0.5 has run 174 ms in one poll, blocking the loop in the tasks phase";
    says(CH, said);
    says("examples/14_hand_written_future.rs", said);
    assert_quoted(said, &run.err, "14 --watchdog");
    let line = run.err.iter().find(|l| shape(l) == shape(said)).unwrap();
    assert!(number_after(line, "has run") >= 150.0, "{line}");
}

/// The wake path of the async echo: rung 5 with the trace on, example 12's 3 x 2
/// against it (on a port of its own; the chapter uses 7878).
#[test]
fn the_async_echo_shows_the_wake_path() {
    says(
        CH,
        "`cargo run --example 12_echo_client -- 127.0.0.1:7878 3 2`",
    );
    let mut server = run_example("15_async_echo", &["127.0.0.1:0"], &[("LOOPLAB_TRACE", "1")]);
    let addr = server.listening_on().to_string();
    let client = run_to_end("12_echo_client", &[&addr, "3", "2"], &[], LIMIT);
    assert_quoted("6 round trips", &client.out, "12");
    server.wait_until("three clients gone", LIMIT, |r| {
        let finished = r.err.iter().map(|l| l.matches(" (finished)").count());
        finished.sum::<usize>() >= 3
    });
    server.kill();
    // Ticks batch differently on a busy machine: the quoted lines' parts, each seen.
    let (trace, _) = quoted("tick 7 done | tasks: polled 1");
    for fragment in [
        "| poll waited 0.0ms | events: fd 8 r -> tcp #4.5",
        "tasks: polled 1 — #5.6 woken by fd 8 readable",
        "alive: ref'd: 4 task (tasks waiting on: fd 6 accept, fd 7 readable, fd 8 readable, fd 9 readable)",
    ] {
        assert!(trace.iter().any(|l| l.contains(fragment)), "{fragment}");
        assert_quoted(
            fragment.trim_start_matches("tasks: polled 1 — "),
            &server.err,
            "15",
        );
    }
    says(
        CH,
        "polled 3 — #3.4 woken by fd 7 readable, #5.6 by fd 8 readable, #7.8 by fd 9 readable",
    );
    assert_quoted("closed #4.5", &server.err, "15");
}

/// Cancellation: the deadline's timer wakes the client and the dropped request's stream
/// closes in that same tick; the race's loser is dropped; nothing is left.
#[test]
fn example_16_drops_what_it_cancels() {
    says(
        CH,
        "the dropped request's stream closes in the same tick (`closed #5.7`)",
    );
    let run = run_to_end("16_timeout_and_race", &[], &[("LOOPLAB_TRACE", "1")], LIMIT);
    assert!(
        run.err
            .iter()
            .any(|l| l.contains("woken by timer #") && l.contains("| closed #")),
        "{}",
        run.stderr()
    );
    assert_quoted("timed out after 150 ms", &run.out, "16");
    assert_quoted("fast won after", &run.out, "16");
    assert_eq!(
        run.out.last().map(String::as_str),
        Some("left on the loop: 0 timer(s), 0 stream(s) (the replicas' listeners and tasks remain, unref'd)")
    );
}

/// Try 3, as the chapter warns: with the arguments swapped and the arms not, the
/// program would print fast's answer under "slow won". Checked on the text only: the
/// answer names who gave it.
#[test]
fn try_3_names_the_answer_that_would_be_mislabelled() {
    says(CH, "`slow won: Ok(\"fast answered after 80 ms\")`");
    let run = run_to_end("16_timeout_and_race", &[], &[], LIMIT);
    assert_quoted("(fast answered after 80 ms)", &run.out, "16");
}

/// The Try this block's commands name programs that exist, and the long-poll pair runs:
/// 17 against `looplab longpoll`, three cycles, each held until the publish.
#[test]
fn try_this_commands_run() {
    let block = blocks(&read(CH), "sh")
        .pop()
        .expect("the Try this commands");
    for line in &block {
        if let Some(name) = line.split("--example ").nth(1) {
            let name = name.split_whitespace().next().unwrap();
            assert!(example(name).is_file(), "{line}");
        }
    }
    says(
        CH,
        "cargo run --example 17_async_longpoll_client -- 127.0.0.1:8080 3",
    );
    let mut server = start(
        crate::exercise::looplab(),
        &["longpoll", "--addr", "127.0.0.1:0"],
        &[],
    );
    let addr = server.listening_on().to_string();
    let run = run_to_end("17_async_longpoll_client", &[&addr, "3"], &[], LIMIT);
    let held = run
        .out
        .iter()
        .filter(|l| l.contains("got 1 message(s)"))
        .count();
    assert_eq!(held, 3, "{}", run.stdout());
    server.kill();
}

/// Example 14's header, default run: the timer's wake, the other thread's wake through
/// the pipe, and part 3's slow poll.
#[test]
fn example_14_header() {
    let file = "examples/14_hand_written_future.rs";
    let run = run_to_end(
        "14_hand_written_future",
        &[],
        &[("LOOPLAB_TRACE", "1")],
        LIMIT,
    );
    for fragment in [
        "tasks: polled 1 — #1.2 woken by spawn",
        "sleeping up to 100.7ms",
        "tasks: polled 1 — #1.2 woken by timer #0.1 (finished)",
        "events: wake-pipe fd N r",
        "woken by another thread (finished)",
        "slow callback: task #0.5 (one poll) took 300.2ms",
        "woken by itself",
    ] {
        says(file, fragment);
        assert_quoted(fragment, &run.err, file);
    }
    assert_quoted("done after 2 polls", &run.out, file);
}

const SOLUTIONS: &str = "docs/solutions.md";

/// Quoted lines, as `assert_lines_in_order` takes them.
fn owned(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| l.to_string()).collect()
}

/// How many timers a trace line says fired in its tick (`timers fired #1.2 #3.4 | ...`).
fn timers_fired(line: &str) -> usize {
    let fired = line.split("timers fired ").nth(1).unwrap_or("");
    fired.split(" |").next().unwrap_or("").matches('#').count()
}

/// Try 1: three wakes of one waker before the loop gets to the task queue it once (the
/// `queued_here` flag): one poll for the knock, `done after 3 polls`; five if each wake
/// queued the task.
#[test]
fn try_1_three_wakes_make_one_poll() {
    says(
        CH,
        "How many times is the future polled for the three wakes?",
    );
    says(
        SOLUTIONS,
        "polled three times for one knock: `done after 5 polls`",
    );
    let file = "exercises/ch11_try1.rs";
    let run = run_to_end("ch11_try1", &[], &[("LOOPLAB_TRACE", "1")], LIMIT);
    let said = [
        "timer: knock (three wakes, no ring)",
        "poll #2: not rung -> Pending (waker stored)",
        "timer: ring, and wake the task",
        "poll #3: rung -> Ready",
        "done after 3 polls",
    ];
    for line in said {
        says(file, line);
    }
    assert_lines_in_order(&owned(&said), &run.out, file);
    let polls = run.out.iter().filter(|l| l.contains("poll #")).count();
    assert_eq!(polls, 3, "{}", run.stdout());
    // The knock's wakes, in the trace: one poll, of one task.
    let fragment = "tasks: polled 1 — #2.3 woken by timer #0.1";
    says(file, fragment);
    let knock: Vec<&String> = run
        .err
        .iter()
        .filter(|l| l.contains("by timer #0.1"))
        .collect();
    assert_eq!(knock.len(), 1, "{}", run.stderr());
    assert!(knock[0].contains(fragment), "{}", run.stderr());
}

/// Try 2: a client that says nothing is cut off by the read's 5 s deadline, never
/// before; the timer's wake and the close share a tick.
#[test]
fn try_2_a_silent_client_times_out_after_5_s() {
    use std::io::Read;
    says(CH, "prints `Some(127.0.0.1:N): timed out after 5000 ms`");
    says(CH, "(`#3.4 woken by timer #4.5 (finished) | closed #2.3`)");
    let mut server = run_example("ch11_try2", &["127.0.0.1:0"], &[("LOOPLAB_TRACE", "1")]);
    let addr = server.listening_on();
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let start = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = client.read(&mut buf).unwrap();
    let waited = start.elapsed();
    assert_eq!(n, 0, "the server closes without a word");
    // Never early; and well before the read timeout above.
    assert!(waited >= Duration::from_millis(4900), "{waited:?}");
    let line = server.seen_or_wait_for("the timeout", LIMIT, |l| l.contains("timed out"));
    assert_quoted(
        "Some(127.0.0.1:N): timed out after 5000 ms",
        &[line],
        "ch11_try2",
    );
    server.wait_until("the close", LIMIT, |r| {
        r.err.iter().any(|l| l.contains("(finished) | closed #"))
    });
    let tick = server
        .err
        .iter()
        .find(|l| l.contains("(finished) | closed #"))
        .unwrap();
    assert_quoted(
        "woken by timer #4.5 (finished) | closed #2.3",
        std::slice::from_ref(tick),
        "ch11_try2",
    );
    server.kill();
}

/// Try 3: swapped, fast still wins (only one side is ready when it answers); two sleeps
/// that end in one tick go to whichever is polled first, `b` made second or not.
#[test]
fn try_3_the_first_argument_wins_a_tie() {
    says(SOLUTIONS, "`race(a, b): a won`, `race(b, a): b won`");
    let run = run_to_end("ch11_try3", &[], &[("LOOPLAB_TRACE", "1")], LIMIT);
    let said = owned(&[
        "fast won after 81 ms (fast answered after 80 ms); the request to slow was dropped",
        "race(a, b): a won",
        "race(b, a): b won",
    ]);
    assert_lines_in_order(&said, &run.out, "ch11_try3");
    // Each tie: both sleeps' timers fire in one tick.
    let both = run.err.iter().filter(|l| timers_fired(l) == 2).count();
    assert!(both >= 2, "{}", run.stderr());
}

/// Try 4: a task that yields for ever beside the echo: the echo still answers, and the
/// spinner was polled (many times) meanwhile.
#[test]
fn try_4_a_spinning_task_leaves_the_echo_alone() {
    says(
        SOLUTIONS,
        "The echo answers: `6 round trips ... 0 wrong bytes`",
    );
    let mut server = run_example("ch11_try4", &["127.0.0.1:0"], &[]);
    let addr = server.listening_on().to_string();
    let client = run_to_end("12_echo_client", &[&addr, "3", "2"], &[], LIMIT);
    assert_quoted("6 round trips", &client.out, "12");
    assert_quoted("0 wrong bytes", &client.out, "12");
    // The first connections may come before the spinner's first poll (the accept is
    // polled at its event's checkpoint, the new task in the tasks phase after it): a
    // connection made after the first client is done finds it polled.
    let again = run_to_end("12_echo_client", &[&addr, "1", "1"], &[], LIMIT);
    assert_quoted("1 round trips", &again.out, "12");
    server.wait_until("a count after the spinner ran", LIMIT, |r| {
        r.out
            .iter()
            .any(|l| l.starts_with("spinner: polled") && number_after(l, "polled") >= 1.0)
    });
    server.kill();
}
