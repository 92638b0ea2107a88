//! The cells of a matrix and what each gathers over its repetitions.

use std::collections::BTreeMap;

use super::RunOptions;
use crate::error::LabError;
use crate::kinds::{Datapath, Overlay, Target};
use crate::results::conditions::CellConditions;
use crate::results::{Cell, CellStatus, Metric};
use crate::service::Proof;
use crate::topology::{Endpoint, PathPlan, Plan};
use crate::workload::{Sample, Workload};

/// Counter that proves the iptables proxy translated a connection.
pub const IPTABLES_PROOF: &str = "iptables_dnat_packets";

#[derive(Debug, Clone)]
pub struct CellSpec {
    pub datapath: Datapath,
    pub overlay: Option<Overlay>,
    pub path: PathPlan,
    /// `same-node` or `cross-node`, for multi-node labs.
    pub placement: Option<&'static str>,
    pub target: Target,
    pub workload: Workload,
    pub client: String,
    pub server: String,
    pub tool: String,
}

/// Every (overlay, datapath, path, workload) of the run, in report order.
pub fn specs(plan: &Plan, opts: &RunOptions) -> Vec<CellSpec> {
    let mut out = Vec::new();
    for &overlay in &opts.overlays {
        for &datapath in &opts.datapaths {
            for path in &opts.paths {
                let same = plan.endpoint_node(path.client) == plan.endpoint_node(path.server);
                for &workload in &opts.workloads {
                    out.push(CellSpec {
                        datapath,
                        overlay,
                        path: path.clone(),
                        placement: overlay.map(|_| if same { "same-node" } else { "cross-node" }),
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
    out
}

/// Samples and proof gathered for one cell, and its verdict once known.
#[derive(Debug)]
pub struct Tally {
    pub spec: CellSpec,
    samples: Vec<Sample>,
    proof: Proof,
    verdict: Option<(CellStatus, String)>,
    pub setups_ms: Vec<f64>,
    pub teardowns_ms: Vec<f64>,
    /// The worst machine conditions over the cell's samples.
    pub conditions: Option<CellConditions>,
}

impl Tally {
    pub fn new(spec: CellSpec) -> Tally {
        Tally {
            spec,
            samples: Vec::new(),
            proof: Proof::new(),
            verdict: None,
            setups_ms: Vec::new(),
            teardowns_ms: Vec::new(),
            conditions: None,
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

    /// Adds a sample after checking that its proof matches the cell.
    pub fn add(&mut self, sample: Sample, proof: Proof) {
        for (k, v) in &proof {
            *self.proof.entry(k.clone()).or_insert(0) += v;
        }
        if let Some(contradiction) = contradiction(&self.spec, &proof) {
            return self.fail(contradiction);
        }
        self.samples.push(sample);
    }

    /// Why the workload cannot run on this cell at all, if so.
    pub fn impossible(&self) -> Option<String> {
        (self.spec.target == Target::ClusterIp && self.spec.workload == Workload::Ping).then(|| {
            "ping sends ICMP, which a cluster IP does not carry: the service proxy translates only the service's port and protocol".to_string()
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
            service_proxy: (self.spec.target == Target::ClusterIp)
                .then(|| self.spec.datapath.service_proxy().name().to_string()),
            workload: self.spec.workload.to_string(),
            tool: self.spec.tool,
            client: self.spec.client,
            server: self.spec.server,
            overlay: self.spec.overlay.map(|o| o.to_string()),
            placement: self.spec.placement.map(str::to_string),
            status,
            reason,
            setup_ms: median(self.setups_ms),
            teardown_ms: median(self.teardowns_ms),
            metrics,
            proof: self.proof,
            conditions: self.conditions,
        }
    }
}

/// Why a sample's proof contradicts the cell's name, if it does.
fn contradiction(spec: &CellSpec, proof: &Proof) -> Option<String> {
    use crate::kinds::ServiceProxy;
    use crate::service::ebpf::{REDIRECTED, SERVICE_HITS};
    let get = |name: &str| proof.get(name).copied().unwrap_or(0);
    let dnat = get(IPTABLES_PROOF);
    let hits = get(SERVICE_HITS);
    match (spec.target, spec.datapath.service_proxy()) {
        (Target::ClusterIp, ServiceProxy::Iptables) if dnat == 0 => {
            return Some(format!(
                "proof: the iptables DNAT counters did not move, so the traffic did not go through the cluster IP ({IPTABLES_PROOF} = 0)"
            ))
        }
        (Target::ClusterIp, ServiceProxy::Ebpf) if hits == 0 => {
            return Some(format!("proof: the eBPF programs translated no packet to the cluster IP ({SERVICE_HITS} = 0)"))
        }
        (Target::PodIp, _) if dnat > 0 || hits > 0 => {
            return Some(format!(
                "proof: {} packets were translated ({IPTABLES_PROOF} {dnat}, {SERVICE_HITS} {hits}) although the client connected to the pod IP",
                dnat + hits
            ))
        }
        _ => {}
    }
    if spec.datapath.service_proxy() == ServiceProxy::Ebpf && dnat > 0 {
        return Some(format!(
            "proof: {dnat} packets went through iptables DNAT on an eBPF datapath"
        ));
    }
    // Pod traffic between nodes is encapsulated; node-to-node traffic takes
    // the underlay directly, as on a real Flannel host.
    let has_pod = matches!(spec.path.client, Endpoint::Pod(_))
        || matches!(spec.path.server, Endpoint::Pod(_));
    if spec.overlay == Some(Overlay::Vxlan)
        && spec.placement == Some("cross-node")
        && has_pod
        && get("vxlan_tx_packets") == 0
    {
        return Some("proof: nothing went through the VXLAN devices although pod traffic crosses nodes over vxlan (vxlan_tx_packets = 0)".into());
    }
    if spec.overlay == Some(Overlay::Routed) && get("vxlan_tx_packets") > 0 {
        return Some("proof: packets went through a VXLAN device in a routed lab".into());
    }
    if spec.datapath == Datapath::VethEbpf && get(REDIRECTED) == 0 {
        return Some(format!(
            "proof: no packet was redirected between pods by eBPF ({REDIRECTED} = 0)"
        ));
    }
    None
}

/// The reason a failed sample gives, with what it means on this datapath.
pub fn explain_failure(spec: &CellSpec, error: &str) -> String {
    if spec.datapath == Datapath::BridgeNfOff && spec.target == Target::ClusterIp {
        format!(
            "{error} (expected on bridge-nf-off: with net.bridge.bridge-nf-call-iptables=0 the server's replies are switched at L2 and miss the reverse NAT, so they never come back from the cluster IP)"
        )
    } else {
        error.to_string()
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

    fn spec(datapath: Datapath, target: Target) -> CellSpec {
        CellSpec {
            datapath,
            overlay: None,
            path: PathPlan {
                client: Endpoint::Pod(1),
                server: Endpoint::Pod(0),
                target,
                service: None,
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
        Proof::from([(IPTABLES_PROOF.to_string(), n)])
    }

    #[test]
    fn cluster_ip_cell_whose_counters_did_not_move_fails() {
        let mut t = Tally::new(spec(Datapath::VethRouted, Target::ClusterIp));
        t.add(sample(10.0), proof(0));
        let cell = t.into_cell();
        assert_eq!(cell.status, CellStatus::Failed);
        assert!(cell.reason.unwrap().contains("did not move"));
    }

    #[test]
    fn samples_become_metrics_and_proof_sums() {
        let mut t = Tally::new(spec(Datapath::VethRouted, Target::ClusterIp));
        t.add(sample(10.0), proof(2));
        t.add(sample(12.0), proof(1));
        t.setups_ms = vec![100.0, 120.0, 300.0];
        let cell = t.into_cell();
        assert_eq!(cell.status, CellStatus::Ok);
        assert_eq!(cell.metrics["throughput_gbps"].samples, vec![10.0, 12.0]);
        assert_eq!(cell.proof[IPTABLES_PROOF], 3);
        assert_eq!(cell.setup_ms, Some(120.0));
        assert_eq!(cell.service_proxy.as_deref(), Some("iptables"));
    }

    #[test]
    fn pod_ip_cell_with_dnat_packets_contradicts_itself() {
        let mut t = Tally::new(spec(Datapath::Bridge, Target::PodIp));
        t.add(sample(10.0), proof(4));
        assert_eq!(t.into_cell().status, CellStatus::Failed);
    }

    #[test]
    fn bridge_nf_off_cluster_ip_failure_is_explained() {
        let reason = explain_failure(
            &spec(Datapath::BridgeNfOff, Target::ClusterIp),
            "no connection",
        );
        assert!(reason.contains("reverse NAT"));
        let plain = explain_failure(&spec(Datapath::Bridge, Target::ClusterIp), "no connection");
        assert_eq!(plain, "no connection");
    }

    #[test]
    fn ebpf_cells_need_ebpf_translations_and_no_dnat() {
        let ebpf = |hits: i64, dnat: i64, redirected: i64| {
            Proof::from([
                (IPTABLES_PROOF.to_string(), dnat),
                ("bpf_service_hits".to_string(), hits),
                ("bpf_redirected".to_string(), redirected),
            ])
        };
        let cell = |target, proof| {
            let mut t = Tally::new(spec(Datapath::VethEbpf, target));
            t.add(sample(10.0), proof);
            t.into_cell().status
        };
        assert_eq!(cell(Target::ClusterIp, ebpf(5, 0, 100)), CellStatus::Ok);
        assert_eq!(cell(Target::ClusterIp, ebpf(0, 0, 100)), CellStatus::Failed);
        assert_eq!(cell(Target::ClusterIp, ebpf(5, 1, 100)), CellStatus::Failed);
        assert_eq!(cell(Target::PodIp, ebpf(0, 0, 100)), CellStatus::Ok);
        assert_eq!(cell(Target::PodIp, ebpf(0, 0, 0)), CellStatus::Failed);
    }

    #[test]
    fn unsupported_build_skips() {
        let mut t = Tally::new(spec(Datapath::IpvlanL2, Target::PodIp));
        t.build_failed(&LabError::Unsupported(
            "kernel has no ipvlan support".into(),
        ));
        let cell = t.into_cell();
        assert_eq!(cell.status, CellStatus::Skipped);
        assert!(cell.reason.unwrap().contains("ipvlan"));
    }
}
