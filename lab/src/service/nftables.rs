//! Cluster IPs and node ports with nftables, shaped like kube-proxy's
//! nftables mode: one `dplab` table per node namespace, a verdict map keyed
//! on `daddr . l4proto . dport` that jumps to one chain per service,
//! `numgen random mod N` choosing an endpoint chain that does the `dnat`, a
//! node-port map consulted for the node's own addresses (`fib daddr type
//! local`), and the masquerade mark for hairpin and node-port traffic.
//!
//! The ruleset is driven through `nft -f -`, one transaction per node, as
//! kube-proxy's knftables does: the text format is the interface nft
//! itself documents, loads atomically, and keeps the rules readable in
//! golden files. A one-change update is a small transaction of `add` /
//! `flush` / `delete` commands, never a reload.

use std::fmt::Write as _;

use super::{ServiceChange, ServiceProxy};
use crate::command;
use crate::datapath::{self, LabNet};
use crate::error::{LabError, Result};
use crate::kinds::{Datapath, ProxyKind};
use crate::names::RunId;
use crate::proof::Proof;
use crate::topology::{Plan, ServicePlan};

/// Proof counter: packets through the dnat rules, all nodes.
pub const DNAT_PACKETS: &str = "nft_dnat_packets";

/// The table dplab owns in every node namespace.
const TABLE: &str = "ip dplab";

/// The named counter every dnat rule updates (read for the proof without
/// listing 30,000 services' rules).
const DNAT_COUNTER: &str = "dnat-packets";

/// kube-proxy's masquerade bit.
const MASQ_MARK: &str = "0x00004000";

#[derive(Default)]
pub struct Nftables {
    program_ms: f64,
}

impl ServiceProxy for Nftables {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Nftables
    }

    fn install(&mut self, lab: &LabNet<'_>, datapath: Datapath) -> Result<()> {
        let masquerade = datapath::cluster_ip_needs_masquerade(datapath);
        let start = std::time::Instant::now();
        for node in 0..lab.plan.nodes.len() {
            load(
                &lab.node_ns(node),
                &render_ruleset(lab.plan, node, masquerade),
            )?;
        }
        self.program_ms = start.elapsed().as_secs_f64() * 1000.0;
        Ok(())
    }

    fn apply(&mut self, lab: &LabNet<'_>, _: Datapath, change: &ServiceChange) -> Result<()> {
        let commands = render_change(lab.plan, change);
        for node in 0..lab.plan.nodes.len() {
            load(&lab.node_ns(node), &commands)?;
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
            let ns = run.netns(&node.name);
            let json = command::run_in(
                &ns,
                "nft",
                &["-j", "list", "counter", "ip", "dplab", DNAT_COUNTER],
                None,
            )?;
            packets += counter_packets(&json).ok_or_else(|| {
                LabError::Other(format!(
                    "nft counter {DNAT_COUNTER} in {ns}: no packet count in {json:.200}"
                ))
            })?;
        }
        Ok(Proof::from([(DNAT_PACKETS.to_string(), packets)]))
    }
}

