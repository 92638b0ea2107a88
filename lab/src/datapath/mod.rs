//! Datapaths: how pods are wired to their node. One trait, one file per
//! wiring, chosen by name ([`crate::kinds::Datapath`]).

mod bridge;
mod common;
mod ipvlan;
mod macvlan;
mod uplink;
mod veth_routed;

pub use common::LabNet;

use futures::TryStreamExt;

use crate::error::Result;
use crate::kinds::Datapath;

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
