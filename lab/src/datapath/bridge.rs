//! `bridge` and `bridge-nf-off`: a veth per pod plugged into a Linux bridge
//! in the node namespace; the bridge carries the pods' gateway address.
//! `bridge-nf-off` sets net.bridge.bridge-nf-call-iptables=0 in the node
//! namespace, so bridged frames skip iptables (and cluster IP replies miss
//! their reverse NAT).

use std::net::Ipv4Addr;

use super::{LabNet, Wiring};
use crate::error::Result;

pub struct Bridge {
    pub nf_call_iptables: bool,
}

impl Bridge {
    fn name(lab: &LabNet<'_>) -> String {
        lab.run.link("br0")
    }
}

impl Wiring for Bridge {
    async fn wire_node(&self, lab: &LabNet<'_>, node: usize) -> Result<()> {
        let ns = lab.node_ns(node);
        let n = &lab.plan.nodes[node];
        let br = Self::name(lab);
        lab.journal_link(&ns, &br)?;
        let nl = lab.nl(&ns);
        nl.add_bridge(&br).await?;
        nl.add_address(&br, n.gateway, n.pod_cidr.prefix_len())
            .await?;
        nl.set_up(&br).await?;
        let value = if self.nf_call_iptables { "1" } else { "0" };
        lab.sysctl(&ns, "net/bridge/bridge-nf-call-iptables", value)
            .await
    }

    async fn wire_pod(&self, lab: &LabNet<'_>, pod: usize) -> Result<()> {
        let p = &lab.plan.pods[pod];
        let n = &lab.plan.nodes[p.node];
        lab.pod_veth_in_bridge(pod, &Self::name(lab)).await?;
        let pod_nl = lab.nl(&lab.pod_ns(pod));
        futures::try_join!(
            pod_nl.add_address(&p.interface, p.address, n.pod_cidr.prefix_len()),
            pod_nl.add_route(Ipv4Addr::UNSPECIFIED, 0, &p.interface, Some(n.gateway)),
        )?;
        Ok(())
    }
}
