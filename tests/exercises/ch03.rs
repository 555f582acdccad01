//! Chapter 3: the ladder. Rung 1 serves one client at a time; rung 2 holds a thread per
//! connection and switches context per message; rung 3 holds one thread.

use crate::exercise::{run_example, says};
use std::time::Duration;

const CH: &str = "docs/03-threads-or-one-thread.md";

/// Rung 1 with two clients: the server names the first client's address, and the client
/// gives up on the second connection after 5 s, saying so as a person would.
#[test]
fn rung_1_serves_one_client_and_the_second_waits() {
    let mut server = run_example("08_blocking_echo", &["127.0.0.1:0"], &[]);
    let addr = server.listening_on().to_string();
    let mut client = run_example("12_echo_client", &[&addr, "2", "10"], &[]);
    let status = client.finish(Duration::from_secs(30));
    assert!(!status.success(), "{}", client.transcript());
    let said = client.stderr();
    says(
        CH,
        "connection 1, message 0: no echo within 5 s (is the server serving more than one client?)",
    );
    assert_eq!(
        said,
        "12_echo_client: connection 1, message 0: no echo within 5 s (is the server serving more than one client?)"
    );
    let serving = server.wait_for("serving", Duration::from_secs(5), |l| {
        l.starts_with("serving")
    });
    let peer = serving
        .strip_prefix("serving ")
        .and_then(|r| r.strip_suffix("; everyone else waits"))
        .unwrap_or_else(|| panic!("{serving}"));
    assert!(
        peer.parse::<std::net::SocketAddr>().is_ok(),
        "not an address: {serving}"
    );
}

/// Threads and context switches, read from /proc: Linux only.
#[cfg(target_os = "linux")]
mod counted {
    use super::CH;
    use crate::exercise::{blocks, example, read, run_example, says, start};
    use std::process::Command;
    use std::time::Duration;

    const CONNS: usize = 200;
    const MESSAGES: usize = 20;

    fn nlwp(pid: u32) -> usize {
        let out = Command::new("ps")
            .args(["-o", "nlwp=", "-p", &pid.to_string()])
            .output()
            .expect("running ps");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("ps -o nlwp= prints a number")
    }

    /// The chapter's command that sums the context switches over every thread, run as
    /// written with `pid` set.
    fn switches(pid: u32) -> u64 {
        let block = blocks(&read(CH), "sh")
            .into_iter()
            .find(|b| b.iter().any(|l| l.contains("ctxt_switches")))
            .expect("chapter 3 gives the command");
        assert_eq!(block[0], "pid=$(pgrep -f 09_thread_per_connection)");
        let out = Command::new("bash")
            .args(["-c", &block[1]])
            .env("pid", pid.to_string())
            .output()
            .expect("running bash");
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| {
                panic!(
                    "the command printed {:?}",
                    String::from_utf8_lossy(&out.stdout)
                )
            })
    }

    /// The main thread's switches alone: what `grep ctxt /proc/PID/status` counts.
    fn main_thread_switches(pid: u32) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    }

    /// Tries 1 and 3: rung 2 holds a thread per connection plus one, and switches context at
    /// least once per message, which only the sum over every thread shows.
    #[test]
    fn tries_1_and_3_rung_2_a_thread_and_a_switch_per_message() {
        says(CH, "ps -o nlwp= -p $(pgrep -f 09_thread_per_connection)");
        let mut server = start(example("09_thread_per_connection"), &["127.0.0.1:0"], &[]);
        let addr = server.listening_on().to_string();
        let (before, main_before) = (switches(server.pid()), main_thread_switches(server.pid()));
        let (conns, messages) = (CONNS.to_string(), MESSAGES.to_string());
        let mut client = run_example(
            "12_echo_client",
            &[&addr, &conns, &messages, "--hold", "20"],
            &[],
        );
        client.wait_for("'holding'", Duration::from_secs(60), |l| {
            l.starts_with("holding")
        });
        assert_eq!(nlwp(server.pid()), CONNS + 1);
        let during = switches(server.pid());
        let main_during = main_thread_switches(server.pid());
        let round_trips = (CONNS * MESSAGES) as u64;
        assert!(
            during - before >= round_trips,
            "{} switches for {round_trips} round trips",
            during - before
        );
        // The main thread (the acceptor) alone saw a few per connection, not per message.
        assert!(
            main_during - main_before < round_trips / 4,
            "{main_before} -> {main_during}"
        );
        client.kill();
        server.kill();
    }

    /// Tries 2 and 3 on rung 3: one thread, and far fewer switches than messages.
    #[test]
    fn tries_2_and_3_rung_3_one_thread() {
        let mut server = start(example("10_epoll_by_hand"), &["127.0.0.1:0"], &[]);
        let addr = server.listening_on().to_string();
        let before = switches(server.pid());
        let (conns, messages) = (CONNS.to_string(), MESSAGES.to_string());
        let mut client = run_example(
            "12_echo_client",
            &[&addr, &conns, &messages, "--hold", "20"],
            &[],
        );
        client.wait_for("'holding'", Duration::from_secs(60), |l| {
            l.starts_with("holding")
        });
        assert_eq!(nlwp(server.pid()), 1);
        let during = switches(server.pid());
        let round_trips = (CONNS * MESSAGES) as u64;
        assert!(
            during - before < round_trips / 2,
            "{} switches",
            during - before
        );
        client.kill();
        server.kill();
    }
}
