//! report.md, charts and compare from hand-written fixture results (test
//! data labelled hostname "fixture", not measurements). No root needed.

mod charts;
mod compare;
mod markdown;
mod proxies;

use std::path::Path;

use dplab::results::Results;

fn fixture(name: &str) -> Results {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn blog() -> Results {
    fixture("blog-fixture.json")
}

fn multinode() -> Results {
    fixture("multinode-fixture.json")
}

/// Several proxies per datapath, node-port and unreachable cells.
fn proxies() -> Results {
    fixture("proxies-fixture.json")
}

/// The text of one section, from its heading to the next `## `.
fn section<'a>(md: &'a str, heading: &str) -> &'a str {
    let start = md
        .find(heading)
        .unwrap_or_else(|| panic!("no section {heading}"));
    let rest = &md[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    &rest[..end]
}
