//! A server binary as a child process, watched from outside: started with its
//! arguments (optionally under `ulimit -n`), its address read from the first line it
//! prints, its stderr collected as it comes, its memory and threads read from /proc,
//! signalled with `kill`, and reaped with a bound. Killed when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct ServerChild {
    child: std::process::Child,
    pub addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl ServerChild {
    /// `looplab ARGS`, waiting for its `listening on ADDR` line.
    pub fn start(args: &[&str]) -> ServerChild {
        ServerChild::spawn(Command::new(env!("CARGO_BIN_EXE_looplab")).args(args))
    }

    /// `looplab ARGS` with the open-file limit (soft and hard) at `nofile`, so the
    /// server cannot raise it.
    pub fn start_with_nofile(nofile: u32, args: &[&str]) -> ServerChild {
        let script = format!("ulimit -n {nofile} && exec \"$0\" \"$@\"");
        ServerChild::spawn(
            Command::new("sh")
                .args(["-c", &script, env!("CARGO_BIN_EXE_looplab")])
                .args(args),
        )
    }

    fn spawn(cmd: &mut Command) -> ServerChild {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the looplab binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let err_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut server = ServerChild {
            child,
            addr: ([127, 0, 0, 1], 0).into(),
            stderr,
            reader: Some(reader),
        };
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .map(|a| a.trim_start_matches("http://").trim_end_matches('/'))
            .and_then(|a| a.parse().ok());
        match addr {
            Some(a) => server.addr = a,
            None => {
                let status = server.wait_for_exit(Duration::from_secs(5));
                let how = status.map_or("still running".to_string(), |s| s.to_string());
                panic!(
                    "the server did not say where it listens (said {first:?}; {how}); stderr:\n{}",
                    server.stderr_at_exit()
                );
            }
        }
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A field of /proc/PID/status in KiB (VmRSS, VmHWM); 0 once the process is gone.
    pub fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()));
        status
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Resident memory now, KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS")
    }

    /// Peak resident memory so far, KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM")
    }

    /// Threads of the process now (entries of /proc/PID/task).
    pub fn threads(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/task", self.pid())).map_or(0, |d| d.count())
    }

    /// Open file descriptors of the process now.
    pub fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |d| d.count())
    }

    /// CPU time (user + system) so far, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()));
        let stat = stat.unwrap_or_default();
        let after_name = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
        let fields: Vec<u64> = after_name
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        fields.get(11).unwrap_or(&0) + fields.get(12).unwrap_or(&0)
    }

    /// The exit status if the process has ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Send a signal by name ("INT", "TERM") with kill(1).
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -{name} {} failed", self.pid());
    }

    /// Wait up to `limit` for the process to end.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the process has written to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything it wrote to stderr, once it has ended (kill it first if need be).
    pub fn stderr_at_exit(&mut self) -> String {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.stderr_so_far()
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
