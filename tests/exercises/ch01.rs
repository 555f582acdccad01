//! Chapter 1: one tick, phase by phase; example 01's trace, the three exercise variants,
//! and example 01b's question (set_timeout(0) or set_immediate).

use crate::exercise::{
    assert_lines_in_order, assert_quoted, number_after, quoted_trace, read, run_to_end, says, shape,
};
use std::time::Duration;

const CH: &str = "docs/01-what-is-an-event-loop.md";
const LIMIT: Duration = Duration::from_secs(30);

/// The tick the chapter reads line by line, the 0 ms timer's poll line and the last
/// line are all in a real run of example 01, in order; so is the header's account.
#[test]
fn example_01_prints_the_trace_the_chapter_reads() {
    let run = run_to_end("01_timers", &[], &[("LOOPLAB_TRACE", "1")], LIMIT);
    let doc = read(CH);
    assert_lines_in_order(
        &quoted_trace(&doc, "sleeping up to 7.2ms"),
        &run.err,
        "01_timers",
    );
    assert_lines_in_order(&quoted_trace(&doc, "tick 7 done"), &run.err, "01_timers");
    let trace = "tick 5 | poll 0ms (next timer #3.5 due in 0.0ms)";
    says(CH, trace);
    assert_quoted(trace, &run.err, "01_timers");
    for printed in [
        "62 ms interval run 2",
        "7 ticks, 8 timers fired, worst lateness 3.73ms, 123.91ms asleep in poll",
    ] {
        says(CH, printed);
        assert_quoted(printed, &run.out, "01_timers");
    }
    let header = "examples/01_timers.rs";
    for fragment in [
        "tick 1 | sleeping up to 30.9ms (next timer #2.3 due in 30.9ms)",
        "tick 1 | poll waited 31.1ms",
        "tick 2 done | timers fired #0.1 #1.2",
        "poll 0ms (next timer #3.5 due in 0.0ms)",
        "exit: nothing ref'd is active",
    ] {
        says(header, fragment);
        assert_quoted(fragment, &run.err, header);
    }
    // Four interval runs, then gone: the interval cleared itself.
    assert_eq!(
        run.out
            .iter()
            .filter(|l| l.contains("interval run"))
            .count(),
        4
    );
}

/// Try 1: an immediate queued before `run` makes the first poll not sleep.
#[test]
fn try_1_an_immediate_keeps_the_first_poll_from_sleeping() {
    let run = run_to_end("ch01_try1", &[], &[("LOOPLAB_TRACE", "1")], LIMIT);
    says(CH, "tick 1 | poll 0ms (1 immediates)");
    assert_eq!(
        shape(&run.err[0]),
        shape("[looplab +0.7ms] tick 1 | poll 0ms (1 immediates)")
    );
    assert_quoted("tick 1 done | immediates 1", &run.err, "ch01_try1");
    assert!(
        run.out.iter().any(|l| l.ends_with("immediate")),
        "{}",
        run.transcript()
    );
}

/// Try 2: the 1 ms interval finishes its 1000 runs (it is cleared), at about one every
/// 2 ms, never one every 1 ms: two roundings up.
#[test]
fn try_2_a_1ms_interval_finishes_and_fires_every_2ms() {
    let run = run_to_end("ch01_try2", &[], &[], LIMIT);
    let summary = &run.out[0];
    assert!(
        summary.starts_with("1000 runs of a 1 ms interval"),
        "{summary}"
    );
    let total_ms = number_after(summary, " in ");
    let period = number_after(summary, "one every");
    // Never early: every deadline is at least 1 ms after the last firing, rounded up.
    assert!(total_ms >= 1000.0, "{summary}");
    assert!(
        period >= 1.5,
        "a 1 ms interval cannot fire every {period} ms: {summary}"
    );
    assert!(run.out[1].starts_with("worst lateness"), "{}", run.out[1]);
    says(
        "docs/solutions.md",
        "1000 runs of a 1 ms interval in 2249 ms: one every 2.25 ms",
    );
    says("docs/solutions.md", "the deadline is 7, not 6.3");
}

/// Try 3: a 40 ms sleep in the interval's callback makes the 50 ms timeouts wait for it
/// (never before 70 ms), and the trace names the slow callback.
#[test]
fn try_3_a_slow_callback_makes_the_others_late() {
    let run = run_to_end("ch01_try3", &[], &[("LOOPLAB_TRACE", "1")], LIMIT);
    assert_quoted(
        "slow callback: timer #2.3 took 40.1ms",
        &run.err,
        "ch01_try3",
    );
    says(
        "exercises/ch01_try3.rs",
        "`slow callback: timer #2.3 took 40.1ms`",
    );
    assert_quoted(
        "poll 0ms (next timer #2.3 due in 0.0ms)",
        &run.err,
        "ch01_try3",
    );
    for line in run.out.iter().filter(|l| l.contains("50 ms timeout")) {
        let at = number_after(line, "");
        assert!(at >= 70.0, "a timeout ran while the interval slept: {line}");
    }
    let worst = number_after(run.out.last().expect("a last line"), "worst lateness");
    assert!(worst >= 19.0, "{}", run.transcript());
}

/// Example 01b and the chapter's section: the orders from the main program, an I/O
/// callback, a timer callback and an immediate, with the tick each ran in.
#[test]
fn example_14_answers_the_timeout_or_immediate_question() {
    let run = run_to_end(
        "01b_timeout_or_immediate",
        &[],
        &[("LOOPLAB_TRACE", "1")],
        LIMIT,
    );
    let out = &run.out;
    assert_eq!(out.len(), 4, "{}", run.transcript());
    assert_eq!(
        out[0],
        "from the main program: timeout (tick 0), then immediate (tick 1)"
    );
    // The I/O case: the accept is in the first poll that has it; whatever tick that is,
    // the immediate comes first and the timeout fires in the same tick.
    let io = out[1]
        .strip_prefix("from an I/O callback (a connection accepted): ")
        .unwrap();
    let (first, second) = io.split_once(", then ").unwrap();
    assert!(
        first.starts_with("immediate (tick ") && second.starts_with("timeout (tick "),
        "{io}"
    );
    assert_eq!(
        first["immediate".len()..],
        second["timeout".len()..],
        "same tick: {io}"
    );
    assert_eq!(
        out[2],
        "from a timer callback: immediate (tick 2), then timeout (tick 2)"
    );
    assert_eq!(
        out[3],
        "from an immediate: timeout (tick 1), then immediate (tick 2)"
    );
    for line in &out[..3] {
        says(CH, line);
    }
    says(
        "docs/solutions.md",
        "timeout (tick 1), then immediate (tick 2)",
    );
    // The trace of the I/O case, as quoted: one poll reports the accept and the connect
    // (in either order), and that tick's done line lists the immediate, the closes and
    // then the timer.
    let quoted = quoted_trace(&read(CH), "-> listener #0.1, fd 7 w");
    assert_eq!(quoted.len(), 2);
    assert!(
        run.err
            .iter()
            .any(|l| l.contains("r -> listener #") && l.contains("w -> tcp #")),
        "{}",
        run.transcript()
    );
    assert_quoted(&quoted[1], &run.err, "01b_timeout_or_immediate");
}
