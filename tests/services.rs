//! Privileged tests of the service proxies through `dplab up` / `dplab
//! test`: the cluster IP carries traffic, the proof counters say which proxy
//! translated it, and teardown leaves no rule, program or pin behind.

mod common;

use common::*;

/// `dplab test ... --json` parsed.
fn test_cell(run: &str, to: &str, workload: &str) -> serde_json::Value {
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
        "dplab test {to} {workload} failed: {stdout}{}",
        text(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn proof(cell: &serde_json::Value, name: &str) -> i64 {
    cell["proof"][name]
        .as_i64()
        .unwrap_or_else(|| panic!("no proof {name} in {cell}"))
}

/// Program ids the kernel has loaded (bpftool), to see ours come and go.
fn bpf_programs() -> Vec<String> {
    let out = std::process::Command::new("bpftool")
        .args(["prog", "show"])
        .output()
        .expect("bpftool runs (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "bpftool prog show: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .filter(|l| l.contains(": sched_cls"))
        .map(str::to_string)
        .collect()
}

#[test]
fn iptables_proxy_translates_cluster_ip_and_proves_it() {
    if !privileged("iptables proxy via dplab test") {
        return;
    }
    let run = up(BLOG, "bridge").expect("up");
    let via_service = test_cell(&run, "service:iperf", "tcp-stream");
    let direct = test_cell(&run, "pod-a", "tcp-stream");
    down(&run);
    assert_eq!(via_service["target"], "cluster-ip");
    assert!(proof(&via_service, "iptables_dnat_packets") > 0);
    assert!(
        via_service["metrics"]["throughput_gbps"]["median"]
            .as_f64()
            .unwrap()
            > 0.1
    );
    assert_eq!(proof(&direct, "iptables_dnat_packets"), 0);
}

#[test]
fn ebpf_proxy_translates_and_redirects_and_leaves_nothing() {
    if !skip::ebpf("eBPF proxy") {
        return;
    }
    let programs_before = bpf_programs();
    let before = root_snapshot();
    let run = up(BLOG, "veth-ebpf").expect("up");
    assert!(
        std::path::Path::new("/sys/fs/bpf/dplab")
            .join(&run)
            .exists(),
        "maps are pinned per run"
    );
    let via_service = test_cell(&run, "service:iperf", "tcp-stream");
    let direct = test_cell(&run, "pod-a", "tcp-rr");
    let node = format!("dl{run}-node1");
    let rules = text(&in_netns(&node, &["iptables-save", "-t", "nat"]).stdout);
    down(&run);
    assert!(proof(&via_service, "bpf_service_hits") > 0, "{via_service}");
    assert!(proof(&via_service, "bpf_rev_nat") > 0);
    assert!(proof(&via_service, "bpf_redirected") > 0);
    assert_eq!(proof(&via_service, "iptables_dnat_packets"), 0);
    assert!(
        !rules.contains("DPLAB-SEP"),
        "eBPF labs install no DNAT rules"
    );
    assert_eq!(proof(&direct, "bpf_service_hits"), 0);
    assert!(proof(&direct, "bpf_redirected") > 0);
    assert!(
        !std::path::Path::new("/sys/fs/bpf/dplab")
            .join(&run)
            .exists(),
        "pins left"
    );
    // Detaching is asynchronous only in the kernel's RCU sense; give it a moment.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let programs_after = bpf_programs();
    let new: Vec<&String> = programs_after
        .iter()
        .filter(|p| !programs_before.contains(p))
        .collect();
    assert!(new.is_empty(), "programs left loaded: {new:?}");
    assert_eq!(root_snapshot(), before);
}

#[test]
fn ipvlan_l2_cluster_ip_through_iptables() {
    ipvlan_cluster_ip("ipvlan-l2", "iptables", "iptables_dnat_packets");
}

#[test]
fn ipvlan_l3_cluster_ip_through_iptables() {
    ipvlan_cluster_ip("ipvlan-l3", "iptables", "iptables_dnat_packets");
}

#[test]
fn ipvlan_ebpf_cluster_ip_through_ebpf() {
    ipvlan_cluster_ip("ipvlan-ebpf", "ebpf", "bpf_service_hits");
}

/// The cluster IP works on an ipvlan datapath, the named counter proves
/// the proxy, the pod IP is not translated, and teardown leaves nothing.
fn ipvlan_cluster_ip(datapath: &str, proxy: &str, counter: &str) {
    if !privileged(datapath) {
        return;
    }
    let before = root_snapshot();
    let test = format!("{datapath} services");
    let Some(run) = up_or_skip(&test, datapath, proxy) else {
        return;
    };
    let via_service = test_cell(&run, "service:iperf", "tcp-stream");
    let direct = test_cell(&run, "pod-a", "tcp-rr");
    down(&run);
    assert!(proof(&via_service, counter) > 0, "{via_service}");
    assert_eq!(proof(&direct, counter), 0);
    if counter != "iptables_dnat_packets" {
        assert_eq!(proof(&via_service, "iptables_dnat_packets"), 0);
    }
    assert!(!std::path::Path::new("/sys/fs/bpf/dplab")
        .join(&run)
        .exists());
    assert_eq!(root_snapshot(), before);
}

// ---- ipvs ------------------------------------------------------------------

#[test]
fn ipvs_veth_routed_cluster_ip() {
    ipvs_cluster_ip("veth-routed");
}

#[test]
fn ipvs_ipvlan_l2_cluster_ip() {
    ipvs_cluster_ip("ipvlan-l2");
}

#[test]
fn ipvs_veth_routed_node_port() {
    ipvs_node_port("veth-routed");
}

#[test]
fn ipvs_ipvlan_l2_node_port() {
    ipvs_node_port("ipvlan-l2");
}

/// Through `dplab up --proxy ipvs`: the node holds the cluster IP on its
/// dummy link and a NAT virtual server for it, iptables only masquerades,
/// the cluster IP carries traffic and `ipvs_packets` proves it, the pod IP
/// moves no IPVS counter, and teardown leaves nothing.
fn ipvs_cluster_ip(datapath: &str) {
    let test = format!("ipvs on {datapath}");
    if !privileged(&test) {
        return;
    }
    let before = root_snapshot();
    let Some(run) = up_or_skip(&test, datapath, "ipvs") else {
        return;
    };
    let node = format!("dl{run}-node1");
    let dummy = format!("dl{run}-ipvs0");
    let addresses = text(&in_netns(&node, &["ip", "-o", "addr", "show", "dev", &dummy]).stdout);
    let servers = text(&in_netns(&node, &["ipvsadm", "-S", "-n"]).stdout);
    let nat = text(&in_netns(&node, &["iptables-save", "-t", "nat"]).stdout);
    let via_service = test_cell(&run, "service:iperf", "tcp-stream");
    let direct = test_cell(&run, "pod-a", "tcp-rr");
    down(&run);
    assert!(addresses.contains("inet 10.96.0.100/32"), "{addresses}");
    assert!(
        servers.contains("-A -t 10.96.0.100:5201 -s rr")
            && servers.contains("-a -t 10.96.0.100:5201 -r 192.168.10.10:5201 -m"),
        "{servers}"
    );
    assert!(
        nat.contains("-j MASQUERADE") && !nat.contains("DNAT"),
        "{nat}"
    );
    assert!(proof(&via_service, "ipvs_packets") > 0, "{via_service}");
    assert_eq!(proof(&via_service, "iptables_dnat_packets"), 0);
    assert_eq!(proof(&direct, "ipvs_packets"), 0, "{direct}");
    assert_eq!(root_snapshot(), before);
}

/// `dplab run` of the blog lab given a node port, through IPVS: the
/// cluster-ip and node-port cells are ok and `ipvs_packets` proves both.
fn ipvs_node_port(datapath: &str) {
    let test = format!("ipvs node port on {datapath}");
    if !privileged(&test) {
        return;
    }
    let before = root_snapshot();
    let dir = tempfile::tempdir().unwrap();
    let blog = std::fs::read_to_string(root().join(BLOG)).unwrap();
    let with_port = blog
        .replace(
            "protocol = \"tcp\"\n",
            "protocol = \"tcp\"\nnode_port = 30520\n",
        )
        .replace(
            "targets = [\"pod-ip\", \"cluster-ip\"]",
            "targets = [\"cluster-ip\", \"node-port\"]",
        );
    assert!(
        with_port.contains("node_port = 30520") && with_port.contains("\"node-port\"]"),
        "the blog topology changed shape: update this test"
    );
    let topology = dir.path().join("node-port.toml");
    std::fs::write(&topology, with_port).unwrap();
    let out_dir = dir.path().join("out");
    let out = dplab(&[
        "run",
        topology.to_str().unwrap(),
        "--only",
        datapath,
        "--proxies",
        "ipvs",
        "--duration",
        "1s",
        "--repetitions",
        "1",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("results.json"))
            .unwrap_or_else(|e| panic!("no results.json ({e}): {}", text(&out.stderr))),
    )
    .unwrap();
    let cells = results["cells"].as_array().expect("cells");
    assert_eq!(cells.len(), 2, "{cells:?}");
    if cells.iter().all(|c| c["status"] == "skipped") {
        let reason = cells[0]["reason"].as_str().unwrap_or("").to_string();
        assert!(
            unsupported_reason(&reason).is_some(),
            "skipped for a reason that is no missing capability: {reason}"
        );
        skip(&test, &[datapath, "ipvs"], &reason);
        return;
    }
    for target in ["cluster-ip", "node-port"] {
        let cell = cells
            .iter()
            .find(|c| c["target"] == target)
            .unwrap_or_else(|| panic!("no {target} cell in {cells:?}"));
        assert_eq!(cell["status"], "ok", "{cell}");
        assert_eq!(cell["service_proxy"], "ipvs", "{cell}");
        assert!(proof(cell, "ipvs_packets") > 0, "{cell}");
        assert_eq!(proof(cell, "iptables_dnat_packets"), 0, "{cell}");
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(root_snapshot(), before);
}

// ---- socket-lb -------------------------------------------------------------

/// socket-lb on ipvlan-l2: the cgroup hooks rewrite the destination at
/// connect(), so the cluster IP works on a child-link datapath without any
/// NAT, and `socklb_rewrites` proves it. Runs in the Debian guest
/// (tests/guest/ci.sh) once the socket-lb proxy is part of dplab.
#[test]
fn socket_lb_ipvlan_l2_cluster_ip() {
    let test = "socket-lb on ipvlan-l2";
    if !privileged(test) {
        return;
    }
    let before = root_snapshot();
    let Some(run) = up_or_skip(test, "ipvlan-l2", "socket-lb") else {
        return;
    };
    let nat = text(&in_netns(&format!("dl{run}-node1"), &["iptables-save", "-t", "nat"]).stdout);
    let via_service = test_cell(&run, "service:iperf", "tcp-stream");
    let direct = test_cell(&run, "pod-a", "tcp-rr");
    down(&run);
    assert!(proof(&via_service, "socklb_rewrites") > 0, "{via_service}");
    assert_eq!(proof(&direct, "socklb_rewrites"), 0, "{direct}");
    assert!(!nat.contains("DNAT"), "socket-lb labs NAT nothing: {nat}");
    assert_eq!(root_snapshot(), before);
}
