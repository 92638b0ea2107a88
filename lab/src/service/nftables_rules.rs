//! The `nft -f` text of the nftables proxy, laid out like kube-proxy's
//! nftables mode (pkg/proxy/nftables/proxier.go): one `ip dplab` table with
//! the base chains `nat-prerouting`, `nat-output` (dstnat) and
//! `nat-postrouting` (srcnat); a `services` chain dispatching through the
//! verdict maps `service-ips` (`ip daddr . meta l4proto . th dport`) and
//! `service-nodeports` (`meta l4proto . th dport` on `fib daddr type
//! local`); one `service-…` chain per service choosing an endpoint with
//! counting `numgen random` rules; one `endpoint-…` chain per backend
//! address and port with the hairpin mark and the DNAT; `external-…` chains
//! marking node-port traffic for masquerade. Text only: no kernel calls
//! here.
//!
//! No anonymous set anywhere: a service with a single endpoint jumps
//! straight to it, as kube-proxy does since kubernetes#140723, and one with
//! several picks with a cascade of `numgen random mod k 0 goto` rules where
//! kube-proxy writes `numgen random mod N vmap { … }`. Every anonymous vmap
//! is a set in the kernel, and creating N of them in one table costs O(N²)
//! (set name allocation and transaction binding scan every set).
//!
//! Incremental changes use only commands for which nft 1.0.x fetches no
//! chain cache (`add chain NAME { rules }`, `flush chain`, `add map … {
//! elements }`): `add rule` and `add element` make nft list every chain of
//! the table first, which costs more than the change at scale. `delete
//! chain` still does (nft 1.0.6 has no cheaper delete), so a change never
//! deletes a chain: one its last service let go is emptied. Whatever the text, the
//! kernel walks every chain once per commit that adds a jump or a DNAT
//! (loop and hook validation), so a change costs O(chains) anyway: measured
//! at 30,000 two-endpoint services, 60 ms with one endpoint chain per
//! service and endpoint (90,000 chains), about 20 ms with shared ones.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::ServiceChange;
use crate::topology::{Plan, Protocol, ServicePlan};

/// The table of the proxy in every node namespace (family ip).
pub const TABLE: &str = "dplab";

/// Mark that asks `masquerading` to masquerade (kube-proxy's 0x4000).
const MASQ_MARK: &str = "0x00004000";

const SERVICE_IPS_TYPE: &str = "ipv4_addr . inet_proto . inet_service : verdict";
const NODEPORTS_TYPE: &str = "inet_proto . inet_service : verdict";

/// Chain of one service: where its cluster IP and node port lead.
pub fn service_chain(svc: &ServicePlan) -> String {
    format!("service-{}/{}", svc.name, svc.protocol.name())
}

/// Chain of node-port traffic of one service (kube-proxy's `external-`).
pub fn external_chain(svc: &ServicePlan) -> String {
    format!("external-{}/{}", svc.name, svc.protocol.name())
}

/// Chain of one endpoint (protocol, address, port), shared by every
/// service that uses it: it holds only the hairpin mark and the DNAT, which
/// depend on nothing else. kube-proxy has one per service and endpoint;
/// sharing keeps the chain count near the service count, and the kernel's
/// commit walks every chain (below).
pub fn endpoint_chain(protocol: Protocol, address: Ipv4Addr, port: u16) -> String {
    format!("endpoint-{}__{address}/{port}", protocol.name())
}

fn endpoint_chain_of(plan: &Plan, svc: &ServicePlan, pod: usize) -> String {
    endpoint_chain(svc.protocol, plan.pods[pod].address, svc.target_port)
}

