//! The library prints nothing: errors go to the caller or to a callback, information to
//! the trace, and the CLI (`src/main.rs`) decides what a person sees. Checked on the
//! source, since a print can hide on any error path a test does not reach.

use std::path::{Path, PathBuf};

/// The macros that write to the process's stdout or stderr behind the caller's back.
const PRINTS: [&str; 5] = ["println!", "eprintln!", "print!", "eprint!", "dbg!"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading src/") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// No print macro in the library's code (comments aside). Exempt: the CLI itself (`main.rs`, `cli/`), and
/// `src/bench/`, whose tables are the `looplab bench` command's output. Issue 11, safety:
/// no printing from the library.
#[test]
fn the_library_prints_nothing_outside_the_cli() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 10, "found only {files:?}");
    let mut prints = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == "main.rs"
            || rel == "cli.rs"
            || rel.starts_with("cli/")
            || rel.starts_with("bench/")
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if !code.starts_with("//") && PRINTS.iter().any(|m| code.contains(m)) {
                prints.push(format!("src/{rel}:{}: {code}", n + 1));
            }
        }
    }
    assert!(
        prints.is_empty(),
        "the library prints:\n{}",
        prints.join("\n")
    );
}
