//! What looplab tells about its tasks: the trace (what woke each, which ran too long,
//! which can never be woken), `explain_alive` (what each waits on), the watchdog, and
//! what a task costs in memory.

mod util;

use looplab::task;
use looplab::{Backend, Loop, RunMode};
use std::future::poll_fn;
use std::io;
use std::task::Poll;
use std::time::Duration;
use util::trace::SharedBuf;
use util::{new_loop, on_every_backend};

/// The trace shows the wake path: which task was polled and what woke it.
#[test]
fn the_trace_names_what_woke_each_task() {
    let out = SharedBuf::default();
    let mut lp = Loop::builder()
        .trace_to(out.clone())
        .threadpool_size(1)
        .build()
        .unwrap();
    lp.block_on(async {
        task::sleep(Duration::from_millis(2)).await?;
        task::offload(|| 5).await
    })
    .unwrap()
    .unwrap();
    let trace = out.text();
    assert!(trace.contains("tasks: polled 1 \u{2014} #"), "{trace}");
    assert!(trace.contains("woken by spawn"), "{trace}");
    assert!(trace.contains("woken by timer #"), "{trace}");
    assert!(trace.contains("woken by the pool (finished)"), "{trace}");
}

/// `explain_alive` says what the tasks holding the loop wait on.
#[test]
fn explain_alive_names_what_tasks_wait_on() {
    let mut lp = new_loop(Backend::default_for_os());
    let sleeper = lp.spawn(task::sleep(Duration::from_secs(3600)));
    lp.run(RunMode::NoWait).unwrap();
    let why = lp.explain_alive();
    assert!(
        why.contains("ref'd: 1 task (tasks waiting on: sleep 3599"),
        "{why}"
    );
    lp.close(&sleeper);
    lp.run(RunMode::Default).unwrap();
    assert!(lp.handles().is_empty(), "{:?}", lp.handles());
}

/// A task awaiting one it spawned in the same poll (whose handle the loop makes only
/// after that poll) is said to wait on "a task it spawned", never on a
/// handle that does not exist.
#[test]
fn explain_alive_names_a_task_spawned_in_the_same_poll() {
    let mut lp = new_loop(Backend::default_for_os());
    let parent = lp.spawn(async {
        let child = task::spawn(task::sleep(Duration::from_secs(3600)));
        child.await
    });
    lp.run(RunMode::NoWait).unwrap();
    let why = lp.explain_alive();
    assert!(why.contains("a task it spawned"), "{why}");
    assert!(!why.contains(&u32::MAX.to_string()), "{why}");
    lp.close(&parent);
    lp.run(RunMode::NoWait).unwrap();
}

/// A future dropped in the same poll in which it said what it waits on (a race's loser)
/// is not listed by `explain_alive` afterwards.
#[test]
fn explain_alive_forgets_a_dropped_leaf() {
    let mut lp = new_loop(Backend::default_for_os());
    let waiter = lp.spawn(async {
        let _ = task::race(task::sleep(Duration::from_secs(3600)), async {}).await;
        let _ = task::sleep(Duration::from_secs(7200)).await;
    });
    lp.run(RunMode::NoWait).unwrap();
    let why = lp.explain_alive();
    assert!(why.contains("tasks waiting on: sleep 7199"), "{why}");
    assert!(
        !why.contains("sleep 3599"),
        "the race's loser is still listed: {why}"
    );
    lp.close(&waiter);
    lp.run(RunMode::Default).unwrap();
    assert!(lp.handles().is_empty(), "{:?}", lp.handles());
}

/// A task that blocks the loop in one poll is named: by the watchdog while it runs, and
/// by the trace's slow-callback note after.
#[test]
fn a_task_that_polls_too_long_is_named() {
    on_every_backend(|b| {
        let trace = SharedBuf::default();
        let mut lp = Loop::builder()
            .backend(b)
            .trace_to(trace.clone())
            .watchdog_to(Duration::from_millis(50), io::sink())
            .build()
            .unwrap();
        let hog = lp.spawn(async {
            std::thread::sleep(Duration::from_millis(200)); // blocks the loop: the mistake
        });
        let h = looplab::Handle::from(&hog);
        lp.run(RunMode::Default).unwrap();
        let reports = lp.watchdog_reports();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(
            reports[0].contains(&format!("task {h} has run")) && reports[0].contains("one poll"),
            "{}",
            reports[0]
        );
        let trace = trace.text();
        assert!(
            trace.contains(&format!("slow callback: task {h} (one poll) took")),
            "{trace}"
        );
    });
}

/// A task other than `block_on`'s that kept no waker is named in the trace and stops
/// holding the loop (nothing could ever run it again), so `run` returns.
#[test]
fn a_task_that_kept_no_waker_stops_holding_the_loop() {
    let trace = SharedBuf::default();
    let mut lp = Loop::builder().trace_to(trace.clone()).build().unwrap();
    let lost = lp.spawn(poll_fn(|_cx| Poll::<()>::Pending));
    let h = looplab::Handle::from(&lost);
    assert!(!lp.run(RunMode::Default).unwrap(), "the loop exits");
    let trace = trace.text();
    assert!(
        trace.contains(&format!("task {h} returned Pending but kept no waker")),
        "{trace}"
    );
    assert!(!lost.is_finished());
    lp.close(&lost);
    lp.run(RunMode::Default).unwrap();
}

/// How many bytes each of `TASKS` pending tasks adds to the process, beyond its future.
/// Run alone in a child process (see the next test): other tests' memory must not count.
#[test]
#[ignore = "a probe: a_task_costs_at_most_1_kib_beyond_its_future runs it in its own process"]
fn task_memory_probe() {
    const TASKS: usize = 100_000;
    fn resident_bytes() -> usize {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }
    let mut lp = new_loop(Backend::default_for_os());
    let future = async {
        let stays = [0u8; 64]; // held across the await: part of the future
        std::future::pending::<()>().await;
        std::hint::black_box(&stays);
    };
    let future_size = std::mem::size_of_val(&future);
    drop(future);
    let before = resident_bytes();
    for _ in 0..TASKS {
        let _detached = lp.spawn(async {
            let stays = [0u8; 64];
            std::future::pending::<()>().await;
            std::hint::black_box(&stays);
        });
    }
    lp.run(RunMode::NoWait).unwrap(); // each task polled once: waiting, as tasks do
    let per_task = (resident_bytes() - before) / TASKS;
    assert_eq!(lp.metrics().tasks_alive, TASKS);
    println!("task memory: {per_task} bytes per task with a {future_size}-byte future");
}

/// A task costs at most 1 KiB of memory beyond its future (its handle slot, waker,
/// boxes, join cell and ready-list entry), measured as the resident-memory growth of
/// 100 000 pending tasks in a process of their own.
#[test]
fn a_task_costs_at_most_1_kib_beyond_its_future() {
    if !std::path::Path::new("/proc/self/statm").exists() {
        return; // resident memory is read from /proc (Linux)
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "task_memory_probe", "--ignored", "--nocapture"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("task memory: "))
        .unwrap_or_else(|| panic!("no figure in: {stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let per_task: usize = words[2].parse().unwrap();
    let future: usize = words[8].trim_end_matches("-byte").parse().unwrap();
    eprintln!("{line}");
    assert!(
        per_task <= future + 1024,
        "a task costs {per_task} bytes with a {future}-byte future: over 1 KiB beyond it"
    );
}
