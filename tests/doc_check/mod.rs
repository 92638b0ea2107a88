//! Helpers of the documentation tests: sections of a markdown page, the
//! table rows they hold, and source files to scan.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The body of the `## ` section whose heading contains `marker`.
pub fn section<'a>(doc: &'a str, marker: &str) -> &'a str {
    let mut parts = doc.split("\n## ");
    parts.next();
    parts
        .find(|s| s.lines().next().is_some_and(|h| h.contains(marker)))
        .unwrap_or_else(|| panic!("no section \"## ...{marker}...\""))
}

/// Names the section lacks as table rows "| `name` |".
pub fn missing<'a>(
    doc: &str,
    marker: &str,
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let body = section(doc, marker);
    names
        .into_iter()
        .filter(|n| !body.contains(&format!("| `{n}` |")))
        .map(|n| format!("{n} (in section {marker})"))
        .collect()
}

pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// String literals right after `call` (whitespace and newlines allowed).
pub fn literals_after(text: &str, call: &str) -> Vec<String> {
    text.match_indices(call)
        .filter_map(|(i, _)| {
            let rest = text[i + call.len()..].trim_start();
            let rest = rest.strip_prefix('"')?;
            Some(rest[..rest.find('"')?].to_string())
        })
        .collect()
}
