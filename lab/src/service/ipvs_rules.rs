//! What the ipvs proxy writes into a node namespace, as text: the
//! `ipvsadm -R` batch of virtual and real servers, and the few iptables NAT
//! rules kube-proxy's IPVS mode keeps for masquerading. Also reads the
//! virtual servers' packet counters back. No kernel calls here, so unit
//! tests can check all of it; `ipvs.rs` loads it.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::ServiceChange;
use crate::topology::{Plan, Protocol, ServicePlan};

/// Mark that asks POSTROUTING to masquerade (kube-proxy's 0x4000).
const MASQ_MARK: &str = "0x4000/0x4000";

/// Last rule of DPLAB-SERVICES, as kube-proxy's KUBE-NODE-PORT jump: node
/// ports on any of the node's own addresses.
const NODEPORTS_JUMP: &str = "-A DPLAB-SERVICES -m addrtype --dst-type LOCAL -m comment --comment \"dplab node ports\" -j DPLAB-NODEPORTS";

/// One virtual server: protocol flag of ipvsadm (`-t`/`-u`) and address.
fn vs_flag(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "-t",
        Protocol::Udp => "-u",
    }
}

/// The virtual servers of one service: its cluster IP and port, plus its
/// node port on each of `node_addresses` (kube-proxy binds node ports to
/// every node IP).
pub fn virtual_servers(svc: &ServicePlan, node_addresses: &[Ipv4Addr]) -> Vec<String> {
    let mut out = vec![format!("{}:{}", svc.cluster_ip, svc.port)];
    if let Some(node_port) = svc.node_port {
        out.extend(node_addresses.iter().map(|a| format!("{a}:{node_port}")));
    }
    out
}

/// `ipvsadm -R` lines that create one service: a round-robin virtual
/// server per address and one masquerading (NAT) real server per endpoint.
fn render_service(plan: &Plan, svc: &ServicePlan, node_addresses: &[Ipv4Addr], out: &mut String) {
    let flag = vs_flag(svc.protocol);
    for vs in virtual_servers(svc, node_addresses) {
        writeln!(out, "-A {flag} {vs} -s rr").unwrap();
        for &pod in &svc.backends {
            let ep = plan.pods[pod].address;
            writeln!(out, "-a {flag} {vs} -r {ep}:{} -m -w 1", svc.target_port).unwrap();
        }
    }
}

/// The whole `ipvsadm -R` batch of a node.
pub fn ipvs_batch(plan: &Plan, node_addresses: &[Ipv4Addr]) -> String {
    let mut out = String::new();
    for svc in &plan.services {
        render_service(plan, svc, node_addresses, &mut out);
    }
    out
}

/// The `ipvsadm -R` batch of one change.
pub fn ipvs_change(plan: &Plan, node_addresses: &[Ipv4Addr], change: &ServiceChange) -> String {
    let mut out = String::new();
    match change {
        ServiceChange::AddService(svc) => render_service(plan, svc, node_addresses, &mut out),
        ServiceChange::RemoveEndpoint { service, pod } => {
            let svc = &plan.services[*service];
            let flag = vs_flag(svc.protocol);
            let ep = plan.pods[*pod].address;
            for vs in virtual_servers(svc, node_addresses) {
                writeln!(out, "-d {flag} {vs} -r {ep}:{}", svc.target_port).unwrap();
            }
        }
    }
    out
}

