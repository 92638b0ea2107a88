//! The cells of a matrix and what each gathers over its repetitions.

use std::collections::BTreeMap;

use super::RunOptions;
use crate::error::LabError;
use crate::kinds::{Datapath, Overlay, ProxyKind, Target};
use crate::proof::Proof;
use crate::results::conditions::CellConditions;
use crate::results::{Cell, CellStatus, Metric};
use crate::service::{pairing, Pairing};
use crate::topology::{PathPlan, Plan};
use crate::workload::{Sample, Workload};

#[derive(Debug, Clone)]
pub struct CellSpec {
    pub datapath: Datapath,
    pub overlay: Option<Overlay>,
    /// The proxy measured by service targets (cluster-ip, node-port);
    /// None for pod-ip and node-ip cells, which any lab of the datapath
    /// measures.
    pub proxy: Option<ProxyKind>,
    /// What the compatibility table expects of this cell.
    pub pairing: Pairing,
    pub path: PathPlan,
    /// `same-node` or `cross-node`, for multi-node labs.
    pub placement: Option<&'static str>,
    pub target: Target,
    pub workload: Workload,
    pub client: String,
    pub server: String,
    pub tool: String,
}

/// Every (overlay, datapath, path, proxy, workload) of the run, in report
/// order.
pub fn specs(plan: &Plan, opts: &RunOptions) -> Vec<CellSpec> {
    let mut out = Vec::new();
    for &overlay in &opts.overlays {
        for &datapath in &opts.datapaths {
            for path in &opts.paths {
                let same = plan.endpoint_node(path.client) == plan.endpoint_node(path.server);
                let proxies: Vec<Option<ProxyKind>> = if path.target.is_service() {
                    opts.proxies_for(datapath).into_iter().map(Some).collect()
                } else {
                    vec![None]
                };
                for proxy in proxies {
                    for &workload in &opts.workloads {
                        out.push(CellSpec {
                            datapath,
                            overlay,
                            proxy,
                            pairing: proxy
                                .map(|p| pairing(datapath, p, path.target))
                                .unwrap_or(Pairing::Works),
                            path: path.clone(),
                            placement: overlay
                                .map(|_| if same { "same-node" } else { "cross-node" }),
                            target: path.target,
                            workload,
                            client: plan.endpoint_name(path.client).to_string(),
                            server: plan.endpoint_name(path.server).to_string(),
                            tool: opts.tool.to_string(),
                        });
                    }
                }
            }
        }
    }
    out
}

/// Samples and proof gathered for one cell, and its verdict once known.
#[derive(Debug)]
pub struct Tally {
    pub spec: CellSpec,
    samples: Vec<Sample>,
    proof: Proof,
    verdict: Option<(CellStatus, String)>,
    /// Repetitions in which this cell was measured (or tried).
    pub reps_tried: u32,
    pub setups_ms: Vec<f64>,
    pub teardowns_ms: Vec<f64>,
    /// The worst machine conditions over the cell's samples.
    pub conditions: Option<CellConditions>,
    /// How the lab's eBPF programs were attached, if it had any.
    pub bpf_attach: Option<String>,
}

impl Tally {
    pub fn new(spec: CellSpec) -> Tally {
        let verdict = match &spec.pairing {
            Pairing::Impossible(reason) => Some((CellStatus::Skipped, reason.clone())),
            _ => None,
        };
        Tally {
            spec,
            samples: Vec::new(),
            proof: Proof::new(),
            verdict,
            reps_tried: 0,
            setups_ms: Vec::new(),
            teardowns_ms: Vec::new(),
            conditions: None,
            bpf_attach: None,
        }
    }

    /// A cell with a verdict takes no more samples.
    pub fn is_done(&self) -> bool {
        self.verdict.is_some()
    }

    pub fn fail(&mut self, reason: String) {
        if self.verdict.is_none() {
            self.verdict = Some((CellStatus::Failed, reason));
        }
    }

    pub fn skip(&mut self, reason: String) {
        if self.verdict.is_none() {
            self.verdict = Some((CellStatus::Skipped, reason));
        }
    }

    /// The lab of this cell's datapath could not be built.
    pub fn build_failed(&mut self, e: &LabError) {
        if e.is_unsupported() {
            self.skip(e.to_string());
        } else {
            self.fail(format!("building the lab failed: {e}"));
        }
    }

    /// A sample could not be taken: a failure, unless the compatibility
    /// table predicted exactly that. Its proof counters are kept, and the
    /// reason names the packets eBPF programs dropped meanwhile.
    pub fn sample_failed(&mut self, error: String, proof: Proof) {
        self.sum_proof(&proof);
        let error = match crate::datapath::ebpf_routing::drops_during_failure(&proof) {
            Some(drops) => format!("{error} ({drops})"),
            None => error,
        };
        match &self.spec.pairing {
            Pairing::Unreachable(why) => {
                let reason = format!("{error} (as predicted: {why})");
                if self.verdict.is_none() {
                    self.verdict = Some((CellStatus::Unreachable, reason));
                }
            }
            _ => self.fail(error),
        }
    }

