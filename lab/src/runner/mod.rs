//! `dplab run`: the whole matrix. Repetitions are the outer loop and every
//! datapath's lab is built, measured and torn down once per repetition, so
//! slow drift of the machine spreads over all datapaths alike instead of
//! favouring the one measured first.

mod cells;
pub mod pids;
mod progress;
pub mod sweep;
mod sweep_footprint;
mod sweep_point;
mod sweep_probe;

pub use cells::{CellSpec, Tally};
pub use progress::Progress;

use std::time::Duration;

use crate::error::LabError;
use crate::kinds::{Datapath, Overlay, ProxyKind, Target};
use crate::lab::Lab;
use crate::names::RunId;
use crate::proof;
use crate::results::{Cell, Results};
use crate::service::{pairing, Pairing};
use crate::topology::{Endpoint, PathPlan, Plan};
use crate::workload::{self, Endpoints, Params, Tool, Workload};

/// Port servers listen on when no service names one (iperf3's).
const DEFAULT_SERVER_PORT: u16 = 5201;

/// Workload parameters for samples of `duration`: the warm-up is half the
/// duration at most, so 2 s samples still measure 1 s.
pub fn params_for(duration: Duration) -> Params {
    Params {
        duration,
        warmup: (duration / 2).min(Duration::from_secs(1)),
        ..Params::default()
    }
}

/// What `dplab run` was asked for, validated.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub datapaths: Vec<Datapath>,
    /// Service proxies to measure; None: each datapath's natural proxy.
    pub proxies: Option<Vec<ProxyKind>>,
    /// `[None]` for single-node labs.
    pub overlays: Vec<Option<Overlay>>,
    pub paths: Vec<PathPlan>,
    pub workloads: Vec<Workload>,
    pub duration: Duration,
    pub repetitions: u32,
    pub tool: Tool,
    /// `--cpus`: where the client and server run.
    pub cpus: crate::workload::pinning::CpuPinning,
}

impl RunOptions {
    pub fn params(&self) -> Params {
        Params {
            cpus: self.cpus,
            ..params_for(self.duration)
        }
    }

    /// The proxies measured on `datapath`.
    pub fn proxies_for(&self, datapath: Datapath) -> Vec<ProxyKind> {
        self.proxies
            .clone()
            .unwrap_or_else(|| vec![datapath.natural_proxy()])
    }

    /// The labs one repetition builds: one per (overlay, datapath, proxy)
    /// the compatibility table allows, and at least one per (overlay,
    /// datapath) so that its pod-ip cells are measured.
    fn labs(&self) -> Vec<LabKey> {
        let mut labs = Vec::new();
        for &overlay in &self.overlays {
            for &datapath in &self.datapaths {
                let mut possible: Vec<ProxyKind> = self
                    .proxies_for(datapath)
                    .into_iter()
                    .filter(|&p| {
                        !matches!(
                            pairing(datapath, p, Target::ClusterIp),
                            Pairing::Impossible(_)
                        )
                    })
                    .collect();
                if possible.is_empty() {
                    possible.push(datapath.natural_proxy());
                }
                labs.extend(possible.into_iter().map(|proxy| LabKey {
                    datapath,
                    overlay,
                    proxy,
                }));
            }
        }
        labs
    }
}

/// One lab of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LabKey {
    datapath: Datapath,
    overlay: Option<Overlay>,
    proxy: ProxyKind,
}

impl LabKey {
    /// Name in benchmarks and progress lines: datapath[+overlay], and the
    /// proxy when it is not the datapath's natural one.
    fn label(&self) -> String {
        let mut label = self.datapath.to_string();
        if let Some(o) = self.overlay {
            label = format!("{label}+{o}");
        }
        if self.proxy != self.datapath.natural_proxy() {
            label = format!("{label}/{}", self.proxy);
        }
        label
    }

    /// Whether this lab measures `t` in repetition `rep` (0-based): its own
    /// service cells, and the proxy-free cells of its datapath not yet
    /// measured in this repetition by another lab.
    fn measures(&self, t: &Tally, rep: u32) -> bool {
        t.spec.datapath == self.datapath
            && t.spec.overlay == self.overlay
            && match t.spec.proxy {
                Some(p) => p == self.proxy,
                None => t.reps_tried <= rep,
            }
    }
}

/// How many cells the matrix has (one repetition).
pub fn cell_count(plan: &Plan, opts: &RunOptions) -> usize {
    cells::specs(plan, opts).len()
}

