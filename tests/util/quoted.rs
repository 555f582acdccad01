//! What a header or a chapter quotes, checked against a real run: the lines of its
//! ```text blocks, compared by shape (figures become `N`), with `...` standing for any
//! text within one line. Included with `#[path]` beside `util/exercise.rs`.

use crate::exercise::{blocks, read, shape};

/// The ```text blocks of `file`: a chapter as it is, a source file's `//!` header with
/// the comment marks taken off.
pub fn quoted_blocks(file: &str) -> Vec<Vec<String>> {
    let text = read(file);
    let text = if file.ends_with(".rs") {
        let header: Vec<&str> = text
            .lines()
            .map_while(|l| l.strip_prefix("//!"))
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .collect();
        header.join("\n")
    } else {
        text
    };
    blocks(&text, "text")
}

/// Panic unless one line of `lines` holds every `...`-separated piece of `quoted`, in
/// order, by shape.
pub fn assert_quoted_line(quoted: &str, lines: &[String], context: &str) {
    let pieces: Vec<String> = quoted
        .split("...")
        .map(|p| shape(p.trim()))
        .filter(|p| !p.is_empty())
        .collect();
    let found = lines.iter().any(|l| {
        let l = shape(l);
        let mut from = 0;
        pieces.iter().all(|p| match l[from..].find(p.as_str()) {
            Some(at) => {
                from += at + p.len();
                true
            }
            None => false,
        })
    });
    assert!(
        found,
        "{context} quotes a line no run printed:\n  {quoted}\n  pieces: {pieces:?}\n--- output ---\n{}",
        lines.join("\n")
    );
}
