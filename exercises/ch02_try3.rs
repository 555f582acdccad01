//! # Chapter 2, Try 4 — backpressure: a client that sends and does not read
//!
//! `looplab echo`'s server (`src/servers/echo.rs`) on a loop, and a client that sends
//! 32 MiB without reading anything for half a second, then reads every byte back. The
//! server would have to queue the whole echo if it kept reading; instead it stops reading
//! that connection once its write queue passes the high-water mark (1 MiB), and reads
//! again when the queue has drained to the low-water mark (256 KiB). Meanwhile the
//! kernel's buffers fill and the client's `write` blocks: the pressure goes back to the
//! sender, which is the point.
//!
//! **Run it.** `cargo run --release --example ch02_try3`
//!
//! **Look for** `the largest write queue: 1.0x MiB`, never more than the high-water mark
//! plus one read (64 KiB), `reading paused N times` with N at least 1, and every byte
//! back in order. Comment out the `read_stop` in `src/servers/echo.rs` and the queue
//! reaches tens of MiB.

use looplab::servers::echo::{Echo, EchoConfig, HIGH_WATER, LOW_WATER};
use looplab::{Loop, RunMode};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

const TOTAL: usize = 32 * 1024 * 1024;
const MIB: f64 = 1024.0 * 1024.0;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ch02_try3: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> io::Result<()> {
    let mut lp = Loop::new()?;
    let config = EchoConfig {
        addr: ([127, 0, 0, 1], 0).into(),
        ..EchoConfig::default()
    };
    let echo = Echo::listen(&mut lp, config)?;
    let addr = echo.local_addr(&lp)?;
    // When the client is done, it wakes the loop, which shuts the server down.
    let e = echo.clone();
    let (_done, done) = lp.async_handle(move |lp, me| {
        e.shutdown(lp);
        lp.close(me);
    });
    let client = std::thread::spawn(move || {
        let result = late_reader(addr);
        done.send();
        result
    });
    lp.run(RunMode::Default)?;
    let back = client
        .join()
        .map_err(|_| io::Error::other("the client thread panicked"))??;
    let s = echo.stats();
    println!(
        "the client sent {} MiB, read nothing for 0.5 s, then read {} MiB back, in order",
        TOTAL / (1024 * 1024),
        back / (1024 * 1024)
    );
    println!(
        "the largest write queue: {:.2} MiB (high-water mark {:.0} MiB, low-water {:.2} MiB); reading paused {} times",
        s.max_queue as f64 / MIB,
        HIGH_WATER as f64 / MIB,
        LOW_WATER as f64 / MIB,
        s.paused
    );
    Ok(())
}

/// Send TOTAL bytes on one thread; read them back on another that starts late. Returns
/// how many bytes came back, after checking each is the one sent.
fn late_reader(addr: SocketAddr) -> io::Result<usize> {
    let mut conn = TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut sender = conn.try_clone()?;
    let writer = std::thread::spawn(move || -> io::Result<()> {
        let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        for _ in 0..TOTAL / chunk.len() {
            sender.write_all(&chunk)?; // blocks while the server is not reading
        }
        sender.shutdown(std::net::Shutdown::Write)
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0usize;
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        for (k, b) in buf[..n].iter().enumerate() {
            if *b != ((got + k) % (64 * 1024) % 251) as u8 {
                return Err(io::Error::other(format!(
                    "byte {} came back wrong",
                    got + k
                )));
            }
        }
        got += n;
    }
    writer
        .join()
        .map_err(|_| io::Error::other("the writer thread panicked"))??;
    Ok(got)
}
