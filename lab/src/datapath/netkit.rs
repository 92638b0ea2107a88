//! `netkit`: a netkit pair per pod (Linux >= 6.7), in L3 mode, routed by
//! the node like veth-routed: the primary device stays in the node
//! namespace, the peer becomes the pod's interface. netkit devices have no
//! ARP (L3 mode), so the node needs no proxy ARP; with no program attached
//! they forward like a veth pair. `netkit-ebpf` adds eBPF programs at the
//! peer hook (the eBPF proxy attaches them).

use rtnetlink::packet_route::link::NetkitMode;
use rtnetlink::LinkNetkit;

use super::veth_routed::{route_pod, VethRouted};
use super::{LabNet, Wiring};
use crate::error::{LabError, Result};

pub struct Netkit;

/// Name of the node-side (primary) device of pod `pod`'s netkit pair.
pub fn primary_name(lab: &LabNet<'_>, pod: usize) -> String {
    lab.run.link(&format!("k{pod}"))
}

impl Wiring for Netkit {
    async fn wire_node(&self, lab: &LabNet<'_>, node: usize) -> Result<()> {
        // The same link-local gateway on the node's loopback.
        VethRouted.wire_node(lab, node).await
    }

    async fn wire_pod(&self, lab: &LabNet<'_>, pod: usize) -> Result<()> {
        let p = &lab.plan.pods[pod];
        let node_ns = lab.node_ns(p.node);
        let pod_ns = lab.pod_ns(pod);
        let primary = primary_name(lab, pod);
        let peer = lab.run.link(&format!("q{pod}"));
        lab.journal_link(&node_ns, &primary)?;
        let nl = lab.nl(&node_ns);
        let pair = LinkNetkit::new(&primary, &peer, NetkitMode::L3).build();
        match nl.add_link(pair, "netkit").await {
            Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => {
                return Err(LabError::Unsupported(
                    "kernel has no netkit support (EOPNOTSUPP creating a netkit link)".into(),
                ))
            }
            other => other?,
        }
        if let Some(mtu) = lab.pod_mtu {
            nl.set_mtu(&peer, mtu).await?;
        }
        nl.move_to(&peer, &pod_ns, &p.interface).await?;
        let mtu = lab.pod_mtu;
        nl.set_link(&primary, "configure primary", |l| {
            let l = l.alias(p.name.clone()).up();
            match mtu {
                Some(mtu) => l.mtu(mtu),
                None => l,
            }
        })
        .await?;
        lab.nl(&pod_ns).set_up(&p.interface).await?;
        route_pod(lab, pod, &primary).await
    }
}
