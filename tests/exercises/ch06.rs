//! Chapter 6: what cannot be polled. The pool's trace, contention, coalesced wakes, the
//! line where cancel loses, and the lost wakeup reproduced.

use crate::exercise::{assert_quoted, number_after, read, run_example, run_to_end, says};
use std::time::Duration;

const CH: &str = "docs/06-what-cannot-be-polled.md";
const LIMIT: Duration = Duration::from_secs(60);

/// "See it": example 04's lines the chapter and the header quote.
#[test]
fn example_04_shows_the_pool_through_the_self_pipe() {
    let run = run_to_end("04_threadpool", &[], &[("LOOPLAB_TRACE", "1")], LIMIT);
    let alive = "queued 4 jobs; alive because: ref'd: 4 work";
    says("examples/04_threadpool.rs", alive);
    assert_eq!(run.out[0], alive);
    says(CH, "`alive because: ref'd: 4 work`");
    for fragment in [
        "poll waited 0.3ms | events: wake-pipe fd 4 r",
        "done | self-pipe: 1 drain(s), 4 pool completion(s)",
    ] {
        says(CH, fragment);
        says("examples/04_threadpool.rs", fragment);
    }
    assert_quoted("events: wake-pipe fd 4 r", &run.err, "04_threadpool");
    // One wake may deliver all four, or a busy machine may take a few: the shape holds.
    assert_quoted(
        "done | self-pipe: 1 drain(s), 4 pool completion(s)",
        &run.err,
        "04",
    );
    let missing = "reading /no/such/file on the pool: No such file or directory (os error 2)";
    says(CH, missing);
    assert_quoted(missing, &run.out, "04_threadpool");
}

/// Try 1: pools of 2 and 8 for 200 jobs of 20 ms: never faster than the work spread over
/// the pool, and 8 threads well ahead of 2 (the jobs sleep; they do not compute).
#[test]
fn try_1_more_threads_for_sleeping_jobs() {
    let run = run_to_end("05_pool_contention", &["2", "8"], &[], LIMIT);
    let total = |threads: &str| -> f64 {
        let row = run
            .out
            .iter()
            .find(|l| l.split_whitespace().next() == Some(threads))
            .unwrap_or_else(|| panic!("no row for {threads}: {}", run.stdout()));
        number_after(row, threads)
    };
    let (two, eight) = (total("2"), total("8"));
    assert!(two >= 2000.0, "200 x 20 ms on 2 threads in {two} ms");
    assert!(eight >= 500.0, "200 x 20 ms on 8 threads in {eight} ms");
    assert!(
        two > 2.0 * eight,
        "2 threads {two} ms, 8 threads {eight} ms"
    );
    says(
        CH,
        "`cargo run --release --example 05_pool_contention -- 2 8`",
    );
}

/// Try 2: a thousand completions, fewer drains, and wakes coalesced into fewer bytes.
#[test]
fn try_2_completions_coalesce_into_fewer_drains() {
    let run = run_to_end("ch06_try2", &[], &[], LIMIT);
    assert_eq!(run.out[0], "1000 of 1000 stat calls succeeded");
    let completions = number_after(&run.out[1], "");
    let drains = number_after(&run.out[1], "completions in");
    let most = number_after(&run.out[1], "at most");
    assert_eq!(completions, 1000.0, "{}", run.out[1]);
    assert!(drains >= 1.0 && drains < completions, "{}", run.out[1]);
    assert!(most >= completions / drains, "{}", run.out[1]);
    let asked = number_after(&run.out[2], "");
    let written = number_after(&run.out[2], "asked for,");
    assert!(written <= asked && written < 1000.0, "{}", run.out[2]);
}

/// Try 3: the compare-and-swap the solution names is in `Worker::run`, and cancel's is
/// its mirror.
#[test]
fn try_3_the_line_after_which_cancel_loses() {
    let pool = read("src/pool.rs");
    let run = &pool[pool.find("fn run(self)").expect("Worker::run")..];
    let run = &run[..run.find("\n    }\n").unwrap_or(run.len())];
    assert!(run.contains("compare_exchange(QUEUED, RUNNING"), "{run}");
    assert!(pool.contains("compare_exchange(QUEUED, CANCELED"));
    says(
        "docs/solutions.md",
        "The `compare_exchange(QUEUED, RUNNING, ..)` near the top of `Worker::run`",
    );
}

/// Try 4: the self-pipe drained in the right order loses nothing; swapped, it loses a wake
/// within its bound, on every run.
#[test]
fn try_4_the_swapped_drain_loses_a_wake_every_time() {
    let right = run_to_end("ch06_lost_wakeup", &[], &[], LIMIT);
    let last = right.out.last().unwrap();
    assert!(
        last.starts_with("no wake lost: 40000 items in "),
        "{}",
        right.transcript()
    );
    for _ in 0..3 {
        let mut swapped = run_example("ch06_lost_wakeup", &["--swapped"], &[]);
        let status = swapped.finish(LIMIT);
        assert_eq!(status.code(), Some(1), "{}", swapped.transcript());
        let said = swapped.out.last().unwrap();
        assert!(said.starts_with("lost wake after "), "{said}");
        assert!(
            said.ends_with("no byte in the pipe, the flag still set"),
            "{said}"
        );
    }
    says(
        "exercises/ch06_lost_wakeup.rs",
        "`no wake lost: 40000 items in N drains`",
    );
    says(
        CH,
        "with `--swapped` it loses a wake in about a second, every run",
    );
}
