//! Cluster IPs and node ports with iptables NAT rules shaped like
//! kube-proxy's: a DPLAB-SERVICES chain jumped to from PREROUTING and
//! OUTPUT, one chain per service, one per endpoint with the DNAT, random
//! spreading with `-m statistic`, a DPLAB-NODEPORTS chain for local
//! addresses, a comment on every rule. Loaded in one batch with
//! `iptables-restore --noflush` inside each node namespace; a change
//! rewrites only the chains it touches, as kube-proxy's partial sync.

use std::fmt::Write as _;

use super::{ServiceChange, ServiceProxy};
use crate::command;
use crate::datapath::{self, LabNet};
use crate::error::Result;
use crate::kinds::{Datapath, ProxyKind};
use crate::names::RunId;
use crate::proof::Proof;
use crate::topology::{Plan, ServicePlan};

/// Proof counter: packets through dplab's DNAT rules, all nodes.
pub const DNAT_PACKETS: &str = "iptables_dnat_packets";

/// Last rule of DPLAB-SERVICES, as kube-proxy's KUBE-NODEPORTS jump: node
/// ports on any of the node's own addresses.
const NODEPORTS_JUMP: &str = "-A DPLAB-SERVICES -m comment --comment \"dplab service nodeports; must be last\" -m addrtype --dst-type LOCAL -j DPLAB-NODEPORTS";

/// Mark that asks POSTROUTING to masquerade (kube-proxy's 0x4000).
const MASQ_MARK: &str = "0x4000/0x4000";

#[derive(Default)]
pub struct Iptables {
    /// Time the last full load took, for the benchmark.
    program_ms: f64,
}

impl ServiceProxy for Iptables {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Iptables
    }

    fn install(&mut self, lab: &LabNet<'_>, datapath: Datapath) -> Result<()> {
        let masquerade = datapath::cluster_ip_needs_masquerade(datapath);
        let start = std::time::Instant::now();
        for node in 0..lab.plan.nodes.len() {
            restore(
                &lab.node_ns(node),
                &render_rules(lab.plan, node, masquerade),
            )?;
        }
        self.program_ms = start.elapsed().as_secs_f64() * 1000.0;
        Ok(())
    }

    fn apply(&mut self, lab: &LabNet<'_>, _: Datapath, change: &ServiceChange) -> Result<()> {
        let rules = render_change(lab.plan, change);
        for node in 0..lab.plan.nodes.len() {
            restore(&lab.node_ns(node), &rules)?;
        }
        Ok(())
    }

    fn program_ms(&self) -> Option<f64> {
        Some(self.program_ms)
    }

    fn translation_counter(&self) -> &'static str {
        DNAT_PACKETS
    }

    fn counters(&self, run: &RunId, plan: &Plan) -> Result<Proof> {
        let mut packets = 0;
        for node in &plan.nodes {
            packets += dnat_packets(&save_counters(&run.netns(&node.name))?);
        }
        Ok(Proof::from([(DNAT_PACKETS.to_string(), packets)]))
    }
}

/// kube-proxy style chain name: prefix plus 16 characters of a hash.
fn chain(prefix: &str, key: &str) -> String {
    // FNV-1a: stable across runs and versions, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        hash = (hash ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{prefix}{hash:016X}")
}

