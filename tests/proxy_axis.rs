//! The service proxy as its own axis: flags that name an impossible pair
//! are bad input; a matrix of wirings x proxies gives one cluster-IP cell
//! per proxy with that proxy's proof, predicted breakage is `unreachable`,
//! and node ports are translated on the node the client connects to.

mod common;

use common::*;

fn cells(out_dir: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(out_dir.join("results.json")).expect("results.json");
    let results: serde_json::Value = serde_json::from_str(&text).expect("results parse");
    results["cells"].as_array().expect("cells").clone()
}

fn find<'a>(
    cells: &'a [serde_json::Value],
    datapath: &str,
    target: &str,
    proxy: Option<&str>,
) -> &'a serde_json::Value {
    cells
        .iter()
        .find(|c| {
            c["datapath"] == datapath
                && c["target"] == target
                && c["service_proxy"].as_str() == proxy
        })
        .unwrap_or_else(|| panic!("no cell {datapath}/{target}/{proxy:?}"))
}

fn counter(cell: &serde_json::Value, name: &str) -> i64 {
    cell["proof"][name].as_i64().unwrap_or(0)
}

#[test]
fn naming_an_impossible_pair_is_bad_input_and_touches_nothing() {
    let before = all_dplab_objects();
    for args in [
        &[
            "run",
            BLOG,
            "--only",
            "ipvlan-ebpf",
            "--proxies",
            "iptables",
        ][..],
        &["run", BLOG, "--proxies", "kube-proxy"][..],
        &[
            "up",
            BLOG,
            "--datapath",
            "ipvlan-ebpf",
            "--proxy",
            "nftables",
        ][..],
        &["up", BLOG, "--proxy", "userspace"][..],
    ] {
        let out = dplab(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("ipvlan-l2") || stderr.contains("unknown service proxy"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(all_dplab_objects(), before, "bad input created objects");
}

#[test]
fn each_proxy_proves_its_own_path_and_predicted_breakage_is_unreachable() {
    if !privileged("proxy axis") {
        return;
    }
    let before = root_snapshot();
    let out_dir = tempfile::tempdir().unwrap();
    let out = dplab(&[
        "run",
        BLOG,
        "--only",
        "veth-routed,bridge-nf-off",
        "--proxies",
        "iptables,ebpf",
        "--duration",
        "1s",
        "--repetitions",
        "1",
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let cells = cells(out_dir.path());
    // Pod-ip cells once per datapath, cluster-ip cells once per proxy.
    assert_eq!(cells.len(), 6, "{cells:#?}");
    for d in ["veth-routed", "bridge-nf-off"] {
        let pod = find(&cells, d, "pod-ip", None);
        assert_eq!(pod["status"], "ok", "{pod}");
        assert_eq!(counter(pod, "iptables_dnat_packets"), 0, "{pod}");
        assert_eq!(counter(pod, "bpf_service_hits"), 0, "{pod}");
    }
    let ipt = find(&cells, "veth-routed", "cluster-ip", Some("iptables"));
    assert_eq!(ipt["status"], "ok", "{ipt}");
    assert!(counter(ipt, "iptables_dnat_packets") > 0, "{ipt}");
    assert_eq!(counter(ipt, "bpf_service_hits"), 0, "{ipt}");
    for d in ["veth-routed", "bridge-nf-off"] {
        let bpf = find(&cells, d, "cluster-ip", Some("ebpf"));
        assert_eq!(bpf["status"], "ok", "{bpf}");
        assert!(counter(bpf, "bpf_service_hits") > 0, "{bpf}");
        assert_eq!(counter(bpf, "iptables_dnat_packets"), 0, "{bpf}");
    }
    let nf_off = find(&cells, "bridge-nf-off", "cluster-ip", Some("iptables"));
    assert_eq!(nf_off["status"], "unreachable", "{nf_off}");
    assert!(
        nf_off["reason"].as_str().unwrap().contains("reverse NAT"),
        "{nf_off}"
    );
    let report = std::fs::read_to_string(out_dir.path().join("report.md")).unwrap();
    assert!(report.contains("unreachable"), "{report}");
    assert_eq!(
        root_snapshot(),
        before,
        "the run changed the root namespace"
    );
}

#[test]
fn node_port_is_translated_on_the_node_the_client_connects_to() {
    if !privileged("node port") {
        return;
    }
    let before = root_snapshot();
    let out_dir = tempfile::tempdir().unwrap();
    let out = dplab(&[
        "run",
        "topologies/nodeport.toml",
        "--proxies",
        "iptables",
        "--duration",
        "1s",
        "--repetitions",
        "1",
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let cells = cells(out_dir.path());
    let np = find(&cells, "veth-routed", "node-port", Some("iptables"));
    assert_eq!(np["status"], "ok", "{np}");
    assert!(counter(np, "iptables_dnat_packets") > 0, "{np}");
    assert_eq!(np["client"], "pod-a1");
    let node = find(&cells, "veth-routed", "node-ip", None);
    assert_eq!(counter(node, "iptables_dnat_packets"), 0, "{node}");
    assert_eq!(
        root_snapshot(),
        before,
        "the run changed the root namespace"
    );
}