/// The iptables-restore input (nat table) of a node: kube-proxy's IPVS-mode
/// masquerade rules. IPVS itself translates; these only make the replies
/// come back through the node where they must:
/// - hairpin: a pod reaching itself through its service (KUBE-LOOP-BACK);
/// - node ports (KUBE-NODE-PORT), as externalTrafficPolicy=Cluster;
/// - clients outside every pod CIDR, e.g. a node's own network
///   (kube-proxy with --cluster-cidr); a node that sends from its cluster
///   IP would otherwise get the replies delivered to another node's
///   kube-ipvs0;
/// - with `masquerade_pods`, pod-to-pod through the node on the child-link
///   datapaths, whose replies would otherwise stay inside the driver.
pub fn masquerade_rules(plan: &Plan, node: usize, masquerade_pods: bool) -> String {
    let mut chains = String::new();
    let mut rules = String::new();
    for name in [
        "DPLAB-SERVICES",
        "DPLAB-NODEPORTS",
        "DPLAB-CLUSTER-IP",
        "DPLAB-MARK-MASQ",
        "DPLAB-POSTROUTING",
    ] {
        writeln!(chains, ":{name} - [0:0]").unwrap();
    }
    for (from, to, comment) in [
        ("PREROUTING", "DPLAB-SERVICES", "dplab service portals"),
        ("OUTPUT", "DPLAB-SERVICES", "dplab service portals"),
        (
            "POSTROUTING",
            "DPLAB-POSTROUTING",
            "dplab postrouting rules",
        ),
    ] {
        writeln!(
            rules,
            "-A {from} -m comment --comment \"{comment}\" -j {to}"
        )
        .unwrap();
    }
    writeln!(rules, "-A DPLAB-MARK-MASQ -j MARK --set-xmark {MASQ_MARK}").unwrap();
    writeln!(
        rules,
        "-A DPLAB-POSTROUTING -m mark --mark {MASQ_MARK} -m comment --comment \"dplab node-port and off-cluster traffic\" -j MASQUERADE"
    )
    .unwrap();
    if masquerade_pods {
        let cidr = plan.nodes[node].pod_cidr;
        writeln!(
            rules,
            "-A DPLAB-POSTROUTING -s {cidr} -d {cidr} -m comment --comment \"dplab pod-to-pod via node: replies come back through it\" -j MASQUERADE"
        )
        .unwrap();
    }
    for n in &plan.nodes {
        writeln!(
            rules,
            "-A DPLAB-CLUSTER-IP -s {} -m comment --comment \"dplab pod clients keep their address\" -j RETURN",
            n.pod_cidr
        )
        .unwrap();
    }
    writeln!(
        rules,
        "-A DPLAB-CLUSTER-IP -m comment --comment \"dplab off-cluster clients are masqueraded\" -j DPLAB-MARK-MASQ"
    )
    .unwrap();
    for svc in &plan.services {
        render_masquerade(plan, svc, &mut rules);
    }
    writeln!(rules, "{NODEPORTS_JUMP}").unwrap();
    format!("*nat\n{chains}{rules}COMMIT\n")
}

/// The masquerade rules of one service: its cluster-IP portal, its node
/// port, and a hairpin rule per endpoint.
fn render_masquerade(plan: &Plan, svc: &ServicePlan, rules: &mut String) {
    let proto = svc.protocol.name();
    writeln!(
        rules,
        "-A DPLAB-SERVICES -d {}/32 -p {proto} -m {proto} --dport {} -m comment --comment \"{} cluster IP\" -j DPLAB-CLUSTER-IP",
        svc.cluster_ip, svc.port, svc.name
    )
    .unwrap();
    if let Some(node_port) = svc.node_port {
        writeln!(
            rules,
            "-A DPLAB-NODEPORTS -p {proto} -m {proto} --dport {node_port} -m comment --comment \"{} node port\" -j DPLAB-MARK-MASQ",
            svc.name
        )
        .unwrap();
    }
    for &pod in &svc.backends {
        writeln!(rules, "{}", hairpin_rule("-A", plan, svc, pod)).unwrap();
    }
}

/// Masquerades a pod that reached itself through the service, so that its
/// reply goes back through IPVS (kube-proxy's KUBE-LOOP-BACK set).
fn hairpin_rule(op: &str, plan: &Plan, svc: &ServicePlan, pod: usize) -> String {
    let proto = svc.protocol.name();
    let p = &plan.pods[pod];
    format!(
        "{op} DPLAB-POSTROUTING -s {ip}/32 -d {ip}/32 -p {proto} -m {proto} --dport {} -m comment --comment \"{} hairpin {}\" -j MASQUERADE",
        svc.target_port,
        svc.name,
        p.name,
        ip = p.address,
    )
}

