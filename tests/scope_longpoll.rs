//! The long-poll server under scopes (src/servers/longpoll/conn/scopes.rs): each held
//! poll is a request scope, under the server's.

mod util;

use looplab::RunMode;
use std::time::Duration;
use util::trace::traced_loop;
use util::{fail_after, on_every_backend};

/// The long-poll server holds each poll under a request scope whose deadline is the
/// poll timeout, under the server's scope: the trace names the poll's deadline when it
/// answers by timeout, and after shutdown no scope and no handle is left.
#[test]
fn the_long_poll_server_holds_each_poll_under_a_scope() {
    use looplab::servers::longpoll::{LongPoll, LongPollConfig};
    use std::io::{Read, Write};
    on_every_backend(|backend| {
        let (mut lp, buf) = traced_loop(backend);
        let cfg = LongPollConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            ..LongPollConfig::default()
        };
        let server = LongPoll::listen(&mut lp, cfg).unwrap();
        let addr = server.local_addr(&lp).unwrap();
        let client = std::thread::spawn(move || {
            let mut c = util::connect(addr);
            c.write_all(
                b"GET /poll?cursor=0&timeout=0.2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
            let mut answer = String::new();
            let _ = c.read_to_string(&mut answer);
            answer
        });
        let s = server.clone();
        let (h, stop) = lp.async_handle(move |lp, me| {
            s.shutdown(lp);
            lp.close(me);
        });
        lp.unref_handle(h);
        let waiter = std::thread::spawn(move || {
            let answer = client.join().unwrap();
            stop.send();
            answer
        });
        fail_after(&mut lp, Duration::from_secs(10));
        lp.run(RunMode::Default).unwrap();
        let answer = waiter.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_eq!(server.stats().chat.answered_by_timeout, 1);
        let text = buf.text();
        // Chapter 15 quotes this line (tests/scope_docs.rs checks that it still does).
        let poll = text
            .lines()
            .find(|l| l.contains(": deadline 200 ms exceeded: 0 callback(s) owed"));
        let poll = poll.unwrap_or_else(|| panic!("no poll deadline in:\n{text}"));
        assert!(poll.contains(" canceled after "), "{poll}");
        assert_eq!(
            lp.scopes_open(),
            0,
            "the poll's and the server's scopes ended"
        );
        assert!(
            lp.handles().iter().all(|i| !i.has_ref),
            "{:?}",
            lp.handles()
        );
    });
}
