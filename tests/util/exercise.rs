//! Running the book's programs as a learner runs them: the examples, the exercise
//! variants and the `looplab` binary, as child processes, each with a deadline.
//!
//! A `Run` collects stdout and stderr line by line as they come (so a test can wait for
//! "listening on ..." and then act), kills its process when dropped (a failed assertion
//! never leaves a server behind), and never waits longer than the deadline it is given.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Which stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
}

/// The examples and exercises, built once per test binary (cheap when `make test` has
/// already built them: cargo only checks they are fresh). Returns the examples directory.
fn examples_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build
            .args(["build", "--examples", "--quiet"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let out = build.output().expect("running cargo build --examples");
        assert!(
            out.status.success(),
            "cargo build --examples failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // This test runs from target/<profile>/deps; the examples sit beside deps.
        let exe = std::env::current_exe().expect("the test's own path");
        let profile_dir = exe
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>/deps");
        profile_dir.join("examples")
    })
}

/// The path of example (or exercise) `name`, built.
pub fn example(name: &str) -> PathBuf {
    let path = examples_dir().join(name);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// The `looplab` command line.
pub fn looplab() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_looplab"))
}

/// A running program and everything it has printed so far.
pub struct Run {
    pub name: String,
    child: Child,
    lines: Receiver<(Stream, String)>,
    /// Every line seen so far, in arrival order per stream.
    pub out: Vec<String>,
    pub err: Vec<String>,
    status: Option<ExitStatus>,
}

/// Start `program` with `args`; `env` is added to a clean trace setting (the trace is
/// off unless a test asks for it).
pub fn start(program: PathBuf, args: &[&str], env: &[(&str, &str)]) -> Run {
    let name = program
        .file_name()
        .map_or("?".into(), |n| n.to_string_lossy().into_owned());
    let mut cmd = Command::new(&program);
    cmd.args(args)
        .env_remove("LOOPLAB_TRACE")
        .env_remove("LOOPLAB_THREADPOOL_SIZE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
    let (tx, lines) = channel();
    let out = child.stdout.take().expect("piped stdout");
    let err = child.stderr.take().expect("piped stderr");
    for (stream, pipe) in [
        (Stream::Out, Box::new(out) as Box<dyn std::io::Read + Send>),
        (Stream::Err, Box::new(err)),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send((stream, line)).is_err() {
                    return;
                }
            }
        });
    }
    Run {
        name,
        child,
        lines,
        out: Vec::new(),
        err: Vec::new(),
        status: None,
    }
}

/// An example or exercise by name.
pub fn run_example(name: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    start(example(name), args, env)
}

impl Run {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn take(&mut self, (stream, line): (Stream, String)) -> String {
        match stream {
            Stream::Out => self.out.push(line.clone()),
            Stream::Err => self.err.push(line.clone()),
        }
        line
    }

    /// Wait until a line on either stream satisfies `want`; return it. Panics, with
    /// everything printed so far, if none does within `within`.
    pub fn wait_for(
        &mut self,
        what: &str,
        within: Duration,
        want: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(item) => {
                    let line = self.take(item);
                    if want(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{}: no {what} within {within:?}\n{}",
                        self.name,
                        self.transcript()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("{}: ended before {what}\n{}", self.name, self.transcript())
                }
            }
        }
    }

    /// Wait until `cond` holds of everything seen so far (both streams, as stored).
    pub fn wait_until(&mut self, what: &str, within: Duration, cond: impl Fn(&Run) -> bool) {
        let deadline = Instant::now() + within;
        while !cond(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(item) => {
                    self.take(item);
                }
                Err(_) => panic!(
                    "{}: no {what} within {within:?}\n{}",
                    self.name,
                    self.transcript()
                ),
            }
        }
    }

    /// Like `wait_for`, but a line already seen counts too: stdout and stderr are read by
    /// two threads, so a line printed after another may arrive before it.
    pub fn seen_or_wait_for(
        &mut self,
        what: &str,
        within: Duration,
        want: impl Fn(&str) -> bool,
    ) -> String {
        if let Some(line) = self.out.iter().chain(&self.err).find(|l| want(l)) {
            return line.clone();
        }
        self.wait_for(what, within, want)
    }

    /// The address from the first `listening on ADDR` line (`http://` and `/` trimmed).
    pub fn listening_on(&mut self) -> std::net::SocketAddr {
        let line = self.wait_for("'listening on'", Duration::from_secs(20), |l| {
            l.starts_with("listening on ")
        });
        let addr = line["listening on ".len()..]
            .trim()
            .trim_start_matches("http://")
            .trim_end_matches('/');
        addr.parse()
            .unwrap_or_else(|e| panic!("{}: {line:?} names no address: {e}", self.name))
    }

    /// Wait for the process to end by itself within `within` (panics otherwise, after
    /// killing it), with all its output read.
    pub fn finish(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for a child") {
                self.status = Some(status);
                break;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.drain_for(Duration::from_millis(200));
                panic!(
                    "{}: still running after {within:?}\n{}",
                    self.name,
                    self.transcript()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.drain_for(Duration::from_secs(5));
        self.status.expect("set above")
    }

    /// Read what is left, until both pipes close or `limit` passes.
    fn drain_for(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(item) => {
                    self.take(item);
                }
                Err(_) => return,
            }
        }
    }

    /// Take whatever has arrived by now, without waiting.
    pub fn poll_lines(&mut self) {
        while let Ok(item) = self.lines.try_recv() {
            self.take(item);
        }
    }

    /// Deliver `signal` (e.g. "INT", "TERM") with kill(1), as a learner would.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// True while the process has not exited.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stop it now (SIGKILL) and read what it printed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        if let Ok(status) = self.child.wait() {
            self.status = Some(status);
        }
        self.drain_for(Duration::from_secs(2));
    }

    pub fn stdout(&self) -> String {
        self.out.join("\n")
    }

    pub fn stderr(&self) -> String {
        self.err.join("\n")
    }

    /// Both streams, for a failure message.
    pub fn transcript(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout(),
            self.stderr()
        )
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A program run to its end: start, wait up to `within`, return it for inspection.
pub fn run_to_end(name: &str, args: &[&str], env: &[(&str, &str)], within: Duration) -> Run {
    let mut run = run_example(name, args, env);
    let status = run.finish(within);
    assert!(
        status.success(),
        "{name} {args:?} failed ({status})\n{}",
        run.transcript()
    );
    run
}