    /// Adds a sample unless its proof contradicts the cell (or the cell
    /// was predicted not to carry traffic at all).
    pub fn add(&mut self, sample: Sample, proof: Proof, contradiction: Option<String>) {
        self.sum_proof(&proof);
        if let Pairing::Unreachable(why) = &self.spec.pairing {
            let why = why.clone();
            return self.fail(format!(
                "predicted unreachable, yet it carried traffic: the compatibility table is wrong here (it said: {why})"
            ));
        }
        if let Some(contradiction) = contradiction {
            return self.fail(contradiction);
        }
        self.samples.push(sample);
    }

    fn sum_proof(&mut self, proof: &Proof) {
        for (k, v) in proof {
            *self.proof.entry(k.clone()).or_insert(0) += v;
        }
    }

    /// Why the workload cannot run on this cell at all, if so.
    pub fn impossible(&self) -> Option<String> {
        (self.spec.target.is_service() && self.spec.workload == Workload::Ping).then(|| {
            format!("ping sends ICMP, which a {} does not carry: the service proxy translates only the service's port and protocol", self.spec.target)
        })
    }

    pub fn into_cell(self) -> Cell {
        let (status, reason) = match self.verdict {
            Some((status, reason)) => (status, Some(reason)),
            None if self.samples.is_empty() => {
                (CellStatus::Failed, Some("no sample was taken".into()))
            }
            None => (CellStatus::Ok, None),
        };
        let metrics = if status == CellStatus::Ok {
            summarise(&self.samples)
        } else {
            BTreeMap::new()
        };
        Cell {
            datapath: self.spec.datapath.to_string(),
            target: self.spec.target.to_string(),
            service_proxy: self.spec.proxy.map(|p| p.to_string()),
            workload: self.spec.workload.to_string(),
            tool: self.spec.tool,
            client: self.spec.client,
            server: self.spec.server,
            overlay: self.spec.overlay.map(|o| o.to_string()),
            placement: self.spec.placement.map(str::to_string),
            services: None,
            endpoints: None,
            status,
            reason,
            setup_ms: median(self.setups_ms),
            teardown_ms: median(self.teardowns_ms),
            metrics,
            proof: self.proof,
            conditions: self.conditions,
            bpf_attach: self.bpf_attach,
        }
    }
}