/// Runs every cell and returns them (results.json's `cells`) plus the
/// benchmarks measured on the way.
pub async fn run_matrix(
    run: &RunId,
    plan: &Plan,
    opts: &RunOptions,
    progress: &Progress,
) -> (Vec<Cell>, Vec<(String, f64)>) {
    let specs = cells::specs(plan, opts);
    let mut tallies: Vec<Tally> = specs.iter().map(|s| Tally::new(s.clone())).collect();
    let mut benchmarks = Vec::new();
    // A lab that cannot be built here is not retried.
    let mut unbuildable: Vec<(LabKey, LabError)> = Vec::new();
    let params = opts.params();
    let labs = opts.labs();
    for rep in 0..opts.repetitions {
        for (i, &key) in labs.iter().enumerate() {
            let failed_before = unbuildable
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, e)| replay(e));
            let lab = match failed_before {
                Some(e) => Err(e),
                None => {
                    let lab_run = if rep == 0 && i == 0 {
                        run.clone()
                    } else {
                        RunId::fresh()
                    };
                    progress.note(&format!(
                        "repetition {}/{}: building {}",
                        rep + 1,
                        opts.repetitions,
                        key.label()
                    ));
                    Lab::up(plan, key.datapath, key.proxy, key.overlay, lab_run).await
                }
            };
            let lab = match lab {
                Ok(lab) => lab,
                Err(e) => {
                    // The lab's own service cells cannot be measured; its
                    // proxy-free cells only if no other lab of the datapath
                    // can measure them.
                    let last_of_datapath = !labs[i + 1..]
                        .iter()
                        .any(|k| k.datapath == key.datapath && k.overlay == key.overlay);
                    for t in tallies.iter_mut().filter(|t| key.measures(t, rep)) {
                        if t.spec.proxy.is_some() || last_of_datapath {
                            t.build_failed(&e);
                        }
                    }
                    if !unbuildable.iter().any(|(k, _)| *k == key) {
                        unbuildable.push((key, e));
                    }
                    continue;
                }
            };
            let label = key.label();
            benchmarks.push((format!("setup_ms.{label}"), lab.setup_ms));
            if let Some(ms) = lab.proxy.program_ms() {
                benchmarks.push((format!("service_program_ms.{label}"), ms));
            }
            let mut measured = Vec::new();
            for (n, tally) in tallies.iter_mut().enumerate() {
                if !key.measures(tally, rep) {
                    continue;
                }
                measured.push(n);
                tally.reps_tried = rep + 1;
                tally.setups_ms.push(lab.setup_ms);
                tally.bpf_attach = tally.bpf_attach.take().or(lab.bpf_attach());
                if tally.is_done() {
                    continue;
                }
                progress.cell(&tally.spec, rep + 1, opts.repetitions);
                measure(&lab, opts.tool, &params, tally, progress);
                if let Some(seen) = progress.cell_done() {
                    tally
                        .conditions
                        .get_or_insert_with(Default::default)
                        .merge(&seen);
                }
            }
            let report = lab.down();
            benchmarks.push((format!("teardown_ms.{label}"), report.elapsed_ms));
            for &n in &measured {
                tallies[n].teardowns_ms.push(report.elapsed_ms);
                if !report.is_clean() {
                    tallies[n].fail(format!("teardown failed: {}", report.errors.join("; ")));
                }
            }
        }
    }
    progress.finish();
    (
        tallies.into_iter().map(Tally::into_cell).collect(),
        benchmarks,
    )
}

/// The same failure again, for a lab that is not rebuilt.
fn replay(e: &LabError) -> LabError {
    if e.is_unsupported() {
        LabError::Unsupported(e.to_string())
    } else {
        LabError::Other(e.to_string())
    }
}

/// One sample of one cell, with the proof counters read around it.
fn measure(lab: &Lab, tool: Tool, params: &Params, tally: &mut Tally, progress: &Progress) {
    if let Some(reason) = tally.impossible() {
        return tally.skip(reason);
    }
    let spec = tally.spec.clone();
    let endpoints = match endpoints(lab, &spec.path) {
        Ok(e) => e,
        Err(reason) => return tally.skip(reason),
    };
    let before = match lab.proof() {
        Ok(p) => p,
        Err(e) => return tally.fail(format!("reading proof counters: {e}")),
    };
    let recorder = pids::JournalPids(&lab.ledger);
    let live = |rate: f64| progress.rate(rate, workload::headline_metric(spec.workload));
    let sample = tokio::task::block_in_place(|| {
        workload::run_sample(
            spec.workload,
            tool,
            params,
            &endpoints,
            &recorder,
            Some(&live),
        )
    });
    let after = lab.proof();
    match (sample, after) {
        (Ok(sample), Ok(after)) => {
            let delta = proof::delta(&before, &after);
            let contradiction = lab.contradiction(&spec.path, &delta);
            tally.add(sample, delta, contradiction)
        }
        // The counters of a failed sample still count: eBPF drops are
        // often why it failed.
        (Err(e), Ok(after)) => tally.sample_failed(e.to_string(), proof::delta(&before, &after)),
        (Err(e), Err(_)) => tally.sample_failed(e.to_string(), proof::Proof::new()),
        (_, Err(e)) => tally.fail(format!("reading proof counters: {e}")),
    }
}

