//! A pipe read line by line, with a bound on what one line may make us hold.

use super::PipeStream;
use std::io;

/// A line longer than this is handed out in pieces of this size: a child that never
/// prints a newline must not make its reader buffer without bound.
pub const MAX_LINE: usize = 64 * 1024;

/// How much one read asks for.
const CHUNK: usize = 8 * 1024;

/// [`PipeStream::lines`]: `next_line().await` gives each line without its `\n`.
pub struct Lines {
    pipe: PipeStream,
    /// Bytes read and not handed out yet; never more than `MAX_LINE + CHUNK`.
    buf: Vec<u8>,
    /// How far `buf` is known to hold no newline.
    scanned: usize,
    eof: bool,
}

impl Lines {
    pub(super) fn new(pipe: PipeStream) -> Lines {
        Lines {
            pipe,
            buf: Vec::new(),
            scanned: 0,
            eof: false,
        }
    }

    /// The next line, `Ok(None)` at end of stream, or the pipe's error. A last line
    /// without a newline is still a line; one longer than [`MAX_LINE`] comes in pieces.
    /// Bytes that are not UTF-8 are replaced with U+FFFD (as `String::from_utf8_lossy`).
    pub async fn next_line(&mut self) -> io::Result<Option<String>> {
        loop {
            // A newline counts only where it ends a line of at most MAX_LINE bytes.
            let window = self.buf.len().min(MAX_LINE + 1);
            let unseen = &self.buf[self.scanned.min(window)..window];
            if let Some(at) = unseen.iter().position(|&b| b == b'\n') {
                let end = self.scanned + at;
                return Ok(Some(self.take(end, end + 1)));
            }
            self.scanned = window;
            // Past MAX_LINE with no newline there: a piece. At exactly MAX_LINE, the next
            // byte may be the newline that makes it a whole line; read it first.
            if self.buf.len() > MAX_LINE {
                return Ok(Some(self.take(MAX_LINE, MAX_LINE)));
            }
            if self.eof {
                let n = self.buf.len();
                return Ok((n > 0).then(|| self.take(n, n)));
            }
            let had = self.buf.len();
            self.buf.resize(had + CHUNK, 0);
            let read = self.pipe.read(&mut self.buf[had..]).await;
            let n = *read.as_ref().unwrap_or(&0);
            self.buf.truncate(had + n);
            self.eof = read? == 0;
        }
    }

    /// `buf[..end]` as a line; `buf[..next]` is consumed.
    fn take(&mut self, end: usize, next: usize) -> String {
        let line = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..next);
        self.scanned = 0;
        line
    }

    /// The pipe back (bytes already read and not handed out are lost).
    pub fn into_inner(self) -> PipeStream {
        self.pipe
    }
}
