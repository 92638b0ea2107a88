//! Shared by the child-link datapaths (macvlan, ipvlan): a parent link in the
//! node namespace, a node-side child carrying the gateway address, and one
//! child per pod moved into the pod namespace.
//!
//! The parent is one end of a veth pair whose other end stays in the node
//! namespace too: this kernel has no dummy links, and a veth end only has
//! carrier while its peer is up.

use std::net::Ipv4Addr;

use super::{LabNet, Wiring};
use crate::error::Result;

/// Kind of child link to create on the uplink.
#[allow(async_fn_in_trait)]
pub trait ChildLink {
    async fn create(&self, lab: &LabNet<'_>, ns: &str, name: &str, parent: &str) -> Result<()>;
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
    child.create(lab, &ns, &hc, &up0).await?;
    nl.add_address(&hc, n.gateway, n.pod_cidr.prefix_len())
        .await?;
    nl.set_up(&hc).await?;
    Ok(())
}

/// Creates the pod's child on the uplink, moves it in, addresses it and
/// routes the service CIDR (and everything else) via the node-side child.
pub async fn wire_pod(child: &impl ChildLink, lab: &LabNet<'_>, pod: usize) -> Result<()> {
    let p = &lab.plan.pods[pod];
    let n = &lab.plan.nodes[p.node];
    let ns = lab.node_ns(p.node);
    let name = lab.run.link(&format!("c{pod}"));
    lab.journal_link(&ns, &name)?;
    child.create(lab, &ns, &name, &uplink_name(lab)).await?;
    lab.nl(&ns).set_alias(&name, &p.name).await?;
    lab.move_into_pod(pod, &name).await?;
    let pod_nl = lab.nl(&lab.pod_ns(pod));
    pod_nl
        .add_address(&p.interface, p.address, n.pod_cidr.prefix_len())
        .await?;
    let via = child.pods_use_gateway().then_some(n.gateway);
    let svc = lab.plan.service_cidr;
    pod_nl
        .add_route(svc.network(), svc.prefix_len(), &p.interface, via)
        .await?;
    pod_nl
        .add_route(Ipv4Addr::UNSPECIFIED, 0, &p.interface, via)
        .await?;
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
