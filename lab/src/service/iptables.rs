//! Cluster IPs and node ports with iptables NAT rules shaped like
//! kube-proxy's: a DPLAB-SERVICES chain jumped to from PREROUTING and
//! OUTPUT, one chain per service, one per endpoint with the DNAT, random
//! spreading with `-m statistic`, a DPLAB-NODEPORTS chain for local
//! addresses, comments as kube-proxy writes them. The whole nat table is
//! loaded with one `iptables-restore` per node namespace (the nodes in
//! parallel); a change is loaded with `--noflush` and rewrites only the
//! chains it touches, as kube-proxy's partial sync.
//!
//! Costs measured at 10,000 services (kernel 6.18, iptables 1.8.9): a full
//! load with `--noflush` takes iptables-nft about 100 s, because it lists
//! every chain it is told about in a sorted linked list before fetching
//! them one by one (quadratic in the chains); without `--noflush` it
//! fetches the table once. `iptables-save -c` of such a table takes
//! iptables-nft tens of seconds, so the proof counts DNATed connections in
//! one rule of its own and lists only that chain.

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

/// The chain holding the proof rule, listed alone to read the proof.
const PROOF_CHAIN: &str = "DPLAB-POSTROUTING";

/// Comment of the proof rule: first in DPLAB-POSTROUTING, no target, it
/// counts every connection this node DNATed (the nat table sees only the
/// first packet of a connection, as the DNAT rules do).
const PROOF_COMMENT: &str = "dplab proof: connections DNATed here";

/// Above this many endpoints the endpoint rules carry no comments, as
/// kube-proxy's large-cluster mode: they cost restore time and memory.
const LARGE_CLUSTER_ENDPOINTS: usize = 1000;

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
        // The node's nat table is dplab's alone: replace it whole, which
        // iptables-nft does in linear time (see the module comment).
        on_every_node(lab, |node| {
            restore(
                &lab.node_ns(node),
                &render_rules(lab.plan, node, masquerade),
                Load::Replace,
            )
        })?;
        self.program_ms = start.elapsed().as_secs_f64() * 1000.0;
        Ok(())
    }

    fn apply(&mut self, lab: &LabNet<'_>, _: Datapath, change: &ServiceChange) -> Result<()> {
        let rules = render_change(lab.plan, change);
        on_every_node(lab, |node| {
            restore(&lab.node_ns(node), &rules, Load::Change)
        })
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
            packets += proof_packets(&run.netns(&node.name))?;
        }
        Ok(Proof::from([(DNAT_PACKETS.to_string(), packets)]))
    }
}

/// Runs `load` for every node of the lab at once (one restore each, on its
/// own thread); the first error wins.
fn on_every_node(lab: &LabNet<'_>, load: impl Fn(usize) -> Result<()> + Sync) -> Result<()> {
    let nodes = lab.plan.nodes.len();
    if nodes == 1 {
        return load(0);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..nodes)
            .map(|node| {
                let load = &load;
                scope.spawn(move || load(node))
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("restore thread panicked"))
    })
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
        "-A {PROOF_CHAIN} -m conntrack --ctstate DNAT -m comment --comment \"{PROOF_COMMENT}\""
    )
    .unwrap();
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
    let comments = endpoint_comments(plan);
    for svc in &plan.services {
        render_service(plan, svc, comments, &mut chains, &mut rules);
    }
    writeln!(rules, "{NODEPORTS_JUMP}").unwrap();
    format!("*nat\n{chains}{rules}COMMIT\n")
}

/// The chains of one service: its portal in DPLAB-SERVICES (and
/// DPLAB-NODEPORTS), the service chain spreading over endpoint chains, and
/// one endpoint chain per backend with the DNAT.
fn render_service(
    plan: &Plan,
    svc: &ServicePlan,
    comments: bool,
    chains: &mut String,
    rules: &mut String,
) {
    render_portal(svc, "-A DPLAB-SERVICES", chains, rules);
    render_endpoints(plan, svc, comments, chains, rules);
}

