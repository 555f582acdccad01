//! The book stays true to the code: every chapter in docs/SUMMARY.md exists, every
//! example and source file that docs/ or the README names exists (`make test` builds all
//! examples), every chapter ends with exercises, and the docs stand alone: no link or
//! path in README.md or docs/ leads outside the repository (notes beside it, a path on
//! the author's machine, a file that does not exist).

use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// Every `](target.md)` link in SUMMARY.md.
fn chapters() -> Vec<String> {
    let summary = read("docs/SUMMARY.md");
    summary
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|t| t.ends_with(".md"))
        .map(str::to_string)
        .collect()
}

/// Words following `marker` up to a character that cannot be in a name.
fn names_after(text: &str, marker: &str) -> BTreeSet<String> {
    text.split(marker)
        .skip(1)
        .map(|rest| {
            rest.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '/' || *c == '.')
                .collect::<String>()
        })
        .map(|s| s.trim_end_matches('.').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn all_docs() -> Vec<(String, String)> {
    let mut docs: Vec<(String, String)> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "md"))
        .map(|e| {
            let name = format!("docs/{}", e.file_name().to_string_lossy());
            (name.clone(), read(&name))
        })
        .collect();
    docs.push(("README.md".into(), read("README.md")));
    docs
}

#[test]
fn every_chapter_in_the_summary_exists() {
    let chapters = chapters();
    assert!(
        chapters.len() >= 12,
        "SUMMARY.md lists {} files",
        chapters.len()
    );
    for c in &chapters {
        assert!(
            root().join("docs").join(c).is_file(),
            "SUMMARY.md lists {c}, which does not exist"
        );
    }
    let numbered: Vec<&String> = chapters
        .iter()
        .filter(|c| c.as_bytes()[0].is_ascii_digit())
        .collect();
    assert!(
        numbered.len() >= 10,
        "ten numbered chapters or more: {numbered:?}"
    );
}

#[test]
fn every_example_the_docs_name_exists() {
    let mut named = BTreeSet::new();
    for (file, text) in all_docs() {
        for n in names_after(&text, "--example ") {
            named.insert((file.clone(), n));
        }
        for n in names_after(&text, "examples/") {
            named.insert((file.clone(), n.trim_end_matches(".rs").to_string()));
        }
    }
    assert!(named.len() >= 13, "the docs name few examples: {named:?}");
    for (file, name) in named {
        // An exercise variant runs as an example too; it lives in exercises/.
        let found = ["examples", "exercises"]
            .iter()
            .any(|dir| root().join(dir).join(format!("{name}.rs")).is_file());
        assert!(
            found,
            "{file} names example {name}, but neither examples/{name}.rs nor exercises/{name}.rs exists"
        );
    }
}

#[test]
fn every_source_file_the_docs_name_exists() {
    for (file, text) in all_docs() {
        for n in names_after(&text, "`src/") {
            if n.ends_with(".rs") {
                assert!(
                    root().join("src").join(&n).is_file(),
                    "{file} names src/{n}, which does not exist"
                );
            }
        }
    }
}

