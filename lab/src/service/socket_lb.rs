//! Cluster IPs and node ports translated at the socket, as Cilium's
//! socket-level load balancing: cgroup connect4/sendmsg4 programs replace a
//! service address by a backend's before any packet exists, and
//! recvmsg4/getpeername4 show the service address back. No packet is ever
//! NATed: no iptables rule is installed, and its DNAT counters, read as
//! proof, stay 0.
//!
//! The lab gets a cgroup v2 subtree (`dplab-<run>/`, one child per pod and
//! node) and the programs are attached to its root with pinned links; every
//! process a pod runs (tools, `dplab exec`, dplab itself while measuring a
//! built-in workload) joins the pod's child, see [`crate::cgroup::join`].
//! A process that enters only the pod's network namespace (`ip netns exec`)
//! is outside the subtree and reaches no service.

use std::net::Ipv4Addr;
use std::time::Instant;

use super::{ServiceChange, ServiceProxy};
use crate::cgroup::{self, CgroupError};
use crate::datapath::{self, LabNet};
use crate::ebpf::cgroup_lb::{CgroupLb, CgroupLbError, SockCounters};
use crate::ebpf::{EbpfError, ServiceSpec};
use crate::error::{LabError, Result};
use crate::kinds::{Datapath, ProxyKind};
use crate::ledger::Entry;
use crate::names::RunId;
use crate::proof::Proof;
use crate::topology::{Plan, ServicePlan};

/// Proof counters in results.json: connects and sends given a backend
/// (the translation counter), replies and getpeername given the service
/// back, and calls refused for want of a backend.
pub const REWRITES: &str = "socklb_rewrites";
pub const RECVMSG_REWRITES: &str = "socklb_recvmsg_rewrites";
pub const GETPEERNAME_REWRITES: &str = "socklb_getpeername_rewrites";
pub const REJECTED: &str = "socklb_rejected";

#[derive(Default)]
pub struct SocketLbProxy {
    lb: Option<CgroupLb>,
    program_ms: f64,
}

impl SocketLbProxy {
    /// The pinned maps of a running lab (for `dplab test`).
    pub fn reopen(run: &RunId) -> Result<SocketLbProxy> {
        Ok(SocketLbProxy {
            lb: Some(CgroupLb::open(run.as_str()).map_err(lb_error)?),
            program_ms: 0.0,
        })
    }

    fn loaded(&mut self) -> Result<&mut CgroupLb> {
        self.lb
            .as_mut()
            .ok_or_else(|| LabError::Other("socket-lb programs are not loaded".into()))
    }
}

fn lb_error(e: CgroupLbError) -> LabError {
    match e {
        CgroupLbError::Ebpf(EbpfError::Unavailable(reason)) => {
            LabError::Unsupported(format!("socket-lb unavailable: {reason}"))
        }
        other => LabError::Other(other.to_string()),
    }
}

fn cgroup_error(e: CgroupError) -> LabError {
    match e {
        CgroupError::NoV2Mount => LabError::Unsupported(format!("socket-lb unavailable: {e}")),
        other => LabError::Other(other.to_string()),
    }
}

/// The services as the maps hold them: every cluster IP, plus every node
/// port as a service at 0.0.0.0 (the programs look it up when the
/// destination is a node address).
pub fn socket_specs(plan: &Plan) -> Vec<ServiceSpec> {
    let (mut specs, node_ports): (Vec<_>, Vec<_>) = plan
        .services
        .iter()
        .map(|s| {
            let mut entries = service_entries(plan, s).into_iter();
            (entries.next(), entries.next())
        })
        .unzip();
    specs.extend(node_ports);
    specs.into_iter().flatten().collect()
}

/// The map entries of one service: its cluster IP, then its node port (as
/// a service at 0.0.0.0) if it has one.
fn service_entries(plan: &Plan, svc: &ServicePlan) -> Vec<ServiceSpec> {
    let spec = super::ebpf::service_spec(plan, svc);
    let node_port = svc.node_port.map(|port| ServiceSpec {
        cluster_ip: Ipv4Addr::UNSPECIFIED,
        port,
        ..spec.clone()
    });
    std::iter::once(spec).chain(node_port).collect()
}

/// Every address a client reaches a node at: its underlay address and the
/// gateway its pods use (see `Lab::node_address`).
pub fn node_addrs(plan: &Plan, datapath: Datapath) -> Vec<Ipv4Addr> {
    plan.nodes
        .iter()
        .flat_map(|n| {
            n.underlay_ip
                .into_iter()
                .chain([datapath::pod_gateway(datapath, n)])
        })
        .collect()
}

