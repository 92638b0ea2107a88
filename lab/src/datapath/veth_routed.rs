//! `veth-routed`: a veth pair per pod, routed by the node (Calico style).
//! The pod has a /32 and a default route via a link-local gateway on-link;
//! the node has a /32 route per pod and answers ARP on the host ends.

use std::net::Ipv4Addr;

use super::{LabNet, Wiring};
use crate::error::Result;

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
        let proxy_arp = format!("net/ipv4/conf/{host}/proxy_arp");
        // proxy_arp answers after proxy_delay (0.8 s by default): not in a lab.
        let proxy_delay = format!("net/ipv4/neigh/{host}/proxy_delay");
        // Independent of each other: all in flight at once.
        futures::try_join!(
            lab.sysctl(&node_ns, &proxy_arp, "1"),
            lab.sysctl(&node_ns, &proxy_delay, "0"),
            route_pod(lab, pod, &host),
        )?;
        Ok(())
    }
}

/// Routes pod `pod` through the node's end `host` of its pair: a /32 route
/// on the node, and in the pod its /32 address, the link-local gateway
/// on-link and the default route via it.
pub(super) async fn route_pod(lab: &LabNet<'_>, pod: usize, host: &str) -> Result<()> {
    let p = &lab.plan.pods[pod];
    let gw = lab.plan.nodes[p.node].routed_gateway;
    let node_nl = lab.nl(&lab.node_ns(p.node));
    let pod_nl = lab.nl(&lab.pod_ns(pod));
    let iface = p.interface.as_str();
    futures::try_join!(
        node_nl.add_route(p.address, 32, host, None),
        pod_nl.add_address(iface, p.address, 32),
        pod_nl.add_route(gw, 32, iface, None),
        pod_nl.add_route(Ipv4Addr::UNSPECIFIED, 0, iface, Some(gw)),
    )?;
    Ok(())
}
