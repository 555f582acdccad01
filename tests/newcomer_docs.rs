//! Chapters 13, 15, 16 and 17 walked as a newcomer walks them: each command a "Try this"
//! prints is run as printed (or, where it edits code, the edited code is run here), and
//! what the chapter, an example's header or docs/solutions.md says it shows is checked
//! against what it does. Loopback only; every run has a deadline.

#[path = "util/exercise.rs"]
mod exercise;
mod util;

use looplab::task::{self, fail_after};
use looplab::Loop;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const CH13: &str = "docs/13-processes.md";
const CH15: &str = "docs/15-deadlines-and-cancellation.md";
const CH16: &str = "docs/16-replicas-and-stewards.md";
const CH17: &str = "docs/17-one-loop-per-core.md";
const SOLUTIONS: &str = "docs/solutions.md";
const WITHIN: Duration = Duration::from_secs(30);

/// Every `cargo test --test FILE NAME` these chapters print names a test file that exists
/// and a test in it whose name holds NAME: a wrong file runs nothing and says `0 passed`,
/// which a newcomer takes for an answer.
#[test]
fn every_cargo_test_command_names_a_real_test() {
    let mut checked = 0;
    for doc in [CH13, CH15, CH16, CH17, SOLUTIONS] {
        let text = exercise::read(doc)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for (at, _) in text.match_indices("cargo test --test ") {
            let words: Vec<&str> = text[at..].split(' ').skip(3).take(2).collect();
            let [file, name] = words[..] else {
                panic!("{doc}: a `cargo test --test` without a name");
            };
            let name = name.trim_end_matches(['`', '.', ',', ':', ')']);
            let source = exercise::read(&format!("tests/{file}.rs"));
            assert!(
                source.lines().any(|l| l.trim_start().starts_with("fn ") && l.contains(name)),
                "{doc}: `cargo test --test {file} {name}` runs no test: tests/{file}.rs has none named so"
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "chapter 13's two commands were not found");
}

/// Chapter 15, Try 3, as the chapter now tells it: the outer `move_on_after` (40 ms) of
/// `nested_deadlines_take_the_earlier` made a `fail_after`. The error at the top is the
/// outer one's, and its text says which: 40 ms, not the inner 10 s.
#[test]
fn chapter_15_try_3_the_outer_fail_after_reaches_the_top() {
    exercise::says(
        CH15,
        "test `nested_deadlines_take_the_earlier`, turn the outer",
    );
    exercise::says(
        "tests/scope_tasks.rs",
        "let outer = move_on_after(Duration::from_millis(40), async { fail_after(Duration::from_secs(10), async {",
    );
    exercise::says(
        SOLUTIONS,
        "`deadline 40 ms exceeded`: it has the earlier deadline",
    );
    let mut lp = Loop::new().expect("a loop");
    let outer = lp
        .block_on(async {
            fail_after(Duration::from_millis(40), async {
                fail_after(Duration::from_secs(10), async {
                    task::sleep(Duration::from_secs(10)).await
                })
                .await
            })
            .await
        })
        .expect("the loop runs");
    let e = outer.expect_err("the outer deadline passes first");
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert_eq!(e.to_string(), "deadline 40 ms exceeded");
}

/// The (fd, handle) of each `fd N w -> tcp #H` or `whe` event on `line`.
fn connect_events(line: &str) -> Vec<(u32, String, bool)> {
    line.split(['|', ','])
        .filter_map(|ev| {
            let ev = ev.trim().strip_prefix("events: ").unwrap_or(ev.trim());
            let rest = ev.strip_prefix("fd ")?;
            let (fd, rest) = rest.split_once(' ')?;
            let (flags, handle) = rest.split_once(" -> tcp ")?;
            let refused = match flags {
                "w" => false,
                "whe" => true,
                _ => return None,
            };
            Some((fd.parse().ok()?, handle.to_string(), refused))
        })
        .collect()
}

/// The handles a trace line says it closed.
fn closed_on(line: &str) -> Vec<String> {
    line.split('|')
        .filter_map(|p| p.trim().strip_prefix("closed "))
        .flat_map(|p| p.split(' ').map(str::to_string))
        .collect()
}

/// Chapter 16, Try 1, with the hint the chapter now gives: the three connects complete on
/// one events line, their fds ascending fast, slow, dead; dead's (`whe`) closes in that
/// tick, and slow's closes in the winner's tick, as docs/solutions.md answers.
#[test]
fn chapter_16_try_1_the_request_to_slow_closes_with_the_winner() {
    exercise::says(CH16, "so their fds ascend in that order");
    exercise::says(SOLUTIONS, "the request to `slow` is `#6.8`");
    let run = exercise::run_to_end(
        "19_replicated_requests",
        &[],
        &[("LOOPLAB_TRACE", "1")],
        WITHIN,
    );
    let err = &run.err;
    let winner = err
        .iter()
        .position(|l| l.contains("note: replicas: #0 answered first; dropped 1 other(s)"))
        .unwrap_or_else(|| panic!("no winner's tick\n{}", run.transcript()));
    let (at, mut connects) = err[..winner]
        .iter()
        .enumerate()
        .map(|(i, l)| (i, connect_events(l)))
        .find(|(_, evs)| evs.len() == 3)
        .unwrap_or_else(|| panic!("no line with the three connects\n{}", run.transcript()));
    connects.sort_by_key(|(fd, _, _)| *fd);
    let [(_, fast, false), (_, slow, false), (_, dead, true)] = &connects[..] else {
        panic!("fast, slow, dead by fd: {connects:?}\n{}", run.transcript());
    };
    let done = err[at..]
        .iter()
        .find(|l| l.contains(" done |"))
        .expect("the connects' tick ends");
    assert!(
        closed_on(done).contains(dead),
        "dead {dead} closes at once: {done}"
    );
    let closed = closed_on(&err[winner]);
    for (who, h) in [("fast", fast), ("slow", slow)] {
        assert!(
            closed.contains(h),
            "{who} {h} closes with the winner: {}",
            err[winner]
        );
    }
}

/// Example 19's second step asks `dead` twice, as its header now says: both failures in
/// the error name the port `dead` was given.
#[test]
fn example_19_asks_dead_twice_for_the_error_that_lists_each() {
    exercise::says(
        "examples/19_replicated_requests.rs",
        "2. it asks `dead` twice, as two replicas that both fail",
    );
    let run = exercise::run_to_end("19_replicated_requests", &[], &[], WITHIN);
    let dead = run
        .out
        .iter()
        .find_map(|l| l.strip_prefix("replicas: ")?.split("dead ").nth(1))
        .unwrap_or_else(|| panic!("no replicas line\n{}", run.transcript()));
    let failing = run
        .out
        .iter()
        .find(|l| l.starts_with("only the failing ones: asking 2 replica(s): all 2 failed"))
        .unwrap_or_else(|| panic!("no failing line\n{}", run.transcript()));
    let naming = failing.matches(&format!("connecting to {dead}:")).count();
    assert_eq!(naming, 2, "both name dead {dead}: {failing}");
}

fn publish_status(addr: std::net::SocketAddr) -> util::http::HttpResponse {
    util::http::post(addr, "/publish", r#"{"text":"hi"}"#)
}

/// Chapter 16, Try 4: `--json` publishes go 201, 201, 429, 429 under a burst of 2; the
/// 429's Retry-After is whole seconds, and after it the next publish is 201. The plain
/// `-d` the chapter used to print sends a form type, which the server answers 415.
#[test]
fn chapter_16_try_4_the_rate_limit_answers_201_201_429_429() {
    exercise::says(
        CH16,
        "for i in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code}\\n' --json '{\"text\":\"hi\"}' 127.0.0.1:8080/publish; done",
    );
    exercise::says(SOLUTIONS, "`201`, `201`, `429`, `429`: a burst of 2");
    let args = [
        "longpoll",
        "--addr",
        "127.0.0.1:0",
        "--publish-rate",
        "1",
        "--publish-burst",
        "2",
    ];
    let mut run = exercise::start(exercise::looplab(), &args, &[]);
    let addr = run.listening_on();
    // What `curl -d` sends: no JSON type, so 415, and no token taken.
    let body = r#"{"text":"hi"}"#;
    let mut form = util::http::Client::connect(addr);
    form.send(
        format!(
            "POST /publish HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(form.read_response().expect("an answer").status, 415);
    let codes: Vec<u16> = (0..4).map(|_| publish_status(addr).status).collect();
    assert_eq!(codes, [201, 201, 429, 429]);
    let limited = publish_status(addr);
    assert_eq!(limited.status, 429);
    let wait: u64 = limited
        .header("Retry-After")
        .and_then(|v| v.trim().parse().ok())
        .expect("a 429 says when to come back, in whole seconds");
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    std::thread::sleep(Duration::from_secs(wait));
    assert_eq!(publish_status(addr).status, 201, "after Retry-After");
}

/// Chapter 17, Try 1, and example 22's header: under reuseport both loops get a share
/// every run (all 20 on one loop by the hash is a one-in-500 000 chance); loop 0's
/// mailbox counts its own posts as well as loop 1's.
#[test]
fn chapter_17_try_1_reuseport_gives_both_loops_a_share() {
    exercise::says(CH17, "reuseport splits the 20 connections by the hash");
    exercise::says(
        "examples/22_loop_per_core.rs",
        "loop 0's own to itself among them",
    );
    let run = exercise::run_to_end("22_loop_per_core", &[], &[], WITHIN);
    let out = run.stdout();
    let counts = |prefix: &str, sep: &str| -> (u32, u32) {
        let l = out
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?}\n{out}"));
        let (a, b) = l.split_once(sep).expect("two counts");
        let b = b.split(' ').next().unwrap_or(b);
        (a.parse().expect("a count"), b.parse().expect("a count"))
    };
    let (a0, a1) = counts("answers by loop: loop 0: ", ", loop 1: ");
    assert!(a0 > 0 && a1 > 0, "both loops answer under reuseport\n{out}");
    let (h0, h1) = counts(
        "loop 0 heard of 20 connections through its mailbox: ",
        " from loop 0, ",
    );
    assert_eq!((h0, h1), (a0, a1), "loop 0 posts to itself too\n{out}");
}

/// Chapter 17, Try 2: `looplab echo --loops 2` served five connections one after another;
/// at SIGINT, on stderr, a line per loop and then `echo: connections per loop:` adding
/// up to five.
#[test]
fn chapter_17_try_2_echo_loops_reports_connections_per_loop() {
    exercise::says(
        CH17,
        "`cargo run --release -- echo --addr 127.0.0.1:7000 --loops 2 --mode exclusive`",
    );
    exercise::says(
        CH17,
        "`echo: connections per loop:` line (on stderr, after a line per loop)",
    );
    for mode in ["exclusive", "reuseport"] {
        let args = [
            "echo",
            "--addr",
            "127.0.0.1:0",
            "--loops",
            "2",
            "--mode",
            mode,
        ];
        let mut run = exercise::start(exercise::looplab(), &args, &[]);
        let addr = run.listening_on();
        for _ in 0..5 {
            let mut c = TcpStream::connect(addr).expect("connecting");
            c.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("a timeout");
            c.write_all(b"hi\n").expect("sending");
            let mut back = [0u8; 3];
            c.read_exact(&mut back).expect("the echo");
            assert_eq!(&back, b"hi\n");
        }
        run.signal("INT");
        let status = run.finish(WITHIN);
        assert!(status.success(), "{mode}: {}", run.transcript());
        let per_loop = run
            .err
            .iter()
            .position(|l| l.starts_with("echo: connections per loop: "))
            .unwrap_or_else(|| panic!("{mode}: no per-loop line\n{}", run.transcript()));
        let loops = run.err[..per_loop]
            .iter()
            .filter(|l| l.starts_with("echo loop "))
            .count();
        assert_eq!(
            loops,
            2,
            "{mode}: a line per loop first\n{}",
            run.transcript()
        );
        let sum: u32 = run.err[per_loop]["echo: connections per loop: ".len()..]
            .split(',')
            .map(|n| n.trim().parse::<u32>().expect("a count"))
            .sum();
        assert_eq!(sum, 5, "{mode}: {}", run.err[per_loop]);
    }
}

/// Chapter 13's renamed commands and the "With tasks" claims a newcomer reads first:
/// the exec error comes from the spawn, the killed child's three lines come in order.
#[test]
fn chapter_13_with_tasks_runs_as_printed() {
    exercise::says(
        CH13,
        "`cargo run --example 21b_async_processes` is example 21 written this way",
    );
    let run = exercise::run_to_end("21b_async_processes", &[], &[], WITHIN);
    let want: Vec<String> = [
        "[sleeper] 300 ms deadline: SIGTERM",
        "[sleeper] exited: signal 15",
        "[sleeper] done: exited, and its pipes are at EOF",
    ]
    .map(String::from)
    .to_vec();
    exercise::assert_lines_in_order(&want, &run.out, "21b");
    assert!(
        run.out
            .iter()
            .any(|l| l.starts_with("[nope] not started: spawning \"looplab-no-such-program\"")),
        "{}",
        run.transcript()
    );
    assert_eq!(
        run.out.last().map(String::as_str),
        Some("all done: nothing ref'd is active")
    );
    // The trace's reaping tick names the woken task either way the chapter says.
    exercise::says(
        CH13,
        "(`#4.5 woken by a signal` when it is the first one the tick polled)",
    );
    let traced = exercise::run_to_end(
        "21b_async_processes",
        &[],
        &[("LOOPLAB_TRACE", "1")],
        WITHIN,
    );
    let reaping = traced
        .err
        .iter()
        .find(|l| l.contains("done | reaped pid ") && l.contains(" signal 15"))
        .unwrap_or_else(|| panic!("no reaping tick\n{}", traced.transcript()));
    assert!(
        reaping.contains("#4.5 woken by a signal") || reaping.contains(", #4.5 by a signal"),
        "{reaping}"
    );
}

/// Chapter 13's "With tasks" snippet, as printed (its `println!` collected instead):
/// `sort` gets two lines and EOF on its stdin, answers them sorted, and exits 0.
#[test]
fn chapter_13_with_tasks_snippet_runs_as_printed() {
    use looplab::process::{Command, Stdio};
    use looplab::task::process::Child;
    for line in [
        r#"let cmd = Command::new("sort").stdin(Stdio::Pipe).stdout(Stdio::Pipe);"#,
        "let mut child = Child::spawn(cmd).await?;",
        r#"stdin.write_all(b"pear\napple\n").await?;"#,
        "while let Some(line) = lines.next_line().await? { println!(\"{line}\"); }",
        "let status = child.wait().await?;",
    ] {
        exercise::says(CH13, line);
    }
    let mut lp = Loop::new().expect("a loop");
    let run = lp
        .block_on(async {
            let mut printed = Vec::new();
            let cmd = Command::new("sort").stdin(Stdio::Pipe).stdout(Stdio::Pipe);
            let mut child = Child::spawn(cmd).await?;
            let mut stdin = child.stdin.take().expect("piped");
            stdin.write_all(b"pear\napple\n").await?;
            drop(stdin);
            let mut lines = child.stdout.take().expect("piped").lines();
            while let Some(line) = lines.next_line().await? {
                printed.push(line);
            }
            let status = child.wait().await?;
            io::Result::Ok((printed, status))
        })
        .expect("the loop runs");
    let (printed, status) = run.expect("sort runs");
    assert_eq!(printed, ["apple", "pear"]);
    assert_eq!(status.code, Some(0));
}

/// Chapter 16, Try 2, as docs/solutions.md answers it: one stagger, never less than
/// 250 ms; the stagger's timer wakes the task that starts attempt 2; the hanging attempt
/// is closed after.
#[test]
fn chapter_16_try_2_the_black_hole_costs_one_stagger() {
    exercise::says(SOLUTIONS, "after 25x ms` (never less than 250)");
    let run = exercise::run_to_end(
        "19_replicated_requests",
        &["--black-hole"],
        &[("LOOPLAB_TRACE", "1")],
        WITHIN,
    );
    let ms: u64 = run
        .out
        .iter()
        .find_map(|l| {
            let rest = l.strip_prefix("happy eyeballs: connected to 127.0.0.1:")?;
            rest.split(" after ")
                .nth(1)?
                .strip_suffix(" ms")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no connected line\n{}", run.transcript()));
    assert!(ms >= 250, "never before one stagger: {ms} ms");
    let second = run
        .err
        .iter()
        .position(|l| l.contains("note: happy eyeballs: attempt 2 to 127.0.0.1:"))
        .unwrap_or_else(|| panic!("no attempt 2\n{}", run.transcript()));
    assert!(
        run.err[second].contains("woken by timer #"),
        "{}",
        run.err[second]
    );
    assert!(
        run.err[second..]
            .iter()
            .any(|l| l.contains("connected first; closed 1 other attempt(s)")),
        "{}",
        run.transcript()
    );
}

/// Chapter 16, Try 3: with `--poller-restarts 1` the steward gives up after runs 1 and 2,
/// in the words docs/solutions.md quotes, and run 3 never starts.
#[test]
fn chapter_16_try_3_one_restart_too_many() {
    let quoted = "poller: steward \"poller\" gave up: 1 restart(s) within 10000 ms were not enough; last: ward missed its heartbeat";
    exercise::says(SOLUTIONS, &format!("`{quoted} (...)`"));
    let run = exercise::run_to_end(
        "20_heartbeat_steward",
        &["--poller-restarts", "1"],
        &[],
        Duration::from_secs(60),
    );
    assert!(
        run.out.iter().any(|l| l.starts_with(quoted)),
        "{}",
        run.transcript()
    );
    assert!(
        run.out.iter().any(|l| l.starts_with("poller run 2:")),
        "{}",
        run.transcript()
    );
    assert!(
        !run.out.iter().any(|l| l.starts_with("poller run 3")),
        "{}",
        run.transcript()
    );
}

/// Chapter 17, Try 3, as docs/solutions.md answers it for a publish that lands on loop 1:
/// three hops in the trace, and at Ctrl-C each loop's line says the hops it sent.
#[test]
fn chapter_17_try_3_a_publish_on_loop_1_makes_three_hops() {
    exercise::says(
        CH17,
        "`LOOPLAB_TRACE=1 cargo run --release -- longpoll --loops 2`",
    );
    for hop in [
        "`hop publish: loop 1 -> 0`",
        "`hop published: loop 0 -> 1`",
        "`hop latest: loop 0 -> 1`",
    ] {
        exercise::says(SOLUTIONS, hop);
    }
    let args = ["longpoll", "--addr", "127.0.0.1:0", "--loops", "2"];
    let mut run = exercise::start(exercise::looplab(), &args, &[("LOOPLAB_TRACE", "1")]);
    let addr = run.listening_on();
    let [_, mut on_loop_1] = util::group::client_per_loop(addr);
    util::group::publish(&mut on_loop_1, "from loop 1");
    for hop in [
        "hop publish: loop 1 -> 0",
        "hop published: loop 0 -> 1",
        "hop latest: loop 0 -> 1",
    ] {
        run.seen_or_wait_for(hop, WITHIN, |l| l.contains(hop));
    }
    drop(on_loop_1);
    run.signal("INT");
    let status = run.finish(WITHIN);
    assert!(status.success(), "{}", run.transcript());
    for i in 0..2 {
        let prefix = format!("longpoll loop {i}: ");
        assert!(
            run.err
                .iter()
                .any(|l| l.starts_with(&prefix) && l.ends_with("hops sent to other loops")),
            "{prefix}...\n{}",
            run.transcript()
        );
    }
}

/// Chapter 13, Try 2, scripted: a child that prints forever (`sh -c 'yes'`), its stdout
/// read once and then `read_stop`ped, fills the socket buffer and blocks in `write`: it
/// has not exited after 400 ms and the loop is still waiting for it. The deadline
/// (SIGTERM, as `sleeper` gets) ends it with signal 15, and then the loop exits.
#[cfg(target_os = "linux")] // the child's name is read from /proc
#[test]
fn chapter_13_try_2_a_child_nobody_reads_never_exits_until_its_deadline() {
    use looplab::process::{Command, Stdio};
    use looplab::{ExitStatus, ReadEvent, RunMode};
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    exercise::says(CH13, "Make `uname` print forever (`sh -c 'exec yes'`)");
    exercise::says(CH13, "it never exits, and the loop waits for it");
    exercise::says(
        SOLUTIONS,
        "checks it still runs 400 ms later). The deadline's SIGTERM",
    );
    let mut lp = Loop::new().expect("a loop");
    util::fail_after(&mut lp, Duration::from_secs(20));
    let exited: Rc<RefCell<Option<ExitStatus>>> = Rc::default();
    // Closed only once the child is reaped: closed earlier, `yes` could die of the
    // write error before the SIGTERM lands.
    let pipe = Rc::new(Cell::new(None));
    let (e, to_close) = (exited.clone(), pipe.clone());
    let cmd = Command::new("sh")
        .arg("-c")
        .arg("exec yes")
        .stdout(Stdio::Pipe);
    let child = lp
        .spawn_process(cmd, move |lp, _, status| {
            *e.borrow_mut() = Some(status);
            if let Some(p) = to_close.take() {
                lp.close(p);
            }
        })
        .expect("sh runs");
    let stdout = child.stdout.expect("piped");
    pipe.set(Some(stdout));
    let read = Rc::new(Cell::new(0usize));
    let r = read.clone();
    lp.read_start(stdout, move |lp, me, ev| {
        if let ReadEvent::Data(bytes) = ev {
            r.set(r.get() + bytes.len());
        }
        lp.read_stop(me);
    })
    .expect("reading");
    let still_running = Rc::new(Cell::new(None));
    let (e, s, p) = (exited.clone(), still_running.clone(), child.process);
    // With `exec` the child the deadline signals is `yes` itself, not a shell above it.
    let comm = Rc::new(RefCell::new(String::new()));
    let (c, pid) = (comm.clone(), child.pid);
    lp.set_timeout(Duration::from_millis(400), move |lp, _| {
        s.set(Some(e.borrow().is_none()));
        *c.borrow_mut() = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        lp.kill(p, libc::SIGTERM).expect("the child still runs");
    });
    lp.run(RunMode::Default).expect("the loop runs");
    assert!(read.get() > 0, "the first read came");
    assert_eq!(
        still_running.get(),
        Some(true),
        "blocked in write, not exited"
    );
    assert_eq!(comm.borrow().trim(), "yes", "the signal goes to yes");
    let status = exited.borrow().expect("reaped after the SIGTERM");
    assert_eq!(status.signal, Some(libc::SIGTERM), "{status}");
}

/// Chapter 13, Try 4, as docs/solutions.md answers it: children that die before the loop
/// reaches its poll phase are zombies meanwhile (the count climbs), and the SIGCHLD the
/// loop then handles reaps every one (it falls back to 0). Zombies are read from /proc.
#[cfg(target_os = "linux")]
#[test]
fn chapter_13_try_4_zombies_climb_until_the_poll_phase_reaps_them() {
    use looplab::process::Command;
    use looplab::RunMode;
    use util::process::is_our_zombie;
    exercise::says(
        CH13,
        "Why does it climb into the hundreds for a moment, three times",
    );
    exercise::says(SOLUTIONS, "so for a moment most of them are zombies");
    let mut lp = Loop::new().expect("a loop");
    util::fail_after(&mut lp, Duration::from_secs(60));
    let pids: Vec<u32> = (0..50)
        .map(|i| {
            let cmd = Command::new("sh").arg("-c").arg(format!("exit {i}"));
            lp.spawn_process(cmd, |_, _, _| {}).expect("sh runs").pid
        })
        .collect();
    let zombies = || pids.iter().filter(|&&p| is_our_zombie(p)).count();
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while zombies() < pids.len() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        zombies(),
        pids.len(),
        "dead, not yet reaped: every one a zombie"
    );
    lp.run(RunMode::Default).expect("the loop runs");
    assert_eq!(
        zombies(),
        0,
        "one SIGCHLD, and the loop asked each of its children"
    );
}
