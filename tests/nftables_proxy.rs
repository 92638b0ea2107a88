//! Privileged tests of the nftables service proxy through the dplab
//! binary: cluster IPs and node ports carry traffic on the wirings the
//! compatibility table says they work on, the proof shows nftables (and not
//! iptables) translated it, bridge-nf-off is `unreachable` as predicted,
//! and teardown leaves no `dplab` table and no change in the root namespace.

mod common;

use common::*;

/// `dplab up` with the nftables proxy; the run id.
fn up_nftables(topology: &str, datapath: &str) -> String {
    let out = dplab(&[
        "up",
        topology,
        "--datapath",
        datapath,
        "--proxy",
        "nftables",
    ]);
    assert!(
        out.status.success(),
        "up {datapath} --proxy nftables failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .last()
        .expect("run id printed")
        .trim()
        .to_string()
}

/// `dplab test ... --json` parsed (the command must succeed).
fn test_json(run: &str, to: &str, workload: &str) -> serde_json::Value {
    let out = dplab(&[
        "test",
        run,
        "--from",
        "pod-b",
        "--to",
        to,
        "--workload",
        workload,
        "--duration",
        "1s",
        "--json",
    ]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "dplab test {to} failed: {stdout}{}",
        text(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn counter(cell: &serde_json::Value, name: &str) -> i64 {
    cell["proof"][name].as_i64().unwrap_or(0)
}

/// The nftables tables of a namespace (the root one when `ns` is None).
fn nft_tables(ns: Option<&str>) -> String {
    let out = match ns {
        Some(ns) => in_netns(ns, &["nft", "list", "tables"]),
        None => std::process::Command::new("nft")
            .args(["list", "tables"])
            .output()
            .expect("nft runs"),
    };
    assert!(
        out.status.success(),
        "nft list tables: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn cluster_ip_through_nftables(datapath: &str) {
    if !privileged(&format!("nftables proxy on {datapath}")) {
        return;
    }
    let before = root_snapshot();
    let root_tables = nft_tables(None);
    let run = up_nftables(BLOG, datapath);
    let node = format!("dl{run}-node1");
    let node_tables = nft_tables(Some(&node));
    let via_service = test_json(&run, "service:iperf", "tcp-rr");
    let direct = test_json(&run, "pod-a", "tcp-rr");
    down(&run);
    assert!(node_tables.contains("table ip dplab"), "{node_tables}");
    assert_eq!(via_service["status"], "ok", "{via_service}");
    assert_eq!(via_service["target"], "cluster-ip");
    assert!(
        counter(&via_service, "nft_dnat_packets") > 0,
        "{via_service}"
    );
    assert_eq!(counter(&via_service, "iptables_dnat_packets"), 0);
    assert!(
        via_service["metrics"]["transactions_per_s"]["median"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0,
        "{via_service}"
    );
    assert_eq!(direct["status"], "ok", "{direct}");
    assert_eq!(counter(&direct, "nft_dnat_packets"), 0, "{direct}");
    assert_eq!(nft_tables(None), root_tables);
    assert!(!nft_tables(None).contains("dplab"));
    assert_eq!(root_snapshot(), before);
}

#[test]
fn nftables_cluster_ip_on_veth_routed() {
    cluster_ip_through_nftables("veth-routed");
}

#[test]
fn nftables_cluster_ip_on_bridge() {
    cluster_ip_through_nftables("bridge");
}

#[test]
fn nftables_cluster_ip_on_macvlan() {
    cluster_ip_through_nftables("macvlan");
}

/// The blog lab with a node port, measured at all three targets.
const NODE_PORT_TOPOLOGY: &str = r#"
name = "nft-node-port"
service_cidr = "10.96.0.0/16"
[[nodes]]
name = "node1"
pod_cidr = "192.168.10.0/24"
routed_gateway = "169.254.10.24"
[[pods]]
name = "pod-a"
node = "node1"
address = "192.168.10.10"
[[pods]]
name = "pod-b"
node = "node1"
address = "192.168.10.11"
[[services]]
name = "iperf"
cluster_ip = "10.96.0.100"
port = 5201
node_port = 30201
backends = ["pod-a"]
[matrix]
datapaths = ["veth-routed", "bridge", "macvlan"]
targets = ["pod-ip", "cluster-ip", "node-port"]
workloads = ["tcp-rr"]
client = "pod-b"
server = "pod-a"
service = "iperf"
duration = "1s"
repetitions = 1
"#;

fn run_matrix(dir: &std::path::Path, args: &[&str]) -> (std::process::Output, serde_json::Value) {
    let out_dir = dir.join("out");
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--out", out_dir.to_str().unwrap()]);
    let out = dplab(&all);
    let json = std::fs::read_to_string(out_dir.join("results.json"))
        .unwrap_or_else(|e| panic!("no results.json ({e}): {}", text(&out.stderr)));
    (out, serde_json::from_str(&json).unwrap())
}

#[test]
fn nftables_node_port_and_cluster_ip_in_a_run() {
    if !privileged("nftables node ports") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let topology = dir.path().join("nft-node-port.toml");
    std::fs::write(&topology, NODE_PORT_TOPOLOGY).unwrap();
    let (out, results) = run_matrix(
        dir.path(),
        &[
            topology.to_str().unwrap(),
            "--proxies",
            "nftables",
            "--duration",
            "1s",
        ],
    );
    let cells = results["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 9, "{results}");
    for cell in cells {
        assert_eq!(cell["status"], "ok", "{cell}");
        let translated = counter(cell, "nft_dnat_packets");
        match cell["target"].as_str().unwrap() {
            "pod-ip" => assert_eq!(translated, 0, "{cell}"),
            _ => {
                assert_eq!(cell["service_proxy"], "nftables", "{cell}");
                assert!(translated > 0, "{cell}");
                assert_eq!(counter(cell, "iptables_dnat_packets"), 0, "{cell}");
            }
        }
    }
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn nftables_on_bridge_nf_off_is_unreachable_as_predicted() {
    if !privileged("nftables on bridge-nf-off") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, results) = run_matrix(
        dir.path(),
        &[
            BLOG,
            "--only",
            "bridge-nf-off",
            "--proxies",
            "nftables",
            "--duration",
            "1s",
            "--repetitions",
            "1",
        ],
    );
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        text(&out.stderr)
    );
    let cells = results["cells"].as_array().unwrap();
    let cluster = cells
        .iter()
        .find(|c| c["target"] == "cluster-ip")
        .expect("a cluster-ip cell");
    assert_eq!(cluster["service_proxy"], "nftables", "{cluster}");
    assert_eq!(cluster["status"], "unreachable", "{cluster}");
    assert!(
        cluster["reason"]
            .as_str()
            .unwrap_or("")
            .contains("reverse NAT"),
        "{cluster}"
    );
    let pod = cells.iter().find(|c| c["target"] == "pod-ip").unwrap();
    assert_eq!(pod["status"], "ok", "{pod}");
}