/// The whole ruleset of node `node`, replacing any earlier `dplab` table in
/// the same transaction. `masquerade_pods`: the wiring lets replies between
/// pods of one node bypass it (child links), so service traffic between
/// them is masqueraded to come back through the node.
pub fn render_ruleset(plan: &Plan, node: usize, masquerade_pods: bool) -> String {
    let mut out = String::new();
    let w = &mut out;
    let node_name = &plan.nodes[node].name;
    wl(
        w,
        format_args!(
            "# dplab service proxy of {node_name}, shaped like kube-proxy's nftables mode"
        ),
    );
    // add + delete: the load replaces a table left by an earlier load, atomically.
    wl(w, format_args!("add table ip {TABLE}"));
    wl(w, format_args!("delete table ip {TABLE}"));
    wl(w, format_args!("table ip {TABLE} {{"));
    wl(
        w,
        format_args!("\tcomment \"dplab service proxy (nftables)\""),
    );
    let ips: Vec<String> = plan.services.iter().map(service_ip_element).collect();
    map_block(
        w,
        "service-ips",
        SERVICE_IPS_TYPE,
        "ClusterIP traffic",
        &ips,
    );
    let ports: Vec<String> = plan.services.iter().filter_map(node_port_element).collect();
    map_block(
        w,
        "service-nodeports",
        NODEPORTS_TYPE,
        "NodePort traffic",
        &ports,
    );
    // nft 1.0.6 accepts the name `dstnat` on prerouting only: -100 is dstnat.
    base_chain(
        w,
        "nat-prerouting",
        "prerouting priority dstnat",
        &["jump services"],
    );
    base_chain(w, "nat-output", "output priority -100", &["jump services"]);
    let pods = plan.nodes[node].pod_cidr;
    let pod_masq = format!(
        "ip saddr {pods} ip daddr {pods} masquerade comment \"pod to pod via the node: replies come back through it\""
    );
    let mut post = vec!["jump masquerading"];
    if masquerade_pods {
        post.push(&pod_masq);
    }
    base_chain(w, "nat-postrouting", "postrouting priority srcnat", &post);
    chain_block(
        w,
        "services",
        &[
            "ip daddr . meta l4proto . th dport vmap @service-ips comment \"cluster IPs\"".into(),
            "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports comment \"node ports on any local address\"".into(),
        ],
    );
    chain_block(
        w,
        "mark-for-masquerade",
        &[format!(
            "meta mark set meta mark | {MASQ_MARK} comment \"masquerade in postrouting\""
        )],
    );
    chain_block(
        w,
        "masquerading",
        &[
            format!("meta mark & {MASQ_MARK} == 0x00000000 return"),
            format!("meta mark set meta mark ^ {MASQ_MARK}"),
            "masquerade fully-random comment \"hairpin and node-port traffic\"".into(),
        ],
    );
    let mut endpoints = BTreeSet::new();
    for svc in &plan.services {
        for &pod in &svc.backends {
            if endpoints.insert(endpoint_chain_of(plan, svc, pod)) {
                let (name, rules) = endpoint_chain_rules(plan, svc, pod);
                chain_block(w, &name, &rules);
            }
        }
    }
    for svc in &plan.services {
        for (name, rules) in service_chains(plan, svc) {
            chain_block(w, &name, &rules);
        }
    }
    wl(w, format_args!("}}"));
    out
}

/// One small transaction for `change` (the same on every node). `plan` is
/// the plan after the change. A new service fills the endpoint chains no
/// other service uses yet, adds its own chains and its map elements; a
/// removed endpoint rewrites its service's chain, and empties the
/// endpoint's chain when no service uses it any more.
pub fn render_change(plan: &Plan, change: &ServiceChange) -> String {
    let mut out = String::new();
    let w = &mut out;
    match change {
        ServiceChange::AddService(svc) => {
            // Chains before the map elements that point at them. `add chain
            // NAME { rules }` appends to an existing chain, so endpoint
            // chains other services share are left alone.
            for &pod in &svc.backends {
                let name = endpoint_chain_of(plan, svc, pod);
                if !used_by_another(plan, svc, &name) {
                    let (name, rules) = endpoint_chain_rules(plan, svc, pod);
                    add_chain(w, &name, &rules);
                }
            }
            for (name, rules) in service_chains(plan, svc) {
                add_chain(w, &name, &rules);
            }
            if let Some(element) = node_port_element(svc) {
                add_elements(w, "service-nodeports", NODEPORTS_TYPE, &element);
            }
            add_elements(w, "service-ips", SERVICE_IPS_TYPE, &service_ip_element(svc));
        }
        ServiceChange::RemoveEndpoint { service, pod } => {
            let svc = &plan.services[*service];
            let chain = service_chain(svc);
            wl(w, format_args!("flush chain ip {TABLE} {chain}"));
            let rules = pick_endpoint(plan, svc);
            if !rules.is_empty() {
                add_chain(w, &chain, &rules);
            }
            // An endpoint chain no service uses any more is emptied, not
            // deleted, as kube-proxy leaves stale chains to a later sync:
            // `delete chain` makes nft 1.0.6 list every chain of the table
            // first (90 ms at 30,000 services). An empty chain nothing
            // jumps to costs nothing; a later service using the endpoint
            // refills it, and teardown deletes the table.
            let gone = endpoint_chain_of(plan, svc, *pod);
            let still_used = plan.services.iter().any(|s| {
                s.backends
                    .iter()
                    .any(|&p| endpoint_chain_of(plan, s, p) == gone)
            });
            if !still_used {
                wl(w, format_args!("flush chain ip {TABLE} {gone}"));
            }
        }
    }
    out
}

/// Whether a service other than `svc` (by name) jumps to endpoint chain
/// `chain`.
fn used_by_another(plan: &Plan, svc: &ServicePlan, chain: &str) -> bool {
    plan.services
        .iter()
        .filter(|s| s.name != svc.name)
        .any(|s| {
            s.backends
                .iter()
                .any(|&p| endpoint_chain_of(plan, s, p) == chain)
        })
}

