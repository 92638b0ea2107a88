//! Multi-node labs: an underlay switch joining the nodes, and an overlay
//! carrying pod traffic between them (docs/topology.md `overlays`). One file per
//! overlay behind one function each, chosen by [`Overlay`].

mod routed;
mod underlay;
mod vxlan;

pub use underlay::{underlay_link, UNDERLAY_NS};

use crate::datapath::LabNet;
use crate::error::Result;
use crate::kinds::{Overlay, Target};
use crate::proof::{self, Proof};
use crate::topology::{Endpoint, PathPlan, Plan};

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
        if let Some((r, t)) =
            link_packets(&run.netns(&node.name), &run.link(crate::names::VXLAN_LINK))?
        {
            rx += r;
            tx += t;
        }
    }
    proof.insert(VXLAN_RX.into(), rx);
    proof.insert(VXLAN_TX.into(), tx);
    Ok(())
}

/// Whether some packet of `path` travels between a pod and another node,
/// which the overlay carries (node-to-node traffic takes the underlay). A
/// node port splits the path at the node the client connects to: client to
/// that node over the underlay (a pod's replies come back over the
/// overlay), that node to the backend over the overlay.
pub fn pod_traffic_crosses_nodes(plan: &Plan, path: &PathPlan) -> bool {
    let node = |e| plan.endpoint_node(e);
    let is_pod = |e| matches!(e, Endpoint::Pod(_));
    match (path.target, path.via) {
        (Target::NodePort, Some(via)) => {
            (is_pod(path.client) && node(path.client) != via)
                || (is_pod(path.server) && node(path.server) != via)
        }
        _ => node(path.client) != node(path.server) && (is_pod(path.client) || is_pod(path.server)),
    }
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
    use super::*;

    #[test]
    fn node_port_paths_cross_where_pods_meet_other_nodes() {
        let (a, b) = (0, 1);
        let path = |client, server, target, via| PathPlan {
            client,
            server,
            target,
            service: Some(0),
            via,
        };
        let plan = two_node_plan();
        let (pa, pb) = (Endpoint::Pod(0), Endpoint::Pod(1));
        // A node reaching a node port whose backend is on that node: underlay only.
        let p = path(Endpoint::Node(a), pb, Target::NodePort, Some(b));
        assert!(!pod_traffic_crosses_nodes(&plan, &p));
        // A pod of node a: its replies come back over the overlay.
        let p = path(pa, pb, Target::NodePort, Some(b));
        assert!(pod_traffic_crosses_nodes(&plan, &p));
        // A node reaching a node port whose backend is on another node.
        let p = path(Endpoint::Node(b), pa, Target::NodePort, Some(b));
        assert!(pod_traffic_crosses_nodes(&plan, &p));
        let p = path(pa, pb, Target::ClusterIp, None);
        assert!(pod_traffic_crosses_nodes(&plan, &p));
        let p = path(Endpoint::Node(a), Endpoint::Node(b), Target::NodeIp, None);
        assert!(!pod_traffic_crosses_nodes(&plan, &p));
    }

    fn two_node_plan() -> Plan {
        let text = r#"
[underlay]
cidr = "10.0.0.0/24"
[[nodes]]
name = "a"
pod_cidr = "10.244.1.0/24"
[[nodes]]
name = "b"
pod_cidr = "10.244.2.0/24"
[[pods]]
name = "pa"
node = "a"
[[pods]]
name = "pb"
node = "b"
"#;
        crate::topology::parse(std::path::Path::new("t.toml"), text).unwrap()
    }

    #[test]
    fn net_dev_counters_are_read() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\ndl3f9a-vx: 5000 40 0 0 0 0 0 0 9000 70 0 0 0 0 0 0\n";
        assert_eq!(super::parse_net_dev(text, "dl3f9a-vx"), Some((40, 70)));
        assert_eq!(super::parse_net_dev(text, "lo"), Some((2, 2)));
        assert_eq!(super::parse_net_dev(text, "eth9"), None);
    }
}
