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

// ---- veth-ebpf across nodes --------------------------------------------

/// Skips loudly when this machine cannot run eBPF datapaths.
fn ebpf_here(test: &str) -> bool {
    if !privileged(test) {
        return false;
    }
    match dplab::ebpf::unavailable_reason() {
        Some(reason) => {
            eprintln!("SKIPPED {test}: {reason}");
            false
        }
        None => true,
    }
}

/// The pod in namespace `ns` connects to `service`, whose only backend is
/// the pod itself, and its own server answers: the address the server saw
/// the connection come from, once an echo went both ways.
fn hairpin_peer(ns: &str, service: std::net::SocketAddr, port: u16) -> Result<String, String> {
    use std::io::{Read, Write};
    use std::time::Duration;
    let talk = move || -> std::io::Result<String> {
        let listener = std::net::TcpListener::bind(("0.0.0.0", port))?;
        let mut client = std::net::TcpStream::connect_timeout(&service, Duration::from_secs(3))?;
        client.set_read_timeout(Some(Duration::from_secs(3)))?;
        let (mut server, peer) = listener.accept()?;
        server.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut buf = [0u8; 4];
        client.write_all(b"ping")?;
        server.read_exact(&mut buf)?;
        server.write_all(b"pong")?;
        client.read_exact(&mut buf)?;
        if &buf != b"pong" {
            return Err(std::io::Error::other("echo garbled"));
        }
        Ok(peer.ip().to_string())
    };
    dplab::netns::run_in(ns, talk)
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// veth-ebpf with the eBPF proxy on two nodes: a cluster IP whose backend
/// is on the other node (translated at the client's node, reverse-translated
/// there, handed to the pods by eBPF), and a pod reaching that service from
/// the backend itself (hairpin).
fn veth_ebpf_two_nodes(overlay: &str) {
    let test = format!("veth-ebpf on {overlay}");
    if !ebpf_here(&test) {
        return;
    }
    let before = root_snapshot();
    let dir = tempfile::tempdir().unwrap();
    let run = up(&topology(overlay, dir.path()), "veth-ebpf").expect("up");
    let ns = |name: &str| format!("dl{run}-{name}");
    // service web 10.96.0.80:80 -> pod-b2:5201 on node-b; pod-a1 on node-a
    let out = dplab(&[
        "test",
        &run,
        "--from",
        "pod-a1",
        "--to",
        "service:web",
        "--workload",
        "tcp-rr",
        "--duration",
        "1s",
        "--json",
    ]);
    let hairpin = hairpin_peer(&ns("pod-b2"), "10.96.0.80:80".parse().unwrap(), 5201);
    let pinged = ping(&ns("pod-a1"), "10.244.2.3");
    down(&run);
    assert!(
        out.status.success(),
        "{overlay}: dplab test failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let cell: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let proof = |name: &str| cell["proof"][name].as_i64().unwrap_or(-1);
    assert!(proof("bpf_service_hits") > 0, "{overlay}: {cell}");
    assert!(proof("bpf_rev_nat") > 0, "{overlay}: {cell}");
    assert!(proof("bpf_redirected") > 0, "{overlay}: {cell}");
    assert_eq!(proof("iptables_dnat_packets"), 0, "{overlay}: {cell}");
    assert_eq!(proof("bpf_dropped"), 0, "{overlay}: {cell}");
    if overlay == "vxlan" {
        assert!(proof("vxlan_tx_packets") > 0, "{overlay}: {cell}");
    }
    assert_eq!(
        hairpin,
        Ok("169.254.42.1".to_string()),
        "{overlay}: hairpin through the service"
    );
    assert!(pinged, "{overlay}: ICMP across nodes with host routing");
    assert_eq!(root_snapshot(), before);
}

#[test]
fn veth_ebpf_routed_cross_node_cluster_ip_and_hairpin() {
    veth_ebpf_two_nodes("routed");
}

#[test]
fn veth_ebpf_vxlan_cross_node_cluster_ip_and_hairpin() {
    veth_ebpf_two_nodes("vxlan");
}

/// Two nodes with node ports: one backed on node-b, one on node-a.
const NODE_PORTS: &str = r#"
name = "node-ports"
service_cidr = "10.96.0.0/16"
[underlay]
cidr = "10.0.0.0/24"
[[nodes]]
name = "node-a"
pod_cidr = "10.244.1.0/24"
[[nodes]]
name = "node-b"
pod_cidr = "10.244.2.0/24"
[[pods]]
name = "pod-a1"
node = "node-a"
[[pods]]
name = "pod-a2"
node = "node-a"
[[pods]]
name = "pod-b2"
node = "node-b"
[[services]]
name = "on-b"
cluster_ip = "10.96.0.80"
port = 80
target_port = 5201
node_port = 30080
backends = ["pod-b2"]
[[services]]
name = "on-a"
cluster_ip = "10.96.0.81"
port = 80
target_port = 5201
node_port = 30081
backends = ["pod-a2"]
[matrix]
overlays = ["OVERLAY"]
datapaths = ["veth-ebpf", "veth-routed"]
service_proxies = ["ebpf"]
workloads = ["tcp-rr"]
[[matrix.paths]]
client = "pod-a1"
server = "pod-b2"
target = "node-port"
via = "node-b"
[[matrix.paths]]
client = "pod-a1"
server = "pod-a2"
target = "node-port"
via = "node-b"
[[matrix.paths]]
client = "node-a"
server = "pod-b2"
target = "node-port"
via = "node-b"
"#;

/// eBPF node ports reached from the other node, with veth-ebpf's host
/// routing and with the pod programs of veth-routed: to a backend on the
/// node port's node (DNAT at its edge), to one back on the client's node
/// (DNAT and SNAT to the node's address), from a pod and from a node.
fn ebpf_node_ports(overlay: &str) {
    let test = format!("eBPF node ports on {overlay}");
    if !ebpf_here(&test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let topo = dir.path().join("node-ports.toml");
    std::fs::write(&topo, NODE_PORTS.replace("OVERLAY", overlay)).unwrap();
    let out_dir = dir.path().join("out");
    let out = dplab(&[
        "run",
        topo.to_str().unwrap(),
        "--duration",
        "1s",
        "--repetitions",
        "1",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
            .unwrap();
    let cells = results["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 6);
    for c in cells {
        let what = format!(
            "{overlay} {} {} > {}",
            c["datapath"], c["client"], c["server"]
        );
        assert_eq!(c["status"], "ok", "{what}: {}", c["reason"]);
        let proof = |name: &str| c["proof"][name].as_i64().unwrap_or(-1);
        assert!(proof("bpf_service_hits") > 0, "{what}: {c}");
        assert_eq!(proof("iptables_dnat_packets"), 0, "{what}: {c}");
        assert_eq!(proof("bpf_dropped"), 0, "{what}: {c}");
        let snat = c["server"] == "pod-a2";
        assert_eq!(
            proof("bpf_snat") > 0,
            snat,
            "{what}: SNAT only to another node: {c}"
        );
        assert_eq!(proof("bpf_forwarded") > 0, snat, "{what}: {c}");
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn ebpf_node_ports_routed() {
    ebpf_node_ports("routed");
}

#[test]
fn ebpf_node_ports_vxlan() {
    ebpf_node_ports("vxlan");
}
