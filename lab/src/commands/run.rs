//! `dplab run TOPOLOGY ...`: validate every flag first (exit 2, nothing
//! touched), run the matrix, write results.json, report.md and charts.

use std::path::PathBuf;
use std::str::FromStr;

use anyhow::Context;

use crate::cli::{bad_input, Failure, RunArgs, EXIT_CELLS_FAILED, EXIT_OK};
use crate::kinds::Target;
use crate::machine::Watch;
use crate::names::RunId;
use crate::results::{report, CellStatus};
use crate::runner::{self, Progress, RunOptions};
use crate::service::{pairing, Pairing};
use crate::topology::sweep::{check_counts, default_endpoints, Room};
use crate::topology::{Plan, Sweep};
use crate::workload::{self, Workload};

pub async fn run(flags: RunArgs) -> Result<u8, Failure> {
    let plan = super::load_plan(&flags.topology)?;
    let opts = options(&plan, &flags)?;
    log::debug!("run options: {opts:?}");
    super::check_environment()?;
    let sweep = sweep(&plan, &flags)?;
    super::require_root()?;
    let started = chrono::Utc::now();
    let out = flags.out.clone().unwrap_or_else(|| {
        PathBuf::from("results")
            .join(&plan.name)
            .join(started.format("%Y%m%dT%H%M%SZ").to_string())
    });
    let run = RunId::fresh();
    // Single-node labs have no overlay and their paths are the targets.
    let shape = if plan.underlay.is_some() {
        format!(
            "{} overlays x {} datapaths x {} paths",
            opts.overlays.len(),
            opts.datapaths.len(),
            opts.paths.len()
        )
    } else {
        format!(
            "{} datapaths x {} targets",
            opts.datapaths.len(),
            opts.paths.len()
        )
    };
    log::info!(
        "run {run}: {shape} x {} workloads, {} x {:?} each, tool {}",
        opts.workloads.len(),
        opts.repetitions,
        opts.duration,
        opts.tool
    );
    let watch = Watch::start();
    let mut results = match &sweep {
        None => {
            let progress =
                Progress::new(runner::cell_count(&plan, &opts) * opts.repetitions as usize)
                    .watching(watch.clone());
            let (cells, benchmarks) = runner::run_matrix(&run, &plan, &opts, &progress).await;
            runner::results(&run, &plan, &opts, started, cells, benchmarks)
        }
        Some(sweep) => {
            log::info!(
                "sweep: {:?} services, {} endpoints each",
                sweep.services,
                sweep.endpoints_per_service
            );
            let cells = runner::sweep::cells_per_repetition(&plan, &opts, sweep);
            let progress = Progress::new(cells * opts.repetitions as usize).watching(watch.clone());
            let out = runner::sweep::run_sweep(&run, &plan, &opts, sweep, &progress)
                .await
                .map_err(|e| anyhow::anyhow!("sweep of {}: {e}", plan.name))?;
            let mut results =
                runner::results(&run, &plan, &opts, started, out.cells, out.benchmarks);
            results.sweep = Some(out.sweep);
            results
        }
    };
    results.conditions = Some(watch.finish());
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let json = serde_json::to_string_pretty(&results).expect("results serialize");
    std::fs::write(out.join("results.json"), json + "\n")
        .with_context(|| format!("writing {}/results.json", out.display()))?;
    let written = report::write_report(&results, &out)
        .with_context(|| format!("writing the report into {}", out.display()))?;
    for cell in &results.cells {
        let headline = cell
            .metrics
            .iter()
            .find(|(k, _)| {
                k.as_str()
                    == workload::headline_metric(
                        Workload::from_str(&cell.workload).unwrap_or(Workload::TcpStream),
                    )
            })
            .map(|(k, m)| format!("{k} {}", report::format_metric(m)))
            .unwrap_or_default();
        let status = match cell.status {
            CellStatus::Ok => "ok".to_string(),
            CellStatus::Skipped => format!("skipped: {}", cell.reason.clone().unwrap_or_default()),
            CellStatus::Unreachable => {
                format!("unreachable: {}", cell.reason.clone().unwrap_or_default())
            }
            CellStatus::Failed => format!("failed: {}", cell.reason.clone().unwrap_or_default()),
        };
        let overlay = cell
            .overlay
            .as_deref()
            .map(|o| format!("{o} "))
            .unwrap_or_default();
        let target = match &cell.service_proxy {
            Some(p) => format!("{} ({p})", cell.target),
            None => cell.target.clone(),
        };
        eprintln!(
            "dplab: {overlay}{:14} {:>8} > {:8} {:22} {:10} {status} {headline}",
            cell.datapath, cell.client, cell.server, target, cell.workload
        );
    }
    log::info!(
        "wrote {}/results.json and {} more files",
        out.display(),
        written.len()
    );
    println!("{}", out.display());
    let failed = results.cells.iter().any(|c| c.status == CellStatus::Failed);
    Ok(if failed { EXIT_CELLS_FAILED } else { EXIT_OK })
}

