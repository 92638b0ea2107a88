//! `routed`: every node routes each other node's pod CIDR via that node's
//! underlay address, no encapsulation (what Calico's BGP mode installs).

use super::underlay::underlay_link;
use crate::datapath::LabNet;
use crate::error::Result;

pub async fn wire(lab: &LabNet<'_>) -> Result<()> {
    let ul = underlay_link(lab);
    for i in 0..lab.plan.nodes.len() {
        let nl = lab.nl(&lab.node_ns(i));
        let others = lab.plan.nodes.iter().enumerate().filter(|(j, _)| *j != i);
        for (_, other) in others {
            let cidr = other.pod_cidr;
            nl.add_route(cidr.network(), cidr.prefix_len(), &ul, other.underlay_ip)
                .await?;
        }
    }
    Ok(())
}
