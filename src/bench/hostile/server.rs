//! The long-poll server of `bench --hostile` as a child process, and the watch on its
//! memory: a thread samples its RSS every 20 ms from start to exit, stops the run when
//! it passes [`RSS_CEILING_KIB`], and kills it past [`RSS_KILL_KIB`], so an unbounded
//! server cannot take the machine down with it.

use super::super::procstat;
use super::super::runner::child::take_output;
use super::TARGET_RSS_KIB;
use std::io::{self, BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Stop the run when the server's RSS passes this (KiB): the unbounded server reaches
/// gigabytes in seconds, and the machine is shared.
pub const RSS_CEILING_KIB: u64 = 2 << 20;
/// Kill the server past this, whatever it is doing (it may grow while the clients
/// are being stopped, or during its shutdown).
pub const RSS_KILL_KIB: u64 = 3 << 20;
/// How long the server may take to exit after SIGINT before it is killed.
const EXIT_WAIT: Duration = Duration::from_secs(15);
/// How often the watch samples.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// What the watch saw.
#[derive(Debug, Default)]
pub struct Watch {
    /// The highest RSS sampled (or VmHWM read), KiB.
    pub peak_kib: AtomicU64,
    /// RSS passed the ceiling and the run was told to stop.
    pub at_ceiling: AtomicBool,
    /// When RSS first passed the target (64 MiB).
    pub over_target_at: Mutex<Option<Instant>>,
    /// RSS passed the kill line and the server was killed.
    pub killed: AtomicBool,
    done: AtomicBool,
}

/// The server child (shared with the watch, which may kill it); killed when dropped.
pub struct Server {
    child: Arc<Mutex<Child>>,
    pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr: Option<JoinHandle<String>>,
    watch: Option<JoinHandle<()>>,
}

impl Server {
    /// Start `looplab longpoll` (this binary, or `$LOOPLAB_HOSTILE_SERVER`) with no rate
    /// limit in the way (the attack is on memory and fairness, and every client comes
    /// from 127.0.0.1), on the server's cores.
    pub fn start(pin: Option<&(Vec<usize>, Vec<usize>)>) -> io::Result<Server> {
        if let Some((_, server_cpus)) = pin {
            crate::sys::affinity::pin_current_thread(server_cpus)?;
        }
        // Another build's server may be measured by the same clients (before and after a
        // fix): LOOPLAB_HOSTILE_SERVER names its binary.
        let exe = match std::env::var_os("LOOPLAB_HOSTILE_SERVER") {
            Some(path) => path.into(),
            None => std::env::current_exe()?,
        };
        let spawned = Command::new(exe)
            .args(["longpoll", "--addr", "127.0.0.1:0"])
            .args(["--publish-rate", "1000000", "--publish-burst", "1000000"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        if let Some((client_cpus, _)) = pin {
            crate::sys::affinity::pin_current_thread(client_cpus)?;
        }
        let mut child = spawned?;
        let (out, stderr) = take_output(&mut child)?;
        let mut server = Server {
            pid: child.id(),
            child: Arc::new(Mutex::new(child)),
            addr: ([127, 0, 0, 1], 0).into(),
            stderr: Some(stderr),
            watch: None,
        };
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line)?;
        server.addr = line
            .trim()
            .strip_prefix("listening on http://")
            .map(|a| a.trim_end_matches('/'))
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| io::Error::other(format!("longpoll said {line:?}")))?;
        Ok(server)
    }

    /// RSS now, KiB.
    pub fn rss_kib(&self) -> u64 {
        procstat::sample(self.pid).map_or(0, |s| s.rss_kib)
    }

    /// Start the watch; it sets `stop` when RSS passes the ceiling.
    pub fn watch(&mut self, stop: Arc<AtomicBool>) -> Arc<Watch> {
        let w = Arc::new(Watch::default());
        let (child, pid, w2) = (self.child.clone(), self.pid, w.clone());
        self.watch = Some(std::thread::spawn(move || {
            while !w2.done.load(Ordering::SeqCst) && !exited(&child) {
                let s = procstat::sample(pid).unwrap_or_default();
                w2.peak_kib
                    .fetch_max(s.rss_kib.max(s.hwm_kib), Ordering::SeqCst);
                if s.rss_kib > TARGET_RSS_KIB {
                    if let Ok(mut at) = w2.over_target_at.lock() {
                        at.get_or_insert_with(Instant::now);
                    }
                }
                if s.rss_kib > RSS_CEILING_KIB && !w2.at_ceiling.swap(true, Ordering::SeqCst) {
                    stop.store(true, Ordering::SeqCst);
                }
                if s.rss_kib > RSS_KILL_KIB && !w2.killed.swap(true, Ordering::SeqCst) {
                    let _ = child.lock().map(|mut c| c.kill());
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
        }));
        w
    }

    /// Whether the process has ended.
    pub fn exited(&self) -> bool {
        exited(&self.child)
    }

    /// SIGINT (through kill(1): no unsafe outside src/sys), then wait up to
    /// [`EXIT_WAIT`], killing it if it is still there. Returns what happened and the
    /// seconds to exit. Stops the watch.
    pub fn interrupt(&mut self, watch: &Watch) -> (String, Option<f64>) {
        let outcome = self.sigint_and_wait(watch);
        watch.done.store(true, Ordering::SeqCst);
        if let Some(w) = self.watch.take() {
            let _ = w.join();
        }
        outcome
    }

    fn sigint_and_wait(&mut self, watch: &Watch) -> (String, Option<f64>) {
        if let Some(status) = self.try_wait() {
            let how = if watch.killed.load(Ordering::SeqCst) {
                "killed past the RSS kill line"
            } else {
                "died"
            };
            return (format!("had already exited ({how}: {status})"), None);
        }
        let t = Instant::now();
        let pid = self.pid.to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status();
        if !sent.is_ok_and(|s| s.success()) {
            self.kill();
            return ("could not send SIGINT; killed".into(), None);
        }
        while t.elapsed() < EXIT_WAIT {
            if let Some(status) = self.try_wait() {
                if watch.killed.load(Ordering::SeqCst) {
                    return (
                        "killed past the RSS kill line while shutting down".into(),
                        None,
                    );
                }
                let s = t.elapsed().as_secs_f64();
                return (format!("{status} after {s:.1} s"), Some(s));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        let secs = EXIT_WAIT.as_secs();
        (format!("still running {secs} s after SIGINT; killed"), None)
    }

    fn try_wait(&self) -> Option<std::process::ExitStatus> {
        self.child.lock().ok()?.try_wait().ok().flatten()
    }

    fn kill(&self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The last lines the server wrote to stderr (once it has ended).
    pub fn said(&mut self) -> String {
        self.kill();
        let all = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        let lines: Vec<&str> = all.lines().collect();
        lines[lines.len().saturating_sub(4)..].join(" / ")
    }
}

fn exited(child: &Mutex<Child>) -> bool {
    child
        .lock()
        .map_or(true, |mut c| !matches!(c.try_wait(), Ok(None)))
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
