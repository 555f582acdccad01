//! The book's side of scopes: example 18 runs as its header says, and chapter 15 quotes
//! what the programs print.

#[path = "util/exercise.rs"]
mod exercise;

use std::time::Duration;

/// Example 18 prints what its header says, the send's callbacks never before the
/// deadline, and its trace shows the cancel with its cause, each owed callback once.
#[test]
fn example_18_runs_as_its_header_says() {
    let run = exercise::run_to_end(
        "18_deadlines",
        &[],
        &[("LOOPLAB_TRACE", "1")],
        Duration::from_secs(30),
    );
    let header: String = exercise::read("examples/18_deadlines.rs")
        .lines()
        .map(|l| l.strip_prefix("//!").unwrap_or("").trim_start().to_string() + "\n")
        .collect();
    let blocks = exercise::blocks(&header, "text");
    exercise::assert_lines_in_order(&blocks[0], &run.out, "18_deadlines");
    for quoted in &blocks[1] {
        exercise::assert_quoted(quoted, &run.err, "18_deadlines (trace)");
    }
    let send = run
        .out
        .iter()
        .find(|l| l.starts_with("3. send"))
        .expect("the send's line");
    assert!(
        exercise::number_after(send, "(at") >= 300.0,
        "never early: {send}"
    );
    let owed = run
        .out
        .iter()
        .filter(|l| l.contains("deadline 300 ms exceeded (at"))
        .count();
    assert_eq!(
        owed, 2,
        "the write's and the shutdown's callbacks, once each"
    );
}

/// Chapter 15 quotes what the programs print (each checked where it is produced:
/// example 18 above, the deadline test here, tests/scope_tasks.rs), and its "Try this"
/// runs as it says.
#[test]
fn chapter_15_quotes_what_the_programs_print() {
    let ch = "docs/15-deadlines-and-cancellation.md";
    for quoted in [
        "write on tcp #1.3: after 301 ms: deadline 300 ms exceeded",
        "reading Cargo.toml on the pool: after 52 ms: deadline 50 ms exceeded",
        "note: scope 0.1: tcp #1.3: 2 owed callback(s) get \"deadline 300 ms exceeded\"",
        "note: scope 0.1 canceled after 301 ms: deadline 300 ms exceeded: 2 callback(s) owed, 1 handle(s), 0 task(s), 0 child scope(s)",
        "task scope canceled: canceled: shutdown: 2 task(s) dropped, 0 shielded run on",
        "deadline 10 ms exceeded: the future under it is dropped",
        "cargo run --example 18_deadlines -- 50",
        "(`scope 1.2 canceled after 200 ms: deadline 200 ms exceeded`)",
    ] {
        exercise::says(ch, quoted);
    }
    exercise::says(
        "examples/18_deadlines.rs",
        "write on tcp #1.3: after 301 ms: deadline 300 ms exceeded",
    );
    let run = exercise::run_to_end("18_deadlines", &["50"], &[], Duration::from_secs(30));
    let owed = run
        .out
        .iter()
        .filter(|l| l.contains(": deadline 50 ms exceeded (at"))
        .count();
    assert_eq!(owed, 2, "{}", run.transcript());
}

/// Chapter 15, Try 2: with a small send the work finishes before the deadline, and the
/// loop exits without it (the deadline's timer is unref'd), leaving the stream and the
/// timer, as docs/solutions.md answers.
#[test]
fn chapter_15_try_2_a_small_send_outruns_the_deadline() {
    exercise::says(
        "docs/15-deadlines-and-cancellation.md",
        "cargo run --example 18_deadlines -- 300 10",
    );
    exercise::says(
        "docs/solutions.md",
        "`the scope: not canceled; handles left on the loop: 2`",
    );
    let run = exercise::run_to_end("18_deadlines", &["300", "10"], &[], Duration::from_secs(30));
    let lines = [
        "3. send: ok",
        "   shutdown: ok",
        "the scope: not canceled; handles left on the loop: 2",
    ];
    for want in lines {
        assert!(
            run.out.iter().any(|l| l.starts_with(want)),
            "{want:?} missing:\n{}",
            run.transcript()
        );
    }
    let send = run
        .out
        .iter()
        .find(|l| l.starts_with("3. send"))
        .expect("the send's line");
    assert!(
        exercise::number_after(send, "(at") < 300.0,
        "before the deadline: {send}"
    );
}