/// Where the client of a path connects.
fn endpoints(lab: &Lab, path: &PathPlan) -> Result<Endpoints, String> {
    let plan = &lab.plan;
    let service = path.service.map(|s| &plan.services[s]);
    let server_port = service
        .map(|s| s.target_port)
        .unwrap_or(DEFAULT_SERVER_PORT);
    let addr = match (path.target, path.server) {
        (Target::ClusterIp, _) => {
            let s = service.ok_or("no service is backed by the server pod")?;
            std::net::SocketAddr::from((s.cluster_ip, s.port))
        }
        (Target::NodePort, _) => {
            let s = service.ok_or("no service with a node port is backed by the server pod")?;
            let port = s.node_port.ok_or("the service has no node_port")?;
            let node = path.via.ok_or("node-port path names no node")?;
            std::net::SocketAddr::from((lab.node_address(node), port))
        }
        (_, Endpoint::Pod(p)) => std::net::SocketAddr::from((plan.pods[p].address, server_port)),
        (_, Endpoint::Node(n)) => {
            let ip = plan.nodes[n]
                .underlay_ip
                .ok_or("node-ip targets need a multi-node topology (an underlay)")?;
            std::net::SocketAddr::from((ip, server_port))
        }
    };
    Ok(Endpoints {
        client_netns: lab.endpoint_ns(path.client),
        server_netns: lab.endpoint_ns(path.server),
        server_port,
        target: addr,
    })
}

/// Fills results.json's frame around the cells.
pub fn results(
    run: &RunId,
    plan: &Plan,
    opts: &RunOptions,
    started: chrono::DateTime<chrono::Utc>,
    cells: Vec<Cell>,
    benchmarks: Vec<(String, f64)>,
) -> Results {
    let params = opts.params();
    let mut bench = std::collections::BTreeMap::new();
    for (name, values) in group(benchmarks) {
        bench.insert(name, crate::results::stats::median(&sorted(values)));
    }
    Results {
        schema: crate::results::schema::SCHEMA.to_string(),
        run_id: run.to_string(),
        topology: plan.name.clone(),
        started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        finished_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        host: crate::results::Host::current(),
        dplab_version: env!("CARGO_PKG_VERSION").to_string(),
        dplab_commit: Some(env!("DPLAB_GIT_COMMIT").to_string()),
        command: std::env::args().collect(),
        settings: crate::results::Settings {
            duration_s: opts.duration.as_secs_f64(),
            repetitions: opts.repetitions,
            tool: opts.tool.to_string(),
            warmup_s: params.warmup.as_secs_f64(),
            shaping: plan
                .underlay
                .as_ref()
                .and_then(|u| u.rate.as_ref())
                .map(|r| format!("tc tbf rate {r} on every node's underlay link")),
            cpus: opts.cpus.is_set().then_some(opts.cpus),
            tc_attach: tc_attach_used(&cells),
        },
        sweep: None,
        cells,
        conditions: None,
        benchmarks: bench,
    }
}

/// The tc attach mode the cells' eBPF programs used (netkit links are not
/// tc attachments).
fn tc_attach_used(cells: &[Cell]) -> Option<String> {
    cells
        .iter()
        .filter_map(|c| c.bpf_attach.as_deref())
        .flat_map(|kinds| kinds.split('+'))
        .find(|k| *k == "tcx" || *k == "netlink")
        .map(str::to_string)
}

fn group(pairs: Vec<(String, f64)>) -> Vec<(String, Vec<f64>)> {
    let mut out: Vec<(String, Vec<f64>)> = Vec::new();
    for (k, v) in pairs {
        match out.iter_mut().find(|(name, _)| *name == k) {
            Some((_, vs)) => vs.push(v),
            None => out.push((k, vec![v])),
        }
    }
    out
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}
