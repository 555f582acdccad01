//! The `/loop` page in headless Chromium, while client threads load the echo server it
//! watches: the page long-polls one window a second and redraws; the phase bars of its
//! last ticks change from window to window (they move), the figures fill in, the "why
//! alive" table counts the clients' connections. A screenshot under load is saved as
//! `target/tmp/loop-page.png` for a person to look at. Chromium is installed by
//! `.ci/install-browser` (run by `make test`); LOOPLAB_CHROMIUM names another binary.

mod util;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use util::browser::{find_chromium, Browser};
use util::watched::{EchoLoad, ServerWithMetrics};

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_loop_page_redraws_each_window_and_its_bars_move_under_load() {
    let chromium = find_chromium().expect(
        "chromium not found: run .ci/install-browser (make test does) or set LOOPLAB_CHROMIUM",
    );
    let server = ServerWithMetrics::start(&["echo", "--addr", "127.0.0.1:0"]);
    let load = EchoLoad::start(server.addr, 2, 25, Duration::from_secs(60));
    let mut browser = Browser::start(&chromium);
    let page = browser.open(&format!("http://{}/loop", server.metrics));
    browser.call(
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": false }),
        Some(&page),
    );
    let windows = |b: &mut Browser| b.eval(&page, "window.looplab?.windows ?? 0").as_u64();
    wait_for("three windows drawn", Duration::from_secs(30), || {
        windows(&mut browser).unwrap_or(0) >= 3
    });
    let signatures = browser.eval(&page, "window.looplab.signatures");
    let signatures: Vec<&str> = signatures
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let last = &signatures[signatures.len() - 2..];
    assert!(!last[0].is_empty(), "the last ticks are drawn");
    assert_ne!(last[0], last[1], "the bars of two windows in a row differ");

    let text = |b: &mut Browser, id: &str| {
        let v = b.eval(
            &page,
            &format!("document.getElementById('{id}').textContent"),
        );
        v.as_str().unwrap_or_default().to_string()
    };
    assert!(text(&mut browser, "util").ends_with('%'));
    assert!(text(&mut browser, "status").starts_with("window "));
    let legend = browser.eval(&page, "document.querySelectorAll('#legend span').length");
    assert_eq!(legend, 8, "one legend entry per phase");
    let bars = browser.eval(
        &page,
        "document.querySelectorAll('#ticks-bars .bar').length",
    );
    assert!(bars.as_u64().unwrap_or(0) >= 1, "{bars}");
    let tcp_refd = browser.eval(
        &page,
        "[...document.querySelectorAll('#kinds tr')].find(r => r.cells[0].textContent === 'tcp')?.cells[1].textContent",
    );
    let tcp_refd: u64 = tcp_refd.as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
    assert!(tcp_refd >= 50, "the 50 clients hold the loop: {tcp_refd}");

    let path = browser.screenshot(&page, "loop-page.png");
    eprintln!("screenshot of /loop under load: {}", path.display());
    let round_trips = load.finish();
    assert!(round_trips > 0);
}
