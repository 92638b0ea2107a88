//! What every wiring needs: the lab's namespaces with one netlink connection
//! each, journalled link creation, and the veth pair that joins a pod to its
//! node.

use std::collections::HashMap;

use crate::error::Result;
use crate::ledger::{Entry, Ledger};
use crate::names::RunId;
use crate::netns::{self, netlink::Netlink};
use crate::topology::Plan;

/// The lab being wired: its plan, its journal and a netlink connection per
/// namespace.
pub struct LabNet<'a> {
    pub run: &'a RunId,
    pub plan: &'a Plan,
    pub ledger: &'a Ledger,
    /// MTU of the pods' interfaces when an overlay needs a smaller one.
    pub pod_mtu: Option<u32>,
    /// How pod traffic crosses nodes (multi-node labs).
    pub overlay: Option<crate::kinds::Overlay>,
    links: HashMap<String, Netlink>,
}

impl<'a> LabNet<'a> {
    /// Opens a netlink connection in every node and pod namespace (which must
    /// exist already).
    pub fn open(run: &'a RunId, plan: &'a Plan, ledger: &'a Ledger) -> Result<LabNet<'a>> {
        let mut links = HashMap::new();
        let names = plan
            .nodes
            .iter()
            .map(|n| run.netns(&n.name))
            .chain(plan.pods.iter().map(|p| run.netns(&p.name)))
            .chain(
                plan.underlay
                    .iter()
                    .map(|_| run.netns(crate::overlay::UNDERLAY_NS)),
            );
        for ns in names {
            let nl = Netlink::open(&ns)?;
            links.insert(ns, nl);
        }
        Ok(LabNet {
            run,
            plan,
            ledger,
            pod_mtu: None,
            overlay: None,
            links,
        })
    }

    pub fn node_ns(&self, node: usize) -> String {
        self.run.netns(&self.plan.nodes[node].name)
    }

    pub fn pod_ns(&self, pod: usize) -> String {
        self.run.netns(&self.plan.pods[pod].name)
    }

    /// The netlink connection of namespace `ns`.
    pub fn nl(&self, ns: &str) -> &Netlink {
        self.links
            .get(ns)
            .unwrap_or_else(|| panic!("no netlink connection for {ns}"))
    }

    /// Records a link in the journal; it is removed with its namespace.
    pub fn journal_link(&self, ns: &str, name: &str) -> Result<()> {
        self.ledger.record(&Entry::Link {
            netns: ns.to_string(),
            name: name.to_string(),
        })?;
        Ok(())
    }

    /// Loopback up and forwarding on: a node routes for its pods.
    pub async fn node_basics(&self, node: usize) -> Result<()> {
        let ns = self.node_ns(node);
        self.nl(&ns).set_up("lo").await?;
        netns::write_sysctl(&ns, "net/ipv4/ip_forward", "1")?;
        Ok(())
    }

    pub async fn pod_basics(&self, pod: usize) -> Result<()> {
        self.nl(&self.pod_ns(pod)).set_up("lo").await?;
        Ok(())
    }

    /// Name of the node-side end of pod `pod`'s veth: `dl3f9a-v0`.
    pub fn host_veth(&self, pod: usize) -> String {
        self.run.link(&format!("v{pod}"))
    }

    /// Creates the veth pair of a pod: the host end stays in the node
    /// namespace (named [`Self::host_veth`], aliased with the pod name), the
    /// other end moves into the pod and takes the pod's interface name. Both
    /// ends are up. Returns the host end's name.
    pub async fn pod_veth(&self, pod: usize) -> Result<String> {
        let p = &self.plan.pods[pod];
        let node_ns = self.node_ns(p.node);
        let pod_ns = self.pod_ns(pod);
        let host = self.host_veth(pod);
        let peer = self.run.link(&format!("p{pod}"));
        self.journal_link(&node_ns, &host)?;
        let node = self.nl(&node_ns);
        node.add_veth(&host, &peer).await?;
        if let Some(mtu) = self.pod_mtu {
            node.set_mtu(&peer, mtu).await?;
        }
        node.move_to(&peer, &pod_ns, &p.interface).await?;
        // Alias, MTU and up in one message: setup time grows with every
        // netlink round trip per pod.
        let mtu = self.pod_mtu;
        node.set_link(&host, "configure host end", |l| {
            let l = l.alias(p.name.clone()).up();
            match mtu {
                Some(mtu) => l.mtu(mtu),
                None => l,
            }
        })
        .await?;
        self.nl(&pod_ns).set_up(&p.interface).await?;
        Ok(host)
    }

    /// Moves a child link made in the node namespace (macvlan, ipvlan) into
    /// pod `pod` under the pod's interface name, and brings it up.
    pub async fn move_into_pod(&self, pod: usize, link: &str) -> Result<()> {
        let p = &self.plan.pods[pod];
        let pod_ns = self.pod_ns(pod);
        self.nl(&self.node_ns(p.node))
            .move_to(link, &pod_ns, &p.interface)
            .await?;
        self.nl(&pod_ns).set_up(&p.interface).await?;
        Ok(())
    }
}
