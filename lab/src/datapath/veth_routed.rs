//! `veth-routed`: a veth pair per pod, routed by the node (Calico style).
//! The pod has a /32 and a default route via a link-local gateway on-link;
//! the node has a /32 route per pod and answers ARP on the host ends.

use super::{LabNet, Wiring};
use crate::error::Result;
use crate::netns;

pub struct VethRouted;

impl Wiring for VethRouted {
    async fn wire_node(&self, lab: &LabNet<'_>, node: usize) -> Result<()> {
        // The gateway address lives on the node's loopback: the node then
        // answers ARP for it on every host end (and pods can ping it). Proxy
        // ARP alone would need a route for it out another interface.
        let ns = lab.node_ns(node);
        let gw = lab.plan.nodes[node].routed_gateway;
        lab.nl(&ns)
            .add_address("lo", gw, 32)
            .await
            .map_err(Into::into)
    }

    async fn wire_pod(&self, lab: &LabNet<'_>, pod: usize) -> Result<()> {
        let node_ns = lab.node_ns(lab.plan.pods[pod].node);
        let host = lab.pod_veth(pod).await?;
        netns::write_sysctl(&node_ns, &format!("net/ipv4/conf/{host}/proxy_arp"), "1")?;
        // proxy_arp answers after proxy_delay (0.8 s by default): not in a lab.
        netns::write_sysctl(&node_ns, &format!("net/ipv4/neigh/{host}/proxy_delay"), "0")?;
        route_pod(lab, pod, &host).await
    }
}

/// Routes pod `pod` through the node's end `host` of its pair: a /32 route
/// on the node, and in the pod its /32 address, the link-local gateway
/// on-link and the default route via it.
pub(super) async fn route_pod(lab: &LabNet<'_>, pod: usize, host: &str) -> Result<()> {
    let p = &lab.plan.pods[pod];
    let node = &lab.plan.nodes[p.node];
    lab.nl(&lab.node_ns(p.node))
        .add_route(p.address, 32, host, None)
        .await?;
    let pod_nl = lab.nl(&lab.pod_ns(pod));
    pod_nl.add_address(&p.interface, p.address, 32).await?;
    pod_nl
        .add_route(node.routed_gateway, 32, &p.interface, None)
        .await?;
    pod_nl
        .add_route(
            std::net::Ipv4Addr::UNSPECIFIED,
            0,
            &p.interface,
            Some(node.routed_gateway),
        )
        .await?;
    Ok(())
}
