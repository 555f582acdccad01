//! The request path against arbitrary input. Two layers, both in process:
//! - pure: `parse_head` (framing) and the routes' parameter checks (`params::poll`,
//!   `params::publish`) take any bytes and any query value without panicking, and every
//!   refusal is a status that names what was wrong;
//! - whole: arbitrary bytes and request-shaped junk sent over a real loopback socket to
//!   a real server (parser, wire and router together): every input gets a status line or
//!   a close, and the server is alive at the end.

mod longpoll_server;
mod util;

use longpoll_server::{exchange, statuses, Server};
use looplab::servers::http::{
    imf_fixdate, parse_head, seconds, whole_number, Head, Limits, Parsed, Response,
};
use looplab::servers::longpoll::params;
use looplab::Backend;
use proptest::prelude::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn parse(buf: &[u8]) -> Parsed {
    parse_head(buf, &Limits::default())
}

fn head(buf: &[u8]) -> Head {
    match parse(buf) {
        Parsed::Head(h) => h,
        other => panic!("not a head: {other:?}"),
    }
}

fn refused(buf: &[u8]) -> u16 {
    match parse(buf) {
        Parsed::Invalid(r) => r.status,
        other => panic!("accepted: {other:?}"),
    }
}

#[test]
fn a_request_split_anywhere_is_partial_until_whole() {
    let req = b"GET /poll?cursor=3&timeout=5 HTTP/1.1\r\nHost: x\r\n\r\n";
    for cut in 0..req.len() {
        assert!(
            matches!(parse(&req[..cut]), Parsed::Partial),
            "cut at {cut}"
        );
    }
    let h = head(req);
    assert_eq!((h.method.as_str(), h.path.as_str()), ("GET", "/poll"));
    assert_eq!(
        (h.param("cursor"), h.param("timeout")),
        (Ok(Some("3")), Ok(Some("5")))
    );
    assert!(h.keep_alive && h.head_len == req.len());
}

#[test]
fn two_requests_in_one_buffer_are_taken_one_at_a_time() {
    let both = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
    let first = head(both);
    assert_eq!(first.path, "/a");
    let second = head(&both[first.head_len..]);
    assert_eq!(second.path, "/b");
    assert!(!second.keep_alive, "HTTP/1.0 closes unless asked");
}

#[test]
fn limits_give_431() {
    let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(20_000));
    assert_eq!(refused(big.as_bytes()), 431);
    let many: String = (0..101).map(|i| format!("H{i}: v\r\n")).collect();
    assert_eq!(
        refused(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes()),
        431
    );
}

