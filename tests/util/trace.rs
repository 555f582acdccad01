//! A trace written into memory, for tests that read it back.

use looplab::{Backend, Loop};
use std::sync::{Arc, Mutex};

/// A `Write` the loop's tracer can own while the test keeps a clone to read.
#[derive(Clone, Default)]
pub struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Panic unless each of `expected` is in `text`, in this order.
pub fn assert_in_order(text: &str, expected: &[String]) {
    let mut from = 0;
    for e in expected {
        let at = text[from..].find(e.as_str());
        assert!(at.is_some(), "{e:?} missing, or out of order, in:\n{text}");
        from += at.unwrap_or(0) + e.len();
    }
}

/// A loop on `backend` tracing into memory, and the buffer to read the trace from.
pub fn traced_loop(backend: Backend) -> (Loop, SharedBuf) {
    let buf = SharedBuf::default();
    let lp = Loop::builder()
        .backend(backend)
        .trace_to(buf.clone())
        .build()
        .unwrap();
    (lp, buf)
}
