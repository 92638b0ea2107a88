//! eBPF host routing, the `-ebpf` half of `veth-ebpf` (as Cilium's): a
//! program on every pod's node-side veth hands packets for pods of the same
//! node straight into them (bpf_redirect_peer), and in multi-node labs one on
//! the node's underlay link and VXLAN device does the same for packets
//! arriving from other nodes. Everything else takes the node's stack, and so
//! the overlay. Each node has its own maps, as each node of a cluster does:
//! its endpoint map holds its own pods only.
//!
//! The proxy is another axis: with the eBPF proxy the same programs also
//! translate services (the proxy fills the service maps); with any other
//! they only route.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use super::{LabNet, DROPPED, PASSED, REDIRECTED};
use crate::ebpf::{self, Endpoint, NodeConfig, NodeScope, RedirectMode, ServiceLb};
use crate::error::{LabError, Result};
use crate::kinds::Datapath;
use crate::ledger::Entry;
use crate::names::RunId;
use crate::proof::{self, Proof};
use crate::topology::Plan;

/// Loads every node's programs, fills its endpoint map with its pods and
/// attaches the programs: on each pod's node-side veth, and on the node's
/// overlay devices (multi-node labs; they must exist already).
pub fn install(lab: &LabNet<'_>, datapath: Datapath) -> Result<Option<String>> {
    if let Some(reason) = ebpf::unavailable_reason() {
        return Err(LabError::Unsupported(format!(
            "eBPF datapaths unavailable: {reason}"
        )));
    }
    lab.ledger.record(&Entry::BpfPins {
        path: lab.run.bpffs_dir(),
    })?;
    let edges = lab.edge_links();
    let mut kinds = Vec::new();
    for node in 0..lab.plan.nodes.len() {
        let mut lb = load_node(lab, datapath, node)?;
        let node_ns = lab.node_ns(node);
        for (pod, p) in lab.plan.pods_of(node) {
            if datapath == Datapath::NetkitEbpf {
                // Local delivery is a plain redirect to the destination
                // pod's primary device: bpf_redirect_peer works only from
                // tc ingress, not from netkit's hook. L3 netkit frames carry
                // no MACs worth rewriting.
                let primary = super::netkit_primary(lab, pod);
                let (ifindex, _) = ebpf::ifindex_and_mac(&node_ns, &primary).map_err(lab_error)?;
                let endpoint = Endpoint {
                    ifindex,
                    pod_mac: [0; 6],
                    host_mac: [0; 6],
                    mode: RedirectMode::Plain,
                };
                lb.set_endpoint(p.address, endpoint).map_err(lab_error)?;
                lb.attach_netkit_peer(&node_ns, &primary)
                    .map_err(lab_error)?;
                continue;
            }
            let host = lab.host_veth(pod);
            let endpoint = Endpoint::discover(
                &node_ns,
                &host,
                &lab.pod_ns(pod),
                &p.interface,
                RedirectMode::Peer,
            )
            .map_err(lab_error)?;
            lb.set_endpoint(p.address, endpoint).map_err(lab_error)?;
            lb.attach_veth_ingress(&node_ns, &host).map_err(lab_error)?;
        }
        for dev in &edges {
            lb.attach_netdev(&node_ns, dev).map_err(lab_error)?;
        }
        kinds.extend(lb.attach_kinds());
    }
    Ok(ebpf::join_attach_kinds(kinds.into_iter()))
}

/// Loads node `node`'s programs on its own maps, told which node they
/// serve and how it is wired (the datapath and the eBPF proxy both do).
pub fn load_node(lab: &LabNet<'_>, datapath: Datapath, node: usize) -> Result<ServiceLb> {
    let n = &lab.plan.nodes[node];
    let mut lb = ServiceLb::load_node(lab.run.as_str(), &n.name).map_err(lab_error)?;
    let (scope, config) = node_settings(lab.plan, datapath, node);
    lb.set_node(scope);
    lb.configure(&config).map_err(lab_error)?;
    Ok(lb)
}

/// What node `node`'s maps need to know about it.
pub fn node_settings(plan: &Plan, datapath: Datapath, node: usize) -> (NodeScope, NodeConfig) {
    let n = &plan.nodes[node];
    // Node ports answer at the node's underlay address and at the address
    // its pods know it by (single-node labs reach node ports there).
    let mut addresses: Vec<Ipv4Addr> = n.underlay_ip.into_iter().collect();
    let gateway = super::pod_gateway(datapath, n);
    if !addresses.contains(&gateway) {
        addresses.push(gateway);
    }
    let local_pods: HashSet<Ipv4Addr> = plan.pods_of(node).map(|(_, p)| p.address).collect();
    let config = NodeConfig {
        snat_addr: n.underlay_ip,
        hairpin_addr: Some(hairpin_address(plan)),
        host_routing: super::has_ebpf_host_routing(datapath),
        timeouts: Default::default(),
    };
    (
        NodeScope {
            addresses,
            local_pods,
        },
        config,
    )
}

