//! The chat page in a real browser: headless Chromium loads it from `looplab longpoll`,
//! a message is published with a plain HTTP client, and the page's DOM shows it
//! (delivered by the page's own long poll). Chromium is installed by `.ci/install-browser`
//! (run by `make test` and `.ci/run`); set LOOPLAB_CHROMIUM to use another binary.

mod util;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use util::browser::{find_chromium, Browser};
use util::http::{get, post};

struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A long-poll server child, its address and its URL.
fn start_server() -> (ServerProcess, SocketAddr, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_looplab"))
        .args(["longpoll", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let server = ServerProcess(child);
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .expect("the first line names the URL")
        .to_string();
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    (server, addr, url)
}

fn chromium() -> String {
    find_chromium().expect(
        "chromium not found: run .ci/install-browser (make test does) or set LOOPLAB_CHROMIUM",
    )
}

/// The page shows a published message as text, and says it is connected as soon as its
/// first poll is out (not only once the server answers it, up to 25 s later).
#[test]
fn the_chat_page_shows_a_published_message() {
    let (_server, addr, url) = start_server();
    let mut browser = Browser::start(&chromium());
    let page = browser.open(&url);
    // The page is polling when the server holds its request.
    wait_until("the page's long poll", || {
        get(addr, "/stats").json()["waiters"] == 1
    });
    let status = browser.eval(&page, "document.getElementById('status').textContent");
    assert_eq!(
        status, "connected; waiting for messages",
        "the poll is held: the page is connected although nothing was answered yet"
    );

    let text = "hello from a plain HTTP client <b>not bold</b>";
    let body = serde_json::json!({ "text": text }).to_string();
    assert_eq!(post(addr, "/publish", &body).status, 201);
    let mut shown = serde_json::Value::Null;
    wait_until("the message in the DOM", || {
        shown = browser.eval(
            &page,
            "document.querySelector('#msg-1 .text')?.textContent ?? null",
        );
        !shown.is_null()
    });
    assert_eq!(shown, text, "shown as text, never as markup");
    let bold = browser.eval(&page, "document.querySelectorAll('#log b').length");
    assert_eq!(bold, 0);
    // The page went straight back to polling.
    wait_until("the next poll", || {
        get(addr, "/stats").json()["waiters"] == 1
    });
}

/// Two tabs poll at once: the server holds both polls (without `cache: "no-store"`,
/// Chromium's cache lock let only one identical request out at a time, and the second tab
/// waited for the first poll's 25 s timeout), and one publish reaches both pages.
#[test]
fn two_tabs_hold_two_polls_and_both_receive_one_publish() {
    let (_server, addr, url) = start_server();
    let mut browser = Browser::start(&chromium());
    let first = browser.open(&url);
    let second = browser.open(&url);
    wait_until("both pages' long polls held at the server", || {
        get(addr, "/stats").json()["waiters"] == 2
    });
    let body = serde_json::json!({ "text": "to both tabs" }).to_string();
    let published = Instant::now();
    assert_eq!(post(addr, "/publish", &body).status, 201);
    for page in [&first, &second] {
        wait_until("the message in each tab", || {
            browser.eval(
                page,
                "document.querySelector('#msg-1 .text')?.textContent ?? null",
            ) == "to both tabs"
        });
    }
    // Informative only (a loaded CI machine is slow); the assertion is the two held polls.
    eprintln!(
        "both tabs showed the message {:?} after the publish",
        published.elapsed()
    );
    for (page, name) in [(&first, "chat-tab-1.png"), (&second, "chat-tab-2.png")] {
        let path = browser.screenshot(page, name);
        eprintln!("screenshot: {}", path.display());
    }
}
