//! Privileged tests of two-node labs on each overlay: pods and nodes reach
//! each other across nodes, the pods' MTU leaves room for the encapsulation,
//! VXLAN carries the pod traffic only on vxlan labs, and nothing is left.

mod common;

use common::*;

/// The cross-node topology with only `overlay`, written to a temp file.
fn topology(overlay: &str, dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(root().join("topologies/cross-node.toml"))
        .unwrap()
        .replace(
            "overlays = [\"routed\", \"vxlan\"]",
            &format!("overlays = [\"{overlay}\"]"),
        );
    let path = dir.join(format!("two-nodes-{overlay}.toml"));
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn vxlan_tx(ns: &str, run: &str) -> Option<u64> {
    let dev = text(&in_netns(ns, &["cat", "/proc/net/dev"]).stdout);
    dev.lines()
        .find(|l| l.trim_start().starts_with(&format!("dl{run}-vx:")))
        .and_then(|l| l.split(':').nth(1)?.split_whitespace().nth(9)?.parse().ok())
}

fn two_nodes(overlay: &str, pod_mtu: u32) {
    if !privileged(overlay) {
        return;
    }
    let before = root_snapshot();
    let dir = tempfile::tempdir().unwrap();
    let run = up(&topology(overlay, dir.path()), "veth-routed").expect("up");
    let ns = |name: &str| format!("dl{run}-{name}");
    // pod-a1 10.244.1.2 on node-a; pod-b2 10.244.2.3 on node-b; node-b 10.0.0.2
    let tx_before = vxlan_tx(&ns("node-a"), &run);
    let paths = [
        (ns("pod-a1"), "10.244.2.3"),
        (ns("pod-b2"), "10.244.1.2"),
        (ns("node-a"), "10.244.2.3"),
        (ns("pod-a1"), "10.0.0.2"),
        (ns("node-a"), "10.0.0.2"),
    ];
    let failed: Vec<String> = paths
        .iter()
        .filter(|(n, a)| !ping(n, a))
        .map(|(n, a)| format!("{n} -> {a}"))
        .collect();
    let tx_after = vxlan_tx(&ns("node-a"), &run);
    // The largest unfragmented ping fits the pod MTU, one byte more does not.
    let size = (pod_mtu - 28).to_string();
    let bigger = (pod_mtu - 27).to_string();
    let fits = in_netns(
        &ns("pod-a1"),
        &[
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            &size,
            "10.244.2.3",
        ],
    )
    .status
    .success();
    let too_big = in_netns(
        &ns("pod-a1"),
        &[
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            &bigger,
            "10.244.2.3",
        ],
    )
    .status
    .success();
    down(&run);
    assert!(failed.is_empty(), "{overlay}: pings failed: {failed:?}");
    assert!(fits, "{overlay}: {size}-byte ping with DF did not pass");
    assert!(
        !too_big,
        "{overlay}: {bigger}-byte ping with DF passed an MTU of {pod_mtu}"
    );
    match overlay {
        "vxlan" => assert!(
            tx_after.unwrap() > tx_before.unwrap(),
            "vxlan device carried nothing"
        ),
        _ => assert!(tx_before.is_none(), "a routed lab has no vxlan device"),
    }
    assert_eq!(root_snapshot(), before);
}

#[test]
fn routed_overlay_two_nodes() {
    two_nodes("routed", 1500);
}

#[test]
fn vxlan_overlay_two_nodes() {
    two_nodes("vxlan", 1450);
}

#[test]
fn cross_node_run_reports_paths_with_placement_and_proof() {
    if !privileged("cross-node run") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let topo = topology("vxlan", dir.path());
    let out_dir = dir.path().join("out");
    let out = dplab(&[
        "run",
        &topo,
        "--only",
        "veth-routed",
        "--duration",
        "1s",
        "--repetitions",
        "1",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    let cells = results["cells"].as_array().unwrap();
    let find = |client: &str, server: &str, target: &str, workload: &str| {
        cells
            .iter()
            .find(|c| {
                c["client"] == client
                    && c["server"] == server
                    && c["target"] == target
                    && c["workload"] == workload
            })
            .unwrap_or_else(|| panic!("no cell {client}>{server} {target} {workload}"))
    };
    let cross = find("pod-a1", "pod-b2", "pod-ip", "tcp-stream");
    assert_eq!(cross["status"], "ok");
    assert_eq!(cross["placement"], "cross-node");
    assert_eq!(cross["overlay"], "vxlan");
    assert!(cross["proof"]["vxlan_tx_packets"].as_i64().unwrap() > 0);
    let same = find("pod-b1", "pod-b2", "pod-ip", "ping");
    assert_eq!(same["placement"], "same-node");
    assert!(same["metrics"]["rtt_ms"]["median"].as_f64().unwrap() > 0.0);
    let nodes = find("node-a", "node-b", "node-ip", "tcp-stream");
    assert_eq!(nodes["status"], "ok");
    let service = find("pod-a1", "pod-b2", "cluster-ip", "tcp-stream");
    assert_eq!(service["status"], "ok", "{}", service["reason"]);
    assert!(service["proof"]["iptables_dnat_packets"].as_i64().unwrap() > 0);
    let ping_service = find("pod-a1", "pod-b2", "cluster-ip", "ping");
    assert_eq!(ping_service["status"], "skipped");
    assert!(std::fs::read_to_string(out_dir.join("report.md"))
        .unwrap()
        .contains("vxlan"));
}