fn summarise(samples: &[Sample]) -> BTreeMap<String, Metric> {
    let mut by_name: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for s in samples {
        for (k, v) in &s.metrics {
            by_name.entry(k.clone()).or_default().push(*v);
        }
    }
    by_name
        .into_iter()
        .map(|(k, v)| (k, Metric::from_samples(v)))
        .collect()
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(crate::results::stats::median(&values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::iptables::DNAT_PACKETS;
    use crate::topology::Endpoint;

    fn spec(datapath: Datapath, proxy: ProxyKind, target: Target) -> CellSpec {
        CellSpec {
            datapath,
            overlay: None,
            proxy: target.is_service().then_some(proxy),
            pairing: if target.is_service() {
                pairing(datapath, proxy, target)
            } else {
                Pairing::Works
            },
            path: PathPlan {
                client: Endpoint::Pod(1),
                server: Endpoint::Pod(0),
                target,
                service: None,
                via: None,
            },
            placement: None,
            target,
            workload: Workload::TcpStream,
            client: "pod-b".into(),
            server: "pod-a".into(),
            tool: "builtin".into(),
        }
    }

    fn sample(gbps: f64) -> Sample {
        let mut s = Sample::default();
        s.set("throughput_gbps", gbps);
        s
    }

    fn proof(n: i64) -> Proof {
        Proof::from([(DNAT_PACKETS.to_string(), n)])
    }

    #[test]
    fn contradicted_sample_fails_the_cell() {
        let mut t = Tally::new(spec(
            Datapath::VethRouted,
            ProxyKind::Iptables,
            Target::ClusterIp,
        ));
        t.add(sample(10.0), proof(0), Some("proof: did not move".into()));
        let cell = t.into_cell();
        assert_eq!(cell.status, CellStatus::Failed);
        assert!(cell.reason.unwrap().contains("did not move"));
    }

    #[test]
    fn samples_become_metrics_and_proof_sums() {
        let mut t = Tally::new(spec(
            Datapath::VethRouted,
            ProxyKind::Nftables,
            Target::ClusterIp,
        ));
        t.add(sample(10.0), proof(2), None);
        t.add(sample(12.0), proof(1), None);
        t.setups_ms = vec![100.0, 120.0, 300.0];
        let cell = t.into_cell();
        assert_eq!(cell.status, CellStatus::Ok);
        assert_eq!(cell.metrics["throughput_gbps"].samples, vec![10.0, 12.0]);
        assert_eq!(cell.proof[DNAT_PACKETS], 3);
        assert_eq!(cell.setup_ms, Some(120.0));
        assert_eq!(cell.service_proxy.as_deref(), Some("nftables"));
    }

    #[test]
    fn pod_ip_cells_name_no_proxy() {
        let mut t = Tally::new(spec(Datapath::Bridge, ProxyKind::Iptables, Target::PodIp));
        t.add(sample(10.0), proof(0), None);
        let cell = t.into_cell();
        assert_eq!(cell.status, CellStatus::Ok);
        assert_eq!(cell.service_proxy, None);
    }

    #[test]
    fn predicted_breakage_is_unreachable_and_a_surprise_is_failed() {
        let nf_off = || {
            spec(
                Datapath::BridgeNfOff,
                ProxyKind::Iptables,
                Target::ClusterIp,
            )
        };
        let mut t = Tally::new(nf_off());
        t.sample_failed("no connection within 3s".into(), Proof::new());
        let cell = t.into_cell();
        assert_eq!(cell.status, CellStatus::Unreachable);
        let reason = cell.reason.unwrap();
        assert!(
            reason.contains("no connection") && reason.contains("reverse NAT"),
            "{reason}"
        );

        let mut t = Tally::new(nf_off());
        t.add(sample(10.0), proof(5), None);
        let cell = t.into_cell();
        assert_eq!(cell.status, CellStatus::Failed);
        assert!(cell.reason.unwrap().contains("predicted unreachable"));

        // Without a prediction a failed sample is a failed cell.
        let mut t = Tally::new(spec(
            Datapath::Bridge,
            ProxyKind::Iptables,
            Target::ClusterIp,
        ));
        t.sample_failed("no connection".into(), Proof::new());
        assert_eq!(t.into_cell().status, CellStatus::Failed);
    }

    #[test]
    fn a_failed_sample_names_its_ebpf_drops_and_keeps_its_proof() {
        let dropped = Proof::from([
            (crate::datapath::DROPPED.to_string(), 4),
            (crate::datapath::PASSED.to_string(), 10),
        ]);
        let mut t = Tally::new(spec(Datapath::VethEbpf, ProxyKind::Ebpf, Target::ClusterIp));
        t.sample_failed("no connection within 3s".into(), dropped.clone());
        let cell = t.into_cell();
        assert_eq!(cell.status, CellStatus::Failed);
        let reason = cell.reason.unwrap();
        assert!(
            reason.starts_with("no connection within 3s (meanwhile the eBPF programs dropped 4 packets (bpf_dropped = 4)"),
            "{reason}"
        );
        assert_eq!(cell.proof, dropped);

        // A predicted failure says so too.
        let mut t = Tally::new(spec(
            Datapath::BridgeNfOff,
            ProxyKind::Iptables,
            Target::ClusterIp,
        ));
        t.sample_failed("no connection".into(), dropped);
        let cell = t.into_cell();
        assert_eq!(cell.status, CellStatus::Unreachable);
        assert!(cell.reason.unwrap().contains("bpf_dropped = 4"));

        // No drops, no mention.
        let mut t = Tally::new(spec(Datapath::VethEbpf, ProxyKind::Ebpf, Target::ClusterIp));
        t.sample_failed(
            "no connection".into(),
            Proof::from([(crate::datapath::DROPPED.to_string(), 0)]),
        );
        assert_eq!(t.into_cell().reason.as_deref(), Some("no connection"));
    }

    #[test]
    fn impossible_pairs_are_skipped_before_anything_runs() {
        let t = Tally::new(spec(
            Datapath::IpvlanEbpf,
            ProxyKind::Iptables,
            Target::ClusterIp,
        ));
        assert!(t.is_done());
        let cell = t.into_cell();
        assert_eq!(cell.status, CellStatus::Skipped);
        assert!(cell.reason.unwrap().contains("ipvlan-l2"));
    }

    #[test]
    fn ping_to_a_service_is_skipped() {
        let mut s = spec(Datapath::VethRouted, ProxyKind::Iptables, Target::NodePort);
        s.workload = Workload::Ping;
        assert!(Tally::new(s).impossible().unwrap().contains("node-port"));
    }

    #[test]
    fn unsupported_build_skips() {
        let mut t = Tally::new(spec(Datapath::IpvlanL2, ProxyKind::Iptables, Target::PodIp));
        t.build_failed(&LabError::Unsupported(
            "kernel has no ipvlan support".into(),
        ));
        let cell = t.into_cell();
        assert_eq!(cell.status, CellStatus::Skipped);
        assert!(cell.reason.unwrap().contains("ipvlan"));
    }
}