/// The whole table for node `node`, as one `nft -f` transaction.
pub fn render_ruleset(plan: &Plan, node: usize, masquerade_pods: bool) -> String {
    let mut out = String::new();
    let w = &mut out;
    writeln!(w, "table {TABLE} {{").unwrap();
    writeln!(w, "\tcomment \"dplab services\"").unwrap();
    writeln!(w, "\tcounter {DNAT_COUNTER} {{ }}").unwrap();
    writeln!(w, "\tmap service-ips {{").unwrap();
    writeln!(
        w,
        "\t\ttype ipv4_addr . inet_proto . inet_service : verdict"
    )
    .unwrap();
    writeln!(w, "\t\tcomment \"cluster IP traffic\"").unwrap();
    writeln!(w, "\t}}").unwrap();
    writeln!(w, "\tmap service-nodeports {{").unwrap();
    writeln!(w, "\t\ttype inet_proto . inet_service : verdict").unwrap();
    writeln!(w, "\t\tcomment \"node port traffic\"").unwrap();
    writeln!(w, "\t}}").unwrap();
    writeln!(w, "\tchain mark-for-masquerade {{").unwrap();
    writeln!(w, "\t\tmeta mark set meta mark or {MASQ_MARK}").unwrap();
    writeln!(w, "\t}}").unwrap();
    writeln!(w, "\tchain masquerading {{").unwrap();
    writeln!(w, "\t\tmeta mark & {MASQ_MARK} == 0 return").unwrap();
    writeln!(w, "\t\tmeta mark set meta mark xor {MASQ_MARK}").unwrap();
    writeln!(w, "\t\tmasquerade fully-random").unwrap();
    writeln!(w, "\t}}").unwrap();
    writeln!(w, "\tchain services {{").unwrap();
    writeln!(
        w,
        "\t\tip daddr . meta l4proto . th dport vmap @service-ips"
    )
    .unwrap();
    writeln!(
        w,
        "\t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"
    )
    .unwrap();
    writeln!(w, "\t}}").unwrap();
    for (name, hook, priority, body) in [
        ("nat-prerouting", "prerouting", "dstnat", "jump services"),
        ("nat-output", "output", "-100", "jump services"),
        (
            "nat-postrouting",
            "postrouting",
            "srcnat",
            "jump masquerading",
        ),
    ] {
        writeln!(w, "\tchain {name} {{").unwrap();
        writeln!(
            w,
            "\t\ttype nat hook {hook} priority {priority}; policy accept;"
        )
        .unwrap();
        writeln!(w, "\t\t{body}").unwrap();
        if hook == "postrouting" && masquerade_pods {
            let cidr = plan.nodes[node].pod_cidr;
            writeln!(
                w,
                "\t\tip saddr {cidr} ip daddr {cidr} masquerade comment \"pod-to-pod via node: replies come back through it\""
            )
            .unwrap();
        }
        writeln!(w, "\t}}").unwrap();
    }
    writeln!(w, "}}").unwrap();
    for svc in &plan.services {
        render_service(plan, svc, w);
    }
    out
}

/// `add` commands for one service: its chains, its rules, its map elements.
fn render_service(plan: &Plan, svc: &ServicePlan, w: &mut String) {
    let proto = svc.protocol.name();
    let chain = service_chain(svc);
    writeln!(w, "add chain {TABLE} {chain}").unwrap();
    for &pod in &svc.backends {
        render_endpoint(plan, svc, pod, w);
    }
    render_spread(plan, svc, w);
    writeln!(
        w,
        "add element {TABLE} service-ips {{ {} . {proto} . {} : goto {chain} }}",
        svc.cluster_ip, svc.port
    )
    .unwrap();
    if let Some(node_port) = svc.node_port {
        // Traffic from outside the pod network is masqueraded so that the
        // replies come back through this node (externalTrafficPolicy=Cluster).
        let ext = format!("external-{}", chain_suffix(svc));
        writeln!(w, "add chain {TABLE} {ext}").unwrap();
        writeln!(w, "add rule {TABLE} {ext} jump mark-for-masquerade").unwrap();
        writeln!(w, "add rule {TABLE} {ext} goto {chain}").unwrap();
        writeln!(
            w,
            "add element {TABLE} service-nodeports {{ {proto} . {node_port} : goto {ext} }}"
        )
        .unwrap();
    }
}

/// The endpoint chain of `pod` behind `svc`: hairpin mark, then the dnat.
fn render_endpoint(plan: &Plan, svc: &ServicePlan, pod: usize, w: &mut String) {
    let backend = &plan.pods[pod];
    let chain = endpoint_chain(svc, &backend.name);
    writeln!(w, "add chain {TABLE} {chain}").unwrap();
    writeln!(
        w,
        "add rule {TABLE} {chain} ip saddr {} jump mark-for-masquerade",
        backend.address
    )
    .unwrap();
    writeln!(
        w,
        "add rule {TABLE} {chain} meta l4proto {} counter name {DNAT_COUNTER} dnat to {}:{}",
        svc.protocol.name(),
        backend.address,
        svc.target_port
    )
    .unwrap();
}

/// The service chain's one rule: an even random spread over its endpoints.
fn render_spread(plan: &Plan, svc: &ServicePlan, w: &mut String) {
    let targets: Vec<String> = svc
        .backends
        .iter()
        .enumerate()
        .map(|(i, &pod)| format!("{i} : goto {}", endpoint_chain(svc, &plan.pods[pod].name)))
        .collect();
    writeln!(
        w,
        "add rule {TABLE} {} numgen random mod {} vmap {{ {} }}",
        service_chain(svc),
        targets.len(),
        targets.join(", ")
    )
    .unwrap();
}