impl ServiceProxy for SocketLbProxy {
    fn kind(&self) -> ProxyKind {
        ProxyKind::SocketLb
    }

    fn translation_counter(&self) -> &'static str {
        REWRITES
    }

    fn install(&mut self, lab: &LabNet<'_>, datapath: Datapath) -> Result<()> {
        if let Some(reason) = crate::ebpf::cgroup_lb::unavailable_reason() {
            return Err(LabError::Unsupported(format!(
                "socket-lb unavailable: {reason}"
            )));
        }
        if cgroup::v2_mount().is_none() {
            return Err(cgroup_error(CgroupError::NoV2Mount));
        }
        let members = lab
            .plan
            .pods
            .iter()
            .map(|p| p.name.as_str())
            .chain(lab.plan.nodes.iter().map(|n| n.name.as_str()));
        let root = cgroup::tree::create(lab.ledger, lab.run, members).map_err(cgroup_error)?;
        let start = Instant::now();
        lab.ledger.record(&Entry::BpfPins {
            path: lab.run.bpffs_dir(),
        })?;
        let mut lb = CgroupLb::load(lab.run.as_str()).map_err(lb_error)?;
        lb.program_services(&socket_specs(lab.plan))
            .map_err(lb_error)?;
        lb.set_node_addrs(&node_addrs(lab.plan, datapath))
            .map_err(lb_error)?;
        self.program_ms = start.elapsed().as_secs_f64() * 1000.0;
        lb.attach(&root).map_err(lb_error)?;
        self.lb = Some(lb);
        Ok(())
    }

    fn apply(&mut self, lab: &LabNet<'_>, _: Datapath, change: &ServiceChange) -> Result<()> {
        // Only the changed service's entries (and its node port's) are
        // written: O(1) in the number of services, as the tc proxy.
        let svc = match change {
            ServiceChange::AddService(s) => s,
            ServiceChange::RemoveEndpoint { service, .. } => {
                lab.plan.services.get(*service).ok_or_else(|| {
                    LabError::Other(format!("socket-lb: no service number {service}"))
                })?
            }
        };
        let lb = self.loaded()?;
        for spec in service_entries(lab.plan, svc) {
            lb.upsert_service(&spec).map_err(lb_error)?;
        }
        Ok(())
    }

    fn counters(&self, run: &RunId, plan: &Plan) -> Result<Proof> {
        let c: SockCounters = match &self.lb {
            Some(lb) => lb.counters(),
            None => crate::ebpf::cgroup_lb::pinned_sock_counters(run.as_str()),
        }
        .map_err(lb_error)?;
        // No NAT rule exists: a DNAT packet would mean another path.
        let mut proof = super::iptables::Iptables::default().counters(run, plan)?;
        for (name, value) in [
            (REWRITES, c.connect + c.sendmsg),
            (RECVMSG_REWRITES, c.recvmsg),
            (GETPEERNAME_REWRITES, c.getpeername),
            (REJECTED, c.rejected),
        ] {
            proof.insert(name.to_string(), value as i64);
        }
        Ok(proof)
    }

    fn program_ms(&self) -> Option<f64> {
        Some(self.program_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const TOPO: &str = r#"
[[nodes]]
name = "node1"
pod_cidr = "192.168.10.0/24"
[[pods]]
name = "pod-a"
node = "node1"
address = "192.168.10.10"
[[services]]
name = "web"
cluster_ip = "10.96.0.10"
port = 80
target_port = 8080
node_port = 30080
backends = ["pod-a"]
[[services]]
name = "dns"
cluster_ip = "10.96.0.53"
port = 53
protocol = "udp"
backends = ["pod-a"]
"#;

    #[test]
    fn node_ports_are_services_at_address_zero() {
        let plan = crate::topology::parse(Path::new("t.toml"), TOPO).unwrap();
        let specs = socket_specs(&plan);
        assert_eq!(specs.len(), 3);
        let node_port = specs.iter().find(|s| s.port == 30080).unwrap();
        assert_eq!(node_port.cluster_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(
            node_port.backends,
            vec![(Ipv4Addr::new(192, 168, 10, 10), 8080)]
        );
        assert!(specs
            .iter()
            .any(|s| s.cluster_ip == Ipv4Addr::new(10, 96, 0, 53) && s.port == 53));
    }

    #[test]
    fn node_addresses_follow_the_wiring() {
        let plan = crate::topology::parse(Path::new("t.toml"), TOPO).unwrap();
        let node = &plan.nodes[0];
        assert_eq!(
            node_addrs(&plan, Datapath::VethRouted),
            vec![node.routed_gateway]
        );
        assert_eq!(node_addrs(&plan, Datapath::Bridge), vec![node.gateway]);
    }
}
