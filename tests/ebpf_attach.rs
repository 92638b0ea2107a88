//! Privileged end-to-end tests of the two ways tc programs attach: TCX links
//! (Linux >= 6.6) and the netlink fallback (clsact qdisc + cls_bpf filter),
//! each forced with DPLAB_TC_ATTACH on the veth-ebpf datapath. Both must
//! carry cluster-IP and pod-IP traffic with the same proof, say how they
//! attached, and leave nothing behind: no qdisc, no pin, and the root
//! namespace (with its qdiscs) byte-identical.

mod common;

use common::*;

/// `tc qdisc show` of the root namespace: dplab must add none there.
fn root_qdiscs() -> String {
    let out = std::process::Command::new("tc")
        .args(["qdisc", "show"])
        .output()
        .expect("tc runs");
    text(&out.stdout)
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

/// One `dplab test` through the running lab; returns the cell.
fn test_cell(run: &str, to: &str) -> serde_json::Value {
    let out = dplab(&[
        "test",
        run,
        "--from",
        "pod-b",
        "--to",
        to,
        "--workload",
        "tcp-rr",
        "--duration",
        "1s",
        "--json",
    ]);
    let cell = json(&out);
    assert_eq!(cell["status"], "ok", "{to}: {cell}");
    cell
}

fn attach_lifecycle(mode: &str) {
    let test = format!("veth-ebpf with DPLAB_TC_ATTACH={mode}");
    if !common::skip::ebpf(&test) {
        return;
    }
    let before = root_snapshot();
    let qdiscs_before = root_qdiscs();
    let out = dplab_env(
        &["up", BLOG, "--datapath", "veth-ebpf"],
        "DPLAB_TC_ATTACH",
        mode,
    );
    let stderr = text(&out.stderr);
    if !out.status.success() {
        let old = aya::util::KernelVersion::current()
            .is_ok_and(|v| v < aya::util::KernelVersion::new(6, 6, 0));
        if mode == "tcx" && old {
            skip(
                &test,
                &["tcx"],
                &format!("kernel older than 6.6 has no TCX ({stderr})"),
            );
            assert_eq!(root_snapshot(), before);
            return;
        }
        panic!("up failed: {stderr}");
    }
    let run = text(&out.stdout).lines().last().unwrap().trim().to_string();
    assert!(
        stderr.contains(&format!("eBPF programs attached by {mode} ")),
        "{stderr}"
    );
    let node = format!("dl{run}-node1");
    let hosts = [format!("dl{run}-v0"), format!("dl{run}-v1")];
    let node_qdiscs = text(&in_netns(&node, &["tc", "qdisc", "show"]).stdout);
    let links = std::path::Path::new("/sys/fs/bpf/dplab")
        .join(&run)
        .join("links");
    let pinned = std::fs::read_dir(&links).map(|d| d.count()).unwrap_or(0);
    let filters: Vec<String> = hosts
        .iter()
        .map(|h| text(&in_netns(&node, &["tc", "filter", "show", "dev", h, "ingress"]).stdout))
        .collect();

    let service = test_cell(&run, "service:iperf");
    let pod = test_cell(&run, "pod-a");
    let out = dplab(&["down", &run]);
    let down = text(&out.stdout) + &text(&out.stderr);
    assert!(out.status.success(), "down: {down}");

    match mode {
        "netlink" => {
            for h in &hosts {
                assert!(
                    node_qdiscs.contains(&format!("qdisc clsact ffff: dev {h} ")),
                    "{node_qdiscs}"
                );
                assert!(
                    down.contains(&format!("removed clsact qdisc {node}/{h}")),
                    "{down}"
                );
                assert!(
                    down.contains(&format!("removed tc filter {node}/{h} ingress")),
                    "{down}"
                );
            }
            for f in &filters {
                assert!(f.contains("veth_ingress direct-action"), "{f}");
            }
            assert_eq!(pinned, 0, "no TCX link may be pinned");
        }
        _ => {
            assert!(!node_qdiscs.contains("clsact"), "{node_qdiscs}");
            assert_eq!(pinned, 2, "one TCX link per host veth");
        }
    }
    for cell in [&service, &pod] {
        assert_eq!(cell["bpf_attach"], mode, "{cell}");
        assert!(cell["proof"]["bpf_redirected"].as_i64() > Some(0), "{cell}");
    }
    assert!(
        service["proof"]["bpf_service_hits"].as_i64() > Some(0),
        "{service}"
    );
    assert_eq!(pod["proof"]["bpf_service_hits"], 0, "{pod}");

    assert!(namespaces_of(&run).is_empty(), "{:?}", namespaces_of(&run));
    assert!(!links.exists(), "pins left: {}", links.display());
    assert!(!std::path::Path::new("/run/dplab").join(&run).exists());
    assert_eq!(root_snapshot(), before, "the root namespace changed");
    assert_eq!(root_qdiscs(), qdiscs_before, "root qdiscs changed");
}

#[test]
fn veth_ebpf_by_tcx_links() {
    attach_lifecycle("tcx");
}

#[test]
fn veth_ebpf_by_netlink_clsact_and_cls_bpf() {
    attach_lifecycle("netlink");
}

#[test]
fn an_unknown_attach_mode_is_bad_input_and_builds_nothing() {
    let before = all_dplab_objects();
    for command in [
        vec!["up", BLOG, "--datapath", "veth-ebpf"],
        vec!["run", BLOG, "--only", "veth-ebpf", "--duration", "1s"],
    ] {
        let out = dplab_env(&command, "DPLAB_TC_ATTACH", "bogus");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {stderr}");
        assert!(
            stderr.contains(
                "DPLAB_TC_ATTACH: unknown tc attach mode \"bogus\" (known: tcx, netlink)"
            ),
            "{stderr}"
        );
    }
    // Other labs may come and go meanwhile; none of ours may appear.
    let new: Vec<String> = all_dplab_objects()
        .into_iter()
        .filter(|o| !before.contains(o))
        .filter(|o| o.ends_with("-node1") || o.ends_with("-pod-a") || o.ends_with("-pod-b"))
        .filter(|o| !std::path::Path::new("/run/dplab").join(&o[2..6]).exists())
        .collect();
    assert!(new.is_empty(), "built: {new:?}");
}
