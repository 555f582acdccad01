//! A bounded black-box fuzz of `looplab longpoll`: 20 000 requests, random bytes and
//! mutations of valid requests (flipped bytes, huge and odd numbers, duplicate headers,
//! truncation, CRLF games, framing headers), sent to the built binary over a bounded
//! number of connections. Every connection must end in a close within a timeout (each
//! sends a few pipelined requests, then its FIN), and the server must still be running
//! and answering `/stats` at the end.
//!
//! Seeded: a failure prints the seed; `LOOPLAB_FUZZ_SEED=N` replays it.

mod util;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use util::child::ServerChild;

const REQUESTS: usize = 20_000;
/// Client threads, each with one connection at a time.
const WORKERS: usize = 4;
/// Requests pipelined on one connection, at most.
const PER_CONN: u64 = 8;
/// A connection that has sent its FIN must be closed by the server within this.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    /// Seeds spread by splitmix64, so nearby seeds give unrelated streams.
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Numbers a client might send where the server expects a small one.
const ODD_NUMBERS: [&str; 16] = [
    "1e20",
    "NaN",
    "inf",
    "-inf",
    "-1",
    "1e309",
    "+15",
    "0x10",
    "-0",
    "1_0",
    "",
    "18446744073709551616",
    "99999999999999999999999",
    "4294967296",
    " 7",
    "0.0000001",
];
const SPECIAL: [u8; 10] = [0, b'\r', b'\n', b' ', b':', b'\t', 0x7f, 0xff, b'?', b'%'];

