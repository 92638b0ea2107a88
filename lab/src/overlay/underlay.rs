//! The underlay: a switch namespace with a bridge, and one veth per node
//! whose node end carries the node's own address (its "host network").

use crate::datapath::LabNet;
use crate::error::Result;

pub use crate::names::UNDERLAY_NS;

/// The node end of a node's underlay link: `dl3f9a-ul`.
pub fn underlay_link(lab: &LabNet<'_>) -> String {
    lab.run.link(crate::names::UNDERLAY_LINK)
}

pub async fn wire(lab: &LabNet<'_>) -> Result<()> {
    let underlay = lab
        .plan
        .underlay
        .as_ref()
        .expect("multi-node labs have an underlay");
    let sw_ns = lab.run.netns(UNDERLAY_NS);
    let sw = lab.run.link("sw");
    let sw_nl = lab.nl(&sw_ns);
    sw_nl.set_up("lo").await?;
    lab.journal_link(&sw_ns, &sw)?;
    sw_nl.add_bridge(&sw).await?;
    sw_nl.set_up(&sw).await?;
    let ul = underlay_link(lab);
    for (i, node) in lab.plan.nodes.iter().enumerate() {
        let port = lab.run.link(&format!("u{i}"));
        let peer = lab.run.link(&format!("w{i}"));
        let node_ns = lab.node_ns(i);
        lab.journal_link(&sw_ns, &port)?;
        sw_nl.add_veth(&port, &peer).await?;
        sw_nl.set_mtu(&port, underlay.mtu).await?;
        sw_nl.set_mtu(&peer, underlay.mtu).await?;
        sw_nl.set_alias(&port, &node.name).await?;
        sw_nl.move_to(&peer, &node_ns, &ul).await?;
        sw_nl.set_master(&port, &sw).await?;
        sw_nl.set_up(&port).await?;
        let nl = lab.nl(&node_ns);
        let ip = node
            .underlay_ip
            .expect("multi-node nodes have an underlay address");
        nl.add_address(&ul, ip, underlay.cidr.prefix_len()).await?;
        nl.set_up(&ul).await?;
        if let Some(rate) = &underlay.rate {
            shape(&node_ns, &ul, rate)?;
        }
    }
    Ok(())
}

/// Imitates a slower wire with a token bucket on the node's underlay link
/// (netem is not in every kernel; tbf is).
fn shape(ns: &str, link: &str, rate: &str) -> Result<()> {
    let args = [
        "qdisc", "add", "dev", link, "root", "tbf", "rate", rate, "burst", "256kb", "latency",
        "50ms",
    ];
    crate::command::run_in(ns, "tc", &args, None).map(drop)
}