/// Merges the topology's matrix with the flags; every problem is exit 2.
fn options(plan: &Plan, flags: &RunArgs) -> Result<RunOptions, Failure> {
    let matrix = plan.matrix.as_ref().ok_or_else(|| {
        bad_input(format!(
            "{}: the topology has no [matrix] to run",
            plan.source.display()
        ))
    })?;
    let datapaths = flags
        .only
        .clone()
        .unwrap_or_else(|| matrix.datapaths.clone());
    if datapaths.is_empty() {
        return Err(bad_input("--only: no datapath named"));
    }
    let proxies = match &flags.proxies {
        None if matrix.proxies.is_empty() => None,
        None => Some(matrix.proxies.clone()),
        Some(named) => Some(named.clone()),
    };
    // A pair the user named on both axes and that cannot be built is bad
    // input; from a topology's matrix it is a skipped cell.
    if let (Some(_), Some(named)) = (&flags.only, &flags.proxies) {
        for &d in &datapaths {
            for &p in named {
                if let Pairing::Impossible(why) = pairing(d, p, Target::ClusterIp) {
                    return Err(bad_input(format!("--only {d} with --proxies {p}: {why}")));
                }
            }
        }
    }
    let duration = flags.duration.unwrap_or(matrix.duration);
    let repetitions = flags.repetitions.unwrap_or(matrix.repetitions);
    let tool = flags.tool.unwrap_or(matrix.tool);
    let workloads = matrix.workloads.clone();
    for &w in &workloads {
        workload::check_tool(tool, w).map_err(|e| bad_input(format!("--tool {tool}: {e}")))?;
    }
    Ok(RunOptions {
        datapaths,
        proxies,
        overlays: if matrix.overlays.is_empty() {
            vec![None]
        } else {
            matrix.overlays.iter().map(|&o| Some(o)).collect()
        },
        paths: matrix.paths.clone(),
        workloads,
        duration,
        repetitions,
        tool,
        cpus: flags.cpus.unwrap_or_default(),
    })
}

/// The service-count sweep asked for: `--services` (checked like the
/// topology's `[sweep] services`, exit 2 naming the flag), else the
/// topology's `[sweep]`, else none.
fn sweep(plan: &Plan, flags: &RunArgs) -> Result<Option<Sweep>, Failure> {
    let Some(counts) = &flags.services else {
        return Ok(plan.sweep.clone());
    };
    let room = Room {
        own_services: plan.services.len(),
        service_cidr: plan.service_cidr,
    };
    let services = check_counts(counts, room).map_err(|e| bad_input(format!("--services: {e}")))?;
    let endpoints_per_service = plan.sweep.as_ref().map_or_else(
        || default_endpoints(plan.pods.len()),
        |s| s.endpoints_per_service,
    );
    Ok(Some(Sweep {
        services,
        endpoints_per_service,
    }))
}