/// iptables-restore input (with --noflush) for one change. No chain is
/// declared, since a declared chain would be flushed: rules are only
/// appended or deleted. The order inside DPLAB-SERVICES does not matter
/// (no rule there ends the traversal), so new portals may follow the
/// node-port jump.
pub fn masquerade_change(plan: &Plan, change: &ServiceChange) -> String {
    let mut rules = String::new();
    match change {
        ServiceChange::AddService(svc) => render_masquerade(plan, svc, &mut rules),
        ServiceChange::RemoveEndpoint { service, pod } => {
            let svc = &plan.services[*service];
            writeln!(rules, "{}", hairpin_rule("-D", plan, svc, *pod)).unwrap();
        }
    }
    format!("*nat\n{rules}COMMIT\n")
}

/// Packets IPVS translated in a namespace, in and out, from
/// /proc/net/ip_vs_stats_percpu: the per-CPU lines (hex) are live, unlike
/// the `~` total and `ipvsadm --stats`, which the rate estimator refreshes
/// only every 2 s (a 1 s sample could read nothing).
pub fn percpu_packets(stats: &str) -> Result<i64, String> {
    let mut total = 0;
    for line in stats.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.first() {
            Some(&"~") => return Ok(total),
            Some(cpu) if u32::from_str_radix(cpu, 16).is_ok() && fields.len() == 6 => {
                for f in &fields[2..4] {
                    total += i64::from_str_radix(f, 16)
                        .map_err(|e| format!("ip_vs_stats_percpu line \"{line}\": {e}"))?;
                }
            }
            _ => {}
        }
    }
    Err("ip_vs_stats_percpu has no \"~\" total line: unknown format".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const TOPO: &str = r#"
[[nodes]]
name = "node1"
pod_cidr = "192.168.10.0/24"
[[pods]]
name = "pod-a"
node = "node1"
address = "192.168.10.10"
[[pods]]
name = "pod-c"
node = "node1"
address = "192.168.10.12"
[[services]]
name = "web"
cluster_ip = "10.96.0.10"
port = 80
target_port = 8080
node_port = 30080
backends = ["pod-a", "pod-c"]
[[services]]
name = "dns"
cluster_ip = "10.96.0.53"
port = 53
protocol = "udp"
backends = ["pod-c"]
"#;

    fn topology() -> Plan {
        crate::topology::parse(Path::new("t.toml"), TOPO).unwrap()
    }

    const NODE: [Ipv4Addr; 1] = [Ipv4Addr::new(192, 168, 10, 1)];

    #[test]
    fn batch_has_a_virtual_server_per_cluster_ip_and_node_address() {
        let batch = ipvs_batch(&topology(), &NODE);
        let lines: Vec<&str> = batch.lines().collect();
        assert_eq!(
            lines,
            [
                "-A -t 10.96.0.10:80 -s rr",
                "-a -t 10.96.0.10:80 -r 192.168.10.10:8080 -m -w 1",
                "-a -t 10.96.0.10:80 -r 192.168.10.12:8080 -m -w 1",
                "-A -t 192.168.10.1:30080 -s rr",
                "-a -t 192.168.10.1:30080 -r 192.168.10.10:8080 -m -w 1",
                "-a -t 192.168.10.1:30080 -r 192.168.10.12:8080 -m -w 1",
                "-A -u 10.96.0.53:53 -s rr",
                "-a -u 10.96.0.53:53 -r 192.168.10.12:53 -m -w 1",
            ]
        );
    }

    #[test]
    fn removing_an_endpoint_deletes_its_real_servers_and_hairpin() {
        let mut plan = topology();
        plan.services[0].backends.retain(|&p| p != 0);
        let change = ServiceChange::RemoveEndpoint { service: 0, pod: 0 };
        assert_eq!(
            ipvs_change(&plan, &NODE, &change),
            "-d -t 10.96.0.10:80 -r 192.168.10.10:8080\n-d -t 192.168.10.1:30080 -r 192.168.10.10:8080\n"
        );
        let rules = masquerade_change(&plan, &change);
        assert!(rules.starts_with("*nat\n-D DPLAB-POSTROUTING -s 192.168.10.10/32 -d 192.168.10.10/32 -p tcp -m tcp --dport 8080"), "{rules}");
        assert!(
            !rules.contains("\n:"),
            "a declared chain would be flushed: {rules}"
        );
        // The deleted rule is exactly the one the install added.
        let installed = masquerade_rules(&topology(), 0, false);
        let deleted = rules.lines().nth(1).unwrap().replacen("-D", "-A", 1);
        assert!(installed.lines().any(|l| l == deleted), "{deleted}");
    }

    #[test]
    fn adding_a_service_appends_only_its_rules() {
        let plan = topology();
        let change = ServiceChange::AddService(plan.services[1].clone());
        assert_eq!(
            ipvs_change(&plan, &NODE, &change),
            "-A -u 10.96.0.53:53 -s rr\n-a -u 10.96.0.53:53 -r 192.168.10.12:53 -m -w 1\n"
        );
        let rules = masquerade_change(&plan, &change);
        assert!(rules.contains("-A DPLAB-SERVICES -d 10.96.0.53/32 -p udp -m udp --dport 53"));
        assert!(
            !rules.contains("\n:") && !rules.contains("DPLAB-NODEPORTS -p"),
            "{rules}"
        );
    }

    #[test]
    fn masquerade_rules_follow_kube_proxy_ipvs_mode() {
        let rules = masquerade_rules(&topology(), 0, false);
        assert!(rules.starts_with("*nat\n") && rules.ends_with("COMMIT\n"));
        assert!(rules.contains("-A DPLAB-NODEPORTS -p tcp -m tcp --dport 30080 -m comment --comment \"web node port\" -j DPLAB-MARK-MASQ"));
        assert!(rules.contains("-A DPLAB-CLUSTER-IP -s 192.168.10.0/24 -m comment --comment \"dplab pod clients keep their address\" -j RETURN"));
        assert!(rules.contains("-s 192.168.10.12/32 -d 192.168.10.12/32 -p udp -m udp --dport 53"));
        assert!(rules.lines().rev().nth(1) == Some(NODEPORTS_JUMP));
        assert!(
            !rules.contains("DNAT"),
            "IPVS translates, iptables only masquerades"
        );
        assert!(!rules.contains("-s 192.168.10.0/24 -d 192.168.10.0/24"));
        assert!(masquerade_rules(&topology(), 0, true)
            .contains("-A DPLAB-POSTROUTING -s 192.168.10.0/24 -d 192.168.10.0/24"));
    }

    #[test]
    fn live_per_cpu_packets_are_summed_in_and_out() {
        // As kernel 6.12 prints it (hex), after the estimator's total lags.
        let stats = "       Total Incoming Outgoing         Incoming         Outgoing
CPU    Conns  Packets  Packets            Bytes            Bytes
  0        2       1E       14              770              564
  1        1        A        0              258                0
  ~        0        0        0                0                0

     Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s
           0        0        0                0                0
";
        assert_eq!(percpu_packets(stats), Ok(0x1e + 0x14 + 0xa));
        assert!(percpu_packets("CPU Conns\n  0 1 2 3 4 5\n").is_err());
        assert!(percpu_packets("  0 1 2 3 4 zz\n  ~ 0 0 0 0 0\n").is_ok());
        assert!(percpu_packets("  0 1 2 x 4 5\n  ~ 0 0 0 0 0\n").is_err());
    }
}
