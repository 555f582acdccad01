//! `looplab top` in a real terminal: tmux runs it against a loaded echo server's
//! `--metrics-addr`; `capture-pane` reads the screen (the phases, the figures, a window
//! number that moves on once a second) and `send-keys q` quits it. tmux is installed by
//! `.ci/install-tmux` (run by `make test`). The tmux server is this test's own (its own
//! socket name) and is killed by that name when the test ends.

mod util;

use std::process::Command;
use std::time::{Duration, Instant};
use util::watched::{EchoLoad, ServerWithMetrics};

/// A private tmux server; killed (by its socket name) when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        let found = Command::new("tmux").arg("-V").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "tmux not found: run .ci/install-tmux (make test does)"
        );
        Tmux {
            socket: format!("looplab-top-test-{}", std::process::id()),
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("running tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "top"]).stdout).into()
    }

    fn running(&self) -> bool {
        self.run(&["has-session", "-t", "top"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The window number on the title line ("| window 7 |").
fn window_number(screen: &str) -> Option<u64> {
    let after = screen.split("| window ").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

#[test]
fn top_shows_the_phases_refreshes_and_quits_on_q() {
    let tmux = Tmux::new();
    let server = ServerWithMetrics::start(&["echo", "--addr", "127.0.0.1:0"]);
    let load = EchoLoad::start(server.addr, 1, 10, Duration::from_secs(60));
    let command = format!(
        "exec {} top {}",
        env!("CARGO_BIN_EXE_looplab"),
        server.metrics
    );
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "110",
        "-y",
        "42",
        &command,
    ]);
    assert!(started.status.success(), "{started:?}");

    let first = wait_for("a window on the screen", || {
        let s = tmux.screen();
        window_number(&s).map(|n| (n, s))
    });
    let screen = &first.1;
    for label in [
        "phases: share of the window",
        "poll wait",
        "poll I/O",
        "timers",
        "pending",
    ] {
        assert!(
            screen.contains(label),
            "no {label:?} on the screen:\n{screen}"
        );
    }
    for figure in [
        "utilization",
        "loop lag",
        "slowest callback",
        "why alive",
        "pool",
    ] {
        assert!(
            screen.contains(figure),
            "no {figure:?} on the screen:\n{screen}"
        );
    }
    // The 10 clients hold the loop (and top's own poll connection too: the watcher is
    // in what it watches).
    let tcp_refd: u64 = screen
        .split("handles (ref'd/unref'd):")
        .nth(1)
        .and_then(|line| line.split("tcp ").nth(1))
        .and_then(|rest| rest.split('/').next()?.parse().ok())
        .unwrap_or(0);
    assert!(tcp_refd >= 10, "the clients' handles:\n{screen}");
    // Once a second: a later window replaces it.
    wait_for("the next window", || {
        window_number(&tmux.screen()).filter(|&n| n > first.0)
    });

    tmux.run(&["send-keys", "-t", "top", "q"]);
    wait_for("top to quit on q", || (!tmux.running()).then_some(()));
    assert!(load.finish() > 0);
}

/// Without a terminal (output into a pipe, as in a script), `looplab top` fails at once
/// with a line that says it needs one, not a bare "No such device or address".
#[test]
fn top_without_a_terminal_says_it_needs_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_looplab"))
        .args(["top", "127.0.0.1:9"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running looplab top");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {err}");
    assert!(err.contains("needs a terminal"), "stderr: {err}");
}
