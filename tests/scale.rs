//! Privileged end-to-end tests of large labs: a thousand pods come up
//! wired and go down leaving nothing, and a SIGKILL in the middle of a
//! large setup leaves nothing `dplab cleanup` does not remove.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// What of /run/netns does not belong to any dplab run (runs of other
/// tests come and go meanwhile).
fn foreign_netns() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !is_dplab_name(n))
        .collect();
    names.sort();
    names
}

/// `dlXXXX-...`: a name of some dplab run (possibly another test's).
fn is_dplab_name(n: &str) -> bool {
    n.len() > 7
        && n.starts_with("dl")
        && n.as_bytes()[6] == b'-'
        && n[2..6].bytes().all(|b| b.is_ascii_hexdigit())
}

/// Mounts under /run/netns of run `run`.
fn mounts_of(run: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&format!("/run/netns/dl{run}-")))
        .map(str::to_string)
        .collect()
}

/// A topology of `pods` veth-routed pods on one node.
fn topology(dir: &Path, pods: usize) -> std::path::PathBuf {
    let mut text = String::from(
        "name = \"scale\"\nservice_cidr = \"10.96.0.0/16\"\n\n[[nodes]]\nname = \"node1\"\npod_cidr = \"192.168.0.0/16\"\n",
    );
    for i in 0..pods {
        text.push_str(&format!(
            "\n[[pods]]\nname = \"pod-{i:04}\"\nnode = \"node1\"\n"
        ));
    }
    let path = dir.join("scale.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_thousand_pods_come_up_wired_and_go_down_leaving_nothing() {
    if !privileged("pods-1000") {
        return;
    }
    let before = root_snapshot();
    let foreign = foreign_netns();
    let run = up("topologies/pods-1000.toml", "veth-routed").expect("up pods-1000");
    let namespaces = namespaces_of(&run).len();
    let node = format!("dl{run}-node1");
    let links = text(&in_netns(&node, &["ip", "-o", "link"]).stdout);
    let host_ends = links.matches(&format!("dl{run}-v")).count();
    // The last pod reaches the first one and its gateway: the last pods
    // wired are wired completely.
    let first = text(&in_netns(&format!("dl{run}-pod-0000"), &["ip", "-o", "-4", "addr"]).stdout);
    let first_ip = first
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or("none")
        .to_string();
    let last = format!("dl{run}-pod-0999");
    let route = text(&in_netns(&last, &["ip", "route", "show", "default"]).stdout);
    let gateway = route
        .split_whitespace()
        .nth(2)
        .unwrap_or("none")
        .to_string();
    let pings = [ping(&last, &first_ip), ping(&last, &gateway)];
    down(&run);
    assert_eq!(namespaces, 1001, "node + 1000 pods");
    assert_eq!(host_ends, 1000, "one host end per pod: {links}");
    assert_eq!(pings, [true, true], "pod-0999 -> {first_ip} and {gateway}");
    assert!(mounts_of(&run).is_empty(), "{:?}", mounts_of(&run));
    assert_eq!(foreign_netns(), foreign, "/run/netns changed");
    assert_eq!(root_snapshot(), before, "the root namespace changed");
}

#[test]
fn sigkill_in_the_middle_of_a_large_setup_then_cleanup_leaves_nothing() {
    if !privileged("sigkill mid-setup") {
        return;
    }
    let before = root_snapshot();
    let foreign = foreign_netns();
    let dir = tempfile::tempdir().unwrap();
    let path = topology(dir.path(), 300);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_dplab"))
        .arg("up")
        .arg(&path)
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dplab up starts");
    // Kill once pods are being wired: namespaces exist and some links are
    // journalled (and made), others not yet.
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        let found = std::fs::read_dir("/run/dplab")
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|e| {
                let journal = std::fs::read_to_string(e.path().join("journal.jsonl")).ok()?;
                let links = journal.matches("\"kind\":\"link\"").count();
                (journal.contains(&format!("\"owner_pid\":{pid},")) && links >= 20)
                    .then(|| e.file_name().into_string().ok())
                    .flatten()
            });
        if let Some(run) = found {
            break run;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "dplab up ended before it was killed"
        );
        assert!(Instant::now() < deadline, "no pod wired within 60 s");
        std::thread::sleep(Duration::from_millis(2));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let journal = std::fs::read_to_string(format!("/run/dplab/{run}/journal.jsonl")).unwrap();
    assert!(
        !journal.contains("\"kind\":\"detached\""),
        "setup had finished before the kill"
    );
    assert!(
        !namespaces_of(&run).is_empty(),
        "SIGKILL cannot tear down; the half-built lab must still be there"
    );
    let out = dplab(&["cleanup"]);
    let said = text(&out.stdout);
    assert!(said.contains(&format!("removed netns dl{run}-")), "{said}");
    assert!(
        namespaces_of(&run).is_empty(),
        "left: {:?}",
        namespaces_of(&run)
    );
    assert!(mounts_of(&run).is_empty(), "{:?}", mounts_of(&run));
    assert!(!Path::new("/run/dplab").join(&run).exists());
    assert_eq!(foreign_netns(), foreign, "/run/netns changed");
    assert_eq!(root_snapshot(), before, "the root namespace changed");
}
