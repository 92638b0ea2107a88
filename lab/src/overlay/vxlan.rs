//! `vxlan`: a VXLAN device per node, programmed the way Flannel's vxlan
//! backend does it: the device holds the .0 address of the node's pod CIDR,
//! and for every other node a route to its pod CIDR via its .0 address
//! on-link, a permanent neighbour entry (that address -> its VTEP MAC) and a
//! permanent FDB entry (that MAC -> its underlay address). No multicast, no
//! learning.

use super::underlay::underlay_link;
use crate::datapath::LabNet;
use crate::error::Result;

/// Flannel's VNI and port.
const VNI: u32 = 1;
const PORT: u16 = 8472;

pub fn device(lab: &LabNet<'_>) -> String {
    lab.run.link(crate::names::VXLAN_LINK)
}

pub async fn wire(lab: &LabNet<'_>) -> Result<()> {
    let underlay = lab
        .plan
        .underlay
        .as_ref()
        .expect("multi-node labs have an underlay");
    let vx = device(lab);
    let ul = underlay_link(lab);
    let mut macs = Vec::new();
    for (i, node) in lab.plan.nodes.iter().enumerate() {
        let ns = lab.node_ns(i);
        let nl = lab.nl(&ns);
        lab.journal_link(&ns, &vx)?;
        nl.add_vxlan(
            &vx,
            VNI,
            node.underlay_ip.expect("underlay address"),
            &ul,
            PORT,
        )
        .await?;
        nl.set_mtu(&vx, underlay.mtu - super::VXLAN_OVERHEAD)
            .await?;
        nl.add_address(&vx, node.pod_cidr.network(), 32).await?;
        nl.set_up(&vx).await?;
        macs.push(nl.mac(&vx).await?);
    }
    for i in 0..lab.plan.nodes.len() {
        let nl = lab.nl(&lab.node_ns(i));
        for (j, other) in lab.plan.nodes.iter().enumerate().filter(|(j, _)| *j != i) {
            let vtep = other.pod_cidr.network();
            nl.add_neighbour(&vx, vtep, &macs[j]).await?;
            nl.add_fdb(&vx, &macs[j], other.underlay_ip.expect("underlay address"))
                .await?;
            nl.add_route(vtep, other.pod_cidr.prefix_len(), &vx, Some(vtep))
                .await?;
        }
    }
    Ok(())
}
