//! Cluster IPs with iptables NAT rules shaped like kube-proxy's: a
//! DPLAB-SERVICES chain jumped to from PREROUTING and OUTPUT, one chain per
//! service, one per endpoint with the DNAT, random spreading with
//! `-m statistic`, a comment on every rule. Loaded in one batch with
//! `iptables-restore --noflush` inside each node namespace.

use std::fmt::Write as _;

use super::{Proof, ServiceProxy};
use crate::command;
use crate::datapath::{self, LabNet};
use crate::error::Result;
use crate::kinds::Datapath;
use crate::names::RunId;
use crate::topology::Plan;

/// Mark that asks POSTROUTING to masquerade (kube-proxy's 0x4000).
const MASQ_MARK: &str = "0x4000/0x4000";

#[derive(Default)]
pub struct Iptables {
    /// Time the last batch load took, for the benchmark.
    pub program_ms: f64,
    pub rule_count: usize,
}

impl ServiceProxy for Iptables {
    fn install(&mut self, lab: &LabNet<'_>, datapath: Datapath) -> Result<()> {
        let masquerade = datapath::cluster_ip_needs_masquerade(datapath);
        let start = std::time::Instant::now();
        for node in 0..lab.plan.nodes.len() {
            let rules = render_rules(lab.plan, node, masquerade);
            self.rule_count = rules.lines().filter(|l| l.starts_with("-A")).count();
            restore(&lab.node_ns(node), &rules)?;
        }
        self.program_ms = start.elapsed().as_secs_f64() * 1000.0;
        Ok(())
    }

    fn program_ms(&self) -> Option<f64> {
        Some(self.program_ms)
    }

    fn counters(&self, run: &RunId, plan: &Plan) -> Result<Proof> {
        let mut packets = 0;
        for node in &plan.nodes {
            packets += dnat_packets(&save_counters(&run.netns(&node.name))?);
        }
        Ok(Proof::from([(
            "iptables_dnat_packets".to_string(),
            packets,
        )]))
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
    for name in ["DPLAB-SERVICES", "DPLAB-MARK-MASQ", "DPLAB-POSTROUTING"] {
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
        let proto = svc.protocol.name();
        let svc_chain = chain("DPLAB-SVC-", &format!("{}/{proto}", svc.name));
        writeln!(chains, ":{svc_chain} - [0:0]").unwrap();
        writeln!(
            rules,
            "-A DPLAB-SERVICES -d {}/32 -p {proto} -m comment --comment \"{} cluster IP\" -m {proto} --dport {} -j {svc_chain}",
            svc.cluster_ip, svc.name, svc.port
        )
        .unwrap();
        let n = svc.backends.len();
        for (i, &pod) in svc.backends.iter().enumerate() {
            let backend = &plan.pods[pod];
            let sep = chain(
                "DPLAB-SEP-",
                &format!("{}/{proto}/{}", svc.name, backend.name),
            );
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
