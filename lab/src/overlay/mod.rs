//! Multi-node labs: an underlay switch joining the nodes, and an overlay
//! carrying pod traffic between them (CONTRACT.md `overlay`). One file per
//! overlay behind one function each, chosen by [`Overlay`].

mod routed;
mod underlay;
mod vxlan;

pub use underlay::{underlay_link, UNDERLAY_NS};

use crate::datapath::LabNet;
use crate::error::Result;
use crate::kinds::Overlay;
use crate::proof::{self, Proof};

/// Proof counters: packets through the nodes' VXLAN devices.
pub const VXLAN_RX: &str = "vxlan_rx_packets";
pub const VXLAN_TX: &str = "vxlan_tx_packets";

/// VXLAN adds 50 bytes (outer Ethernet, IP, UDP, VXLAN headers).
pub const VXLAN_OVERHEAD: u32 = 50;

/// MTU the pods get: the underlay's, less the encapsulation.
pub fn pod_mtu(lab: &LabNet<'_>, overlay: Option<Overlay>) -> Option<u32> {
    let underlay = lab.plan.underlay.as_ref()?;
    Some(match overlay {
        Some(Overlay::Vxlan) => underlay.mtu - VXLAN_OVERHEAD,
        _ => underlay.mtu,
    })
}

/// A node's devices towards the other nodes (the same names in every node):
/// the underlay link, and the VXLAN device on vxlan labs. None on a single
/// node.
pub fn edge_links(lab: &LabNet<'_>) -> Vec<String> {
    if lab.plan.underlay.is_none() {
        return Vec::new();
    }
    let mut links = vec![underlay_link(lab)];
    if lab.overlay == Some(Overlay::Vxlan) {
        links.push(vxlan::device(lab));
    }
    links
}

/// Joins the nodes (after the datapath wired each of them).
pub async fn wire(lab: &LabNet<'_>, overlay: Overlay) -> Result<()> {
    underlay::wire(lab).await?;
    match overlay {
        Overlay::Routed => routed::wire(lab).await,
        Overlay::Vxlan => vxlan::wire(lab).await,
    }
}

/// Adds the packets through the nodes' VXLAN devices to a proof
/// (`vxlan_rx_packets`, `vxlan_tx_packets`; 0 on routed labs, which have
/// none). Single-node labs get nothing.
pub fn add_vxlan_proof(
    run: &crate::names::RunId,
    plan: &crate::topology::Plan,
    proof: &mut Proof,
) -> Result<()> {
    if plan.underlay.is_none() {
        return Ok(());
    }
    let (mut rx, mut tx) = (0, 0);
    for node in &plan.nodes {
        if let Some((r, t)) = link_packets(&run.netns(&node.name), &run.link("vx"))? {
            rx += r;
            tx += t;
        }
    }
    proof.insert(VXLAN_RX.into(), rx);
    proof.insert(VXLAN_TX.into(), tx);
    Ok(())
}

/// Why a sample's proof contradicts the overlay, if it does: pod traffic
/// between nodes of a vxlan lab is encapsulated (node-to-node traffic takes
/// the underlay directly, as on a real Flannel host), and a routed lab
/// encapsulates nothing.
pub fn contradiction(
    overlay: Option<Overlay>,
    pod_traffic_crosses_nodes: bool,
    proof: &Proof,
) -> Option<String> {
    let tx = proof::get(proof, VXLAN_TX);
    match overlay {
        Some(Overlay::Vxlan) if pod_traffic_crosses_nodes && tx == 0 => Some(format!(
            "proof: nothing went through the VXLAN devices although pod traffic crosses nodes over vxlan ({VXLAN_TX} = 0)"
        )),
        Some(Overlay::Routed) if tx > 0 => {
            Some("proof: packets went through a VXLAN device in a routed lab".into())
        }
        _ => None,
    }
}

/// Packet counters (rx, tx) of a link inside a namespace, from that
/// namespace's /proc/net/dev.
pub fn link_packets(netns: &str, link: &str) -> Result<Option<(i64, i64)>> {
    let text = crate::netns::run_in(netns, || {
        std::fs::read_to_string("/proc/thread-self/net/dev")
    })?
    .map_err(|e| {
        crate::error::LabError::Other(format!("netns {netns}: reading /proc/net/dev: {e}"))
    })?;
    Ok(parse_net_dev(&text, link))
}

/// (rx_packets, tx_packets) of `link` in /proc/net/dev text.
pub fn parse_net_dev(text: &str, link: &str) -> Option<(i64, i64)> {
    text.lines().find_map(|line| {
        let (name, fields) = line.split_once(':')?;
        if name.trim() != link {
            return None;
        }
        let f: Vec<i64> = fields
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets ...
        Some((*f.get(1)?, *f.get(9)?))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn net_dev_counters_are_read() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\ndl3f9a-vx: 5000 40 0 0 0 0 0 0 9000 70 0 0 0 0 0 0\n";
        assert_eq!(super::parse_net_dev(text, "dl3f9a-vx"), Some((40, 70)));
        assert_eq!(super::parse_net_dev(text, "lo"), Some((2, 2)));
        assert_eq!(super::parse_net_dev(text, "eth9"), None);
    }
}
