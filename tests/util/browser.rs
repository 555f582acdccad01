//! Drive headless Chromium through the DevTools protocol over a pipe
//! (`--remote-debugging-pipe`: JSON messages ended by NUL, commands on the browser's
//! fd 3, answers on its fd 4). No websocket and no driver binary: bash wires the fds.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Where Chromium is: $LOOPLAB_CHROMIUM, or the first of the usual names on PATH.
pub fn find_chromium() -> Option<String> {
    if let Ok(p) = std::env::var("LOOPLAB_CHROMIUM") {
        return Some(p);
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()?;
            found
                .status
                .success()
                .then(|| String::from_utf8_lossy(&found.stdout).trim().to_string())
        })
}

pub struct Browser {
    child: Child,
    commands: ChildStdin,
    answers: mpsc::Receiver<Value>,
    next_id: u64,
    profile: std::path::PathBuf,
}

impl Browser {
    pub fn start(chromium: &str) -> Browser {
        // One profile per browser: two Chromiums on one profile directory refuse each other.
        static STARTED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let profile =
            std::env::temp_dir().join(format!("looplab-chromium-{}-{n}", std::process::id()));
        // The flags the machine notes call for: no sandbox as root, and no background
        // networking (the sandbox's network is closed).
        let script = format!(
            "exec 3<&0 4>&1 0</dev/null 1>/dev/null 2>/dev/null; exec '{chromium}' --headless --no-sandbox --disable-gpu \
             --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync \
             --user-data-dir='{}' --remote-debugging-pipe about:blank",
            profile.display()
        );
        let mut child = Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting chromium");
        let commands = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let mut msg = Vec::new();
            while reader
                .read_until(0, &mut msg)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                msg.pop();
                if let Ok(v) = serde_json::from_slice::<Value>(&msg) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
                msg.clear();
            }
        });
        Browser {
            child,
            commands,
            answers,
            next_id: 0,
            profile,
        }
    }

    /// Send a command (to a page when `session` is given) and wait for its answer.
    pub fn call(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next_id += 1;
        let mut msg = json!({ "id": self.next_id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(0);
        self.commands
            .write_all(&bytes)
            .expect("writing to chromium");
        loop {
            let answer = self
                .answers
                .recv_timeout(Duration::from_secs(20))
                .expect("chromium answers within 20 s");
            if answer["id"] == self.next_id {
                assert!(answer.get("error").is_none(), "{method} failed: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// Open `url` in a new tab; returns the session to talk to it.
    pub fn open(&mut self, url: &str) -> String {
        let target = self.call("Target.createTarget", json!({ "url": url }), None);
        let attached = self.call(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
            None,
        );
        attached["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string()
    }

    /// Save a PNG of the page as `name` under the tests' tmp dir (target/tmp), for a person
    /// to look at; returns its path.
    pub fn screenshot(&mut self, session: &str, name: &str) -> std::path::PathBuf {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({ "format": "png" }),
            Some(session),
        );
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        std::fs::write(&path, png).expect("writing the screenshot");
        path
    }

    /// Evaluate a JavaScript expression in the page; `Null` while it throws (not loaded yet).
    pub fn eval(&mut self, session: &str, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true }),
            Some(session),
        );
        r["result"].get("value").cloned().unwrap_or(Value::Null)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Standard base64 (the screenshot's encoding), padding allowed.
fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        acc = (acc << 6) | u32::from(value(c).expect("base64"));
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