/// The iptables-restore input for node `node`'s nat table.
pub fn render_rules(plan: &Plan, node: usize, masquerade_pods: bool) -> String {
    let mut chains = String::new();
    let mut rules = String::new();
    for name in [
        "DPLAB-SERVICES",
        "DPLAB-NODEPORTS",
        "DPLAB-MARK-MASQ",
        "DPLAB-POSTROUTING",
    ] {
        writeln!(chains, ":{name} - [0:0]").unwrap();
    }
    let jump = |rules: &mut String, from: &str, to: &str, comment: &str| {
        writeln!(
            rules,
            "-A {from} -m comment --comment \"{comment}\" -j {to}"
        )
        .unwrap();
    };
    jump(
        &mut rules,
        "PREROUTING",
        "DPLAB-SERVICES",
        "dplab service portals",
    );
    jump(
        &mut rules,
        "OUTPUT",
        "DPLAB-SERVICES",
        "dplab service portals",
    );
    jump(
        &mut rules,
        "POSTROUTING",
        "DPLAB-POSTROUTING",
        "dplab postrouting rules",
    );
    writeln!(rules, "-A DPLAB-MARK-MASQ -j MARK --set-xmark {MASQ_MARK}").unwrap();
    writeln!(
        rules,
        "-A DPLAB-POSTROUTING -m mark --mark {MASQ_MARK} -m comment --comment \"dplab hairpin and marked traffic\" -j MASQUERADE"
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
    for svc in &plan.services {
        render_service(plan, svc, &mut chains, &mut rules);
    }
    writeln!(rules, "{NODEPORTS_JUMP}").unwrap();
    format!("*nat\n{chains}{rules}COMMIT\n")
}

/// The chains of one service: its portal in DPLAB-SERVICES (and
/// DPLAB-NODEPORTS), the service chain spreading over endpoint chains, and
/// one endpoint chain per backend with the DNAT.
fn render_service(plan: &Plan, svc: &ServicePlan, chains: &mut String, rules: &mut String) {
    let proto = svc.protocol.name();
    let svc_chain = service_chain(svc);
    writeln!(chains, ":{svc_chain} - [0:0]").unwrap();
    writeln!(
        rules,
        "-A DPLAB-SERVICES -d {}/32 -p {proto} -m comment --comment \"{} cluster IP\" -m {proto} --dport {} -j {svc_chain}",
        svc.cluster_ip, svc.name, svc.port
    )
    .unwrap();
    if let Some(node_port) = svc.node_port {
        // Traffic from outside the pod network is masqueraded so that the
        // replies come back through this node (externalTrafficPolicy=Cluster).
        let ext = chain("DPLAB-EXT-", &format!("{}/{proto}", svc.name));
        writeln!(chains, ":{ext} - [0:0]").unwrap();
        writeln!(
            rules,
            "-A DPLAB-NODEPORTS -p {proto} -m comment --comment \"{} node port\" -m {proto} --dport {node_port} -j {ext}",
            svc.name
        )
        .unwrap();
        writeln!(
            rules,
            "-A {ext} -m comment --comment \"masquerade traffic for {} external destinations\" -j DPLAB-MARK-MASQ",
            svc.name
        )
        .unwrap();
        writeln!(rules, "-A {ext} -j {svc_chain}").unwrap();
    }
    render_endpoints(plan, svc, chains, rules);
}

/// The service chain's rules and the endpoint chains (declared and filled).
fn render_endpoints(plan: &Plan, svc: &ServicePlan, chains: &mut String, rules: &mut String) {
    let proto = svc.protocol.name();
    let svc_chain = service_chain(svc);
    let n = svc.backends.len();
    for (i, &pod) in svc.backends.iter().enumerate() {
        let backend = &plan.pods[pod];
        let sep = endpoint_chain(svc, &backend.name);
        let comment = format!("{} -> {}", svc.name, backend.name);
        writeln!(chains, ":{sep} - [0:0]").unwrap();
        // Rule i of n matches 1/(n-i) of what reaches it: an even spread.
        let remaining = n - i;
        if remaining > 1 {
            writeln!(
                rules,
                "-A {svc_chain} -m comment --comment \"{comment}\" -m statistic --mode random --probability {:.11} -j {sep}",
                1.0 / remaining as f64
            )
            .unwrap();
        } else {
            writeln!(
                rules,
                "-A {svc_chain} -m comment --comment \"{comment}\" -j {sep}"
            )
            .unwrap();
        }
        writeln!(
            rules,
            "-A {sep} -s {}/32 -m comment --comment \"{comment}\" -j DPLAB-MARK-MASQ",
            backend.address
        )
        .unwrap();
        writeln!(
            rules,
            "-A {sep} -p {proto} -m comment --comment \"{comment}\" -m {proto} -j DNAT --to-destination {}:{}",
            backend.address, svc.target_port
        )
        .unwrap();
    }
}

fn service_chain(svc: &ServicePlan) -> String {
    chain(
        "DPLAB-SVC-",
        &format!("{}/{}", svc.name, svc.protocol.name()),
    )
}

fn endpoint_chain(svc: &ServicePlan, backend: &str) -> String {
    chain(
        "DPLAB-SEP-",
        &format!("{}/{}/{backend}", svc.name, svc.protocol.name()),
    )
}

/// iptables-restore input (with --noflush) for one change: a new service
/// appends its chains; a removed endpoint rewrites its service chain (a
/// chain declared in the input is flushed) and deletes the endpoint chain.
pub fn render_change(plan: &Plan, change: &ServiceChange) -> String {
    let mut chains = String::new();
    let mut rules = String::new();
    match change {
        ServiceChange::AddService(svc) => {
            render_service(plan, svc, &mut chains, &mut rules);
            // Keep the node-port jump last: move it after the new portal.
            writeln!(rules, "{}", NODEPORTS_JUMP.replacen("-A", "-D", 1)).unwrap();
            writeln!(rules, "{NODEPORTS_JUMP}").unwrap();
        }
        ServiceChange::RemoveEndpoint { service, pod } => {
            let svc = &plan.services[*service];
            writeln!(chains, ":{} - [0:0]", service_chain(svc)).unwrap();
            render_endpoints(plan, svc, &mut chains, &mut rules);
            let gone = endpoint_chain(svc, &plan.pods[*pod].name);
            writeln!(chains, ":{gone} - [0:0]").unwrap();
            writeln!(rules, "-X {gone}").unwrap();
        }
    }
    format!("*nat\n{chains}{rules}COMMIT\n")
}

/// Loads rules with one iptables-restore inside namespace `ns`.
fn restore(ns: &str, rules: &str) -> Result<()> {
    command::run_in(
        ns,
        "iptables-restore",
        &["--noflush", "--wait"],
        Some(rules),
    )
    .map(drop)
}

/// `iptables-save -c -t nat` inside namespace `ns`.
pub fn save_counters(ns: &str) -> Result<String> {
    command::run_in(ns, "iptables-save", &["-c", "-t", "nat"], None)
}

/// Sum of the packet counters of dplab's DNAT rules in `iptables-save -c`
/// output (`[packets:bytes] -A DPLAB-SEP-... -j DNAT ...`).
pub fn dnat_packets(saved: &str) -> i64 {
    saved
        .lines()
        .filter(|l| l.contains("-A DPLAB-SEP-") && l.contains("-j DNAT"))
        .filter_map(|l| {
            let counters = l.strip_prefix('[')?.split(']').next()?;
            counters.split(':').next()?.parse::<i64>().ok()
        })
        .sum()
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
backends = ["pod-a", "pod-c"]
"#;

    #[test]
    fn rules_follow_kube_proxy_structure() {
        let plan = crate::topology::parse(Path::new("t.toml"), TOPO).unwrap();
        let rules = render_rules(&plan, 0, false);
        assert!(rules.starts_with("*nat\n") && rules.ends_with("COMMIT\n"));
        assert!(rules.contains(
            "-A PREROUTING -m comment --comment \"dplab service portals\" -j DPLAB-SERVICES"
        ));
        assert!(rules.contains(
            "-A OUTPUT -m comment --comment \"dplab service portals\" -j DPLAB-SERVICES"
        ));
        assert!(rules.contains("-d 10.96.0.10/32 -p tcp"));
        assert!(rules.contains("--probability 0.50000000000"));
        assert!(rules.contains("-j DNAT --to-destination 192.168.10.10:8080"));
        assert!(rules.contains("-j DNAT --to-destination 192.168.10.12:8080"));
        assert!(!rules.contains("-s 192.168.10.0/24 -d 192.168.10.0/24"));
        for line in rules.lines().filter(|l| l.starts_with("-A DPLAB-S")) {
            assert!(line.contains("-m comment"), "rule without comment: {line}");
        }
        // Chain names fit iptables' 28 characters.
        for line in rules.lines().filter(|l| l.starts_with(':')) {
            let name = line[1..].split(' ').next().unwrap();
            assert!(name.len() <= 28, "{name}");
        }
        let masq = render_rules(&plan, 0, true);
        assert!(masq.contains("-A DPLAB-POSTROUTING -s 192.168.10.0/24 -d 192.168.10.0/24"));
    }

    #[test]
    fn dnat_counters_are_summed() {
        let saved = "*nat\n:PREROUTING ACCEPT [5:300]\n[0:0] -A DPLAB-SERVICES -d 10.96.0.10/32 -j DPLAB-SVC-X\n[3:180] -A DPLAB-SEP-A -p tcp -m tcp -j DNAT --to-destination 192.168.10.10:80\n[2:120] -A DPLAB-SEP-B -p tcp -m tcp -j DNAT --to-destination 192.168.10.12:80\n[9:9] -A DPLAB-SEP-B -s 192.168.10.12/32 -j DPLAB-MARK-MASQ\nCOMMIT\n";
        assert_eq!(dnat_packets(saved), 5);
    }
}
