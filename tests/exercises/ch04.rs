//! Chapter 4: time. The far timer, a 0 ms timer started from a timer callback, the line
//! in the wheel that cascades, the blocked loop's lateness, wheel against heap.

use crate::exercise::{assert_quoted, number_after, read, run_example, run_to_end, says, shape};
use std::time::Duration;

const CH: &str = "docs/04-time.md";

/// Try 1: while the near timers run, every sleep is short and names a near timer; then
/// the loop announces an hour's sleep (before it, so it never looks like a hang). With
/// --unref the run ends with the others.
#[test]
fn try_1_a_far_timer_costs_nothing_until_it_is_next() {
    let mut run = run_example("ch04_try1", &[], &[("LOOPLAB_TRACE", "1")]);
    run.wait_for("the near timers' end", Duration::from_secs(20), |l| {
        l.contains("the near timers are done")
    });
    let last = run.seen_or_wait_for("the hour's sleep", Duration::from_secs(20), |l| {
        l.contains("sleeping up to") && number_after(l, "sleeping up to") > 3_500_000.0
    });
    says(
        CH,
        "sleeping up to 3599864.8ms (next timer #3.4 due in 3599864.8ms)",
    );
    assert_eq!(
        shape(&last),
        shape("[looplab +136.2ms] tick 6 | sleeping up to 3599864.8ms (next timer #3.4 due in 3599864.8ms)")
    );
    assert!(
        last.contains("(next timer #3.4 due in"),
        "the far timer: {last}"
    );
    says(
        "exercises/ch04_try1.rs",
        "(next timer #3.4 due in 3599864.8ms)",
    );
    for line in run.err.iter().filter(|l| l.contains("sleeping up to")) {
        if *line != last {
            assert!(number_after(line, "sleeping up to") <= 31.0, "{line}");
            assert!(
                !line.contains("#3.4"),
                "the far timer capped a near sleep: {line}"
            );
        }
    }
    assert!(run.running(), "it waits for the hour");
    run.kill();

    let done = run_to_end(
        "ch04_try1",
        &["--unref"],
        &[("LOOPLAB_TRACE", "1")],
        Duration::from_secs(20),
    );
    assert_quoted(
        "exit: nothing ref'd is active (unref'd, not holding the loop: 1 timer)",
        &done.err,
        "ch04_try1 --unref",
    );
    assert_eq!(done.out.last().map(String::as_str), Some("run returned"));
}

/// Try 2: example 01's 0 ms timer, started from the 80 ms timer's callback, fires on a
/// later tick than the callback that started it.
#[test]
fn try_2_a_0ms_timer_from_a_timer_callback_fires_next_tick() {
    let run = run_to_end(
        "01_timers",
        &[],
        &[("LOOPLAB_TRACE", "1")],
        Duration::from_secs(30),
    );
    let tick_of = |handle: &str| -> u64 {
        let line = run
            .err
            .iter()
            .find(|l| l.contains(" done |") && l.contains("timers fired") && l.contains(handle))
            .unwrap_or_else(|| panic!("no tick fired {handle}:\n{}", run.stderr()));
        number_after(line, "] tick") as u64
    };
    says(
        CH,
        "`timers fired #3.4` (the 80 ms timeout) and `timers fired #3.5` (the 0 ms one)",
    );
    assert!(tick_of("#3.4") < tick_of("#3.5"));
}

/// Try 3: the hint is true of the code: in `Wheel::advance`, `elapsed` is moved to the
/// slot's start before its timers are linked again.
#[test]
fn try_3_the_cascade_line_is_where_the_chapter_says() {
    let timer = read("src/timer.rs");
    let advance = &timer[timer.find("fn advance").expect("Wheel::advance")..];
    let moved = advance
        .find("self.elapsed = start;")
        .expect("elapsed moved to the slot's start");
    let linked = advance
        .find("self.link(")
        .expect("a cascaded timer linked again");
    assert!(moved < linked);
    says(
        "docs/solutions.md",
        "`self.elapsed = start;` just before the cascade",
    );
}

/// The blocked loop (example 07): the 10 ms interval is never less than ~300 ms late,
/// since it was due while the callback slept; the watchdog says so while it happens.
#[test]
fn example_07_lateness_is_the_block() {
    let run = run_to_end("07_blocked_loop", &[], &[], Duration::from_secs(30));
    says(CH, "`worst lateness 299.6ms` on the book's machine");
    let line = run.out.last().expect("the metrics line");
    let worst = number_after(line, "worst lateness");
    assert!(worst >= 280.0, "{line}");
    assert_quoted(
        "looplab watchdog: a callback has blocked the loop for 124 ms in the timers phase",
        &run.err,
        "07_blocked_loop",
    );
}

/// Wheel against heap (`make bench-timers`): the chapter quotes a row per size in the
/// shape the command prints, and both structures fire the same half of the timers
/// (small sizes here, in-process: the chapter's figures are from a release build).
#[test]
fn wheel_against_heap_fire_the_same_timers() {
    let doc = read(CH);
    let table: Vec<&str> = doc
        .lines()
        .skip_while(|l| !l.contains("n | wheel ins"))
        .take(4)
        .collect();
    assert_eq!(table.len(), 4, "chapter 4 quotes the header and three rows");
    for (row, n) in table[1..].iter().zip(["10000", "100000", "1000000"]) {
        assert!(row.trim_start().starts_with(&format!("{n} |")), "{row}");
        let words: Vec<String> = shape(row).split_whitespace().map(String::from).collect();
        assert_eq!(
            words.join(" "),
            "N | Nms Nms Nms Nms | Nms Nms Nms Nms | Nx",
            "{row}"
        );
    }
    says(CH, "`make bench-timers`");
    for (n, wheel, heap) in looplab::bench::timers::report(&[1000, 10_000], 1) {
        assert_eq!(wheel.fired, n / 2);
        assert_eq!(heap.fired, n / 2);
    }
}
