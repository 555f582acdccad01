//! Just enough HTTP/1.1 for the long-poll server, parsed incrementally with `httparse`.
//!
//! A connection's bytes accumulate in a buffer; after every read we ask whether a whole
//! request head is there yet (`parse_head`). A request split over many reads is simply
//! `Partial` until it is complete; several requests in one read are taken one at a time,
//! each consuming its own bytes. Every size has a limit, checked before anything grows.

use std::fmt::Write as _;

/// The limits on one request.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The header section (request line and headers), bytes: over it, 431.
    pub max_header_bytes: usize,
    /// Header lines: over it, 431.
    pub max_headers: usize,
    /// Body bytes: over it, 413.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            max_body: 64 * 1024,
        }
    }
}

/// A parsed request line and headers.
#[derive(Clone, Debug)]
pub struct Head {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// The query string, without the `?`.
    pub query: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version: u8,
    /// Header names (lowercased) and values.
    pub headers: Vec<(String, String)>,
    /// The body length from Content-Length (0 without one).
    pub content_length: usize,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue` and waits before sending its body.
    pub expect_continue: bool,
    /// Bytes the head took in the buffer.
    pub head_len: usize,
}

impl Head {
    /// A header's value by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter's raw value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// What a buffer holds so far.
#[derive(Debug)]
pub enum Parsed {
    /// Not a whole head yet (and not over the limit): read more.
    Partial,
    /// A whole head; the body (if any) follows it in the buffer.
    Head(Head),
    /// Not acceptable: answer this and close the connection.
    Invalid(Response),
}

/// Look for a complete request head at the start of `buf`.
pub fn parse_head(buf: &[u8], limits: &Limits) -> Parsed {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_header_bytes => {
            return Parsed::Invalid(too_large_head(limits));
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Invalid(Response::text(
                431,
                &format!("more than {} headers", limits.max_headers),
            ));
        }
        Err(e) => return Parsed::Invalid(Response::text(400, &format!("malformed request: {e}"))),
    };
    if head_len > limits.max_header_bytes {
        return Parsed::Invalid(too_large_head(limits));
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let version = req.version.unwrap_or(1);
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).trim().to_string(),
            )
        })
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    if find("transfer-encoding").is_some() {
        return Parsed::Invalid(Response::text(
            501,
            "chunked request bodies are not supported; send Content-Length",
        ));
    }
    let content_length = match find("content-length").map(|v| v.parse::<usize>()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return Parsed::Invalid(Response::text(400, "Content-Length is not a number"))
        }
    };
    let connection = find("connection").unwrap_or_default();
    let keep_alive = if version == 0 {
        connection.contains("keep-alive")
    } else {
        !connection.contains("close")
    };
    let expect_continue = find("expect").is_some_and(|v| v == "100-continue");
    Parsed::Head(Head {
        method: req.method.unwrap_or("").to_string(),
        path: path.to_string(),
        query: query.to_string(),
        version,
        headers,
        content_length,
        keep_alive,
        expect_continue,
        head_len,
    })
}

fn too_large_head(limits: &Limits) -> Response {
    Response::text(
        431,
        &format!(
            "request header section over {} bytes",
            limits.max_header_bytes
        ),
    )
}

/// An HTTP response, written by `encode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Extra headers (Content-Type, Content-Length and Connection are added by `encode`).
    pub headers: Vec<(String, String)>,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response {
            status,
            headers: Vec::new(),
            content_type: "application/json",
            body: value.to_string().into_bytes(),
        }
    }

    /// A plain-text response (errors say what was wrong).
    pub fn text(status: u16, text: &str) -> Response {
        Response {
            status,
            headers: Vec::new(),
            content_type: "text/plain; charset=utf-8",
            body: format!("{text}\n").into_bytes(),
        }
    }

    /// An HTML page.
    pub fn html(body: &'static str) -> Response {
        Response {
            status: 200,
            headers: Vec::new(),
            content_type: "text/html; charset=utf-8",
            body: body.as_bytes().to_vec(),
        }
    }

    /// Add a header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The bytes on the wire.
    pub fn encode(&self, keep_alive: bool) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        let _ = write!(
            head,
            "Content-Type: {}\r\nContent-Length: {}\r\n",
            self.content_type,
            self.body.len()
        );
        let _ = write!(
            head,
            "Cache-Control: no-store\r\nConnection: {}\r\n",
            if keep_alive { "keep-alive" } else { "close" }
        );
        for (n, v) in &self.headers {
            let _ = write!(head, "{n}: {v}\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// The reason phrase of the codes this server sends.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(buf: &[u8]) -> Head {
        match parse_head(buf, &Limits::default()) {
            Parsed::Head(h) => h,
            other => panic!("not a head: {other:?}"),
        }
    }

    #[test]
    fn a_request_split_anywhere_is_partial_until_whole() {
        let req = b"GET /poll?cursor=3&timeout=5 HTTP/1.1\r\nHost: x\r\n\r\n";
        for cut in 0..req.len() {
            assert!(
                matches!(parse_head(&req[..cut], &Limits::default()), Parsed::Partial),
                "cut at {cut}"
            );
        }
        let h = head(req);
        assert_eq!(
            (
                h.method.as_str(),
                h.path.as_str(),
                h.param("cursor"),
                h.param("timeout")
            ),
            ("GET", "/poll", Some("3"), Some("5"))
        );
        assert!(h.keep_alive && h.head_len == req.len());
    }

    #[test]
    fn two_requests_in_one_buffer_are_taken_one_at_a_time() {
        let both = b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
        let first = head(both);
        assert_eq!(first.path, "/a");
        let second = head(&both[first.head_len..]);
        assert_eq!(second.path, "/b");
        assert!(!second.keep_alive, "HTTP/1.0 closes unless asked");
    }

    #[test]
    fn limits_give_431_and_bad_input_400() {
        let limits = Limits::default();
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(20_000));
        assert!(
            matches!(parse_head(big.as_bytes(), &limits), Parsed::Invalid(r) if r.status == 431)
        );
        let many: String = (0..101).map(|i| format!("H{i}: v\r\n")).collect();
        let req = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert!(
            matches!(parse_head(req.as_bytes(), &limits), Parsed::Invalid(r) if r.status == 431)
        );
        assert!(
            matches!(parse_head(b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", &limits), Parsed::Invalid(r) if r.status == 400)
        );
        assert!(
            matches!(parse_head(b"\x01\x02 / HTTP/1.1\r\n\r\n", &limits), Parsed::Invalid(r) if r.status == 400)
        );
    }

    #[test]
    fn responses_carry_length_and_connection() {
        let r = Response::text(404, "no such path").with_header("X-Why", "test");
        let wire = String::from_utf8(r.encode(false)).unwrap();
        assert!(wire.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(
            wire.contains("Content-Length: 13\r\n")
                && wire.contains("Connection: close\r\n")
                && wire.contains("X-Why: test\r\n")
        );
        assert!(wire.ends_with("\r\n\r\nno such path\n"));
    }
}