/// The chain of endpoint `pod` of `svc`: hairpin mark, then DNAT.
fn endpoint_chain_rules(plan: &Plan, svc: &ServicePlan, pod: usize) -> (String, Vec<String>) {
    let backend = &plan.pods[pod];
    (
        endpoint_chain_of(plan, svc, pod),
        vec![
            format!(
                "ip saddr {} jump mark-for-masquerade comment \"{}: hairpin\"",
                backend.address, backend.name
            ),
            format!(
                "meta l4proto {} dnat to {}:{} comment \"{}\"",
                svc.protocol.name(),
                backend.address,
                svc.target_port,
                backend.name
            ),
        ],
    )
}

/// The chains of one service with their rules, each after the chains it
/// jumps to: the service chain, the node-port chain.
fn service_chains(plan: &Plan, svc: &ServicePlan) -> Vec<(String, Vec<String>)> {
    let mut chains = vec![(service_chain(svc), pick_endpoint(plan, svc))];
    if svc.node_port.is_some() {
        chains.push((
            external_chain(svc),
            vec![
                format!(
                    "jump mark-for-masquerade comment \"{}: masquerade node-port traffic\"",
                    svc.name
                ),
                format!("goto {}", service_chain(svc)),
            ],
        ));
    }
    chains
}

/// The service chain's rules: straight to a lone endpoint, else a random
/// pick among all, one rule per endpoint: rule i jumps with probability
/// 1/(n-i), which gives each endpoint 1/n (iptables' `statistic` cascade).
/// Not kube-proxy's `numgen random mod n vmap { … }`: each anonymous vmap
/// is a set in the kernel and creating many sets in one table is O(sets²)
/// (measured: 10,000 two-endpoint services took 52.7 s to load, 1.1 s
/// with rules). Each rule counts the packets it sends on: these counters,
/// one per service and endpoint, are the proof. Empty when the service has
/// no endpoint left (its traffic then passes unchanged, as with the
/// iptables proxy).
fn pick_endpoint(plan: &Plan, svc: &ServicePlan) -> Vec<String> {
    let n = svc.backends.len();
    svc.backends
        .iter()
        .enumerate()
        .map(|(i, &pod)| {
            let chain = endpoint_chain_of(plan, svc, pod);
            let comment = format!("{} -> {}", svc.name, plan.pods[pod].name);
            if i + 1 == n {
                format!("counter goto {chain} comment \"{comment}\"")
            } else {
                format!(
                    "numgen random mod {} 0 counter goto {chain} comment \"{comment}\"",
                    n - i
                )
            }
        })
        .collect()
}

fn service_ip_element(svc: &ServicePlan) -> String {
    format!(
        "{} . {} . {} : goto {}",
        svc.cluster_ip,
        svc.protocol.name(),
        svc.port,
        service_chain(svc)
    )
}

fn node_port_element(svc: &ServicePlan) -> Option<String> {
    let port = svc.node_port?;
    Some(format!(
        "{} . {port} : goto {}",
        svc.protocol.name(),
        external_chain(svc)
    ))
}

/// Writes one line.
fn wl(w: &mut String, args: std::fmt::Arguments<'_>) {
    w.write_fmt(args).unwrap();
    w.push('\n');
}

fn map_block(w: &mut String, name: &str, ty: &str, comment: &str, elements: &[String]) {
    wl(w, format_args!("\tmap {name} {{"));
    wl(w, format_args!("\t\ttype {ty}"));
    wl(w, format_args!("\t\tcomment \"{comment}\""));
    if !elements.is_empty() {
        wl(
            w,
            format_args!("\t\telements = {{ {} }}", elements.join(",\n\t\t\t     ")),
        );
    }
    wl(w, format_args!("\t}}"));
}

fn base_chain(w: &mut String, name: &str, hook: &str, rules: &[&str]) {
    wl(w, format_args!("\tchain {name} {{"));
    wl(w, format_args!("\t\ttype nat hook {hook}; policy accept;"));
    for rule in rules {
        wl(w, format_args!("\t\t{rule}"));
    }
    wl(w, format_args!("\t}}"));
}

fn chain_block(w: &mut String, name: &str, rules: &[String]) {
    wl(w, format_args!("\tchain {name} {{"));
    for rule in rules {
        wl(w, format_args!("\t\t{rule}"));
    }
    wl(w, format_args!("\t}}"));
}

/// `add chain` with its rules in a block: creates the chain if needed and
/// appends the rules, without nft listing the table's chains first.
fn add_chain(w: &mut String, name: &str, rules: &[String]) {
    wl(w, format_args!("add chain ip {TABLE} {name} {{"));
    for rule in rules {
        wl(w, format_args!("\t{rule}"));
    }
    wl(w, format_args!("}}"));
}

/// Adds one element through `add map` (the map exists: only the element is
/// new), which unlike `add element` needs no chain cache.
fn add_elements(w: &mut String, map: &str, ty: &str, element: &str) {
    wl(
        w,
        format_args!("add map ip {TABLE} {map} {{ type {ty}; elements = {{ {element} }}; }}"),
    );
}