/// A line's shape without its figures: every run of digits (with its decimal point)
/// becomes `N`, so "tick 3 | poll waited 8.1ms" and "tick 5 | poll waited 12.0ms"
/// compare equal. Trace times, tick numbers and fds vary from run to run; the words,
/// the rules and the order do not.
pub fn shape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|d| d.is_ascii_digit() || *d == '.')
            {
                chars.next();
            }
            out.push('N');
        } else {
            out.push(c);
        }
    }
    // A list of handles is one handle's worth of shape: on a busy machine a late poll can
    // let two timers fall due in one tick ("timers fired #1.2 #0.1"); the lesson is the
    // line, not how many timers a scheduler's delay let through together.
    let mut out = out.trim_end().to_string();
    while out.contains("#N #N") {
        out = out.replace("#N #N", "#N");
    }
    out
}

/// Every quoted line (`want`, by shape) appears in `lines`, in the same order.
pub fn assert_lines_in_order(want: &[String], lines: &[String], context: &str) {
    let mut at = 0;
    for w in want {
        let w_shape = shape(w);
        match lines[at..].iter().position(|l| shape(l).contains(&w_shape)) {
            Some(i) => at += i + 1,
            None => panic!(
                "quoted line not found (in order) in the output of {context}:\n  {w}\n  shape: {w_shape}\n--- output ---\n{}",
                lines.join("\n")
            ),
        }
    }
}

/// `text` (a quoted fragment) appears, by shape, in some line of `lines`.
pub fn assert_quoted(text: &str, lines: &[String], context: &str) {
    let s = shape(text);
    assert!(
        lines.iter().any(|l| shape(l).contains(&s)),
        "quoted text not in the output of {context}:\n  {text}\n  shape: {s}\n--- output ---\n{}",
        lines.join("\n")
    );
}

/// A file of the repository, as text.
pub fn read(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// The lines of each fenced block of `lang` (```text, ```sh) in `doc`, in order.
pub fn blocks(doc: &str, lang: &str) -> Vec<Vec<String>> {
    let fence = format!("```{lang}");
    let mut out = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in doc.lines() {
        let trimmed = line.trim();
        match current.as_mut() {
            None if trimmed == fence => current = Some(Vec::new()),
            None => {}
            Some(_) if trimmed == "```" => out.extend(current.take()),
            Some(lines) => lines.push(trimmed.to_string()),
        }
    }
    out
}

/// The trace lines (`[looplab ...`) of the first ```text block of `doc` that has any
/// and contains `marker`.
pub fn quoted_trace(doc: &str, marker: &str) -> Vec<String> {
    blocks(doc, "text")
        .into_iter()
        .find(|b| b.iter().any(|l| l.contains(marker)))
        .unwrap_or_else(|| panic!("no ```text block containing {marker:?}"))
        .into_iter()
        .filter(|l| l.starts_with("[looplab"))
        .collect()
}

/// `fragment` is quoted, verbatim, in `file`: the test and the text it checks move
/// together (if one is edited, the other fails).
pub fn says(file: &str, fragment: &str) {
    // In a source file, the text is in `//!` comments, which wrap.
    let text: String = read(file)
        .lines()
        .map(|l| {
            let l = l.trim_start();
            l.strip_prefix("//!")
                .or_else(|| l.strip_prefix("//"))
                .unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join(" ");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let want = fragment.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(text.contains(&want), "{file} no longer says: {fragment}");
}

/// The first number in `line` after `after`: "in 2249 ms" -> 2249.0.
pub fn number_after(line: &str, after: &str) -> f64 {
    let rest = line
        .split_once(after)
        .unwrap_or_else(|| panic!("{after:?} not in {line:?}"))
        .1;
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no number after {after:?} in {line:?}"))
}

/// Any program run to its end, successfully, within `within`.
pub fn run_to_end_of(program: PathBuf, args: &[&str], within: Duration) -> Run {
    let mut run = start(program, args, &[]);
    let status = run.finish(within);
    assert!(
        status.success(),
        "{} {args:?} failed ({status})\n{}",
        run.name,
        run.transcript()
    );
    run
}
