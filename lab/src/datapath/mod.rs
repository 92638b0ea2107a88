//! Datapaths: how pods are wired to their node. One trait, one file per
//! wiring, chosen by name ([`crate::kinds::Datapath`]).

mod bridge;
mod common;
pub mod ebpf_routing;
mod ipvlan;
mod macvlan;
mod netkit;
mod uplink;
mod veth_routed;

pub use common::LabNet;
pub use netkit::primary_name as netkit_primary;

use std::net::Ipv4Addr;

use futures::TryStreamExt;

use crate::error::Result;
use crate::kinds::{Datapath, Target};
use crate::names::RunId;
use crate::proof::{self, Proof};
use crate::topology::{Endpoint, NodePlan, PathPlan, Plan};

/// Proof counter of eBPF host routing: packets handed straight to a pod.
pub const REDIRECTED: &str = "bpf_redirected";
/// Proof counter: packets the lab's eBPF programs dropped.
pub const DROPPED: &str = "bpf_dropped";
/// Proof counter: packets the lab's eBPF programs left to the kernel's own
/// path (TC_ACT_OK), translated or not.
pub const PASSED: &str = "bpf_passed";

/// One way of wiring pods to nodes.
// Used only inside the crate on one runtime, so Send bounds do not matter.
#[allow(async_fn_in_trait)]
pub trait Wiring {
    /// Sets up a node namespace before its pods (bridges, uplinks, sysctls).
    async fn wire_node(&self, lab: &LabNet<'_>, node: usize) -> Result<()>;
    /// Connects one pod (namespace already created) to its node. Runs for
    /// many pods at once (after every node is wired): create the pod's
    /// links straight inside it (see [`LabNet::pod_veth`]) and journal
    /// them with [`LabNet::journal_link_grouped`].
    async fn wire_pod(&self, lab: &LabNet<'_>, pod: usize) -> Result<()>;
}

/// Wires every node and pod of the plan with datapath `kind`.
pub async fn wire(kind: Datapath, lab: &LabNet<'_>) -> Result<()> {
    match kind {
        Datapath::VethRouted | Datapath::VethEbpf => wire_with(&veth_routed::VethRouted, lab).await,
        Datapath::Bridge => {
            wire_with(
                &bridge::Bridge {
                    nf_call_iptables: true,
                },
                lab,
            )
            .await
        }
        Datapath::BridgeNfOff => {
            wire_with(
                &bridge::Bridge {
                    nf_call_iptables: false,
                },
                lab,
            )
            .await
        }
        Datapath::Macvlan => wire_with(&macvlan::Macvlan, lab).await,
        Datapath::Netkit | Datapath::NetkitEbpf => wire_with(&netkit::Netkit, lab).await,
        Datapath::IpvlanL2 | Datapath::IpvlanEbpf => {
            wire_with(
                &ipvlan::Ipvlan {
                    mode: crate::netns::netlink::IpvlanMode::L2,
                },
                lab,
            )
            .await
        }
        Datapath::IpvlanL3 => {
            wire_with(
                &ipvlan::Ipvlan {
                    mode: crate::netns::netlink::IpvlanMode::L3,
                },
                lab,
            )
            .await
        }
    }
}

/// Finishes the wiring once the nodes are joined (after the overlay, whose
/// devices eBPF host routing attaches to); says how its eBPF programs were
/// attached, if it has any.
pub fn finish(kind: Datapath, lab: &LabNet<'_>) -> Result<Option<String>> {
    if has_ebpf_host_routing(kind) {
        ebpf_routing::install(lab, kind)
    } else {
        Ok(None)
    }
}

/// Whether the wiring delivers packets to pods with eBPF programs of its
/// own (the `-ebpf` datapaths with a node-side device per pod).
pub fn has_ebpf_host_routing(kind: Datapath) -> bool {
    matches!(kind, Datapath::VethEbpf | Datapath::NetkitEbpf)
}

/// Adds the wiring's own proof counters (eBPF host routing's).
pub fn add_proof(kind: Datapath, run: &RunId, proof: &mut Proof) -> Result<()> {
    if has_ebpf_host_routing(kind) {
        ebpf_routing::add_proof(run, proof)
    } else {
        Ok(())
    }
}

/// Whether cluster IPs on this datapath need pod-to-pod masquerading: on
/// the child-link datapaths (macvlan, ipvlan) pod-to-pod traffic stays
/// inside the driver and skips the node's stack, so the node must
/// masquerade it for the replies to come back through its conntrack.
pub fn cluster_ip_needs_masquerade(kind: Datapath) -> bool {
    matches!(
        kind,
        Datapath::Macvlan | Datapath::IpvlanL2 | Datapath::IpvlanL3 | Datapath::IpvlanEbpf
    )
}

/// Whether pods reach their node at the link-local routed gateway (the
/// routed wirings) rather than at an address inside the pod CIDR.
pub fn is_routed(kind: Datapath) -> bool {
    matches!(
        kind,
        Datapath::VethRouted | Datapath::VethEbpf | Datapath::Netkit | Datapath::NetkitEbpf
    )
}

/// The address a pod of `node` uses as its gateway (also the node's own
/// address as the pod sees it).
pub fn pod_gateway(kind: Datapath, node: &NodePlan) -> Ipv4Addr {
    if is_routed(kind) {
        node.routed_gateway
    } else {
        node.gateway
    }
}

/// Why a sample's proof on `path` contradicts the wiring, if it does: eBPF
/// host routing must hand the packets to the pods itself wherever a pod
/// talks to anything but its own node. (Drops of any eBPF program, the
/// proxy's too, are judged apart: [`ebpf_routing::drop_contradiction`].)
pub fn contradiction(
    kind: Datapath,
    plan: &Plan,
    path: &PathPlan,
    proof: &Proof,
) -> Option<String> {
    (has_ebpf_host_routing(kind) && host_routed(plan, path) && proof::get(proof, REDIRECTED) == 0)
        .then(|| {
            format!("proof: no packet was handed to a pod by eBPF host routing ({REDIRECTED} = 0)")
        })
}

/// Whether some packet of `path` reaches a pod from outside the pod's own
/// node's stack (another pod, or another node), which host routing
/// delivers. A node port is the node the client connects to.
fn host_routed(plan: &Plan, path: &PathPlan) -> bool {
    let peer = match (path.target, path.via) {
        (Target::NodePort, Some(via)) => Endpoint::Node(via),
        _ => path.server,
    };
    match (path.client, peer) {
        (Endpoint::Node(_), Endpoint::Node(_)) => false,
        (Endpoint::Pod(p), Endpoint::Node(n)) | (Endpoint::Node(n), Endpoint::Pod(p)) => {
            plan.pods[p].node != n
        }
        (Endpoint::Pod(_), Endpoint::Pod(_)) => true,
    }
}

/// Pods wired at once. Their requests queue on the node's connection and
/// the pods' own; enough to keep the kernel busy while a reply travels,
/// few enough that an error stops the rest soon.
const PODS_AT_ONCE: usize = 64;

/// Nodes one after the other (they are few and pods need them), then the
/// pods concurrently; the first error stops the rest.
async fn wire_with(wiring: &impl Wiring, lab: &LabNet<'_>) -> Result<()> {
    for node in 0..lab.plan.nodes.len() {
        lab.node_basics(node).await?;
        wiring.wire_node(lab, node).await?;
    }
    futures::stream::iter((0..lab.plan.pods.len()).map(Ok))
        .try_for_each_concurrent(PODS_AT_ONCE, |pod| async move {
            lab.pod_basics(pod).await?;
            wiring.wire_pod(lab, pod).await
        })
        .await
}
