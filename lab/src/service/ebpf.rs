//! Cluster IPs and node ports with eBPF service maps, as Cilium does: the
//! programs in bpf/ translate at tc, each node with its own maps (pinned
//! under /sys/fs/bpf/dplab/<run-id>/nodes/<node>/).
//!
//! Where the programs sit:
//! - `veth-ebpf` and `netkit-ebpf`: the datapath's own host routing
//!   programs (node-side veth or netkit peer hook, overlay devices)
//!   translate too; this proxy only fills their maps.
//! - every other wiring: two programs on each pod's own interface (egress
//!   DNAT, ingress reverse NAT), which needs nothing of the wiring; and in
//!   multi-node labs two on each node's overlay devices for node ports
//!   reached from other nodes.
//!
//! A connection is translated where it starts (the client's pod or its
//! node-side veth) and reverse-translated there, whatever node the backend
//! is on; a node port reached from another node is translated at the
//! node's edge, with SNAT to the node's address when the backend is on yet
//! another node.

use std::time::Instant;

use super::{ServiceChange, ServiceProxy};
use crate::datapath::ebpf_routing::{lab_error, load_node};
use crate::datapath::LabNet;
use crate::ebpf::{self, Proto, ServiceLb, ServiceSpec};
use crate::error::{LabError, Result};
use crate::kinds::{Datapath, ProxyKind};
use crate::ledger::Entry;
use crate::names::RunId;
use crate::proof::Proof;
use crate::topology::{Plan, Protocol, ServicePlan};

/// Proof counter names in results.json.
pub const RUNS: &str = "bpf_program_runs";
pub const SERVICE_HITS: &str = "bpf_service_hits";
pub const REV_NAT: &str = "bpf_rev_nat";
pub const SNAT: &str = "bpf_snat";
pub const FORWARDED: &str = "bpf_forwarded";
pub use crate::datapath::{DROPPED, PASSED, REDIRECTED};

/// The eBPF proxy of one lab: a load balancer per node, in node order.
#[derive(Default)]
pub struct EbpfProxy {
    nodes: Vec<ServiceLb>,
    program_ms: f64,
}

impl EbpfProxy {
    /// The proxy of a running lab (for `dplab test`): its counters are read
    /// from the pinned maps, so nothing needs loading.
    pub fn reopen(run: &RunId) -> Result<EbpfProxy> {
        ebpf::pinned_counters(run.as_str()).map_err(lab_error)?;
        Ok(EbpfProxy::default())
    }
}

/// A service as the load balancer's maps hold it.
pub fn service_spec(plan: &Plan, s: &ServicePlan) -> ServiceSpec {
    ServiceSpec {
        cluster_ip: s.cluster_ip,
        port: s.port,
        proto: match s.protocol {
            Protocol::Tcp => Proto::Tcp,
            Protocol::Udp => Proto::Udp,
        },
        node_port: s.node_port,
        backends: s
            .backends
            .iter()
            .map(|&b| (plan.pods[b].address, s.target_port))
            .collect(),
    }
}

/// The topology's services as the load balancer's maps hold them.
pub fn service_specs(plan: &Plan) -> Vec<ServiceSpec> {
    plan.services
        .iter()
        .map(|s| service_spec(plan, s))
        .collect()
}

impl ServiceProxy for EbpfProxy {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Ebpf
    }

    fn translation_counter(&self) -> &'static str {
        SERVICE_HITS
    }

    /// One service rewritten on every node, whatever the number of
    /// services: the plan is not walked.
    fn apply(&mut self, lab: &LabNet<'_>, _: Datapath, change: &ServiceChange) -> Result<()> {
        let spec = match change {
            ServiceChange::AddService(s) => service_spec(lab.plan, s),
            ServiceChange::RemoveEndpoint { service, .. } => {
                let s = lab.plan.services.get(*service).ok_or_else(|| {
                    LabError::Other(format!("eBPF proxy: no service number {service}"))
                })?;
                service_spec(lab.plan, s)
            }
        };
        if self.nodes.is_empty() {
            return Err(LabError::Other(
                "eBPF proxy: programs are not loaded (install first)".into(),
            ));
        }
        for lb in &mut self.nodes {
            lb.upsert_service(&spec).map_err(lab_error)?;
        }
        Ok(())
    }

    fn install(&mut self, lab: &LabNet<'_>, datapath: Datapath) -> Result<()> {
        if let Some(reason) = ebpf::unavailable_reason() {
            return Err(LabError::Unsupported(format!(
                "eBPF datapaths unavailable: {reason}"
            )));
        }
        lab.ledger.record(&Entry::BpfPins {
            path: lab.run.bpffs_dir(),
        })?;
        let specs = service_specs(lab.plan);
        let edges = lab.edge_links();
        let mut program_ms = 0.0;
        for node in 0..lab.plan.nodes.len() {
            // Load and program time: what a service change costs from cold.
            let start = Instant::now();
            let mut lb = load_node(lab, datapath, node)?;
            lb.program_services(&specs).map_err(lab_error)?;
            program_ms += start.elapsed().as_secs_f64() * 1000.0;
            // veth-ebpf's host routing programs translate with these maps.
            if !crate::datapath::has_ebpf_host_routing(datapath) {
                let node_ns = lab.node_ns(node);
                for (pod, p) in lab.plan.pods_of(node) {
                    lb.attach_pod(&lab.pod_ns(pod), &p.interface)
                        .map_err(lab_error)?;
                }
                for dev in &edges {
                    lb.attach_netdev(&node_ns, dev).map_err(lab_error)?;
                }
            }
            self.nodes.push(lb);
        }
        self.program_ms = program_ms;
        Ok(())
    }

    fn counters(&self, run: &RunId, plan: &Plan) -> Result<Proof> {
        let c = ebpf::pinned_counters(run.as_str()).map_err(lab_error)?;
        // No iptables rules are installed, and the proof shows it: any DNAT
        // packet would mean the traffic took another path.
        let mut proof = super::iptables::Iptables::default().counters(run, plan)?;
        for (name, value) in [
            (RUNS, c.runs),
            (SERVICE_HITS, c.dnat),
            (REV_NAT, c.rev_nat),
            (SNAT, c.snat),
            (FORWARDED, c.forwarded),
        ] {
            proof.insert(name.to_string(), value as i64);
        }
        crate::datapath::ebpf_routing::add_verdicts(&c, &mut proof);
        Ok(proof)
    }

    fn program_ms(&self) -> Option<f64> {
        Some(self.program_ms)
    }

    fn bpf_attach(&self) -> Option<String> {
        crate::ebpf::join_attach_kinds(self.nodes.iter().filter_map(ServiceLb::attach_kinds))
    }
}
