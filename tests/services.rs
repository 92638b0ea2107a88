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
        .output();
    match out {
        Ok(o) => text(&o.stdout)
            .lines()
            .filter(|l| l.contains(": sched_cls"))
            .map(str::to_string)
            .collect(),
        Err(_) => Vec::new(),
    }
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
    if !privileged("eBPF proxy") {
        return;
    }
    if let Some(reason) = dplab::ebpf::unavailable_reason() {
        eprintln!("SKIPPED eBPF proxy: {reason}");
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

/// `dplab up` of a datapath the kernel may lack: None (and a loud skip) when
/// it does.
fn up_or_skip(datapath: &str) -> Option<String> {
    match up(BLOG, datapath) {
        Ok(run) => Some(run),
        Err(stderr)
            if stderr.contains("kernel has no")
                || stderr.contains("eBPF datapaths unavailable") =>
        {
            let reason = stderr.lines().last().unwrap_or("").to_string();
            eprintln!("SKIPPED {datapath} services: {reason}");
            None
        }
        Err(stderr) => panic!("up {datapath} failed: {stderr}"),
    }
}

#[test]
fn ipvlan_l2_cluster_ip_through_iptables() {
    ipvlan_cluster_ip("ipvlan-l2", "iptables_dnat_packets");
}

#[test]
fn ipvlan_l3_cluster_ip_through_iptables() {
    ipvlan_cluster_ip("ipvlan-l3", "iptables_dnat_packets");
}

#[test]
fn ipvlan_ebpf_cluster_ip_through_ebpf() {
    ipvlan_cluster_ip("ipvlan-ebpf", "bpf_service_hits");
}

/// The cluster IP works on an ipvlan datapath, the named counter proves
/// the proxy, the pod IP is not translated, and teardown leaves nothing.
fn ipvlan_cluster_ip(datapath: &str, counter: &str) {
    if !privileged(datapath) {
        return;
    }
    let before = root_snapshot();
    let Some(run) = up_or_skip(datapath) else {
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
