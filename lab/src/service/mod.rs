//! Service proxies: what turns a cluster IP into a backend pod. One trait,
//! one file per implementation, chosen by the datapath
//! ([`crate::kinds::Datapath::service_proxy`]).

pub mod ebpf;
pub mod iptables;

use std::collections::BTreeMap;

use crate::datapath::LabNet;
use crate::error::Result;
use crate::kinds::Datapath;
use crate::names::RunId;
use crate::topology::Plan;

/// Counters that prove which path packets took, read before and after a
/// measurement (docs/results.md, proof counters).
pub type Proof = BTreeMap<String, i64>;

pub trait ServiceProxy {
    /// Programs every service of the plan into the lab.
    fn install(&mut self, lab: &LabNet<'_>, datapath: Datapath) -> Result<()>;
    /// Reads the proxy's counters now.
    fn counters(&self, run: &RunId, plan: &Plan) -> Result<Proof>;
    /// How long programming the services took, if measured.
    fn program_ms(&self) -> Option<f64> {
        None
    }
}

/// `after - before` for every counter.
pub fn proof_delta(before: &Proof, after: &Proof) -> Proof {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .collect()
}