/// The source a pod sees on its own connections through a service (Cilium's
/// 169.254.42.1), moved along 169.254.42.0/24 if the topology uses it.
pub fn hairpin_address(plan: &Plan) -> Ipv4Addr {
    let taken = |a: Ipv4Addr| {
        plan.nodes.iter().any(|n| n.routed_gateway == a) || plan.pods.iter().any(|p| p.address == a)
    };
    (1..=254)
        .map(|x| Ipv4Addr::new(169, 254, 42, x))
        .find(|&a| !taken(a))
        .unwrap_or(Ipv4Addr::new(169, 254, 42, 1))
}

/// Adds the host routing counters of the run's programs (all nodes).
pub fn add_proof(run: &RunId, proof: &mut Proof) -> Result<()> {
    let c = ebpf::pinned_counters(run.as_str()).map_err(lab_error)?;
    add_verdicts(&c, proof);
    Ok(())
}

/// Adds what the programs did with the packets they saw, whoever loaded
/// them (eBPF host routing, the eBPF proxy): handed to a local pod
/// (`bpf_redirected`), left to the kernel (`bpf_passed`), dropped
/// (`bpf_dropped`).
pub fn add_verdicts(c: &ebpf::Counters, proof: &mut Proof) {
    for (name, value) in [
        (REDIRECTED, c.redirected),
        (PASSED, c.passed),
        (DROPPED, c.dropped),
    ] {
        proof.insert(name.to_string(), value as i64);
    }
}

/// Why a sample's proof shows trouble in eBPF programs, if it does: no
/// program of a lab drops a packet of a working measurement (no service
/// lacks backends, every rewrite and every route out succeeds).
pub fn drop_contradiction(proof: &Proof) -> Option<String> {
    drops(proof).map(|d| format!("proof: {d}"))
}

/// What a failed sample's proof says about eBPF drops, to add to its
/// error: drops are likely why the workload failed.
pub fn drops_during_failure(proof: &Proof) -> Option<String> {
    drops(proof).map(|d| format!("meanwhile {d}"))
}

fn drops(proof: &Proof) -> Option<String> {
    let dropped = proof::get(proof, DROPPED);
    (dropped > 0).then(|| {
        format!(
            "the eBPF programs dropped {dropped} packets ({DROPPED} = {dropped}): a service without backends, no free SNAT port, no route out, or a failed rewrite"
        )
    })
}

/// An eBPF error as a lab error; a missing capability skips the cell.
pub(crate) fn lab_error(e: ebpf::EbpfError) -> LabError {
    match e {
        ebpf::EbpfError::Unavailable(reason) => {
            LabError::Unsupported(format!("eBPF datapaths unavailable: {reason}"))
        }
        other => LabError::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_NODES: &str = r#"
[underlay]
cidr = "10.0.0.0/24"
[[nodes]]
name = "a"
pod_cidr = "10.244.1.0/24"
[[nodes]]
name = "b"
pod_cidr = "10.244.2.0/24"
routed_gateway = "169.254.42.1"
[[pods]]
name = "pa"
node = "a"
[[pods]]
name = "pb"
node = "b"
"#;

    #[test]
    fn each_node_knows_its_own_addresses_and_pods() {
        let plan = crate::topology::parse(std::path::Path::new("t.toml"), TWO_NODES).unwrap();
        let (scope, config) = node_settings(&plan, Datapath::VethEbpf, 1);
        let b = &plan.nodes[1];
        assert_eq!(
            scope.addresses,
            vec![b.underlay_ip.unwrap(), b.routed_gateway]
        );
        assert_eq!(
            scope.local_pods,
            HashSet::from([plan.pods[1].address]),
            "only node b's pod"
        );
        assert_eq!(config.snat_addr, b.underlay_ip);
        assert!(config.host_routing);
        let (scope, config) = node_settings(&plan, Datapath::Bridge, 0);
        assert_eq!(scope.addresses[1], plan.nodes[0].gateway);
        assert!(!config.host_routing);
    }

    #[test]
    fn hairpin_address_avoids_the_topology() {
        let plan = crate::topology::parse(std::path::Path::new("t.toml"), TWO_NODES).unwrap();
        assert_eq!(hairpin_address(&plan), Ipv4Addr::new(169, 254, 42, 2));
    }

    #[test]
    fn drops_fail_the_sample() {
        let ok = Proof::from([(DROPPED.to_string(), 0)]);
        assert_eq!(drop_contradiction(&ok), None);
        let bad = Proof::from([(DROPPED.to_string(), 3)]);
        assert!(drop_contradiction(&bad)
            .unwrap()
            .contains("bpf_dropped = 3"));
        assert_eq!(drops_during_failure(&ok), None);
        assert!(drops_during_failure(&bad)
            .unwrap()
            .starts_with("meanwhile the eBPF programs dropped 3 packets"));
    }

    #[test]
    fn verdicts_reach_the_proof() {
        let c = ebpf::Counters {
            runs: 9,
            redirected: 4,
            passed: 3,
            dropped: 2,
            ..Default::default()
        };
        let mut proof = Proof::new();
        add_verdicts(&c, &mut proof);
        assert_eq!(
            proof,
            Proof::from([
                (REDIRECTED.to_string(), 4),
                (PASSED.to_string(), 3),
                (DROPPED.to_string(), 2),
            ])
        );
    }
}