/// RFC 9112 §6.3: one plain Content-Length, no Transfer-Encoding, one Host on 1.1.
#[test]
fn framing_is_strict() {
    let cases: [(&str, u16); 12] = [
        ("Content-Length: 1\r\nContent-Length: 1", 400),
        ("Content-Length: 1\r\nContent-Length: 2", 400),
        ("Content-Length: 1, 1", 400),
        ("Content-Length: +1", 400),
        ("Content-Length: -1", 400),
        ("Content-Length: 1x", 400),
        ("Content-Length: 0x1", 400),
        ("Content-Length: 18446744073709551616", 400),
        ("Content-Length: ", 400),
        ("Content-Length: 1\r\nTransfer-Encoding: chunked", 400),
        ("Transfer-Encoding: chunked", 501),
        ("Transfer-Encoding: identity", 501),
    ];
    for (headers, status) in cases {
        let req = format!("POST /publish HTTP/1.1\r\nHost: x\r\n{headers}\r\n\r\n");
        assert_eq!(refused(req.as_bytes()), status, "{headers:?}");
    }
    assert_eq!(refused(b"GET / HTTP/1.1\r\n\r\n"), 400, "no Host");
    assert_eq!(
        refused(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        400
    );
    assert_eq!(refused(b"\x01\x02 / HTTP/1.1\r\n\r\n"), 400);
    assert_eq!(
        head(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\n\r\n").content_length,
        7
    );
    assert_eq!(head(b"GET / HTTP/1.0\r\n\r\n").content_length, 0);
}

#[test]
fn numbers_are_checked() {
    let max = Duration::from_secs(120);
    assert_eq!(seconds("t", "0.2", max), Ok(Duration::from_millis(200)));
    assert_eq!(seconds("t", "120", max), Ok(max));
    assert_eq!(
        seconds("t", "000000001.000000001", max),
        Ok(Duration::new(1, 1))
    );
    for bad in [
        "1e20",
        "NaN",
        "inf",
        "-1",
        "+1",
        "120.000000001",
        "1.",
        ".5",
        "",
        " 1",
        "1.2.3",
    ] {
        let err = seconds("timeout", bad, max).unwrap_err();
        assert_eq!(err.status, 400, "{bad:?}");
        let body = String::from_utf8(err.body).unwrap();
        assert_eq!(
            body,
            "timeout: must be a number of seconds between 0 and 120\n"
        );
    }
    assert_eq!(whole_number("cursor", "18446744073709551615"), Ok(u64::MAX));
    for bad in ["18446744073709551616", "-0", "+1", "1 ", "", "1e3"] {
        assert_eq!(
            whole_number("cursor", bad).unwrap_err().status,
            400,
            "{bad:?}"
        );
    }
}

#[test]
fn responses_carry_length_date_and_nosniff() {
    let r = Response::text(404, "no such path").with_header("X-Why", "test");
    let wire = String::from_utf8(r.encode(false, false)).unwrap();
    assert!(wire.starts_with("HTTP/1.1 404 Not Found\r\nDate: "));
    for line in ["Content-Length: 13", "Connection: close", "X-Why: test"] {
        assert!(wire.contains(&format!("\r\n{line}\r\n")), "{line}: {wire}");
    }
    assert!(wire.contains("\r\nX-Content-Type-Options: nosniff\r\n"));
    assert!(wire.ends_with("\r\n\r\nno such path\n"));
    let head_only = String::from_utf8(r.encode(true, true)).unwrap();
    assert!(head_only.contains("Content-Length: 13\r\n") && head_only.ends_with("\r\n\r\n"));
}

#[test]
fn dates_are_imf_fixdate() {
    let at = |secs: u64| imf_fixdate(UNIX_EPOCH + Duration::from_secs(secs));
    assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(at(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_eq!(at(4_107_542_399), "Sun, 28 Feb 2100 23:59:59 GMT");
    assert_eq!(imf_fixdate(SystemTime::now()).len(), 29);
}

/// A GET with this query and headers, if it parses (a query with bytes httparse
/// refuses in a target is the parser's case, above).
fn request_with(query: &str, headers: &str) -> Option<Head> {
    let raw = format!("GET /poll?{query} HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
    match parse(raw.as_bytes()) {
        Parsed::Head(h) => Some(h),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any bytes: a head, "need more", or a refusal with a 4xx/501 status.
    #[test]
    fn any_bytes_parse_or_are_refused(buf in proptest::collection::vec(any::<u8>(), 0..400)) {
        match parse(&buf) {
            Parsed::Partial => {}
            Parsed::Head(h) => prop_assert!(h.head_len <= buf.len()),
            Parsed::Invalid(r) => prop_assert!(matches!(r.status, 400 | 431 | 501), "{}", r.status),
        }
    }

    /// Any query string: the poll parameters, or a 400 naming `cursor` or `timeout`.
    #[test]
    fn any_query_gives_params_or_a_400_naming_the_field(query in "[a-z0-9=&.+%eE-]{0,40}|cursor=[!-~]{0,30}&timeout=[!-~]{0,30}") {
        let h = request_with(&query.replace(['#', '?'], ""), "");
        prop_assume!(h.is_some());
        let h = h.unwrap();
        match params::poll(&h, Duration::from_secs(25)) {
            Ok((_, timeout)) => prop_assert!(timeout <= Duration::from_secs(120)),
            Err(r) => {
                let body = String::from_utf8_lossy(&r.body).into_owned();
                prop_assert_eq!(r.status, 400);
                prop_assert!(body.starts_with("cursor: ") || body.starts_with("timeout: "), "{}", body);
            }
        }
    }

    /// A timeout is taken exactly when it is plain decimal seconds within 0..=120.
    #[test]
    fn timeouts_are_plain_seconds_or_refused(v in "[0-9.eE+-]{0,12}|(NaN|inf|-inf|1e20|0x10)") {
        let plain = v.split('.').count() <= 2
            && !v.starts_with('.') && !v.ends_with('.')
            && v.split('.').all(|p| p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit()))
            && !v.is_empty();
        let within = plain && v.parse::<f64>().is_ok_and(|f| f <= 120.0);
        prop_assert_eq!(seconds("timeout", &v, Duration::from_secs(120)).is_ok(), within, "{}", v);
    }

    /// Any publish body and content type: a message, or 400/413/415; never a panic.
    #[test]
    fn any_publish_is_taken_or_refused(
        body in proptest::collection::vec(any::<u8>(), 0..200),
        json_body in r#"\{"text":"[^"\\]{0,20}"(,"after":-?[0-9]{0,22}(\.[0-9])?)?\}"#,
        ctype in "(application/json|text/plain|application/json; charset=utf-8|)",
        pick in any::<bool>(),
    ) {
        let body = if pick { json_body.into_bytes() } else { body };
        let h = request_with("", &format!("Content-Type: {ctype}\r\n")).unwrap();
        if let Err(r) = params::publish(&h, &body, 4096) {
            prop_assert!(matches!(r.status, 400 | 413 | 415), "{}", r.status);
        }
    }
}

/// Request-shaped input: a method, a path, a query and headers picked from what the
/// server cares about, values arbitrary, and a body.
fn request_like() -> impl Strategy<Value = Vec<u8>> {
    let method = "(GET|HEAD|POST|PUT|BREW|[A-Z]{0,6})";
    let path = "(/|/poll|/publish|/stats|/nope|[ -~]{0,10})";
    let query = "[ -~]{0,30}";
    let name =
        "(Host|Content-Length|Transfer-Encoding|Content-Type|Connection|Expect|X-[a-z]{1,5})";
    let header = (name, "[ -~]{0,24}").prop_map(|(n, v)| format!("{n}: {v}\r\n"));
    let headers = proptest::collection::vec(header, 0..6).prop_map(|h| h.concat());
    let body = proptest::collection::vec(any::<u8>(), 0..80);
    (method, path, query, headers, body).prop_map(|(m, p, q, h, b)| {
        let mut raw = format!("{m} {p}?{q} HTTP/1.1\r\n{h}\r\n").into_bytes();
        raw.extend_from_slice(&b);
        raw
    })
}

/// The whole request path over a real socket: every input is answered with a status
/// or the connection is closed (partial heads get their 408 within the header timeout;
/// a poll that would be held gets 503, as no waiter is allowed), and the server lives.
#[test]
fn any_input_over_a_socket_gets_a_status_or_a_close() {
    let server = Server::start(Backend::default_for_os(), |c| {
        c.header_timeout = Duration::from_millis(200);
        c.max_waiters = 0;
        c.publish_rate = 1000.0;
    });
    let input = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        request_like()
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
    let result = runner.run(&input, |raw| {
        let (bytes, closed) = exchange(server.addr, &raw, Duration::from_secs(3));
        let answered = !statuses(&bytes).is_empty();
        prop_assert!(
            answered || closed,
            "no status and no close for {:?}",
            String::from_utf8_lossy(&raw)
        );
        prop_assert!(
            server.alive(),
            "the server died on {:?}",
            String::from_utf8_lossy(&raw)
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert_eq!(server.stats()["waiters"], 0);
    server.stop();
}
