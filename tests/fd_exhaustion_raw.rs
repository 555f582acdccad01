//! Out of file descriptors, by hand: the `looplab echo-raw` binary (rung 3) under
//! `ulimit -n 64` with 200 clients does not spin on accept, sheds the clients it has no
//! fd for (they see their connection end instead of hanging), keeps serving the ones it
//! holds, and serves new clients once the old ones leave.

mod util;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Clock ticks per second, as `getconf CLK_TCK` prints it (100 if that fails).
fn ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s
}

/// What one client sees: its echo, the end of its connection, or nothing (a hang).
#[derive(Debug, PartialEq)]
enum Fate {
    Echoed,
    Ended,
    Hung,
}

fn fate(s: &mut TcpStream) -> Fate {
    let mut back = [0u8; 4];
    if s.write_all(b"ping").is_err() {
        return Fate::Ended;
    }
    match s.read_exact(&mut back) {
        Ok(()) if &back == b"ping" => Fate::Echoed,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Fate::Hung,
        _ => Fate::Ended,
    }
}

fn start_server() -> (util::KilledOnDrop, SocketAddr) {
    let bin = env!("CARGO_BIN_EXE_looplab");
    // A hard limit too: the server cannot raise it, so it runs out after ~58 clients.
    let mut child = Command::new("sh")
        .args([
            "-c",
            &format!("ulimit -n 64 && exec {bin} echo-raw --addr 127.0.0.1:0"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = util::KilledOnDrop(child);
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    (server, addr)
}

#[test]
fn echo_raw_sheds_instead_of_spinning_when_out_of_fds() {
    if !cfg!(target_os = "linux") {
        return; // the raw rung is epoll, and the test reads /proc
    }
    let (server, addr) = start_server();
    let pid = server.0.id();
    let before = (util::cpu_ticks(pid), Instant::now());
    let mut clients: Vec<TcpStream> = (0..200).map(|_| connect(addr)).collect();

    // Out of fds, the listener must not spin: CPU far below wall time over the window.
    std::thread::sleep(Duration::from_secs(1));
    let used_s = (util::cpu_ticks(pid) - before.0) as f64 / ticks_per_second() as f64;
    let wall_s = before.1.elapsed().as_secs_f64();
    assert!(
        used_s < 0.3 * wall_s,
        "server burned {used_s:.2} s of CPU in {wall_s:.2} s while out of fds"
    );

    let fates: Vec<Fate> = clients.iter_mut().map(fate).collect();
    let count = |f: Fate| fates.iter().filter(|&x| *x == f).count();
    let (echoed, ended) = (count(Fate::Echoed), count(Fate::Ended));
    eprintln!(
        "out of fds: server CPU {used_s:.2} s in {wall_s:.2} s; \
         of 200 clients {echoed} echoed, {ended} shed (connection ended)"
    );
    assert!(
        echoed > 0 && ended > 0 && echoed + ended == 200,
        "echoed {echoed}, ended {ended}, hung {} of 200",
        count(Fate::Hung)
    );

    // The clients leave; a new one is served (within a bounded number of tries).
    drop(clients);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut served = false;
    while !served && Instant::now() < deadline {
        served = fate(&mut connect(addr)) == Fate::Echoed;
        if !served {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(served, "no new client was served after the old ones left");
}