#[test]
fn every_chapter_has_exercises() {
    for c in chapters()
        .iter()
        .filter(|c| c.as_bytes()[0].is_ascii_digit())
    {
        let text = read(&format!("docs/{c}"));
        assert!(
            text.contains("## Try this"),
            "{c} has no \"Try this\" section"
        );
        assert!(
            text.contains("```sh") || text.contains("cargo run"),
            "{c} gives nothing to run"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The docs stand alone: nothing in README.md or docs/ may point outside the repository.
// ---------------------------------------------------------------------------------------

/// Roots under which a path names somebody's machine, not the repository: a checkout's
/// own top directory (`/work`, `/home`, ...) and the usual home and scratch roots.
fn private_roots() -> Vec<String> {
    let mut roots: Vec<String> = ["/home/", "/Users/", "/root/", "/tmp/", "/mnt/", "~/"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if let Some(top) = root().components().nth(1) {
        roots.push(format!("/{}/", top.as_os_str().to_string_lossy()));
    }
    roots
}

/// `path` with `.` and `..` resolved without touching the disk; `None` if `..` climbs
/// above the filesystem root.
fn normalize(path: &Path) -> Option<std::path::PathBuf> {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// Where a relative `target` written in `doc` (a path from the repository root) leads,
/// if it stays inside the repository.
fn resolve_in_repo(repo: &Path, doc: &str, target: &str) -> Result<std::path::PathBuf, String> {
    let dir = Path::new(doc).parent().unwrap_or(Path::new(""));
    normalize(&repo.join(dir).join(target))
        .filter(|p| p.starts_with(repo))
        .ok_or_else(|| format!("{target} leads outside the repository"))
}

/// Text outside fenced code blocks: a `](` in a code sample is not a link.
fn prose(text: &str) -> String {
    let mut fenced = false;
    let mut out = String::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Every link target: inline `[text](target "title")` and `![alt](target)`, reference
/// definitions `[id]: target`, and HTML `href="..."` / `src="..."`.
fn link_targets(text: &str) -> Vec<String> {
    let text = prose(text);
    let mut targets: Vec<String> = text
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter_map(|t| t.split_whitespace().next())
        .map(|t| t.trim_matches(|c| c == '<' || c == '>').to_string())
        .collect();
    for line in text.lines() {
        let line = line.trim_start();
        if let Some((label, rest)) = line.strip_prefix('[').and_then(|l| l.split_once("]:")) {
            if !label.is_empty() {
                targets.extend(rest.split_whitespace().next().map(str::to_string));
            }
        }
    }
    for attr in ["href=\"", "src=\""] {
        for rest in text.split(attr).skip(1) {
            targets.extend(rest.split('"').next().map(str::to_string));
        }
    }
    targets
}

/// What is wrong with link `target` in `doc`, if anything. Web links and anchors in the
/// same page are fine; a file link must be relative, stay inside `repo`, and exist.
fn check_link(repo: &Path, doc: &str, target: &str) -> Result<(), String> {
    if target.contains("://") || target.starts_with("mailto:") || target.starts_with('#') {
        return Ok(());
    }
    let file = target.split(['#', '?']).next().unwrap_or("");
    if file.starts_with('/') || file.starts_with('~') || file.starts_with("file:") {
        return Err(format!(
            "{target} is an absolute path: link relative to the page"
        ));
    }
    let path = resolve_in_repo(repo, doc, file)?;
    if !path.exists() {
        return Err(format!("{target} does not exist"));
    }
    Ok(())
}

/// Paths written as text (in prose or in code) that point outside the repository:
/// `../shared`, a relative path that climbs out or names nothing, or an absolute path on
/// somebody's machine. System paths such as `/proc/PID/stat` or `/etc/hosts` are fine.
fn text_path_problems(repo: &Path, doc: &str, text: &str) -> Vec<String> {
    let roots = private_roots();
    let mut problems = Vec::new();
    let separators = |c: char| c.is_whitespace() || "`'\"()[]<>,;".contains(c);
    for token in text.split(separators).filter(|t| !t.is_empty()) {
        let token = token.trim_end_matches(['.', ':', '!', '?']);
        if token.contains("../shared") {
            problems.push(format!("{token} points at notes beside the repository"));
        } else if token.starts_with("../") || token.starts_with("./") {
            match resolve_in_repo(repo, doc, token) {
                Ok(p) if p.exists() => {}
                Ok(_) => problems.push(format!("{token} does not exist")),
                Err(e) => problems.push(e),
            }
        } else if roots.iter().any(|r| token.starts_with(r.as_str())) {
            problems.push(format!("{token} is a path on one machine"));
        }
    }
    problems
}

#[test]
fn no_link_or_path_in_the_docs_leads_outside_the_repository() {
    let repo = root();
    let mut problems = Vec::new();
    for (doc, text) in all_docs() {
        for target in link_targets(&text) {
            if let Err(e) = check_link(repo, &doc, &target) {
                problems.push(format!("{doc}: link {e}"));
            }
        }
        for e in text_path_problems(repo, &doc, &text) {
            problems.push(format!("{doc}: {e}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The checker itself: each kind of escape is caught, and what is fine passes.
#[test]
fn the_outside_link_check_catches_each_kind_of_escape() {
    let repo = root();
    let top = private_roots().pop().unwrap_or_default();
    let bad_links = [
        ("README.md", "see [the design](../shared/DESIGN.md)"),
        ("docs/design.md", "see [the design](../../shared/DESIGN.md)"),
        ("docs/design.md", "[contract](/work/shared/DESIGN.md)"),
        (
            "README.md",
            "[home](~/notes.md) and [x](file:///etc/passwd)",
        ),
        ("README.md", "[gone](docs/no-such-chapter.md)"),
        ("docs/04-time.md", "![plot](img/no-such.svg)"),
        ("README.md", "[ref]: docs/nowhere.md"),
        ("README.md", "<a href=\"../outside.html\">x</a>"),
    ];
    for (doc, text) in bad_links {
        let errors: Vec<String> = link_targets(text)
            .iter()
            .filter_map(|t| check_link(repo, doc, t).err())
            .collect();
        assert!(!errors.is_empty(), "{doc}: `{text}` passed the link check");
    }
    let bad_text = [
        (
            "README.md",
            "The contract is in `../shared/DESIGN.md`, beside the repository.",
        ),
        ("docs/design.md", "read ../../elsewhere/notes.md first"),
        ("docs/design.md", "read ../src/no_such_file.rs"),
        ("README.md", &format!("built from {top}main/src/lib.rs")),
        ("README.md", "cd /home/someone/looplab"),
    ];
    for (doc, text) in bad_text {
        assert!(
            !text_path_problems(repo, doc, text).is_empty(),
            "{doc}: `{text}` passed the path check"
        );
    }
    let fine = [
        (
            "README.md",
            "[book](docs/SUMMARY.md), ![plot](docs/img/echo.svg), [web](https://libuv.org)",
        ),
        (
            "docs/design.md",
            "[ch 5](05-when-does-the-loop-exit.md#requests) and [up](../README.md)",
        ),
        (
            "docs/design.md",
            "see ../src/event_loop.rs and /proc/PID/stat, /etc/hosts, GET /poll",
        ),
    ];
    for (doc, text) in fine {
        let mut errors: Vec<String> = link_targets(text)
            .iter()
            .filter_map(|t| check_link(repo, doc, t).err())
            .collect();
        errors.extend(text_path_problems(repo, doc, text));
        assert!(errors.is_empty(), "{doc}: `{text}` was refused: {errors:?}");
    }
}
