//! Cluster IPs with eBPF service maps, as Cilium does: the programs in
//! bpf/ translate cluster IPs at tc. On `veth-ebpf` one program sits on
//! every node-side veth (DNAT, reverse NAT, and redirect straight into the
//! destination pod), on `netkit-ebpf` the same program sits at the peer
//! hook of each pod's netkit pair; on every other wiring two sit on each
//! pod's own interface (egress DNAT, ingress reverse NAT), which needs
//! nothing of the wiring. Maps are pinned per run under /sys/fs/bpf/dplab/<run-id>/ and
//! shared by all attachments.

use std::time::Instant;

use super::{ServiceChange, ServiceProxy};
use crate::datapath::LabNet;
use crate::ebpf::{self, Endpoint, Proto, RedirectMode, ServiceLb, ServiceSpec};
use crate::error::{LabError, Result};
use crate::kinds::{Datapath, ProxyKind};
use crate::ledger::Entry;
use crate::names::RunId;
use crate::proof::Proof;
use crate::topology::{Plan, Protocol};

/// Proof counter names in results.json.
pub const RUNS: &str = "bpf_program_runs";
pub const SERVICE_HITS: &str = "bpf_service_hits";
pub const REV_NAT: &str = "bpf_rev_nat";
pub use crate::datapath::REDIRECTED;

#[derive(Default)]
pub struct EbpfProxy {
    lb: Option<ServiceLb>,
    program_ms: f64,
}

impl EbpfProxy {
    /// Reopens the pinned maps of a running lab (for `dplab test`).
    pub fn reopen(run: &RunId) -> Result<EbpfProxy> {
        let lb = ServiceLb::load(run.as_str()).map_err(to_lab_error)?;
        Ok(EbpfProxy {
            lb: Some(lb),
            program_ms: 0.0,
        })
    }
}

fn not_loaded() -> LabError {
    LabError::Other("eBPF programs are not loaded".into())
}

impl EbpfProxy {
    fn loaded(&mut self) -> Result<&mut ServiceLb> {
        self.lb.as_mut().ok_or_else(not_loaded)
    }
}

fn to_lab_error(e: ebpf::EbpfError) -> LabError {
    match e {
        ebpf::EbpfError::Unavailable(reason) => {
            LabError::Unsupported(format!("eBPF datapaths unavailable: {reason}"))
        }
        other => LabError::Other(other.to_string()),
    }
}

/// The topology's services as the load balancer's maps hold them.
pub fn service_specs(plan: &Plan) -> Vec<ServiceSpec> {
    plan.services
        .iter()
        .map(|s| ServiceSpec {
            cluster_ip: s.cluster_ip,
            port: s.port,
            proto: match s.protocol {
                Protocol::Tcp => Proto::Tcp,
                Protocol::Udp => Proto::Udp,
            },
            backends: s
                .backends
                .iter()
                .map(|&b| (plan.pods[b].address, s.target_port))
                .collect(),
        })
        .collect()
}

impl ServiceProxy for EbpfProxy {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Ebpf
    }

    fn translation_counter(&self) -> &'static str {
        SERVICE_HITS
    }

    fn apply(&mut self, lab: &LabNet<'_>, _: Datapath, _: &ServiceChange) -> Result<()> {
        // The maps are reconciled against the whole plan: unchanged
        // services are rewritten in place, so the change is atomic per key.
        self.loaded()?
            .program_services(&service_specs(lab.plan))
            .map_err(to_lab_error)
    }

    fn install(&mut self, lab: &LabNet<'_>, datapath: Datapath) -> Result<()> {
        if let Some(reason) = ebpf::unavailable_reason() {
            return Err(LabError::Unsupported(format!(
                "eBPF datapaths unavailable: {reason}"
            )));
        }
        let start = Instant::now();
        lab.ledger.record(&Entry::BpfPins {
            path: lab.run.bpffs_dir(),
        })?;
        let mut lb = ServiceLb::load(lab.run.as_str()).map_err(to_lab_error)?;
        lb.program_services(&service_specs(lab.plan))
            .map_err(to_lab_error)?;
        self.program_ms = start.elapsed().as_secs_f64() * 1000.0;
        for (pod, p) in lab.plan.pods.iter().enumerate() {
            match datapath {
                Datapath::VethEbpf => {
                    let node_ns = lab.node_ns(p.node);
                    let host = lab.host_veth(pod);
                    let endpoint = Endpoint::discover(
                        &node_ns,
                        &host,
                        &lab.pod_ns(pod),
                        &p.interface,
                        RedirectMode::Peer,
                    )
                    .map_err(to_lab_error)?;
                    lb.set_endpoint(p.address, endpoint).map_err(to_lab_error)?;
                    lb.attach_veth_ingress(&node_ns, &host)
                        .map_err(to_lab_error)?;
                }
                Datapath::NetkitEbpf => {
                    // Local delivery is a plain redirect to the destination
                    // pod's primary device: bpf_redirect_peer works only
                    // from tc ingress, not from netkit's hook. L3 netkit
                    // frames carry no MACs worth rewriting.
                    let node_ns = lab.node_ns(p.node);
                    let primary = crate::datapath::netkit_primary(lab, pod);
                    let (ifindex, _) =
                        ebpf::ifindex_and_mac(&node_ns, &primary).map_err(to_lab_error)?;
                    let endpoint = Endpoint {
                        ifindex,
                        pod_mac: [0; 6],
                        host_mac: [0; 6],
                        mode: RedirectMode::Plain,
                    };
                    lb.set_endpoint(p.address, endpoint).map_err(to_lab_error)?;
                    lb.attach_netkit_peer(&node_ns, &primary)
                        .map_err(to_lab_error)?;
                }
                _ => lb
                    .attach_pod(&lab.pod_ns(pod), &p.interface)
                    .map_err(to_lab_error)?,
            }
        }
        self.lb = Some(lb);
        Ok(())
    }

    fn counters(&self, run: &RunId, plan: &Plan) -> Result<Proof> {
        let c = self
            .lb
            .as_ref()
            .ok_or_else(not_loaded)?
            .counters()
            .map_err(to_lab_error)?;
        // No iptables rules are installed, and the proof shows it: any DNAT
        // packet would mean the traffic took another path.
        let mut proof = super::iptables::Iptables::default().counters(run, plan)?;
        for (name, value) in [
            (RUNS, c.runs),
            (SERVICE_HITS, c.dnat),
            (REV_NAT, c.rev_nat),
            (REDIRECTED, c.redirected),
        ] {
            proof.insert(name.to_string(), value as i64);
        }
        Ok(proof)
    }

    fn program_ms(&self) -> Option<f64> {
        Some(self.program_ms)
    }

    fn bpf_attach(&self) -> Option<String> {
        self.lb.as_ref().and_then(ServiceLb::attach_kinds)
    }
}
