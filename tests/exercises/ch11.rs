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
        "`cargo run --example 14_hand_written_future -- --forget`",
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
        "polled 4 — #3.4 woken by fd 7 readable, #5.6 by fd 8 readable, ...",
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
