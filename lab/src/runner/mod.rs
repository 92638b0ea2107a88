//! `dplab run`: the whole matrix. Repetitions are the outer loop and every
//! datapath's lab is built, measured and torn down once per repetition, so
//! slow drift of the machine spreads over all datapaths alike instead of
//! favouring the one measured first.

mod cells;
pub mod pids;
mod progress;

pub use cells::{CellSpec, Tally};
pub use progress::Progress;

use std::time::Duration;

use crate::kinds::{Datapath, Overlay, Target};
use crate::lab::Lab;
use crate::names::RunId;
use crate::results::{Cell, Results};
use crate::service::proof_delta;
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
    // A datapath that cannot be built here is skipped once and not retried.
    let mut unbuildable: Vec<(Datapath, Option<Overlay>)> = Vec::new();
    let params = opts.params();
    let labs: Vec<(Datapath, Option<Overlay>)> = opts
        .overlays
        .iter()
        .flat_map(|&o| opts.datapaths.iter().map(move |&d| (d, o)))
        .collect();
    for rep in 0..opts.repetitions {
        for (i, &(dp, overlay)) in labs.iter().enumerate() {
            if unbuildable.contains(&(dp, overlay)) {
                continue;
            }
            let ours = |t: &&mut Tally| t.spec.datapath == dp && t.spec.overlay == overlay;
            let lab_run = if rep == 0 && i == 0 {
                run.clone()
            } else {
                RunId::fresh()
            };
            let label = match overlay {
                Some(o) => format!("{dp} over {o}"),
                None => dp.to_string(),
            };
            progress.note(&format!(
                "repetition {}/{}: building {label}",
                rep + 1,
                opts.repetitions
            ));
            let lab = match Lab::up(plan, dp, overlay, lab_run).await {
                Ok(lab) => lab,
                Err(e) => {
                    for t in tallies.iter_mut().filter(ours) {
                        t.build_failed(&e);
                    }
                    unbuildable.push((dp, overlay));
                    continue;
                }
            };
            let dp_key = label.replace(" over ", "+");
            benchmarks.push((format!("setup_ms.{dp_key}"), lab.setup_ms));
            if let Some(ms) = lab.proxy.program_ms() {
                benchmarks.push((format!("service_program_ms.{dp_key}"), ms));
            }
            let setup_ms = lab.setup_ms;
            for tally in tallies.iter_mut().filter(ours) {
                tally.setups_ms.push(setup_ms);
                if tally.is_done() {
                    continue;
                }
                progress.cell(&tally.spec, rep + 1, opts.repetitions);
                measure(&lab, plan, opts.tool, &params, tally, progress);
                if let Some(seen) = progress.cell_done() {
                    tally
                        .conditions
                        .get_or_insert_with(Default::default)
                        .merge(&seen);
                }
            }
            let report = lab.down();
            benchmarks.push((format!("teardown_ms.{dp_key}"), report.elapsed_ms));
            for tally in tallies.iter_mut().filter(ours) {
                tally.teardowns_ms.push(report.elapsed_ms);
                if !report.is_clean() {
                    tally.fail(format!("teardown failed: {}", report.errors.join("; ")));
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

/// One sample of one cell, with the proof counters read around it.
fn measure(
    lab: &Lab,
    plan: &Plan,
    tool: Tool,
    params: &Params,
    tally: &mut Tally,
    progress: &Progress,
) {
    if let Some(reason) = tally.impossible() {
        return tally.skip(reason);
    }
    let spec = tally.spec.clone();
    let endpoints = match endpoints(lab, plan, &spec.path) {
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
        (Ok(sample), Ok(after)) => tally.add(sample, proof_delta(&before, &after)),
        (Err(e), _) => tally.fail(cells::explain_failure(&spec, &e.to_string())),
        (_, Err(e)) => tally.fail(format!("reading proof counters: {e}")),
    }
}

/// Where the client of a path connects.
fn endpoints(lab: &Lab, plan: &Plan, path: &PathPlan) -> Result<Endpoints, String> {
    let service = path.service.map(|s| &plan.services[s]);
    let server_port = service
        .map(|s| s.target_port)
        .unwrap_or(DEFAULT_SERVER_PORT);
    let addr = match (path.target, path.server) {
        (Target::ClusterIp, _) => {
            let s = service.ok_or("no service is backed by the server pod")?;
            std::net::SocketAddr::from((s.cluster_ip, s.port))
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
        },
        cells,
        conditions: None,
        benchmarks: bench,
    }
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
