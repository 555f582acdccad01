//! Errors as a person reads them: the command line and the examples say what failed, with
//! its context, once, in words (never a Debug dump like `Custom { kind: AddrInUse, .. }`),
//! and durations take every unit the messages name.

use crate::exercise::{looplab, run_example, start};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(20);

fn no_debug_dump(said: &str) {
    for dump in ["Custom {", "Os {", "kind:", "Error {"] {
        assert!(!said.contains(dump), "a Debug dump: {said}");
    }
}

/// A port someone else holds: every server and example says which address it could not
/// bind, and why, on one line.
#[test]
fn a_taken_port_is_said_once_with_its_address() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let cases: Vec<(String, crate::exercise::Run)> = vec![
        (
            "looplab".into(),
            start(looplab(), &["echo", "--addr", &addr], &[]),
        ),
        (
            "08_blocking_echo".into(),
            run_example("08_blocking_echo", &[&addr], &[]),
        ),
        (
            "09_thread_per_connection".into(),
            run_example("09_thread_per_connection", &[&addr], &[]),
        ),
        (
            "11_echo_on_the_loop".into(),
            run_example("11_echo_on_the_loop", &[&addr], &[]),
        ),
    ];
    for (name, mut run) in cases {
        let status = run.finish(LIMIT);
        assert!(!status.success(), "{name} bound a taken port");
        let said = run.stderr();
        let want = format!("{name}: binding {addr}: Address already in use");
        assert!(said.starts_with(&want), "{name}: {said}");
        assert_eq!(
            said.matches("Address already in use").count(),
            1,
            "said twice: {said}"
        );
        no_debug_dump(&said);
    }
}

/// The client against nobody, and with bad arguments: what went wrong, in words.
#[test]
fn the_client_says_what_went_wrong() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut refused = run_example("12_echo_client", &[&free.to_string(), "1", "1"], &[]);
    assert!(!refused.finish(LIMIT).success());
    let said = refused.stderr();
    assert!(
        said.starts_with(&format!(
            "12_echo_client: connection 0 to {free}: Connection refused"
        )),
        "{said}"
    );
    assert!(said.ends_with("(is a server running?)"), "{said}");
    no_debug_dump(&said);
    let mut bad = run_example("12_echo_client", &["10.0.0.1:7"], &[]);
    assert!(!bad.finish(LIMIT).success());
    assert_eq!(
        bad.stderr(),
        "12_echo_client: 10.0.0.1:7: this client only talks to 127.0.0.1 or ::1"
    );
}

/// Durations: every unit the message names is accepted (1h included); outside the range
/// is an error that names it; --poll-timeout over the server's maximum is lowered, and
/// the server says so instead of doing it silently.
#[test]
fn durations_in_every_unit_and_the_poll_timeout_maximum() {
    let mut out_of_range = start(
        looplab(),
        &["echo", "--addr", "127.0.0.1:0", "--idle-timeout", "2h"],
        &[],
    );
    assert!(!out_of_range.finish(LIMIT).success());
    assert!(
        out_of_range
            .stderr()
            .contains("'2h' must be between 1ms and 1h"),
        "{}",
        out_of_range.stderr()
    );

    let mut hour = start(
        looplab(),
        &[
            "longpoll",
            "--addr",
            "127.0.0.1:0",
            "--poll-timeout",
            "1h",
            "--idle-timeout",
            "1h",
        ],
        &[],
    );
    hour.listening_on();
    hour.seen_or_wait_for("the notice", LIMIT, |l| {
        l == "looplab: --poll-timeout 3600s is over the server's maximum; polls are held at most 120s"
    });
    hour.signal("INT");
    assert!(hour.finish(LIMIT).success(), "{}", hour.transcript());

    let mut fine = start(
        looplab(),
        &["longpoll", "--addr", "127.0.0.1:0", "--poll-timeout", "90s"],
        &[],
    );
    fine.listening_on();
    fine.signal("INT");
    assert!(fine.finish(LIMIT).success());
    assert!(!fine.stderr().contains("maximum"), "{}", fine.stderr());
}