/// `nft -f` input for one change: a new service adds its chains and map
/// elements; a removed endpoint rewrites its service's spread and deletes
/// the endpoint chain, in one transaction.
pub fn render_change(plan: &Plan, change: &ServiceChange) -> String {
    let mut out = String::new();
    match change {
        ServiceChange::AddService(svc) => render_service(plan, svc, &mut out),
        ServiceChange::RemoveEndpoint { service, pod } => {
            let svc = &plan.services[*service];
            writeln!(out, "flush chain {TABLE} {}", service_chain(svc)).unwrap();
            render_spread(plan, svc, &mut out);
            writeln!(
                out,
                "delete chain {TABLE} {}",
                endpoint_chain(svc, &plan.pods[*pod].name)
            )
            .unwrap();
        }
    }
    out
}

/// `<name>-<proto>`: names are lower-case letters, digits and '-'
/// (validated), so they are valid nft identifiers after a letter prefix.
fn chain_suffix(svc: &ServicePlan) -> String {
    format!("{}-{}", svc.name, svc.protocol.name())
}

fn service_chain(svc: &ServicePlan) -> String {
    format!("service-{}", chain_suffix(svc))
}

fn endpoint_chain(svc: &ServicePlan, backend: &str) -> String {
    format!("endpoint-{}-{backend}", chain_suffix(svc))
}

/// Runs one `nft -f -` transaction inside namespace `ns`.
fn load(ns: &str, text: &str) -> Result<()> {
    command::run_in(ns, "nft", &["-f", "-"], Some(text)).map(drop)
}

/// The packet count of `nft -j list counter ...` output.
pub fn counter_packets(json: &str) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    value["nftables"]
        .as_array()?
        .iter()
        .find_map(|item| item["counter"]["packets"].as_i64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The blog topology with a second backend and a node port.
    pub(crate) const TOPO: &str = r#"
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
"#;

    fn plan() -> Plan {
        crate::topology::parse(Path::new("t.toml"), TOPO).unwrap()
    }

    /// The golden file is also loaded into a kernel by a privileged test
    /// (tests/proxy_axis.rs). `DPLAB_BLESS=1` rewrites it after a change.
    #[test]
    fn ruleset_matches_its_golden_file() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/nftables-web.nft");
        let rendered = render_ruleset(&plan(), 0, true);
        if std::env::var_os("DPLAB_BLESS").is_some() {
            std::fs::write(&path, &rendered).unwrap();
        }
        assert_eq!(rendered, std::fs::read_to_string(&path).unwrap());
    }

    #[test]
    fn ruleset_follows_kube_proxy_structure() {
        let rules = render_ruleset(&plan(), 0, false);
        assert!(rules.contains("ip daddr . meta l4proto . th dport vmap @service-ips"));
        assert!(rules.contains(
            "add element ip dplab service-ips { 10.96.0.10 . tcp . 80 : goto service-web-tcp }"
        ));
        assert!(rules.contains("numgen random mod 2 vmap { 0 : goto endpoint-web-tcp-pod-a, 1 : goto endpoint-web-tcp-pod-c }"));
        assert!(rules.contains("dnat to 192.168.10.12:8080"));
        assert!(rules.contains("tcp . 30080 : goto external-web-tcp"));
        assert!(!rules.contains("ip saddr 192.168.10.0/24 ip daddr 192.168.10.0/24"));
    }

    #[test]
    fn one_change_touches_only_its_service() {
        let mut plan = plan();
        plan.services[0].backends = vec![0];
        let text = render_change(&plan, &ServiceChange::RemoveEndpoint { service: 0, pod: 1 });
        assert_eq!(
            text,
            "flush chain ip dplab service-web-tcp\n\
             add rule ip dplab service-web-tcp numgen random mod 1 vmap { 0 : goto endpoint-web-tcp-pod-a }\n\
             delete chain ip dplab endpoint-web-tcp-pod-c\n"
        );
        let add = render_change(&plan, &ServiceChange::AddService(plan.services[0].clone()));
        assert!(add.lines().all(|l| l.starts_with("add ")), "{add}");
    }

    #[test]
    fn counter_packets_are_read_from_nft_json() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"counter": {"family": "ip", "name": "dnat-packets", "table": "dplab", "handle": 3, "packets": 42, "bytes": 2520}}]}"#;
        assert_eq!(counter_packets(json), Some(42));
        assert_eq!(counter_packets("{}"), None);
    }
}
