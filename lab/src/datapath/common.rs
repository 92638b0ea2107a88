//! What every wiring needs: the lab's namespaces with one netlink connection
//! each, a thread per namespace for sysctls, journalled link creation, and
//! the veth pair that joins a pod to its node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::ledger::{Entry, Ledger};
use crate::names::RunId;
use crate::netns::cross::VethInto;
use crate::netns::netlink::Netlink;
use crate::netns::worker::NsWorker;
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
    /// Threads inside namespaces that had sysctls written, started on first
    /// use and ended with the lab's wiring.
    workers: Mutex<HashMap<String, Arc<NsWorker>>>,
}

impl<'a> LabNet<'a> {
    /// Every namespace of the plan: nodes, pods, then the underlay switch.
    pub fn namespaces(run: &RunId, plan: &Plan) -> Vec<String> {
        plan.nodes
            .iter()
            .map(|n| run.netns(&n.name))
            .chain(plan.pods.iter().map(|p| run.netns(&p.name)))
            .chain(
                plan.underlay
                    .iter()
                    .map(|_| run.netns(crate::names::UNDERLAY_NS)),
            )
            .collect()
    }

    /// A node's devices towards the other nodes (the same names in every
    /// node): the underlay link, and the VXLAN device on vxlan labs. None on
    /// a single node.
    pub fn edge_links(&self) -> Vec<String> {
        if self.plan.underlay.is_none() {
            return Vec::new();
        }
        let mut links = vec![self.run.link(crate::names::UNDERLAY_LINK)];
        if self.overlay == Some(crate::kinds::Overlay::Vxlan) {
            links.push(self.run.link(crate::names::VXLAN_LINK));
        }
        links
    }

    /// Opens a netlink connection in every node and pod namespace (which must
    /// exist already).
    pub fn open(run: &'a RunId, plan: &'a Plan, ledger: &'a Ledger) -> Result<LabNet<'a>> {
        let links = Netlink::open_all(&Self::namespaces(run, plan))?;
        Ok(Self::with_links(run, plan, ledger, links))
    }

    /// A lab whose namespaces were opened already (see
    /// [`Netlink::create_all`]), one connection each.
    pub fn with_links(
        run: &'a RunId,
        plan: &'a Plan,
        ledger: &'a Ledger,
        links: Vec<Netlink>,
    ) -> LabNet<'a> {
        LabNet {
            run,
            plan,
            ledger,
            pod_mtu: None,
            links: links
                .into_iter()
                .map(|nl| (nl.netns().to_string(), nl))
                .collect(),
            overlay: None,
            workers: Mutex::new(HashMap::new()),
        }
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
        self.ledger.record(&Self::link_entry(ns, name))?;
        Ok(())
    }

    /// Like [`Self::journal_link`], sharing the disk sync with the other
    /// pods being wired at the same time.
    pub async fn journal_link_grouped(&self, ns: &str, name: &str) -> Result<()> {
        self.ledger
            .record_grouped(&Self::link_entry(ns, name))
            .await?;
        Ok(())
    }

    fn link_entry(ns: &str, name: &str) -> Entry {
        Entry::Link {
            netns: ns.to_string(),
            name: name.to_string(),
        }
    }

    /// Writes a sysctl (e.g. `net/ipv4/ip_forward`) inside namespace `ns`,
    /// on that namespace's one worker thread.
    pub async fn sysctl(&self, ns: &str, key: &str, value: &str) -> Result<()> {
        let worker = {
            let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
            match workers.get(ns) {
                Some(w) => Arc::clone(w),
                None => {
                    let w = Arc::new(NsWorker::spawn(ns)?);
                    workers.insert(ns.to_string(), Arc::clone(&w));
                    w
                }
            }
        };
        Ok(worker.write_sysctl(key, value).await?)
    }

    /// Loopback up and forwarding on: a node routes for its pods.
    pub async fn node_basics(&self, node: usize) -> Result<()> {
        let ns = self.node_ns(node);
        self.nl(&ns).set_up("lo").await?;
        self.sysctl(&ns, "net/ipv4/ip_forward", "1").await
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
    /// other end is created inside the pod under the pod's interface name.
    /// Both ends are up. Returns the host end's name.
    pub async fn pod_veth(&self, pod: usize) -> Result<String> {
        self.pod_veth_on(pod, None).await
    }

    /// Like [`Self::pod_veth`], with the host end plugged into bridge
    /// `bridge` of the node namespace as it is created.
    pub async fn pod_veth_in_bridge(&self, pod: usize, bridge: &str) -> Result<String> {
        let node_ns = self.node_ns(self.plan.pods[pod].node);
        let master = self.nl(&node_ns).index(bridge).await?;
        self.pod_veth_on(pod, Some(master)).await
    }

    async fn pod_veth_on(&self, pod: usize, master: Option<u32>) -> Result<String> {
        let p = &self.plan.pods[pod];
        let node_ns = self.node_ns(p.node);
        let pod_ns = self.pod_ns(pod);
        let host = self.host_veth(pod);
        self.journal_link_grouped(&node_ns, &host).await?;
        let node = self.nl(&node_ns);
        let pod_nl = self.nl(&pod_ns);
        let indexes = node
            .add_veth_into(VethInto {
                host: &host,
                peer_netns: &pod_ns,
                peer: &p.interface,
                mtu: self.pod_mtu,
                master,
            })
            .await?;
        if let Some(peer) = indexes.peer {
            pod_nl.remember(&p.interface, peer);
        }
        // The alias names the pod in `ip link` of the node.
        futures::try_join!(node.set_alias(&host, &p.name), pod_nl.set_up(&p.interface))?;
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
