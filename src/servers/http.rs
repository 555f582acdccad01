//! Just enough HTTP/1.1 for the long-poll server, parsed incrementally with `httparse`,
//! framed strictly, as RFC 9112 §6.3 asks of a server that must not be smuggled past.
//!
//! A connection's bytes accumulate in a buffer; after every read we ask whether a whole
//! request head is there yet (`parse_head`). A request split over many reads is simply
//! `Partial` until it is complete; several requests in one read are taken one at a time,
//! each consuming its own bytes. Every size has a limit, checked before anything grows.
//!
//! **Framing is where requests get smuggled.** Where one request ends and the next begins
//! is decided by `Content-Length` alone (this server implements no transfer coding). A
//! proxy in front and this server must agree on that boundary, so anything two readers
//! could read two ways is refused, and the connection closed, since after it nobody
//! knows where the next request starts: two `Content-Length` headers (even equal ones), a
//! value that is not plain digits (`+15`, `15x`, `-1`, a number past u64), any
//! `Transfer-Encoding` (with `Content-Length`: 400; alone: 501). HTTP/1.1 without exactly
//! one `Host` is a 400 too.

use std::fmt::Write as _;
use std::time::Duration;

mod date;

pub use date::imf_fixdate;
use date::push_date;

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
    /// A header's value by lowercase name (the first, if repeated).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter's raw value; a 400 naming it if it is given twice (two readers
    /// of `cursor=1&cursor=2` could each take a different one).
    pub fn param(&self, name: &str) -> Result<Option<&str>, Response> {
        let mut values = self
            .query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            return Err(bad_field(name, "given more than once"));
        }
        Ok(first)
    }
}

/// A 400 whose body names the field and what it must be.
pub fn bad_field(field: &str, must: &str) -> Response {
    Response::text(400, &format!("{field}: {must}"))
}

/// A whole number of at most u64::MAX: ASCII digits only (no sign, no spaces, no
/// exponent), parsed with overflow checked.
pub fn whole_number(field: &str, value: &str) -> Result<u64, Response> {
    let err = || {
        bad_field(
            field,
            &format!("must be a whole number from 0 to {}", u64::MAX),
        )
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    value.parse::<u64>().map_err(|_| err())
}

/// Seconds from 0 to `max` with up to 9 decimals (`"25"`, `"0.2"`), read as digits into
/// a `Duration`: no float, so no NaN, no infinity, no `1e20`, nothing to overflow.
pub fn seconds(field: &str, value: &str, max: Duration) -> Result<Duration, Response> {
    let err = || {
        let must = format!(
            "must be a number of seconds between 0 and {}",
            max.as_secs()
        );
        bad_field(field, &must)
    };
    let (whole, frac) = match value.split_once('.') {
        Some((w, f)) if !f.is_empty() => (w, f),
        Some(_) => return Err(err()),
        None => (value, ""),
    };
    // At most 9 digits each: the whole part cannot overflow u64, the fraction is nanos.
    let digits = |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !(frac.is_empty() || digits(frac)) {
        return Err(err());
    }
    let secs: u64 = whole.parse().map_err(|_| err())?;
    let nanos: u32 = format!("{frac:0<9}").parse().map_err(|_| err())?;
    let d = Duration::new(secs, nanos);
    if d > max {
        return Err(err());
    }
    Ok(d)
}

/// What a buffer holds so far.
#[derive(Debug)]
pub enum Parsed {
    /// Not a whole head yet (and not over the limit): read more.
    Partial,
    /// A whole head; the body (if any) follows it in the buffer.
    Head(Head),
    /// Not acceptable: answer this and close the connection (its framing is unknown).
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
    let version = req.version.unwrap_or(1);
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value);
            (h.name.to_ascii_lowercase(), value.trim().to_string())
        })
        .collect();
    let content_length = match framing(&headers, version) {
        Ok(n) => n,
        Err(resp) => return Parsed::Invalid(resp),
    };
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let has_token = |name: &str, token: &str| {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    let keep_alive = if version == 0 {
        has_token("connection", "keep-alive")
    } else {
        !has_token("connection", "close")
    };
    let expect_continue = content_length > 0 && has_token("expect", "100-continue");
    Parsed::Head(Head {
        method: req.method.unwrap_or("").to_string(),
        path: path.to_string(),
        query: query.to_string(),
        version,
        content_length,
        keep_alive,
        expect_continue,
        head_len,
        headers,
    })
}

/// The body length, or why the request's framing cannot be trusted (RFC 9112 §6.3).
fn framing(headers: &[(String, String)], version: u8) -> Result<usize, Response> {
    fn named<'a>(
        headers: &'a [(String, String)],
        name: &'a str,
    ) -> impl Iterator<Item = &'a (String, String)> + 'a {
        headers.iter().filter(move |(n, _)| n == name)
    }
    let named = |name: &'static str| named(headers, name);
    if version == 1 && named("host").count() != 1 {
        return Err(Response::text(
            400,
            "HTTP/1.1 needs exactly one Host header",
        ));
    }
    let lengths: Vec<&str> = named("content-length").map(|(_, v)| v.as_str()).collect();
    if named("transfer-encoding").next().is_some() {
        return Err(if lengths.is_empty() {
            Response::text(
                501,
                "Transfer-Encoding is not supported; send Content-Length",
            )
        } else {
            Response::text(400, "Content-Length together with Transfer-Encoding")
        });
    }
    match lengths.as_slice() {
        [] => Ok(0),
        [one] => {
            let n = whole_number("Content-Length", one)?;
            // Past usize it is past every limit: the 413 check refuses it.
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        }
        _ => Err(Response::text(400, "Content-Length given more than once")),
    }
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
    /// Extra headers (Content-Type, Content-Length, Connection, Date and the fixed
    /// security headers are added by `encode`).
    pub headers: Vec<(String, String)>,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON response.
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::json_text(status, value.to_string())
    }

    /// A JSON response from text that is already JSON.
    pub fn json_text(status: u16, json: String) -> Response {
        Response {
            status,
            headers: Vec::new(),
            content_type: "application/json",
            body: json.into_bytes(),
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

    /// The bytes on the wire. `head_only` answers a HEAD: the GET's headers, its
    /// Content-Length included, and no body.
    pub fn encode(&self, keep_alive: bool, head_only: bool) -> Vec<u8> {
        let mut head = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        head.push_str("Date: ");
        push_date(&mut head);
        let _ = write!(
            head,
            "\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.content_type,
            self.body.len()
        );
        // nosniff: a browser must not guess that a text/plain error or a JSON answer
        // carrying a visitor's message is HTML or script.
        let _ = write!(
            head,
            "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nConnection: {}\r\n",
            if keep_alive { "keep-alive" } else { "close" }
        );
        for (n, v) in &self.headers {
            let _ = write!(head, "{n}: {v}\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
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
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
