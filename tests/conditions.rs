//! Privileged end-to-end test of the quiet-machine guard: a run started
//! while another lab is up warns on stderr, and its results.json and
//! report.md carry the warning and mark the cells measured meanwhile.

mod common;

use common::*;

/// Tears the other lab down even when an assertion fails first.
struct LabUp(String);

impl Drop for LabUp {
    fn drop(&mut self) {
        let out = dplab(&["down", &self.0]);
        if !std::thread::panicking() {
            assert!(
                out.status.success(),
                "down {}: {}",
                self.0,
                text(&out.stdout)
            );
        }
    }
}

#[test]
fn a_run_next_to_another_lab_says_so() {
    if !privileged("quiet-machine guard") {
        return;
    }
    let other = LabUp(up(BLOG, "veth-routed").expect("the other lab comes up"));
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = dplab(&[
        "run",
        BLOG,
        "--only",
        "veth-routed",
        "--duration",
        "1s",
        "--repetitions",
        "1",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let id = other.0.as_str();
    // Other people's labs may be up too: ours is among those named.
    let warning = stderr
        .lines()
        .find(|l| l.starts_with("dplab: warning: another dplab lab is running ("))
        .unwrap_or_else(|| panic!("no warning about other labs:\n{stderr}"));
    assert!(
        warning.contains(&format!("{id} left running by `dplab up`")),
        "{warning}"
    );

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    let has_id = |labs: &serde_json::Value| labs.as_array().unwrap().contains(&id.into());
    let conditions = &results["conditions"];
    assert!(has_id(&conditions["start"]["other_labs"]), "{conditions}");
    let warned = conditions["warnings"].as_array().unwrap();
    assert!(
        warned.iter().any(|w| w.as_str().unwrap().contains(id)),
        "{conditions}"
    );
    let cells = results["cells"].as_array().unwrap();
    assert!(!cells.is_empty());
    for cell in cells {
        let seen = &cell["conditions"];
        assert!(has_id(&seen["other_labs"]), "{cell}");
        assert!(
            seen["disturbed_by"]
                .as_array()
                .unwrap()
                .contains(&"other-lab".into()),
            "{cell}"
        );
    }

    let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    let warning = report
        .lines()
        .find(|l| l.starts_with("| Warning | another dplab lab is running ("))
        .unwrap_or_else(|| panic!("no warning about other labs:\n{report}"));
    assert!(warning.contains(&format!("{id} left running")), "{warning}");
    assert!(
        report.contains(&format!("| ‡ | {} of {} cells", cells.len(), cells.len())),
        "{report}"
    );
    let marked_rows = report
        .lines()
        .filter(|l| l.starts_with("| veth-routed |") && l.contains('‡'))
        .count();
    assert!(
        marked_rows > 0,
        "no table value carries the marker:\n{report}"
    );
    // The other lab is untouched by the run.
    assert!(ping(&format!("dl{id}-pod-b"), "192.168.10.10"));
}
