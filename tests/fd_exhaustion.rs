//! Out of file descriptors: the `looplab echo` binary under `ulimit -n 24` keeps serving
//! the connections it has, does not spin on accept, says so once, and accepts the
//! waiting clients when fds free up.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn try_round_trip(s: &mut TcpStream, msg: &[u8]) -> bool {
    let mut back = vec![0; msg.len()];
    s.write_all(msg).is_ok() && s.read_exact(&mut back).is_ok() && back == msg
}

#[test]
fn echo_backs_off_when_out_of_fds_and_recovers() {
    if !cfg!(target_os = "linux") {
        return; // reads /proc
    }
    let bin = env!("CARGO_BIN_EXE_looplab");
    // A hard limit of 24: the server cannot raise it, so it runs out after ~15 clients.
    let mut child = Command::new("bash")
        .args([
            "-c",
            &format!("ulimit -n 24 && exec {bin} echo --addr 127.0.0.1:0"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = util::KilledOnDrop(child);
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let addr: SocketAddr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();

    // 40 clients: the first ones are accepted, the rest wait in the backlog.
    let mut clients: Vec<TcpStream> = (0..40).map(|_| util::connect(addr)).collect();
    for c in &clients {
        c.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
    }
    let served: Vec<usize> = (0..clients.len())
        .filter(|&i| try_round_trip(&mut clients[i], b"ping"))
        .collect();
    assert!(
        !served.is_empty() && served.len() < 40,
        "served {} of 40",
        served.len()
    );

    // Out of fds, the listener must not spin: little CPU over half a second.
    let before = util::cpu_ticks(server.0.id());
    std::thread::sleep(Duration::from_millis(500));
    let used = util::cpu_ticks(server.0.id()) - before;
    assert!(
        used < 15,
        "server burned {used} ticks of CPU in 500 ms while out of fds"
    );

    // Existing connections still work.
    for &i in &served {
        assert!(
            try_round_trip(&mut clients[i], b"still here"),
            "client {i} lost service"
        );
    }

    // Free fds: close the served clients; the waiting ones get accepted within the backoff.
    let mut waiting: Vec<TcpStream> = clients
        .into_iter()
        .enumerate()
        .filter(|(i, _)| !served.contains(i))
        .map(|(_, c)| c)
        .collect();
    // The first waiting client's "ping" has waited in the socket since before; once accepted, the echo comes.
    let first = &mut waiting[0];
    first
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut recovered = false;
    while !recovered && Instant::now() < deadline {
        let mut buf = [0u8; 64];
        recovered = matches!(first.read(&mut buf), Ok(n) if n > 0);
    }
    assert!(
        recovered,
        "a waiting client was never served after fds were freed"
    );
    drop(waiting);
    drop(server);
    let mut err = String::new();
    BufReader::new(stderr).read_to_string(&mut err).unwrap();
    assert_eq!(
        err.matches("out of file descriptors").count(),
        1,
        "stderr: {err}"
    );
}
