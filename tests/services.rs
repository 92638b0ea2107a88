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
    // The programs' verdicts reach the proof: drops (none here) and the
    // packets left to the node's stack (a stream's ACKs reach the client).
    assert_eq!(proof(&via_service, "bpf_dropped"), 0, "{via_service}");
    assert!(proof(&via_service, "bpf_passed") >= 0, "{via_service}");
    assert_eq!(proof(&via_service, "iptables_dnat_packets"), 0);
    assert!(
        !rules.contains("DPLAB-SEP"),
        "eBPF labs install no DNAT rules"
    );
    assert_eq!(proof(&direct, "bpf_service_hits"), 0);
    assert!(proof(&direct, "bpf_redirected") > 0);
    assert_eq!(proof(&direct, "bpf_dropped"), 0, "{direct}");
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
    let Some(run) = up_or_skip(&test, BLOG, datapath, proxy) else {
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
fn ipvs_veth_routed_cluster_ip_and_node_port() {
    ipvs_services("veth-routed", "169.254.10.24");
}

#[test]
fn ipvs_ipvlan_l2_cluster_ip_and_node_port() {
    ipvs_services("ipvlan-l2", "192.168.10.1");
}

const NODE_PORT: &str = "30520";

/// The blog topology with a node port on its service, written into `dir`.
fn blog_with_node_port(dir: &std::path::Path) -> String {
    let blog = std::fs::read_to_string(root().join(BLOG)).unwrap();
    let text = blog.replace(
        "protocol = \"tcp\"\n",
        &format!("protocol = \"tcp\"\nnode_port = {NODE_PORT}\n"),
    );
    assert_ne!(
        text, blog,
        "the blog topology changed shape: update this test"
    );
    let path = dir.join("blog-node-port.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Through `dplab up --proxy ipvs`: the node holds the cluster IP on its
/// dummy link, a NAT virtual server for the cluster IP and one for the
/// node port on `node_ip`, and iptables rules that only masquerade; the
/// cluster IP and the node port carry traffic and the IPVS counters prove
/// it, the pod IP moves none, and teardown leaves nothing.
fn ipvs_services(datapath: &str, node_ip: &str) {
    let test = format!("ipvs on {datapath}");
    if !privileged(&test) {
        return;
    }
    let before = root_snapshot();
    let dir = tempfile::tempdir().unwrap();
    let topology = blog_with_node_port(dir.path());
    let Some(run) = up_or_skip(&test, &topology, datapath, "ipvs") else {
        return;
    };
    let node = format!("dl{run}-node1");
    let dummy = format!("dl{run}-ipvs0");
    let addresses = text(&in_netns(&node, &["ip", "-o", "addr", "show", "dev", &dummy]).stdout);
    let servers = text(&in_netns(&node, &["ipvsadm", "-S", "-n"]).stdout);
    let nat = text(&in_netns(&node, &["iptables-save", "-t", "nat"]).stdout);
    let via_service = test_cell(&run, "service:iperf", "tcp-stream");
    let direct = test_cell(&run, "pod-a", "tcp-rr");
    let node_port = format!("{node_ip}:{NODE_PORT}");
    let through_node_port = tcp_exchange(&run, node_ip, NODE_PORT);
    let node_port_stats = node_port_counted(&node, &node_port);
    down(&run);
    assert!(addresses.contains("inet 10.96.0.100/32"), "{addresses}");
    for line in [
        "-A -t 10.96.0.100:5201 -s rr".to_string(),
        "-a -t 10.96.0.100:5201 -r 192.168.10.10:5201 -m".to_string(),
        format!("-A -t {node_port} -s rr"),
        format!("-a -t {node_port} -r 192.168.10.10:5201 -m"),
    ] {
        assert!(servers.contains(&line), "no \"{line}\" in {servers}");
    }
    assert!(
        nat.contains("-j MASQUERADE") && !nat.contains("DNAT"),
        "{nat}"
    );
    assert!(proof(&via_service, "ipvs_packets") > 0, "{via_service}");
    assert_eq!(proof(&via_service, "iptables_dnat_packets"), 0);
    assert_eq!(proof(&direct, "ipvs_packets"), 0, "{direct}");
    if let Err(e) = through_node_port {
        panic!("node port {node_port}: {e}");
    }
    if let Err(stats) = node_port_stats {
        panic!("the node port's virtual server counted nothing: {stats}");
    }
    assert_eq!(root_snapshot(), before);
}

/// apply() as kube-proxy syncs: a new service (with a node port) and then
/// a removed endpoint change the running lab's dummy addresses, virtual
/// servers and masquerade rules, and the new service carries traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipvs_applies_service_changes() {
    use dplab::kinds::{Datapath, ProxyKind};
    use dplab::service::ServiceChange;
    let test = "ipvs apply";
    if !privileged(test) {
        return;
    }
    let before = root_snapshot();
    let plan = dplab::topology::load(&root().join(BLOG)).unwrap();
    let run = dplab::names::RunId::fresh();
    let up = dplab::lab::Lab::up(&plan, Datapath::VethRouted, ProxyKind::Ipvs, None, run).await;
    let mut lab = match up {
        Ok(lab) => lab,
        Err(e) if e.is_unsupported() => {
            skip(test, &["veth-routed", "ipvs"], &e.to_string());
            return;
        }
        Err(e) => panic!("up: {e}"),
    };
    let mut web = lab.plan.services[0].clone();
    web.name = "web".into();
    web.cluster_ip = "10.96.0.200".parse().unwrap();
    web.port = 80;
    web.node_port = Some(30580);
    web.backends = vec![0, 1];
    lab.plan.services.push(web.clone());
    apply(&mut lab, ServiceChange::AddService(web));
    let added = observe(&lab);
    lab.plan.services[1].backends = vec![0];
    apply(
        &mut lab,
        ServiceChange::RemoveEndpoint { service: 1, pod: 1 },
    );
    let removed = observe(&lab);
    let exchange = tcp_exchange(lab.run.as_str(), "10.96.0.200", "80");
    let report = lab.down();
    assert!(report.is_clean(), "{:?}", report.errors);
    assert!(added.contains("inet 10.96.0.200/32"), "{added}");
    for line in [
        "-A -t 10.96.0.200:80 -s rr",
        "-a -t 10.96.0.200:80 -r 192.168.10.10:5201 -m",
        "-a -t 10.96.0.200:80 -r 192.168.10.11:5201 -m",
        "-A -t 169.254.10.24:30580 -s rr",
        "-a -t 169.254.10.24:30580 -r 192.168.10.11:5201 -m",
        "-s 192.168.10.11/32 -d 192.168.10.11/32",
        "--dport 30580",
    ] {
        assert!(added.contains(line), "no \"{line}\" after adding: {added}");
    }
    for line in [
        "-a -t 10.96.0.200:80 -r 192.168.10.11:5201",
        "-a -t 169.254.10.24:30580 -r 192.168.10.11:5201",
        "-s 192.168.10.11/32 -d 192.168.10.11/32",
    ] {
        assert!(
            !removed.contains(line),
            "\"{line}\" left after removing: {removed}"
        );
    }
    assert!(removed.contains("-a -t 10.96.0.200:80 -r 192.168.10.10:5201 -m"));
    if let Err(e) = exchange {
        panic!("the added service carries no traffic: {e}");
    }
    assert_eq!(root_snapshot(), before);
}

/// Applies one change to the lab's proxy; `lab.plan` is already the plan
/// after it.
fn apply(lab: &mut dplab::lab::Lab, change: dplab::service::ServiceChange) {
    let net = dplab::datapath::LabNet::open(&lab.run, &lab.plan, &lab.ledger).expect("netlink");
    lab.proxy
        .apply(&net, lab.datapath, &change)
        .unwrap_or_else(|e| panic!("apply {change:?}: {e}"));
}

/// The node's dummy addresses, `ipvsadm -S` and nat rules, as one text.
fn observe(lab: &dplab::lab::Lab) -> String {
    let node = lab.run.netns("node1");
    let dummy = lab.run.link("ipvs0");
    [
        vec!["ip", "-o", "addr", "show", "dev", dummy.as_str()],
        vec!["ipvsadm", "-S", "-n"],
        vec!["iptables-save", "-t", "nat"],
    ]
    .iter()
    .map(|args| text(&in_netns(&node, args).stdout))
    .collect()
}

/// One TCP exchange from pod-b to `ip:port`, answered by pod-a on 5201
/// (no external tool: iperf3 cannot make its stream files on the guest's
/// shared /tmp).
fn tcp_exchange(run: &str, ip: &str, port: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::time::{Duration, Instant};
    let listener = dplab::netns::run_in(&format!("dl{run}-pod-a"), || {
        TcpListener::bind("0.0.0.0:5201")
    })
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("listen in pod-a: {e}"))?;
    listener.set_nonblocking(true).unwrap();
    let server = std::thread::spawn(move || -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let (mut conn, _) = loop {
            match listener.accept() {
                Ok(c) => break c,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return Err("nothing arrived at pod-a".into());
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(format!("accept: {e}")),
            }
        };
        conn.set_nonblocking(false).map_err(|e| e.to_string())?;
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf)
            .map_err(|e| format!("server read: {e}"))?;
        conn.write_all(&buf)
            .map_err(|e| format!("server write: {e}"))
    });
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    let client = dplab::netns::run_in(&format!("dl{run}-pod-b"), || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(10))
    })
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("connect from pod-b: {e}"));
    let echoed = client.and_then(|mut c| {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(b"dplab")
            .map_err(|e| format!("client write: {e}"))?;
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf)
            .map_err(|e| format!("client read: {e}"))?;
        Ok(buf)
    });
    let served = server
        .join()
        .map_err(|_| "server thread panicked".to_string())?;
    match (echoed, served) {
        (Ok(buf), Ok(())) if &buf == b"dplab" => Ok(()),
        (Ok(buf), Ok(())) => Err(format!("echo came back as {buf:?}")),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Waits until virtual server `vs` of namespace `ns` has counted packets:
/// `ipvsadm --stats` shows the rate estimator's copy, refreshed every 2 s.
fn node_port_counted(ns: &str, vs: &str) -> Result<(), String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let listing =
            text(&in_netns(ns, &["ipvsadm", "-L", "-n", "--stats", "--exact", "-t", vs]).stdout);
        // TCP  <address>  Conns  InPkts ...
        let in_packets: i64 = listing
            .lines()
            .find(|l| l.starts_with("TCP"))
            .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
            .unwrap_or(0);
        if in_packets > 0 {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(listing);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
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
    let Some(run) = up_or_skip(test, BLOG, "ipvlan-l2", "socket-lb") else {
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
