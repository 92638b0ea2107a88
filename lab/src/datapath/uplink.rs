//! Shared by the child-link datapaths (macvlan, ipvlan): a parent link in the
//! node namespace, a node-side child carrying the gateway address, and one
//! child per pod, created straight inside the pod namespace.
//!
//! The parent is one end of a veth pair whose other end stays in the node
//! namespace too: this kernel has no dummy links, and a veth end only has
//! carrier while its peer is up.

use std::net::Ipv4Addr;

use super::{LabNet, Wiring};
use crate::error::{LabError, Result};
use crate::netns::cross::ChildKind;
use crate::netns::netlink::NetlinkError;

/// Kind of child link to create on the uplink.
pub trait ChildLink {
    fn kind(&self) -> ChildKind;
    /// The error of a failed creation, e.g. "unsupported" for a kernel
    /// without the driver.
    fn creation_error(&self, e: NetlinkError) -> LabError {
        e.into()
    }
    /// Whether pods reach their gateway by ARP (L2) or need no neighbour
    /// (ipvlan L3: routes out of the device).
    fn pods_use_gateway(&self) -> bool {
        true
    }
}

pub fn uplink_name(lab: &LabNet<'_>) -> String {
    lab.run.link("up0")
}

pub fn host_child_name(lab: &LabNet<'_>) -> String {
    lab.run.link("hc")
}

/// Creates a child of the node's uplink inside namespace `target`, up.
async fn create_child(
    child: &impl ChildLink,
    lab: &LabNet<'_>,
    node_ns: &str,
    target: &str,
    name: &str,
) -> Result<()> {
    lab.nl(node_ns)
        .add_child_into(child.kind(), &uplink_name(lab), target, name)
        .await
        .map_err(|e| child.creation_error(e))
}

/// Builds the uplink pair and the node-side child with the gateway address.
pub async fn wire_node(child: &impl ChildLink, lab: &LabNet<'_>, node: usize) -> Result<()> {
    let ns = lab.node_ns(node);
    let n = &lab.plan.nodes[node];
    let up0 = uplink_name(lab);
    let up1 = lab.run.link("up1");
    lab.journal_link(&ns, &up0)?;
    let nl = lab.nl(&ns);
    nl.add_veth(&up0, &up1).await?;
    nl.set_up(&up1).await?;
    nl.set_up(&up0).await?;
    let hc = host_child_name(lab);
    lab.journal_link(&ns, &hc)?;
    create_child(child, lab, &ns, &ns, &hc).await?;
    nl.add_address(&hc, n.gateway, n.pod_cidr.prefix_len())
        .await?;
    Ok(())
}

/// Creates the pod's child inside the pod, addresses it and routes the
/// service CIDR (and everything else) via the node-side child.
pub async fn wire_pod(child: &impl ChildLink, lab: &LabNet<'_>, pod: usize) -> Result<()> {
    let p = &lab.plan.pods[pod];
    let n = &lab.plan.nodes[p.node];
    let node_ns = lab.node_ns(p.node);
    let pod_ns = lab.pod_ns(pod);
    lab.journal_link_grouped(&pod_ns, &p.interface).await?;
    create_child(child, lab, &node_ns, &pod_ns, &p.interface).await?;
    let pod_nl = lab.nl(&pod_ns);
    let via = child.pods_use_gateway().then_some(n.gateway);
    let svc = lab.plan.service_cidr;
    let iface = p.interface.as_str();
    pod_nl
        .add_address(iface, p.address, n.pod_cidr.prefix_len())
        .await?;
    futures::try_join!(
        pod_nl.add_route(svc.network(), svc.prefix_len(), iface, via),
        pod_nl.add_route(Ipv4Addr::UNSPECIFIED, 0, iface, via),
    )?;
    Ok(())
}

/// Every child-link datapath wires the same way around its link kind.
impl<T: ChildLink> Wiring for T {
    async fn wire_node(&self, lab: &LabNet<'_>, node: usize) -> Result<()> {
        wire_node(self, lab, node).await
    }

    async fn wire_pod(&self, lab: &LabNet<'_>, pod: usize) -> Result<()> {
        wire_pod(self, lab, pod).await
    }
}