/// The service chain's declaration and the rules leading to it: the portal
/// in DPLAB-SERVICES at `position` (`-A DPLAB-SERVICES` or `-I ... 1`) and
/// the node port, if any.
fn render_portal(svc: &ServicePlan, position: &str, chains: &mut String, rules: &mut String) {
    let proto = svc.protocol.name();
    let svc_chain = service_chain(svc);
    writeln!(chains, ":{svc_chain} - [0:0]").unwrap();
    writeln!(
        rules,
        "{position} -d {}/32 -p {proto} -m comment --comment \"{} cluster IP\" -m {proto} --dport {} -j {svc_chain}",
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
}

/// Whether endpoint rules carry comments (not in large clusters).
fn endpoint_comments(plan: &Plan) -> bool {
    plan.services
        .iter()
        .map(|s| s.backends.len())
        .sum::<usize>()
        <= LARGE_CLUSTER_ENDPOINTS
}

/// The service chain's rules and the endpoint chains (declared and filled).
fn render_endpoints(
    plan: &Plan,
    svc: &ServicePlan,
    comments: bool,
    chains: &mut String,
    rules: &mut String,
) {
    let proto = svc.protocol.name();
    let svc_chain = service_chain(svc);
    let n = svc.backends.len();
    for (i, &pod) in svc.backends.iter().enumerate() {
        let backend = &plan.pods[pod];
        let sep = endpoint_chain(svc, &backend.name);
        let comment = if comments {
            format!(" -m comment --comment \"{} -> {}\"", svc.name, backend.name)
        } else {
            String::new()
        };
        writeln!(chains, ":{sep} - [0:0]").unwrap();
        // Rule i of n matches 1/(n-i) of what reaches it: an even spread.
        let remaining = n - i;
        if remaining > 1 {
            writeln!(
                rules,
                "-A {svc_chain}{comment} -m statistic --mode random --probability {:.11} -j {sep}",
                1.0 / remaining as f64
            )
            .unwrap();
        } else {
            writeln!(rules, "-A {svc_chain}{comment} -j {sep}").unwrap();
        }
        writeln!(
            rules,
            "-A {sep} -s {}/32{comment} -j DPLAB-MARK-MASQ",
            backend.address
        )
        .unwrap();
        writeln!(
            rules,
            "-A {sep} -p {proto}{comment} -m {proto} -j DNAT --to-destination {}:{}",
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
/// gets its chains and its portal first in DPLAB-SERVICES (so the node-port
/// jump stays last without touching it: deleting it would make iptables
/// read the whole chain); a removed endpoint rewrites its service chain (a
/// chain declared in the input is flushed) and deletes the endpoint chain.
pub fn render_change(plan: &Plan, change: &ServiceChange) -> String {
    let mut chains = String::new();
    let mut rules = String::new();
    let comments = endpoint_comments(plan);
    match change {
        ServiceChange::AddService(svc) => {
            render_portal(svc, "-I DPLAB-SERVICES 1", &mut chains, &mut rules);
            render_endpoints(plan, svc, comments, &mut chains, &mut rules);
        }
        ServiceChange::RemoveEndpoint { service, pod } => {
            let svc = &plan.services[*service];
            writeln!(chains, ":{} - [0:0]", service_chain(svc)).unwrap();
            render_endpoints(plan, svc, comments, &mut chains, &mut rules);
            let gone = endpoint_chain(svc, &plan.pods[*pod].name);
            writeln!(chains, ":{gone} - [0:0]").unwrap();
            writeln!(rules, "-X {gone}").unwrap();
        }
    }
    format!("*nat\n{chains}{rules}COMMIT\n")
}

/// How a restore treats what the nat table holds already.
#[derive(Clone, Copy)]
enum Load {
    /// The input is the whole table.
    Replace,
    /// The input adds to the table and rewrites only the chains it names.
    Change,
}

/// Loads rules with one iptables-restore inside namespace `ns`.
fn restore(ns: &str, rules: &str, load: Load) -> Result<()> {
    let args: &[&str] = match load {
        Load::Replace => &["--wait"],
        Load::Change => &["--noflush", "--wait"],
    };
    command::run_in(ns, "iptables-restore", args, Some(rules)).map(drop)
}

/// Connections DNATed in namespace `ns`: the proof rule's packet counter,
/// from a listing of its chain alone; 0 where dplab installed no rules.
pub fn proof_packets(ns: &str) -> Result<i64> {
    let listed = command::run_in(
        ns,
        "iptables",
        &["-w", "-t", "nat", "-L", PROOF_CHAIN, "-n", "-v", "-x"],
        None,
    );
    match listed {
        Ok(text) => Ok(proof_rule_packets(&text)),
        // iptables-nft calls a chain it cannot find "incompatible".
        Err(crate::error::LabError::Command { message, .. })
            if message.contains("No chain/target/match") || message.contains("incompatible") =>
        {
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

/// The packet counter of the proof rule in `iptables -L -n -v -x` output
/// (its first column); 0 if the listing lacks the rule.
pub fn proof_rule_packets(listing: &str) -> i64 {
    listing
        .lines()
        .find(|l| l.contains(PROOF_COMMENT))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
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
mod tests;