fn valid(rng: &mut Rng) -> Vec<u8> {
    let cursor = rng.below(6);
    let timeout = rng.pick(&["0", "0.01", "0.05"]);
    let text = rng.pick(&["hi", "\\u0001\\u0002", "caf\\u00e9", "a\\nb"]);
    let body = format!(r#"{{"text":"{text}"}}"#);
    let json = "Content-Type: application/json";
    let r = match rng.below(11) {
        0 => "GET / HTTP/1.1\r\nHost: f\r\n\r\n".to_string(),
        1 => "GET /stats HTTP/1.1\r\nHost: f\r\n\r\n".to_string(),
        2 => format!("GET /poll?cursor={cursor}&timeout={timeout} HTTP/1.1\r\nHost: f\r\n\r\n"),
        3 => format!(
            "POST /publish HTTP/1.1\r\nHost: f\r\n{json}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
        4 => "HEAD / HTTP/1.1\r\nHost: f\r\n\r\n".to_string(),
        5 => "GET /nowhere HTTP/1.1\r\nHost: f\r\n\r\n".to_string(),
        6 => "POST /poll HTTP/1.1\r\nHost: f\r\nContent-Length: 0\r\n\r\n".to_string(),
        7 => "GET /stats HTTP/1.0\r\n\r\n".to_string(),
        8 => format!(
            "POST /publish HTTP/1.1\r\nHost: f\r\n{json}\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
        9 => format!("GET /poll?cursor={cursor}&timeout={timeout} HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n"),
        _ => "OPTIONS * HTTP/1.1\r\nHost: f\r\n\r\n".to_string(),
    };
    r.into_bytes()
}

/// Where each line of `req` starts.
fn line_starts(req: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        req.iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i + 1),
    );
    starts.retain(|&s| s < req.len());
    starts
}

fn mutate(rng: &mut Rng, mut req: Vec<u8>) -> Vec<u8> {
    for _ in 0..=rng.below(3) {
        if req.is_empty() {
            return rng.bytes(16);
        }
        let at = rng.below(req.len() as u64) as usize;
        match rng.below(10) {
            0 => req[at] ^= 1 << rng.below(8),
            1 => req[at] = *rng.pick(&SPECIAL),
            2 => odd_digits(rng, &mut req, at),
            3 => odd_query_value(rng, &mut req),
            4 => duplicate_header(rng, &mut req),
            5 => req.truncate(at),
            6 => crlf_game(rng, &mut req, at),
            7 => {
                let n = rng.below(64) as usize;
                let junk = rng.bytes(n);
                req.splice(at..at, junk);
            }
            8 => framing_header(rng, &mut req),
            _ => {
                let n = rng.below(20_000) as usize;
                let fill = vec![req[at]; n];
                req.splice(at..at, fill);
            }
        }
    }
    req
}

/// Swap a run of digits (the first from `at` on) for an odd number.
fn odd_digits(rng: &mut Rng, req: &mut Vec<u8>, at: usize) {
    let digit = |b: &u8| b.is_ascii_digit();
    let start = req[at..]
        .iter()
        .position(digit)
        .map_or_else(|| req.iter().position(digit).unwrap_or(at), |d| at + d);
    let end = req[start..]
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(req.len(), |e| start + e);
    let odd = rng.pick(&ODD_NUMBERS).as_bytes().to_vec();
    req.splice(start..end.max(start), odd);
}

/// Swap one query value of the request line (`cursor=`, `timeout=`) for an odd number.
fn odd_query_value(rng: &mut Rng, req: &mut Vec<u8>) {
    let line_end = req.iter().position(|&b| b == b'\r').unwrap_or(req.len());
    let values: Vec<usize> = (0..line_end)
        .filter(|&i| req[i] == b'=')
        .map(|i| i + 1)
        .collect();
    if values.is_empty() {
        return;
    }
    let start = *rng.pick(&values);
    let end = req[start..line_end]
        .iter()
        .position(|&b| b == b'&' || b == b' ')
        .map_or(line_end, |e| start + e);
    let odd = rng.pick(&ODD_NUMBERS).as_bytes().to_vec();
    req.splice(start..end, odd);
}

/// Repeat a header line, sometimes with a digit changed (two differing lengths).
fn duplicate_header(rng: &mut Rng, req: &mut Vec<u8>) {
    let lines = line_starts(req);
    let from = *rng.pick(&lines[1.min(lines.len() - 1)..]);
    let to = req[from..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(req.len(), |e| from + e + 1);
    let mut line = req[from..to].to_vec();
    if rng.below(2) == 0 {
        if let Some(d) = line.iter().position(|b| b.is_ascii_digit()) {
            line[d] = b'0' + rng.below(10) as u8;
        }
    }
    req.splice(to..to, line);
}

/// Bare LF, bare CR, doubled CR, an obs-fold, an early end of the head.
fn crlf_game(rng: &mut Rng, req: &mut Vec<u8>, at: usize) {
    let games: [&[u8]; 6] = [b"\n", b"\r", b"\r\r\n", b"\n\r", b"\r\n ", b"\r\n\r\n"];
    let lines = line_starts(req);
    let cut = *rng.pick(&lines);
    let crlf = cut >= 2 && &req[cut - 2..cut] == b"\r\n";
    let (from, to) = if crlf { (cut - 2, cut) } else { (at, at) };
    req.splice(from..to, rng.pick(&games).to_vec());
}

/// A framing or connection header after the request line, often with an odd value.
fn framing_header(rng: &mut Rng, req: &mut Vec<u8>) {
    let headers = [
        "Content-Length: ",
        "Transfer-Encoding: chunked",
        "Content-Length: 1, 2",
        "Transfer-Encoding: gzip, chunked",
        "Connection: close",
        "Host: g",
    ];
    let mut h = rng.pick(&headers).to_string();
    if h.ends_with(": ") {
        let odd: &&str = rng.pick(&ODD_NUMBERS);
        h.push_str(odd);
    }
    h.push_str("\r\n");
    let end = req
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(0, |e| e + 2);
    req.splice(end..end, h.into_bytes());
}

fn case(rng: &mut Rng) -> Vec<u8> {
    match rng.below(20) {
        0 | 1 => {
            let n = rng.below(300) as usize;
            rng.bytes(n)
        }
        2..=6 => valid(rng),
        _ => {
            let v = valid(rng);
            mutate(rng, v)
        }
    }
}

/// What one connection got back.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, u64>,
    connections: u64,
    requests: u64,
    failures: Vec<String>,
}

/// Send `payload` in up to three writes, then the FIN; read until the server closes.
fn one_connection(addr: SocketAddr, payload: &[u8], rng: &mut Rng, t: &mut Tally) {
    let mut s = match TcpStream::connect_timeout(&addr, CLOSE_WITHIN) {
        Ok(s) => s,
        Err(e) => return t.failures.push(format!("connect: {e}")),
    };
    let _ = s.set_read_timeout(Some(CLOSE_WITHIN));
    let _ = s.set_write_timeout(Some(CLOSE_WITHIN));
    let cut = rng.below(payload.len() as u64 + 1) as usize;
    // The server may answer and close before reading everything: write errors are fine.
    let _ = s
        .write_all(&payload[..cut])
        .and_then(|_| s.write_all(&payload[cut..]));
    let _ = s.shutdown(Shutdown::Write);
    let mut got = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let start = Instant::now();
    let ended = loop {
        match s.read(&mut chunk) {
            Ok(0) => break Ok(()),
            Ok(n) if got.len() < 1 << 20 => got.extend_from_slice(&chunk[..n]),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    t.connections += 1;
    for w in got.windows(12).filter(|w| w.starts_with(b"HTTP/1.1 ")) {
        if let Some(code) = std::str::from_utf8(&w[9..12])
            .ok()
            .and_then(|c| c.parse().ok())
        {
            *t.statuses.entry(code).or_default() += 1;
        }
    }
    if let Err(e) = ended {
        let sent = String::from_utf8_lossy(&payload[..payload.len().min(300)]).into_owned();
        t.failures.push(format!(
            "no close after {:?} ({e}); {} bytes back; sent {sent:?}",
            start.elapsed(),
            got.len()
        ));
    }
}

fn worker(addr: SocketAddr, seed: u64, requests: usize) -> Tally {
    let mut rng = Rng::new(seed);
    let mut t = Tally::default();
    while (t.requests as usize) < requests && t.failures.len() < 5 {
        let n = (1 + rng.below(PER_CONN)).min((requests - t.requests as usize) as u64);
        let payload: Vec<u8> = (0..n).flat_map(|_| case(&mut rng)).collect();
        one_connection(addr, &payload, &mut rng, &mut t);
        t.requests += n;
    }
    t
}

#[test]
fn twenty_thousand_hostile_requests_leave_the_server_serving() {
    let seed: u64 = std::env::var("LOOPLAB_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x100b_1ab5);
    let mut server = ServerChild::start(&[
        "longpoll",
        "--addr",
        "127.0.0.1:0",
        "--header-timeout",
        "2s",
    ]);
    let addr = server.addr;
    let start = Instant::now();
    let workers: Vec<_> = (0..WORKERS as u64)
        .map(|w| std::thread::spawn(move || worker(addr, seed.wrapping_add(w), REQUESTS / WORKERS)))
        .collect();
    let mut all = Tally::default();
    for w in workers {
        let t = w.join().expect("a fuzz worker panicked");
        all.connections += t.connections;
        all.requests += t.requests;
        all.failures.extend(t.failures);
        for (code, n) in t.statuses {
            *all.statuses.entry(code).or_default() += n;
        }
    }
    let answered: u64 = all.statuses.values().sum();
    eprintln!(
        "fuzz seed {seed}: {} requests on {} connections in {:?}; statuses {:?}",
        all.requests,
        all.connections,
        start.elapsed(),
        all.statuses
    );
    let exited = server.wait_for_exit(Duration::from_millis(200));
    let stats = util::wire::get(addr, "/stats", CLOSE_WITHIN);
    let said = server.stderr_so_far();
    let how = exited.map_or("running".to_string(), |s| s.to_string());
    assert!(
        exited.is_none() && matches!(&stats, Ok(a) if a.status == 200 && a.json().is_some()),
        "seed {seed}: the server did not survive ({how}), /stats {stats:?}; stderr:\n{said}"
    );
    assert!(
        all.failures.is_empty(),
        "seed {seed}: {} connections were not closed:\n  {}",
        all.failures.len(),
        all.failures.join("\n  ")
    );
    assert!(!said.contains("panicked"), "seed {seed}: stderr:\n{said}");
    assert_eq!(all.requests as usize, REQUESTS - REQUESTS % WORKERS);
    // The fuzz reached the router, not only the parser: successes and refusals both.
    let ok = all.statuses.range(200..300).map(|(_, n)| n).sum::<u64>();
    let refused = all.statuses.range(400..500).map(|(_, n)| n).sum::<u64>();
    assert!(
        ok > 200 && refused > 1000,
        "answered {answered}: {:?}",
        all.statuses
    );
}
