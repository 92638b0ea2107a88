//! Service proxies: what turns a cluster IP or a node port into a backend
//! pod. An axis of its own beside the wiring: one trait, one file per
//! implementation, one factory ([`create`]) and one compatibility table
//! ([`pairing`]). Adding a proxy is a file here plus a line in [`create`].

pub mod compat;
pub mod ebpf;
pub mod iptables;
pub mod ipvs;
mod ipvs_rules;
pub mod nftables;
pub mod nftables_rules;
pub mod socket_lb;

pub use compat::{pairing, Pairing};

/// Synthetic services for service-count sweeps.
pub mod synthetic;

use crate::datapath::LabNet;
use crate::error::Result;
use crate::kinds::{Datapath, ProxyKind, Target};
use crate::names::RunId;
use crate::proof::{self, Proof};
use crate::topology::{Plan, ServicePlan};

/// One change to the services of a running lab, as kube-proxy syncs them.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceChange {
    /// A new service (already appended to the lab's plan).
    AddService(ServicePlan),
    /// `pod` (an index into the plan's pods) stopped backing service
    /// `service` (an index into the plan's services); the plan already
    /// lacks it.
    RemoveEndpoint { service: usize, pod: usize },
}

pub trait ServiceProxy: Send {
    fn kind(&self) -> ProxyKind;

    /// Programs every service of `lab.plan` into the lab, from empty.
    fn install(&mut self, lab: &LabNet<'_>, datapath: Datapath) -> Result<()>;

    /// Applies one change; `lab.plan` is the plan after the change.
    fn apply(&mut self, lab: &LabNet<'_>, datapath: Datapath, change: &ServiceChange)
        -> Result<()>;

    /// Reads the proxy's proof counters now (every node of the lab).
    fn counters(&self, run: &RunId, plan: &Plan) -> Result<Proof>;

    /// The counter that moves when this proxy translates a connection.
    fn translation_counter(&self) -> &'static str;

    /// Why one sample's proof delta contradicts a cell measured through
    /// this proxy towards `target`, if it does: a service target must move
    /// the proxy's translation counter, any other target must not, and no
    /// other proxy's translation counter may move at all.
    fn contradiction(&self, target: Target, proof: &Proof) -> Option<String> {
        let own = self.translation_counter();
        let moved = proof::get(proof, own);
        if target.is_service() && moved == 0 {
            return Some(format!(
                "proof: the {} proxy translated nothing, so the traffic did not go through the {target} ({own} = 0)",
                self.kind()
            ));
        }
        if !target.is_service() && moved > 0 {
            return Some(format!(
                "proof: {moved} packets were translated by the {} proxy ({own}) although the client connected to the {target}",
                self.kind()
            ));
        }
        TRANSLATION_COUNTERS
            .iter()
            .filter(|&&c| c != own)
            .find(|&&c| proof::get(proof, c) > 0)
            .map(|c| {
                format!(
                    "proof: {} packets went through another proxy's translation ({c}) in a lab served by the {} proxy",
                    proof::get(proof, c),
                    self.kind()
                )
            })
    }

    /// How long programming every service took, if measured.
    fn program_ms(&self) -> Option<f64> {
        None
    }

    /// How the proxy's eBPF programs are attached (`tcx`, `netlink`,
    /// `netkit`), if it has any.
    fn bpf_attach(&self) -> Option<String> {
        None
    }
}

/// The translation counters of every proxy; a lab reads only its own
/// proxy's, plus those that prove the absence of another path.
pub const TRANSLATION_COUNTERS: &[&str] = &[
    iptables::DNAT_PACKETS,
    nftables::DNAT_PACKETS,
    ebpf::SERVICE_HITS,
    ipvs::PACKETS,
    socket_lb::REWRITES,
];

/// A fresh proxy of `kind`, ready to install.
pub fn create(kind: ProxyKind) -> Result<Box<dyn ServiceProxy>> {
    match kind {
        ProxyKind::Iptables => Ok(Box::new(iptables::Iptables::default())),
        ProxyKind::Nftables => Ok(Box::new(nftables::Nftables::default())),
        ProxyKind::Ebpf => Ok(Box::new(ebpf::EbpfProxy::default())),
        ProxyKind::Ipvs => Ok(Box::new(ipvs::Ipvs::default())),
        ProxyKind::SocketLb => Ok(Box::new(socket_lb::SocketLbProxy::default())),
    }
}

/// The proxy of a lab that `dplab up` left running, to read its counters.
pub fn reopen(kind: ProxyKind, run: &RunId) -> Result<Box<dyn ServiceProxy>> {
    match kind {
        ProxyKind::Ebpf => Ok(Box::new(ebpf::EbpfProxy::reopen(run)?)),
        ProxyKind::SocketLb => Ok(Box::new(socket_lb::SocketLbProxy::reopen(run)?)),
        other => create(other),
    }
}
