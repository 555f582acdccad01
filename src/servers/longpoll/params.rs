//! What the routes read from a request, checked before anything is done with it: pure
//! functions from a request to its parameters or to the error answer (tested directly
//! by a property test in `tests/http_parse.rs`).

use super::MAX_POLL_TIMEOUT;
use crate::servers::http::{seconds, whole_number, Head, Response};
use serde_json::{json, Value};
use std::time::Duration;

/// `GET /poll?cursor=N&timeout=S`: the cursor (default 0) and how long to hold.
pub fn poll(head: &Head, default_timeout: Duration) -> Result<(u64, Duration), Response> {
    let cursor = match head.param("cursor")? {
        None => 0,
        Some(v) => whole_number("cursor", v)?,
    };
    let timeout = match head.param("timeout")? {
        None => default_timeout,
        Some(v) => seconds("timeout", v, MAX_POLL_TIMEOUT)?,
    };
    Ok((cursor, timeout))
}

/// A message to publish.
#[derive(Debug, PartialEq, Eq)]
pub struct Publish {
    /// What was said.
    pub text: String,
    /// The ticket: publish only if this is still the latest id (409 otherwise).
    pub after: Option<u64>,
}

fn error(status: u16, msg: &str) -> Response {
    Response::json(status, &json!({ "error": msg }))
}

/// `POST /publish` with `{"text": "...", "after": N}`.
///
/// Only `Content-Type: application/json` is taken (415 otherwise): a cross-site page can
/// send a `text/plain` or form POST without asking, but not a JSON one, so no page a
/// visitor opens can publish through the visitor's browser.
pub fn publish(head: &Head, body: &[u8], max_text: usize) -> Result<Publish, Response> {
    let json_type = head.header("content-type").is_some_and(|v| {
        let media = v.split(';').next().unwrap_or("");
        media.trim().eq_ignore_ascii_case("application/json")
    });
    if !json_type {
        return Err(error(415, "Content-Type must be application/json"));
    }
    let request: Value =
        serde_json::from_slice(body).map_err(|e| error(400, &format!("body is not JSON: {e}")))?;
    let Some(text) = request.get("text").and_then(Value::as_str) else {
        return Err(error(400, "text: must be a string"));
    };
    if text.len() > max_text {
        let msg = format!("text: is {} bytes; the limit is {max_text}", text.len());
        return Err(error(413, &msg));
    }
    if text.trim().is_empty() {
        return Err(error(400, "text: must not be empty"));
    }
    let after = match request.get("after") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| error(400, "after: must be a message id (a whole number)"))?,
        ),
    };
    Ok(Publish {
        text: text.to_string(),
        after,
    })
}
