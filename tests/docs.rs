//! The book stays true to the code: every chapter in docs/SUMMARY.md exists, every
//! example and source file that docs/ or the README names exists (`make test` builds all
//! examples), and every chapter ends with exercises.

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
    assert_eq!(numbered.len(), 10, "ten numbered chapters: {numbered:?}");
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
        let path = root().join("examples").join(format!("{name}.rs"));
        assert!(
            path.is_file(),
            "{file} names example {name}, but examples/{name}.rs does not exist"
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
