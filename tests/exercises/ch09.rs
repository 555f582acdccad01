//! Chapter 9: concurrency without threads. Tickets on a fresh long-poll server, coalesced
//! async sends, and the look-up that keeps a cleared timer from firing.

use crate::exercise::{looplab, number_after, read, run_to_end, says, start};
use crate::http;
use looplab::{Loop, RunMode};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

const CH: &str = "docs/09-concurrency-without-threads.md";

/// "See it" and Try 1, on a fresh server of their own (port 0 here; the chapter gives
/// each its own port): the first "after 0" wins, the second gets 409 naming the latest,
/// catching up shows message 1, and "after 1" then wins.
#[test]
fn tickets_on_a_fresh_server() {
    says(CH, "cargo run -- longpoll --addr 127.0.0.1:8081 &");
    says(
        CH,
        "Start a fresh server (`cargo run -- longpoll --addr 127.0.0.1:8082`)",
    );
    let mut server = start(looplab(), &["longpoll", "--addr", "127.0.0.1:0"], &[]);
    let addr = server.listening_on();
    let publish = |text: &str, after: u64| {
        http::post(
            addr,
            "/publish",
            &format!(r#"{{"text":"{text}","after":{after}}}"#),
        )
    };
    let first = publish("first reply to nothing", 0);
    assert_eq!(
        (first.status, first.text()),
        (201, r#"{"id":1}"#.to_string())
    );
    let second = publish("also a reply to nothing", 0);
    assert_eq!(
        (second.status, second.json()["latest"].as_u64()),
        (409, Some(1))
    );
    let caught_up = http::get(addr, "/poll?cursor=0").json();
    assert_eq!(
        caught_up["messages"][0]["id"].as_u64(),
        Some(1),
        "{caught_up}"
    );
    let third = publish("a reply to 1", 1);
    assert_eq!(
        (third.status, third.text()),
        (201, r#"{"id":2}"#.to_string())
    );
    for comment in [
        "# {\"id\":1}",
        "# {\"latest\":1}, status 409",
        "# {\"id\":2}",
    ] {
        says(CH, comment);
    }

    // Try 1: two clients at once, both "after 0", on another fresh server.
    server.signal("INT");
    assert!(server.finish(Duration::from_secs(10)).success());
    let mut server = start(looplab(), &["longpoll", "--addr", "127.0.0.1:0"], &[]);
    let addr = server.listening_on();
    let racers: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || http::post(addr, "/publish", r#"{"text":"x","after":0}"#))
        })
        .collect();
    let mut answers: Vec<(u16, String)> = racers
        .into_iter()
        .map(|t| t.join().unwrap())
        .map(|r| (r.status, r.text()))
        .collect();
    answers.sort();
    assert_eq!(
        answers,
        [
            (201, r#"{"id":1}"#.to_string()),
            (409, r#"{"latest":1}"#.to_string())
        ]
    );
    says(
        CH,
        "Exactly one gets `{\"id\":1} 201`; the other gets `{\"latest\":1} 409`",
    );
    server.signal("INT");
    assert!(server.finish(Duration::from_secs(10)).success());
}

/// Try 2: far fewer callbacks than sends, and the last one sees every item.
#[test]
fn try_2_async_sends_coalesce_and_the_state_is_whole() {
    let run = run_to_end("03_async_wakeup", &[], &[], Duration::from_secs(30));
    let last = run.out.last().unwrap();
    assert!(last.starts_with("1000 sends -> "), "{last}");
    let callbacks = number_after(last, "1000 sends ->");
    assert!((1.0..1000.0).contains(&callbacks), "{last}");
    assert!(run
        .out
        .iter()
        .any(|l| l == "loop thread: woken, 1000 items produced so far"));
    says(CH, "`1000 sends -> 11 callbacks`");
}

/// Try 3: the hint names the code that does it, and it does it: of two timers due in one
/// batch, the first clears the second, and the second never runs.
#[test]
fn try_3_a_timer_cleared_earlier_in_its_batch_does_not_fire() {
    let timers = read("src/event_loop/timers.rs");
    let fire = &timers[timers.find("fn fire_timer").expect("fire_timer")..];
    let lookup = fire
        .find("self.handles.get(h)")
        .expect("fire_timer looks the handle up");
    let call = fire.find("cb(self").expect("and then calls");
    assert!(lookup < call);
    says(
        CH,
        "what does `fire_timer` look up before it calls anything?",
    );

    let mut lp = Loop::new().unwrap();
    let ran: Rc<RefCell<Vec<&str>>> = Rc::default();
    let second_slot: Rc<RefCell<Option<looplab::Timer>>> = Rc::default();
    let (r, s) = (ran.clone(), second_slot.clone());
    lp.set_timeout(Duration::from_millis(5), move |lp, _| {
        r.borrow_mut().push("first");
        if let Some(t) = s.borrow_mut().take() {
            assert!(lp.clear_timer(t), "the second is armed until now");
        }
    });
    let r = ran.clone();
    let second = lp.set_timeout(Duration::from_millis(5), move |_, _| {
        r.borrow_mut().push("second")
    });
    *second_slot.borrow_mut() = Some(second);
    // Both are due in one batch: the loop wakes after both deadlines.
    std::thread::sleep(Duration::from_millis(10));
    lp.run(RunMode::Default).unwrap();
    assert_eq!(*ran.borrow(), ["first"]);
}
